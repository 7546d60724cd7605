"""Reading a broker's ``/metrics`` and ``/state.json`` in tests, with Prometheus's own parser."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

TIMEOUT = 5.0

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def get(address: str, path: str) -> bytes:
    with urllib.request.urlopen(f"http://{address}{path}", timeout=TIMEOUT) as response:
        return response.read()


def scrape(address: str) -> Samples:
    """Every sample of ``/metrics``, keyed by (sample name, sorted labels), parsed by
    ``prometheus_client.parser`` (so the exposition must be valid Prometheus text)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(get(address, "/metrics").decode()):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """One sample's value (None when the series is absent)."""
    return samples.get((name, tuple(sorted(labels.items()))))


def series(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every series of one sample name: labels -> value."""
    return {labels: v for (sample, labels), v in samples.items() if sample == name}


def state(address: str) -> dict:
    return json.loads(get(address, "/state.json"))


def wait_until(address: str, condition: Callable[[Samples], bool], timeout: float = 10.0) -> Samples:
    """Scrape until ``condition`` holds (the broker applies a client's close asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(address)
        if condition(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within the timeout; last scrape:\n" + "\n".join(
                f"{name}{dict(labels)} {v}" for (name, labels), v in sorted(samples.items())
                if name.startswith("dualmq_")))
        time.sleep(0.05)
