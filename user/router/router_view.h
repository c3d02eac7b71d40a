/*
 * What `reflexctl paths` shows of a router reflexd: the bandit's table, each path's
 * link (interface, next hops, traffic), the flows and the counters. reflexd writes
 * it as one JSON object to /run/reflex/<pin dir with / as _>.paths every second
 * (temporary file + rename); reflexctl reads it back.
 *
 *   {"pid":N,"lan":"IF","now_ns":N,"uptime_s":X,
 *    "bandit":{ bandit_view_print_json's object },
 *    "links":[{"path","iface","nexthop4","nexthop6","link_up", router_path_stats by
 *              field name, "last_failover_ns","last_failover_flows"}],
 *    "flows_total":N,
 *    "flows":[{"flow","class","rule","path","closed","from_start","moves","rtt_us",
 *              "path_rtt_us","lan_rtt_min_us","loss_rate","throughput_bps","reward",
 *              "rewards","bytes_up","bytes_down","retrans_packets","age_ms","idle_ms",
 *              "handshake", and per data direction D (up: the LAN end sends, down: the far
 *              end sends) "delivery_rate_bps_D","cwnd_target_D","cap_bytes_D",
 *              "wnd_enforced_D"}],
 *    "stats":{ router_core_stats by field name },
 *    "counters":{ the BPF counters by ROUTER_COUNTER_NAMES },
 *    "maps":{"router_flows":{"entries":N,"max_entries":N}, likewise router_decisions,
 *            router_timestamps and router_wnd_caps}}
 *
 * Unknown values are null (no next hop, an unsteered flow's path, a flow's reward
 * before the first); "flows" holds the ROUTER_VIEW_MAX_FLOWS largest by bytes.
 */
#ifndef REFLEX_ROUTER_VIEW_H
#define REFLEX_ROUTER_VIEW_H

#include <arpa/inet.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "router/bandit.h"
#include "router/classify.h"
#include "lib/error.h"
#include "lib/flow_key.h"
#include "reflex_router.h"
#include "router/router_core.h"

#define ROUTER_VIEW_MAX_FLOWS 256

/* The flow maps whose fill (entries / max_entries) the view shows. */
enum router_view_map {
	ROUTER_VIEW_MAP_FLOWS = 0,
	ROUTER_VIEW_MAP_DECISIONS,
	ROUTER_VIEW_MAP_TIMESTAMPS,
	ROUTER_VIEW_MAP_WND_CAPS,
	ROUTER_VIEW_MAPS,
};

#define ROUTER_VIEW_MAP_NAMES { "router_flows", "router_decisions", "router_timestamps", "router_wnd_caps" }

struct router_map_fill {
	uint32_t entries;
	uint32_t max_entries;
};

struct router_link_view {
	char path[BANDIT_PATH_NAME_LEN];
	char iface[IF_NAMESIZE];
	char nexthop4[INET_ADDRSTRLEN];  /* "" = none */
	char nexthop6[INET6_ADDRSTRLEN]; /* "" = none */
	bool link_up;
	struct router_path_stats stats;
	uint64_t last_failover_ns;
	uint32_t last_failover_flows;
};

struct router_flow_view {
	char flow[FLOW_NAME_MAX];
	enum traffic_class cls;
	char rule[CLASSIFY_NAME_LEN];     /* "" = the table's default class */
	char path[BANDIT_PATH_NAME_LEN];  /* "" = unsteered */
	bool closed;
	bool from_start;
	uint32_t moves;
	double rtt_us;
	double path_rtt_us;
	double lan_rtt_min_us;
	double loss_rate;
	double throughput_bps;
	double reward;                    /* NAN before the first */
	uint64_t rewards;
	uint64_t bytes_up;
	uint64_t bytes_down;
	uint64_t retrans_packets;
	uint64_t age_ms;
	uint64_t idle_ms;
	/* The window caps (issue 17), per data direction (enum router_dir): */
	bool handshake;                            /* ROUTER_FLOW_HANDSHAKE: windows may be rewritten */
	double delivery_rate_bps[ROUTER_DIR_MAX];  /* d's data acknowledged, over the last reward interval */
	uint32_t cwnd_target[ROUTER_DIR_MAX];      /* packets reflexd decided for d's sender, 0 = none */
	uint32_t cap_bytes[ROUTER_DIR_MAX];        /* router_wnd_caps: cwnd_target x segment size */
	uint32_t wnd_enforced[ROUTER_DIR_MAX];     /* the window d's sender was last sent, after rewriting */
};

struct router_view {
	int pid;
	char lan[IF_NAMESIZE];
	uint64_t now_ns;
	double uptime_s;
	struct bandit_view bandit;
	uint32_t n_links;
	struct router_link_view link[ROUTER_MAX_PATHS];
	uint32_t flows_total;
	uint32_t n_flows;
	struct router_flow_view flow[ROUTER_VIEW_MAX_FLOWS];
	struct router_core_stats stats;
	uint64_t counters[ROUTER_CNT_MAX];
	struct router_map_fill maps[ROUTER_VIEW_MAPS];
};

int router_view_print_json(const struct router_view *v, FILE *out);
/* The operator's tables: bandit_view_print_text, then links and flows. */
int router_view_print_text(const struct router_view *v, FILE *out);
/*
 * Read back what router_view_print_json wrote (len bytes, need not end in NUL).
 * 0, or -EINVAL with the byte offset and the field that is wrong in err; *v is
 * fully written either way.
 */
int router_view_parse_json(const char *text, size_t len, struct router_view *v, struct reflex_err *err);

#endif /* REFLEX_ROUTER_VIEW_H */
