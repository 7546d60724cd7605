"""The broker's loggers: structlog when the application configured it, else quiet standard logging.

The broker logs through structlog (past-tense events with key-value fields:
``log.info("segment_rolled", topic=..., base_offset=...)``). Who decides where those lines go is
the *application*: ``dualmq serve`` configures structlog (``configure_logging``), and so do the
lessons. But the same broker also runs inside other people's programs
(``dualmq.embedded.broker()``: tests, ``compare``, a user's script). There structlog may never
have been configured, and structlog's built-in default prints every line, info included, to
standard output — a library shouting into its host's output.

So every broker module gets its logger from ``get_logger(__name__)`` here, which looks, at each
call, whether structlog has been configured:

* yes: the call goes to structlog as usual (``structlog.testing.capture_logs`` works too);
* no: it goes to the standard library logger ``dualmq.<module>`` (``dualmq.broker.topics``,
  ``dualmq.modes.pull.server``, ...), which the ``dualmq`` package gives a ``NullHandler``: silent
  unless the application configures ``logging``, the convention of Python libraries. An
  application that only calls ``logging.basicConfig(level=logging.INFO)`` sees
  ``broker_started kafka='127.0.0.1:40123' ...`` lines.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

__all__ = ["get_logger", "stdlib_name"]

# The library convention: the package's top logger has a NullHandler, so that nothing is
# printed (not even warnings, which the standard library's "last resort" handler would write
# to stderr) until the application configures logging. ``dualmq/__init__.py`` does the same
# for the SDK; both lines are idempotent.
_TOP = logging.getLogger("dualmq")
if not any(isinstance(handler, logging.NullHandler) for handler in _TOP.handlers):
    _TOP.addHandler(logging.NullHandler())


def stdlib_name(module: str) -> str:
    """The standard-library logger name for a broker module: ``broker.topics`` -> ``dualmq.broker.topics``."""
    return module if module.startswith("dualmq.") else f"dualmq.{module}"


def _as_stdlib_call(_logger: Any, _method: str, event_dict: dict) -> tuple[tuple, dict]:
    """Render an event as one standard-library message, keeping the fields as ``extra``.

    The message reads ``segment_rolled topic='orders' base_offset=0``; the fields also travel
    as the record's ``dualmq_event`` / ``dualmq_fields`` attributes, so a formatter that knows
    them (``configure_logging``'s) can print them as JSON keys instead.
    """
    exc_info = event_dict.pop("exc_info", None)
    event = str(event_dict.pop("event", ""))
    text = " ".join([event, *(f"{key}={value!r}" for key, value in event_dict.items())])
    return (text,), {"exc_info": exc_info, "extra": {"dualmq_event": event, "dualmq_fields": event_dict}}


class _Logger:
    """structlog's logger if structlog is configured at the moment of the call, else the stdlib one."""

    __slots__ = ("_stdlib", "_structlog")

    def __init__(self, module: str) -> None:
        self._structlog = structlog.get_logger(module)
        self._stdlib = structlog.wrap_logger(
            logging.getLogger(stdlib_name(module)),
            processors=[structlog.stdlib.filter_by_level, structlog.contextvars.merge_contextvars, _as_stdlib_call],
            wrapper_class=structlog.stdlib.BoundLogger,
        )

    def _target(self) -> Any:
        return self._structlog if structlog.is_configured() else self._stdlib

    def debug(self, event: str, **fields: Any) -> None:
        self._target().debug(event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self._target().info(event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._target().warning(event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self._target().error(event, **fields)

    def exception(self, event: str, **fields: Any) -> None:
        """``error`` with the exception being handled (call it inside ``except``)."""
        self._target().exception(event, **fields)


def get_logger(module: str) -> _Logger:
    """The logger for a broker module; pass ``__name__``.

    Returns:
        An object with ``debug`` / ``info`` / ``warning`` / ``error`` / ``exception``, each
        taking an event name and key-value fields, as structlog's loggers do.
    """
    return _Logger(module)
