/*
 * Traffic classes of the edge router's path selector and the classifier that
 * assigns one to each flow.
 *
 * The classifier is an ordered rule table: the first rule whose every given
 * condition holds decides the class; a flow no rule matches gets the table's
 * default class (web unless the config says otherwise: unmatched flows are
 * mostly short request/response exchanges, and web's balanced reward neither
 * crowds them onto the widest path nor onto the lowest-latency one).
 *
 * The table has built-in defaults (classify_table_default) and can be replaced
 * by an INI file the operator edits (classify_table_load); the file REPLACES the
 * defaults, it does not extend them, so the effective table is always exactly
 * what classify_table_print shows. The printed table is itself a valid config.
 *
 * Config format (tests/data/classes.ini is a documented example):
 *
 *   [classify]
 *   default = web                 ; class of flows no rule matches
 *
 *   [rule "voip-rtp"]             ; one section per rule, in match order
 *   class = voip                  ; required: gaming|voip|streaming|bulk|web
 *   proto = udp                   ; list: tcp, udp, icmp, icmpv6 or 0-255
 *   port  = 16384-32767           ; either end's port in the list (sport/dport: that end only)
 *   dscp  = ef, 46, af41          ; list: 0-63, LO-HI, csN, afXY, ef, va, le
 *   size_max = 400                ; packet_size_mean bounds, bytes (size_min too)
 *   rate_min = 20                 ; packet_rate bounds, packets/s (rate_max too)
 *   bytes_min = 1000000           ; bytes so far, both directions (bytes_max too)
 *
 * Lists are comma separated; port/sport/dport entries are N or LO-HI. A rule
 * with only class= matches every flow. Unknown sections and keys, a key given
 * twice, a missing class= and an empty rule section are errors.
 */
#ifndef REFLEX_CLASSIFY_H
#define REFLEX_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/error.h"

enum traffic_class {
	TRAFFIC_GAMING = 0,
	TRAFFIC_VOIP,
	TRAFFIC_STREAMING,
	TRAFFIC_BULK,
	TRAFFIC_WEB,
	TRAFFIC_CLASS_COUNT
};

/* "gaming", "voip", "streaming", "bulk", "web"; "?" for an out-of-range value. */
const char *traffic_class_name(enum traffic_class cls);
/* The class of a name as traffic_class_name spells it; -1 if unknown. */
int traffic_class_from_name(const char *name);

/* What reflexd knows about a flow when it classifies it. */
struct flow_facts {
	uint8_t proto;             /* IPPROTO_* */
	uint8_t dscp;              /* 0-63, from the flow's first packets */
	uint16_t sport;            /* host byte order */
	uint16_t dport;
	uint32_t packet_size_mean; /* bytes, both directions */
	uint32_t packet_rate;      /* packets/s, both directions */
	uint64_t bytes;            /* bytes so far, both directions */
};

#define CLASSIFY_MAX_RULES 64
#define CLASSIFY_MAX_RANGES 12 /* port ranges per key; keeps a printed list under inih's line limit */
#define CLASSIFY_MAX_PROTOS 8  /* protocols per proto= list, same reason */
#define CLASSIFY_NAME_LEN 32

struct port_range {
	uint16_t lo;
	uint16_t hi;
};

struct port_set {
	uint32_t n;
	struct port_range range[CLASSIFY_MAX_RANGES];
};

/* Which conditions a rule has (bits of classify_rule.match). */
enum classify_match {
	MATCH_PROTO = 1u << 0,
	MATCH_PORT = 1u << 1,
	MATCH_SPORT = 1u << 2,
	MATCH_DPORT = 1u << 3,
	MATCH_DSCP = 1u << 4,
	MATCH_SIZE_MIN = 1u << 5,
	MATCH_SIZE_MAX = 1u << 6,
	MATCH_RATE_MIN = 1u << 7,
	MATCH_RATE_MAX = 1u << 8,
	MATCH_BYTES_MIN = 1u << 9,
	MATCH_BYTES_MAX = 1u << 10,
};

struct classify_rule {
	char name[CLASSIFY_NAME_LEN];
	enum traffic_class cls;
	uint32_t match;            /* enum classify_match bits */
	uint64_t proto_mask[4];    /* bit p set: IP protocol p matches */
	uint64_t dscp_mask;        /* bit d set: DSCP d matches */
	struct port_set port;      /* either end */
	struct port_set sport;
	struct port_set dport;
	uint32_t size_min, size_max;
	uint32_t rate_min, rate_max;
	uint64_t bytes_min, bytes_max;
};

struct classify_table {
	uint32_t n_rules;
	enum traffic_class default_class;
	struct classify_rule rule[CLASSIFY_MAX_RULES];
};

/* Fill t with the built-in rule table. */
void classify_table_default(struct classify_table *t);

/*
 * Parse a config from memory (len bytes, need not be NUL-terminated; a NUL byte
 * is an error). source names the text in messages ("FILE:LINE: ..."). On success
 * returns 0 and replaces *t; on error returns -EINVAL (or -ENOMEM), leaves *t
 * untouched and writes one line naming source, line, section and key to err.
 */
int classify_table_parse(struct classify_table *t, const char *text, size_t len,
			 const char *source, struct reflex_err *err);

/* classify_table_parse of a file (at most 1 MiB); -errno if it cannot be read. */
int classify_table_load(struct classify_table *t, const char *path, struct reflex_err *err);

/*
 * The class of a flow: the first rule that matches, else t->default_class.
 * rule_index (may be NULL) receives the matching rule's index or -1.
 */
enum traffic_class classify_flow(const struct classify_table *t,
				 const struct flow_facts *facts, int *rule_index);

/* Whether one rule matches (exposed for `reflexd --print-classes` diagnostics and tests). */
bool classify_rule_matches(const struct classify_rule *rule, const struct flow_facts *facts);

/* Print the table as a config file that classify_table_parse accepts unchanged. */
int classify_table_print(const struct classify_table *t, FILE *out);

#endif /* REFLEX_CLASSIFY_H */
