"""OffsetStore: commits survive restart and crash, torn tails are cut, compaction is atomic,
damage in the middle of the journal loses only the damaged frame, a damaged snapshot is refused."""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path

import crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from broker.errors import DamagedFile
from broker.offsets import MAX_METADATA_BYTES, CommittedOffset, OffsetStore, OffsetStoreCorrupt, _frame
from broker.outcome import ErrorKind


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


# ------------------------------------------------------------- a flush's file work elsewhere


def committed(directory: Path) -> dict[tuple[str, int], int]:
    """What a restart finds for group "g"."""
    store = OffsetStore.open(directory)
    try:
        return {key: c.offset for key, c in store.fetch_all("g").items()}
    finally:
        store.close()


def test_commits_during_a_flush_job_wait_for_the_next_one(tmp_path):
    # The job's file work may run in a worker thread while the store keeps taking commits:
    # they are not the job's (it was made before them) and go to the next flush.
    store = OffsetStore.open(tmp_path)
    store.commit("g", "t", 0, 1, -1, None, 1)
    job = store.begin_flush()
    assert job is not None
    store.commit("g", "t", 1, 2, -1, None, 2)  # arrives while the job "runs"
    job.run()
    store.finish_flush(job)
    assert committed(tmp_path) == {("t", 0): 1}  # durable: the job's; not yet: the later one
    store.flush()
    assert committed(tmp_path) == {("t", 0): 1, ("t", 1): 2}
    assert store.begin_flush() is None  # nothing queued
    store.close()


def test_flush_jobs_must_not_overlap(tmp_path):
    store = OffsetStore.open(tmp_path)
    store.commit("g", "t", 0, 1, -1, None, 1)
    job = store.begin_flush()
    store.commit("g", "t", 0, 2, -1, None, 2)
    with pytest.raises(RuntimeError, match="must not overlap"):
        store.begin_flush()
    job.run()
    store.finish_flush(job)
    store.close()
    assert committed(tmp_path) == {("t", 0): 2}


