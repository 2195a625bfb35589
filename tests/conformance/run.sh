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

step() { printf -- '--- %s\n' "$1"; }

# ---- the Python environment, pinned -------------------------------------------------------
venv="${SCIMD_CONFORMANCE_VENV:-$root/target/conformance-venv}"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  step "virtualenv $venv (pip install -r tests/conformance/requirements.txt)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --requirement "$here/requirements.txt"
  echo "$want" >"$stamp"
else
  step "virtualenv $venv (cached)"
fi
python="$venv/bin/python"
"$python" - <<'EOF'
from importlib.metadata import version
print("scim2-tester", version("scim2-tester"), "| scim2-client", version("scim2-client"),
      "| scim2-models", version("scim2-models"))
EOF

# ---- the server ---------------------------------------------------------------------------
if [[ -n "${SCIMD_BIN:-}" ]]; then
  scimd="$SCIMD_BIN"
else
  step "cargo build -p scimd"
  cargo build --quiet --locked -p scimd
  scimd="${CARGO_TARGET_DIR:-$root/target}/debug/scimd"
fi

work="$(mktemp -d -t scimd-conformance.XXXXXX)"
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
json_field() { "$python" -c 'import json, sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"; }
checker_tenant="$("$scimd" --database "$db" tenant create conformance)"
client_tenant="$("$scimd" --database "$db" tenant create scim2client)"

# Port 0: the kernel picks a free port, and the server logs the address it bound, so two runs
# on one machine never race for a port.
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
