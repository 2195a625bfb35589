#!/usr/bin/env bash
# The admin API over a large provisioning log (issue 18): seeds N entries (default 1,000,000)
# into a fresh database with the `seed_request_log` example (crates/scim-store/examples), starts
# a release scimd on it, and times each narrowing `GET /t/bench/admin/v1/requests` offers, the
# health summary and an export, with curl: the median of RUNS runs (default 5), in milliseconds,
# and how many entries the page held.
#
#   scripts/request-log-bench.sh                                          # SQLite
#   PG=postgres://postgres@127.0.0.1:5432/postgres scripts/request-log-bench.sh   # PostgreSQL
#   N=200000 RUNS=3 scripts/request-log-bench.sh
#
# PostgreSQL: a database scimd_logbench_$$ is created on that server and dropped at the end.
set -euo pipefail

ROOT=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
N=${N:-1000000}
RUNS=${RUNS:-5}
PG=${PG:-}
cd "$ROOT"

cargo build --release --quiet -p scimd
cargo build --release --quiet -p scimd-store --example seed_request_log
SCIMD="$ROOT/target/release/scimd"
SEED="$ROOT/target/release/examples/seed_request_log"

WORK=$(mktemp -d)
pg_db=
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  [ -n "$pg_db" ] && psql -q "$PG" -c "DROP DATABASE IF EXISTS $pg_db" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "$PG" ]; then
  pg_db="scimd_logbench_$$"
  psql -q "$PG" -c "CREATE DATABASE $pg_db" >/dev/null
  DB=$(printf '%s' "$PG" | sed -E "s#/[^/?]*(\?.*)?\$#/$pg_db\1#")
else
  DB="$WORK/scimd.db"
fi

echo "seeding $N entries ($([ -n "$PG" ] && echo PostgreSQL || echo SQLite))" >&2
"$SEED" "$DB" bench "$N"
token=$("$SCIMD" --database "$DB" token issue --tenant bench --scope admin --label bench |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SCIMD_LOG=warn "$SCIMD" --database "$DB" serve --listen "127.0.0.1:$port" &
server=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
base="http://127.0.0.1:$port/t/bench/admin/v1"

# A user, a day and a cursor taken from the log itself.
first=$(curl -fs -H "Authorization: Bearer $token" "$base/requests?resourceType=User&method=PATCH&limit=1")
user=$(printf '%s' "$first" | python3 -c 'import json, sys; print(json.load(sys.stdin)["entries"][0]["resourceId"])')
day_from=$(date -u -d '15 days ago' +%Y-%m-%dT%H:%M:%SZ)
day_to=$(date -u -d '14 days ago' +%Y-%m-%dT%H:%M:%SZ)
deep=$(curl -fs -H "Authorization: Bearer $token" "$base/requests?limit=1000" | python3 -c 'import json, sys; print(json.load(sys.stdin)["next"])')

measure() {
  local name=$1 url=$2 times=() out
  for _ in $(seq "$RUNS"); do
    out=$(curl -fs -o "$WORK/body" -w '%{time_total}' -H "Authorization: Bearer $token" "$url")
    times+=("$out")
  done
  local median count
  median=$(printf '%s\n' "${times[@]}" | sort -n | awk -v n="$RUNS" 'NR == int((n + 1) / 2) { printf "%.1f", $1 * 1000 }')
  count=$(python3 -c 'import json, sys
try:
    d = json.load(open(sys.argv[1]))
    print(len(d.get("entries", d.get("connections", []))))
except ValueError:
    print(sum(1 for _ in open(sys.argv[1])))' "$WORK/body")
  printf '%-34s %8s ms  %6s entries\n' "$name" "$median" "$count"
}

echo "GET /requests over $N entries, median of $RUNS (ms), one tenant"
measure "newest 100"                "$base/requests?limit=100"
measure "newest 1000"               "$base/requests?limit=1000"
measure "next page (cursor)"        "$base/requests?limit=100&cursor=$deep"
measure "status=4xx"                "$base/requests?status=4xx&limit=100"
measure "status=409"                "$base/requests?status=409&limit=100"
measure "method=POST"               "$base/requests?method=POST&limit=100"
measure "method=DELETE (none)"      "$base/requests?method=DELETE&limit=100"
measure "token=tok-hr"              "$base/requests?token=tok-hr&limit=100"
measure "resourceType+resourceId"   "$base/requests?resourceType=User&resourceId=$user"
measure "person"                    "$base/requests?person=$user"
measure "scimType=uniq (prefix)"    "$base/requests?scimType=uniq&limit=100"
measure "detail=userName (prefix)"  "$base/requests?detail=userName&limit=100"
measure "a day, 15 days ago"        "$base/requests?since=$day_from&until=$day_to&limit=100"
measure "status=409 & token=tok-okta" "$base/requests?status=409&token=tok-okta&limit=100"
measure "health"                    "$base/health"
measure "export of the day (JSONL)" "$base/requests/export?since=$day_from&until=$day_to"
