"""structlog configuration for the daemon, the CLI and the lessons in ``examples/``.

The SDK itself never configures logging (a library stays quiet); only programs do, by calling
:func:`configure_logging` once. (This module is ``dualmq.logging``; the ``import logging``
below is the standard library's, as every import in Python 3 is absolute.)

One decision lives here: a human at a terminal gets coloured, aligned console lines; anything
else (a file, a pipe, a service manager, a test capturing stderr) gets one JSON object per
line, so logs stay machine-readable. ``--log-format`` overrides the guess.

Event names are past tense (``broker_started``, ``segment_rolled``) and each connection binds
``conn_id``, ``peer`` and ``mode`` with ``structlog.contextvars.bound_contextvars``; the
``merge_contextvars`` processor below puts them on every line logged inside that connection.
"""

from __future__ import annotations

import logging
import sys

import structlog

LOG_FORMATS = ("auto", "console", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")


def configure_logging(log_format: str = "auto", level: str = "info", *, stream=None) -> None:
    """Configure structlog process-wide.

    Args:
        log_format: ``auto`` (console on a TTY, JSON otherwise), ``console`` or ``json``.
        level: minimum level to emit: debug, info, warning or error.
        stream: where lines go; standard error by default (standard output stays free for
            commands that print results).
    """
    stream = stream if stream is not None else sys.stderr
    if log_format == "auto":
        log_format = "console" if stream.isatty() else "json"
    renderer = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if log_format == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks if log_format == "json" else structlog.processors.StackInfoRenderer(),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
