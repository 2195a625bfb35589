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

# shellcheck source=tests/lib.sh
source "$root/tests/lib.sh"

venv="${SCIMD_FUZZ_VENV:-$root/target/api-fuzz-venv}"
pinned_venv "$venv" "$here/requirements.txt"
"$venv/bin/schemathesis" --version

scimd="$(scimd_binary)"

work="$(mktemp -d -t scimd-api-fuzz.XXXXXX)"
cleanup() {
  stop_scimd
  rm -rf "$work"
}
trap cleanup EXIT

db="$work/scimd.db"
json_field() { python3 -c 'import json, sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"; }
"$scimd" --database "$db" tenant create fuzz >/dev/null
token="$("$scimd" --database "$db" token issue --tenant fuzz --scope workplace --label schemathesis | json_field token)"

serve_scimd "$scimd" "$db" "$work/server.log"
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
