# The soak's server: accepts on one port and drains every connection until it closes.
import socket, sys, threading

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("0.0.0.0", int(sys.argv[1])))
listener.listen(1024)


def drain(conn):
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass
    conn.close()


while True:
    conn, _ = listener.accept()
    threading.Thread(target=drain, args=(conn,), daemon=True).start()
