# reflex: quiet by default, V=1 shows every command.
#
# Conventions (so a new file needs no Makefile edit):
#   bpf/NAME.bpf.c, scripts/lab/NAME.bpf.c, tests/bench/NAME.bpf.c -> build/bpf/NAME.bpf.o and .skel.h
#   user/PART/NAME.c        a file that defines main() is the program build/NAME; every
#                           other user/PART/*.c goes into libreflex.a (a program links only
#                           the objects it uses). Includes name the part: "lib/csv.h".
#   scripts/lab/NAME.c      lab tools (not installed), built like programs
#   tests/unit/test_*.c     -> cmocka binaries (ASan+UBSan), run by `make test`
#   tests/fuzz/fuzz_*.c     -> libFuzzer binaries, corpus in tests/fuzz/corpus/NAME/
#   tests/integration/test_*.sh -> netns integration tests (root), run by `make test`
#   tests/bench/bench_*     -> `make bench`
# `make` builds plain binaries in build/; `make test` uses the sanitized tree in build/san/.

V ?= 0
ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-7s %s\n' "$(1)" "$(2)"
endif

BUILD   ?= build
SAN     ?= 0
FUZZ    ?= 0
CLANG   ?= clang
CC      := $(CLANG)
BPFTOOL ?= bpftool
LLVM_STRIP ?= llvm-strip

ifeq ($(FUZZ),1)
OUT      := $(BUILD)/fuzz
MODEFLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -DREFLEX_FUZZ
else ifeq ($(SAN),1)
OUT      := $(BUILD)/san
MODEFLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
OUT      := $(BUILD)
MODEFLAGS := -O2 -g
endif

GIT_DESCRIBE := $(shell git describe --always --dirty --tags 2>/dev/null || echo unknown)
CFLAGS  ?=
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -iquote user -I$(BUILD)/bpf \
           -DREFLEX_GIT_DESCRIBE='"$(GIT_DESCRIBE)"' $(MODEFLAGS)
# --as-needed: a binary maps only the libraries it calls (reflexd no libnetfilter_queue,
# which only the lab's trace-link uses); every mapped library is RSS.
LDFLAGS += -Wl,--as-needed
LDLIBS  := -lbpf -lelf -lz -lmnl -lnetfilter_queue -linih -lnettle -lmicrohttpd -lsystemd -lpthread -lm
BPF_ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(BPF_ARCH) -Wall -Werror -Iinclude -Ibpf -I$(BUILD)

