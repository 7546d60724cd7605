"""Reply encoders (server side) and the request encoder (client side) for RESP2 and RESP3.

Each reply shape has one small function returning finished bytes; aggregates take elements
that are *already encoded*, so a command handler builds its reply bottom-up without any
generic dispatch on the hot path. ``encode`` is the convenience for everything else: it maps a
Python value (see ``wire.resp.values``) to its wire form.

``protocol`` is 2 or 3: the version the connection negotiated with HELLO. RESP3 added types
that RESP2 lacks; when asked for one of them on a RESP2 connection we send what Redis sends
there (``addReply*`` in Redis' ``networking.c``):

    null          RESP3 ``_``             RESP2 ``$-1`` (or ``*-1`` for a null array)
    double        RESP3 ``,1.5``          RESP2 bulk string ``$3 1.5``
    boolean       RESP3 ``#t`` / ``#f``   RESP2 integer ``:1`` / ``:0``
    big number    RESP3 ``(123...``       RESP2 bulk string of the digits
    verbatim      RESP3 ``=7 txt:abc``    RESP2 bulk string of the text (no format prefix)
    map           RESP3 ``%n`` + pairs    RESP2 flat array of 2n elements
    set           RESP3 ``~n``            RESP2 array
    push          RESP3 ``>n``            RESP2 array

Misuse (a CR/LF inside a simple string, a value ``encode`` cannot represent) is our bug, so it
raises ``LocalProtocolError``.

Not here: parsing (``parser``), the pub/sub frames on the publish hot path (``pubsub``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from wire.errors import LocalProtocolError
from wire.resp.values import ErrorReply, Push, RespSet, SimpleString, Verbatim

__all__ = [
    "array",
    "big_number",
    "boolean",
    "bulk",
    "command",
    "double",
    "encode",
    "error",
    "integer",
    "map_",
    "null",
    "null_array",
    "push",
    "set_",
    "simple",
    "verbatim",
]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

# Errors must stay on one line: Redis replaces CR and LF by spaces (addReplyErrorLength) so
# that a message quoting user input can never inject extra protocol lines.
_NEWLINES_TO_SPACES = str.maketrans("\r\n", "  ")


def _text_bytes(text: str) -> bytes:
    # surrogateescape undoes the parser's decoding exactly, so arbitrary bytes round-trip.
    return text.encode("utf-8", "surrogateescape")


def simple(text: str) -> bytes:
    """Encode a simple string: ``+OK\\r\\n``.

    Raises:
        LocalProtocolError: if ``text`` contains CR or LF (it would end the line early).
    """
    if "\r" in text or "\n" in text:
        raise LocalProtocolError(f"simple string may not contain CR or LF: {text!r}")
    return b"+%b\r\n" % _text_bytes(text)


def error(text: str) -> bytes:
    """Encode an error line from ``text`` without its leading ``-``.

    ``error("ERR unknown command 'FOO', with args beginning with: ")`` gives
    ``b"-ERR unknown command 'FOO', with args beginning with: \\r\\n"``. CR and LF become spaces.
    """
    return b"-%b\r\n" % _text_bytes(text.translate(_NEWLINES_TO_SPACES))


def integer(n: int) -> bytes:
    """Encode a signed 64-bit integer: ``:3\\r\\n``.

    Raises:
        LocalProtocolError: outside the signed 64-bit range (use ``big_number``).
    """
    if not _INT64_MIN <= n <= _INT64_MAX:
        raise LocalProtocolError(f"integer {n} does not fit in 64 bits; use big_number")
    return b":%d\r\n" % n


def bulk(data: bytes) -> bytes:
    """Encode a bulk (binary-safe) string: ``$5\\r\\nhello\\r\\n``."""
    return b"$%d\r\n%b\r\n" % (len(data), data)


def null(protocol: int) -> bytes:
    """The null reply: ``$-1`` (RESP2 null bulk string) or ``_`` (RESP3)."""
    return b"_\r\n" if protocol == 3 else b"$-1\r\n"


def null_array(protocol: int) -> bytes:
    """The null array: ``*-1`` in RESP2, ``_`` in RESP3 (which has a single null)."""
    return b"_\r\n" if protocol == 3 else b"*-1\r\n"


def array(encoded_items: list[bytes]) -> bytes:
    """An array of already-encoded elements: ``*<n>\\r\\n`` + the elements."""
    return b"*%d\r\n%b" % (len(encoded_items), b"".join(encoded_items))


def map_(pairs: list[tuple[bytes, bytes]], protocol: int) -> bytes:
    """A map of already-encoded (key, value) pairs; a flat array of 2n elements in RESP2."""
    body = b"".join([key + value for key, value in pairs])
    if protocol == 3:
        return b"%%%d\r\n%b" % (len(pairs), body)
    return b"*%d\r\n%b" % (2 * len(pairs), body)


def set_(encoded_items: list[bytes], protocol: int) -> bytes:
    """A set of already-encoded elements (``~`` in RESP3, an array in RESP2)."""
    return b"%b%d\r\n%b" % (
        b"~" if protocol == 3 else b"*",
        len(encoded_items),
        b"".join(encoded_items),
    )


def push(encoded_items: list[bytes], protocol: int) -> bytes:
    """Out-of-band data (``>`` in RESP3, an array in RESP2, as pub/sub messages are)."""
    return b"%b%d\r\n%b" % (
        b">" if protocol == 3 else b"*",
        len(encoded_items),
        b"".join(encoded_items),
    )


def _double_text(x: float) -> bytes:
    if math.isnan(x):
        return b"nan"
    if math.isinf(x):
        return b"inf" if x > 0 else b"-inf"
    # repr() is the shortest text that reads back as the same float (what Redis >= 7.2 sends
    # via fpconv_dtoa; 7.0 used "%.17g", which prints 1.23 as 1.2299999999999999). Integral
    # values lose the ".0", as in Redis: ",10" not ",10.0".
    text = repr(x)
    if text.endswith(".0"):
        text = text[:-2]
    return text.encode("ascii")


def double(x: float, protocol: int) -> bytes:
    """A floating point number: ``,1.5`` in RESP3, the bulk string ``"1.5"`` in RESP2."""
    text = _double_text(x)
    if protocol == 3:
        return b",%b\r\n" % text
    return bulk(text)


def boolean(b: bool, protocol: int) -> bytes:
    """A boolean: ``#t``/``#f`` in RESP3, ``:1``/``:0`` in RESP2."""
    if protocol == 3:
        return b"#t\r\n" if b else b"#f\r\n"
    return b":1\r\n" if b else b":0\r\n"


