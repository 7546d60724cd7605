"""Push mode SDK (Redis-style pub/sub over RESP2/RESP3), for trio programs.

Two things to do in push mode, two entry points::

    async with dualmq.push.Publisher("127.0.0.1:6379") as pub:
        receivers = await pub.publish("news", "hello")          # -> 1
        counts = await pub.publish_many([("news", b"a"), ("sport", b"b")])   # one write

    async with dualmq.push.subscribe("127.0.0.1:6379", "news", patterns=["sp*"],
                                     reconnect=True) as sub:
        async for event in sub:
            if isinstance(event, dualmq.push.Gap):
                print("missed everything published between", event.started_at, event.ended_at)
                continue
            print(event.channel, event.pattern, event.data)

They speak the real Redis protocol, so they work unchanged against ``dualmq serve`` and
against a real Redis server. RESP3 is asked for with ``HELLO 3``; a server that refuses it
(Redis before 6) is spoken to in RESP2. Either way you get the same ``Message`` objects.

**The guarantee is at-most-once, and only while connected.** A pub/sub server keeps nothing:
a message is pushed to whoever is subscribed at that instant and then forgotten. If the
connection drops, everything published until we are subscribed again is gone for good — no
client can get it back. So when ``reconnect=True`` brings a subscription back, the iterator
yields a ``Gap`` *before* the first message of the new connection, saying when the outage
started and ended and why. The SDK never hides a loss. (If you need every message, use pull
mode: the log keeps them and a consumer resumes from its committed offset.)

Without ``reconnect`` a dropped connection makes the iterator raise ``ConnectionLost``.

A subscriber that does not keep up is disconnected by the server, not slowed down: Redis (and
dualmq) buffer pushes per client up to ``client-output-buffer-limit pubsub`` and then close
the connection. This SDK reads in a background task into a small bounded queue, so a slow
``async for`` body eventually stops reading, the server's buffer grows, and the server cuts
us off: you see ``ConnectionLost`` (or a ``Gap``), never silent back-pressure on publishers.

Every network wait has a deadline (``timeout``), except waiting for the next message, which
may legitimately take forever; a dead peer is still noticed there, because an idle
subscription sends ``PING`` every ``health_check_interval`` seconds and treats a missing
answer as a lost connection.

This package's ``__init__`` only gathers the public names; import them from here. Inside:

================= ===========================================================================
``connection``    one RESP connection: socket, HELLO/protocol choice, frame decoding, addresses
``publisher``     ``Publisher``: PUBLISH one message or a pipelined batch, any other command
``subscription``  ``subscribe()`` / ``Subscription``: the reader task, reconnects, ``Gap``
================= ===========================================================================

Not here: pull mode (``dualmq.pull``).
"""

from __future__ import annotations

from dualmq.push.connection import Message
from dualmq.push.publisher import Publisher
from dualmq.push.subscription import Backoff, Gap, Subscription, subscribe

__all__ = ["Backoff", "Gap", "Message", "Publisher", "Subscription", "subscribe"]
