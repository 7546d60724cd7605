"""Kafka's authorization rules: each boundary allowed on one side and denied on the other."""

from __future__ import annotations

import json

import pytest

from broker.errors import DamagedFile
from broker.security.authorizer import (
    ACL_FILE,
    AclBinding,
    AclFilter,
    Authorizer,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)

TOPIC, GROUP = ResourceType.TOPIC, ResourceType.GROUP


def acl(name, operation, *, principal="User:alice", pattern="LITERAL", permission="ALLOW",
        resource=TOPIC, host="*"):
    return AclBinding(resource_type=resource, resource_name=name, pattern_type=pattern, principal=principal,
                      host=host, operation=operation, permission=permission)


def test_literal_allow_is_exact_and_wildcard_name_covers_all():
    auth = Authorizer(bindings=[acl("orders", "READ"), acl("*", "WRITE", principal="User:bob")])
    assert auth.authorize("User:alice", "h", Operation.READ, TOPIC, "orders")
    assert not auth.authorize("User:alice", "h", Operation.READ, TOPIC, "orders2")
    assert auth.authorize("User:bob", "h", Operation.WRITE, TOPIC, "anything")
    assert not auth.authorize("User:bob", "h", Operation.READ, TOPIC, "anything")


def test_prefixed_pattern_matches_names_starting_with_it_only():
    auth = Authorizer(bindings=[acl("pay-", "WRITE", pattern="PREFIXED")])
    assert auth.authorize("User:alice", "h", Operation.WRITE, TOPIC, "pay-eu")
    assert not auth.authorize("User:alice", "h", Operation.WRITE, TOPIC, "payroll")


def test_deny_wins_over_allow():
    auth = Authorizer(bindings=[acl("*", "ALL"), acl("secret", "READ", permission="DENY")])
    assert auth.authorize("User:alice", "h", Operation.READ, TOPIC, "public")
    assert not auth.authorize("User:alice", "h", Operation.READ, TOPIC, "secret")


def test_read_implies_describe_but_describe_does_not_imply_read():
    auth = Authorizer(bindings=[acl("t", "READ"), acl("u", "DESCRIBE")])
    assert auth.authorize("User:alice", "h", Operation.DESCRIBE, TOPIC, "t")
    assert not auth.authorize("User:alice", "h", Operation.READ, TOPIC, "u")


def test_principal_wildcard_host_and_resource_type_boundaries():
    auth = Authorizer(bindings=[acl("g", "READ", principal="User:*", resource=GROUP),
                                acl("t", "READ", host="10.0.0.1")])
    assert auth.authorize("User:anyone", "h", Operation.READ, GROUP, "g")
    assert not auth.authorize("User:anyone", "h", Operation.READ, TOPIC, "g")
    assert auth.authorize("User:alice", "10.0.0.1", Operation.READ, TOPIC, "t")
    assert not auth.authorize("User:alice", "10.0.0.2", Operation.READ, TOPIC, "t")


def test_super_users_and_no_acl_found_setting():
    closed = Authorizer(super_users=frozenset({"User:admin"}))
    assert closed.authorize("User:admin", "h", Operation.DELETE, TOPIC, "t")
    assert not closed.authorize("User:alice", "h", Operation.DELETE, TOPIC, "t")
    open_ = Authorizer(allow_everyone_if_no_acl_found=True, bindings=[acl("guarded", "READ")])
    assert open_.authorize("User:bob", "h", Operation.READ, TOPIC, "unguarded")
    assert not open_.authorize("User:bob", "h", Operation.READ, TOPIC, "guarded")


def test_filters_select_and_delete_and_acls_persist(tmp_path):
    auth = Authorizer.open(tmp_path, super_users=(), allow_everyone_if_no_acl_found=False)
    auth.create([acl("a", "READ"), acl("b-", "WRITE", pattern="PREFIXED"), acl("a", "READ")])
    assert len(auth.bindings) == 2  # the duplicate was not added twice
    match = AclFilter(resource_type=TOPIC, resource_name="b-x", pattern_type=PatternType.MATCH)
    assert [b.resource_name for b in auth.describe(match)] == ["b-"]
    assert auth.describe(AclFilter(resource_name="zzz")) == []
    reopened = Authorizer.open(tmp_path, super_users=(), allow_everyone_if_no_acl_found=False)
    assert reopened.bindings == auth.bindings
    removed = reopened.delete([AclFilter(operation=Operation.READ)])
    assert [b.resource_name for b in removed[0]] == ["a"]
    assert [b["resource_name"] for b in json.loads((tmp_path / ACL_FILE).read_text())] == ["b-"]


@pytest.mark.parametrize("bad", [
    dict(principal="alice"), dict(pattern="MATCH"), dict(operation="ANY"), dict(permission="ANY"),
    dict(name="*", pattern="PREFIXED"), dict(name=""),
])
def test_invalid_bindings_are_refused(bad):
    fields = dict(name="t", operation="READ") | bad
    with pytest.raises(ValueError):
        acl(fields.pop("name"), fields.pop("operation"), **fields)


def test_damaged_acl_file_is_refused(tmp_path):
    (tmp_path / ACL_FILE).write_text('[{"resource_type": "TOPIC"}]')
    with pytest.raises(DamagedFile, match="acls.json"):
        Authorizer.open(tmp_path, super_users=(), allow_everyone_if_no_acl_found=False)


def test_permission_enum_is_kafkas_numbering():
    assert (Permission.DENY, Permission.ALLOW, Operation.DESCRIBE_CONFIGS, PatternType.PREFIXED) == (2, 3, 10, 4)
