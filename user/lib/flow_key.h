/* Printing flow keys the one way reflex names a flow everywhere (CSV `flow`
 * column, reflexctl, logs): "tcp:10.0.0.1:40000-10.0.0.2:5201", IPv6 in brackets. */
#ifndef REFLEX_FLOW_KEY_H
#define REFLEX_FLOW_KEY_H

#include <stddef.h>
#include "reflex.h"

#define FLOW_NAME_MAX 96

/* Writes the flow's name into buf (always NUL-terminated); returns buf. */
char *flow_key_format(const struct flow_key *key, char *buf, size_t len);

#endif
