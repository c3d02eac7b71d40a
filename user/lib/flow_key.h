/* Printing flow keys the one way reflex names a flow everywhere (CSV `flow`
 * column, reflexctl, logs): "tcp:10.0.0.1:40000-10.0.0.2:5201", IPv6 in brackets. */
#ifndef REFLEX_FLOW_KEY_H
#define REFLEX_FLOW_KEY_H

#include <stddef.h>
#include "reflex.h"

/* The longest name: two IPv4-mapped IPv6 addresses of 45 characters each,
 * "tcp:[A]:65535-[B]:65535" is 111 characters; 128 leaves room. */
#define FLOW_NAME_MAX 128

/* Writes the flow's name into buf (always NUL-terminated); returns buf. */
char *flow_key_format(const struct flow_key *key, char *buf, size_t len);

#endif