def test_a_failed_flush_is_retried_by_the_next_one(tmp_path, monkeypatch):
    # Two requests commit; the first one's flush carries both and fails (disk full). The
    # second request then flushes: it must write the commits again, not find nothing queued
    # and acknowledge a commit that never reached the disk.
    store = OffsetStore.open(tmp_path)
    store.commit("g", "t", 0, 1, -1, None, 1)
    store.commit("g", "t", 1, 2, -1, None, 2)
    real_write = os.write

    def disk_full(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(OSError):
        store.flush()
    monkeypatch.setattr(os, "write", real_write)
    store.flush()  # the second request's flush
    assert committed(tmp_path) == {("t", 0): 1, ("t", 1): 2}
    store.close()


def test_commits_during_a_compaction_job_land_in_the_new_journal(tmp_path):
    store = OffsetStore.open(tmp_path)
    store.commit("g", "t", 0, 1, -1, None, 1)
    job = store.begin_flush(compact=True)
    store.commit("g", "t", 0, 2, -1, None, 2)  # newer than the job's snapshot
    job.run()
    store.finish_flush(job)
    assert [p.name for p in tmp_path.glob("journal.*")] == ["journal.1"]
    store.flush()
    assert committed(tmp_path) == {("t", 0): 2}
    store.close()


@pytest.mark.parametrize("failing_step", ["write_temporary", "fsync_directory"])
def test_a_failed_compaction_loses_no_later_commit(tmp_path, monkeypatch, failing_step):
    # Failing before the rename (the temporary snapshot cannot be written), the old journal
    # stays live. Failing after it (the directory fsync), the snapshot in place names the new
    # journal: a commit still written to the old one would be lost at the next start, where
    # the old journal is deleted as a stray. Either way the next commits must survive.
    import broker.offsets as offsets_module

    store = OffsetStore.open(tmp_path)
    store.commit("g", "t", 0, 1, -1, None, 1)

    def fails(*args):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(offsets_module, failing_step, fails)
    with pytest.raises(OSError):
        store.compact()
    monkeypatch.undo()
    store.commit("g", "t", 0, 2, -1, None, 2)
    store.flush()
    assert committed(tmp_path) == {("t", 0): 2}
    store.compact()  # and a later compaction works
    store.close()
    assert committed(tmp_path) == {("t", 0): 2}


# ------------------------------------------------------------- damage inside the journal


def _frame_spans(journal: Path) -> list[tuple[int, int]]:
    """(start, end) of every frame of an intact journal, read from the length fields."""
    data, spans, position = journal.read_bytes(), [], 0
    while position < len(data):
        end = position + 8 + int.from_bytes(data[position:position + 4], "big")
        spans.append((position, end))
        position = end
    return spans


def _flip(path: Path, position: int, mask: int = 0x01) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= mask
    path.write_bytes(bytes(data))


def test_a_damaged_frame_in_the_middle_keeps_the_commits_after_it(tmp_path):
    store = OffsetStore.open(tmp_path)
    store.commit("early", "t", 0, 100, -1, None, 1)
    store.commit("victim", "t", 0, 500, -1, None, 2)
    store.commit("late", "t", 0, 12_345, 7, "meta", 3)
    store.commit("early", "t", 1, 200, -1, None, 4)
    store.close()
    journal = tmp_path / "journal.0"
    victim_start, victim_end = _frame_spans(journal)[1]
    _flip(journal, (victim_start + victim_end) // 2)
    with capture_logs() as logs:
        recovered = OffsetStore.open(tmp_path)
    assert recovered.fetch("late", "t", 0) == CommittedOffset(12_345, 7, "meta", 3)
    assert recovered.fetch("early", "t", 0).offset == 100
    assert recovered.fetch("early", "t", 1).offset == 200
    assert recovered.fetch("victim", "t", 0) is None  # its frame is gone: it restarts earlier
    [skipped] = [e for e in logs if e["event"] == "offsets_journal_damage_skipped"]
    assert skipped["log_level"] == "warning"
    assert skipped["path"] == str(journal)
    assert (skipped["position"], skipped["skipped_bytes"]) == (victim_start, victim_end - victim_start)
    assert "twice" in skipped["consequence"]
    assert "offsets_journal_truncated" not in [e["event"] for e in logs]
    # The store works on, and the next start finds nothing left to warn about.
    recovered.commit("victim", "t", 0, 501, -1, None, 5)
    recovered.close()
    with capture_logs() as logs:
        again = OffsetStore.open(tmp_path)
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == []
    assert again.fetch("late", "t", 0).offset == 12_345 and again.fetch("victim", "t", 0).offset == 501
    again.close()


def test_a_damaged_length_field_in_the_middle_is_stepped_over(tmp_path):
    # A length that points past the end of the file looked like a torn tail to the old replay.
    store = OffsetStore.open(tmp_path)
    for group in ("a", "b", "c"):
        store.commit(group, "t", 0, 10, -1, None, 1)
    store.close()
    journal = tmp_path / "journal.0"
    _flip(journal, _frame_spans(journal)[1][0], 0x7F)  # first length byte of frame b
    with capture_logs():
        recovered = OffsetStore.open(tmp_path)
    assert sorted(recovered.groups()) == ["a", "c"]
    recovered.close()


def test_garbage_with_no_intact_frame_after_it_is_a_torn_tail(tmp_path):
    store = OffsetStore.open(tmp_path)
    store.commit("g", "t", 0, 1, -1, None, 1)
    store.close()
    journal = tmp_path / "journal.0"
    good = journal.stat().st_size
    with open(journal, "ab") as f:
        f.write(b'\x00\x00\x00\x30' + b'{"op":"commit"' * 5)  # looks like a start, checks out nowhere
    with capture_logs() as logs:
        recovered = OffsetStore.open(tmp_path)
    assert [e["event"] for e in logs] == ["offsets_journal_truncated"]
    assert journal.stat().st_size == good and recovered.fetch("g", "t", 0).offset == 1
    recovered.close()


def test_a_frame_with_a_good_crc_but_the_wrong_shape_is_skipped_not_a_crash(tmp_path):
    # The CRC only proves the bytes are as written; a record that is not one we write (a bug,
    # another program) is stepped over like damage instead of stopping the start.
    good = {"op": "commit", "g": "a", "t": "t", "p": 0, "o": 1, "e": -1, "m": None, "ts": 1}
    frames = [_frame(good), _frame({"op": "commit", "g": "x"}), _frame({"op": "rename", "g": "x"}),
              _frame({**good, "p": True}), _frame([1, 2]), _frame({**good, "g": "b", "o": 2})]
    (tmp_path / "journal.0").write_bytes(b"".join(frames))
    with capture_logs() as logs:
        recovered = OffsetStore.open(tmp_path)
    assert (recovered.fetch("a", "t", 0).offset, recovered.fetch("b", "t", 0).offset) == (1, 2)
    assert recovered.groups() == ["a", "b"]
    [skipped] = [e for e in logs if e["event"] == "offsets_journal_damage_skipped"]
    assert skipped["position"] == len(frames[0])
    assert skipped["skipped_bytes"] == sum(len(f) for f in frames[1:5])
    recovered.close()


def test_a_committed_metadata_string_cannot_imitate_a_frame(tmp_path):
    # A client chooses the metadata text. Even the bytes of a whole frame inside it must not
    # be taken for a frame when resynchronising: JSON escapes the zero bytes a header needs.
    forged = _frame({"op": "commit", "g": "victim", "t": "t", "p": 0, "o": 0, "e": -1, "m": None, "ts": 0})
    store = OffsetStore.open(tmp_path)
    store.commit("victim", "t", 0, 900, -1, None, 1)
    store.commit("attacker", "t", 0, 1, -1, forged.decode("latin-1"), 2)
    store.commit("after", "t", 0, 5, -1, None, 3)
    store.close()
    journal = tmp_path / "journal.0"
    _flip(journal, _frame_spans(journal)[1][0] + 5)  # the attacker's CRC
    with capture_logs():
        recovered = OffsetStore.open(tmp_path)
    assert recovered.fetch("victim", "t", 0).offset == 900
    assert recovered.fetch("after", "t", 0).offset == 5
    assert recovered.fetch("attacker", "t", 0) is None
    recovered.close()


@settings(max_examples=150)
@given(commits=st.integers(min_value=1, max_value=12), data=st.data())
def test_any_single_flipped_byte_loses_only_the_frame_it_hit(commits, data):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory)
        store = OffsetStore.open(path)
        for number in range(commits):
            metadata = data.draw(st.none() | st.text(max_size=20), label="metadata")
            store.commit(f"g{number}", "t", number % 3, 1000 + number, -1, metadata, number)
        before = {f"g{n}": store.fetch(f"g{n}", "t", n % 3) for n in range(commits)}
        store.close()
        journal = path / "journal.0"
        spans = _frame_spans(journal)
        position = data.draw(st.integers(0, spans[-1][1] - 1), label="position")
        mask = data.draw(st.integers(1, 255), label="mask")
        _flip(journal, position, mask)
        hit = next(i for i, (start, end) in enumerate(spans) if start <= position < end)
        with capture_logs():
            recovered = OffsetStore.open(path)
        for number in range(commits):
            got = recovered.fetch(f"g{number}", "t", number % 3)
            if number == hit:
                assert got is None
            else:
                assert got == before[f"g{number}"]
        recovered.close()


@settings(max_examples=150)
@given(st.binary(max_size=300), st.binary(max_size=300))
def test_arbitrary_journal_bytes_never_stop_the_start(prefix, suffix):
    # Whatever the journal holds, recovery keeps the intact frames and starts.
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory)
        intact = _frame({"op": "commit", "g": "g", "t": "t", "p": 0, "o": 77, "e": -1, "m": None, "ts": 0})
        (path / "journal.0").write_bytes(prefix + intact + suffix)
        with capture_logs():
            recovered = OffsetStore.open(path)
        assert recovered.fetch("g", "t", 0).offset == 77
        recovered.close()


