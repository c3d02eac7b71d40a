// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Crafted Ethernet frames for BPF_PROG_TEST_RUN (tests/unit/test_tc_packets.c,
 * tests/bench/bench_bpf.c): append headers in order, then finish() fixes the IP lengths. */
#ifndef REFLEX_TEST_PACKETS_H
#define REFLEX_TEST_PACKETS_H

#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ETH_HLEN 14
#define IPV4_HLEN 20
#define IPV6_HLEN 40
#define TCP_HLEN 20
#define UDP_HLEN 8

struct frame {
	uint8_t b[16384];
	size_t len;
	size_t l3;  /* offset of the IP header, for lengths fixed up at the end */
};

static inline void put(struct frame *f, const void *bytes, size_t n)
{
	if (f->len + n > sizeof(f->b))
		abort(); /* a test frame larger than the buffer: a bug in the test */
	memcpy(f->b + f->len, bytes, n);
	f->len += n;
}

static inline void put16(struct frame *f, uint16_t host)
{
	uint16_t net = htons(host);

	put(f, &net, 2);
}

static inline void put32(struct frame *f, uint32_t host)
{
	uint32_t net = htonl(host);

	put(f, &net, 4);
}

static inline void put_eth(struct frame *f, uint16_t ethertype)
{
	static const uint8_t macs[12] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2 };

	put(f, macs, sizeof(macs));
	put16(f, ethertype);
}

/* An IPv4 header with option_words extra 32-bit words (NOPs); total length fixed by finish(). */
static inline void put_ipv4(struct frame *f, uint8_t proto, const char *src, const char *dst, unsigned option_words,
		     uint16_t frag_off)
{
	uint32_t saddr, daddr;

	if (inet_pton(AF_INET, src, &saddr) != 1 || inet_pton(AF_INET, dst, &daddr) != 1)
		abort();
	f->l3 = f->len;
	put(f, (uint8_t[]){ (uint8_t)(0x40 | (5 + option_words)), 0x28 /* DSCP 10 */ }, 2);
	put16(f, 0);            /* total length */
	put16(f, 0x1234);       /* id */
	put16(f, frag_off);
	put(f, (uint8_t[]){ 64, proto }, 2);
	put16(f, 0);            /* checksum: nothing on the test path checks it */
	put(f, &saddr, 4);
	put(f, &daddr, 4);
	for (unsigned i = 0; i < option_words; i++)
		put(f, (uint8_t[]){ 1, 1, 1, 1 }, 4);
}

static inline void put_ipv6(struct frame *f, uint8_t nexthdr, const char *src, const char *dst)
{
	uint8_t saddr[16], daddr[16];

	if (inet_pton(AF_INET6, src, saddr) != 1 || inet_pton(AF_INET6, dst, daddr) != 1)
		abort();
	f->l3 = f->len;
	put32(f, 0x60000000);
	put16(f, 0);            /* payload length */
	put(f, (uint8_t[]){ nexthdr, 64 }, 2);
	put(f, saddr, 16);
	put(f, daddr, 16);
}

/* A TCP header with option bytes (padded with NOPs to a multiple of 4). */
static inline void put_tcp(struct frame *f, uint16_t sport, uint16_t dport, const uint8_t *opts, size_t opt_len)
{
	size_t padded = (opt_len + 3) / 4 * 4;

	put16(f, sport);
	put16(f, dport);
	put32(f, 1000);         /* seq */
	put32(f, 2000);         /* ack */
	put(f, (uint8_t[]){ (uint8_t)((5 + padded / 4) << 4), 0x10 /* ACK */ }, 2);
	put16(f, 65535);
	put16(f, 0);
	put16(f, 0);
	if (opt_len)
		put(f, opts, opt_len);
	for (size_t i = opt_len; i < padded; i++)
		put(f, (uint8_t[]){ 1 }, 1);
}

static inline void put_udp(struct frame *f, uint16_t sport, uint16_t dport)
{
	put16(f, sport);
	put16(f, dport);
	put16(f, 0);
	put16(f, 0);
}

static inline void put_payload(struct frame *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put(f, (uint8_t[]){ (uint8_t)i }, 1);
}

/* Sets the IP length fields from the frame's length. */
static inline void finish(struct frame *f)
{
	uint16_t net;

	if ((f->b[f->l3] >> 4) == 4) {
		net = htons((uint16_t)(f->len - f->l3));
		memcpy(f->b + f->l3 + 2, &net, 2);
	} else {
		net = htons((uint16_t)(f->len - f->l3 - IPV6_HLEN));
		memcpy(f->b + f->l3 + 4, &net, 2);
	}
}

#endif
