"""Python types for RESP reply values that plain ``bytes``/``int``/``list`` cannot tell apart.

RESP has several kinds of string (simple ``+``, error ``-``/``!``, bulk ``$``, verbatim ``=``)
and several kinds of array (``*``, set ``~``, push ``>``). A client must know which one it got:
an error is not a value, a push is not the reply to the command it just sent. So the parser
returns thin subclasses of ``str`` and ``list`` that carry the kind in their type while still
behaving like the builtin (they compare equal to a plain ``str``/``list`` with the same
content). They subclass builtins instead of being attrs classes because callers want to use
them as the strings and lists they are; attrs has nothing to add here. The encoder looks at the same types to choose the wire form.

What maps to a builtin (see ``wire.resp.replies.ReplyParser``): bulk string -> ``bytes``,
integer and big number -> ``int``, double -> ``float``, boolean -> ``bool``, any null -> ``None``,
array -> ``list``, map -> ``dict``.

Text inside simple strings, errors and verbatim strings is decoded as UTF-8 with
``surrogateescape``: RESP does not promise UTF-8, and this way any byte sequence survives a
decode/encode round trip unchanged (the same trick ``os.fsdecode`` uses for file names).

Not here: the parser, the encoder, and anything about connections.
"""

from __future__ import annotations

__all__ = ["ErrorReply", "Push", "RespSet", "SimpleString", "Verbatim"]


class SimpleString(str):
    """A RESP simple string (``+OK``): short status text, never containing CR or LF."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"SimpleString({str.__repr__(self)})"


class ErrorReply(str):
    """A RESP error reply (``-ERR ...`` or RESP3 blob error ``!``), *returned*, not raised.

    An error reply answers one command; the connection stays usable, so the parser hands it
    back like any other value and the caller decides whether to raise.
    """

    __slots__ = ()

    @property
    def code(self) -> str:
        """The first word (``ERR``, ``NOPROTO``, ``WRONGTYPE`` ...), by Redis convention."""
        return self.split(" ", 1)[0]

    @property
    def detail(self) -> str:
        """Everything after the code."""
        parts = self.split(" ", 1)
        return parts[1] if len(parts) > 1 else ""

    def __repr__(self) -> str:
        return f"ErrorReply({str.__repr__(self)})"


class Verbatim(str):
    """A RESP3 verbatim string (``=``): text plus a 3-character format (``txt``, ``mkd``).

    Args:
        text: the string content.
        format: three ASCII characters describing how to display it; ``"txt"`` by default.
    """

    # No __slots__: CPython forbids non-empty slots on ``str`` subclasses, so ``format``
    # lives in the instance dict.

    def __new__(cls, text: str, format: str = "txt") -> Verbatim:  # noqa: A002 - RESP3's own name
        self = super().__new__(cls, text)
        self.format = format
        return self

    def __repr__(self) -> str:
        return f"Verbatim({str.__repr__(self)}, format={self.format!r})"

    def __reduce__(self):
        return (Verbatim, (str(self), self.format))


class RespSet(list):
    """A RESP3 set (``~``).

    A ``list`` subclass rather than a ``frozenset`` on purpose: RESP3 set elements may be of
    any type (including unhashable arrays and maps), and keeping the wire order and any
    duplicates makes decoding lossless. Call ``set(reply)`` when the elements are hashable
    and you want set semantics.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"RespSet({list.__repr__(self)})"


class Push(list):
    """A RESP3 push frame (``>``): out-of-band data such as a pub/sub message.

    Element 0 names the kind (``message``, ``pmessage``, ``subscribe`` ...). A push never
    answers a command, so a client must route it away from its queue of pending replies.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Push({list.__repr__(self)})"
