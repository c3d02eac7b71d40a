#!/usr/bin/env bash
# The folder rules of user/ (README, "How it works"): a part includes only from the
# parts below it, and reflexd links none of the DQN's training code.
#   lib < model, sim < dqn < router < reflexd < forge < ctl
# model and sim are side by side: neither includes the other.
# usage: tests/layout/check_layers.sh [BUILD_DIR]   (with a build, also checks nm reflexd)
set -u
cd "$(dirname "$0")/../.."
declare -A rank=([lib]=0 [model]=1 [sim]=1 [dqn]=2 [router]=3 [reflexd]=4 [forge]=5 [ctl]=6)
bad=0

for part in "${!rank[@]}"; do
	[ -d "user/$part" ] || { echo "FAIL: user/$part is missing"; bad=1; continue; }
done
for dir in user/*/; do
	part=$(basename "$dir")
	[ -n "${rank[$part]:-}" ] || { echo "FAIL: user/$part is not a known part (add it to $0)"; bad=1; continue; }
	while IFS=: read -r file line inc; do
		other=${inc%%/*}
		[ -n "${rank[$other]:-}" ] || continue
		if [ "$other" != "$part" ] && [ "${rank[$other]}" -ge "${rank[$part]}" ]; then
			echo "FAIL: $file:$line includes $inc: $part may not include from $other"
			bad=1
		fi
	done < <(grep -Hn '^#include "[a-z]*/' "$dir"*.c "$dir"*.h 2>/dev/null |
		sed -E 's/^([^:]*):([0-9]*):#include "([^"]*)".*/\1:\2:\3/')
done

# Training stays out of the daemon: the learner's update step, replay, Adam and the
# lean int8 export stay (for --learn); the checkpoint format, simulator environment,
# episode trainer, evaluation, agreement check, best-model export and the forge do not.
bin=${1:+$1/reflexd}
if [ -n "$bin" ]; then
	if [ ! -x "$bin" ]; then
		echo "FAIL: no $bin to check"; bad=1
	else
		found=$(nm "$bin" | awk '{ print $NF }' | grep -xE \
			'dqn_checkpoint_[a-z_]+|dqn_env_[a-z_]+|dqn_scenario_sample|dqn_source_sample|dqn_trace_[a-z_]+|dqn_eval_traces|dqn_train|dqn_trainer_(run|report|use_traces)|dqn_evaluate[a-z_]*|dqn_collect_[a-z_]+|dqn_int8_agreement|dqn_build_best_model|dqn_(export|write)_model|forge_[a-z_]+' || true)
		if [ -n "$found" ]; then
			echo "FAIL: $bin links training code: $(echo "$found" | paste -sd' ')"; bad=1
		fi
	fi
fi
[ $bad -eq 0 ] && echo "layers: ok"
exit $bad
