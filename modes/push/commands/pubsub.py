"""Pub/sub commands: PUBLISH, (P)SUBSCRIBE, (P)UNSUBSCRIBE and PUBSUB's subcommands.

The registry of who listens to what, and the output-buffer limits that cut a slow subscriber
off, are the broker's (``broker.channels``, ``broker.subscribers``); these commands map RESP
onto it and encode what Redis replies: one ``subscribe``/``unsubscribe`` frame per channel
with the running count, PUBLISH's receiver count, ``message``/``pmessage`` deliveries in the
connection's protocol version.

PUBLISH is the hot command (``redis-benchmark -P 16 PUBLISH``, fan-out to many
subscribers), so it is the one command allowed to hold its output back until the batch of
pipelined commands it arrived in ends: see ``publish`` and ``release_held_output``.

Not here: the order of checks before a command runs (``dispatch``), writing to sockets.
"""

from __future__ import annotations

from collections.abc import Callable

from broker.subscribers import Subscriber
from modes.push.client import Client
from modes.push.commands.base import ServerState
from wire.resp import encoder
from wire.resp.pubsub import message_frame, pmessage_frame, subscription_frame

__all__ = [
    "channels",
    "help_",
    "make_frame",
    "numpat",
    "numsub",
    "psubscribe",
    "publish",
    "publish_now",
    "punsubscribe",
    "release_held_output",
    "subscribe",
    "unsubscribe",
]

# PUBLISH's reply for small receiver counts, encoded once: it is sent for every publish.
_RECEIVER_COUNT_REPLIES = [encoder.integer(n) for n in range(1024)]


def make_frame(pattern: bytes | None, channel: bytes, payload: bytes, protocol: int) -> bytes:
    """Encode one delivery; the broker calls this once per (pattern, protocol) of a publish.

    Args:
        pattern: the pattern a ``pmessage`` matched, or None for a plain ``message``.
        channel: the channel published to.
        payload: the message.
        protocol: the subscriber's RESP version (2: array, 3: push).

    Returns:
        The encoded frame.
    """
    if pattern is None:
        return message_frame(channel, payload, protocol)
    return pmessage_frame(pattern, channel, payload, protocol)


def publish_now(server: ServerState, channel: bytes, payload: bytes, now_ms: int) -> int:
    """Deliver a message to every subscriber at once, cutting off any it pushes over a limit.

    Returns:
        The number of subscribers that received it (PUBLISH's reply).
    """
    result = server.pubsub.publish(channel, payload, now_ms, make_frame)
    for subscriber, pending, limit in result.disconnected:
        server.cut_off(subscriber, pending, limit)
    return result.receivers


def publish(server: ServerState, client: Client, args: list[bytes]) -> None:
    """PUBLISH channel message -> the number of subscribers that received it.

    Its row in the table says ``holds_output``: for a publisher that is not subscribed, the
    reply waits in ``client.held_replies``, and the deliveries wait in the broker whenever
    ``PubSub.publish_deferred`` can prove nobody could tell the difference. Both are queued by
    ``release_held_output`` — at the end of the batch, or before dispatch runs any other
    command. A batch of 16 pipelined PUBLISHes thus costs one outbox put per subscriber and
    one reply write, not 16 of each, and is observably the same as 16 publishes made at once.
    """
    if client.subscribed:
        # Only a RESP3 client gets here (dispatch refuses PUBLISH in a RESP2 subscribed
        # context). It may be subscribed to this very channel, and its own message must then
        # precede the reply: nothing is held.
        receivers = publish_now(server, args[1], args[2], client.last_interaction_ms)
        client.reply(_RECEIVER_COUNT_REPLIES[receivers] if receivers < 1024 else encoder.integer(receivers))
        return
    receivers = server.pubsub.publish_deferred(args[1], args[2], make_frame)
    if receivers < 0:
        receivers = publish_now(server, args[1], args[2], client.last_interaction_ms)
    client.held_replies.append(
        _RECEIVER_COUNT_REPLIES[receivers] if receivers < 1024 else encoder.integer(receivers)
    )


