"""CLIENT PAUSE's state: which commands are held, until when, and the clients held meanwhile.

``CLIENT PAUSE <ms> [WRITE|ALL]`` stops every client's commands (ALL), or only those that
would change data or be passed on to replicas (WRITE: for us PUBLISH, SPUBLISH, FLUSHALL,
FLUSHDB), until the time is up or ``CLIENT UNPAUSE``. Redis uses it to let replicas catch up
before a failover; nothing is refused and nothing is lost: a client whose command is held
simply waits, and its later commands queue behind it, in order.

How it works here, in Redis's terms:

* dispatch asks ``holds`` before running a command (after every check that could refuse it:
  a paused client still gets its arity or subscribed-context errors at once). When the
  answer is yes, that command and every later one of the client are ``hold``-en, and later
  reads of that client are appended behind them (``is_holding``). The client is "blocked".
* a pause only ever grows: a second CLIENT PAUSE can turn WRITE into ALL or push the end
  later, never the reverse (Redis's ``pauseClients``).
* when the pause is over — UNPAUSE, or its end time passed — the connection loop takes the
  held clients with ``take_resumable``, in the order they were first held, and runs their
  commands again from the start of dispatch's checks (Redis re-processes a postponed
  command from scratch too). One of them may pause again: the clients after it are then
  held again, still in order.

Not here: where the pause is checked (``dispatch``), running the held commands
(``modes.push.batch.resume_postponed``), the CLIENT PAUSE / UNPAUSE commands (``clients``).
No clock either: time comes in as ``now_ms``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from wire.errors import RemoteProtocolError

if TYPE_CHECKING:
    from modes.push.client import Client

__all__ = ["ALL", "WRITE", "ClientPause", "HeldClient"]

WRITE = "write"
ALL = "all"
# Redis's order: a pause of ALL is "more" than one of WRITE.
_STRENGTH = {None: 0, WRITE: 1, ALL: 2}


@attrs.define(eq=False)
class HeldClient:
    """What one held client has not run yet: its commands, and a protocol error read after them."""

    commands: list[list[bytes]]
    # Bytes of the held commands' words, bounded like an unparsed request buffer.
    size: int = 0
    # Malformed input that arrived after the held commands: answered once they have run.
    error: RemoteProtocolError | None = None


@attrs.define
class ClientPause:
    """The server-wide pause and its held clients (see the module docstring)."""

    # None (no pause), WRITE or ALL.
    mode: str | None = None
    # The pause is over once the time is past this (milliseconds).
    until_ms: int = 0
    # Held clients in the order they were first held (a dict keeps insertion order).
    held: dict[Client, HeldClient] = attrs.field(factory=dict)

    def start(self, mode: str, until_ms: int) -> None:
        """CLIENT PAUSE: pause ``mode`` commands until ``until_ms``, never weakening a pause."""
        if _STRENGTH[mode] > _STRENGTH[self.mode]:
            self.mode = mode
        if until_ms > self.until_ms:
            self.until_ms = until_ms

    def end(self) -> None:
        """CLIENT UNPAUSE (or the end time passed): commands run again; held clients may resume."""
        self.mode = None
        self.until_ms = 0

    def holds(self, writes: bool, now_ms: int) -> bool:
        """Whether a command must wait now (``writes``: it is a write or may-replicate command)."""
        if self.mode is None:
            return False
        if now_ms > self.until_ms:
            self.end()
            return False
        return writes or self.mode == ALL

    def is_holding(self, client: Client) -> bool:
        """Whether ``client`` waits behind a held command (its new commands must queue too)."""
        return bool(self.held) and client in self.held

    def hold(self, client: Client, commands: list[list[bytes]]) -> int:
        """Hold ``commands`` (in order, behind any already held) for ``client``.

        Returns:
            The bytes now held for the client, for the caller to bound.
        """
        entry = self.held.get(client)
        if entry is None:
            entry = self.held[client] = HeldClient(commands=[])
        entry.commands.extend(commands)
        entry.size += sum(len(word) for command in commands for word in command)
        return entry.size

    def hold_error(self, client: Client, error: RemoteProtocolError) -> None:
        """Remember malformed input read after ``client``'s held commands, to answer it after them."""
        self.held[client].error = error

    def take_resumable(self, now_ms: int) -> list[tuple[Client, HeldClient]]:
        """The held clients, in the order they were held, once the pause is over (else none).

        They are no longer held afterwards: the caller runs their commands, which may hold
        some of them again if a new pause starts meanwhile.
        """
        if not self.held or (self.mode is not None and now_ms <= self.until_ms):
            return []
        self.end()
        resumable = list(self.held.items())
        self.held = {}
        return resumable

    @property
    def deadline_ms(self) -> int | None:
        """When held clients must be looked at again even if nothing else happens, or None."""
        return self.until_ms if self.held and self.mode is not None else None
