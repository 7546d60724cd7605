"""Pull mode's Kafka listener.

Interim: the Kafka front-end (APIs over ``wire.kafka``) is not built yet; until it is, this
listener binds its address (so ``--ready-file`` and port 0 work) and closes every connection
it accepts, as the foundation issue allows.
"""

from __future__ import annotations

import trio

from broker.config import BrokerConfig, parse_host_port
from broker.stats import ServerInfo
from broker.topics import TopicRegistry


async def _close_at_once(stream: trio.SocketStream) -> None:
    await trio.aclose_forcefully(stream)


async def serve_kafka(
    config: BrokerConfig,
    topics: TopicRegistry,
    info: ServerInfo,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on ``config.kafka.listen`` until cancelled; report ``HOST:PORT`` once bound."""
    host, port = parse_host_port(config.kafka.listen)
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound_host, bound_port = listeners[0].socket.getsockname()[:2]
    address = f"[{bound_host}]:{bound_port}" if ":" in bound_host else f"{bound_host}:{bound_port}"
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, _close_at_once, listeners)
        task_status.started(address)
