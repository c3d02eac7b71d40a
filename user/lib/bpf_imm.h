/*
 * Load-time immediates (include/reflex.h, REFLEX_IMM_MARK): rewrites every marked
 * `ld_imm64` of a BPF program to its value, between the object's open and its load.
 * Depends on libbpf and lib/ only.
 */
#ifndef REFLEX_LIB_BPF_IMM_H
#define REFLEX_LIB_BPF_IMM_H

#include <linux/types.h>

#include "lib/error.h"
#include "reflex.h"

struct bpf_program;
struct bpf_insn;

/* In a copy of insns[0..cnt): every marked ld_imm64 of id gets value. Returns how many
 * it rewrote. */
unsigned int bpf_imm_rewrite(struct bpf_insn *insns, size_t cnt, enum reflex_imm id, __u64 value);

/* The same on an opened, not yet loaded program. A program without the mark is an
 * error (-ENOENT, named in err): the program and its loader disagree. */
int bpf_imm_set(struct bpf_program *prog, enum reflex_imm id, __u64 value, struct reflex_err *err);

#endif
