/*
 * BDP -> packets: the one rule for a cwnd cap of `multiple` bandwidth-delay
 * products, as reflexd enforces it. The simulator's clamps (bsim_clamp_for_bdp),
 * and through them the cwnd oracle's labels, and the DQN environment's heuristic
 * baseline compute their caps with it, so what the forge and the DQN are scored
 * on is the cap reflexd would write. The only difference is what goes in: reflexd
 * passes a flow's measured max delivery rate and min RTT, the simulator the link
 * rate and the least RTT a packet can see (base RTT plus one serialization), which
 * is what reflexd would measure on that link.
 */
#ifndef REFLEX_LIB_BDP_H
#define REFLEX_LIB_BDP_H

#include <stdint.h>

/* The least cap reflexd writes (the kernel's least cwnd is 2). */
#define BDP_MIN_CAP_PACKETS 4
#define BDP_MAX_CAP_PACKETS 1000000
/* The RTT a cap allows for is at least this: below a millisecond, host scheduling
 * and ACK batching dominate the RTT (a veth pair measures ~20 us), a cap at a BDP of
 * that size throttles the flow, and the lower rate it then measures lowers the next
 * cap. Queueing under 1 ms is not worth a cap. */
#define BDP_RTT_FLOOR_US 1000

/* ceil(multiple x rate_bps / 8 x max(min_rtt_us, BDP_RTT_FLOOR_US) / 1e6 / mss)
 * packets, within [BDP_MIN_CAP_PACKETS, BDP_MAX_CAP_PACKETS]; 0 (no cap) unless
 * multiple, rate_bps, min_rtt_us and mss are all > 0. */
uint32_t bdp_cap_packets(double multiple, double rate_bps, double min_rtt_us, uint32_t mss);

#endif /* REFLEX_LIB_BDP_H */
