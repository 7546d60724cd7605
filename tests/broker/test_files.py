"""write_atomically: the new content or the old one, never a mix, and every step fsynced."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import broker.files as files
from broker.files import temporary_path, write_atomically, write_temporary


def test_replaces_the_content_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "topics.json"
    write_atomically(path, b"first")
    write_atomically(path, b"second, longer")
    assert path.read_bytes() == b"second, longer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["topics.json"]


def test_fsyncs_the_file_before_the_rename_and_the_directory_after(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "producer_ids"
    steps: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        steps.append("fsync directory" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync file")
        real_fsync(fd)

    def replace(source, target) -> None:
        steps.append("rename")
        real_replace(source, target)

    monkeypatch.setattr(files.os, "fsync", fsync)
    monkeypatch.setattr(files.os, "replace", replace)
    write_atomically(path, b"1000\n")
    assert steps == ["fsync file", "rename", "fsync directory"]


def test_a_failed_write_leaves_the_old_content(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "snapshot"
    write_atomically(path, b"old")

    def disk_full(fd: int, data) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "write", disk_full)
    with pytest.raises(OSError):
        write_atomically(path, b"new")
    assert path.read_bytes() == b"old"


def test_write_temporary_is_the_first_half(tmp_path: Path) -> None:
    path = tmp_path / "snapshot"
    temporary = write_temporary(path, b"data")
    assert temporary == temporary_path(path) == tmp_path / "snapshot.tmp"
    assert temporary.read_bytes() == b"data" and not path.exists()
