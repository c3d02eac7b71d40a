/* BDP -> packets (lib/bdp.h). */
#include "lib/bdp.h"

#include <math.h>

uint32_t bdp_cap_packets(double multiple, double rate_bps, double min_rtt_us, uint32_t mss)
{
	double packets;

	if (!(multiple > 0) || !(rate_bps > 0) || !(min_rtt_us > 0) || !mss)
		return 0;
	packets = multiple * (rate_bps / 8.0) * (fmax(min_rtt_us, BDP_RTT_FLOOR_US) / 1e6) / mss;
	if (packets < BDP_MIN_CAP_PACKETS)
		return BDP_MIN_CAP_PACKETS;
	return packets > BDP_MAX_CAP_PACKETS ? BDP_MAX_CAP_PACKETS : (uint32_t)ceil(packets);
}