# A program is a C file that defines main(); lab tools sit apart from production code.
USER_SRCS := $(wildcard user/*/*.c)
LAB_SRCS  := $(wildcard scripts/lab/*.c)
PROG_SRCS := $(shell grep -l '^int main.int argc' $(USER_SRCS) $(LAB_SRCS) /dev/null)
LIB_SRCS  := $(filter-out $(PROG_SRCS),$(USER_SRCS))
LIB_OBJS  := $(patsubst user/%.c,$(OUT)/obj/%.o,$(LIB_SRCS))
BINS      := $(foreach p,$(PROG_SRCS),$(OUT)/$(basename $(notdir $(p))))
obj_of     = $(patsubst scripts/lab/%.c,$(OUT)/obj/lab/%.o,$(patsubst user/%.c,$(OUT)/obj/%.o,$(1)))

BPF_SRCS  := $(wildcard bpf/*.bpf.c scripts/lab/*.bpf.c tests/bench/*.bpf.c)
BPF_OBJS  := $(foreach f,$(BPF_SRCS),$(BUILD)/bpf/$(notdir $(f:.bpf.c=.bpf.o)))
SKELS     := $(BPF_OBJS:.bpf.o=.skel.h)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRCS))
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
BENCH_SRCS := $(wildcard tests/bench/bench_*.c)
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))

.PHONY: all deps test unit fuzz integration soak bench demo models arena clean lab-down san-unit-bins fuzz-bins FORCE \
	install uninstall
.DELETE_ON_ERROR:

all: $(BINS) $(BPF_OBJS)

deps:
	$(Q)scripts/deps.sh

# --- BPF -------------------------------------------------------------------
$(BUILD)/vmlinux.h:
	$(call msg,GEN,$@)
	$(Q)command -v $(BPFTOOL) >/dev/null || { echo "$(BPFTOOL) not found: 'make deps' installs what the build needs" >&2; exit 1; }
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

define bpf_rule
$(BUILD)/bpf/%.bpf.o: $(1)/%.bpf.c $(BUILD)/vmlinux.h
	$$(call msg,BPF,$$@)
	$$(Q)mkdir -p $$(@D)
	$$(Q)$$(CLANG) $$(BPF_CFLAGS) -MMD -MP -c $$< -o $$@
	$$(Q)$$(LLVM_STRIP) -g $$@ # BTF stays; the DWARF only swelled the skeletons in reflexd's RSS
endef
$(eval $(call bpf_rule,bpf))
$(eval $(call bpf_rule,scripts/lab))
$(eval $(call bpf_rule,tests/bench))

$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

# --- userspace --------------------------------------------------------------
$(OUT)/obj/%.o: user/%.c | $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(OUT)/obj/lab/%.o: scripts/lab/%.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(OUT)/libreflex.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

define prog_rule
$(OUT)/$(basename $(notdir $(1))): $(call obj_of,$(1)) $(OUT)/libreflex.a
	$$(call msg,LINK,$$@)
	$$(Q)$$(CC) $$(CFLAGS) $$(LDFLAGS) $$^ $$(LDLIBS) -o $$@
endef
$(foreach p,$(PROG_SRCS),$(eval $(call prog_rule,$(p))))

# --- tests ------------------------------------------------------------------
$(UNIT_BINS): $(OUT)/tests/%: tests/unit/%.c $(OUT)/libreflex.a | $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -Itests -MMD -MP $< $(OUT)/libreflex.a -lcmocka $(LDLIBS) -o $@

FUZZ_CFLAGS := $(filter-out $(MODEFLAGS),$(CFLAGS)) -O1 -g -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer -DREFLEX_FUZZ
$(FUZZ_BINS): $(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/fuzz/libreflex.a
	$(call msg,FUZZ,$@)
	$(Q)$(CC) $(FUZZ_CFLAGS) $(LDFLAGS) -Itests $< $(BUILD)/fuzz/libreflex.a $(LDLIBS) -o $@

$(BENCH_BINS): $(BUILD)/bench/%: tests/bench/%.c $(BUILD)/libreflex.a | $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -Itests $< $(BUILD)/libreflex.a $(LDLIBS) -o $@

ifeq ($(FUZZ),0)
$(BUILD)/fuzz/libreflex.a: FORCE
	$(Q)$(MAKE) --no-print-directory FUZZ=1 $@
FORCE:
endif

# Sub-makes: `make test` builds the sanitized tree and the fuzzers, then runs everything.
# The bench programs are built here too, only built: `make bench` is not in CI, and
# a bench that no longer compiles went unseen for a day.
test: deps
	$(Q)$(MAKE) --no-print-directory all $(BENCH_BINS)
	$(Q)$(MAKE) --no-print-directory SAN=1 all san-unit-bins
	$(Q)$(MAKE) --no-print-directory fuzz-bins
	$(Q)BUILD=$(BUILD) tests/run.sh all

san-unit-bins: $(UNIT_BINS)
fuzz-bins: $(FUZZ_BINS)

unit: deps
	$(Q)$(MAKE) --no-print-directory SAN=1 all san-unit-bins
	$(Q)BUILD=$(BUILD) tests/run.sh unit

integration: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory SAN=1 all
	$(Q)BUILD=$(BUILD) tests/run.sh integration

fuzz: deps
	$(Q)$(MAKE) --no-print-directory fuzz-bins
	$(Q)BUILD=$(BUILD) FUZZ_SECONDS=$${FUZZ_SECONDS:-600} tests/run.sh fuzz

# Not in `make test`: the churn soak for SOAK_SECONDS (default 600; test_soak.sh alone
# runs 60 s inside `make test`).
soak: deps
	$(Q)$(MAKE) --no-print-directory SAN=1 all
	$(Q)SOAK_SECONDS=$${SOAK_SECONDS:-600} REFLEX_BIN=$(BUILD)/san REFLEX_BPF=$(BUILD)/bpf \
		timeout --kill-after=10 $$(( $${SOAK_SECONDS:-600} + 300 )) bash tests/integration/test_soak.sh

bench: deps
	$(Q)$(MAKE) --no-print-directory all $(BENCH_BINS)
	$(Q)BUILD=$(BUILD) REFLEX_BIN=$(BUILD) tests/bench/run.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)REFLEX_BIN=$(BUILD) scripts/demo.sh

models: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)REFLEX_BIN=$(BUILD) scripts/build-models.sh

# --- install ----------------------------------------------------------------
# `make install [PREFIX=/usr/local] [DESTDIR=...]`: an existing reflexd.conf is never
# overwritten (the shipped one is also at share/reflex/reflexd.conf.example).
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SUBST      := sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@DATADIR@|$(DATADIR)|g'
MODEL_FILES := $(wildcard models/*.reflex)
MAN_PAGES  := $(wildcard scripts/man/*.[158])
UNITS      := reflexd.service reflexd@.service

install: all
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/reflex/models \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/reflex \
		$(addprefix $(DESTDIR)$(MANDIR)/man,$(sort $(subst .,,$(suffix $(MAN_PAGES)))))
	$(Q)install -m 0755 $(BUILD)/reflexd $(DESTDIR)$(SBINDIR)/reflexd
	$(Q)install -m 0755 $(BUILD)/reflexctl $(BUILD)/reflex-forge $(DESTDIR)$(BINDIR)/
	$(Q)install -m 0644 $(MODEL_FILES) $(DESTDIR)$(DATADIR)/reflex/models/
	$(Q)$(SUBST) scripts/service/reflexd.conf.in > $(DESTDIR)$(DATADIR)/reflex/reflexd.conf.example
	$(Q)$(foreach u,$(UNITS),$(SUBST) scripts/service/$(u).in > $(DESTDIR)$(UNITDIR)/$(u) && chmod 0644 $(DESTDIR)$(UNITDIR)/$(u) &&) true
	$(Q)$(foreach m,$(MAN_PAGES),install -m 0644 $(m) $(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m)))/ &&) true
	$(Q)if [ -e $(DESTDIR)$(SYSCONFDIR)/reflex/reflexd.conf ]; then \
		echo "  keeping $(DESTDIR)$(SYSCONFDIR)/reflex/reflexd.conf (the shipped one: $(DATADIR)/reflex/reflexd.conf.example)"; \
	else install -m 0644 $(DESTDIR)$(DATADIR)/reflex/reflexd.conf.example $(DESTDIR)$(SYSCONFDIR)/reflex/reflexd.conf; fi

# Removes what install put there; a reflexd.conf that was edited stays.
uninstall:
	$(call msg,UNINST,$(DESTDIR)$(PREFIX))
	$(Q)if cmp -s $(DESTDIR)$(SYSCONFDIR)/reflex/reflexd.conf $(DESTDIR)$(DATADIR)/reflex/reflexd.conf.example; then \
		rm -f $(DESTDIR)$(SYSCONFDIR)/reflex/reflexd.conf; \
	elif [ -e $(DESTDIR)$(SYSCONFDIR)/reflex/reflexd.conf ]; then \
		echo "  keeping the edited $(DESTDIR)$(SYSCONFDIR)/reflex/reflexd.conf"; fi
	$(Q)rm -f $(DESTDIR)$(SBINDIR)/reflexd $(DESTDIR)$(BINDIR)/reflexctl $(DESTDIR)$(BINDIR)/reflex-forge \
		$(addprefix $(DESTDIR)$(DATADIR)/reflex/models/,$(notdir $(MODEL_FILES))) \
		$(DESTDIR)$(DATADIR)/reflex/reflexd.conf.example $(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS)) \
		$(foreach m,$(MAN_PAGES),$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m)))
	$(Q)rmdir $(DESTDIR)$(DATADIR)/reflex/models $(DESTDIR)$(DATADIR)/reflex $(DESTDIR)$(SYSCONFDIR)/reflex 2>/dev/null || true

# The arena (scripts/arena): every scenario, or SCENARIO=NAME[,NAME]; ROUNDS=N (default 3).
# Results and the report land in $(BUILD)/arena (or $(BUILD)/arena-SCENARIO), replaced.
ARENA_OUT = $(BUILD)/arena$(if $(SCENARIO),-$(subst $(comma),+,$(SCENARIO)))
comma := ,
arena: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)rm -rf $(ARENA_OUT)
	$(Q)REFLEX_BIN=$(BUILD) scripts/arena/arena.sh --out $(ARENA_OUT) --rounds $(or $(ROUNDS),3) \
		$(if $(SCENARIO),--scenario $(SCENARIO))
	$(Q)scripts/arena/report.sh $(ARENA_OUT)

lab-down:
	$(Q)scripts/lab/lab.sh down

clean:
	$(call msg,CLEAN,$(BUILD))
	$(Q)rm -rf $(BUILD)

-include $(wildcard $(OUT)/obj/*/*.d $(OUT)/tests/*.d $(BUILD)/bpf/*.d)
