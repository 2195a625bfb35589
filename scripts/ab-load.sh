#!/usr/bin/env bash
# A/B load comparison: what a setting costs per request, on a machine whose speed moves.
#
#   scripts/ab-load.sh "SCIMD_REQUEST_LOG=off" "SCIMD_REQUEST_LOG=on"
#   PAIRS=4 ROUNDS=3 DURATION=3 SCENARIOS="get patch" scripts/ab-load.sh "A_ENV" "B_ENV"
#   SCIMD=/path/to/other/scimd scripts/ab-load.sh ...   # another build, not this checkout's
#   SCIMD=/path/to/old SCIMD_B=/path/to/new scripts/ab-load.sh "" ""   # two builds, A against B
#
# PAIRS times (default 3), starts two release scimd servers on fresh SQLite databases, both
# pinned to CPU 0 (as scripts/load.sh pins one), the first with the environment A, the second
# with B (each a space-separated list of VAR=value). Seeds N users (default 3000) into each
# with the shared harness's Lua, then, ROUNDS times (default 3), runs each scenario for
# DURATION seconds (default 3, after 2 s of warm-up) against both, A first in odd rounds and B
# first in even ones, with wrk pinned to CPU 1. Prints, per scenario, the median requests per
# second of each, and the median server CPU time per request (user + system time of the scimd
# process over the run, divided by the requests answered), over every round of every pair.
#
# Why not scripts/load.sh twice: this machine's speed moves by tens of percent within a minute,
# so two load.sh runs a minute apart differ by more than a setting costs. Here A and B are loaded
# a few seconds apart, round after round, and CPU time per request does not count the time the
# server waited for a core it shares. Why fresh pairs: one server process keeps its own speed
# (where its heap and its database landed) for its life, and two identical servers measured
# here differed by up to 12%; several pairs average that out. With the defaults, a cost of
# about 5% shows; compare one setting against itself (A = B) to see the noise of the hour.
set -euo pipefail

A_ENV=${1?usage: scripts/ab-load.sh "A_ENV" "B_ENV"}
B_ENV=${2?usage: scripts/ab-load.sh "A_ENV" "B_ENV"}
ROOT=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
PAIRS=${PAIRS:-3}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3}
SCENARIOS=${SCENARIOS:-"get filter post patch"}
export N=${N:-3000} PREFIX=user

command -v wrk >/dev/null || { echo "wrk not found: run scripts/load.sh once (it installs it)" >&2; exit 2; }
SOURCE="$ROOT/../shared/bench"
[ -f "$SOURCE/scim-load.lua" ] || SOURCE="$ROOT/scripts/bench"
if [ -z "${SCIMD:-}" ]; then
  cargo build --release --quiet -p scimd --manifest-path "$ROOT/Cargo.toml"
  SCIMD="$ROOT/target/release/scimd"
fi
SCIMD_B=${SCIMD_B:-$SCIMD}

WORK=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# As scripts/load.sh does: the harness's Lua ignores wrk's -H headers unless merged in at init.
cp "$SOURCE/scim-load.lua" "$WORK/"
# shellcheck source=scripts/harness-lua.sh
. "$ROOT/scripts/harness-lua.sh"
patch_harness_lua "$WORK/scim-load.lua"

