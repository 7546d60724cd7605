"""``dualmq consume --format``: kcat's ``-f`` format strings, so a kcat habit works unchanged.

    dualmq consume orders --format 'offset %o: %s\n'          # as kcat -f 'offset %o: %s\n'

Tokens, with kcat's meaning (its man page, "Format string tokens"):

====== ===========================================================================
``%s`` the value (payload); nothing for a null value          (``%v`` is the same)
``%S`` the value's length in bytes, -1 for null
``%k`` the key; nothing for a null key
``%K`` the key's length in bytes, -1 for null
``%t`` topic          ``%p`` partition          ``%o`` offset
``%T`` timestamp, milliseconds since the epoch (UTC), -1 if none
``%h`` headers as ``name=value`` pairs separated by commas
``%%`` a literal ``%``
====== ===========================================================================

Escapes, as in kcat: ``\\n`` newline, ``\\r``, ``\\t``, ``\\\\`` and ``\\xHH`` (a byte in hex).
Like kcat, nothing is added after a record: end the format with ``\\n`` for one line each.

Keys and values are written as the bytes they are (no decoding), so binary payloads and any
character set pass through to a pipe untouched.
"""

from __future__ import annotations

from collections.abc import Callable

from dualmq.pull import ConsumerRecord

__all__ = ["FormatError", "RecordFormat", "TERMINAL_FORMAT", "VALUES_FORMAT"]

# On a terminal: where each record came from, then key and value. Into a pipe: values only,
# one per line, as kcat and kafka-console-consumer print by default, ready for the next program.
TERMINAL_FORMAT = r"%p\t%o\t%k\t%s\n"
VALUES_FORMAT = r"%s\n"


class FormatError(ValueError):
    """A format string with an unknown token or a broken escape."""


def _length(data: bytes | None) -> bytes:
    return b"-1" if data is None else str(len(data)).encode()


def _headers(record: ConsumerRecord) -> bytes:
    return b",".join(name.encode() + b"=" + (value or b"") for name, value in record.headers)


_TOKENS: dict[str, Callable[[ConsumerRecord], bytes]] = {
    "s": lambda r: r.value or b"",
    "v": lambda r: r.value or b"",
    "S": lambda r: _length(r.value),
    "k": lambda r: r.key or b"",
    "K": lambda r: _length(r.key),
    "t": lambda r: r.topic.encode(),
    "p": lambda r: str(r.partition).encode(),
    "o": lambda r: str(r.offset).encode(),
    "T": lambda r: str(r.timestamp if r.timestamp is not None else -1).encode(),
    "h": _headers,
}
_ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\"}


class RecordFormat:
    """A parsed format string: ``render(record)`` gives the bytes to write for one record.

    Raises (from the constructor):
        FormatError: an unknown ``%`` token or escape, naming it and listing the known ones.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._parts: list[bytes | Callable[[ConsumerRecord], bytes]] = []
        literal = bytearray()
        i = 0
        while i < len(text):
            char = text[i]
            following = text[i + 1] if i + 1 < len(text) else ""
            if char == "%":
                if following == "%":
                    literal += b"%"
                elif following in _TOKENS:
                    if literal:
                        self._parts.append(bytes(literal))
                        literal.clear()
                    self._parts.append(_TOKENS[following])
                else:
                    raise FormatError(f"unknown token %{following} in {text!r}; known: "
                                      + " ".join(f"%{t}" for t in _TOKENS) + " %%")
                i += 2
            elif char == "\\":
                if following in _ESCAPES:
                    literal += _ESCAPES[following]
                    i += 2
                elif following == "x":
                    digits = text[i + 2:i + 4]
                    try:
                        literal.append(int(digits, 16))
                    except ValueError:
                        raise FormatError(f"\\x needs two hex digits in {text!r}") from None
                    i += 4
                else:
                    raise FormatError(f"unknown escape \\{following} in {text!r}; known: \\n \\r \\t \\\\ \\xHH")
            else:
                literal += char.encode()
                i += 1
        if literal:
            self._parts.append(bytes(literal))

    def render(self, record: ConsumerRecord) -> bytes:
        """The bytes for one record."""
        return b"".join(part if isinstance(part, bytes) else part(record) for part in self._parts)
