"""Push mode in a cluster: CLUSTER's subcommands, MOVED for sharded pub/sub, forwarding between peers.

Only a broker started with ``--cluster`` has them (``ServerState.cluster`` is set); on a single
broker CLUSTER and the internal commands stay unknown, as they were. What they need of the
cluster is ``PushCluster``, implemented by ``modes.cluster.push_forwarding`` (which owns the
connections to the other brokers): the push side never imports cluster mode.

* ``CLUSTER SLOTS | SHARDS | NODES | INFO | MYID | KEYSLOT | HELP``: the slot map, in Redis's
  shapes, so that ``redis-cli -c`` and redis-py's ``RedisCluster`` find the broker owning a
  shard channel. The slots are split over the live brokers (``broker.cluster.slots``); a node's
  40-character name is its node id in hexadecimal, zero-padded.
* ``shard_refusal``: SSUBSCRIBE and SPUBLISH on a channel whose slot another broker owns are
  answered ``-MOVED <slot> <host>:<port>``, channels of different slots in one SSUBSCRIBE
  ``-CROSSSLOT``, as Redis Cluster answers them; ``drop_foreign_shard_channels``
  unsubscribes (``sunsubscribe`` push) the subscribers of a slot this broker lost.
* ``DUALMQ.PEER <node id> <secret>`` (here) and ``DUALMQ.FORWARD <channel> <message> [<message> ...]``
  (``pubsub.forward``): how a broker
  hands a PUBLISH to the others (docs/cluster.md#push-mode-in-a-cluster). The secret is the
  cluster's, kept in etcd; a connection that presented it is a peer, and only a peer may
  forward. Both commands check their caller themselves (``Command.internal``): dispatch does
  not apply the ACL to them, so a peer needs no user and password, and an ordinary client
  gains nothing from them, whatever its user may run. FORWARD sends no reply (the sender never
  reads one); a refusal is an error reply, which the sender logs.
"""

from __future__ import annotations

from typing import Protocol

from broker.cluster.slots import SLOTS, SlotRange, key_slot, owner
from modes.push.client import Client
from modes.push.commands.base import ServerState, help_reply
from wire.resp import encoder
from wire.resp.pubsub import subscription_frame

__all__ = [
    "PushCluster",
    "cluster_help",
    "cluster_info",
    "cluster_keyslot",
    "cluster_myid",
    "cluster_nodes",
    "cluster_shards",
    "cluster_slots",
    "drop_foreign_shard_channels",
    "node_name",
    "peer",
    "shard_refusal",
]

CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot"
NOT_SERVED = "CLUSTERDOWN Hash slot not served"


class PushCluster(Protocol):
    """What push mode needs of the cluster (``modes.cluster.push_forwarding.PushForwarder``)."""

    node_id: int
    # The cluster's secret, b"" until read from etcd.
    secret: bytes
    # DUALMQ.FORWARDs received from peers and delivered here.
    forwarded_in: int

    def forward(self, channel: bytes, payload: bytes) -> None:
        """Hand a PUBLISH made here to every other live broker (never blocks; may drop)."""
        ...

    def forward_many(self, channel: bytes, payloads) -> None:
        """Hand a pipelined run of PUBLISHes to one channel on, as one command per broker."""
        ...

    def accepts_peer(self, secret: bytes) -> bool:
        """Whether ``secret`` is the cluster's (compared in constant time)."""
        ...

    def slot_ranges(self) -> list[SlotRange]:
        """Who owns which slots now, from the live brokers."""
        ...

    def resp_address(self, node_id: int) -> tuple[str, int] | None:
        """Where a live broker's RESP listener is, or None."""
        ...

    def info_lines(self) -> list[tuple[str, object]]:
        """Forwarding's counters, for INFO's cluster section."""
        ...

    def on_slots_changed(self, action) -> None:
        """Call ``action()`` (in the broker's thread) whenever the live brokers, and so the
        slots' owners, change."""
        ...


def node_name(node_id: int) -> str:
    """A broker's 40-character Redis node name: its id in hexadecimal, zero-padded."""
    return f"{node_id:040x}"


def shard_refusal(server: ServerState, channels: list[bytes]) -> str | None:
    """The redirection Redis Cluster answers when this broker does not own ``channels``' slot.

    Returns:
        None to go on (one slot, owned here; or not in a cluster), else the error text:
        CROSSSLOT, MOVED to the owner, or CLUSTERDOWN when nobody owns it (no view yet).
    """
    cluster = server.cluster
    if cluster is None or not channels:
        return None
    slot = key_slot(channels[0])
    if any(key_slot(channel) != slot for channel in channels[1:]):
        return CROSSSLOT
    holder = owner(slot, cluster.slot_ranges())
    if holder == cluster.node_id:
        return None
    address = cluster.resp_address(holder) if holder is not None else None
    if address is None:
        return NOT_SERVED
    return f"MOVED {slot} {address[0]}:{address[1]}"


def drop_foreign_shard_channels(server: ServerState) -> int:
    """Unsubscribe every SSUBSCRIBEr of a shard channel whose slot this broker no longer owns.

    Called when the live brokers change (the slots are split anew). Redis does the same when
    a node loses a slot: each subscriber gets a ``sunsubscribe`` push for the channel (with
    its remaining shard channel count), and a client that wants to go on subscribes again,
    at the new owner (redis-py's ``RedisCluster`` pub/sub, ``redis-cli -c``). Otherwise it
    would stay subscribed to a channel nobody publishes to here any more.

    Returns:
        How many subscriptions were dropped.
    """
    cluster = server.cluster
    ranges = cluster.slot_ranges()
    pubsub = server.pubsub
    dropped = 0
    for channel in pubsub.shard_channel_names():
        if owner(key_slot(channel), ranges) == cluster.node_id:
            continue
        for subscriber in pubsub.shard_subscribers(channel):
            count = pubsub.sunsubscribe(subscriber, channel)
            dropped += 1
            client = server.clients.get(subscriber.client_id)
            if client is not None:
                client.push(subscription_frame(b"sunsubscribe", channel, count, client.protocol))
                server.set_subscribed_limits(client)
    return dropped


