#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets that start from the project's fixtures.

    python3 fuzz/make_seeds.py

Reads the identity-provider conversations (tests/idp/*.json), the workplace API guide
(docs/workplace-api.md) and the configuration reference (bins/scimd/src/settings.rs), and
writes one file per input under fuzz/seeds/<target>/, named by the hash of its content (so a
rerun writes the same files). Committed: libFuzzer starts from them (fuzz/README.md).
"""
import glob
import hashlib
import json
import os
import re
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    folder = os.path.join(SEEDS, target)
    os.makedirs(folder, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# The identity providers' requests: resources, PATCH bodies of groups, list queries.
for path in sorted(glob.glob(os.path.join(ROOT, "tests", "idp", "*.json"))):
    conversation = json.load(open(path))
    for step in conversation.get("steps", []):
        request = step.get("request", {})
        method, target, body = request.get("method"), request.get("path", ""), request.get("body")
        resource_path, _, query = target.partition("?")
        if method in ("POST", "PUT") and isinstance(body, dict) and "/.search" not in target:
            write("resource_validate", "\n" + compact(body))
            write("resource_validate", "userName,emails,groups\n" + compact(body))
            write("resource_validate", "-members,password\n" + compact(body))
        if query:
            write("search_request", query)
        if "/.search" in target and isinstance(body, dict):
            write("search_request", compact(body))

# Searches the RFC gives (RFC 7644 section 3.4.3, figure of a SearchRequest) and list queries.
write("search_request", compact({
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
    "attributes": ["displayName", "userName"],
    "filter": "displayName sw \"smith\"",
    "startIndex": 1,
    "count": 10,
}))
for query in [
    'filter=userName eq "bjensen"&startIndex=1&count=100',
    "sortBy=meta.lastModified&sortOrder=descending&count=0",
    "cursor=&count=50",
    "attributes=userName,emails.value&excludedAttributes=groups",
]:
    write("search_request", urllib.parse.quote(query, safe="=&,"))

# Bulk requests: RFC 7644 section 3.7.2's, a cycle (section 3.7.1), a reference to nothing.
bulk = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
user = "urn:ietf:params:scim:schemas:core:2.0:User"
group = "urn:ietf:params:scim:schemas:core:2.0:Group"
for request in [
    {"schemas": [bulk], "failOnErrors": 1, "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "qwerty",
         "data": {"schemas": [user], "userName": "Alice"}},
        {"method": "POST", "path": "/Groups", "bulkId": "ytrewq",
         "data": {"schemas": [group], "displayName": "Tour Guides",
                  "members": [{"type": "User", "value": "bulkId:qwerty"}]}}]},
    {"schemas": [bulk], "Operations": [
        {"method": "POST", "path": "/Groups", "bulkId": "a",
         "data": {"schemas": [group], "displayName": "A", "members": [{"value": "bulkId:b"}]}},
        {"method": "POST", "path": "/Groups", "bulkId": "b",
         "data": {"schemas": [group], "displayName": "B", "members": [{"value": "bulkId:a"}]}}]},
    {"schemas": [bulk], "Operations": [
        {"method": "PATCH", "path": "/Groups/bulkId:nowhere", "version": "W/\"1\"",
         "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                  "Operations": [{"op": "add", "path": "members", "value": [{"value": "x"}]}]}},
        {"method": "DELETE", "path": "/Users/42"}]},
]:
    for outcomes in (b"\x00", b"\xff", b"\x55"):
        write("bulk_request", compact(request).encode() + outcomes)

# The workplace API's documents, from its guide.
guide = open(os.path.join(ROOT, "docs", "workplace-api.md")).read()
documents = {
    "site": {"name": "London Bridge"},
    "floor": {"site": "lon", "name": "Level 3"},
    "neighbourhood": {"site": "lon", "floor": "l3", "name": "Marketing corner"},
    "resource": {"kind": "desk", "site": "lon", "floor": "l3", "neighbourhood": "mkt",
                 "name": "Desk 3.12", "capacity": 1},
    "booking": {"person": "alice", "resource": "desk-1",
                "start": "2030-01-07T09:00:00Z", "end": "2030-01-07T17:00:00Z"},
}
for kind, document in documents.items():
    write("workplace_documents", kind + "\n" + compact(document))
write("workplace_documents", "booking\n" + compact(
    {"person": "bob", "resource": "boardroom", "start": 1893920400, "end": 1893949200}))
for block in re.findall(r"```json\n(.*?)```", guide, re.S):
    try:
        document = json.loads(block)
    except ValueError:
        continue
    if isinstance(document, dict) and "rules" in document:
        write("workplace_documents", "policies\n" + compact(document))
        for rule in document["rules"]:
            write("workplace_documents", "rule\n" + compact(rule))

# The configuration reference in settings.rs's documentation, and a minimal file.
settings = open(os.path.join(ROOT, "bins", "scimd", "src", "settings.rs")).read()
example = re.search(r"/// ```toml\n(.*?)/// ```", settings, re.S)
if example:
    text = "".join(line[4:] + "\n" for line in example.group(1).splitlines())
    write("config", text)
write("config", 'database = "postgres://scimd@db/scimd"\ndurability = "normal"\n')
