#!/usr/bin/env bash
# API fuzzing of the workplace API (issue 18, section 3): schemathesis (PyPI, pinned in
# tests/api-fuzz/requirements.txt) loads the OpenAPI description a fresh scimd serves at
# /t/{tenant}/workplace/v1/openapi.json and sends it generated requests, valid and not, through
# all its phases (examples, coverage, fuzzing, stateful). It fails on any 5xx, and on any answer
# that does not match the description: status code, content type, body schema, headers.
# Schema-valid requests that scimd refuses for reasons a schema cannot say (a booking of a desk
# that does not exist) are not failures: those checks (positive/negative data acceptance) are
# left out.
#
# Usage: bash tests/api-fuzz/run.sh      (exits non-zero on any failure)
# Environment:
#   SCIMD_BIN              a scimd binary (default: `cargo build -p scimd`, the debug profile,
#                          which reuses what `cargo test` compiled)
#   SCIMD_FUZZ_VENV        the virtualenv (default: target/api-fuzz-venv, reused while
#                          requirements.txt is unchanged)
#   SCIMD_FUZZ_EXAMPLES    examples per operation and phase (default 50)
#   SCIMD_FUZZ_SECONDS     the run's wall-clock budget (default 180)
#   SCIMD_FUZZ_SEED        the seed (default 1, so that CI is reproducible; any other finds more)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

step() { printf -- '--- %s\n' "$1"; }

venv="${SCIMD_FUZZ_VENV:-$root/target/api-fuzz-venv}"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/schemathesis" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  step "virtualenv $venv (pip install -r tests/api-fuzz/requirements.txt)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --requirement "$here/requirements.txt"
  echo "$want" >"$stamp"
else
  step "virtualenv $venv (cached)"
fi
"$venv/bin/schemathesis" --version

if [[ -n "${SCIMD_BIN:-}" ]]; then
  scimd="$SCIMD_BIN"
else
  step "cargo build -p scimd"
  cargo build --quiet --locked -p scimd
  scimd="${CARGO_TARGET_DIR:-$root/target}/debug/scimd"
fi

work="$(mktemp -d -t scimd-api-fuzz.XXXXXX)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

db="$work/scimd.db"
json_field() { python3 -c 'import json, sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"; }
"$scimd" --database "$db" tenant create fuzz >/dev/null
token="$("$scimd" --database "$db" token issue --tenant fuzz --scope workplace --label schemathesis | json_field token)"

"$scimd" --database "$db" serve --listen 127.0.0.1:0 --log-format json 2>"$work/server.log" &
server_pid=$!
address=""
for _ in $(seq 1 300); do
  address="$(sed -n 's/.*"message":"listening","address":"\([^"]*\)".*/\1/p' "$work/server.log" | head -n1)"
  [[ -n "$address" ]] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "scimd exited before listening:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [[ -z "$address" ]]; then
  echo "scimd did not report a listening address within 30 s:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
base="http://$address/t/fuzz/workplace/v1"
step "schemathesis against $base/openapi.json"

status=0
"$venv/bin/schemathesis" run "$base/openapi.json" \
  --url "$base" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --max-examples "${SCIMD_FUZZ_EXAMPLES:-50}" \
  --max-time "${SCIMD_FUZZ_SECONDS:-180}" \
  --seed "${SCIMD_FUZZ_SEED:-1}" \
  --workers 2 \
  --no-color || status=$?
if ((status != 0)); then
  echo "--- scimd log (last 40 lines)"
  tail -n 40 "$work/server.log"
  exit "$status"
fi
