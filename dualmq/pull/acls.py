"""Kafka ACLs from the SDK: create, list and delete access-control bindings (the Admin's part).

    async with Admin(address, **security) as admin:
        await admin.create_acls([Acl("User:alice", "read", "topic", "orders-", pattern="prefixed")])
        for acl in await admin.describe_acls(principal="User:alice"):
            print(acl)

An ``Acl`` is Kafka's binding in words instead of wire codes: a principal (``User:alice``,
``User:*``), an operation (``read``, ``write``, ``create``, ``delete``, ``alter``, ``describe``,
``describe_configs``, ``alter_configs``, ``idempotent_write``, ``all``), a resource type
(``topic``, ``group``, ``cluster``), a resource name (``kafka-cluster`` for the cluster), a
pattern (``literal`` or ``prefixed``), a permission (``allow`` or ``deny``) and a host (``*``).
The numbers are Kafka's (the ``AclOperation``, ``ResourceType``, ``PatternType`` and
``AclPermissionType`` of its clients), so these calls work against a real Kafka cluster with an
authorizer as well as against dualmq.

Not here: the broker's decisions (``broker.security.authorizer``).
"""

from __future__ import annotations

import attrs

from dualmq.errors import KafkaError
from wire.kafka.errors import ErrorCode
from wire.kafka.messages.security import CREATE_ACLS, DELETE_ACLS, DESCRIBE_ACLS

__all__ = ["Acl", "AclFilter"]

# Kafka's wire codes, by the lower-case names this module speaks. "any" (and "match" for
# patterns) exist only in filters.
RESOURCE_TYPES = {"any": 1, "topic": 2, "group": 3, "cluster": 4, "transactional_id": 5}
PATTERN_TYPES = {"any": 1, "match": 2, "literal": 3, "prefixed": 4}
OPERATIONS = {"any": 1, "all": 2, "read": 3, "write": 4, "create": 5, "delete": 6, "alter": 7, "describe": 8,
              "cluster_action": 9, "describe_configs": 10, "alter_configs": 11, "idempotent_write": 12}
PERMISSIONS = {"any": 1, "deny": 2, "allow": 3}
CLUSTER_NAME = "kafka-cluster"


def _code(table: dict[str, int], kind: str, value: str, *, concrete: bool) -> int:
    key = value.lower().replace("-", "_")
    if key not in table or (concrete and key in ("any", "match")):
        allowed = [name for name in table if not (concrete and name in ("any", "match"))]
        raise ValueError(f"unknown {kind} {value!r}; one of {', '.join(allowed)}")
    return table[key]


def _name(table: dict[str, int], code: int) -> str:
    return next((name for name, number in table.items() if number == code), str(code))


@attrs.frozen
class Acl:
    """One ACL binding (Kafka's terms; see the module docstring)."""

    principal: str
    operation: str
    resource_type: str
    resource_name: str
    pattern: str = "literal"
    permission: str = "allow"
    host: str = "*"

    def to_wire(self) -> dict:
        """A CreateAcls ``creations`` entry.

        Raises:
            ValueError: an unknown name (or a filter-only one such as ``any``).
        """
        return {"resource_type": _code(RESOURCE_TYPES, "resource type", self.resource_type, concrete=True),
                "resource_name": self.resource_name,
                "resource_pattern_type": _code(PATTERN_TYPES, "pattern", self.pattern, concrete=True),
                "principal": self.principal, "host": self.host,
                "operation": _code(OPERATIONS, "operation", self.operation, concrete=True),
                "permission_type": _code(PERMISSIONS, "permission", self.permission, concrete=True)}

    @classmethod
    def from_wire(cls, resource: dict, acl: dict) -> Acl:
        return cls(principal=acl["principal"], operation=_name(OPERATIONS, acl["operation"]),
                   resource_type=_name(RESOURCE_TYPES, resource["resource_type"]),
                   resource_name=resource["resource_name"], pattern=_name(PATTERN_TYPES, resource["pattern_type"]),
                   permission=_name(PERMISSIONS, acl["permission_type"]), host=acl["host"])

    def __str__(self) -> str:
        return (f"{self.principal} {self.permission} {self.operation} from {self.host} on "
                f"{self.resource_type} {self.pattern} {self.resource_name!r}")


@attrs.frozen
class AclFilter:
    """Which bindings to list or delete: None / ``any`` matches everything; ``pattern="match"``
    selects every binding that applies to the named resource (literal, ``*`` and prefixed)."""

    principal: str | None = None
    operation: str = "any"
    resource_type: str = "any"
    resource_name: str | None = None
    pattern: str = "any"
    permission: str = "any"
    host: str | None = None

    def to_wire(self) -> dict:
        return {"resource_type_filter": _code(RESOURCE_TYPES, "resource type", self.resource_type, concrete=False),
                "resource_name_filter": self.resource_name,
                "pattern_type_filter": _code(PATTERN_TYPES, "pattern", self.pattern, concrete=False),
                "principal_filter": self.principal, "host_filter": self.host,
                "operation": _code(OPERATIONS, "operation", self.operation, concrete=False),
                "permission_type": _code(PERMISSIONS, "permission", self.permission, concrete=False)}


def _raise_for(code: int, message: str | None) -> None:
    if code != ErrorCode.NONE:
        raise KafkaError(code, message or "")


async def create_acls(client, acls: list[Acl]) -> None:
    """CreateAcls; raises the first binding's error (the others may have been created)."""
    reply = await client.request(CREATE_ACLS.key, {"creations": [acl.to_wire() for acl in acls]})
    for acl, result in zip(acls, reply["results"]):
        _raise_for(result["error_code"], f"{acl}: {result['error_message'] or ''}")


async def describe_acls(client, selection: AclFilter) -> list[Acl]:
    """DescribeAcls: the bindings ``selection`` matches."""
    reply = await client.request(DESCRIBE_ACLS.key, selection.to_wire())
    _raise_for(reply["error_code"], reply["error_message"])
    return [Acl.from_wire(resource, acl) for resource in reply["resources"] for acl in resource["acls"]]


async def delete_acls(client, selection: AclFilter) -> list[Acl]:
    """DeleteAcls with one filter: the bindings it removed."""
    reply = await client.request(DELETE_ACLS.key, {"filters": [selection.to_wire()]})
    (result,) = reply["filter_results"]
    _raise_for(result["error_code"], result["error_message"])
    removed = []
    for match in result["matching_acls"]:
        _raise_for(match["error_code"], match["error_message"])
        removed.append(Acl.from_wire(match, match))
    return removed