def release_held_output(server: ServerState, client: Client) -> None:
    """Queue what PUBLISH held back: the deliveries first, in publish order, then the replies.

    Deliveries first, so that by the time the publisher reads its reply the subscribers'
    frames are already queued (and written before its own when the batch's output is sent).
    """
    for subscriber, pending, limit in server.pubsub.flush_deferred(client.last_interaction_ms):
        server.cut_off(subscriber, pending, limit)
    client.release_held_replies()


def _subscribe_many(server: ServerState, client: Client, names: list[bytes], kind: bytes,
                    action: Callable[[Subscriber, bytes], int]) -> None:
    for name in names:
        count = action(client.subscriber, name)
        client.reply(subscription_frame(kind, name, count, client.protocol))
    server.set_subscribed_limits(client)


def _unsubscribe_many(server: ServerState, client: Client, names: list[bytes], kind: bytes,
                      action: Callable[[Subscriber, bytes], int],
                      action_all: Callable[[Subscriber], list[bytes]]) -> None:
    if not names:
        names = action_all(client.subscriber)
        if not names:
            # Nothing to leave: Redis still answers with one frame naming no channel.
            client.reply(subscription_frame(kind, None, client.subscriber.subscription_count, client.protocol))
            server.set_subscribed_limits(client)
            return
        count = client.subscriber.subscription_count
        # action_all already removed them; report counts decreasing as Redis does one by one.
        for index, name in enumerate(names):
            client.reply(subscription_frame(kind, name, count + len(names) - index - 1, client.protocol))
    else:
        for name in names:
            count = action(client.subscriber, name)
            client.reply(subscription_frame(kind, name, count, client.protocol))
    server.set_subscribed_limits(client)


def subscribe(server: ServerState, client: Client, args: list[bytes]) -> None:
    """SUBSCRIBE channel [channel ...] -> one ``subscribe`` frame per channel."""
    _subscribe_many(server, client, args[1:], b"subscribe", server.pubsub.subscribe)


def psubscribe(server: ServerState, client: Client, args: list[bytes]) -> None:
    """PSUBSCRIBE pattern [pattern ...] -> one ``psubscribe`` frame per pattern."""
    _subscribe_many(server, client, args[1:], b"psubscribe", server.pubsub.psubscribe)


def unsubscribe(server: ServerState, client: Client, args: list[bytes]) -> None:
    """UNSUBSCRIBE [channel ...] -> one ``unsubscribe`` frame per channel left (all if none named)."""
    _unsubscribe_many(server, client, args[1:], b"unsubscribe",
                      server.pubsub.unsubscribe, server.pubsub.unsubscribe_all)


def punsubscribe(server: ServerState, client: Client, args: list[bytes]) -> None:
    """PUNSUBSCRIBE [pattern ...] -> one ``punsubscribe`` frame per pattern left (all if none named)."""
    _unsubscribe_many(server, client, args[1:], b"punsubscribe",
                      server.pubsub.punsubscribe, server.pubsub.punsubscribe_all)


def channels(server: ServerState, client: Client, args: list[bytes]) -> None:
    """PUBSUB CHANNELS [pattern] -> the channels with at least one subscriber."""
    if len(args) > 3:
        client.reply(encoder.error("ERR wrong number of arguments for 'pubsub|channels' command"))
        return
    names = server.pubsub.channels(args[2] if len(args) == 3 else None)
    client.reply(encoder.array([encoder.bulk(name) for name in names]))


def numsub(server: ServerState, client: Client, args: list[bytes]) -> None:
    """PUBSUB NUMSUB [channel ...] -> channel, subscriber count, ... (patterns not counted)."""
    items = []
    for channel in args[2:]:
        items += [encoder.bulk(channel), encoder.integer(server.pubsub.numsub(channel))]
    client.reply(encoder.array(items))


def numpat(server: ServerState, client: Client, args: list[bytes]) -> None:
    """PUBSUB NUMPAT -> the number of pattern subscriptions."""
    client.reply(encoder.integer(server.pubsub.numpat()))


def help_(server: ServerState, client: Client, args: list[bytes]) -> None:
    """PUBSUB HELP -> Redis's help text."""
    lines = [
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "HELP",
        "    Print this help.",
    ]
    client.reply(encoder.array([encoder.simple(line) for line in lines]))
