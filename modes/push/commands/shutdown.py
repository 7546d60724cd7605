"""SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: stop the whole broker, when its operator allows it.

Redis stops at once on SHUTDOWN: the client gets no reply, its connection (and every other)
simply closes, and redis-cli reports success. dualmq does the same — a clean stop of both
modes, exactly as SIGTERM: listeners close, pull mode's logs are flushed and closed, the
process exits with status 0 — but only where ``[resp] enable_shutdown = true``: one RESP
client should not be able to stop a broker that Kafka clients use too, unless the operator
said so. Otherwise the command is refused with an error naming the setting.

The options are checked as Redis checks them (syntax errors first, ``ABORT`` answers "no
shutdown in progress": ours never waits for replicas, so none ever is). NOSAVE and SAVE
make no difference: push mode keeps nothing, and pull mode's log is always flushed on a
clean stop.

Not here: how the broker stops (``ServerInfo.request_shutdown``, set by the daemon to cancel
its nursery).
"""

from __future__ import annotations

import structlog

from modes.push.client import Client
from modes.push.commands.base import ServerState, text_of
from wire.resp import encoder

__all__ = ["shutdown"]

log = structlog.get_logger("dualmq.push")

_OPTIONS = (b"NOSAVE", b"SAVE", b"NOW", b"FORCE", b"ABORT")


def shutdown(server: ServerState, client: Client, args: list[bytes]) -> None:
    """SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] | SHUTDOWN ABORT -> no reply: the broker stops."""
    options = {word.upper() for word in args[1:]}
    if (any(word.upper() not in _OPTIONS for word in args[1:])
            or {b"NOSAVE", b"SAVE"} <= options
            or (b"ABORT" in options and options != {b"ABORT"})):
        client.reply(encoder.error("ERR syntax error"))
        return
    if b"ABORT" in options:
        client.reply(encoder.error("ERR No shutdown in progress."))
        return
    if not server.config.enable_shutdown:
        client.reply(encoder.error(
            "ERR SHUTDOWN is disabled: set enable_shutdown = true in the [resp] section of "
            "the broker's configuration file, and restart it, to allow clients to stop it."))
        return
    stop = server.info.request_shutdown
    if stop is None:
        client.reply(encoder.error("ERR SHUTDOWN is not available: this RESP listener runs without "
                                   "a broker around it to stop."))
        return
    log.warning("shutdown_requested", by_client=client.id, peer=client.addr,
                client_name=text_of(client.name), options=" ".join(text_of(a) for a in args[1:]))
    # No reply, as from Redis: the connection closes when the broker stops.
    client.close_after_reply = True
    client.close_reason = "SHUTDOWN"
    stop()
