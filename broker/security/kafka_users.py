"""Pull mode's users: ``[[kafka.users]]`` tables turned into salted SCRAM credentials.

What lives here: one :class:`KafkaUser` per configured user, holding a credential per SCRAM
mechanism and never the password (a ``password`` key is salted and hashed the moment the config
is loaded; a ``password_hash`` key carries credentials hashed earlier, e.g. by ``dualmq users``),
and :class:`KafkaUsers`, the lookup the SASL mechanisms use. Kafka keeps SCRAM credentials the
same way (``kafka-configs --alter --add-config SCRAM-SHA-256=[password=...]`` stores salt,
stored key, server key and iterations); for PLAIN it would read passwords from a JAAS file — we
check PLAIN against the SCRAM credential instead, so no plaintext is ever kept.

Not here: the exchange itself (``broker.security.scram``), what a user may do
(``broker.security.authorizer``).
"""

from __future__ import annotations

from typing import Any

import attrs

from broker.errors import ConfigError
from broker.security.scram import MECHANISMS, ScramCredential, ScramError, check_password, make_credential

__all__ = ["KafkaUser", "KafkaUsers", "parse_users"]


@attrs.frozen
class KafkaUser:
    """One user: its name and its stored credentials, one per SCRAM mechanism it has."""

    name: str
    credentials: tuple[ScramCredential, ...]

    def credential(self, mechanism: str) -> ScramCredential | None:
        return next((c for c in self.credentials if c.mechanism == mechanism), None)

    def to_table(self) -> dict[str, Any]:
        """The ``[[kafka.users]]`` table that loads back into this user (hashes only)."""
        return {"name": self.name, "password_hash": [c.encode() for c in self.credentials]}

    @classmethod
    def with_password(cls, name: str, password: str) -> KafkaUser:
        """A user with a fresh SHA-256 and SHA-512 credential for ``password``."""
        return cls(name, tuple(make_credential(password, mechanism) for mechanism in MECHANISMS))


def _user(index: int, table: Any) -> KafkaUser:
    where = f"kafka.users[{index}]"
    if isinstance(table, KafkaUser):
        return table
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table with name and password (or password_hash)")
    unknown = set(table) - {"name", "password", "password_hash"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: name, password, password_hash")
    name = table.get("name")
    if not isinstance(name, str) or not name or "," in name:
        raise ConfigError(f"{where}.name must be a non-empty string without ','")
    has_password, has_hash = "password" in table, "password_hash" in table
    if has_password == has_hash:
        raise ConfigError(f"{where} ({name}): give exactly one of password and password_hash")
    if has_password:
        password = table["password"]
        if not isinstance(password, str) or not password:
            raise ConfigError(f"{where} ({name}).password must be a non-empty string")
        return KafkaUser.with_password(name, password)
    hashes = table["password_hash"]
    hashes = [hashes] if isinstance(hashes, str) else hashes
    if not isinstance(hashes, list) or not hashes:
        raise ConfigError(f"{where} ({name}).password_hash must be a string or a list of strings")
    try:
        credentials = tuple(ScramCredential.decode(text) for text in hashes)
    except ScramError as exc:
        raise ConfigError(f"{where} ({name}).password_hash: {exc}") from None
    return KafkaUser(name, credentials)


def parse_users(value: Any) -> tuple[KafkaUser, ...]:
    """The ``users`` converter of ``KafkaConfig``: tables (or users) in, users out.

    Raises:
        ConfigError: a table that is not a valid user, or a name given twice.
    """
    if isinstance(value, tuple) and all(isinstance(u, KafkaUser) for u in value):
        users = value
    elif isinstance(value, (list, tuple)):
        users = tuple(_user(i, table) for i, table in enumerate(value))
    else:
        raise ConfigError("kafka.users must be an array of tables ([[kafka.users]])")
    names = [u.name for u in users]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"kafka.users: user(s) defined twice: {', '.join(twice)}")
    return users


@attrs.frozen
class KafkaUsers:
    """The users a listener authenticates against, by name."""

    by_name: dict[str, KafkaUser]

    @classmethod
    def of(cls, users: tuple[KafkaUser, ...]) -> KafkaUsers:
        return cls({u.name: u for u in users})

    def scram_credential(self, name: str, mechanism: str) -> ScramCredential | None:
        user = self.by_name.get(name)
        return None if user is None else user.credential(mechanism)

    def check_plain(self, name: str, password: str) -> bool:
        """Whether ``password`` is ``name``'s (checked against its stored SCRAM credential)."""
        user = self.by_name.get(name)
        if user is None or not user.credentials:
            return False
        return check_password(user.credentials[0], password)
