"""Redis's protected mode: no password, no clients from elsewhere than this machine.

While ``protected_mode`` is on (the default, Redis's ``protected-mode yes``) and the
``default`` user has no password (``nopass``), a client connecting from any address other
than ``127.0.0.1`` or ``::1`` is sent Redis's ``-DENIED`` explanation as soon as it connects,
then disconnected. Redis compares the peer's address with exactly those two strings, so a
client coming from 127.0.0.2 (also this machine) is refused as well; we do the same, which is
also what lets the tests exercise the refusal without leaving the loopback interface.

The check runs per connection and reads the ``default`` user as it is at that moment: giving
it a password (``requirepass``, ``ACL SETUSER default >...``) lets remote clients in at once.

Not here: the warning logged at start for a listener reachable from other machines without a
password (``broker.security.exposure``).
"""

from __future__ import annotations

from wire.resp import encoder

__all__ = ["PROTECTED_MODE_DENIED", "is_loopback_peer"]

# Redis 7.0.15's message, word for word (including its "a an").
PROTECTED_MODE_DENIED = encoder.error(
    "DENIED Redis is running in protected mode because protected mode is enabled and no password is set "
    "for the default user. In this mode connections are only accepted from the loopback interface. If you "
    "want to connect from external computers to Redis you may adopt one of the following solutions: "
    "1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback "
    "interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis "
    "is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change "
    "permanent. 2) Alternatively you can just disable the protected mode by editing the Redis "
    "configuration file, and setting the protected mode option to 'no', and then restarting the server. "
    "3) If you started the server manually just for testing, restart it with the '--protected-mode no' "
    "option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one "
    "of the above things in order for the server to start accepting connections from the outside."
)

_LOOPBACK_PEERS = frozenset({"127.0.0.1", "::1"})


def is_loopback_peer(host: str) -> bool:
    """Whether Redis's protected mode lets a client from ``host`` in (127.0.0.1 and ::1 only)."""
    return host in _LOOPBACK_PEERS
