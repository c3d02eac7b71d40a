/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/* Packet parsing for tc programs: Ethernet -> IPv4/IPv6 -> TCP/UDP, bounds-checked
 * against data_end, into a flow_key plus the header lengths. */
#ifndef REFLEX_PARSING_BPF_H
#define REFLEX_PARSING_BPF_H

#include <bpf/bpf_endian.h>
#include "reflex.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#ifndef AF_INET
#define AF_INET 2
#define AF_INET6 10
#endif
#ifndef IPPROTO_TCP
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#endif

struct packet_info {
	struct flow_key key; /* as on the wire: saddr is the packet's source */
	__u32 l3_offset;
	__u32 l4_offset;
	__u32 headers_len;   /* L2 + L3 + L4 headers of one segment */
	/* TCP fields, for passive RTT and retransmission tracking. */
	__u32 tcp_seq;
	__u32 tcp_ack;
	__u8 tcp_flags;
	__u8 dscp;
	__u16 pad;
};

static __always_inline int parse_l4(void *data, void *data_end, __u32 off, __u8 proto, struct packet_info *pi)
{
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = data + off;

		if ((void *)(th + 1) > data_end)
			return -1;
		pi->key.sport = bpf_ntohs(th->source);
		pi->key.dport = bpf_ntohs(th->dest);
		pi->headers_len = off + th->doff * 4;
		pi->tcp_seq = bpf_ntohl(th->seq);
		pi->tcp_ack = bpf_ntohl(th->ack_seq);
		pi->tcp_flags = ((__u8 *)th)[13];
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *uh = data + off;

		if ((void *)(uh + 1) > data_end)
			return -1;
		pi->key.sport = bpf_ntohs(uh->source);
		pi->key.dport = bpf_ntohs(uh->dest);
		pi->headers_len = off + sizeof(*uh);
	} else {
		return -1;
	}
	pi->key.proto = proto;
	pi->l4_offset = off;
	return 0;
}

/* 0 on a TCP or UDP packet over IPv4/IPv6 (no IPv6 extension headers), -1 otherwise. */
static __always_inline int parse_packet(struct __sk_buff *skb, struct packet_info *pi)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 off = sizeof(*eth);

	__builtin_memset(pi, 0, sizeof(*pi));
	if ((void *)(eth + 1) > data_end)
		return -1;
	pi->l3_offset = off;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = data + off;

		if ((void *)(iph + 1) > data_end || iph->ihl < 5)
			return -1;
		/* Only first fragments carry ports. */
		if (iph->frag_off & bpf_htons(0x1FFF))
			return -1;
		pi->key.family = AF_INET;
		pi->key.saddr[0] = iph->saddr;
		pi->key.daddr[0] = iph->daddr;
		pi->dscp = iph->tos >> 2;
		return parse_l4(data, data_end, off + iph->ihl * 4, iph->protocol, pi);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h = data + off;

		if ((void *)(ip6h + 1) > data_end)
			return -1;
		pi->key.family = AF_INET6;
		__builtin_memcpy(pi->key.saddr, &ip6h->saddr, 16);
		__builtin_memcpy(pi->key.daddr, &ip6h->daddr, 16);
		pi->dscp = ((ip6h->priority << 4) | (ip6h->flow_lbl[0] >> 4)) >> 2;
		return parse_l4(data, data_end, off + sizeof(*ip6h), ip6h->nexthdr, pi);
	}
	return -1;
}

/* Turn the on-wire key of an ingress packet into the host's view (local end first). */
static __always_inline void flow_key_swap(struct flow_key *key)
{
	__u32 tmp_addr[4];
	__u16 tmp_port = key->sport;

	__builtin_memcpy(tmp_addr, key->saddr, sizeof(tmp_addr));
	__builtin_memcpy(key->saddr, key->daddr, sizeof(tmp_addr));
	__builtin_memcpy(key->daddr, tmp_addr, sizeof(tmp_addr));
	key->sport = key->dport;
	key->dport = tmp_port;
}

#endif
