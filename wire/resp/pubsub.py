"""Ready-made byte frames for pub/sub traffic (Redis ``pubsub.c`` reply shapes).

PUBLISH fans one payload out to every subscriber, so building a ``message`` frame is the
hottest path of push mode. Each builder here is a single ``%``-format of a fixed template with
the kind name pre-encoded: no generic ``encode`` dispatch, no intermediate lists.

The shapes, RESP2 (RESP3 uses ``>`` instead of ``*`` for the aggregate and ``_`` for a null):

    message        *3 $7 message  $<channel> $<payload>
    pmessage       *4 $8 pmessage $<pattern> $<channel> $<payload>
    smessage       *3 $8 smessage $<shard channel> $<payload>
    subscribe...   *3 $<n> <kind> $<name> :<count>      (name absent: $-1 / _)
    PING reply     *2 $4 pong $<message or empty>       (RESP2 while subscribed only)

A frame is encoded once per protocol and the same bytes are queued for every subscriber of
that protocol.

Not here: who is subscribed to what (``broker/channels.py``), output-buffer limits (``modes``).
"""

from __future__ import annotations

__all__ = [
    "message_frame",
    "pmessage_frame",
    "pong_frame",
    "smessage_frame",
    "subscription_frame",
]

_MESSAGE = {2: b"*3\r\n$7\r\nmessage\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n",
            3: b">3\r\n$7\r\nmessage\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"}
_SMESSAGE = {2: b"*3\r\n$8\r\nsmessage\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n",
             3: b">3\r\n$8\r\nsmessage\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"}
_PMESSAGE = {2: b"*4\r\n$8\r\npmessage\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n",
             3: b">4\r\n$8\r\npmessage\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"}
_SUBSCRIPTION = {2: b"*3\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n:%d\r\n",
                 3: b">3\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n:%d\r\n"}
_SUBSCRIPTION_NO_NAME = {2: b"*3\r\n$%d\r\n%b\r\n$-1\r\n:%d\r\n",
                         3: b">3\r\n$%d\r\n%b\r\n_\r\n:%d\r\n"}


def message_frame(channel: bytes, payload: bytes, protocol: int) -> bytes:
    """A channel message delivery: ``*3 message <channel> <payload>`` (``>3`` in RESP3)."""
    return _MESSAGE[protocol] % (len(channel), channel, len(payload), payload)


def smessage_frame(channel: bytes, payload: bytes, protocol: int) -> bytes:
    """A shard-channel message delivery (SPUBLISH): ``*3 smessage <channel> <payload>``."""
    return _SMESSAGE[protocol] % (len(channel), channel, len(payload), payload)


def pmessage_frame(pattern: bytes, channel: bytes, payload: bytes, protocol: int) -> bytes:
    """A pattern-matched delivery: ``*4 pmessage <pattern> <channel> <payload>``."""
    return _PMESSAGE[protocol] % (
        len(pattern), pattern, len(channel), channel, len(payload), payload
    )


def subscription_frame(kind: bytes, name: bytes | None, count: int, protocol: int) -> bytes:
    """A (un)subscribe confirmation: ``*3 <kind> <name> :<count>``.

    Args:
        kind: ``b"subscribe"``, ``b"unsubscribe"``, ``b"psubscribe"``, ``b"punsubscribe"``,
            ``b"ssubscribe"`` or ``b"sunsubscribe"``.
        name: the channel or pattern; None when an argument-less UNSUBSCRIBE found nothing to
            leave (Redis then sends a null: ``$-1`` in RESP2, ``_`` in RESP3).
        count: the client's subscriptions after this step (shard subscriptions for S-kinds).
    """
    if name is None:
        return _SUBSCRIPTION_NO_NAME[protocol] % (len(kind), kind, count)
    return _SUBSCRIPTION[protocol] % (len(kind), kind, len(name), name, count)


def pong_frame(message: bytes | None, protocol: int) -> bytes:
    """The reply to PING from a client that is subscribed.

    In RESP2 a subscribed client can only receive arrays, so Redis answers
    ``*2 $4 pong $<message>`` (an empty bulk for a PING without argument). In RESP3 there is no
    such restriction and Redis sends the ordinary reply: ``+PONG``, or the message as a bulk.

    Args:
        message: PING's argument, or None (or ``b""`` in RESP2) for a PING without one.
    """
    if protocol == 3:
        if message is None:
            return b"+PONG\r\n"
        return b"$%d\r\n%b\r\n" % (len(message), message)
    if not message:
        return b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    return b"*2\r\n$4\r\npong\r\n$%d\r\n%b\r\n" % (len(message), message)
