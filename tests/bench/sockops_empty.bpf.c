// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * The baseline of bench_telemetry.sh: a sockops program that does nothing, attached
 * to the same cgroup as reflex's. The callbacks a socket enables are the socket's,
 * not the program's, so it runs on exactly the callbacks reflex's program runs on
 * and its bpf_stats run time is the fixed cost of any sockops program there.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("sockops")
int sockops_empty(struct bpf_sock_ops *skops)
{
	return 1;
}
