"""Benchmark: what TLS costs, with clients nobody here wrote, plaintext and TLS in the same run.

Two brokers run side by side, alike except for TLS: one with ``kafka.security_protocol =
"PLAINTEXT"`` and a plaintext RESP listener, one with ``"SSL"`` and ``resp.tls = true`` (a
certificate made for this run by ``dualmq.devcerts``). Each round measures, on both:

* ``kcat -P`` producing N messages of 100 bytes into a fresh topic, then ``kcat -C -e``
  consuming them back (wall clock of the whole kcat process, as ``time kcat ...`` shows);
* ``redis-benchmark -P 16 -c 50 -n N PUBLISH`` (``--tls --cacert`` for the TLS broker), no
  subscriber: the request path alone.

The plaintext and TLS runs alternate within each round, so a machine that slows down mid-run
hurts both alike. Printed: per-run figures, then medians and the ratio TLS / plaintext.

Run:  .venv/bin/python bench/tls_cost.py [--messages N] [--publishes N] [--runs R]
Needs kcat, redis-benchmark and openssl on PATH.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import HOST, median  # noqa: E402
from bench.pull_kcat import MESSAGE_SIZE, kcat_consume, kcat_produce  # noqa: E402
from dualmq.devcerts import make_certificates  # noqa: E402
from dualmq.process import BrokerProcess, BrokerStartError  # noqa: E402

TIMEOUT = 300  # seconds for one redis-benchmark run


def start(workdir: Path, name: str, config_text: str) -> BrokerProcess:
    config = workdir / f"{name}.toml"
    config.write_text(config_text)
    broker = BrokerProcess(workdir / f"{name}-data", "--config", str(config), log_path=workdir / f"{name}.log",
                           ready_file=workdir / f"{name}.ready.json", log_level="warning")
    try:
        return broker.start()
    except BrokerStartError as exc:
        raise SystemExit(f"{name} broker did not start: {exc}") from None


def kcat_tls(ca_file: Path | None) -> tuple[str, ...]:
    """kcat's options for the TLS broker (none for the plaintext one)."""
    return () if ca_file is None else ("-X", "security.protocol=SSL", "-X", f"ssl.ca.location={ca_file}")


def publish_rate(broker: BrokerProcess, ca_file: Path | None, requests: int) -> float:
    command = ["redis-benchmark", "-h", HOST, "-p", str(broker.resp[1]), "-P", "16", "-c", "50",
               "-n", str(requests), "-q", "--csv"]
    if ca_file is not None:
        command += ["--tls", "--cacert", str(ca_file)]
    out = subprocess.run([*command, "PUBLISH", "bench", "x" * 16], capture_output=True, text=True, check=True,
                         timeout=TIMEOUT).stdout
    for line in out.splitlines():
        fields = [field.strip('"') for field in line.split(",")]
        if len(fields) >= 2 and fields[0].upper().startswith("PUBLISH"):
            return float(fields[1])
    raise SystemExit(f"no rate in redis-benchmark's output: {out[-300:]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500_000, help="kcat messages per run")
    parser.add_argument("--publishes", type=int, default=500_000, help="redis-benchmark PUBLISHes per run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for tool in ("kcat", "redis-benchmark", "openssl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found on PATH")
    with tempfile.TemporaryDirectory(prefix="dualmq-bench-tls-") as tmp:
        workdir = Path(tmp)
        certs = make_certificates(workdir / "certs")
        messages = workdir / "messages.txt"
        messages.write_bytes((b"m" * MESSAGE_SIZE + b"\n") * args.messages)
        listeners = '[kafka]\nlisten = "127.0.0.1:0"\n[resp]\nlisten = "127.0.0.1:0"\n'
        plain = start(workdir, "plaintext", listeners)
        tls = start(workdir, "tls", listeners.replace("[resp]\n", '[resp]\ntls = true\n').replace(
            "[kafka]\n", '[kafka]\nsecurity_protocol = "SSL"\n')
            + f'[tls]\ncert_file = "{certs.cert_file}"\nkey_file = "{certs.key_file}"\n')
        sides = {"plaintext": (plain, None), "TLS": (tls, certs.ca_file)}
        results: dict[str, dict[str, list[float]]] = {side: {"produce": [], "consume": [], "publish": []}
                                                      for side in sides}
        try:
            for run in range(args.runs):
                for side, (broker, ca_file) in sides.items():
                    extra = kcat_tls(ca_file)
                    topic = f"bench-{run}"
                    produce = args.messages / kcat_produce(broker.kafka_address, topic, messages, extra)
                    consume = args.messages / kcat_consume(broker.kafka_address, topic, args.messages, extra)
                    publish = publish_rate(broker, ca_file, args.publishes)
                    for name, value in (("produce", produce), ("consume", consume), ("publish", publish)):
                        results[side][name].append(value)
                    print(f"run {run + 1} {side:>9}: kcat produce {produce:>11,.0f} msg/s, consume "
                          f"{consume:>11,.0f} msg/s; PUBLISH -P 16 {publish:>11,.0f} req/s", flush=True)
        finally:
            plain.stop()
            tls.stop()
    print()
    print(f"TLS cost, median of {args.runs} runs ({args.messages:,} x {MESSAGE_SIZE} B for kcat, "
          f"{args.publishes:,} PUBLISH for redis-benchmark)")
    print(f"{'':34}{'plaintext':>14}{'TLS':>14}{'TLS/plain':>11}")
    for name, label, unit in (("produce", "kcat -P (produce)", "msg/s"), ("consume", "kcat -C -e (consume)", "msg/s"),
                              ("publish", "redis-benchmark -P 16 PUBLISH", "req/s")):
        a, b = median(results["plaintext"][name]), median(results["TLS"][name])
        print(f"{label + ' ' + unit:34}{a:>14,.0f}{b:>14,.0f}{b / a:>10.2f}x")


if __name__ == "__main__":
    main()
