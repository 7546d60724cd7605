"""Logging configuration for applications: the daemon, the CLI and the lessons (never the SDK).

One decision lives here: a human at a terminal gets coloured, aligned console lines; anything
else (a file, a pipe, a service manager, a test capturing stderr) gets one JSON object per
line, so logs stay machine-readable. ``--log-format`` overrides the guess.

Two kinds of log calls meet here and leave through one handler, in one format:

* the broker's structlog events (``broker.loggers``), with ``conn_id``, ``peer`` and ``mode``
  bound per connection by ``structlog.contextvars.bound_contextvars`` (``merge_contextvars``
  below puts them on every line logged inside that connection);
* the SDK's standard-library records (``logging.getLogger("dualmq.pull.consumer")``...): the
  SDK, being a library, never configures logging; an application that wants its lines calls
  this function (or configures ``logging`` itself).

How: structlog is configured to hand its events to the standard library, and one handler on
the root logger renders both kinds with ``structlog.stdlib.ProcessorFormatter``. The level is
the root logger's, so it applies to both, and a caller that later narrows structlog alone
(``structlog.configure(wrapper_class=...)``) cannot make lines appear that this level hides.

Event names are past tense (``broker_started``, ``segment_rolled``).

(This module is ``dualmq.logging``; its ``import logging`` is the standard library's, as every
import in Python 3 is absolute.)
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

LOG_FORMATS = ("auto", "console", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")


def _fields_of_stdlib_records(_logger: Any, _method: str, event_dict: dict) -> dict:
    """For a standard-library record logged with ``extra={"dualmq_event": ..., "dualmq_fields": ...}``
    (the SDK's and the quiet broker loggers' convention), the event name and its fields as keys,
    instead of the pre-rendered message."""
    record = event_dict.get("_record")
    event = getattr(record, "dualmq_event", None)
    if event is not None:
        event_dict["event"] = event
        event_dict.update(getattr(record, "dualmq_fields", {}))
    return event_dict


class _ProcessorHandler(logging.StreamHandler):
    """The handler ``configure_logging`` installs; recognised so a second call replaces it."""


def configure_logging(log_format: str = "auto", level: str = "info", *, stream: TextIO | None = None) -> None:
    """Configure structlog and the standard library's root logger, process-wide.

    For applications only (the ``dualmq`` command, lessons, your program): a library must not
    call it. Calling it again replaces the previous configuration.

    Args:
        log_format: ``auto`` (console on a TTY, JSON otherwise), ``console`` or ``json``.
        level: minimum level to emit: debug, info, warning or error.
        stream: where lines go; standard error by default (standard output stays free for
            commands that print results).
    """
    stream = stream if stream is not None else sys.stderr
    if log_format == "auto":
        log_format = "console" if stream.isatty() else "json"
    json_lines = log_format == "json"
    renderer = (structlog.processors.JSONRenderer() if json_lines
                else structlog.dev.ConsoleRenderer(colors=stream.isatty()))
    stamped = [structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True)]
    numeric_level = getattr(logging, level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *stamped,
            # The traceback is taken now, while the exception is being handled.
            structlog.processors.dict_tracebacks if json_lines else structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = _ProcessorHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[*stamped, _fields_of_stdlib_records,
                           *([structlog.processors.dict_tracebacks] if json_lines else [])],
    ))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _ProcessorHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric_level)
    # Cluster mode's etcd client (httpx) logs every HTTP request at info: a line per lease
    # keepalive would drown the broker's own. Its warnings and errors still show.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(numeric_level, logging.WARNING))
