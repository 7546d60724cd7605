"""Push mode's configured users: ``[[resp.users]]`` tables, with passwords hashed at load.

What lives here: ``RespUser``, one table — a name, the SHA-256 digest of its password (a
``password`` key is hashed the moment the config is loaded and the plain text dropped; a
``password_hash`` key carries a digest made earlier, e.g. by ``dualmq users add``) and its
Redis ACL rules — and ``parse_resp_users``, the config's converter.

Not here: what the rules mean (``broker.security.redis_acl``), turning the tables into the
running users (``modes.push.commands.acl.build_acl``).
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from broker.errors import ConfigError
from broker.security.redis_acl import hash_password, valid_username

__all__ = ["RespUser", "parse_resp_users"]

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@attrs.frozen(kw_only=True)
class RespUser:
    """One ``[[resp.users]]`` table: an ACL user of push mode.

    ``rules`` are Redis's ACL SETUSER modifiers (``"on +@pubsub &news.*"``), applied after the
    password; without ``on`` the user exists but cannot log in, as in Redis.
    """

    name: str
    password_hash: str = attrs.field(default="", repr=False)
    rules: str = ""

    @classmethod
    def from_table(cls, table: Any, index: int) -> RespUser:
        """Read ``[[resp.users]]`` number ``index`` (for messages).

        Raises:
            ConfigError: naming the table and the key that is wrong (never the password).
        """
        where = f"resp.users[{index}]"
        if isinstance(table, RespUser):
            return table
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table with name, password (or password_hash), rules")
        unknown = set(table) - {"name", "password", "password_hash", "rules"}
        if unknown:
            raise ConfigError(f"unknown config key {where}.{sorted(unknown)[0]!r}; known: name, password, "
                              "password_hash, rules")
        name = table.get("name")
        if not isinstance(name, str) or not valid_username(name):
            raise ConfigError(f"{where}.name: expected a user name without spaces")
        rules = table.get("rules", "")
        if not isinstance(rules, str):
            raise ConfigError(f"{where}.rules: expected a string of ACL rules such as \"on +@pubsub &news.*\"")
        if "password" in table and "password_hash" in table:
            raise ConfigError(f"{where}: give password or password_hash, not both")
        digest = table.get("password_hash", "")
        if "password" in table:
            password = table["password"]
            if not isinstance(password, str) or not password:
                raise ConfigError(f"{where}.password: expected a non-empty string")
            digest = hash_password(password)
        elif digest and not (isinstance(digest, str) and _SHA256_HEX.fullmatch(digest)):
            raise ConfigError(f"{where}.password_hash: expected 64 lowercase hex digits (a SHA-256 digest)")
        return cls(name=name, password_hash=digest, rules=rules)

    def acl_rules(self) -> list[str]:
        """This user as ACL SETUSER modifiers: the password hash first, then the rules."""
        return (["#" + self.password_hash] if self.password_hash else []) + self.rules.split()

    def to_table(self) -> dict[str, str]:
        """The ``[[resp.users]]`` table that loads back into this user (the hash, never a password)."""
        table = {"name": self.name}
        if self.password_hash:
            table["password_hash"] = self.password_hash
        if self.rules:
            table["rules"] = self.rules
        return table


def parse_resp_users(value: Any) -> tuple[RespUser, ...]:
    """The config's converter for ``resp.users``: a list of tables (or of ``RespUser``).

    Raises:
        ConfigError: not an array of tables, or a table that is wrong.
    """
    if not isinstance(value, (list, tuple)):
        raise ConfigError("resp.users must be an array of tables ([[resp.users]])")
    return tuple(RespUser.from_table(table, index) for index, table in enumerate(value))
