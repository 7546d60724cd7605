"""Benchmark: what ``--http`` (Prometheus /metrics and the live dashboard) costs the broker.

Three measurements, each printed as medians of several runs:

1. **Throughput, on vs off, same script.** ``redis-benchmark -P 16 -c 50 PUBLISH`` (push mode)
   and ``kcat -P`` of 200,000 100-byte messages (pull mode) against a broker started without
   ``--http`` and one started with it, while a watcher scrapes ``/metrics`` every second and
   holds the dashboard's event stream open (one frame a second). Runs alternate off/on; the
   ratio on/off of the medians is printed. On a shared machine these ratios are noisy (earlier
   runs here ranged 0.85-1.29 for the same code), which is why (2) and (3) measure directly.
2. **Broker CPU per scrape + frame.** A broker holding some state (10 topics, 100 channels,
   a subscriber, a consumer group) answers K scrapes of ``/metrics`` and K of ``/state.json``
   (what one dashboard frame costs); the broker's CPU time (``/proc/<pid>/stat``) over those,
   minus its CPU over an idle stretch as long, divided by K. At one scrape and one frame a
   second, that is the share of one core the feature costs.
3. **The always-on counters on push mode's batch step.** µs per PUBLISH of
   ``PushServer.execute`` on a pipeline of 16 with no subscriber (``bench/push_loop_micro.py``'s
   ``run_batch``), for this tree and, with ``--baseline REV``, for a tree without the counters
   (``git archive REV``), each in its own process, alternating: the ratio is what the counters
   cost the hottest path.

Run::

    .venv/bin/python bench/observability_cost.py                      # ~3 min
    .venv/bin/python bench/observability_cost.py --quick              # fewer runs, smaller loads
    .venv/bin/python bench/observability_cost.py --baseline 147b6b4   # + the counters' cost vs
                                                                      # the tree before them
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import median  # noqa: E402

from dualmq.process import BrokerProcess  # noqa: E402

TIMEOUT = 300
MESSAGE = b"m" * 99 + b"\n"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(workdir: Path, name: str, http: bool) -> BrokerProcess:
    extra = ("--http", "127.0.0.1:0") if http else ()
    broker = BrokerProcess(workdir / name, *extra, log_path=workdir / f"{name}.log", log_level="warning")
    return broker.start()


class Watcher:
    """What one Prometheus server and one open dashboard do: a scrape a second, and the
    event stream (one frame a second) read as it comes."""

    def __init__(self, http: str) -> None:
        self.http = http
        self.stop = threading.Event()
        self.scrapes = 0
        self.frames = 0
        self.threads = [threading.Thread(target=self._scrape, daemon=True),
                        threading.Thread(target=self._stream, daemon=True)]
        for thread in self.threads:
            thread.start()

    def _scrape(self) -> None:
        while not self.stop.wait(1.0):
            with urllib.request.urlopen(f"http://{self.http}/metrics", timeout=10) as response:
                response.read()
            self.scrapes += 1

    def _stream(self) -> None:
        host, port = self.http.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET /events HTTP/1.1\r\nHost: bench\r\n\r\n")
            while not self.stop.is_set():
                chunk = sock.recv(1 << 16)
                if not chunk:
                    return
                self.frames += chunk.count(b"data: {")

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)


def publish_rps(port: int, requests: int) -> float:
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-P", "16", "-c", "50", "-n", str(requests), "-q",
                          "PUBLISH", "ch", "payload"], capture_output=True, text=True, check=True,
                         timeout=TIMEOUT).stdout
    line = [part for part in out.replace("\r", "\n").splitlines() if "requests per second" in part][-1]
    return float(line.split(":")[1].split("requests")[0])


def produce_rate(address: str, topic: str, messages: Path, count: int) -> float:
    with open(messages, "rb") as stdin:
        started = time.perf_counter()
        subprocess.run(["kcat", "-P", "-b", address, "-t", topic], stdin=stdin, check=True, timeout=TIMEOUT)
        return count / (time.perf_counter() - started)


def throughput(workdir: Path, runs: int, requests: int, messages: int) -> None:
    payload = workdir / "messages.txt"
    payload.write_bytes(MESSAGE * messages)
    results: dict[str, dict[str, list[float]]] = {"push": {"off": [], "on": []}, "pull": {"off": [], "on": []}}
    for run in range(runs):
        order = ("off", "on") if run % 2 == 0 else ("on", "off")
        for setting in order:
            broker = start(workdir, f"tp-{run}-{setting}", setting == "on")
            watcher = Watcher(broker.ready["http"]) if setting == "on" else None
            try:
                results["push"][setting].append(publish_rps(broker.resp[1], requests))
                results["pull"][setting].append(produce_rate(broker.kafka_address, f"t{run}", payload, messages))
            finally:
                if watcher is not None:
                    watcher.close()
                broker.stop()
            print(f"  run {run + 1} {setting:>3}: PUBLISH -P16 {results['push'][setting][-1]:>10,.0f} req/s   "
                  f"kcat -P {results['pull'][setting][-1]:>9,.0f} msg/s"
                  + (f"   (scrapes {watcher.scrapes}, frames {watcher.frames})" if watcher else ""), flush=True)
    print("\n1. Throughput with --http on (1 scrape/s + 1 dashboard) vs off, medians:")
    for side, label in (("push", "PUBLISH -P 16 -c 50 (req/s)"), ("pull", "kcat -P (msg/s)")):
        off, on = median(results[side]["off"]), median(results[side]["on"])
        print(f"   {label:<28} off {off:>12,.0f}   on {on:>12,.0f}   on/off {on / off:.3f}")


def load_state(broker: BrokerProcess, workdir: Path) -> socket.socket:
    """10 topics with records, 100 channels published to, one subscriber left connected."""
    payload = workdir / "state.txt"
    payload.write_bytes(MESSAGE * 1000)
    for i in range(10):
        with open(payload, "rb") as stdin:
            subprocess.run(["kcat", "-P", "-b", broker.kafka_address, "-t", f"state-{i}"], stdin=stdin, check=True,
                           timeout=TIMEOUT)
    try:  # a consumer group with a committed position (kcat's balanced consumer, -e: stop at the end)
        subprocess.run(["kcat", "-C", "-b", broker.kafka_address, "-G", "state-group", "state-0", "-e", "-q"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=30)
    except subprocess.TimeoutExpired:
        pass
    subscriber = socket.create_connection(broker.resp, timeout=10)
    subscriber.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nch-0\r\n")
    commands = b"".join(b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$1\r\nx\r\n" % (len(name), name)
                        for name in (b"ch-%d" % i for i in range(100)))
    with socket.create_connection(broker.resp, timeout=10) as publisher:
        publisher.sendall(commands)
        received = b""
        while received.count(b"\r\n") < 100:
            received += publisher.recv(65536)
    return subscriber


def scrape_cost(workdir: Path, runs: int, scrapes: int) -> None:
    broker = start(workdir, "scrape", True)
    subscriber = load_state(broker, workdir)
    http = broker.ready["http"]
    costs = []
    sizes = set()
    try:
        for _ in range(runs):
            before = cpu_seconds(broker.pid)
            started = time.perf_counter()
            time.sleep(2.0)
            idle_rate = (cpu_seconds(broker.pid) - before) / (time.perf_counter() - started)
            before = cpu_seconds(broker.pid)
            started = time.perf_counter()
            for _ in range(scrapes):
                for path in ("/metrics", "/state.json"):
                    with urllib.request.urlopen(f"http://{http}{path}", timeout=10) as response:
                        sizes.add((path, len(response.read())))
            busy = cpu_seconds(broker.pid) - before - idle_rate * (time.perf_counter() - started)
            costs.append(busy / scrapes * 1000)
    finally:
        subscriber.close()
        broker.stop()
    cost = median(costs)
    print(f"\n2. Broker CPU per scrape of /metrics plus one dashboard frame ({scrapes} of each per run, "
          f"{runs} runs; /proc CPU ticks are 10 ms, so each run's figure is good to ~{20 / scrapes:.2f} ms):")
    print(f"   runs (ms): {', '.join(f'{c:.2f}' for c in costs)}")
    print(f"   median {cost:.2f} ms  ->  {cost / 10:.2f}% of one core at one scrape and one frame per second")
    print(f"   response sizes: {', '.join(f'{path} {size:,} B' for path, size in sorted(sizes)[:2])}")


BATCH_STEP = """
import sys
sys.path[:0] = [{tree!r}, {tree!r} + "/bench"]
import broker
assert broker.__file__.startswith({tree!r}), broker.__file__
from push_loop_micro import bench_run_batch
print(bench_run_batch({pipeline}, 0, 1, {calls}))
"""


def batch_step_us(tree: Path, pipeline: int, calls: int) -> float:
    """µs per PUBLISH of push mode's batch step, run by the code in ``tree`` (a subprocess, so
    each tree's modules are its own)."""
    code = BATCH_STEP.format(tree=str(tree), pipeline=pipeline, calls=calls)
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, capture_output=True, text=True, check=True,
                         timeout=TIMEOUT).stdout
    return float(out.strip().splitlines()[-1])


