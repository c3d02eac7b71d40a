#!/usr/bin/env bash
# The shipped models are what `make models` builds from the shipped traces: rebuild
# both from models/traces/ into a scratch directory and compare with models/*.reflex.
# Everything must match (feature schema, outputs and bounds, trees, metadata) except
# created_at and trainer_commit (the git describe of whatever tree rebuilds them).
# Then both pass `reflexctl model verify`, and eval gives legal values on a trace.
source "$(dirname "$0")/lib.sh"

TMP=$(mktemp -d)
on_exit "rm -rf $TMP"
MODELS_SKIP_DQN=1 REFLEX_BIN=$REFLEX_BIN bash "$REPO/scripts/build-models.sh" "$TMP" >"$TMP/build.log" 2>&1 ||
	fail "build-models.sh failed: $(tail -20 "$TMP/build.log")"

comparable() { # FILE: inspect JSON without what may differ between two builds
	"$REFLEX_BIN/reflexctl" model inspect --json "$1" |
		jq -S 'del(.file, .file_size, .crc, .sections) |
		       .metadata |= (split("\n") | map(select(test("^(created_at|trainer_commit):") | not)) | join("\n"))'
}
for model in batching cwnd; do
	"$REFLEX_BIN/reflexctl" model verify "$REPO/models/$model.reflex" >/dev/null || fail "committed $model.reflex does not verify"
	comparable "$REPO/models/$model.reflex" >"$TMP/$model.committed.json"
	comparable "$TMP/$model.reflex" >"$TMP/$model.rebuilt.json"
	diff -u "$TMP/$model.committed.json" "$TMP/$model.rebuilt.json" >"$TMP/$model.diff" ||
		fail "rebuilt $model.reflex differs from the committed one: $(head -40 "$TMP/$model.diff")"
	log "$model.reflex: rebuilt identical (but created_at, trainer_commit)"
done

# eval over real windows of a trace: every output inside its legal range.
zcat "$REPO/models/traces/mixed.csv.gz" | awk -F, 'NR == 1 || $2 == "flow"' | head -400 >"$TMP/flows.csv"
"$REFLEX_BIN/reflexctl" model eval "$REPO/models/cwnd.reflex" --csv "$TMP/flows.csv" >"$TMP/cwnd.out" || fail "eval cwnd"
bad=$(awk -F, 'NR > 1 && ($1 < 0 || $1 > 4)' "$TMP/cwnd.out" | wc -l)
expect_eq "$bad" 0 "cwnd_bdp_multiple outside 0..4"
zcat "$REPO/models/traces/mixed.csv.gz" | awk -F, 'NR == 1 || $2 == "iface"' | head -400 >"$TMP/iface.csv"
"$REFLEX_BIN/reflexctl" model eval "$REPO/models/batching.reflex" --csv "$TMP/iface.csv" >"$TMP/batching.out" || fail "eval batching"
bad=$(awk -F, 'NR > 1 && ($1 < 1 || $1 > 64 || $2 < 50 || $2 > 4000)' "$TMP/batching.out" | wc -l)
expect_eq "$bad" 0 "batching outputs outside their ranges"
log "distinct cwnd_bdp_multiple decided on 400 flow windows: $(tail -n +2 "$TMP/cwnd.out" | sort -u | tr '\n' ' ')"
log "all checks passed"
