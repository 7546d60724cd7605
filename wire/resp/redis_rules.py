"""Two rules from Redis's own source that the RESP parsers here share.

``_strict_int`` accepts a decimal exactly when Redis's ``string2ll`` does; the request parser
(``requests``) and the reply parser (``replies``) read lengths and counts with it.
``_protocol_error`` builds the error carrying the ``-ERR Protocol error: ...`` line Redis sends
before it closes a connection; the request parser and the inline splitter (``inline``) raise it.

Both are private to ``wire.resp``: its modules import them, nothing outside should.
``redis_integer`` is the same rule for everyone else: push mode's commands read their integer
arguments (SELECT's index, CLIENT PAUSE's timeout, ...) with it, as Redis does with
``string2ll``.

Not here: the parsers themselves.
"""

from __future__ import annotations

from wire.errors import RemoteProtocolError

__all__ = ["redis_integer"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def _strict_int(digits: bytes) -> int | None:
    """Parse a 64-bit signed decimal exactly as Redis' ``string2ll`` accepts it, else None.

    No sign other than a leading ``-``, no leading zeros (``0`` itself is fine, ``-0`` is not),
    no blanks, at most 20 characters, within the signed 64-bit range.
    """
    if not digits or len(digits) > 20:
        return None
    if digits == b"0":
        return 0
    body = digits[1:] if digits[0] == 45 else digits  # 45 = '-'
    # bytes.isdigit() only accepts ASCII 0-9, unlike int(), which also takes "+", "_", " ".
    if not body or not body.isdigit() or body[0] == 48:  # 48 = '0'
        return None
    value = int(body)
    if body is not digits:
        value = -value
    if not _INT64_MIN <= value <= _INT64_MAX:
        return None
    return value


def redis_integer(text: bytes) -> int | None:
    """``text`` as a signed 64-bit integer if Redis's ``string2ll`` accepts it, else None.

    Args:
        text: a command argument (``b"15"``; never ``b"+1"``, ``b"01"``, ``b" 1"``, ``b"-0"``).

    Returns:
        The value, or None when Redis would answer "value is not an integer or out of range".
    """
    return _strict_int(text)


def _protocol_error(text: str) -> RemoteProtocolError:
    return RemoteProtocolError(text, reply=b"-ERR Protocol error: %b\r\n" % text.encode("latin-1"))
