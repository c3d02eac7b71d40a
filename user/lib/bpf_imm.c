// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
#include "lib/bpf_imm.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdlib.h>
#include <string.h>

static __u64 ld_imm64_value(const struct bpf_insn *insn)
{
	return (__u64)(__u32)insn[0].imm | (__u64)(__u32)insn[1].imm << 32;
}

unsigned int bpf_imm_rewrite(struct bpf_insn *insns, size_t cnt, enum reflex_imm id, __u64 value)
{
	unsigned int rewritten = 0;

	for (size_t i = 0; i + 1 < cnt; i++) {
		if (insns[i].code != (BPF_LD | BPF_IMM | BPF_DW))
			continue;
		/* src_reg 0: a plain constant; the others (maps, BTF ids) libbpf relocates. */
		if (insns[i].src_reg == 0 && ld_imm64_value(&insns[i]) == REFLEX_IMM_MARK(id)) {
			insns[i].imm = (__s32)(__u32)value;
			insns[i + 1].imm = (__s32)(__u32)(value >> 32);
			rewritten++;
		}
		i++; /* the second half of the instruction */
	}
	return rewritten;
}

/*
 * libbpf 1.1 keeps an opened program's own instructions as the ELF had them until
 * load, and relocates by instruction index; a plain ld_imm64 has no relocation, so
 * rewriting its immediate in place, the count unchanged, is safe before load. (Its
 * subprograms' instructions are appended only at load: a mark must sit in the
 * program's own function.)
 */
int bpf_imm_set(struct bpf_program *prog, enum reflex_imm id, __u64 value, struct reflex_err *err)
{
	size_t cnt = bpf_program__insn_cnt(prog);
	struct bpf_insn *copy = malloc(cnt * sizeof(*copy));
	int ret;

	if (!copy) {
		reflex_err_set(err, "cannot rewrite %s's load-time constants: out of memory", bpf_program__name(prog));
		return -ENOMEM;
	}
	memcpy(copy, bpf_program__insns(prog), cnt * sizeof(*copy));
	if (!bpf_imm_rewrite(copy, cnt, id, value)) {
		reflex_err_set(err, "BPF program %s has no load-time constant %d: program and reflexd disagree",
			       bpf_program__name(prog), id);
		ret = -ENOENT;
		goto cleanup;
	}
	ret = bpf_program__set_insns(prog, copy, cnt);
	if (ret)
		reflex_err_set(err, "cannot rewrite %s's load-time constants: %s", bpf_program__name(prog),
			       strerror(-ret));
cleanup:
	free(copy);
	return ret;
}
