"""The header every ``compare`` message carries inside its payload, so any receipt can be traced.

A message body is a fixed 32-byte binary header followed by filler up to the workload's message
size. The header travels *inside* the payload (not as a Kafka record header) because push mode
has nothing but the payload: the same bytes must work through both modes, and through real
Kafka and real Redis.

Layout (big-endian, ``struct`` format ``>4sI8sQQ``)::

    offset  size  field
    0       4     magic b"DMQ2"
    4       4     producer id (0, 1, ...)
    8       8     run id (random per ``compare`` run; receipts of other runs are ignored)
    16      8     sequence number within that producer (0, 1, ...)
    24      8     send timestamp in nanoseconds, on the clock the caller chose: the
                  in-process scenarios use ``time.time_ns()``, the role processes of a
                  measured run ``time.monotonic_ns()`` (one clock for every process of a
                  Linux host, so a consumer process can compute latency)

The header is four aligned 64-bit words, so a consumer can keep the headers of a whole
batch of messages as one ``array`` of integers (``words``): one C-level copy, no Python object
per message. Word 0 is magic and producer, word 1 the run id, word 2 the sequence number,
word 3 the send time.

The filler is not all one byte: a compression codec would shrink that to nothing and make the
``compression`` sweep meaningless. It is text-like (words from a small vocabulary), which the
codecs shrink about as much as they shrink JSON or log lines.

Not here: what is done with receipts (``accounting``, ``measured``).
"""

from __future__ import annotations

import os
import random
import struct
import sys
from array import array

HEADER = struct.Struct(">4sI8sQQ")
MAGIC = b"DMQ2"
HEADER_SIZE = HEADER.size  # 32
WORDS = 4                  # 64-bit words per header
SEQ_AND_TIME = struct.Struct(">QQ")


def _text_like(size: int) -> bytes:
    rng = random.Random(19)   # the same filler in every process and run
    vocabulary = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
                  for _ in range(300)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(vocabulary) + b" "
    return bytes(out[:size])


_FILLER_CACHE: dict[int, bytes] = {}


def filler(size: int) -> bytes:
    """``size`` bytes of the text-like filler (cached per size)."""
    if size not in _FILLER_CACHE:
        _FILLER_CACHE[size] = _text_like(size)
    return _FILLER_CACHE[size]


def new_run_id() -> bytes:
    """Eight random bytes naming one run (shown as 16 hex digits in reports)."""
    return os.urandom(8)


def encode(run_id: bytes, producer: int, seq: int, sent_ns: int, size: int) -> bytes:
    """The payload of one message: header, then filler up to ``size`` bytes.

    Args:
        run_id: from ``new_run_id``.
        producer, seq: who sent it and its position in that producer's stream.
        sent_ns: the send timestamp (see the module docstring for the clock).
        size: total payload size; sizes below the header size get just the header.
    """
    header = HEADER.pack(MAGIC, producer, run_id, seq, sent_ns)
    return header + filler(size - HEADER_SIZE) if size > HEADER_SIZE else header


class Encoder:
    """``encode`` for one producer of one run, with the constant parts prepared once (hot path)."""

    def __init__(self, run_id: bytes, producer: int, size: int) -> None:
        self.prefix = HEADER.pack(MAGIC, producer, run_id, 0, 0)[:16]
        self.tail = filler(size - HEADER_SIZE) if size > HEADER_SIZE else b""
        self.pack = SEQ_AND_TIME.pack

    def __call__(self, seq: int, sent_ns: int) -> bytes:
        return self.prefix + self.pack(seq, sent_ns) + self.tail


def decode(payload: bytes | None, run_id: bytes) -> tuple[int, int, int] | None:
    """``(producer, seq, sent_ns)`` of a payload of this run, or None for anything else.

    Foreign messages (another run, another program on the same channel) return None rather
    than raising: a shared broker may carry traffic we did not send.
    """
    if payload is None or len(payload) < HEADER_SIZE:
        return None
    magic, producer, run, seq, sent_ns = HEADER.unpack_from(payload)
    if magic != MAGIC or run != run_id:
        return None
    return producer, seq, sent_ns


def words(headers: bytes) -> array:
    """The 64-bit words of concatenated headers (``b"".join(v[:32] for v in values)``).

    Args:
        headers: a multiple of ``HEADER_SIZE`` bytes.

    Returns:
        ``array("Q")`` with ``WORDS`` entries per header, in host order.
    """
    out = array("Q")
    out.frombytes(headers)
    if sys.byteorder == "little":
        out.byteswap()
    return out


def run_word(run_id: bytes) -> int:
    """The run id as it appears in word 1 of ``words``."""
    return int.from_bytes(run_id, "big")


def magic_word(producer: int) -> int:
    """Word 0 of a header of this producer."""
    return (int.from_bytes(MAGIC, "big") << 32) | producer
