"""Pub/sub commands: PUBLISH, (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, SPUBLISH and PUBSUB's subcommands.

The registry of who listens to what, and the output-buffer limits that cut a slow subscriber
off, are the broker's (``broker.channels``, ``broker.subscribers``); these commands map RESP
onto it and encode what Redis replies: one ``subscribe``/``unsubscribe`` frame per channel
with the running count, PUBLISH's receiver count, ``message``/``pmessage`` deliveries in the
connection's protocol version.

Sharded pub/sub (Redis 7) as a single Redis node does it: SSUBSCRIBE / SUNSUBSCRIBE /
SPUBLISH work on shard channels, a namespace apart from plain channels (PUBLISH never
reaches an SSUBSCRIBEr), delivered as ``smessage`` frames; their confirmations carry the
count of shard channels alone. Redis refuses channels of different hash slots in one
SSUBSCRIBE only in cluster mode (CROSSSLOT); a single node owns every slot, so it accepts
them, and so do we. In cluster mode (``ServerState.cluster`` set) SSUBSCRIBE and SPUBLISH
answer CROSSSLOT or MOVED as Redis Cluster does (``commands.cluster``), and every PUBLISH
is also handed to the cluster to be forwarded to the other brokers.

Subscription confirmations are pushes (``client.push``): Redis sends them even to a client
that turned its replies off with CLIENT REPLY OFF.

PUBLISH is the hot command (``redis-benchmark -P 16 PUBLISH``, fan-out to many
subscribers), so it is the one command allowed to hold its output back until the batch of
pipelined commands it arrived in ends: see ``publish`` and ``release_held_output``.

Not here: the order of checks before a command runs (``dispatch``), writing to sockets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from broker.subscribers import Subscriber
from modes.push.client import Client
from modes.push.commands.base import ServerState, help_reply, subcommand_syntax_error
from modes.push.commands.cluster import shard_refusal
from wire.resp import encoder
from wire.resp.pubsub import message_frame, pmessage_frame, smessage_frame, subscription_frame

__all__ = [
    "channels",
    "forward",
    "help_",
    "make_frame",
    "numpat",
    "numsub",
    "psubscribe",
    "publish",
    "publish_alone",
    "publish_now",
    "publish_run",
    "punsubscribe",
    "release_held_output",
    "shardchannels",
    "shardnumsub",
    "spublish",
    "ssubscribe",
    "subscribe",
    "sunsubscribe",
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


def make_shard_frame(pattern: bytes | None, channel: bytes, payload: bytes, protocol: int) -> bytes:
    """Encode one SPUBLISH delivery (``smessage``); ``pattern`` is always None (no shard patterns)."""
    return smessage_frame(channel, payload, protocol)


def _receiver_count(receivers: int) -> bytes:
    return _RECEIVER_COUNT_REPLIES[receivers] if receivers < 1024 else encoder.integer(receivers)


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
    if server.cluster is not None:
        server.cluster.forward(args[1], args[2])
    if client.subscribed:
        # Only a RESP3 client gets here (dispatch refuses PUBLISH in a RESP2 subscribed
        # context). It may be subscribed to this very channel, and its own message must then
        # precede the reply: nothing is held.
        receivers = publish_now(server, args[1], args[2], client.last_interaction_ms)
        client.reply(_receiver_count(receivers))
        return
    receivers = server.pubsub.publish_deferred(args[1], args[2], make_frame)
    if receivers < 0:
        receivers = publish_now(server, args[1], args[2], client.last_interaction_ms)
    # (Written out rather than _receiver_count: this is the one line every PUBLISH runs.)
    client.held_replies.append(
        _RECEIVER_COUNT_REPLIES[receivers] if receivers < 1024 else encoder.integer(receivers))


def publish_alone(server: ServerState, client: Client, args: list[bytes]) -> None:
    """PUBLISH as the only command of its batch, by a client that is not subscribed.

    What ``publish`` does, minus holding back: the batch ends right after it, so its
    deliveries and its reply are queued at once, in the same order ``release_held_output``
    would queue them (deliveries first). One pipelined-less publisher (a latency probe, an
    application publishing now and then) pays for no batch machinery.
    """
    client.last_command = b"PUBLISH"
    if server.cluster is not None:
        server.cluster.forward(args[1], args[2])
    receivers = publish_now(server, args[1], args[2], client.last_interaction_ms)
    client.reply(_RECEIVER_COUNT_REPLIES[receivers] if receivers < 1024 else encoder.integer(receivers))


def publish_run(server: ServerState, client: Client, channel: bytes, payloads: Sequence[bytes]) -> bool:
    """A batch of PUBLISHes to ``channel`` by a client that is not subscribed, as one fan-out.

    The broker delivers the whole run at once when it can prove that is observably the
    same as publishing one by one (``PubSub.publish_many``); the replies, one per
    PUBLISH and all equal, follow the deliveries as ``release_held_output`` would queue them.

    Returns:
        False when the broker declined (nothing was done): the caller runs the batch one
        command at a time.
    """
    receivers = server.pubsub.publish_many(channel, payloads, make_frame)
    if receivers < 0:
        return False
    if server.cluster is not None:
        server.cluster.forward_many(channel, payloads)
    client.last_command = b"PUBLISH"
    client.reply(_receiver_count(receivers) * len(payloads))
    return True


def spublish(server: ServerState, client: Client, args: list[bytes]) -> None:
    """SPUBLISH shardchannel message -> the number of SSUBSCRIBErs of that shard channel reached.

    Not on the hot path: nothing is held back, the deliveries are queued at once. In a
    cluster, only the broker owning the channel's slot publishes (others answer MOVED), and
    nothing is forwarded: a shard channel lives on its shard.
    """
    refusal = shard_refusal(server, args[1:2])
    if refusal is not None:
        client.reply(encoder.error(refusal))
        return
    result = server.pubsub.spublish(args[1], args[2], client.last_interaction_ms, make_shard_frame)
    for subscriber, pending, limit in result.disconnected:
        server.cut_off(subscriber, pending, limit)
    client.reply(_receiver_count(result.receivers))


def forward(server: ServerState, client: Client, args: list[bytes]) -> None:
    """DUALMQ.FORWARD channel message [message ...]: deliver PUBLISHes another broker of the
    cluster received to this broker's own subscribers, in order, never forwarding them again
    (``commands.cluster``). Several messages are a pipelined run to one channel, forwarded
    as one command and delivered as one fan-out when the broker can (``publish_run``).

    Only from a connection that presented the cluster's secret (DUALMQ.PEER); it gets no
    reply (the sending broker never reads one). Anyone else gets an error and changes nothing.
    """
    if not client.cluster_peer:
        client.reply(encoder.error("ERR DUALMQ.FORWARD is for the cluster's brokers only (see DUALMQ.PEER)"))
        return
    channel, payloads = args[1], args[2:]
    server.cluster.forwarded_in += len(payloads)
    if len(payloads) > 1 and server.pubsub.publish_many(channel, payloads, make_frame) >= 0:
        return
    for payload in payloads:
        publish_now(server, channel, payload, client.last_interaction_ms)


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
        client.push(subscription_frame(kind, name, count, client.protocol))
    server.set_subscribed_limits(client)


def _plain_count(subscriber: Subscriber) -> int:
    return subscriber.subscription_count


def _shard_count(subscriber: Subscriber) -> int:
    return len(subscriber.shard_channels)


def _unsubscribe_many(server: ServerState, client: Client, names: list[bytes], kind: bytes,
                      action: Callable[[Subscriber, bytes], int],
                      action_all: Callable[[Subscriber], list[bytes]],
                      count_of: Callable[[Subscriber], int] = _plain_count) -> None:
    if not names:
        names = action_all(client.subscriber)
        if not names:
            # Nothing to leave: Redis still answers with one frame naming no channel.
            client.push(subscription_frame(kind, None, count_of(client.subscriber), client.protocol))
            server.set_subscribed_limits(client)
            return
        count = count_of(client.subscriber)
        # action_all already removed them; report counts decreasing as Redis does one by one.
        for index, name in enumerate(names):
            client.push(subscription_frame(kind, name, count + len(names) - index - 1, client.protocol))
    else:
        for name in names:
            count = action(client.subscriber, name)
            client.push(subscription_frame(kind, name, count, client.protocol))
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


def ssubscribe(server: ServerState, client: Client, args: list[bytes]) -> None:
    """SSUBSCRIBE shardchannel [shardchannel ...] -> one ``ssubscribe`` frame per shard channel.

    In a cluster: all in one slot, owned by this broker, else CROSSSLOT or MOVED (nothing
    subscribed), as Redis Cluster.
    """
    refusal = shard_refusal(server, args[1:])
    if refusal is not None:
        client.reply(encoder.error(refusal))
        return
    _subscribe_many(server, client, args[1:], b"ssubscribe", server.pubsub.ssubscribe)


def sunsubscribe(server: ServerState, client: Client, args: list[bytes]) -> None:
    """SUNSUBSCRIBE [shardchannel ...] -> one ``sunsubscribe`` frame per shard channel left."""
    _unsubscribe_many(server, client, args[1:], b"sunsubscribe", server.pubsub.sunsubscribe,
                      server.pubsub.sunsubscribe_all, _shard_count)


def _list_names(client: Client, args: list[bytes], list_names: Callable[[bytes | None], list[bytes]]) -> None:
    if len(args) > 3:
        # The table's arity (-2) lets any number through; Redis's handler then refuses it so.
        client.reply(subcommand_syntax_error(args))
        return
    names = list_names(args[2] if len(args) == 3 else None)
    client.reply(encoder.array([encoder.bulk(name) for name in names]))


def _count_each(client: Client, names: list[bytes], count: Callable[[bytes], int]) -> None:
    items = []
    for name in names:
        items += [encoder.bulk(name), encoder.integer(count(name))]
    client.reply(encoder.array(items))


def channels(server: ServerState, client: Client, args: list[bytes]) -> None:
    """PUBSUB CHANNELS [pattern] -> the channels with at least one subscriber."""
    _list_names(client, args, server.pubsub.channels)


def shardchannels(server: ServerState, client: Client, args: list[bytes]) -> None:
    """PUBSUB SHARDCHANNELS [pattern] -> the shard channels with at least one subscriber."""
    _list_names(client, args, server.pubsub.shard_channel_names)


def numsub(server: ServerState, client: Client, args: list[bytes]) -> None:
    """PUBSUB NUMSUB [channel ...] -> channel, subscriber count, ... (patterns not counted)."""
    _count_each(client, args[2:], server.pubsub.numsub)


def shardnumsub(server: ServerState, client: Client, args: list[bytes]) -> None:
    """PUBSUB SHARDNUMSUB [shardchannel ...] -> shard channel, subscriber count, ..."""
    _count_each(client, args[2:], server.pubsub.shard_numsub)


def numpat(server: ServerState, client: Client, args: list[bytes]) -> None:
    """PUBSUB NUMPAT -> the number of pattern subscriptions."""
    client.reply(encoder.integer(server.pubsub.numpat()))


_HELP = """\
PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:
CHANNELS [<pattern>]
    Return the currently active channels matching a <pattern> (default: '*').
NUMPAT
    Return number of subscriptions to patterns.
NUMSUB [<channel> ...]
    Return the number of subscribers for the specified channels, excluding
    pattern subscriptions(default: no channels).
SHARDCHANNELS [<pattern>]
    Return the currently active shard level channels matching a <pattern> (default: '*').
SHARDNUMSUB [<shardchannel> ...]
    Return the number of subscribers for the specified shard level channel(s)
HELP
    Prints this help.
"""


def help_(server: ServerState, client: Client, args: list[bytes]) -> None:
    """PUBSUB HELP -> Redis's help text."""
    help_reply(client, _HELP)