def counter_cost(runs: int, calls: int, baseline: str | None, workdir: Path) -> None:
    pipeline = 16
    here = Path(__file__).resolve().parent.parent
    trees = {"this tree": here}
    if baseline is not None:
        base = workdir / "baseline"
        base.mkdir()
        archive = subprocess.run(["git", "-C", str(here), "archive", baseline], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        trees[f"baseline {baseline}"] = base
    results: dict[str, list[float]] = {name: [] for name in trees}
    for run in range(runs):
        for name in (list(trees) if run % 2 == 0 else list(reversed(trees))):
            results[name].append(batch_step_us(trees[name], pipeline, calls))
    print(f"\n3. Push mode's batch step, µs per PUBLISH (pipeline of {pipeline}, no subscriber; "
          f"{runs} runs alternating, median):")
    for name, values in results.items():
        print(f"   {name:<22} median {median(values):.3f}  best {min(values):.3f}   "
              f"(runs {', '.join(f'{v:.3f}' for v in values)})")
    if baseline is not None:
        # The best run is the one least disturbed by other work on the machine: on a shared
        # machine its ratio is the steadier of the two.
        for label, pick in (("median", median), ("best", min)):
            this, base = pick(results["this tree"]), pick(results[f"baseline {baseline}"])
            print(f"   this tree / baseline ({label}): {this / base:.3f}  ({100 * (this / base - 1):+.1f}%)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and smaller loads")
    parser.add_argument("--runs", type=int, help="runs per measurement (default 5, 2 with --quick)")
    parser.add_argument("--skip-throughput", action="store_true", help="only measurements 2 and 3")
    parser.add_argument("--baseline", metavar="REV",
                        help="a git revision without the counters (e.g. the commit before them): measurement 3 "
                             "then runs the batch step of both trees, alternating")
    args = parser.parse_args()
    runs = args.runs or (2 if args.quick else 5)
    with tempfile.TemporaryDirectory(prefix="dualmq-obs-bench-") as tmp:
        workdir = Path(tmp)
        if not args.skip_throughput:
            throughput(workdir, runs, requests=200_000 if args.quick else 1_000_000,
                       messages=50_000 if args.quick else 200_000)
        scrape_cost(workdir, runs, scrapes=50 if args.quick else 200)
        counter_cost(runs, 2_000 if args.quick else 20_000, args.baseline, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
