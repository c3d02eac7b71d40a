/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * What the lab's NFQUEUE tool (trace-link) needs of netfilter: the netfilter netlink
 * socket, binding a queue, verdicts, and the signalfd. Header-only: lab tools are single
 * programs, not part of libreflex. Every function prints its own error, prefixed by the
 * program's name, and returns -1.
 */
#ifndef REFLEX_LAB_NFQ_COMMON_H
#define REFLEX_LAB_NFQ_COMMON_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

/* Room for bursts of messages queued before the loop runs. */
#define NFQ_SOCKET_RCVBUF_BYTES (8 * 1024 * 1024)

static inline int nfq_socket_open(const char *prog, struct mnl_socket **nl, uint32_t *portid)
{
	int rcvbuf = NFQ_SOCKET_RCVBUF_BYTES;
	int fd;

	*nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!*nl) {
		fprintf(stderr, "%s: cannot open a netfilter netlink socket: %s\n", prog, strerror(errno));
		return -1;
	}
	if (mnl_socket_bind(*nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		fprintf(stderr, "%s: cannot bind the netlink socket: %s\n", prog, strerror(errno));
		return -1;
	}
	*portid = mnl_socket_get_portid(*nl);
	fd = mnl_socket_get_fd(*nl);
	/* FORCE ignores rmem_max (we run as root); without it, bursts would overrun the socket. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0) {
		fprintf(stderr, "%s: cannot size the netlink receive buffer: %s\n", prog, strerror(errno));
		return -1;
	}
	return 0;
}

static inline const char *nfq_bind_error_hint(int err)
{
	switch (err) {
	case EPERM:
		/* The kernel answers EPERM both without CAP_NET_ADMIN and when another socket
		 * owns the queue; as root only the second is possible. */
		if (geteuid() == 0)
			return " (another process already listens on this queue in this network namespace)";
		return " (needs CAP_NET_ADMIN: run as root in the lab's network namespace)";
	case EOPNOTSUPP:
	case EPROTONOSUPPORT:
		return " (kernel built without CONFIG_NETFILTER_NETLINK_QUEUE?)";
	default:
		return "";
	}
}

struct nfq_bind_params {
	uint16_t queue;
	uint8_t copy_mode;   /* NFQNL_COPY_META or NFQNL_COPY_PACKET */
	uint32_t copy_range; /* bytes of each packet with NFQNL_COPY_PACKET */
	uint32_t qmaxlen;    /* the kernel's queue length */
};

/*
 * Bind a queue and set copy mode, queue length and flags (fail-open, GSO) in one
 * acknowledged message. Packets can be queued to us between the bind and the ACK: they
 * go to cb like any other.
 */
static inline int nfq_bind_queue(const char *prog, struct mnl_socket *nl, uint32_t portid,
				 const struct nfq_bind_params *p, char *rx_buf, size_t rx_len,
				 mnl_cb_t cb, void *data)
{
	union {
		char buf[1024];
		struct nlmsghdr align;
	} msg;
	uint32_t flags = htonl(NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO);
	uint32_t seq = (uint32_t)time(NULL) + p->queue;
	struct nlmsghdr *nlh = nfq_nlmsg_put(msg.buf, NFQNL_MSG_CONFIG, p->queue);
	ssize_t len;
	int ret;

	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
	nfq_nlmsg_cfg_put_params(nlh, p->copy_mode, (int)p->copy_range);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, p->qmaxlen);
	mnl_attr_put(nlh, NFQA_CFG_FLAGS, sizeof(flags), &flags);
	mnl_attr_put(nlh, NFQA_CFG_MASK, sizeof(flags), &flags);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		fprintf(stderr, "%s: cannot bind queue %u: %s\n", prog, p->queue, strerror(errno));
		return -1;
	}
	do {
		len = mnl_socket_recvfrom(nl, rx_buf, rx_len);
		if (len < 0) {
			fprintf(stderr, "%s: cannot bind queue %u: %s\n", prog, p->queue, strerror(errno));
			return -1;
		}
		ret = mnl_cb_run(rx_buf, (size_t)len, seq, portid, cb, data);
	} while (ret > MNL_CB_STOP);
	if (ret < 0) {
		int err = errno;

		fprintf(stderr, "%s: cannot bind queue %u: %s%s\n", prog, p->queue, strerror(err),
			nfq_bind_error_hint(err));
		return -1;
	}
	return 0;
}

/* One verdict, or with NFQNL_MSG_VERDICT_BATCH the verdict for every packet up to id. */
static inline int nfq_send_verdict(const char *prog, struct mnl_socket *nl, int msg_type,
				   uint16_t queue, uint32_t id, int verdict)
{
	/* A verdict is a header, a nfgenmsg and one attribute: far below this size. */
	union {
		char buf[256];
		struct nlmsghdr align;
	} msg;
	struct nlmsghdr *nlh = nfq_nlmsg_put(msg.buf, msg_type, queue);

	nfq_nlmsg_verdict_put(nlh, (int)id, verdict);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		fprintf(stderr, "%s: sending a verdict for packet %u: %s\n", prog, id, strerror(errno));
		return -1;
	}
	return 0;
}

/* SIGTERM, SIGINT and SIGUSR1 as a non-blocking signalfd (blocked for the process). */
static inline int nfq_signal_fd_open(const char *prog)
{
	sigset_t mask;
	int fd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
		fprintf(stderr, "%s: sigprocmask: %s\n", prog, strerror(errno));
		return -1;
	}
	fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		fprintf(stderr, "%s: signalfd: %s\n", prog, strerror(errno));
	return fd;
}

/* Drains the signalfd: SIGUSR1 calls on_usr1(data); returns 1 when SIGTERM or SIGINT
 * arrived (the caller stops), else 0. */
static inline int nfq_signals_stop(int signal_fd, void (*on_usr1)(const void *data), const void *data)
{
	struct signalfd_siginfo info;
	int stop = 0;

	while (read(signal_fd, &info, sizeof(info)) == (ssize_t)sizeof(info)) {
		if (info.ssi_signo == SIGUSR1)
			on_usr1(data);
		else
			stop = 1;
	}
	return stop;
}

#endif
