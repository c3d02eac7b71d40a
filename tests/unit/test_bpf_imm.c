// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * lib/bpf_imm: load-time immediates. On crafted instructions (only plain ld_imm64s
 * carrying the mark of the id change, both halves), and on the real sockops program,
 * opened from its skeleton: the sample interval lands in its instructions and no mark
 * of it is left.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "lib/bpf_imm.h"
#include "sockops.skel.h"

static void ld_imm64(struct bpf_insn *insn, __u8 src_reg, __u64 value)
{
	memset(insn, 0, 2 * sizeof(*insn));
	insn[0].code = BPF_LD | BPF_IMM | BPF_DW;
	insn[0].dst_reg = 1;
	insn[0].src_reg = src_reg;
	insn[0].imm = (__s32)(__u32)value;
	insn[1].imm = (__s32)(__u32)(value >> 32);
}

static __u64 ld_imm64_value(const struct bpf_insn *insn)
{
	return (__u64)(__u32)insn[0].imm | (__u64)(__u32)insn[1].imm << 32;
}

/* How many plain ld_imm64s of prog hold value. */
static unsigned int count_imm(const struct bpf_program *prog, __u64 value)
{
	const struct bpf_insn *insns = bpf_program__insns(prog);
	size_t cnt = bpf_program__insn_cnt(prog);
	unsigned int found = 0;

	for (size_t i = 0; i + 1 < cnt; i++) {
		if (insns[i].code != (BPF_LD | BPF_IMM | BPF_DW))
			continue;
		if (insns[i].src_reg == 0 && ld_imm64_value(&insns[i]) == value)
			found++;
		i++;
	}
	return found;
}

static void test_rewrites_only_marked_plain_constants(void **state)
{
	const __u64 mark = REFLEX_IMM_MARK(REFLEX_IMM_SAMPLE_INTERVAL_NS);
	const __u64 value = 0x0000000112345678ULL; /* both halves must change */
	struct bpf_insn insns[11] = {};

	(void)state;
	ld_imm64(&insns[0], 0, mark);
	ld_imm64(&insns[2], BPF_PSEUDO_MAP_FD, mark); /* a map reference: libbpf's */
	ld_imm64(&insns[4], 0, REFLEX_IMM_MARK(7));   /* another id */
	insns[6].code = BPF_ALU64 | BPF_MOV | BPF_K;  /* the mark's low half, not an ld_imm64 */
	insns[6].imm = (__s32)(__u32)mark;
	ld_imm64(&insns[7], 0, mark);
	ld_imm64(&insns[9], 0, mark); /* ends the array: rewritten whole */

	assert_int_equal(bpf_imm_rewrite(insns, 11, REFLEX_IMM_SAMPLE_INTERVAL_NS, value), 3);
	assert_true(ld_imm64_value(&insns[0]) == value);
	assert_true(ld_imm64_value(&insns[7]) == value);
	assert_true(ld_imm64_value(&insns[9]) == value);
	assert_true(ld_imm64_value(&insns[2]) == mark);
	assert_true(ld_imm64_value(&insns[4]) == REFLEX_IMM_MARK(7));
	assert_int_equal(insns[6].imm, (__s32)(__u32)mark);
	/* A mark cut off by the array's end is not half rewritten. */
	assert_int_equal(bpf_imm_rewrite(insns, 1, REFLEX_IMM_SAMPLE_INTERVAL_NS, value), 0);
}

static void test_sockops_gets_its_sample_interval(void **state)
{
	const __u64 mark = REFLEX_IMM_MARK(REFLEX_IMM_SAMPLE_INTERVAL_NS);
	const __u64 interval_ns = 20ULL * 1000 * 1000;
	struct sockops_bpf *skel = sockops_bpf__open();
	struct reflex_err err = {};
	struct bpf_program *prog;
	unsigned int marks;

	(void)state;
	assert_non_null(skel);
	prog = skel->progs.reflex_sockops;
	marks = count_imm(prog, mark);
	print_message("sockops carries %u marks of the sample interval\n", marks);
	assert_true(marks >= 1);
	assert_int_equal(count_imm(prog, interval_ns), 0);

	assert_int_equal(bpf_imm_set(prog, REFLEX_IMM_SAMPLE_INTERVAL_NS, interval_ns, &err), 0);
	assert_int_equal(count_imm(prog, mark), 0);
	assert_int_equal(count_imm(prog, interval_ns), marks);

	/* No mark left: the program and its loader disagree, and the error says so. */
	assert_int_equal(bpf_imm_set(prog, REFLEX_IMM_SAMPLE_INTERVAL_NS, interval_ns, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "reflex_sockops"));
	sockops_bpf__destroy(skel);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rewrites_only_marked_plain_constants),
		cmocka_unit_test(test_sockops_gets_its_sample_interval),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
