#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

#include "lib/flow_key.h"

static const char *proto_name(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	default:
		return "ip";
	}
}

_Static_assert(sizeof("tcp:[]:65535-[]:65535") + 2 * (INET6_ADDRSTRLEN - 1) <= FLOW_NAME_MAX,
	       "FLOW_NAME_MAX holds every flow name");

char *flow_key_format(const struct flow_key *key, char *buf, size_t len)
{
	char saddr[INET6_ADDRSTRLEN] = "?", daddr[INET6_ADDRSTRLEN] = "?";
	int af = key->family == AF_INET6 ? AF_INET6 : AF_INET;

	inet_ntop(af, key->saddr, saddr, sizeof(saddr));
	inet_ntop(af, key->daddr, daddr, sizeof(daddr));
	if (af == AF_INET6)
		snprintf(buf, len, "%s:[%s]:%u-[%s]:%u", proto_name(key->proto), saddr, key->sport, daddr, key->dport);
	else
		snprintf(buf, len, "%s:%s:%u-%s:%u", proto_name(key->proto), saddr, key->sport, daddr, key->dport);
	return buf;
}
