"""``RunningServers``: the front-ends a broker started, for the parts that report on them.

The composition root (``dualmq.daemon``) hands one to ``serve_kafka`` and ``serve_resp``;
each puts its server object there once it accepts connections. The HTTP front-end
(``modes.http``) reads their counters from it at scrape time, so neither protocol front-end
knows that metrics exist.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["RunningServers"]


@attrs.define(eq=False)
class RunningServers:
    """The running pull and push servers (None until started, or when not running).

    Typed loosely: naming ``modes.pull.server.KafkaServer`` and ``modes.push.server.PushServer``
    here would make this module and theirs import each other.
    """

    pull: Any = None  # modes.pull.server.KafkaServer
    push: Any = None  # modes.push.server.PushServer
