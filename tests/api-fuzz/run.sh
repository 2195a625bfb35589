#!/usr/bin/env bash
# API fuzzing of the workplace API (issue 18, section 3) and of the admin API: schemathesis
# (PyPI, pinned in tests/api-fuzz/requirements.txt) loads the OpenAPI description a fresh scimd
# serves at /t/{tenant}/workplace/v1/openapi.json, then the one at /t/{tenant}/admin/v1/openapi.json,
# and sends each API generated requests, valid and not, through all its phases (examples,
# coverage, fuzzing, stateful). A run fails on any 5xx, and on any answer that does not match the
# description: status code, content type, body schema, headers. Schema-valid requests that scimd
# refuses for reasons a schema cannot say (a booking of a desk that does not exist) are not
# failures: those checks (positive/negative data acceptance) are left out.
#
# Before the admin API is fuzzed, a few SCIM requests fill the tenant's provisioning log (a
# create with a password, a failed read, a body that is not JSON, a body longer than the log
# keeps, a deactivation, a deletion), so that the log's answers are checked with entries in
# them, not only empty pages.
#
# Usage: bash tests/api-fuzz/run.sh      (exits non-zero if either run fails; both always run)
# Environment:
#   SCIMD_BIN              a scimd binary (default: `cargo build -p scimd`, the debug profile,
#                          which reuses what `cargo test` compiled)
#   SCIMD_FUZZ_VENV        the virtualenv (default: target/api-fuzz-venv, reused while
#                          requirements.txt is unchanged)
#   SCIMD_FUZZ_EXAMPLES    examples per operation and phase (default 50)
#   SCIMD_FUZZ_SECONDS     the wall-clock budget of both runs together (default 180): two thirds
#                          for the workplace API (21 paths), one third for the admin API (7)
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

total_seconds="${SCIMD_FUZZ_SECONDS:-180}"
admin_seconds=$((total_seconds / 3))
((admin_seconds >= 1)) || admin_seconds=1
workplace_seconds=$((total_seconds - admin_seconds))
((workplace_seconds >= 1)) || workplace_seconds=1

db="$work/scimd.db"
json_field() { python3 -c 'import json, sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"; }
"$scimd" --database "$db" tenant create fuzz >/dev/null
token="$("$scimd" --database "$db" token issue --tenant fuzz --scope workplace --label schemathesis | json_field token)"
admin_token="$("$scimd" --database "$db" token issue --tenant fuzz --scope admin --label schemathesis-admin | json_field token)"
scim_token="$("$scimd" --database "$db" token issue --tenant fuzz --scope scim --label fuzz-idp | json_field token)"

# The log keeps 1 KiB of each body here, so that a cut body (a string with the marker) is among
# the entries the admin run reads.
SCIMD_REQUEST_LOG_MAX_BODY_KIB=1 serve_scimd "$scimd" "$db" "$work/server.log"

# schemathesis keeps a cache between runs, by default in .schemathesis/ of the working
# directory: here it goes to the run's own directory, so that a run leaves the tree as it was.
cat >"$work/workplace.toml" <<EOF
[cache]
directory = "$work/schemathesis-cache"
EOF

# fuzz NAME BASE TOKEN SECONDS WORKERS CONFIG: one schemathesis run against the description
# served at BASE, with the settings file CONFIG.
fuzz() {
  local name="$1" base="$2" bearer="$3" seconds="$4" workers="$5" config="$6"
  step "schemathesis: the $name API, $base/openapi.json, ${seconds}s"
  "$venv/bin/schemathesis" --config-file "$config" run "$base/openapi.json" \
    --url "$base" \
    --header "Authorization: Bearer $bearer" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --max-examples "${SCIMD_FUZZ_EXAMPLES:-50}" \
    --max-time "$seconds" \
    --seed "${SCIMD_FUZZ_SEED:-1}" \
    --workers "$workers" \
    --no-color
}

failed=()
# One worker here too: CI's run with two failed on CPython 3.11's AST recursion bug (below).
fuzz workplace "http://$address/t/fuzz/workplace/v1" "$token" "$workplace_seconds" 1 "$work/workplace.toml" ||
  failed+=(workplace)

# scim METHOD PATH [BODY]: one SCIM request as the identity provider; prints the answer.
scim() {
  local args=(-sS -X "$1" -H "Authorization: Bearer $scim_token" -H 'Content-Type: application/scim+json')
  [[ $# -ge 3 ]] && args+=(--data-binary "$3")
  curl "${args[@]}" "http://$address/t/fuzz/scim/v2$2"
}
step "SCIM requests for the provisioning log"
user_json='{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"fuzz.person","active":true,"password":"Fuzz-Secret-1"}'
person="$(scim POST /Users "$user_json" | json_field id)"
scim GET /Users/no-such-person >/dev/null
scim POST /Users '{"userName": ' >/dev/null
long_name="$(printf 'x%.0s' $(seq 1 1500))"
scim POST /Users "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"fuzz.long\",\"displayName\":\"$long_name\"}" >/dev/null
scim PATCH "/Users/$person" '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}' >/dev/null
scim DELETE "/Users/$person" >/dev/null
admin_base="http://$address/t/fuzz/admin/v1"
for _ in $(seq 1 50); do
  entries="$(curl -sS -H "Authorization: Bearer $admin_token" "$admin_base/requests" |
    python3 -c 'import json, sys; print(len(json.load(sys.stdin)["entries"]))')"
  ((entries >= 6)) && break
  sleep 0.1
done
echo "the log holds $entries entries"

# The admin API can revoke the very token the run uses (DELETE /tokens/{id}: a credential may
# revoke itself), and schemathesis would find its id: by reusing the ids GET /tokens answers
# (extra data sources) and by linking GET /tokens to DELETE /tokens/{id} (link inference). The
# rest of the run would then test nothing but 401s. So this run takes ids only from the links
# the description declares (POST /tokens -> DELETE /tokens/{id} revokes the token it issued).
# One worker: with two, CPython 3.11 (seen with 3.11.7, seed 1) fails the run at random with
# "SystemError: AST constructor recursion depth mismatch" (cpython#106905: hypothesis parses its
# lambdas' sources from both workers' threads at once); for 9 operations a second worker on a
# 2-core runner added no measurable number of requests.
cp "$work/workplace.toml" "$work/admin.toml"
cat >>"$work/admin.toml" <<'EOF'

[phases.examples.extra-data-sources]
responses = false

[phases.coverage.extra-data-sources]
responses = false

[phases.fuzzing.extra-data-sources]
responses = false

[phases.stateful.inference]
algorithms = []
EOF
fuzz admin "$admin_base" "$admin_token" "$admin_seconds" 1 "$work/admin.toml" || failed+=(admin)
still="$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $admin_token" "$admin_base/health")"
if [[ "$still" != 200 ]]; then
  echo "the admin run's own token no longer works (GET /health: $still): the run tested little but 401s"
  failed+=(admin-token)
fi

if ((${#failed[@]} > 0)); then
  echo "--- failed: ${failed[*]}"
  echo "--- scimd log (last 40 lines)"
  tail -n 40 "$work/server.log"
  exit 1
fi
