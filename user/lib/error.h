/*
 * The one error carrier of the userspace code: a message for one clear line on stderr.
 * Lives in lib/ so that every layer can fill it without depending on the loader.
 */
#ifndef REFLEX_LIB_ERROR_H
#define REFLEX_LIB_ERROR_H

struct reflex_err {
	char msg[512];
};

void reflex_err_set(struct reflex_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
