"""Replacing a small file so that a crash leaves the old content or the new, never a mix.

Every small file the broker rewrites whole — ``topics.json``, the producer-id block file, the
offsets snapshot, the ready file ``dualmq serve`` writes for scripts — goes through
:func:`write_atomically`. The recipe, and why each step is there:

1. write the new content to ``<name>.tmp`` next to the file (same directory, hence same file
   system, so step 3 is a rename and not a copy);
2. ``fsync`` it: the data must be on disk *before* the name points at it, or a power loss
   could leave the new name on an empty or partial file;
3. ``os.replace`` it over the old name: on POSIX a rename is atomic, so readers (and a
   restart) see either the old file or the new one;
4. ``fsync`` the directory: the rename is a change to the directory, and only that makes
   the rename itself durable.

A leftover ``<name>.tmp`` (a crash between 1 and 3) is harmless: the next write truncates it.
:func:`write_temporary` is steps 1 and 2 alone, for a caller that must do something between
the write and the rename (the offsets compaction creates the journal its snapshot names).
The segment files of the log are a different matter (they are appended to, never replaced)
and live in ``broker/log/``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fsync_directory", "temporary_path", "write_atomically", "write_temporary"]


def temporary_path(path: Path) -> Path:
    """Where :func:`write_atomically` writes before renaming: ``<name>.tmp`` beside ``path``."""
    return path.with_name(path.name + ".tmp")


def fsync_directory(directory: Path) -> None:
    """Make the directory's entries durable (a file created, renamed or removed in it).

    Raises:
        OSError: the directory cannot be opened or fsynced.
    """
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temporary(path: Path, data: bytes) -> Path:
    """Steps 1 and 2: write ``data`` to ``<name>.tmp`` beside ``path`` and fsync it.

    Returns:
        The temporary file's path, ready to be renamed over ``path``.
    Raises:
        OSError: the file could not be written or fsynced; ``path`` is untouched.
    """
    temporary = temporary_path(Path(path))
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    return temporary


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path``'s content with ``data``, durably and atomically (see the module docstring).

    Blocking: two fsyncs. Called for rare, small writes (a topic created, a block of producer
    ids reserved, the offsets snapshot compacted, start-up).

    Raises:
        OSError: any step failed. ``path`` then still holds its old content (or does not
            exist, if it did not before), unless the failure was the final directory fsync,
            after which the new content is in place but its name may not survive a power loss.
    """
    path = Path(path)
    os.replace(write_temporary(path, data), path)
    fsync_directory(path.parent)