def verbatim(text: str, protocol: int, fmt: str = "txt") -> bytes:
    """A verbatim string: ``=<len>\\r\\ntxt:<text>\\r\\n`` in RESP3, the plain text bulk in RESP2.

    Raises:
        LocalProtocolError: if ``fmt`` is not exactly three ASCII characters.
    """
    data = _text_bytes(text)
    if protocol != 3:
        return bulk(data)
    if len(fmt) != 3 or not fmt.isascii():
        raise LocalProtocolError(f"verbatim format must be 3 ASCII characters, got {fmt!r}")
    return b"=%d\r\n%b:%b\r\n" % (len(data) + 4, fmt.encode("ascii"), data)


def big_number(n: int, protocol: int) -> bytes:
    """An arbitrary-precision integer: ``(<digits>`` in RESP3, a bulk string in RESP2."""
    if protocol == 3:
        return b"(%d\r\n" % n
    return bulk(b"%d" % n)


def encode(value: object, protocol: int) -> bytes:
    """Encode any supported Python value, recursively.

    bytes -> bulk, str -> bulk (UTF-8), SimpleString -> simple, ErrorReply -> error,
    Verbatim -> verbatim, bool -> boolean, int -> integer (big number beyond 64 bits),
    float -> double, None -> null, list/tuple -> array, Push -> push, RespSet/set/frozenset
    -> set, dict -> map.

    Raises:
        LocalProtocolError: for any other type.
    """
    # Order matters: the subclasses (bool of int, SimpleString of str, Push of list...) must
    # be tested before their builtin bases.
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bulk(bytes(value))
    if isinstance(value, str):
        if isinstance(value, SimpleString):
            return simple(value)
        if isinstance(value, ErrorReply):
            return error(value)
        if isinstance(value, Verbatim):
            return verbatim(value, protocol, value.format)
        return bulk(_text_bytes(value))
    if isinstance(value, bool):
        return boolean(value, protocol)
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return b":%d\r\n" % value
        return big_number(value, protocol)
    if isinstance(value, float):
        return double(value, protocol)
    if value is None:
        return null(protocol)
    if isinstance(value, list):
        items = [encode(item, protocol) for item in value]
        if isinstance(value, Push):
            return push(items, protocol)
        if isinstance(value, RespSet):
            return set_(items, protocol)
        return array(items)
    if isinstance(value, tuple):
        return array([encode(item, protocol) for item in value])
    if isinstance(value, (set, frozenset)):
        return set_([encode(item, protocol) for item in value], protocol)
    if isinstance(value, dict):
        return map_([(encode(k, protocol), encode(v, protocol)) for k, v in value.items()], protocol)
    raise LocalProtocolError(f"cannot encode {type(value).__name__} as RESP")


def _argument(arg: bytes | str | int) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode("utf-8")
    # bool is an int, but "True" vs "1" is ambiguous: refuse rather than guess.
    if isinstance(arg, int) and not isinstance(arg, bool):
        return b"%d" % arg
    if isinstance(arg, (bytearray, memoryview)):
        return bytes(arg)
    raise LocalProtocolError(f"command arguments must be bytes, str or int, not {type(arg).__name__}")


def command(*args: bytes | str | int) -> bytes:
    """Encode a request as a multibulk: ``*<argc>\\r\\n`` then ``$<len>\\r\\n<arg>\\r\\n`` each.

    Raises:
        LocalProtocolError: for no arguments, or an argument of another type.
    """
    if not args:
        # Redis silently ignores "*0"; a client waiting for its reply would hang forever.
        raise LocalProtocolError("a command needs at least one argument")
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = _argument(arg)
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


def commands(requests: Iterable[tuple[bytes | str | int, ...]]) -> bytes:
    """Encode several requests back to back (a pipeline)."""
    return b"".join([command(*request) for request in requests])
