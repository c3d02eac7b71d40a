/* reflexd's router options: --path parsing and the option set's checks. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "router/router.h"

/* Rewards of a flow interval this long hold a few RTTs of even a 100 ms path and
 * enough packets of a 50 packets/s call to tell 3 % loss from none. */
#define DEFAULT_REWARD_INTERVAL_NS (500ULL * 1000 * 1000)

static int fail(struct reflex_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct reflex_err *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reflex_err_vset(err, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int fail_at(struct reflex_err *err, const char *arg, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* "--path 'ARG': byte AT: ...": the argument is the text the offset points into. */
static int fail_at(struct reflex_err *err, const char *arg, size_t at, const char *fmt, ...)
{
	char name[sizeof(err->file)];
	va_list ap;

	va_start(ap, fmt);
	reflex_err_vset(err, fmt, ap);
	va_end(ap);
	snprintf(name, sizeof(name), "--path '%s'", arg);
	reflex_err_at_file(err, name);
	reflex_err_at_offset(err, (long long)at);
	return -EINVAL;
}

static bool path_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-';
}

/* The kernel's dev_valid_name. */
static bool ifname_char(char c)
{
	return c != '/' && c != ':' && !isspace((unsigned char)c) && c != '\0';
}

static int parse_name(const char *arg, size_t n, struct router_path *out, struct reflex_err *err)
{
	if (n == 0)
		return fail_at(err, arg, 0, "the path name is empty (NAME:IF:NEXTHOP)");
	if (n >= sizeof(out->name))
		return fail_at(err, arg, 0, "the path name is longer than %zu characters", sizeof(out->name) - 1);
	for (size_t i = 0; i < n; i++)
		if (!path_name_char(arg[i]))
			return fail_at(err, arg, i, "'%c' is not allowed in a path name (A-Z a-z 0-9 _ . -)",
				       arg[i]);
	memcpy(out->name, arg, n);
	out->name[n] = '\0';
	return 0;
}

static int parse_ifname(const char *arg, size_t off, size_t n, struct router_path *out, struct reflex_err *err)
{
	const char *s = arg + off;

	if (n == 0)
		return fail_at(err, arg, off, "the interface name is empty");
	if (n >= sizeof(out->ifname))
		return fail_at(err, arg, off, "the interface name is longer than %zu characters",
			       sizeof(out->ifname) - 1);
	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return fail_at(err, arg, off, "'%.*s' is not an interface name", (int)n, s);
	for (size_t i = 0; i < n; i++)
		if (!ifname_char(s[i]))
			return fail_at(err, arg, off + i, "an interface name has no '/', ':' or spaces");
	memcpy(out->ifname, s, n);
	out->ifname[n] = '\0';
	return 0;
}

static bool v4_usable(const struct in_addr *a)
{
	uint32_t h = ntohl(a->s_addr);

	/* Unspecified means "none" in the BPF map; multicast and broadcast are no gateway. */
	return h != 0 && (h >> 28) != 0xe && h != 0xffffffffu;
}

static bool v6_usable(const struct in6_addr *a)
{
	return !IN6_IS_ADDR_UNSPECIFIED(a) && !IN6_IS_ADDR_MULTICAST(a);
}

static int parse_nexthop(const char *arg, size_t off, size_t n, struct router_path *out, struct reflex_err *err)
{
	char text[INET6_ADDRSTRLEN + 1];
	struct in6_addr a6;
	struct in_addr a4;

	if (n == 0)
		return fail_at(err, arg, off, "a next hop address is empty");
	if (n >= sizeof(text))
		return fail_at(err, arg, off, "'%.*s' is not an IPv4 or IPv6 address", (int)n,
			       arg + off);
	memcpy(text, arg + off, n);
	text[n] = '\0';
	if (inet_pton(AF_INET, text, &a4) == 1) {
		if (out->has_nexthop4)
			return fail_at(err, arg, off, "a second IPv4 next hop (one per family)");
		if (!v4_usable(&a4))
			return fail_at(err, arg, off, "%s cannot be a next hop", text);
		out->nexthop4 = a4;
		out->has_nexthop4 = true;
		return 0;
	}
	if (inet_pton(AF_INET6, text, &a6) == 1) {
		if (out->has_nexthop6)
			return fail_at(err, arg, off, "a second IPv6 next hop (one per family)");
		if (!v6_usable(&a6))
			return fail_at(err, arg, off, "%s cannot be a next hop", text);
		out->nexthop6 = a6;
		out->has_nexthop6 = true;
		return 0;
	}
	return fail_at(err, arg, off, "'%s' is not an IPv4 or IPv6 address", text);
}

int router_parse_path(const char *arg, struct router_path *out, struct reflex_err *err)
{
	const char *colon1, *colon2;
	size_t off, total;
	int ret;

	memset(out, 0, sizeof(*out));
	total = strnlen(arg, 4096);
	if (total >= 4096)
		return fail(err, "--path: argument longer than 4095 bytes");
	colon1 = strchr(arg, ':');
	if (!colon1)
		return fail(err, "--path '%s': not NAME:IF:NEXTHOP (no ':' after the name)", arg);
	colon2 = strchr(colon1 + 1, ':');
	if (!colon2)
		return fail(err, "--path '%s': not NAME:IF:NEXTHOP (no ':' after the interface)", arg);
	ret = parse_name(arg, colon1 - arg, out, err);
	if (ret)
		return ret;
	ret = parse_ifname(arg, colon1 + 1 - arg, colon2 - colon1 - 1, out, err);
	if (ret)
		return ret;
	/* IPv6 addresses hold ':' themselves: everything after the second ':' is next hops. */
	off = colon2 + 1 - arg;
	for (;;) {
		const char *comma = strchr(arg + off, ',');
		size_t n = comma ? (size_t)(comma - arg) - off : total - off;

		ret = parse_nexthop(arg, off, n, out, err);
		if (ret)
			return ret;
		if (!comma)
			break;
		off += n + 1;
	}
	return 0;
}

void router_opts_init(struct router_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->pin_dir = REFLEX_DEFAULT_PIN_DIR;
	bandit_config_default(&o->bandit, BANDIT_MODE_UCB1);
	o->sample_interval_ns = REFLEX_DEFAULT_SAMPLE_INTERVAL_NS;
	o->flush_threshold = REFLEX_DEFAULT_FLUSH_THRESHOLD;
	o->max_batch_delay_us = REFLEX_DEFAULT_MAX_BATCH_DELAY_US;
	o->reward_interval_ns = DEFAULT_REWARD_INTERVAL_NS;
	o->mark_base = ROUTER_DEFAULT_MARK_BASE;
	o->mark_mask = ROUTER_DEFAULT_MARK_MASK;
}

int router_opts_set_mark(uint32_t *out, const char *option, const char *value, struct reflex_err *err)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(value, &end, 0);
	if (errno || end == value || *end || value[0] == '-' || v == 0 || v > 0xffffffffULL)
		return fail(err, "%s '%s': not a number in 1..0xffffffff", option, value);
	*out = (uint32_t)v;
	return 0;
}

uint32_t router_path_mark(const struct router_opts *o, int path)
{
	uint32_t step = o->mark_mask & -o->mark_mask; /* the mask's lowest bit */

	return o->mark_base + (uint32_t)path * step;
}

/* Every path's mark nonzero, inside the mask and its own. */
static int marks_check(const struct router_opts *o, struct reflex_err *err)
{
	uint64_t step = o->mark_mask & -o->mark_mask;
	uint64_t last = (uint64_t)o->mark_base + (uint64_t)(o->n_paths - 1) * step;

	if (o->mark_base & ~o->mark_mask)
		return fail(err, "--mark-base %#x has bits outside --mark-mask %#x", o->mark_base, o->mark_mask);
	if (last > 0xffffffffULL || ((uint32_t)last & ~o->mark_mask) || (uint32_t)last < o->mark_base)
		return fail(err, "--mark-base %#x + %d paths do not fit in --mark-mask %#x (path i's mark is "
				      "base + i x %#llx)", o->mark_base, o->n_paths, o->mark_mask,
			    (unsigned long long)step);
	return 0;
}

int router_opts_add_path(struct router_opts *o, const char *arg, struct reflex_err *err)
{
	struct router_path p;
	int ret = router_parse_path(arg, &p, err);

	if (ret)
		return ret;
	if (o->n_paths >= ROUTER_MAX_PATHS) {
		reflex_err_set(err, "--path '%s': at most %d paths", arg, ROUTER_MAX_PATHS);
		return -ENOSPC;
	}
	for (int i = 0; i < o->n_paths; i++) {
		if (!strcmp(o->path[i].name, p.name)) {
			reflex_err_set(err, "--path '%s': a path named '%s' was given already", arg, p.name);
			return -EEXIST;
		}
		/* Return traffic is told apart by the interface it arrives on. */
		if (!strcmp(o->path[i].ifname, p.ifname)) {
			reflex_err_set(err, "--path '%s': interface %s is path '%s' already (one path per interface)",
				 arg, p.ifname, o->path[i].name);
			return -EEXIST;
		}
	}
	o->path[o->n_paths++] = p;
	return 0;
}

int router_opts_set_bandit(struct router_opts *o, const char *mode, struct reflex_err *err)
{
	int m = bandit_mode_from_name(mode);

	if (m < 0)
		return fail(err, "--bandit '%s': not ucb1, discounted, sliding-window or round-robin", mode);
	bandit_config_default(&o->bandit, (enum bandit_mode)m);
	return 0;
}

int router_opts_set_bandit_c(struct router_opts *o, const char *value, struct reflex_err *err)
{
	char *end;
	double c;

	errno = 0;
	c = strtod(value, &end);
	if (errno || end == value || *end || !isfinite(c) || c < 0 || c > 100)
		return fail(err, "--bandit-c '%s': not a number in 0..100", value);
	o->bandit.c = c;
	return 0;
}

int router_opts_check(const struct router_opts *o, struct reflex_err *err)
{
	char why[128];

	if (!o->lan || !o->lan[0])
		return fail(err, "--lan IF is required with --path");
	if (strnlen(o->lan, IF_NAMESIZE) >= IF_NAMESIZE)
		return fail(err, "--lan '%s': longer than %d characters", o->lan, IF_NAMESIZE - 1);
	if (o->n_paths < 1)
		return fail(err, "--lan needs at least one --path NAME:IF:NEXTHOP");
	for (int i = 0; i < o->n_paths; i++)
		if (!strcmp(o->path[i].ifname, o->lan))
			return fail(err, "--path '%s': interface %s is the --lan interface", o->path[i].name, o->lan);
	if (!o->pin_dir || o->pin_dir[0] != '/')
		return fail(err, "--pin-dir must be an absolute path");
	if (o->sample_interval_ns == 0 || o->flush_threshold == 0 || o->max_batch_delay_us == 0 ||
	    o->reward_interval_ns < o->sample_interval_ns)
		return fail(err, "router: sample interval, flush threshold and batch delay must be > 0 and the "
				      "reward interval at least one sample interval");
	if (marks_check(o, err))
		return -EINVAL;
	if (bandit_config_check(&o->bandit, why, sizeof(why)))
		return fail(err, "%s", why);
	return 0;
}
