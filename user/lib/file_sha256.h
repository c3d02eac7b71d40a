/* SHA-256 of a file, as the hex that `sha256sum` prints: how reflexd's metrics and
 * status name the exact model file that is loaded. */
#ifndef REFLEX_LIB_FILE_SHA256_H
#define REFLEX_LIB_FILE_SHA256_H

#define FILE_SHA256_HEX 65

/* 0, or -1 (hex = "") if the file cannot be read. */
int file_sha256_hex(const char *path, char hex[FILE_SHA256_HEX]);

#endif
