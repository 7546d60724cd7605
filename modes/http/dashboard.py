"""The live dashboard's data: one JSON frame per second, built from a ``view.BrokerView``.

The page (``static/dashboard.html``, plain HTML and JavaScript, no build step) receives these
frames as server-sent events and draws them; rates (messages per second) are computed in
the page from two consecutive frames. Everything shown is read from the same view as
``/metrics``, so the page and Prometheus never disagree.

What a frame carries, by side:

* ``pull`` — each partition as a log from ``start`` to ``end`` (the log grows to the right;
  retention moves its start), each group with its state, members and, per partition, its
  committed position and lag: a group that joins late starts at the beginning and replays
  (a long lag bar that shrinks); a slow consumer's lag bar grows;
* ``push`` — each channel with its subscribers and counts (published, delivered, dropped for
  want of a subscriber); each subscriber's output buffer against the soft and hard limits,
  with what it missed by joining late; the subscribers recently cut off at a limit.
"""

from __future__ import annotations

from typing import Any

from modes.http.view import BrokerView

__all__ = ["frame"]


def frame(view: BrokerView) -> dict[str, Any]:
    """The JSON-ready frame for ``view`` (see the module docstring)."""
    pull_connections = view.pull.connections
    push_connections = view.push.connections
    push_closed = push_connections.closed if push_connections else {}
    channels = [row for row in view.channels if row.kind != "pattern"]
    return {
        "t": view.now_ms,
        "pull": {
            "partitions": [{"topic": p.topic, "partition": p.partition, "start": p.log_start_offset,
                            "end": p.log_end_offset, "bytes": p.size_bytes, "segments": p.segments}
                           for p in view.partitions],
            "groups": [{"group": g.group, "state": g.state, "members": g.members,
                        "offsets": [{"topic": o.topic, "partition": o.partition, "committed": o.committed,
                                     "end": o.log_end_offset, "lag": o.lag} for o in g.offsets]}
                       for g in view.groups],
            "records": sum(p.log_end_offset for p in view.partitions),
            "consumed": sum(o.committed for g in view.groups for o in g.offsets),
            "requests": sum(view.pull.requests.values()),
            "connections": pull_connections.connections_open if pull_connections else 0,
        },
        "push": {
            "channels": [{"kind": c.kind, "name": c.name, "subscribers": c.subscribers, "published": c.published,
                          "delivered": c.delivered, "dropped": c.dropped} for c in view.channels],
            "subscribers": [{"id": s.client_id, "name": s.name, "pending": s.pending_bytes,
                             "high_water": s.high_water_bytes, "soft_for_ms": s.soft_for_ms,
                             "channels": [{"channel": name, "missed": missed, "since": since}
                                          for name, missed, since in s.channels]}
                            for s in view.subscribers],
            "subscriber_count": view.subscriber_count,
            "limits": {"hard": view.limits.hard_bytes, "soft": view.limits.soft_bytes,
                       "soft_seconds": view.limits.soft_seconds},
            "cuts": [{"at": c.at_ms, "id": c.client_id, "name": c.name, "pending": c.pending_bytes,
                      "limit": c.limit} for c in view.recent_cuts],
            "disconnected": {"hard": push_closed.get("output_buffer_hard", 0),
                             "soft": push_closed.get("output_buffer_soft", 0)},
            "published": sum(c.published for c in channels),
            "delivered": sum(c.delivered for c in channels),
            "dropped": sum(c.dropped for c in channels),
            "commands": sum(view.push.requests.values()),
            "connections": push_connections.connections_open if push_connections else 0,
        },
    }
