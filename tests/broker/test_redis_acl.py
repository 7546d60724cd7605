"""The Redis ACL model alone: rules, descriptions, the ACL file, ACL LOG, the [resp] users config.

The replies themselves are compared with redis-server byte for byte in
``tests/interop/test_redis_acl_differential.py``; here the model's own promises are checked,
some of them for every sequence of rules hypothesis can think of.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.config import BrokerConfig
from broker.errors import ConfigError
from broker.security.exposure import exposure_warning, is_loopback_host
from broker.security.redis_acl import (
    CommandCatalog,
    RedisAcl,
    RedisAclError,
    apply_rule,
    describe_commands,
    describe_user,
    format_acl_file,
    hash_password,
    new_user,
    parse_acl_file,
)
from broker.security.redis_acl_log import AclLog

# A small catalog shaped like push mode's: a container with subcommands, categories overlapping.
CATALOG = CommandCatalog(
    categories={
        "ping": frozenset({"fast", "connection"}),
        "publish": frozenset({"pubsub", "fast"}),
        "subscribe": frozenset({"pubsub", "slow"}),
        "client": frozenset({"slow"}),
        "client|id": frozenset({"slow", "connection"}),
        "client|kill": frozenset({"admin", "slow", "dangerous", "connection"}),
        "flushall": frozenset({"keyspace", "write", "slow", "dangerous"}),
        "select": frozenset({"fast", "connection"}),
    },
    subcommands={"client": ("client|id", "client|kill")},
)


def make_user(*rules: str):
    user = new_user("u", all_channels=False)
    for rule in rules:
        apply_rule(user, rule, CATALOG, all_channels_default=False)
    return user


def test_passwords_are_kept_as_sha256_only() -> None:
    user = make_user("on", ">secret")
    assert user.passwords == [hashlib.sha256(b"secret").hexdigest()]
    assert "secret" not in describe_user(user, CATALOG).split()
    assert user.check_password(b"secret") and not user.check_password(b"Secret")
    assert hash_password("secret") == "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"


def test_an_off_user_never_authenticates() -> None:
    assert not make_user(">secret").check_password(b"secret")
    assert not make_user("nopass").check_password(b"anything")
    assert make_user("on", "nopass").check_password(b"anything")


def test_container_rules_reach_subcommands_and_subcommand_rules_only_themselves() -> None:
    user = make_user("+client", "-client|kill")
    assert user.may_run("client|id", [b"CLIENT", b"ID"])
    assert not user.may_run("client|kill", [b"CLIENT", b"KILL"])
    assert describe_commands(user, CATALOG) == "-@all +client -client|kill"


def test_first_argument_rule() -> None:
    user = make_user("+select|0")
    assert user.may_run("select", [b"SELECT", b"0"]) and not user.may_run("select", [b"SELECT", b"1"])
    assert describe_commands(user, CATALOG) == "-@all +select|0"
    assert describe_commands(make_user("+select|0", "-select"), CATALOG) == "-@all"


def test_no_auth_commands_are_always_allowed() -> None:
    user = make_user("-@all")
    assert user.may_run("auth", [b"AUTH", b"x"]) and user.may_run("hello", [b"HELLO"])
    assert not user.may_run("ping", [b"PING"])


def test_channels_literal_and_pattern_rules() -> None:
    user = make_user("&news.*")
    assert user.may_use_channel(b"news.today", False)
    assert not user.may_use_channel(b"sports", False)
    # PSUBSCRIBE: the pattern itself must be one of the user's patterns.
    assert user.may_use_channel(b"news.*", True) and not user.may_use_channel(b"news.t*", True)
    # The verdict cache forgets when the rules change.
    apply_rule(user, "resetchannels", CATALOG, all_channels_default=False)
    assert not user.may_use_channel(b"news.today", False)


def test_unrestricted_only_with_every_command_and_channel() -> None:
    assert make_user("+@all", "allchannels").unrestricted
    assert not make_user("+@all", "allchannels", "-client|kill").unrestricted
    assert not make_user("+@all", "&x").unrestricted


@pytest.mark.parametrize(("rule", "message"), [
    ("foo", "Syntax error"),
    ("+nosuch", "Unknown command or category name in ACL"),
    ("+@nosuch", "Unknown command or category name in ACL"),
    ("+client|", "Syntax error"),
    ("+client|id|x", "Allowing first-arg of a subcommand is not supported"),
    ("+select|", "Syntax error"),
    ("#ABC", "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"),
    ("<nope", "The password you are trying to remove from the user does not exist"),
    ("%X~k", "Syntax error"),
    ("(+ping)", "Selectors are not supported by dualmq"),
])
def test_malformed_rules_are_refused_with_redis_messages(rule: str, message: str) -> None:
    with pytest.raises(RedisAclError) as caught:
        make_user(rule)
    assert str(caught.value) == message


def test_setuser_is_all_or_nothing() -> None:
    acl = RedisAcl(catalog=CATALOG)
    acl.set_user("alice", ["on", ">a", "+ping"])
    before = describe_user(acl.users["alice"], CATALOG)
    with pytest.raises(RedisAclError) as caught:
        acl.set_user("alice", ["off", "-ping", "+bad"])
    assert caught.value.args == ("+bad", "Unknown command or category name in ACL")
    assert describe_user(acl.users["alice"], CATALOG) == before
    with pytest.raises(RedisAclError):
        acl.set_user("bob", ["on", "+bad"])
    assert "bob" not in acl.users


def test_auth_required_follows_the_default_user() -> None:
    acl = RedisAcl(catalog=CATALOG)
    assert not acl.auth_required() and acl.default_user.unrestricted
    acl.set_user("default", [">pw"])
    assert acl.auth_required()
    assert acl.authenticate("default", b"pw") is acl.default_user
    assert acl.authenticate("default", b"nope") is None and acl.authenticate("ghost", b"pw") is None


def test_acl_file_round_trip() -> None:
    acl = RedisAcl(catalog=CATALOG)
    acl.set_user("alice", ["on", ">a", "+@pubsub", "-subscribe", "&news.*", "~k*"])
    acl.set_user("ops", ["on", "#" + "0" * 64, "+@all", "-client|kill", "allchannels"])
    text = format_acl_file(acl)
    loaded = RedisAcl(catalog=CATALOG)
    loaded.replace_all(parse_acl_file(text, "users.acl"))
    assert format_acl_file(loaded) == text
    assert text.splitlines()[0].startswith("user alice on #")


def test_acl_file_errors() -> None:
    with pytest.raises(RedisAclError, match="users.acl:2: line should start with user keyword"):
        parse_acl_file("# comment\nfoo bar\n", "users.acl")
    acl = RedisAcl(catalog=CATALOG)
    with pytest.raises(RedisAclError) as caught:
        acl.replace_all([("a", ["on"]), ("a", ["off"])])
    assert caught.value.args[0] == "a"
    assert list(acl.users) == ["default"]


_RULES = st.sampled_from([
    "+@all", "-@all", "+@pubsub", "-@pubsub", "+@slow", "-@slow", "+@fast", "-@fast", "+@connection",
    "-@dangerous", "+ping", "-ping", "+client", "-client", "+client|kill", "-client|kill", "+client|id",
    "+publish", "-publish", "+select|0", "+select|1", "-select", "+flushall", "allcommands", "nocommands",
])


@given(st.lists(_RULES, max_size=12))
def test_the_description_rebuilds_the_same_permissions(rules: list[str]) -> None:
    """ACL LIST's command rules, applied to a fresh user, allow exactly what the user may run."""
    user = make_user(*rules)
    again = make_user(*describe_commands(user, CATALOG).split())
    assert again.commands == user.commands
    assert again.first_args == {k: v for k, v in user.first_args.items() if k not in user.commands}
    assert again.future_commands == user.future_commands


