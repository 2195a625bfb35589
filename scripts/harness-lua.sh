# Sourced by scripts/load.sh and scripts/ab-load.sh: the shared harness's Lua builds its own
# header table, and wrk.format() then ignores wrk's -H headers, so every request would go out
# without Authorization and get 401. patch_harness_lua FILE makes the copy FILE merge the -H
# headers in at init (one line); the scenarios are otherwise exactly the harness's.
patch_harness_lua() {
  sed -i 's/^function init(args)$/function init(args)\n  for k, v in pairs(wrk.headers) do if json_headers[k] == nil then json_headers[k] = v end end/' "$1"
  grep -q 'pairs(wrk.headers)' "$1" || { echo "could not patch the harness's Lua in $1" >&2; exit 1; }
}
