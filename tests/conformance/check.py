"""Runs scim2-tester, an independent RFC 7643/7644 checker, against a live scimd tenant.

Reads the tenant's SCIM base URL and bearer token from SCIM_BASE_URL and SCIM_TOKEN (run.sh sets
them), prints every check's result, and exits non-zero when any check fails unless that check is
listed in known-disagreements.toml: a check we believe is wrong about the RFC. Listed checks stay
visible as KNOWN DISAGREEMENT; a listed check that no longer fails is an error too, so the list
never outlives the disagreement it records.
"""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import CheckResult, Status, check_server

# RFC 2119 levels as scim2-tester grades them: SUCCESS is a MUST met, COMPLIANT a SHOULD met,
# ACCEPTABLE a MAY taken. DEVIATION (a SHOULD missed) counts as a failure: the issue asks for
# every check to pass, and a SHOULD we miss on purpose belongs in the disagreement list.
PASSED = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}
FAILED = {Status.DEVIATION, Status.ERROR, Status.CRITICAL}

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Disagreement:
    """One entry of known-disagreements.toml."""

    check: str
    rfc: str
    why: str


def check_name(result: CheckResult) -> str:
    """A stable name for one check: resource type, checker, and the attribute it exercised.

    The PATCH checkers return one result per attribute path, so the path is part of the name.
    """
    name = result.title or "?"
    if result.resource_type:
        name = f"{result.resource_type}/{name}"
    if isinstance(result.data, dict) and "urn" in result.data:
        name = f"{name}[{result.data['urn']}]"
    return name


def load_disagreements(path: Path) -> dict[str, Disagreement]:
    with path.open("rb") as file:
        document = tomllib.load(file)
    entries: dict[str, Disagreement] = {}
    for entry in document.get("disagreement", []):
        missing = [key for key in ("check", "rfc", "why") if not entry.get(key)]
        if missing:
            raise SystemExit(f"{path}: an entry lacks {', '.join(missing)}: {entry}")
        entries[entry["check"]] = Disagreement(entry["check"], entry["rfc"], entry["why"])
    return entries


def one_line(text: str | None, limit: int = 400) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def main() -> int:
    base_url = os.environ.get("SCIM_BASE_URL")
    token = os.environ.get("SCIM_TOKEN")
    if not base_url or not token:
        print("check.py: set SCIM_BASE_URL and SCIM_TOKEN (run.sh does)", file=sys.stderr)
        return 2
    disagreements = load_disagreements(HERE / "known-disagreements.toml")

    http = httpx2.Client(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30.0,
    )
    client = SyncSCIMClient(http)
    results = check_server(client)

    passed = failed = skipped = known = 0
    seen_disagreements: set[str] = set()
    for result in results:
        name = check_name(result)
        status = result.status
        if status in PASSED:
            passed += 1
            label = "PASS"
        elif status == Status.SKIPPED:
            skipped += 1
            label = "SKIP"
        elif name in disagreements:
            known += 1
            seen_disagreements.add(name)
            label = "KNOWN DISAGREEMENT"
        else:
            failed += 1
            label = "FAIL"
        print(f"{label:<18} {status.name:<10} {name}: {one_line(result.reason)}")
        if label == "FAIL" and result.data is not None:
            print(f"{'':<29} data: {one_line(repr(result.data), 1200)}")
        if label == "KNOWN DISAGREEMENT":
            entry = disagreements[name]
            print(f"{'':<29} RFC: {one_line(entry.rfc)}")
            print(f"{'':<29} why: {one_line(entry.why)}")

    stale = sorted(set(disagreements) - seen_disagreements)
    for name in stale:
        failed += 1
        print(
            f"{'FAIL':<18} {'STALE':<10} {name}: listed in known-disagreements.toml "
            "but did not fail: remove the entry"
        )

    if not results or passed == 0:
        print("FAIL: scim2-tester ran no check")
        failed += 1
    print(f"known disagreements: {known}")
    print(f"scim2-tester: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