# ------------------------------------------------------------- damage inside the snapshot


@settings(max_examples=100)
@given(data=st.data())
def test_any_damage_to_the_snapshot_is_refused_in_one_line(data):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory)
        store = OffsetStore.open(path)
        for number in range(4):
            store.commit(f"g{number}", "t", 0, number, -1, None, number)
        store.compact()
        store.close()
        snapshot = path / "snapshot"
        size = snapshot.stat().st_size
        damage = data.draw(st.sampled_from(["flip", "truncate", "append"]), label="damage")
        if damage == "flip":
            _flip(snapshot, data.draw(st.integers(0, size - 1)), data.draw(st.integers(1, 255)))
        elif damage == "truncate":
            with open(snapshot, "r+b") as f:
                f.truncate(data.draw(st.integers(0, size - 1)))
        else:
            with open(snapshot, "ab") as f:
                f.write(data.draw(st.binary(min_size=1, max_size=40)))
        with pytest.raises(OffsetStoreCorrupt) as refused:
            OffsetStore.open(path)
        assert str(snapshot) in str(refused.value) and "\n" not in str(refused.value)
        assert isinstance(refused.value, DamagedFile)


@pytest.mark.parametrize("header", [
    {"op": "snapshot"}, {"op": "snapshot", "journal": "1"}, {"op": "snapshot", "journal": -1},
    {"op": "snapshot", "journal": True}, {"op": "commit", "g": "g"}, [1, 2],
    {"op": "snapshot", "journal": 1, "records": "0"}, {"op": "snapshot", "journal": 1, "records": 2},
])
def test_a_snapshot_with_a_bad_header_is_refused_not_a_crash(tmp_path, header):
    # The CRC is right (the bytes are as written) but the content is not a snapshot header.
    payload = json.dumps(header).encode()
    (tmp_path / "snapshot").write_bytes(struct.pack(">II", len(payload), crc32c.crc32c(payload)) + payload)
    with pytest.raises(OffsetStoreCorrupt, match="snapshot"):
        OffsetStore.open(tmp_path)


