"""ACL LOG's memory: the recent refusals (wrong password, command, channel), grouped as Redis does.

Redis keeps the last ``acllog-max-len`` refusals, newest first. A refusal like one of the ten
newest — same reason, context, object and user, within a minute of it — is not added again:
that entry's count goes up, it takes the new client description and time, and moves to the
front. No clock here: the caller passes the time.

Not here: encoding the entries for ACL LOG (``modes.push.commands.acl``), the checks that
refuse (``broker.security.redis_acl``).
"""

from __future__ import annotations

import attrs

__all__ = ["AclLog", "AclLogEntry"]

# Redis's ACL_LOG_GROUPING_MAX_TIME_DELTA, and how many of the newest entries it compares with.
_GROUPING_MS = 60_000
_SCAN = 10


@attrs.define
class AclLogEntry:
    """One line of ACL LOG. ``reason`` is ``auth``, ``command`` or ``channel``."""

    reason: str
    context: str
    # The refused command's full name, the channel, or for ``auth`` the command as typed.
    object: str
    username: str
    client_info: str
    created_ms: int
    count: int = 1


@attrs.define
class AclLog:
    """The newest refusals first, at most ``max_len`` of them (``acllog-max-len``)."""

    max_len: int = 128
    entries: list[AclLogEntry] = attrs.field(factory=list)
    # Refusals by reason since start or CONFIG RESETSTAT (INFO's acl_access_denied_*); ACL
    # LOG RESET leaves them, as in Redis.
    denied: dict[str, int] = attrs.field(factory=dict)

    def add(self, reason: str, obj: str, username: str, client_info: str, now_ms: int,
            context: str = "toplevel") -> None:
        """Record one refusal (or count it on a like entry of the last minute)."""
        self.denied[reason] = self.denied.get(reason, 0) + 1
        for index, entry in enumerate(self.entries[:_SCAN]):
            if (entry.reason == reason and entry.context == context and entry.object == obj
                    and entry.username == username and abs(now_ms - entry.created_ms) <= _GROUPING_MS):
                entry.count += 1
                entry.client_info = client_info
                entry.created_ms = now_ms
                self.entries.insert(0, self.entries.pop(index))
                return
        self.entries.insert(0, AclLogEntry(reason=reason, context=context, object=obj, username=username,
                                           client_info=client_info, created_ms=now_ms))
        del self.entries[self.max_len:]

    def reset(self) -> None:
        self.entries.clear()
