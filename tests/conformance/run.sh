#!/usr/bin/env bash
# Conformance of scimd, checked by software we did not write (issue 6):
#   1. scim2-tester (PyPI) runs its RFC 7643/7644 checks against a fresh tenant (check.py);
#      a failed check fails the run unless known-disagreements.toml lists it with the RFC text.
#   2. scim2-client (PyPI) creates, reads, queries, patches and deletes users and groups
#      (test_scim2_client.py, pytest), against a second tenant.
# Usage: bash tests/conformance/run.sh   (from anywhere; exits non-zero on any failure)
# Environment:
#   SCIMD_BIN                 a scimd binary to test (default: `cargo build -p scimd`, the debug
#                             profile, which reuses what `cargo test` already compiled)
#   SCIMD_CONFORMANCE_VENV    where the virtualenv lives (default: target/conformance-venv; it is
#                             reused while requirements.txt is unchanged)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

# shellcheck source=tests/lib.sh
source "$root/tests/lib.sh"

# ---- the Python environment, pinned -------------------------------------------------------
venv="${SCIMD_CONFORMANCE_VENV:-$root/target/conformance-venv}"
pinned_venv "$venv" "$here/requirements.txt"
python="$venv/bin/python"
"$python" - <<'EOF'
from importlib.metadata import version
print("scim2-tester", version("scim2-tester"), "| scim2-client", version("scim2-client"),
      "| scim2-models", version("scim2-models"))
EOF

# ---- the server ---------------------------------------------------------------------------
scimd="$(scimd_binary)"

work="$(mktemp -d -t scimd-conformance.XXXXXX)"
cleanup() {
  stop_scimd
  rm -rf "$work"
}
trap cleanup EXIT

db="$work/scimd.db"
json_field() { "$python" -c 'import json, sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"; }
checker_tenant="$("$scimd" --database "$db" tenant create conformance)"
client_tenant="$("$scimd" --database "$db" tenant create scim2client)"

serve_scimd "$scimd" "$db" "$work/server.log"
step "scimd listening on $address"

show_server_log() {
  echo "--- scimd log (last 40 lines)"
  tail -n 40 "$work/server.log"
}

export PYTHONDONTWRITEBYTECODE=1

# ---- 1. scim2-tester ----------------------------------------------------------------------
step "scim2-tester against $(json_field scim_base <<<"$checker_tenant")"
checker_status=0
SCIM_BASE_URL="http://$address$(json_field scim_base <<<"$checker_tenant")" \
  SCIM_TOKEN="$(json_field token <<<"$checker_tenant")" \
  "$python" "$here/check.py" | tee "$work/checker.out" || checker_status=$?
checker_summary="$(grep -E '^scim2-tester: ' "$work/checker.out" | tail -n1 || true)"
known="$(sed -n 's/^known disagreements: //p' "$work/checker.out" | tail -n1)"

# ---- 2. scim2-client ----------------------------------------------------------------------
step "scim2-client tests (pytest) against $(json_field scim_base <<<"$client_tenant")"
client_status=0
SCIM_BASE_URL="http://$address$(json_field scim_base <<<"$client_tenant")" \
  SCIM_TOKEN="$(json_field token <<<"$client_tenant")" \
  "$python" -m pytest -p no:cacheprovider --rootdir "$here" -q "$here/test_scim2_client.py" \
  | tee "$work/pytest.out" || client_status=$?
client_summary="$(grep -E '(passed|failed|error)' "$work/pytest.out" | tail -n1 || true)"

if ((checker_status != 0 || client_status != 0)); then
  show_server_log
fi

# One closing line in the plain "N passed, N failed" form: scim2-tester's checks plus our
# scim2-client tests. Known disagreements are neither: they are listed above and on this line.
count() {
  local n
  n="$(grep -oE "[0-9]+ $1" <<<"$2" | head -n1 | cut -d' ' -f1 || true)"
  echo "${n:-0}"
}
passed=$(($(count passed "$checker_summary") + $(count passed "$client_summary")))
failed=$(($(count failed "$checker_summary") + $(count failed "$client_summary")))
if ((checker_status != 0 || client_status != 0)) && ((failed == 0)); then
  failed=1 # a runner died without a summary: still a failure
fi
echo
echo "scim2-tester: ${checker_summary#scim2-tester: } (known disagreements: ${known:-?})"
echo "scim2-client: ${client_summary:-no summary (exit $client_status)}"
echo "conformance: $passed passed, $failed failed"
if ((checker_status != 0 || client_status != 0)); then
  exit 1
fi
