#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/gen_stats.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/tc_filters.h"
#include "reflexd/qdisc_stats.h"

struct qdisc_query {
	int ifindex;
	bool found;
	struct queue_snapshot *snap;
	char *kind;
	size_t kind_len;
};

static int stats2_attr(const struct nlattr *attr, void *data)
{
	struct queue_snapshot *snap = data;

	switch (mnl_attr_get_type(attr)) {
	case TCA_STATS_BASIC:
		if (mnl_attr_get_payload_len(attr) >= sizeof(struct gnet_stats_basic)) {
			struct gnet_stats_basic basic;

			memcpy(&basic, mnl_attr_get_payload(attr), sizeof(basic));
			snap->sent_bytes = basic.bytes;
			snap->sent_packets = basic.packets;
		}
		break;
	case TCA_STATS_PKT64:
		if (mnl_attr_get_payload_len(attr) >= sizeof(uint64_t))
			snap->sent_packets = mnl_attr_get_u64(attr);
		break;
	case TCA_STATS_QUEUE:
		if (mnl_attr_get_payload_len(attr) >= sizeof(struct gnet_stats_queue)) {
			struct gnet_stats_queue queue;

			memcpy(&queue, mnl_attr_get_payload(attr), sizeof(queue));
			snap->backlog_packets = queue.qlen;
			snap->backlog_bytes = queue.backlog;
			snap->drops = queue.drops;
			snap->requeues = queue.requeues;
			snap->overlimits = queue.overlimits;
		}
		break;
	}
	return MNL_CB_OK;
}

static int qdisc_attr(const struct nlattr *attr, void *data)
{
	struct qdisc_query *q = data;

	switch (mnl_attr_get_type(attr)) {
	case TCA_KIND:
		if (q->kind && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0)
			snprintf(q->kind, q->kind_len, "%s", mnl_attr_get_str(attr));
		break;
	case TCA_STATS2:
		mnl_attr_parse_nested(attr, stats2_attr, q->snap);
		break;
	}
	return MNL_CB_OK;
}

static int qdisc_msg(const struct nlmsghdr *nlh, void *data)
{
	struct qdisc_query *q = data;
	const struct tcmsg *tcm = mnl_nlmsg_get_payload(nlh);

	if (tcm->tcm_ifindex != q->ifindex || tcm->tcm_parent != TC_H_ROOT)
		return MNL_CB_OK;
	q->found = true;
	mnl_attr_parse(nlh, sizeof(*tcm), qdisc_attr, q);
	return MNL_CB_OK;
}

int qdisc_root_stats(int ifindex, struct queue_snapshot *snap, char *kind, size_t kind_len)
{
	struct qdisc_query query = { .ifindex = ifindex, .snap = snap, .kind = kind, .kind_len = kind_len };
	struct timespec now;
	int err;

	memset(snap, 0, sizeof(*snap));
	if (kind && kind_len)
		kind[0] = '\0';
	err = tc_dump(RTM_GETQDISC, ifindex, 0, qdisc_msg, &query);
	if (err)
		return err;
	if (!query.found)
		return -ENOENT;
	clock_gettime(CLOCK_MONOTONIC, &now);
	snap->ts_ns = (uint64_t)now.tv_sec * 1000000000ULL + now.tv_nsec;
	snap->valid = true;
	return 0;
}
