// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * The tc baseline of bench_telemetry.sh: a tc program that does nothing, attached next
 * to reflex's on the same clsact hooks, so it runs on the same packets and its
 * bpf_stats run time is the fixed cost of any tc program there. TC_ACT_UNSPEC, as
 * reflex's programs return, lets the next filter run.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int tc_empty(struct __sk_buff *skb)
{
	return -1; /* TC_ACT_UNSPEC */
}
