"""A receive buffer for incremental parsers, with the size guard checked before buffering.

Parsers append whatever the socket gave them and consume from the front. Consuming moves a
read position instead of deleting from the front of a ``bytearray`` every time (which would
make a pipeline of N small commands cost O(N^2)); the consumed prefix is compacted away only
once it is both large and at least half the buffer, so extraction stays O(n) overall.

``max_size`` bounds how many unconsumed bytes may be held. ``feed`` raises *before* copying
data that would exceed it, so a peer cannot make us allocate beyond the limit.
"""

from __future__ import annotations

from wire.errors import RemoteProtocolError

_COMPACT_THRESHOLD = 64 * 1024


class ReceiveBuffer:
    """Bytes received but not yet parsed.

    Args:
        max_size: largest number of unconsumed bytes allowed; ``None`` for no limit.
    """

    __slots__ = ("_data", "_pos", "max_size")

    def __init__(self, max_size: int | None = None) -> None:
        self._data = bytearray()
        self._pos = 0
        self.max_size = max_size

    def __len__(self) -> int:
        return len(self._data) - self._pos

    def __bool__(self) -> bool:
        return len(self._data) > self._pos

    def feed(self, data: bytes | bytearray | memoryview, *, reply: bytes | None = None) -> None:
        """Append received bytes.

        Raises:
            RemoteProtocolError: if holding ``data`` would exceed ``max_size``; nothing is
                appended in that case.
        """
        if self.max_size is not None and len(self) + len(data) > self.max_size:
            raise RemoteProtocolError(
                f"receive buffer limit of {self.max_size} bytes exceeded", reply=reply
            )
        self._data += data

    def peek(self) -> memoryview:
        """The unconsumed bytes, without copying. Valid until the next feed or consume."""
        return memoryview(self._data)[self._pos :]

    def find(self, needle: bytes, start: int = 0) -> int:
        """Index of ``needle`` relative to the read position, or -1."""
        found = self._data.find(needle, self._pos + start)
        return -1 if found < 0 else found - self._pos

    def byte_at(self, index: int) -> int:
        """The byte ``index`` positions after the read position."""
        return self._data[self._pos + index]

    def get(self, start: int, end: int) -> bytes:
        """A copy of the unconsumed bytes ``[start, end)`` relative to the read position."""
        # Slicing the bytearray would copy once into a new bytearray and bytes() again;
        # through a memoryview it is one copy, which matters for megabyte Produce frames.
        with memoryview(self._data) as view, view[self._pos + start : self._pos + end] as part:
            return bytes(part)

    def consume(self, count: int) -> None:
        """Drop ``count`` bytes from the front."""
        if count > len(self):
            raise ValueError("cannot consume more than is buffered")
        self._pos += count
        if self._pos == len(self._data):
            self._data.clear()
            self._pos = 0
        elif self._pos >= _COMPACT_THRESHOLD and self._pos * 2 >= len(self._data):
            del self._data[: self._pos]
            self._pos = 0

    def take(self, count: int) -> bytes:
        """Return and drop the first ``count`` bytes."""
        out = self.get(0, count)
        self.consume(count)
        return out
