"""``dualmq users``: add and list users without hand-editing (passwords hashed).

    dualmq users add NAME --mode push --config FILE [--rules "on +@pubsub &news.*"]
    dualmq users add NAME --mode pull --config FILE
    dualmq users list --mode push|pull --config FILE

``add`` reads the password from standard input (one line; asked for twice on a terminal), so
it never appears on a command line, and stores only its SHA-256 digest: in the config file as
a ``[[resp.users]]`` table with ``password_hash``, or — when the file names an ``aclfile`` — as
a ``user`` line of that ACL file, Redis's format. The file is written only if the result still
loads and every rule is one Redis accepts, and it is replaced atomically. A running broker
reads the change at its next start (an ACL file also at ``ACL LOAD``).

With ``--mode pull`` the user is a Kafka SASL user: a ``[[kafka.users]]`` table whose
``password_hash`` holds the SCRAM-SHA-256 and SCRAM-SHA-512 credentials (salt, iterations, stored
and server keys: ``broker.security.scram``), the same the broker derives from a ``password`` key.
What the user may do is a matter of ACLs: ``dualmq acl``.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import tomllib
from pathlib import Path

from broker.config import BrokerConfig
from broker.errors import ConfigError
from broker.files import write_atomically
from broker.security.kafka_users import KafkaUser
from broker.security.redis_acl import RedisAcl, RedisAclError, describe_user, hash_password, parse_acl_file
from broker.security.redis_users import RespUser
from modes.push.commands.acl import build_acl

__all__ = ["add_parsers"]


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Register ``users add`` and ``users list``."""
    users = commands.add_parser("users", help="add or list ACL users (passwords stored hashed)")
    actions = users.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add a user to the config file (or its aclfile)")
    add.add_argument("name", help="the user name (no spaces)")
    add.add_argument("--rules", default="on +@pubsub",
                     help='Redis ACL rules (default "on +@pubsub": may publish and subscribe; add channels '
                          'with &pattern, e.g. "on +@pubsub &news.*")')
    add.add_argument("--nopass", action="store_true", help="no password: any password lets the user in (Redis nopass)")
    listing = actions.add_parser("list", help="list the users the config file (or its aclfile) defines")
    for sub in (add, listing):
        sub.add_argument("--mode", required=True, choices=("push", "pull"),
                         help="push: Redis ACL users ([[resp.users]] or resp.aclfile); "
                              "pull: Kafka SASL users ([[kafka.users]], SCRAM hashes)")
        sub.add_argument("--config", required=True, type=Path, metavar="FILE", help="the broker's TOML config file")
    add.set_defaults(handler=_add)
    listing.set_defaults(handler=_list)


def _read_password(name: str) -> str:
    if not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("the two passwords differ; nothing was written")
    if not password:
        raise ConfigError("empty password (use --nopass for a user without one); nothing was written")
    return password


def _add(args: argparse.Namespace) -> int:
    if args.mode == "pull":
        return _add_pull(args)
    config = BrokerConfig.from_toml(args.config).resp
    acl = build_acl(config)
    if args.name in acl.users:
        raise ConfigError(f"user {args.name!r} already exists in {config.aclfile or args.config}; nothing was written")
    rules = (["nopass"] if args.nopass else []) + args.rules.split()
    digest = "" if args.nopass else hash_password(_read_password(args.name))
    user = RespUser(name=args.name, password_hash=digest, rules=" ".join(rules))
    if config.aclfile:
        path = Path(config.aclfile)
        try:
            acl.set_user(args.name, user.acl_rules())
        except RedisAclError as exc:
            raise ConfigError(f"rule {exc.args[0]!r}: {exc.args[-1]}; nothing was written") from None
        line = describe_user(acl.users[args.name], acl.catalog) + "\n"
        text = path.read_text("utf-8") if path.exists() else ""
        new_text = text + ("\n" if text and not text.endswith("\n") else "") + line
        parse_acl_file(new_text, str(path))
    else:
        path = args.config
        text = path.read_text("utf-8")
        table = user.to_table()
        lines = ["", "[[resp.users]]"] + [f"{key} = {_toml_string(value)}" for key, value in table.items()]
        new_text = text + ("\n" if text and not text.endswith("\n") else "") + "\n".join(lines) + "\n"
        _check_loads(path, new_text)
    write_atomically(path, new_text.encode("utf-8"))
    print(f"added push-mode user {args.name!r} to {path} (password stored as its SHA-256 digest); "
          f"restart the broker{' or run ACL LOAD' if config.aclfile else ''} to use it")
    return 0


def _check_loads(path: Path, text: str) -> None:
    """Refuse a config text that would not load, or whose users Redis would refuse."""
    try:
        build_acl(BrokerConfig.from_dict(tomllib.loads(text)).resp)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} would not be valid TOML after the addition ({exc}); nothing was written") from None
    except ConfigError as exc:
        raise ConfigError(f"{exc}; nothing was written") from None


def _toml_string(value: str) -> str:
    """A TOML basic string (quotes and backslashes escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _add_pull(args: argparse.Namespace) -> int:
    if args.nopass:
        raise ConfigError("--nopass is for push mode; a Kafka SASL user always has a password")
    if args.name in {user.name for user in BrokerConfig.from_toml(args.config).kafka.users}:
        raise ConfigError(f"user {args.name!r} already exists in {args.config}; nothing was written")
    user = KafkaUser.with_password(args.name, _read_password(args.name))
    hashes = ", ".join(_toml_string(text) for text in user.to_table()["password_hash"])
    path = args.config
    text = path.read_text("utf-8")
    new_text = (text + ("\n" if text and not text.endswith("\n") else "")
                + f"\n[[kafka.users]]\nname = {_toml_string(args.name)}\npassword_hash = [{hashes}]\n")
    _check_loads(path, new_text)
    write_atomically(path, new_text.encode("utf-8"))
    print(f"added pull-mode user {args.name!r} to {path} (password stored as SCRAM-SHA-256/512 credentials); "
          f"restart the broker to use it")
    return 0


def _list(args: argparse.Namespace) -> int:
    if args.mode == "pull":
        for kafka_user in BrokerConfig.from_toml(args.config).kafka.users:
            print(kafka_user.name)
        return 0
    acl: RedisAcl = build_acl(BrokerConfig.from_toml(args.config).resp)
    for user in acl.sorted_users():
        print(describe_user(user, acl.catalog))
    return 0