declare -A pid port token
start_pair() {
  for side in A B; do
    if [ "$side" = A ]; then envs=$A_ENV; p=18181; bin=$SCIMD; else envs=$B_ENV; p=18182; bin=$SCIMD_B; fi
    created=$("$bin" --database "$WORK/$side.db" tenant create bench)
    token[$side]=$(printf '%s' "$created" | sed -E 's/.*"token":"([^"]+)".*/\1/')
    # shellcheck disable=SC2086 # a list of VAR=value words
    env $envs SCIMD_LOG=warn taskset -c 0 "$bin" --database "$WORK/$side.db" serve \
      --listen "127.0.0.1:$p" >"$WORK/$side.out" 2>&1 &
    pid[$side]=$!
    pids+=("$!")
    port[$side]=$p
    for _ in $(seq 1 200); do curl -fsS "http://127.0.0.1:$p/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
    kill -0 "${pid[$side]}" 2>/dev/null || { echo "scimd $side did not start:" >&2; cat "$WORK/$side.out" >&2; exit 1; }
    export IDS_FILE="$WORK/ids-$side.txt"
    SCENARIO=seed taskset -c 1 wrk -t1 -c1 -d600s --timeout 10s -H "Authorization: Bearer ${token[$side]}" \
      -s "$WORK/scim-load.lua" "http://127.0.0.1:$p/t/bench/scim/v2" >/dev/null 2>&1 &
    seeder=$!
    while [ ! -s "$IDS_FILE.done" ] && kill -0 "$seeder" 2>/dev/null; do sleep 0.1; done
    kill "$seeder" 2>/dev/null || true
    wait "$seeder" 2>/dev/null || true
    [ -s "$IDS_FILE.done" ] || { echo "seeding $side failed" >&2; exit 1; }
  done
}
stop_pair() {
  for side in A B; do kill "${pid[$side]}" 2>/dev/null || true; wait "${pid[$side]}" 2>/dev/null || true; done
  pids=()
  rm -rf "$WORK"/A.db* "$WORK"/B.db* "$WORK"/ids-*
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
load() { # side scenario seconds -> wrk's last line
  local side=$1 sc=$2 secs=$3
  export IDS_FILE="$WORK/ids-$side.txt" RUN_TAG="$side-$(date +%s%N)"
  SCENARIO=$sc taskset -c 1 wrk -t1 -c16 -d"${secs}s" --timeout 10s \
    -H "Authorization: Bearer ${token[$side]}" -s "$WORK/scim-load.lua" \
    "http://127.0.0.1:${port[$side]}/t/bench/scim/v2" | tail -n1
}
for pair in $(seq 1 "$PAIRS"); do
  start_pair
  for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="A B"; else order="B A"; fi
    for sc in $SCENARIOS; do
      for side in $order; do
        load "$side" "$sc" 2 >/dev/null
        before=$(cpu_ticks "${pid[$side]}")
        rps=$(load "$side" "$sc" "$DURATION" | awk '{print $2}')
        after=$(cpu_ticks "${pid[$side]}")
        echo "$side $sc $rps $((after - before))"
      done
    done
    echo "pair $pair of $PAIRS: round $round of $ROUNDS done" >&2
  done
  stop_pair
done >"$WORK/results"

python3 - "$WORK/results" "$A_ENV" "$B_ENV" "$DURATION" "$(getconf CLK_TCK)" "$SCIMD" "$SCIMD_B" <<'PY'
import collections, statistics, sys
path, a_env, b_env, duration, hz = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
a_bin, b_bin = sys.argv[6], sys.argv[7]
rps, cpu = collections.defaultdict(list), collections.defaultdict(list)
for line in open(path):
    side, sc, r, ticks = line.split()
    r = float(r)
    rps[side, sc].append(r)
    cpu[side, sc].append(1e6 * float(ticks) / hz / (r * duration) if r > 0 else float("nan"))
print(f"A = {a_env} {a_bin}\nB = {b_env} {b_bin}")
print("scenario  req/s A  req/s B  change   cpu µs/req A  cpu µs/req B  change")
for sc in ["get", "filter", "list", "post", "patch"]:
    if ("A", sc) not in rps:
        continue
    ra, rb = statistics.median(rps["A", sc]), statistics.median(rps["B", sc])
    ca, cb = statistics.median(cpu["A", sc]), statistics.median(cpu["B", sc])
    print(f"{sc:8} {ra:8.0f} {rb:8.0f} {100 * (rb - ra) / ra:+6.1f}%  {ca:12.1f} {cb:13.1f} {100 * (cb - ca) / ca:+6.1f}%")
PY
