#!/usr/bin/env bash
# The invariants docs/ARCHITECTURE.md states, checked where a command can check them. Run by
# .ci/run after the build; each failure names the invariant it breaks. Run it by hand with
# `bash scripts/check-architecture.sh` from the workspace root.
set -euo pipefail
cd "$(dirname "$0")/.."

failed=0
broken() { printf 'architecture invariant broken: %s\n' "$*" >&2; failed=1; }

# Non-test source of a set of files: everything above a file's first top-level #[cfg(test)]
# (test modules sit at the end of a file here).
non_test() { for f in "$@"; do awk '/^#\[cfg\(test\)\]/ { exit } { print FILENAME ":" FNR ": " $0 }' "$f"; done; }
sources() { find "$@" -name '*.rs' -type f | sort; }

# Dependency edges (normal dependencies only: tests may use anything).
depends_on() { # crate features... -- pattern
  local crate=$1; shift
  cargo tree -p "$crate" "$@" -e normal --prefix none --locked 2>/dev/null
}

# 1. The protocol crates and workplace-policy know nothing of HTTP, async, storage or the CLI.
for crate in scimd-schema scimd-filter scimd-patch scimd-workplace-policy; do
  if depends_on "$crate" | grep -qE '^(hyper|http|tokio|rusqlite|tokio-postgres|clap) '; then
    broken "$crate depends on HTTP, async, a database or the CLI"
  fi
done

# 2. workplace-policy is pure decisions: time is a parameter, never read from a clock.
if non_test $(sources crates/workplace-policy/src) | grep -E '(SystemTime|Instant|Utc|Local)::now'; then
  broken "workplace-policy reads the clock"
fi

# 3. scim-store-core is the contract: no database, no HTTP, no async runtime.
if depends_on scimd-store-core | grep -qE '^(hyper|http|tokio|rusqlite|tokio-postgres) '; then
  broken "scimd-store-core depends on a database, HTTP or tokio"
fi

# 4. The backends do not know each other, and no store crate knows HTTP.
if depends_on scimd-store-sqlite | grep -qE '^tokio-postgres '; then
  broken "scimd-store-sqlite depends on the PostgreSQL client"
fi
if depends_on scimd-store-postgres | grep -qE '^rusqlite '; then
  broken "scimd-store-postgres depends on SQLite"
fi
for crate in scimd-store scimd-store-sqlite scimd-store-postgres scimd-store-testkit; do
  if depends_on "$crate" --all-features | grep -qE '^hyper '; then
    broken "$crate depends on hyper"
  fi
done

# 5. The store receives filter ASTs, never filter text: no backend parses a filter.
if non_test $(sources crates/scim-store-core/src crates/scim-store-sqlite/src crates/scim-store-postgres/src) | grep -E 'parse_filter\('; then
  broken "a store parses filter text (it must receive the AST)"
fi

# 6. Only a store makes a TenantId: backend::tenant_id is called from the backends alone.
if non_test $(sources crates bins examples 2>/dev/null) \
  | grep -E 'backend::(tenant_id|\{[^}]*tenant_id)' \
  | grep -vE '^(crates/scim-store-(core|sqlite|postgres)|examples/memory-store)/'; then
  broken "backend::tenant_id is called outside a store"
fi

# 7. Only bins/scimd knows the CLI, configuration files and the environment.
if non_test $(sources crates/*/src) | grep -E 'std::env::var|env::var\(|clap::'; then
  broken "a library crate reads the environment or parses a command line"
fi
for crate in scimd-server scimd-store; do
  if depends_on "$crate" --all-features | grep -qE '^(clap|toml) '; then
    broken "$crate depends on clap or toml"
  fi
done

if [ "$failed" = 1 ]; then
  exit 1
fi
echo "architecture invariants hold (docs/ARCHITECTURE.md)"
