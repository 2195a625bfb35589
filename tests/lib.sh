# Shell functions shared by the runners that test a real scimd with software from PyPI
# (tests/conformance/run.sh, tests/api-fuzz/run.sh). Source it after setting `root` (the
# repository) and `set -euo pipefail`.

step() { printf -- '--- %s\n' "$1"; }

# pinned_venv DIR REQUIREMENTS: a virtualenv at DIR with exactly REQUIREMENTS installed; kept
# while REQUIREMENTS is unchanged (a hash stamp), rebuilt from scratch when it changes.
pinned_venv() {
  local venv="$1" requirements="$2"
  local stamp="$venv/.requirements.sha256" want
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    step "virtualenv $venv (pip install -r ${requirements#"$root"/})"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      --requirement "$requirements"
    echo "$want" >"$stamp"
  else
    step "virtualenv $venv (cached)"
  fi
}

# scimd_binary: prints the scimd to test: $SCIMD_BIN, else a debug build (which reuses what
# `cargo test` compiled).
scimd_binary() {
  if [[ -n "${SCIMD_BIN:-}" ]]; then
    echo "$SCIMD_BIN"
  else
    step "cargo build -p scimd" >&2
    cargo build --quiet --locked -p scimd
    echo "${CARGO_TARGET_DIR:-$root/target}/debug/scimd"
  fi
}

# serve_scimd SCIMD DATABASE LOG: starts `SCIMD serve` on DATABASE, logging JSON to LOG, and
# waits until it listens. Port 0: the kernel picks a free port and the server logs the address
# it bound, so two runs on one machine never race for a port. Sets `server_pid` and `address`.
serve_scimd() {
  local scimd="$1" db="$2" log="$3"
  "$scimd" --database "$db" serve --listen 127.0.0.1:0 --log-format json 2>"$log" &
  server_pid=$!
  address=""
  for _ in $(seq 1 300); do
    address="$(sed -n 's/.*"message":"listening","address":"\([^"]*\)".*/\1/p' "$log" | head -n1)"
    [[ -n "$address" ]] && return 0
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "scimd exited before listening:" >&2
      cat "$log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "scimd did not report a listening address within 30 s:" >&2
  cat "$log" >&2
  exit 1
}

# stop_scimd: stops the server `serve_scimd` started, if it runs.
stop_scimd() {
  if [[ -n "${server_pid:-}" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
}
