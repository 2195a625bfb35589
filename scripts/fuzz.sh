#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/README.md) for a while, one after another.
#
#   scripts/fuzz.sh              # 1 minute per target
#   scripts/fuzz.sh 10           # 10 minutes per target
#   FUZZ_SECONDS=25 scripts/fuzz.sh        # seconds instead (CI: 25 s per target)
#   TARGETS="cursor config" scripts/fuzz.sh 5
#   JOBS=2 scripts/fuzz.sh 10    # two fuzzing processes per target (one per core)
#
# Each target starts from its committed seeds (fuzz/seeds/<target>/, when it has some) and
# keeps what it learns in fuzz/corpus/<target>/ (git-ignored), so a second run goes on where the
# first stopped; it uses its dictionary (fuzz/*.dict, see DICTS below). A crash, a panic, an
# input that runs longer than 10 s (a hang) or more than 2 GB of memory stops that target and
# leaves the input in fuzz/artifacts/<target>/; the script goes on with the next target, prints
# one line per target (executions, corpus size, the outcome) and exits 1 if any target failed.
#
# Needs the nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`,
# `cargo install cargo-fuzz`). Without them it says so and exits 0, unless
# SCIMD_REQUIRE_FUZZ=1 (then 1): CI sets it where it installed them.
set -euo pipefail

ROOT=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
MINUTES=${1:-1}
SECONDS_EACH=${FUZZ_SECONDS:-$((MINUTES * 60))}
JOBS=${JOBS:-1}

missing() {
  echo "fuzzing SKIPPED: $1 (fuzz/README.md says how to install it)" >&2
  if [ "${SCIMD_REQUIRE_FUZZ:-0}" = 1 ]; then exit 1; fi
  exit 0
}
rustup toolchain list 2>/dev/null | grep -q '^nightly' || missing "no nightly toolchain"
cargo +nightly fuzz --version >/dev/null 2>&1 || missing "cargo-fuzz is not installed"

cd "$ROOT/fuzz"
TARGETS=${TARGETS:-$(cargo +nightly fuzz list)}

# Each target's dictionary: its input's keywords (libFuzzer takes one file; some targets read
# two languages, so their dictionaries are joined).
declare -A DICTS=(
  [filter_parse]="filter.dict"
  [patch_path]="filter.dict"
  [patch_apply]="patch_apply.dict filter.dict"
  [search_request]="json.dict filter.dict"
  [resource_validate]="json.dict"
  [bulk_request]="json.dict"
  [workplace_documents]="json.dict filter.dict"
  [config]="config.dict"
)

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "building the fuzz targets (nightly, AddressSanitizer)" >&2
cargo +nightly fuzz build >&2

failed=0
summary=()
for target in $TARGETS; do
  mkdir -p "corpus/$target" "artifacts/$target"
  inputs=("corpus/$target")
  [ -d "seeds/$target" ] && inputs+=("seeds/$target")
  options=(-max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
  if [ -n "${DICTS[$target]:-}" ]; then
    # shellcheck disable=SC2086 # a list of file names
    (cd "$ROOT/fuzz" && cat ${DICTS[$target]}) >"$WORK/$target.dict"
    options+=(-dict="$WORK/$target.dict")
  fi
  if [ "$JOBS" -gt 1 ]; then
    options+=(-fork="$JOBS" -ignore_crashes=0)
  fi
  echo "fuzzing $target for ${SECONDS_EACH}s" >&2
  if cargo +nightly fuzz run "$target" "${inputs[@]}" -- "${options[@]}" >"$WORK/$target.log" 2>&1; then
    outcome=ok
  else
    outcome="FAILED (see fuzz/artifacts/$target/)"
    failed=1
    tail -n 40 "$WORK/$target.log" >&2
  fi
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$WORK/$target.log" | awk '{s += $2} END {print s + 0}')
  if [ "$runs" = 0 ]; then
    # -fork prints no final stats: take the last status line's count.
    runs=$(grep -oE '^#[0-9]+' "$WORK/$target.log" | tail -n1 | tr -d '#')
  fi
  size=$(find "corpus/$target" -type f | wc -l)
  summary+=("$(printf '%-20s %12s executions  corpus %6s  %s' "$target" "${runs:-?}" "$size" "$outcome")")
done

printf '%s\n' "${summary[@]}"
exit "$failed"
