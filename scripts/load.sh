#!/usr/bin/env bash
# Load benchmark for scimd: how many requests per second one CPU core serves.
#
#   scripts/load.sh            # N=10000 users, 10 s per scenario
#   N=2000 DURATION=5 scripts/load.sh
#
# Installs wrk (Debian package) if it is missing, builds scimd in release mode, starts it on a
# fresh temporary database pinned to CPU 0 (taskset -c 0), creates a tenant, and runs the
# shared harness ../shared/bench/scim-load.sh (pinned to CPU 1) if it is beside the repository,
# else the bundled copy of the same scenarios in scripts/bench/. Prints, per scenario,
# "scenario req_s p50_ms p99_ms errors", then the server's peak RSS.
#
# Env: N, DURATION, WARMUP, CONNS (passed to the harness), PORT (default 18080),
#      SERVER_CPU (default 0), LOADGEN_CPU (default 1), DURABILITY (full|normal, default full).
# Every write is durable before it is acknowledged unless DURABILITY=normal.
set -euo pipefail

ROOT=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
PORT=${PORT:-18080}
SERVER_CPU=${SERVER_CPU:-0}
export LOADGEN_CPU=${LOADGEN_CPU-1}
export N=${N:-10000}
DURABILITY=${DURABILITY:-full}

if ! command -v wrk >/dev/null; then
  echo "installing wrk (apt-get)" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=(); else SUDO=(sudo); fi
  "${SUDO[@]}" apt-get update -qq >/dev/null
  "${SUDO[@]}" apt-get install -y -qq wrk >/dev/null
fi

SOURCE="$ROOT/../shared/bench"
[ -f "$SOURCE/scim-load.sh" ] && [ -f "$SOURCE/scim-load.lua" ] || SOURCE="$ROOT/scripts/bench"
echo "harness: $SOURCE/scim-load.sh" >&2

cargo build --release --quiet -p scimd --manifest-path "$ROOT/Cargo.toml"
SCIMD="$ROOT/target/release/scimd"

WORK=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# The harness passes TOKEN to wrk with -H, but its Lua builds every request with its own
# header table, and wrk.format() then ignores the -H headers: every request would go out
# without Authorization and get 401. Run an unmodified copy of the harness whose Lua merges
# the -H headers in at init (one line); the scenarios are otherwise exactly the harness's.
mkdir -p "$WORK/harness"
cp "$SOURCE/scim-load.sh" "$SOURCE/scim-load.lua" "$WORK/harness/"
sed -i 's/^function init(args)$/function init(args)\n  for k, v in pairs(wrk.headers) do if json_headers[k] == nil then json_headers[k] = v end end/' \
  "$WORK/harness/scim-load.lua"
grep -q 'pairs(wrk.headers)' "$WORK/harness/scim-load.lua" || { echo "could not patch the harness's Lua" >&2; exit 1; }
HARNESS="$WORK/harness/scim-load.sh"

DB="$WORK/bench.db"
created=$("$SCIMD" --database "$DB" --durability "$DURABILITY" tenant create bench)
TOKEN=$(printf '%s' "$created" | sed -E 's/.*"token":"([^"]+)".*/\1/')

SCIMD_LOG=warn taskset -c "$SERVER_CPU" "$SCIMD" --database "$DB" --durability "$DURABILITY" \
  serve --listen "127.0.0.1:$PORT" >"$WORK/server.out" 2>"$WORK/server.err" &
server_pid=$!
for _ in $(seq 1 200); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.05
done
kill -0 "$server_pid" 2>/dev/null || { echo "scimd did not start:" >&2; cat "$WORK/server.err" >&2; exit 1; }
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null
curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/t/bench/scim/v2/Users?count=0" \
  || { echo "the server refused the bench token" >&2; cat "$WORK/server.err" >&2; exit 1; }

echo "scimd $("$SCIMD" --version | awk '{print $2}'), durability=$DURABILITY, server on CPU $SERVER_CPU, N=$N" >&2
SERVER_PID=$server_pid bash "$HARNESS" "http://127.0.0.1:$PORT/t/bench/scim/v2" "$TOKEN"
