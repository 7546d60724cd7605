"""Kafka's authorizer model: ACL bindings, filters, and the allow/deny decision.

What lives here, in Kafka's terms (its ``AclAuthorizer`` / ``StandardAuthorizer``):

* a **binding** says: *principal* (``User:alice``, or ``User:*`` for everyone) from *host*
  (``*`` for any) is *allowed* or *denied* *operation* on the resources a *pattern* names;
* a **pattern** is a resource type (Topic, Group, Cluster, ...), a name, and how the name
  matches: ``LITERAL`` (that name, or every name when it is ``*``) or ``PREFIXED`` (every name
  starting with it);
* the **decision** for (principal, host, operation, resource): super users may do anything; any
  matching DENY wins over every ALLOW; otherwise a matching ALLOW is needed, where ALLOW of
  Read, Write, Delete or Alter implies Describe, and AlterConfigs implies DescribeConfigs, and
  ``All`` matches every operation. A resource no binding at all matches is allowed only when
  ``allow_everyone_if_no_acl_found`` is set (Kafka's setting of the same name);
* a **filter** (DescribeAcls, DeleteAcls) matches bindings field by field, with ``ANY`` (and a
  null name, principal or host) matching everything, and pattern type ``MATCH`` matching every
  pattern that would apply to the named resource.

The numbers are Kafka's wire codes (``ResourceType``, ``PatternType``, ``AclOperation``,
``AclPermissionType`` in Kafka's clients), so the front-end passes them through unchanged.
The bindings live in ``acls.json`` in the data directory, rewritten whole on every change
(``broker.files.write_atomically``), so ACLs survive a restart as Kafka's do.

Not here: which request needs which operation, and the error it answers (``modes.pull``).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from pathlib import Path

import attrs

from broker.errors import DamagedFile
from broker.files import write_atomically

__all__ = [
    "ACL_FILE",
    "AclBinding",
    "AclFilter",
    "Authorizer",
    "Operation",
    "PatternType",
    "Permission",
    "ResourceType",
]

ACL_FILE = "acls.json"
WILDCARD = "*"
ANY_PRINCIPAL = "User:*"


class ResourceType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class Operation(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12


class Permission(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


# An ALLOW of any of these grants the key too (Kafka: "Describe is implied by Read, Write, ...").
_IMPLIED_BY: dict[Operation, frozenset[Operation]] = {
    Operation.DESCRIBE: frozenset({Operation.READ, Operation.WRITE, Operation.DELETE, Operation.ALTER}),
    Operation.DESCRIBE_CONFIGS: frozenset({Operation.ALTER_CONFIGS}),
}
# The cluster resource has one name in Kafka.
CLUSTER_NAME = "kafka-cluster"


def _enum(kind: type[enum.IntEnum], value: object, concrete: bool) -> enum.IntEnum:
    """``kind(value)``, refusing UNKNOWN (and, for a binding, the filter-only ANY/MATCH)."""
    try:
        member = kind(value) if isinstance(value, int) else kind[str(value).upper()]
    except (KeyError, ValueError):
        raise ValueError(f"unknown {kind.__name__} {value!r}") from None
    refused = {"UNKNOWN"} | ({"ANY", "MATCH"} if concrete else set())
    if member.name in refused:
        raise ValueError(f"{kind.__name__} {member.name} is not allowed here")
    return member


@attrs.frozen
class AclBinding:
    """One ACL: who may (or may not) do what on which resources."""

    resource_type: ResourceType = attrs.field(converter=lambda v: _enum(ResourceType, v, True))
    resource_name: str
    pattern_type: PatternType = attrs.field(converter=lambda v: _enum(PatternType, v, True))
    principal: str
    host: str
    operation: Operation = attrs.field(converter=lambda v: _enum(Operation, v, True))
    permission: Permission = attrs.field(converter=lambda v: _enum(Permission, v, True))

    def __attrs_post_init__(self) -> None:
        if not self.principal.startswith("User:") or len(self.principal) == len("User:"):
            raise ValueError(f"principal {self.principal!r} must be User:<name> or User:*")
        if not self.resource_name:
            raise ValueError("the resource name must not be empty")
        if self.pattern_type is PatternType.PREFIXED and self.resource_name == WILDCARD:
            raise ValueError("a PREFIXED pattern cannot be '*' (use LITERAL '*')")
        if self.resource_type is ResourceType.CLUSTER and self.resource_name != CLUSTER_NAME:
            raise ValueError(f"the cluster resource is named {CLUSTER_NAME!r}")

    def applies_to(self, resource_type: ResourceType, name: str) -> bool:
        """Whether this binding's pattern covers the resource ``(resource_type, name)``."""
        if self.resource_type is not resource_type:
            return False
        if self.pattern_type is PatternType.LITERAL:
            return self.resource_name in (name, WILDCARD)
        return name.startswith(self.resource_name)

    def to_json(self) -> dict:
        return {"resource_type": self.resource_type.name, "resource_name": self.resource_name,
                "pattern_type": self.pattern_type.name, "principal": self.principal, "host": self.host,
                "operation": self.operation.name, "permission": self.permission.name}

    def describe(self) -> str:
        """One line as ``kafka-acls --list`` would say it."""
        return (f"{self.principal} {self.permission.name} {self.operation.name} from {self.host} on "
                f"{self.resource_type.name} {self.pattern_type.name} {self.resource_name!r}")


