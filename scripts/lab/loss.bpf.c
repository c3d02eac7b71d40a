// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * Random packet loss for the netns lab (the kernel has no netem): a tc clsact program
 * that drops each IPv4/IPv6 packet with probability loss_config.loss_ppm / 1e6.
 *
 * scripts/lab/lab.sh loads it with `bpftool prog load ... pinmaps DIR`, writes loss_ppm into
 * the pinned loss_config map and attaches the pinned program with
 * `tc filter add dev IF ingress bpf da pinned DIR/prog`. Changing loss_ppm at run time
 * changes the loss rate from the next packet on.
 *
 * Neighbour discovery (ARP is not IP; ICMPv6 133..137 is exempted here) is never dropped:
 * a lossy wire should lose data, not make the next hop unresolvable for seconds.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_HLEN 14
#define NEXTHDR_ICMPV6 58
#define ICMPV6_ND_FIRST 133 /* router solicitation */
#define ICMPV6_ND_LAST 137  /* redirect */
#define LOSS_PPM_SCALE 1000000

struct loss_config {
	__u32 loss_ppm; /* drop probability in parts per million, 0 = no loss */
};

struct loss_counters {
	__u64 seen;    /* IP packets that went through the program */
	__u64 dropped; /* of them, dropped */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct loss_config);
} loss_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct loss_counters);
} loss_counters SEC(".maps");

static __always_inline bool is_neighbour_discovery(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	__u8 *icmp6_type = (void *)(ip6 + 1);

	if ((void *)(icmp6_type + 1) > data_end)
		return false;
	return ip6->nexthdr == NEXTHDR_ICMPV6 && *icmp6_type >= ICMPV6_ND_FIRST &&
	       *icmp6_type <= ICMPV6_ND_LAST;
}

SEC("tc")
int lab_loss(struct __sk_buff *skb)
{
	struct loss_counters *counters;
	struct loss_config *config;
	__u32 zero = 0;

	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		if (is_neighbour_discovery(skb))
			return TC_ACT_OK;
	} else if (skb->protocol != bpf_htons(ETH_P_IP)) {
		return TC_ACT_OK;
	}

	config = bpf_map_lookup_elem(&loss_config, &zero);
	counters = bpf_map_lookup_elem(&loss_counters, &zero);
	if (!config || !counters)
		return TC_ACT_OK;
	counters->seen++;
	if (config->loss_ppm == 0 || bpf_get_prandom_u32() % LOSS_PPM_SCALE >= config->loss_ppm)
		return TC_ACT_OK;
	counters->dropped++;
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
