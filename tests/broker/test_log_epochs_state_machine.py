"""A hypothesis state machine drives leader epochs and truncation against a plain model.

The model is a list of batches ``(base offset, records, epoch, bytes)`` plus the log start
and end offsets. Steps: append with a rising (or repeated) leader epoch, append a follower's
copy with its epoch (``append_replica``), try an epoch below the latest (refused), truncate at
any offset (inside batches, at boundaries, past the end, below the start), apply retention,
close and reopen (sometimes deleting the checkpoint file, which must be rebuilt).

What must hold after every step: the log holds exactly the model's batches, byte for byte
from their base offset on, with their epochs; the log end is the model's; the epoch cache is
the list of epoch changes along the model's batches, on disk as in memory; and
``end_offset_for_epoch`` answers every epoch as computed from the model alone.
"""

from __future__ import annotations

import shutil
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from broker.config import LogConfig
from broker.errors import OffsetOutOfRange
from broker.log.epochs import CHECKPOINT_FILE, read_checkpoint
from broker.log.partition_log import PartitionLog
from broker.log.verify import scan_partition
from tests.broker.batches import build_batch, with_base_offset
from wire.kafka.batch import split_batches, validate

T0 = 1_700_000_000_000


def with_epoch(batch: bytes, epoch: int) -> bytes:
    """``batch`` stamped with ``epoch`` (outside the CRC, as a leader stamps it)."""
    out = bytearray(batch)
    struct.pack_into(">i", out, 12, epoch)
    return bytes(out)


class EpochMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="dualmq-epochs-sm-"))
        self.directory = self.root / "t-0"
        self.model: list[tuple[int, int, int, bytes]] = []
        self.start = 0
        self.end = 0
        self.epoch = 0  # the epoch the next leader append uses
        self.now = T0
        self.log: PartitionLog | None = None

    @initialize(segment_bytes=st.sampled_from([200, 500, 5000]),
                index_interval_bytes=st.sampled_from([0, 150]),
                retention_bytes=st.sampled_from([-1, 0, 600]))
    def setup(self, segment_bytes: int, index_interval_bytes: int, retention_bytes: int) -> None:
        self.config = LogConfig(segment_bytes=segment_bytes, index_interval_bytes=index_interval_bytes,
                                retention_bytes=retention_bytes, retention_ms=-1, fsync="never")
        self.log = PartitionLog.open(self.directory, self.config, now_ms=self.now)

    def teardown(self) -> None:
        if self.log is not None:
            self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def latest(self) -> int:
        return self.model[-1][2] if self.model else -1

    def _record(self, batch: bytes, base: int, records: int, epoch: int) -> None:
        self.model.append((base, records, epoch, with_epoch(with_base_offset(batch, base), epoch)))
        self.end = base + records

    # -- rules -------------------------------------------------------------------------------

    @rule(records=st.integers(1, 4), value_size=st.integers(0, 60), bump=st.sampled_from([0, 0, 1, 3]))
    def append(self, records: int, value_size: int, bump: int) -> None:
        self.epoch += bump
        batch = build_batch(records, value_size, fill=self.end % 256)
        base = self.log.append(batch, self.now, leader_epoch=self.epoch)
        assert base == self.end
        self._record(batch, base, records, self.epoch)

    @rule(records=st.integers(1, 4), bump=st.sampled_from([0, 1]))
    def append_replica(self, records: int, bump: int) -> None:
        epoch = max(self.latest, 0) + bump
        self.epoch = max(self.epoch, epoch)
        batch = with_epoch(with_base_offset(build_batch(records, 10, fill=7), self.end), epoch)
        header = self.log.append_replica(batch, self.now)
        assert header.partition_leader_epoch == epoch
        self._record(batch, self.end, records, epoch)

    @rule(back=st.integers(1, 3))
    def append_stale_epoch(self, back: int) -> None:
        stale = self.latest - back
        with pytest.raises(ValueError):
            self.log.append(build_batch(1), self.now, leader_epoch=stale)
        with pytest.raises(ValueError):
            self.log.append_replica(with_epoch(with_base_offset(build_batch(1), self.end), stale), self.now)

    @rule(data=st.data())
    def truncate(self, data: st.DataObject) -> None:
        offset = data.draw(st.integers(self.start, self.end + 2), label="offset")
        self.log.truncate_to(offset)
        if offset < self.end:
            self.model = [b for b in self.model if b[0] + b[1] <= offset]
            self.end = self.model[-1][0] + self.model[-1][1] if self.model else self.start

    @rule(below=st.integers(1, 5))
    def truncate_below_start(self, below: int) -> None:
        if self.start == 0:
            return
        with pytest.raises(OffsetOutOfRange):
            self.log.truncate_to(self.start - below)

    @rule()
    def retention(self) -> None:
        self.log.apply_retention(self.now)
        start = self.log.log_start_offset
        assert start >= self.start
        if start > self.start:
            # Whole segments went: the new start is a batch boundary of the model.
            assert start == self.end or any(b[0] == start for b in self.model)
            self.model = [b for b in self.model if b[0] >= start]
            self.start = start

    @rule(drop_checkpoint=st.booleans())
    def reopen(self, drop_checkpoint: bool) -> None:
        self.log.close()
        # Truncation rewrote indexes as recovery would build them: nothing stale, no damage.
        scan = scan_partition(self.directory, self.config.index_interval_bytes)
        assert not scan.damaged and not scan.stale_indexes
        if drop_checkpoint:
            (self.directory / CHECKPOINT_FILE).unlink(missing_ok=True)
        self.now += 1000
        self.log = PartitionLog.open(self.directory, self.config, now_ms=self.now)

    # -- invariants --------------------------------------------------------------------------

    def model_entries(self) -> list[tuple[int, int]]:
        entries: list[tuple[int, int]] = []
        for base, _, epoch, _ in self.model:
            if not entries or entries[-1][0] != epoch:
                entries.append((epoch, base))
        return entries

    def model_answer(self, asked: int) -> tuple[int, int]:
        known = [epoch for _, _, epoch, _ in self.model if epoch <= asked]
        if not known:
            return -1, -1
        floor = max(known)
        later = [base for base, _, epoch, _ in self.model if epoch > floor]
        return floor, later[0] if later else self.end

    @invariant()
    def matches_model(self) -> None:
        if self.log is None:
            return
        assert (self.log.log_start_offset, self.log.log_end_offset) == (self.start, self.end)
        data = self.log.read(self.start, 10**9, to_log_end=True)
        assert [bytes(b) for b in split_batches(data, strict=True)] == [b[3] for b in self.model]
        assert [validate(b).partition_leader_epoch for b in split_batches(data)] == [b[2] for b in self.model]
        entries = self.model_entries()
        assert self.log.epoch_entries == entries
        assert (read_checkpoint(self.directory) or []) == entries
        assert self.log.latest_epoch == self.latest
        for asked in range(-1, self.epoch + 2):
            assert self.log.end_offset_for_epoch(asked) == self.model_answer(asked), asked


EpochMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_epoch_state_machine = EpochMachine.TestCase