@attrs.frozen
class AclFilter:
    """What DescribeAcls and DeleteAcls select: each None / ANY matches everything."""

    resource_type: ResourceType = ResourceType.ANY
    resource_name: str | None = None
    pattern_type: PatternType = PatternType.ANY
    principal: str | None = None
    host: str | None = None
    operation: Operation = Operation.ANY
    permission: Permission = Permission.ANY

    def matches(self, binding: AclBinding) -> bool:
        if self.resource_type is not ResourceType.ANY and binding.resource_type is not self.resource_type:
            return False
        if self.pattern_type is PatternType.MATCH:
            # Every binding that would apply to the named resource (Kafka's MATCH filter).
            if self.resource_name is not None and not binding.applies_to(binding.resource_type,
                                                                         self.resource_name):
                return False
        else:
            if self.pattern_type is not PatternType.ANY and binding.pattern_type is not self.pattern_type:
                return False
            if self.resource_name is not None and binding.resource_name != self.resource_name:
                return False
        if self.principal is not None and binding.principal != self.principal:
            return False
        if self.host is not None and binding.host != self.host:
            return False
        if self.operation is not Operation.ANY and binding.operation is not self.operation:
            return False
        return self.permission is Permission.ANY or binding.permission is self.permission


@attrs.define
class Authorizer:
    """The ACLs in force and the decisions made from them.

    Args:
        super_users: principals allowed everything (``User:admin``), as Kafka's ``super.users``.
        allow_everyone_if_no_acl_found: allow when no binding matches the resource at all.
        path: where the bindings are kept (None: in memory only, for tests).
    """

    super_users: frozenset[str] = frozenset()
    allow_everyone_if_no_acl_found: bool = False
    path: Path | None = None
    bindings: list[AclBinding] = attrs.field(factory=list)

    @classmethod
    def open(cls, data_dir: Path, *, super_users: Iterable[str],
             allow_everyone_if_no_acl_found: bool) -> Authorizer:
        """Load ``acls.json`` from ``data_dir`` (none yet: no ACLs).

        Raises:
            DamagedFile: the file exists but does not hold a list of valid bindings.
        """
        path = Path(data_dir) / ACL_FILE
        authorizer = cls(frozenset(super_users), allow_everyone_if_no_acl_found, path)
        if path.exists():
            try:
                entries = json.loads(path.read_text(encoding="utf-8"))
                authorizer.bindings = [AclBinding(**entry) for entry in entries]
            except (OSError, ValueError, TypeError) as exc:
                raise DamagedFile(f"{path}: not a list of ACL bindings ({exc})") from None
        return authorizer

    def authorize(self, principal: str, host: str, operation: Operation, resource_type: ResourceType,
                  name: str) -> bool:
        """Whether ``principal`` connecting from ``host`` may do ``operation`` on the resource."""
        if principal in self.super_users:
            return True
        applicable = [b for b in self.bindings if b.applies_to(resource_type, name)]
        if not applicable:
            return self.allow_everyone_if_no_acl_found
        mine = [b for b in applicable
                if b.principal in (principal, ANY_PRINCIPAL) and b.host in (host, WILDCARD)]
        implied_by = _IMPLIED_BY.get(operation, frozenset())
        for binding in mine:
            if binding.permission is Permission.DENY and binding.operation in (operation, Operation.ALL):
                return False
        return any(binding.permission is Permission.ALLOW
                   and (binding.operation in (operation, Operation.ALL) or binding.operation in implied_by)
                   for binding in mine)

    def authorize_any(self, principal: str, host: str, operation: Operation,
                      resource_type: ResourceType) -> bool:
        """Whether some resource of ``resource_type`` exists on which ``operation`` could be
        allowed (Kafka's ``authorizeByResourceType``, used by InitProducerId): a super user, a
        wildcard-allowed setting, or an ALLOW binding not cancelled by a wildcard DENY."""
        if principal in self.super_users:
            return True
        mine = [b for b in self.bindings if b.resource_type is resource_type
                and b.principal in (principal, ANY_PRINCIPAL) and b.host in (host, WILDCARD)
                and b.operation in (operation, Operation.ALL)]
        if any(b.permission is Permission.DENY and b.pattern_type is PatternType.LITERAL
               and b.resource_name == WILDCARD for b in mine):
            return False
        if any(b.permission is Permission.ALLOW for b in mine):
            return True
        return self.allow_everyone_if_no_acl_found and not any(
            b.resource_type is resource_type for b in self.bindings)

    def describe(self, selection: AclFilter) -> list[AclBinding]:
        """The bindings ``selection`` matches, in the order they were added."""
        return [b for b in self.bindings if selection.matches(b)]

    def create(self, bindings: Iterable[AclBinding]) -> None:
        """Add bindings (one already present is not added twice) and save.

        Raises:
            OSError: the ACL file could not be written; nothing changed in memory.
        """
        updated = list(self.bindings)
        for binding in bindings:
            if binding not in updated:
                updated.append(binding)
        self._save(updated)

    def delete(self, selections: list[AclFilter]) -> list[list[AclBinding]]:
        """Remove every binding each filter matches and save; what each filter removed.

        Raises:
            OSError: the ACL file could not be written; nothing changed in memory.
        """
        removed = [self.describe(selection) for selection in selections]
        gone = {binding for group in removed for binding in group}
        self._save([b for b in self.bindings if b not in gone])
        return removed

    def _save(self, bindings: list[AclBinding]) -> None:
        if self.path is not None:
            data = json.dumps([b.to_json() for b in bindings], indent=1).encode()
            write_atomically(self.path, data)
        self.bindings = bindings
