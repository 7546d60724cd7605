"""A hypothesis state machine drives PartitionLog against a plain in-memory model.

The model is a list of ``(base_offset, stored bytes)`` plus how many of them have been
flushed. Between steps we append (good and bad batches), read at random offsets with random
limits, roll by age, apply retention as time advances, flush, and "crash" in four ways before
reopening: a clean close, losing every unflushed byte (files cut back to the flushed
position), a cut at a random byte in the unflushed tail, or a flipped byte there.

What must hold: offsets are dense and monotonic; ``log_start_offset <= high_watermark``; every
read returns exactly the model's batches from the one containing the offset; after a crash the
log is a prefix of what it was that contains at least every flushed batch (retention aside),
byte for byte.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from broker.config import LogConfig
from broker.errors import OffsetOutOfRange
from wire.kafka.batch import BatchTooLarge, CorruptBatch, UnsupportedBatchFormat, parse_header, split_batches
from wire.kafka.batch import validate as validate_batch
from broker.log.partition_log import PartitionLog
from tests.broker.batches import build_batch, with_base_offset

T0 = 1_700_000_000_000


class LogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="dualmq-log-sm-"))
        self.directory = self.root / "t-0"
        self.model: list[tuple[int, bytes]] = []
        self.start_offset = 0  # the model's log start offset
        self.end_offset = 0
        self.flushed = 0  # offsets below this are durable
        self.now = T0
        self.log: PartitionLog | None = None

    @initialize(
        segment_bytes=st.sampled_from([300, 700, 2000]),
        index_interval_bytes=st.sampled_from([0, 100, 1000]),
        retention_ms=st.sampled_from([-1, 3000, 20_000]),
        retention_bytes=st.sampled_from([-1, 1500, 5000]),
    )
    def setup(self, segment_bytes: int, index_interval_bytes: int, retention_ms: int, retention_bytes: int) -> None:
        self.config = LogConfig(
            segment_bytes=segment_bytes,
            segment_ms=5000,
            retention_ms=retention_ms,
            retention_bytes=retention_bytes,
            index_interval_bytes=index_interval_bytes,
            max_message_bytes=4000,
            fsync="never",
        )
        self.log = PartitionLog.open(self.directory, self.config, now_ms=self.now)

    def teardown(self) -> None:
        if self.log is not None:
            self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- rules -------------------------------------------------------------------------------

    @rule(records=st.integers(1, 5), value_size=st.integers(0, 120), fill=st.integers(0, 255),
          advance=st.integers(0, 1500))
    def append(self, records: int, value_size: int, fill: int, advance: int) -> None:
        self.now += advance
        batch = build_batch(records, value_size, fill=fill, timestamp=self.now)
        offset = self.log.append(batch, self.now)
        assert offset == self.end_offset
        self.model.append((offset, with_base_offset(batch, offset)))
        self.end_offset += records

    @rule(kind=st.sampled_from(["crc", "magic", "short", "huge"]))
    def append_bad(self, kind: str) -> None:
        before = (self.log.high_watermark, self.log.size_bytes)
        batch = bytearray(build_batch(3, 50 if kind != "huge" else 2000))
        if kind == "crc":
            batch[-1] ^= 1
        elif kind == "magic":
            batch[16] = 3
        elif kind == "short":
            batch = batch[:-1]
        expected = {"huge": BatchTooLarge, "magic": UnsupportedBatchFormat}.get(kind, CorruptBatch)
        with pytest.raises(expected):
            self.log.append(bytes(batch), self.now)
        assert (self.log.high_watermark, self.log.size_bytes) == before

    @rule(data=st.data(), max_bytes=st.integers(0, 3000))
    def read(self, data: st.DataObject, max_bytes: int) -> None:
        offset = data.draw(st.integers(self.start_offset, self.end_offset))
        got = self.log.read(offset, max_bytes)
        if offset == self.end_offset:
            assert got == b""
            return
        first = max(i for i, (o, _) in enumerate(self.model) if o <= offset)
        expected = [self.model[first][1]]
        total = len(expected[0])
        for _, stored in self.model[first + 1 :]:
            if total + len(stored) > max_bytes:
                break
            expected.append(stored)
            total += len(stored)
        assert got == b"".join(expected)

    @rule(beyond=st.integers(1, 5))
    def read_out_of_range(self, beyond: int) -> None:
        with pytest.raises(OffsetOutOfRange):
            self.log.read(self.end_offset + beyond, 100)
        if self.start_offset > 0:
            with pytest.raises(OffsetOutOfRange):
                self.log.read(self.start_offset - 1, 100)

    @rule(advance=st.integers(0, 8000))
    def maintain(self, advance: int) -> None:
        self.now += advance
        self.log.roll_if_aged(self.now)
        deleted = self.log.apply_retention(self.now)
        new_start = self.log.log_start_offset
        assert new_start >= self.start_offset and (deleted > 0) == (new_start > self.start_offset)
        # Retention removes whole batches from the front, never anything else.
        assert new_start == self.end_offset or any(o == new_start for o, _ in self.model)
        self.model = [(o, b) for o, b in self.model if o >= new_start]
        self.start_offset = new_start

    @rule()
    def flush(self) -> None:
        self.log.flush_sync()
        self.flushed = self.end_offset

    @rule(mode=st.sampled_from(["clean", "lose_unflushed", "cut", "flip"]), data=st.data())
    def crash_and_reopen(self, mode: str, data: st.DataObject) -> None:
        flushed = self.log.flushed_offset
        assert flushed == self.flushed
        self.log.close()  # its fsync changes nothing below: we damage the files by hand
        self.log = None
        files = sorted(self.directory.glob("*.log"))
        if mode != "clean":
            # Keep only what was flushed; in "cut"/"flip" mode the unflushed tail of the last
            # file holding data survives, then gets damaged.
            durable_sizes = {}
            for path in files:
                content = path.read_bytes()
                durable = sum(len(b) for b in split_batches(content) if parse_header(b).base_offset < flushed)
                durable_sizes[path] = (durable, len(content))
            with_data = [p for p in files if durable_sizes[p][1] > 0]
            spared = with_data[-1] if with_data and mode in ("cut", "flip") else None
            for path in files:
                if path != spared:
                    with path.open("r+b") as f:
                        f.truncate(durable_sizes[path][0])
            if spared is not None:
                durable, size = durable_sizes[spared]
                if durable < size:
                    content = bytearray(spared.read_bytes())
                    if mode == "cut":
                        content = content[: data.draw(st.integers(durable, size), label="cut")]
                    else:
                        content[data.draw(st.integers(durable, size - 1), label="flip")] ^= data.draw(
                            st.integers(1, 255), label="xor")
                    spared.write_bytes(bytes(content))
        self.log = PartitionLog.open(self.directory, self.config, now_ms=self.now)
        survivors = [(validate_batch(b), b) for b in split_batches(self.log.read(self.log.log_start_offset, 10**9),
                                                                       strict=True)]
        assert len(survivors) <= len(self.model)
        for (header, view), (offset, stored) in zip(survivors, self.model):
            assert header.base_offset == offset
            assert bytes(view) == stored
        kept = self.model[: len(survivors)]
        # Every flushed batch survived (unless retention had deleted it already).
        assert all(o in {k for k, _ in kept} for o, _ in self.model if o < flushed)
        if mode == "clean":
            assert len(kept) == len(self.model)
        self.model = kept
        if kept:
            assert self.log.log_start_offset == self.start_offset
            self.end_offset = kept[-1][0] + parse_header(kept[-1][1]).last_offset_delta + 1
        else:
            self.start_offset = self.end_offset = self.log.log_start_offset
        self.flushed = self.end_offset

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def matches_model(self) -> None:
        if self.log is None:
            return
        assert self.log.log_start_offset <= self.log.high_watermark
        assert self.log.high_watermark == self.end_offset
        assert self.log.log_start_offset == self.start_offset
        assert self.log.size_bytes == sum(len(b) for _, b in self.model)
        offsets = [o for o, _ in self.model]
        assert offsets == sorted(offsets)
        assert [o for o, _ in self.log.batches()] == offsets


LogMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_log_state_machine = LogMachine.TestCase
