"""Descriptors of the security APIs: SaslHandshake, SaslAuthenticate, DescribeAcls, CreateAcls,
DeleteAcls.

What lives here: how a client proves who it is (the SASL pair) and how an admin reads and changes
the authorizer's access-control lists (the ACL trio). They are grouped because none of them moves
a record or a group: they decide *who* may do the rest.

What does not: what the mechanisms put inside ``auth_bytes`` (PLAIN, SCRAM: ``modes.pull.sasl``),
what the numbers in the ACL fields mean (resource types, pattern types, operations, permission
types: ``broker.security.authorizer``). The conventions and the tables by api key are in the
package ``__init__``.
"""

from __future__ import annotations

from wire.kafka.schema import (
    BYTES,
    INT8,
    INT16,
    INT32,
    INT64,
    STRING,
    Api,
    Array,
    Field,
    Struct,
)

# --- SaslHandshake (Kafka defines v0-1) -----------------------------------------------------------
# The client names a mechanism; the broker answers with the mechanisms it has enabled (and
# UNSUPPORTED_SASL_MECHANISM if the named one is not among them). After a v0 handshake the SASL
# tokens follow as raw size-prefixed frames outside the Kafka framing; after v1 they travel inside
# SaslAuthenticate requests. Never flexible.

SASL_HANDSHAKE = Api(
    "SaslHandshake", key=17, versions="0-1", flexible="none",
    request=(
        Field("mechanism", STRING),
    ),
    response=(
        Field("error_code", INT16),
        Field("mechanisms", Array(STRING)),
    ),
)


# --- SaslAuthenticate (Kafka defines v0-2) --------------------------------------------------------
# One SASL token each way. v1 adds session_lifetime_ms (0: the session does not expire, so no
# re-authentication is asked for); v2 flexible.

SASL_AUTHENTICATE = Api(
    "SaslAuthenticate", key=36, versions="0-2", flexible="2+",
    request=(
        Field("auth_bytes", BYTES),
    ),
    response=(
        Field("error_code", INT16),
        Field("error_message", STRING, nullable="0+"),
        Field("auth_bytes", BYTES),
        Field("session_lifetime_ms", INT64, versions="1+", default=0),
    ),
)


# --- DescribeAcls (Kafka defines v0-3) ------------------------------------------------------------
# The ACLs matching a filter, grouped by resource. Served from v1, which adds the pattern type
# (literal, prefixed; the filter may also say "any" or "match"); v2 flexible; v3 adds the user
# principal type to the resource types.

DESCRIBE_ACLS = Api(
    "DescribeAcls", key=29, versions="1-3", flexible="2+",
    request=(
        Field("resource_type_filter", INT8),
        Field("resource_name_filter", STRING, nullable="0+"),
        Field("pattern_type_filter", INT8, versions="1+", default=3),
        Field("principal_filter", STRING, nullable="0+"),
        Field("host_filter", STRING, nullable="0+"),
        Field("operation", INT8),
        Field("permission_type", INT8),
    ),
    response=(
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
        Field("error_message", STRING, nullable="0+"),
        Field("resources", type=Array(Struct("DescribeAclsResource", (
            Field("resource_type", INT8),
            Field("resource_name", STRING),
            Field("pattern_type", INT8, versions="1+", default=3),
            Field("acls", type=Array(Struct("AclDescription", (
                Field("principal", STRING),
                Field("host", STRING),
                Field("operation", INT8),
                Field("permission_type", INT8),
            )))),
        )))),
    ),
)


# --- CreateAcls (Kafka defines v0-3) --------------------------------------------------------------
# Adds ACL bindings, one result per creation in request order. Served from v1 (pattern type).

CREATE_ACLS = Api(
    "CreateAcls", key=30, versions="1-3", flexible="2+",
    request=(
        Field("creations", type=Array(Struct("AclCreation", (
            Field("resource_type", INT8),
            Field("resource_name", STRING),
            Field("resource_pattern_type", INT8, versions="1+", default=3),
            Field("principal", STRING),
            Field("host", STRING),
            Field("operation", INT8),
            Field("permission_type", INT8),
        )))),
    ),
    response=(
        Field("throttle_time_ms", INT32),
        Field("results", type=Array(Struct("AclCreationResult", (
            Field("error_code", INT16),
            Field("error_message", STRING, nullable="0+"),
        )))),
    ),
)


# --- DeleteAcls (Kafka defines v0-3) --------------------------------------------------------------
# Removes every ACL matching each filter and lists what each filter removed. Served from v1.

DELETE_ACLS = Api(
    "DeleteAcls", key=31, versions="1-3", flexible="2+",
    request=(
        Field("filters", type=Array(Struct("DeleteAclsFilter", (
            Field("resource_type_filter", INT8),
            Field("resource_name_filter", STRING, nullable="0+"),
            Field("pattern_type_filter", INT8, versions="1+", default=3),
            Field("principal_filter", STRING, nullable="0+"),
            Field("host_filter", STRING, nullable="0+"),
            Field("operation", INT8),
            Field("permission_type", INT8),
        )))),
    ),
    response=(
        Field("throttle_time_ms", INT32),
        Field("filter_results", type=Array(Struct("DeleteAclsFilterResult", (
            Field("error_code", INT16),
            Field("error_message", STRING, nullable="0+"),
            Field("matching_acls", type=Array(Struct("DeleteAclsMatchingAcl", (
                Field("error_code", INT16),
                Field("error_message", STRING, nullable="0+"),
                Field("resource_type", INT8),
                Field("resource_name", STRING),
                Field("pattern_type", INT8, versions="1+", default=3),
                Field("principal", STRING),
                Field("host", STRING),
                Field("operation", INT8),
                Field("permission_type", INT8),
            )))),
        )))),
    ),
)