def test_acl_log_groups_like_entries_within_a_minute() -> None:
    log = AclLog(max_len=2)
    log.add("command", "ping", "alice", "info-1", 1000)
    log.add("command", "ping", "alice", "info-2", 2000)
    assert [(e.count, e.client_info) for e in log.entries] == [(2, "info-2")]
    log.add("channel", "x", "alice", "i", 3000)
    log.add("command", "ping", "alice", "info-3", 4000)
    assert [(e.reason, e.count) for e in log.entries] == [("command", 3), ("channel", 1)]
    log.add("command", "ping", "alice", "late", 4000 + 61_000)
    assert [(e.reason, e.count) for e in log.entries] == [("command", 1), ("command", 3)]


def test_resp_users_config_hashes_passwords() -> None:
    config = BrokerConfig.from_dict({"resp": {"users": [
        {"name": "alice", "password": "s3cret", "rules": "on +@pubsub"},
        {"name": "bob", "password_hash": hash_password("x")},
    ]}})
    alice, bob = config.resp.users
    assert alice.password_hash == hash_password("s3cret") and "s3cret" not in repr(config)
    assert alice.acl_rules() == ["#" + hash_password("s3cret"), "on", "+@pubsub"]
    assert bob.rules == "" and bob.password_hash == hash_password("x")
    assert "requirepass" not in repr(BrokerConfig.from_dict({"resp": {"requirepass": "top"}}).resp)


@pytest.mark.parametrize(("resp", "message"), [
    ({"users": [{"name": "a", "password": "x", "password_hash": "y"}]}, "not both"),
    ({"users": [{"name": "a", "password_hash": "ABC"}]}, "64 lowercase hex"),
    ({"users": [{"name": "a b"}]}, "without spaces"),
    ({"users": [{"name": "a", "colour": "red"}]}, "resp.users[0].'colour'"),
    ({"users": [{"name": "a"}, {"name": "a"}]}, "more than once"),
    ({"users": [{"name": "a"}], "aclfile": "users.acl"}, "cannot both be set"),
    ({"users": {"name": "a"}}, "array of tables"),
    ({"acl_pubsub_default": "some"}, "resetchannels, allchannels"),
    ({"protected_mode": "no"}, "true or false"),
])
def test_bad_security_config_is_refused(resp: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        BrokerConfig.from_dict({"resp": resp})


def test_exposure_warning_only_for_reachable_listeners_without_authentication() -> None:
    assert is_loopback_host("127.0.0.1") and is_loopback_host("::1") and is_loopback_host("localhost")
    assert not is_loopback_host("0.0.0.0") and not is_loopback_host("::") and not is_loopback_host("example.org")
    assert exposure_warning("RESP listener", "127.0.0.1", authentication_required=False) is None
    assert exposure_warning("RESP listener", "0.0.0.0", authentication_required=True) is None
    warning = exposure_warning("RESP listener 0.0.0.0:6379", "0.0.0.0", authentication_required=False,
                               mitigation="protected mode")
    assert warning == ("RESP listener 0.0.0.0:6379 is reachable from other machines and requires no "
                       "authentication; protected mode")
