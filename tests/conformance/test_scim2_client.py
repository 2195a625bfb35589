"""scim2-client (PyPI), a SCIM client we did not write, drives users and groups through scimd.

Run by run.sh against a live server: SCIM_BASE_URL and SCIM_TOKEN name a tenant of its own.
Every test creates uniquely named resources, so the tests are independent of each other and
of anything else in the tenant. The client validates every response against the models it
discovered from /Schemas and /ResourceTypes, so a response that departs from what the server
publishes fails here too.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import (
    Error,
    ListResponse,
    PatchOp,
    PatchOperation,
    ResponseParameters,
    SearchRequest,
)


@pytest.fixture(scope="module")
def scim() -> Iterator[SyncSCIMClient]:
    base_url = os.environ.get("SCIM_BASE_URL")
    token = os.environ.get("SCIM_TOKEN")
    if not base_url or not token:
        pytest.fail("set SCIM_BASE_URL and SCIM_TOKEN (tests/conformance/run.sh does)")
    with httpx2.Client(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30.0,
    ) as http:
        client = SyncSCIMClient(http)
        client.discover()
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def user_model(scim: SyncSCIMClient) -> Any:
    model = scim.get_resource_model("User")
    assert model is not None, "the server publishes no User resource type"
    return model


def group_model(scim: SyncSCIMClient) -> Any:
    model = scim.get_resource_model("Group")
    assert model is not None, "the server publishes no Group resource type"
    return model


# The models are the ones the client composed from the server's /Schemas, with nested classes
# of their own, so nested values are given as dicts and validated into those classes.
def new_user(scim: SyncSCIMClient, user_name: str, display_name: str | None = None) -> Any:
    User = user_model(scim)
    created = scim.create(
        User(
            user_name=user_name,
            display_name=display_name,
            name={"given_name": "Barbara", "family_name": "Jensen"},
            emails=[{"value": f"{user_name}@example.com", "type": "work", "primary": True}],
            active=True,
        )
    )
    assert isinstance(created, User), created
    return created


def test_discovery_describes_users_and_groups(scim: SyncSCIMClient) -> None:
    config = scim.provider.config
    assert config is not None
    assert config.patch.supported
    assert config.filter.supported
    assert config.filter.max_results and config.filter.max_results >= 100
    names = {resource_type.name for resource_type in scim.provider.resource_types}
    assert {"User", "Group"} <= names


def test_user_create_read_query_patch_replace_delete(scim: SyncSCIMClient) -> None:
    User = user_model(scim)
    user_name = unique("bjensen")
    created = new_user(scim, user_name)
    assert created.id
    assert created.user_name == user_name
    assert created.meta.resource_type == "User"
    assert created.meta.location.endswith(f"/Users/{created.id}")
    assert created.emails[0].value == f"{user_name}@example.com"

    read = scim.query(User, created.id)
    assert isinstance(read, User)
    assert read.id == created.id
    assert read.name.family_name == "Jensen"
    assert read.active is True

    # RFC 7643 section 4.1.1: userName is case-insensitive ("caseExact": false).
    found = scim.query(
        User, query_parameters=SearchRequest(filter=f'userName eq "{user_name.upper()}"')
    )
    assert isinstance(found, ListResponse)
    assert found.total_results == 1
    assert [u.id for u in found.resources] == [created.id]

    # The same query through POST /.search (RFC 7644 section 3.4.3).
    searched = scim.search(SearchRequest(filter=f'userName eq "{user_name}"'))
    assert isinstance(searched, ListResponse)
    assert [r.id for r in searched.resources] == [created.id]

    patched = scim.modify(
        User,
        created.id,
        PatchOp[User](
            operations=[
                PatchOperation(op=PatchOperation.Op.replace_, path="active", value=False),
                PatchOperation(op=PatchOperation.Op.add, path="title", value="Engineer"),
            ]
        ),
    )
    assert isinstance(patched, User), patched
    assert patched.active is False
    assert patched.title == "Engineer"

    inactive = scim.query(
        User,
        query_parameters=SearchRequest(filter=f'userName eq "{user_name}" and active eq false'),
    )
    assert [u.id for u in inactive.resources] == [created.id]

    replacement = scim.query(User, created.id)
    replacement.display_name = "Babs Jensen"
    replacement.title = None
    replaced = scim.replace(replacement)
    assert isinstance(replaced, User), replaced
    assert replaced.display_name == "Babs Jensen"
    assert replaced.title is None
    assert replaced.meta.version != created.meta.version

    assert scim.delete(User, created.id) is None
    gone = scim.query(User, created.id, raise_scim_errors=False, expected_status_codes=None)
    assert isinstance(gone, Error), gone
    assert gone.status == 404


def test_duplicate_user_name_is_a_uniqueness_conflict(scim: SyncSCIMClient) -> None:
    User = user_model(scim)
    user_name = unique("dup")
    first = new_user(scim, user_name)
    again = scim.create(
        User(user_name=user_name.upper()),
        raise_scim_errors=False,
        expected_status_codes=None,
    )
    assert isinstance(again, Error), again
    assert again.status == 409
    assert again.scim_type == "uniqueness"
    scim.delete(User, first.id)


def test_group_create_members_patch_query_delete(scim: SyncSCIMClient) -> None:
    Group = group_model(scim)
    alice = new_user(scim, unique("alice"), display_name="Alice")
    bob = new_user(scim, unique("bob"), display_name="Bob")
    carol = new_user(scim, unique("carol"), display_name="Carol")
    group_name = unique("engineering")

    created = scim.create(
        Group(display_name=group_name, members=[{"value": alice.id}])
    )
    assert isinstance(created, Group), created
    assert [m.value for m in created.members] == [alice.id]
    assert created.members[0].display == "Alice"

    # Add two members at once, as identity providers batch them.
    added = scim.modify(
        Group,
        created.id,
        PatchOp[Group](
            operations=[
                PatchOperation(
                    op=PatchOperation.Op.add,
                    path="members",
                    value=[{"value": bob.id}, {"value": carol.id}],
                )
            ]
        ),
    )
    # A Group PATCH answers 204 (no body) unless attributes are asked for.
    assert added is None or isinstance(added, Group), added
    read = scim.query(Group, created.id)
    assert sorted(m.value for m in read.members) == sorted([alice.id, bob.id, carol.id])

    removed = scim.modify(
        Group,
        created.id,
        PatchOp[Group](
            operations=[
                PatchOperation(
                    op=PatchOperation.Op.remove, path=f'members[value eq "{alice.id}"]'
                )
            ]
        ),
    )
    assert removed is None or isinstance(removed, Group), removed
    read = scim.query(Group, created.id)
    assert sorted(m.value for m in read.members) == sorted([bob.id, carol.id])

    # Filter on displayName; excludedAttributes=members leaves the members out.
    found = scim.query(
        Group,
        query_parameters=SearchRequest(
            filter=f'displayName eq "{group_name}"', excluded_attributes=["members"]
        ),
    )
    assert isinstance(found, ListResponse)
    assert [g.id for g in found.resources] == [created.id]
    assert not found.resources[0].members

    # A member's groups (RFC 7643 section 4.1.2: readOnly, maintained by the server).
    User = user_model(scim)
    bob_read = scim.query(User, bob.id)
    assert [g.value for g in bob_read.groups or []] == [created.id]

    # Filter users by group membership through the members' value.
    members_filter = scim.query(
        Group,
        query_parameters=SearchRequest(filter=f'members.value eq "{carol.id}"'),
    )
    assert created.id in [g.id for g in members_filter.resources]

    only_name = scim.query(
        Group, created.id, query_parameters=ResponseParameters(attributes=["displayName"])
    )
    assert only_name.display_name == group_name
    assert not only_name.members

    # Replacing members with an empty list empties the group.
    emptied = scim.modify(
        Group,
        created.id,
        PatchOp[Group](
            operations=[PatchOperation(op=PatchOperation.Op.replace_, path="members", value=[])]
        ),
    )
    assert emptied is None or isinstance(emptied, Group), emptied
    assert not scim.query(Group, created.id).members

    assert scim.delete(Group, created.id) is None
    gone = scim.query(Group, created.id, raise_scim_errors=False, expected_status_codes=None)
    assert isinstance(gone, Error) and gone.status == 404
    for user in (alice, bob, carol):
        assert scim.delete(User, user.id) is None
