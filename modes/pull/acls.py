"""Between the ACL APIs' wire dicts and the authorizer's bindings and filters.

DescribeAcls, CreateAcls and DeleteAcls (``api/describe_acls.py`` and its two siblings) carry
the same seven numbers and strings in slightly different field names; this module turns them into
``broker.security.authorizer`` values and back, and says who may call them: Kafka asks for
Describe on the cluster to list ACLs and Alter on the cluster to change them.

Not here: matching and deciding (``broker.security.authorizer``).
"""

from __future__ import annotations

from broker.security.authorizer import (
    AclBinding,
    AclFilter,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)

__all__ = ["binding_from_creation", "binding_to_wire", "filter_from_wire", "SECURITY_DISABLED_MESSAGE"]

SECURITY_DISABLED_MESSAGE = "No Authorizer is configured on the broker (kafka.authorizer = false)"


def binding_from_creation(creation: dict) -> AclBinding:
    """A CreateAcls ``creations`` entry as a binding.

    Raises:
        ValueError: an unknown or filter-only code, a bad principal, an empty name.
    """
    return AclBinding(
        resource_type=creation["resource_type"], resource_name=creation["resource_name"],
        pattern_type=creation["resource_pattern_type"], principal=creation["principal"],
        host=creation["host"], operation=creation["operation"], permission=creation["permission_type"],
    )


def filter_from_wire(entry: dict) -> AclFilter:
    """A DescribeAcls request or a DeleteAcls ``filters`` entry as a filter.

    Raises:
        ValueError: a code Kafka does not define (UNKNOWN included).
    """
    try:
        selection = AclFilter(
            resource_type=ResourceType(entry["resource_type_filter"]),
            resource_name=entry["resource_name_filter"],
            pattern_type=PatternType(entry["pattern_type_filter"]),
            principal=entry["principal_filter"],
            host=entry["host_filter"],
            operation=Operation(entry["operation"]),
            permission=Permission(entry["permission_type"]),
        )
    except ValueError:
        raise ValueError("unknown resource type, pattern type, operation or permission type") from None
    unknown = [value for value in (selection.resource_type, selection.pattern_type, selection.operation,
                                   selection.permission) if value.name == "UNKNOWN"]
    if unknown:
        raise ValueError("a filter cannot match UNKNOWN")
    return selection


def binding_to_wire(binding: AclBinding) -> dict:
    """The fields DeleteAcls' ``matching_acls`` entries and DescribeAcls' groups carry."""
    return {"resource_type": binding.resource_type, "resource_name": binding.resource_name,
            "pattern_type": binding.pattern_type, "principal": binding.principal, "host": binding.host,
            "operation": binding.operation, "permission_type": binding.permission}
