"""The high-watermark checkpoint: one small file per partition directory, ``high-watermark-checkpoint``.

Kafka keeps ``replication-offset-checkpoint`` per data directory (topic partition -> high
watermark); we keep one file per partition, beside ``leader-epoch-checkpoint``, so a partition
directory carries everything about itself and a deleted topic takes its checkpoint with it.

Format (text, like the epoch checkpoint): a version line ``0`` and the high watermark, a
decimal offset. Written whole through :func:`broker.files.write_atomically` (temp file, fsync,
rename, directory fsync): a crash leaves the old value or the new one.

A missing file reads as None (the partition was never replicated here, or predates the
checkpoint); so does a damaged one, logged — the caller then starts from the log start, the
safe side (nothing taken as committed that might not be).
"""

from __future__ import annotations

from pathlib import Path

import structlog

from broker.files import write_atomically

__all__ = ["HIGH_WATERMARK_CHECKPOINT", "read_high_watermark", "write_high_watermark"]

log = structlog.get_logger(__name__)

HIGH_WATERMARK_CHECKPOINT = "high-watermark-checkpoint"
_VERSION = "0"


def read_high_watermark(directory: Path) -> int | None:
    """The checkpointed high watermark of the partition in ``directory``; None when the file is
    missing or damaged (logged: never raises for bad content)."""
    path = Path(directory) / HIGH_WATERMARK_CHECKPOINT
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("high_watermark_checkpoint_unreadable", file=str(path), error=str(exc))
        return None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != 2 or lines[0] != _VERSION or not lines[1].isdigit():
        log.warning("high_watermark_checkpoint_damaged", file=str(path), content=text[:80])
        return None
    return int(lines[1])


def write_high_watermark(directory: Path, offset: int) -> None:
    """Replace the checkpoint with ``offset``, atomically and durably.

    Raises:
        OSError: the write failed; the old checkpoint (if any) is still in place.
    """
    if offset < 0:
        raise ValueError(f"a high watermark cannot be negative: {offset}")
    write_atomically(Path(directory) / HIGH_WATERMARK_CHECKPOINT, f"{_VERSION}\n{offset}\n".encode("ascii"))
