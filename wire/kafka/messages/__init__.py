"""Our descriptors of the Kafka APIs the pull-mode broker serves, and of the consumer protocol bytes.

Each API is declared once, as one :class:`~wire.kafka.schema.Api` in its family module: a short
note on what it does and what changed per version, then ``PRODUCE = Api("Produce", key=0,
versions="0-9", flexible="9+", request=(...), response=(...))``. That object is the only place
the API's key and version range are written: this package's tables, the broker's handler
registry and ApiVersions answer, and the SDK's version choice are all built from it.

The facts (field names, types, version ranges, nullability, tags, defaults) are Kafka's, taken
from its ``clients/src/main/resources/common/message/*.json`` schemas (apache/kafka trunk
1eb7644, October 2024: after 3.9, before Kafka 4.0 dropped the old versions);
``tests/wire/kafka/test_messages.py`` checks them against a table derived from those files
(``tests/wire/kafka/kafka_facts.json``), so a typo here fails a test instead of a client.

Conventions:

* ``Api.versions`` is the range of versions **we serve and advertise**, not Kafka's whole range;
  each section title names Kafka's range.
* Field version ranges are Kafka's, unchanged, even where they reach beyond what we serve.
* Fields that exist only in versions we do not serve are left out; a "Left out" comment above
  the request or response lists them (dotted path inside the message, and their versions).
* Field names are ``schema.snake_case`` of Kafka's names. A JSON default of ``"null"`` is
  written as no default (None).
* The request and response headers belong to the framing layer (``wire.kafka.framing``), not
  here: they are the same for every API.

Layout: one module per API family, each holding whole sections (note, declaration):

* ``produce_fetch``: Produce, Fetch, ListOffsets, InitProducerId, OffsetForLeaderEpoch (the data
  path);
* ``metadata``: Metadata, ApiVersions (discovery, sent by every client first);
* ``admin``: CreateTopics, DeleteTopics, DescribeConfigs, CreatePartitions (topic administration);
* ``groups``: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
  OffsetFetch, DescribeGroups, ListGroups, DeleteGroups (the classic consumer-group coordinator);
* ``security``: SaslHandshake, SaslAuthenticate, DescribeAcls, CreateAcls, DeleteAcls (who a
  client is, and what it may do);
* ``consumer_protocol``: the consumer protocol bytes carried inside JoinGroup / SyncGroup (not an
  API: plain messages, in none of the tables).

This ``__init__`` holds the tables by api key, collected from the family modules: a new API
declared in one of them is in every table without an edit here. Code that needs one API imports
its declaration from the family module (``from wire.kafka.messages.produce_fetch import FETCH``).

Serving a new API, step by step:

1. declare it here, in its family module (``Api(...)`` with its note and "Left out" comments);
2. write its handler, ``modes/pull/api/<api>.py``, registered with ``@api(<DECLARATION>)``;
3. add its schemas' facts: ``python -m tests.wire.kafka.derive_kafka_facts`` (needs Kafka's JSON
   schemas; the tests say so if you forget);
4. add it to the hand-written ``ADVERTISED`` table of ``tests/modes/pull/test_golden.py``: what
   clients see changes, so that golden test must be changed on purpose;
5. only if the SDK will send it: add it to ``_SDK_APIS`` in ``dualmq/pull/connection.py``.
"""

from __future__ import annotations

from types import ModuleType

from wire.kafka.messages import admin, groups, metadata, produce_fetch, security
from wire.kafka.messages.consumer_protocol import (
    ConsumerProtocolAssignment,
    ConsumerProtocolSubscription,
)
from wire.kafka.schema import Api, Message

__all__ = [
    "APIS",
    "MESSAGES",
    "REQUESTS",
    "RESPONSES",
    "ConsumerProtocolAssignment",
    "ConsumerProtocolSubscription",
]

# The modules whose ``Api`` declarations make up the tables. A new family module goes here.
FAMILIES: tuple[ModuleType, ...] = (produce_fetch, metadata, admin, groups, security)


def collect_apis(families: tuple[ModuleType, ...]) -> dict[int, Api]:
    """Every ``Api`` declared at the top level of ``families``, by key, in key order.

    Args:
        families: the family modules to look in.

    Returns:
        api_key -> its declaration.

    Raises:
        ValueError: two different declarations share a key (a copy-paste slip caught at import).
    """
    found: dict[int, Api] = {}
    for family in families:
        for value in vars(family).values():
            if not isinstance(value, Api):
                continue
            earlier = found.setdefault(value.key, value)
            if earlier is not value:
                raise ValueError(f"api key {value.key} declared twice: {earlier.name} and {value.name}")
    return dict(sorted(found.items()))


# --- Tables ----------------------------------------------------------------------------------------

APIS: dict[int, Api] = collect_apis(FAMILIES)
REQUESTS: dict[int, Message] = {key: declared.request for key, declared in APIS.items()}
RESPONSES: dict[int, Message] = {key: declared.response for key, declared in APIS.items()}
# Every message described in this package, for code that walks them all (the codec's smoke
# tests, the check against Kafka's schemas).
MESSAGES: tuple[Message, ...] = (
    *REQUESTS.values(),
    *RESPONSES.values(),
    ConsumerProtocolSubscription,
    ConsumerProtocolAssignment,
)
