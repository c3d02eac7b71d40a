#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <time.h>

#include "lib/tc_filters.h"

static int count_msg(const struct nlmsghdr *nlh, void *data)
{
	int *count = data;

	if (nlh->nlmsg_type == RTM_NEWTFILTER)
		(*count)++;
	return MNL_CB_OK;
}

int tc_dump(uint16_t msg_type, int ifindex, uint32_t parent, mnl_cb_t cb, void *data)
{
	char buf[32768]; /* a dump page; libmnl 1.0.4 lacks MNL_SOCKET_DUMP_SIZE */
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct tcmsg *tcm;
	unsigned int seq, portid;
	int ret, err = 0;

	nl = mnl_socket_open(NETLINK_ROUTE);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto cleanup;
	}
	portid = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = msg_type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq = (unsigned int)time(NULL);
	tcm = mnl_nlmsg_put_extra_header(nlh, sizeof(*tcm));
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = ifindex;
	tcm->tcm_parent = parent;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		err = -errno;
		goto cleanup;
	}
	while ((ret = mnl_socket_recvfrom(nl, buf, sizeof(buf))) > 0) {
		ret = mnl_cb_run(buf, ret, seq, portid, cb, data);
		if (ret <= MNL_CB_STOP)
			break;
	}
	if (ret < 0)
		err = -errno;
cleanup:
	mnl_socket_close(nl);
	return err;
}

int tc_filters_count(int ifindex, bool ingress)
{
	int count = 0;
	int err = tc_dump(RTM_GETTFILTER, ifindex,
			  TC_H_MAKE(TC_H_CLSACT, ingress ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS), count_msg, &count);

	return err ? err : count;
}

bool tc_clsact_empty(int ifindex)
{
	return tc_filters_count(ifindex, true) == 0 && tc_filters_count(ifindex, false) == 0;
}
