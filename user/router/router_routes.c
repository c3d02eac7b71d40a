/* The router's policy rules and routes over rtnetlink: see router_routes.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "router/router_routes.h"

/* `ip route` shows routes reflexd added as "proto 82" ('R'). */
#define ROUTER_RTPROT 82

int router_route_format(const struct router_route *r, char *out, size_t len)
{
	char gw[INET6_ADDRSTRLEN] = "";
	int n;

	if (r->kind == ROUTER_ROUTE_RULE) {
		n = snprintf(out, len, "rule family=%d priority=%u mark=%#x mask=%#x table=%u",
			     r->family == AF_INET6 ? 6 : 4, r->priority, r->mark, r->mask, r->table);
	} else {
		inet_ntop(r->family, &r->gateway, gw, sizeof(gw));
		n = snprintf(out, len, "route family=%d table=%u gateway=%s ifname=%s", r->family == AF_INET6 ? 6 : 4,
			     r->table, gw, r->ifname);
	}
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

int router_route_parse(const char *line, struct router_route *r)
{
	char gw[INET6_ADDRSTRLEN + 1], ifname[IF_NAMESIZE];
	int family, used = 0;

	memset(r, 0, sizeof(*r));
	if (!strncmp(line, "rule ", 5)) {
		if (sscanf(line, "rule family=%d priority=%u mark=%x mask=%x table=%u%n", &family, &r->priority,
			   &r->mark, &r->mask, &r->table, &used) != 5 || (line[used] && line[used] != '\n'))
			return -EINVAL;
		r->kind = ROUTER_ROUTE_RULE;
	} else if (!strncmp(line, "route ", 6)) {
		if (sscanf(line, "route family=%d table=%u gateway=%46s ifname=%15s%n", &family, &r->table, gw, ifname,
			   &used) != 4 || (line[used] && line[used] != '\n'))
			return -EINVAL;
		r->kind = ROUTER_ROUTE_DEFAULT;
		snprintf(r->ifname, sizeof(r->ifname), "%s", ifname);
	} else {
		return 0;
	}
	if (family != 4 && family != 6)
		return -EINVAL;
	r->family = family == 6 ? AF_INET6 : AF_INET;
	if (r->kind == ROUTER_ROUTE_DEFAULT && inet_pton(r->family, gw, &r->gateway) != 1)
		return -EINVAL;
	return 1;
}

static void rule_build(struct nlmsghdr *nlh, const struct router_route *r)
{
	struct fib_rule_hdr *frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));

	frh->family = (unsigned char)r->family;
	frh->action = FR_ACT_TO_TBL;
	frh->table = r->table < 256 ? (unsigned char)r->table : RT_TABLE_UNSPEC;
	mnl_attr_put_u32(nlh, FRA_PRIORITY, r->priority);
	mnl_attr_put_u32(nlh, FRA_FWMARK, r->mark);
	mnl_attr_put_u32(nlh, FRA_FWMASK, r->mask);
	mnl_attr_put_u32(nlh, FRA_TABLE, r->table);
}

static int route_build(struct nlmsghdr *nlh, const struct router_route *r)
{
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	unsigned int oif = if_nametoindex(r->ifname);

	if (!oif)
		return -ENODEV;
	rtm->rtm_family = (unsigned char)r->family;
	rtm->rtm_dst_len = 0;
	rtm->rtm_table = r->table < 256 ? (unsigned char)r->table : RT_TABLE_UNSPEC;
	rtm->rtm_protocol = ROUTER_RTPROT;
	rtm->rtm_scope = RT_SCOPE_UNIVERSE;
	rtm->rtm_type = RTN_UNICAST;
	mnl_attr_put_u32(nlh, RTA_TABLE, r->table);
	mnl_attr_put(nlh, RTA_GATEWAY, r->family == AF_INET6 ? 16 : 4, &r->gateway);
	mnl_attr_put_u32(nlh, RTA_OIF, oif);
	return 0;
}

/* Sends one request and waits for its acknowledgement: 0 or -errno. */
static int request(struct nlmsghdr *nlh)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
	unsigned int portid;
	int ret;

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	nlh->nlmsg_seq = (unsigned int)time(NULL);
	nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		ret = -errno;
		goto out;
	}
	ret = (int)mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (ret < 0) {
		ret = -errno;
		goto out;
	}
	ret = mnl_cb_run(buf, (size_t)ret, nlh->nlmsg_seq, portid, NULL, NULL);
	ret = ret < 0 ? -errno : 0;
out:
	mnl_socket_close(nl);
	return ret;
}

static int build(char *buf, const struct router_route *r, bool add, struct nlmsghdr **out)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	if (r->kind == ROUTER_ROUTE_RULE) {
		nlh->nlmsg_type = add ? RTM_NEWRULE : RTM_DELRULE;
		rule_build(nlh, r);
	} else {
		nlh->nlmsg_type = add ? RTM_NEWROUTE : RTM_DELROUTE;
		if (route_build(nlh, r))
			return -ENODEV;
	}
	if (add)
		nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	*out = nlh;
	return 0;
}

int router_route_add(const struct router_route *r, char *err, size_t len)
{
	char buf[MNL_SOCKET_BUFFER_SIZE], what[160];
	struct nlmsghdr *nlh;
	int ret;

	router_route_format(r, what, sizeof(what));
	ret = build(buf, r, true, &nlh);
	if (!ret)
		ret = request(nlh);
	if (ret == -EEXIST)
		snprintf(err, len, "cannot add %s: it exists already (another reflexd, or a table of someone else's?)",
			 what);
	else if (ret)
		snprintf(err, len, "cannot add %s: %s", what, strerror(-ret));
	return ret;
}

int router_route_del(const struct router_route *r)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	int ret = build(buf, r, false, &nlh);

	/* Its interface is gone: so is the route. */
	if (ret == -ENODEV)
		return 0;
	if (!ret)
		ret = request(nlh);
	return ret == -ENOENT || ret == -ESRCH ? 0 : ret;
}
