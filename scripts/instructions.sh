#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: unlike req/s from scripts/load.sh,
# the count does not move with the machine's load, so two builds compare to within a fraction of
# a percent in any hour.
#
#   scripts/instructions.sh                      # this checkout's release build
#   SCIMD=/path/to/other/scimd scripts/instructions.sh
#   SCENARIOS="get patch" FEW=200 MANY=1200 scripts/instructions.sh
#
# For each scenario (get: GET a user by id; filter: `userName eq`; post: POST a new user;
# patch: PATCH `active`), runs
# the server under callgrind twice, sending FEW and then MANY requests one after another on one
# keep-alive connection, and prints (total(MANY) - total(FEW)) / (MANY - FEW): the user-space
# instructions of one request, start-up cancelled out. Kernel time (syscalls, wake-ups) is not
# counted: compare those with `perf stat -e context-switches` on the server's pid.
# Needs valgrind, curl and python3.
set -euo pipefail

ROOT=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
PORT=${PORT:-18190}
FEW=${FEW:-200}
MANY=${MANY:-1200}
SCENARIOS=${SCENARIOS:-get filter patch}
if [ -z "${SCIMD:-}" ]; then
  cargo build --release --quiet -p scimd --manifest-path "$ROOT/Cargo.toml"
  SCIMD="${CARGO_TARGET_DIR:-$ROOT/target}/release/scimd"
fi
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }

CLIENT=$(mktemp)
trap 'rm -f "$CLIENT"' EXIT
cat >"$CLIENT" <<'PY'
import http.client, json, sys
port, token, count, scenario = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
conn = http.client.HTTPConnection("127.0.0.1", port)
headers = {"Authorization": "Bearer " + token, "Content-Type": "application/scim+json"}
user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ir-user", "active": True}
conn.request("POST", "/t/bench/scim/v2/Users", json.dumps(user), headers)
answer = conn.getresponse()
uid = json.loads(answer.read())["id"]
for i in range(count):
    if scenario == "get":
        conn.request("GET", "/t/bench/scim/v2/Users/" + uid, headers=headers)
    elif scenario == "filter":
        conn.request("GET", "/t/bench/scim/v2/Users?filter=userName%20eq%20%22ir-user%22", headers=headers)
    elif scenario == "post":
        new = dict(user, userName="ir-new-%d" % i)
        conn.request("POST", "/t/bench/scim/v2/Users", json.dumps(new), headers)
    elif scenario == "patch":
        op = {"op": "replace", "path": "active", "value": i % 2 == 0}
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [op]}
        conn.request("PATCH", "/t/bench/scim/v2/Users/" + uid, json.dumps(body), headers)
    else:
        sys.exit("unknown scenario " + scenario)
    answer = conn.getresponse()
    answer.read()
    if answer.status >= 300:
        sys.exit("%s answered %d" % (scenario, answer.status))
PY

total() { # scenario count -> the server's total instructions
  local work created token pid
  work=$(mktemp -d)
  created=$("$SCIMD" --database "$work/db" --durability normal tenant create bench)
  token=$(printf '%s' "$created" | sed -E 's/.*"token":"([^"]+)".*/\1/')
  SCIMD_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" \
    "$SCIMD" --database "$work/db" --durability normal serve --listen "127.0.0.1:$PORT" \
    >"$work/out" 2>"$work/err" &
  pid=$!
  for _ in $(seq 1 300); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
    sleep 0.2
  done
  python3 "$CLIENT" "$PORT" "$token" "$2" "$1"
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  callgrind_annotate "$work/callgrind.out" 2>/dev/null | grep -m1 'PROGRAM TOTALS' | awk '{gsub(",", "", $1); print $1}'
  rm -rf "$work"
}

echo "$("$SCIMD" --version), instructions per request ((${MANY} - ${FEW}) requests)"
for scenario in $SCENARIOS; do
  few=$(total "$scenario" "$FEW")
  many=$(total "$scenario" "$MANY")
  echo "$scenario $(( (many - few) / (MANY - FEW) ))"
done