def _ranges(server: ServerState) -> list[tuple[SlotRange, tuple[str, int]]]:
    """The slot ranges whose owner's address is known (all of them, unless the view is moving)."""
    cluster = server.cluster
    found = []
    for entry in cluster.slot_ranges():
        address = cluster.resp_address(entry.node_id)
        if address is not None:
            found.append((entry, address))
    return found


def cluster_slots(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLUSTER SLOTS -> [start, end, [host, port, name, {}]] per range (no replicas)."""
    rows = []
    for entry, (host, port) in _ranges(server):
        node = encoder.array([encoder.bulk(host.encode()), encoder.integer(port),
                              encoder.bulk(node_name(entry.node_id).encode()), encoder.map_([], client.protocol)])
        rows.append(encoder.array([encoder.integer(entry.start), encoder.integer(entry.end), node]))
    client.reply(encoder.array(rows))


def _pair(name: str, value: bytes) -> tuple[bytes, bytes]:
    return encoder.bulk(name.encode()), value


def cluster_shards(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLUSTER SHARDS -> one map per broker: its slots and its one node (a primary)."""
    protocol = client.protocol
    shards = []
    for entry, (host, port) in _ranges(server):
        node = encoder.map_([
            _pair("id", encoder.bulk(node_name(entry.node_id).encode())),
            _pair("port", encoder.integer(port)),
            _pair("ip", encoder.bulk(host.encode())),
            _pair("endpoint", encoder.bulk(host.encode())),
            _pair("role", encoder.bulk(b"master")),
            _pair("replication-offset", encoder.integer(0)),
            _pair("health", encoder.bulk(b"online")),
        ], protocol)
        shards.append(encoder.map_([
            _pair("slots", encoder.array([encoder.integer(entry.start), encoder.integer(entry.end)])),
            _pair("nodes", encoder.array([node])),
        ], protocol))
    client.reply(encoder.array(shards))


def cluster_nodes(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLUSTER NODES -> Redis's text: one line per broker, every one a connected primary."""
    me = server.cluster.node_id
    lines = []
    for entry, (host, port) in _ranges(server):
        flags = "myself,master" if entry.node_id == me else "master"
        # The cluster bus port Redis would show (port + 10000): there is no such bus here.
        lines.append(f"{node_name(entry.node_id)} {host}:{port}@{port + 10000} {flags} - 0 0 0 connected "
                     f"{entry.start}-{entry.end}\n")
    client.reply(encoder.verbatim("".join(lines), client.protocol))


def cluster_info(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLUSTER INFO -> Redis's fields: state ok once every slot has a live owner."""
    ranges = _ranges(server)
    assigned = sum(entry.end - entry.start + 1 for entry, _ in ranges)
    fields = [
        ("cluster_state", "ok" if assigned == SLOTS else "fail"),
        ("cluster_slots_assigned", assigned),
        ("cluster_slots_ok", assigned),
        ("cluster_slots_pfail", 0),
        ("cluster_slots_fail", 0),
        ("cluster_known_nodes", len(ranges)),
        ("cluster_size", len(ranges)),
        ("cluster_current_epoch", 0),
        ("cluster_my_epoch", 0),
    ]
    client.reply(encoder.verbatim("".join(f"{k}:{v}\r\n" for k, v in fields), client.protocol))


def cluster_myid(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLUSTER MYID -> this broker's node name."""
    client.reply(encoder.bulk(node_name(server.cluster.node_id).encode()))


def cluster_keyslot(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLUSTER KEYSLOT key -> its hash slot."""
    client.reply(encoder.integer(key_slot(args[2])))


_HELP = """\
CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:
INFO
    Return information about the cluster.
KEYSLOT <key>
    Return the hash slot for <key>.
MYID
    Return the node id.
NODES
    Return cluster configuration seen by node. Output format:
    <id> <ip:port@bus-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...
SHARDS
    Return information about slot range mappings and the nodes associated with them.
SLOTS
    Return information about slots range mappings. Each range is made of:
    start, end, master and replicas IP addresses, ports and ids
HELP
    Prints this help.
"""


def cluster_help(server: ServerState, client: Client, args: list[bytes]) -> None:
    """CLUSTER HELP -> the subcommands dualmq has (Redis's wording, cut to them)."""
    help_reply(client, _HELP)


# --- between brokers -----------------------------------------------------------------------

def peer(server: ServerState, client: Client, args: list[bytes]) -> None:
    """DUALMQ.PEER <node id> <secret> -> +OK, and the connection is a peer; else an error
    reply and the connection closes (nobody guesses a secret one try per connection)."""
    if not server.cluster.secret:
        # This broker has not read the secret from etcd yet: the peer retries shortly.
        client.reply(encoder.error("TRYAGAIN the cluster secret is not loaded yet"))
        client.close_after_reply = True
        client.close_reason = "cluster peer too early"
        return
    if not server.cluster.accepts_peer(args[2]):
        client.reply(encoder.error("ERR DUALMQ.PEER: wrong cluster secret"))
        client.close_after_reply = True
        client.close_reason = "wrong cluster peer secret"
        return
    client.cluster_peer = True
    client.name = b"dualmq-peer-" + args[1][:20]
    client.reply(encoder.simple("OK"))

