"""Is a listener reachable from other machines with nobody asked to authenticate?

dualmq listens on loopback addresses by default. An operator who binds a listener to
``0.0.0.0``, ``::`` or a routable address makes it reachable from the network; without
authentication anyone who can reach it may then publish, subscribe, delete topics or kill
clients. The daemon does not refuse to start (that is the operator's call, as in Redis and
Kafka), but each front-end logs one warning at start, built here, so the choice is never
silent.

Pure functions: no sockets, no name resolution. A host name other than ``localhost`` is
treated as reachable, since only resolving it could tell.

Not here: push mode's protected mode, which refuses remote clients while ``default`` has no
password (``modes.push.protected_mode``).
"""

from __future__ import annotations

import ipaddress

__all__ = ["exposure_warning", "is_loopback_host"]


def is_loopback_host(host: str) -> bool:
    """Whether a listener bound to ``host`` is reachable only from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(listener: str, host: str, *, authentication_required: bool, mitigation: str = "") -> str | None:
    """The warning to log for a listener bound to ``host``, or None when there is nothing to say.

    Args:
        listener: what is listening, for the message ("RESP listener 0.0.0.0:6379").
        host: the host part of the listen address.
        authentication_required: whether a client must authenticate before doing anything.
        mitigation: what still protects the listener, if anything (push mode's protected mode).

    Returns:
        One sentence for the operator, or None (loopback only, or authentication required).
    """
    if authentication_required or is_loopback_host(host):
        return None
    text = f"{listener} is reachable from other machines and requires no authentication"
    return f"{text}; {mitigation}" if mitigation else text
