"""OffsetStore: commits survive restart and crash, torn tails are cut, compaction is atomic."""

from __future__ import annotations

import os

import pytest
from structlog.testing import capture_logs

from broker.group_errors import ErrorKind
from broker.offsets import MAX_METADATA_BYTES, CommittedOffset, OffsetStore, OffsetStoreCorrupt


def test_commit_fetch_and_unknown(tmp_path):
    store = OffsetStore.open(tmp_path)
    assert store.fetch("g", "t", 0) is None
    assert store.commit("g", "t", 0, 42, 3, "meta", 1000) is ErrorKind.NONE
    assert store.fetch("g", "t", 0) == CommittedOffset(42, 3, "meta", 1000)
    assert store.fetch("other", "t", 0) is None
    store.commit("g", "t", 0, 43, -1, None, 1001)  # last write wins
    assert store.fetch("g", "t", 0) == CommittedOffset(43, -1, None, 1001)
    store.close()


def test_metadata_too_large_is_refused(tmp_path):
    store = OffsetStore.open(tmp_path)
    assert store.commit("g", "t", 0, 1, -1, "x" * MAX_METADATA_BYTES, 0) is ErrorKind.NONE
    too_big = "é" * (MAX_METADATA_BYTES // 2 + 1)  # counted in UTF-8 bytes
    assert store.commit("g", "t", 1, 1, -1, too_big, 0) is ErrorKind.OFFSET_METADATA_TOO_LARGE
    assert store.fetch("g", "t", 1) is None
    store.close()


def test_fetch_all_groups_and_deletes_survive_restart(tmp_path):
    store = OffsetStore.open(tmp_path)
    store.commit("g1", "a", 0, 5, -1, "", 1)
    store.commit("g1", "b", 1, 6, -1, "", 1)
    store.commit("g2", "a", 0, 7, -1, "", 1)
    store.commit("g3", "c", 0, 8, -1, "", 1)
    store.delete_topic("a")
    store.delete_group("g3")
    store.flush()
    expected = {("b", 1): CommittedOffset(6, -1, "", 1)}
    assert store.fetch_all("g1") == expected
    assert store.groups() == ["g1"]
    store.close()
    reopened = OffsetStore.open(tmp_path)
    assert reopened.fetch_all("g1") == expected
    assert reopened.groups() == ["g1"]
    reopened.close()


def test_flushed_commits_survive_a_crash(tmp_path):
    # "Crash" = the process vanishes without close(): only what flush() wrote may be relied on.
    store = OffsetStore.open(tmp_path)
    store.commit("g", "t", 0, 10, -1, None, 1)
    store.flush()
    store.commit("g", "t", 0, 11, -1, None, 2)  # never flushed, never acknowledged
    recovered = OffsetStore.open(tmp_path)
    assert recovered.fetch("g", "t", 0).offset == 10
    recovered.close()


@pytest.mark.parametrize("cut", [1, 4, 8, 9, 20])
def test_torn_tail_is_truncated_and_logged(tmp_path, cut):
    store = OffsetStore.open(tmp_path)
    store.commit("g", "t", 0, 1, -1, None, 1)
    store.flush()
    journal = tmp_path / "journal.0"
    good = journal.stat().st_size
    store.commit("g", "t", 0, 2, -1, None, 2)
    store.flush()
    whole = journal.stat().st_size
    assert cut < whole - good
    with open(journal, "r+b") as f:
        f.truncate(good + cut)  # the second append was cut short by a crash
    with capture_logs() as logs:
        recovered = OffsetStore.open(tmp_path)
    assert recovered.fetch("g", "t", 0).offset == 1
    assert journal.stat().st_size == good
    assert [e["event"] for e in logs] == ["offsets_journal_truncated"]
    # and the store keeps working after the cut
    recovered.commit("g", "t", 0, 3, -1, None, 3)
    recovered.close()
    assert OffsetStore.open(tmp_path).fetch("g", "t", 0).offset == 3


def test_corrupt_tail_bytes_are_truncated(tmp_path):
    store = OffsetStore.open(tmp_path)
    store.commit("g", "t", 0, 1, -1, None, 1)
    store.close()
    with open(tmp_path / "journal.0", "ab") as f:
        f.write(b"\x00\x00\x00\x05\xde\xad\xbe\xefhello")  # whole frame, wrong CRC
    with capture_logs():
        assert OffsetStore.open(tmp_path).fetch("g", "t", 0).offset == 1


def test_compaction_replaces_journal_with_snapshot(tmp_path):
    store = OffsetStore.open(tmp_path, compact_after_bytes=500)
    with capture_logs() as logs:
        for i in range(50):
            store.commit("g", "t", i % 3, i, -1, "m", i)
            store.flush()
    assert any(e["event"] == "offsets_compacted" for e in logs)
    journals = sorted(p.name for p in tmp_path.glob("journal.*"))
    assert len(journals) == 1 and journals[0] != "journal.0"
    assert (tmp_path / "snapshot").exists()
    store.close()
    reopened = OffsetStore.open(tmp_path)
    assert {k: v.offset for k, v in reopened.fetch_all("g").items()} == {
        ("t", 0): 48, ("t", 1): 49, ("t", 2): 47}
    reopened.close()


def test_interrupted_compaction_keeps_old_state(tmp_path):
    store = OffsetStore.open(tmp_path)
    store.commit("g", "t", 0, 5, -1, None, 1)
    store.close()
    # A compaction that died before its rename: a temp snapshot and an empty next journal.
    (tmp_path / "snapshot.tmp").write_bytes(b"partial")
    (tmp_path / "journal.1").write_bytes(b"")
    reopened = OffsetStore.open(tmp_path)
    assert reopened.fetch("g", "t", 0).offset == 5
    assert not (tmp_path / "snapshot.tmp").exists()
    assert not (tmp_path / "journal.1").exists()
    reopened.close()


def test_damaged_snapshot_is_refused(tmp_path):
    store = OffsetStore.open(tmp_path)
    store.commit("g", "t", 0, 5, -1, None, 1)
    store.compact()
    store.close()
    data = bytearray((tmp_path / "snapshot").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "snapshot").write_bytes(bytes(data))
    with pytest.raises(OffsetStoreCorrupt):
        OffsetStore.open(tmp_path)


def test_compaction_then_more_commits_then_restart(tmp_path):
    store = OffsetStore.open(tmp_path)
    store.commit("g", "t", 0, 5, -1, None, 1)
    store.compact()
    store.commit("g", "t", 0, 6, 2, "x", 2)
    store.flush()
    os.sync()
    assert OffsetStore.open(tmp_path).fetch("g", "t", 0) == CommittedOffset(6, 2, "x", 2)
