"""How the SDK logs: through the standard library's ``logging``, silent until the application says otherwise.

A library lives inside someone else's program, so it follows the Python convention: it logs to
standard-library loggers named after its modules (``dualmq.pull.consumer``, ``dualmq.push.subscription``,
...), the package's top logger ``dualmq`` has a ``NullHandler``, and it never configures
logging itself. Nothing is printed (not even warnings) unless the application configures
``logging`` — ``logging.basicConfig(level=logging.INFO)``, or ``dualmq.logging.configure_logging``,
which the ``dualmq`` command and the lessons use and which renders these records like the
broker's structlog lines.

The calls look like structlog's — an event name in the past tense plus fields::

    log = get_logger(__name__)
    log.info("group_joined", group="billing", generation=3)

which becomes the message ``group_joined group='billing' generation=3``; the event name and the
fields also travel on the record (``dualmq_event``, ``dualmq_fields``) for formatters that print
them as separate keys. Nothing is formatted when the level is disabled.

What the SDK logs, and at which level: lifecycle at INFO (a group joined, a broker unreachable
and reachable again), details at DEBUG (offset resets, single retries), and at WARNING only what
the application cannot learn otherwise (a background commit that failed). Repeated events are
counted and summarised rather than logged one by one (the producer's retries).
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["EventLogger", "get_logger"]

_TOP = logging.getLogger("dualmq")
if not any(isinstance(handler, logging.NullHandler) for handler in _TOP.handlers):
    _TOP.addHandler(logging.NullHandler())


class EventLogger:
    """A standard-library logger taking structlog-style calls: ``log.info("event_happened", key=value)``."""

    __slots__ = ("logger",)

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def _log(self, level: int, event: str, fields: dict[str, Any]) -> None:
        if self.logger.isEnabledFor(level):
            text = " ".join([event, *(f"{key}={value!r}" for key, value in fields.items())])
            # stacklevel 3: the record names the SDK line that logged, not this helper.
            self.logger.log(level, text, extra={"dualmq_event": event, "dualmq_fields": fields}, stacklevel=3)

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, fields)


def get_logger(module: str) -> EventLogger:
    """The SDK logger for ``module`` (pass ``__name__``; it must be inside the ``dualmq`` package).

    Raises:
        ValueError: ``module`` is outside ``dualmq`` (its records would escape the NullHandler).
    """
    if module != "dualmq" and not module.startswith("dualmq."):
        raise ValueError(f"SDK loggers live under 'dualmq', not {module!r}")
    return EventLogger(logging.getLogger(module))
