"""kcat (librdkafka 2.0.2) against ``dualmq serve``: metadata, produce, consume, compression.

kcat is a client nobody here wrote; if it produces and consumes 10,000 keyed messages with
headers byte for byte, our framing, ApiVersions negotiation, Metadata, Produce, ListOffsets
and Fetch agree with librdkafka's idea of Kafka.

Compression notes: librdkafka 2.0.2 compresses gzip/snappy only because we
advertise Produce from v0, and zstd only because Produce 7 and Fetch 10 are in range. LZ4 is
gated on FindCoordinator v0 being advertised ("LZ4" feature) — now served, so lz4 batches must
really arrive lz4-compressed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import broker_process, require_binary
from wire.kafka import compression
from wire.kafka.batch import parse_header, split_batches

pytestmark = pytest.mark.interop

KCAT_TIMEOUT = 60
COUNT = 10_000


def kcat(*args: str, stdin: bytes | None = None) -> bytes:
    result = subprocess.run([require_binary("kcat", "kcat"), *args], input=stdin, capture_output=True,
                            timeout=KCAT_TIMEOUT)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    require_binary("kcat", "kcat")
    with broker_process(tmp_path_factory.mktemp("kcat")) as running:
        yield running


def stored_codecs(data_dir: Path, topic: str) -> set[int]:
    codecs = set()
    for log_file in sorted((data_dir / f"{topic}-0").glob("*.log")):
        for batch in split_batches(log_file.read_bytes()):
            codecs.add(parse_header(batch).compression)
    return codecs


def test_metadata_listing(broker):
    kcat("-b", broker.kafka_address, "-P", "-t", "listed", stdin=b"one\n")
    listing = kcat("-b", broker.kafka_address, "-L").decode()
    assert f"broker 0 at {broker.kafka_address}" in listing
    assert 'topic "listed" with 1 partitions' in listing


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_produce_and_consume_keyed_messages_with_headers(broker, codec):
    topic = f"keyed-{codec}"
    lines = [b"key-%05d:value %d %s" % (i, i, b"x" * (i % 50)) for i in range(COUNT)]
    produce = ["-b", broker.kafka_address, "-P", "-t", topic, "-K:", "-H", "source=kcat", "-H", "n=2"]
    if codec != "none":
        produce += ["-z", codec]
    kcat(*produce, stdin=b"\n".join(lines) + b"\n")
    out = kcat("-b", broker.kafka_address, "-C", "-t", topic, "-e", "-o", "beginning", "-q",
               "-f", "%k:%s:%h\n")
    assert out.splitlines() == [line + b":source=kcat,n=2" for line in lines]
    codecs = stored_codecs(broker.data_dir, topic)
    expected = {"none": compression.NONE, "gzip": compression.GZIP, "snappy": compression.SNAPPY,
                "lz4": compression.LZ4, "zstd": compression.ZSTD}[codec]
    # librdkafka sends a batch uncompressed when compressing would not make it smaller (small
    # tail batches), so "none" may appear next to the codec asked for.
    assert codecs <= {expected, compression.NONE}
    assert expected in codecs


def test_consume_from_offset_and_query_by_time(broker):
    topic = "offsets"
    kcat("-b", broker.kafka_address, "-P", "-t", topic, stdin=b"".join(b"m%d\n" % i for i in range(100)))
    out = kcat("-b", broker.kafka_address, "-C", "-t", topic, "-e", "-o", "90", "-q", "-f", "%o:%s\n")
    assert out.splitlines() == [b"%d:m%d" % (i, i) for i in range(90, 100)]
    # -Q asks ListOffsets by timestamp: everything was produced before "now + 1 hour"... and
    # after 0, so timestamp 0 resolves to offset 0.
    query = kcat("-b", broker.kafka_address, "-Q", "-t", f"{topic}:0:0").decode()
    assert "offset 0" in query