def _snapshot_bytes(header: dict, *records: dict) -> bytes:
    return b"".join(_frame(r) for r in (header, *records))


def test_a_snapshot_cut_exactly_between_two_frames_is_refused(tmp_path):
    # Every frame left is intact; only the count in the header shows that some are missing.
    commits = [{"op": "commit", "g": f"g{n}", "t": "t", "p": 0, "o": n, "e": -1, "m": None, "ts": 0}
               for n in range(3)]
    (tmp_path / "snapshot").write_bytes(_snapshot_bytes({"op": "snapshot", "journal": 1, "records": 3},
                                                        *commits[:2]))
    with pytest.raises(OffsetStoreCorrupt, match="holds 2 records, its header says 3"):
        OffsetStore.open(tmp_path)


def test_a_snapshot_written_before_the_record_count_still_loads(tmp_path):
    commit = {"op": "commit", "g": "g", "t": "t", "p": 0, "o": 9, "e": -1, "m": None, "ts": 0}
    (tmp_path / "snapshot").write_bytes(_snapshot_bytes({"op": "snapshot", "journal": 4}, commit))
    (tmp_path / "journal.4").write_bytes(_frame({**commit, "o": 10}))
    store = OffsetStore.open(tmp_path)
    assert store.fetch("g", "t", 0).offset == 10
    store.close()
