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
#
# PostgreSQL and several replicas (issue 8):
#   PG=postgres://postgres@127.0.0.1:5432/postgres REPLICAS=2 scripts/load.sh
# creates a fresh database on that server (dropped at the end), starts REPLICAS scimd
# processes on it (ports PORT, PORT+1, ...; all pinned to SERVER_CPU), and runs one harness
# per replica at the same time, each seeding and loading its own N users (userName prefixes
# r1-, r2-, ...); prints each replica's lines, then the sum of the req/s per scenario.
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
REPLICAS=${REPLICAS:-1}
PG=${PG:-}
pg_db=
server_pids=()
cleanup() {
  for pid in "${server_pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [ -n "$pg_db" ]; then
    psql -q "$PG" -c "DROP DATABASE IF EXISTS $pg_db" >/dev/null 2>&1 || true
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
# shellcheck source=scripts/harness-lua.sh
. "$ROOT/scripts/harness-lua.sh"
patch_harness_lua "$WORK/harness/scim-load.lua"
HARNESS="$WORK/harness/scim-load.sh"

if [ -n "$PG" ]; then
  command -v psql >/dev/null || { echo "PG is set but psql is missing" >&2; exit 1; }
  pg_db="scimd_load_$$"
  psql -q "$PG" -c "CREATE DATABASE $pg_db" >/dev/null
  DB=$(printf '%s' "$PG" | sed -E "s#/[^/?]*(\?.*)?\$#/$pg_db\1#")
  store="PostgreSQL"
else
  DB="$WORK/bench.db"
  store="SQLite, durability=$DURABILITY"
fi
created=$("$SCIMD" --database "$DB" --durability "$DURABILITY" tenant create bench)
TOKEN=$(printf '%s' "$created" | sed -E 's/.*"token":"([^"]+)".*/\1/')

for r in $(seq 1 "$REPLICAS"); do
  port=$((PORT + r - 1))
  SCIMD_LOG=warn taskset -c "$SERVER_CPU" "$SCIMD" --database "$DB" --durability "$DURABILITY" \
    serve --listen "127.0.0.1:$port" >"$WORK/server$r.out" 2>"$WORK/server$r.err" &
  server_pids+=($!)
done
for r in $(seq 1 "$REPLICAS"); do
  port=$((PORT + r - 1))
  pid=${server_pids[$((r - 1))]}
  for _ in $(seq 1 200); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.05
  done
  kill -0 "$pid" 2>/dev/null || { echo "scimd (replica $r) did not start:" >&2; cat "$WORK/server$r.err" >&2; exit 1; }
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null
  curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port/t/bench/scim/v2/Users?count=0" \
    || { echo "replica $r refused the bench token" >&2; cat "$WORK/server$r.err" >&2; exit 1; }
done

echo "scimd $("$SCIMD" --version | awk '{print $2}'), $store, $REPLICAS replica(s) on CPU $SERVER_CPU, N=$N" >&2
# A server with autovacuum off (as on our CI machines) never gathers statistics on the freshly
# seeded tables, and the planner then scans instead of using the indexes (GET by id 1,221 req/s
# before ANALYZE, 3,980 after, on one replica). Production servers keep autovacuum on; do its
# statistics part here.
analyze_pid=
if [ -n "$PG" ] && [ "$(psql -At "$DB" -c 'SHOW autovacuum' 2>/dev/null)" = off ]; then
  echo "autovacuum is off on this server: running ANALYZE every 5 s during the run" >&2
  ( while sleep 5; do psql -q "$DB" -c ANALYZE >/dev/null 2>&1 || true; done ) &
  analyze_pid=$!
fi

if [ "$REPLICAS" = 1 ]; then
  status=0
  SERVER_PID=${server_pids[0]} bash "$HARNESS" "http://127.0.0.1:$PORT/t/bench/scim/v2" "$TOKEN" || status=$?
  [ -n "$analyze_pid" ] && kill "$analyze_pid" 2>/dev/null
  exit $status
fi

harness_pids=()
for r in $(seq 1 "$REPLICAS"); do
  port=$((PORT + r - 1))
  PREFIX="r$r-" SERVER_PID=${server_pids[$((r - 1))]} \
    bash "$HARNESS" "http://127.0.0.1:$port/t/bench/scim/v2" "$TOKEN" >"$WORK/harness$r.out" 2>&1 &
  harness_pids+=($!)
done
status=0
for pid in "${harness_pids[@]}"; do wait "$pid" || status=1; done
[ -n "$analyze_pid" ] && kill "$analyze_pid" 2>/dev/null
for r in $(seq 1 "$REPLICAS"); do
  echo "# replica $r (port $((PORT + r - 1)))"
  cat "$WORK/harness$r.out"
done
echo "# all replicas together (sum of req/s, worst p99, sum of errors)"
cat "$WORK"/harness*.out | awk '
  $1 ~ /^(get|filter|list|post|patch)$/ && NF == 5 {
    rps[$1] += $2; if ($4 > p99[$1]) p99[$1] = $4; err[$1] += $5; order[$1] = ++n
  }
  END { for (s in rps) printf "%s %.0f - %.2f %d\n", s, rps[s], p99[s], err[s] }'
exit $status
