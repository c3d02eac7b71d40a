#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/gen_stats.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
	char buf[32768]; /* a dump page; libmnl 1.0.4 lacks MNL_SOCKET_DUMP_SIZE */
	struct qdisc_query query = { .ifindex = ifindex, .snap = snap, .kind = kind, .kind_len = kind_len };
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct tcmsg *tcm;
	struct timespec now;
	unsigned int seq, portid;
	int ret, err = 0;

	memset(snap, 0, sizeof(*snap));
	if (kind && kind_len)
		kind[0] = '\0';
	nl = mnl_socket_open(NETLINK_ROUTE);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto cleanup;
	}
	portid = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETQDISC;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq = (unsigned int)time(NULL);
	tcm = mnl_nlmsg_put_extra_header(nlh, sizeof(*tcm));
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = ifindex;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		err = -errno;
		goto cleanup;
	}
	while ((ret = mnl_socket_recvfrom(nl, buf, sizeof(buf))) > 0) {
		ret = mnl_cb_run(buf, ret, seq, portid, qdisc_msg, &query);
		if (ret <= MNL_CB_STOP)
			break;
	}
	if (ret < 0) {
		err = -errno;
		goto cleanup;
	}
	if (!query.found) {
		err = -ENOENT;
		goto cleanup;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	snap->ts_ns = (uint64_t)now.tv_sec * 1000000000ULL + now.tv_nsec;
	snap->valid = true;
cleanup:
	mnl_socket_close(nl);
	return err;
}
