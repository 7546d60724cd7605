"""``RequestStats``: what one front-end counts about the requests it serves, for ``/metrics``.

Requests by name (a Kafka API such as ``Produce``, a Redis command such as ``publish`` or
``client|list``), error replies by code (a Kafka error name such as ``UNKNOWN_TOPIC_OR_PARTITION``,
the first word of a RESP error such as ``ERR`` or ``NOPROTO``), and a latency histogram per
request name where the front-end times its requests (pull mode, per Kafka API).

Everything here is a plain ``dict`` of ints or a ``broker.histogram.Histogram``, updated on the
request path; Prometheus objects are built from them only when someone scrapes
(``modes.http.collector``). The key sets are bounded by construction: the names come from the
front-end's own tables (served APIs, known commands), never from what a client typed; an
unknown command is counted as an error, not as a request name.

Counters here only grow: push mode's ``CONFIG RESETSTAT`` leaves them alone (a Prometheus
counter that goes back to zero reads as a restart), see docs/observability.md.
"""

from __future__ import annotations

import attrs

from broker.histogram import Histogram

__all__ = ["RequestStats", "resp_error_code"]


@attrs.define(eq=False)
class RequestStats:
    """Requests by name, errors by code, latency by name (see the module docstring)."""

    requests: dict[str, int] = attrs.field(factory=dict)
    errors: dict[str, int] = attrs.field(factory=dict)
    latency: dict[str, Histogram] = attrs.field(factory=dict)

    def timed(self, name: str, seconds: float) -> None:
        """Count one request called ``name`` that took ``seconds``."""
        requests = self.requests
        requests[name] = requests.get(name, 0) + 1
        histogram = self.latency.get(name)
        if histogram is None:
            histogram = self.latency[name] = Histogram()
        histogram.observe(seconds)

    def error(self, code: str) -> None:
        """Count one error reply with ``code``."""
        errors = self.errors
        errors[code] = errors.get(code, 0) + 1


# The longest RESP error code kept as a label; Redis's codes are short upper-case words.
_MAX_CODE = 24


def resp_error_code(reply: bytes) -> str:
    """The code of an encoded RESP error reply: its first word (``-ERR unknown`` -> ``ERR``).

    Redis's convention is an upper-case word first; a reply without one counts as ``ERR``,
    so a label value never carries free text.
    """
    word = reply[1:_MAX_CODE + 2].split(b" ", 1)[0].split(b"\r", 1)[0]
    return word.decode("ascii") if word.isalpha() and word.isupper() and len(word) <= _MAX_CODE else "ERR"
