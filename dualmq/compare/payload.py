"""The header every ``compare`` message carries inside its payload, so any receipt can be traced.

A message body is a fixed 32-byte binary header followed by filler up to the workload's message
size. The header travels *inside* the payload (not as a Kafka record header) because push mode
has nothing but the payload: the same bytes must work through both modes, and through real
Kafka and real Redis.

Layout (big-endian, ``struct`` format ``>4s8sIQQ``)::

    offset  size  field
    0       4     magic b"DMQ1"
    4       8     run id (random per ``compare`` run; receipts of other runs are ignored)
    12      4     producer id (0, 1, ...)
    16      8     sequence number within that producer (0, 1, ...)
    24      8     send timestamp, ``time.time_ns()`` (wall clock, so a consumer in another
                  process on the same host can compute latency too)

Not here: what is done with receipts (``accounting``).
"""

from __future__ import annotations

import os
import struct

HEADER = struct.Struct(">4s8sIQQ")
MAGIC = b"DMQ1"
HEADER_SIZE = HEADER.size  # 32


def new_run_id() -> bytes:
    """Eight random bytes naming one run (shown as 16 hex digits in reports)."""
    return os.urandom(8)


def encode(run_id: bytes, producer: int, seq: int, sent_ns: int, size: int) -> bytes:
    """The payload of one message: header, then ``.`` filler up to ``size`` bytes.

    Args:
        run_id: from ``new_run_id``.
        producer, seq: who sent it and its position in that producer's stream.
        sent_ns: ``time.time_ns()`` just before it is handed to the client library.
        size: total payload size; sizes below the header size get just the header.
    """
    header = HEADER.pack(MAGIC, run_id, producer, seq, sent_ns)
    return header + b"." * (size - HEADER_SIZE) if size > HEADER_SIZE else header


def decode(payload: bytes | None, run_id: bytes) -> tuple[int, int, int] | None:
    """``(producer, seq, sent_ns)`` of a payload of this run, or None for anything else.

    Foreign messages (another run, another program on the same channel) return None rather
    than raising: a shared broker may carry traffic we did not send.
    """
    if payload is None or len(payload) < HEADER_SIZE:
        return None
    magic, run, producer, seq, sent_ns = HEADER.unpack_from(payload)
    if magic != MAGIC or run != run_id:
        return None
    return producer, seq, sent_ns
