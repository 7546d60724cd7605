"""How compare's clients log in to a broker it is pointed at: SASL and/or TLS in pull mode, AUTH and/or TLS in push mode.

``ClientSecurity`` holds each mode's SDK keyword arguments — kafka-python's names for
``dualmq.pull``, redis-py's for ``dualmq.push`` — made once by the command from ``--user``,
``--password``, ``--sasl-mechanism``, ``--tls``, ``--ca-file``, ``--cert-file``, ``--key-file``
(``dualmq.client_options``, the client commands' own definitions), ``--resp-user`` /
``--resp-password`` overriding push mode's login. Every client compare opens uses them: the
in-process sides' (``pull_side``, ``push_side``) and, in measured runs, the role processes
(``roles``), which read them from the variable ``DUALMQ_COMPARE_CLIENT_SECURITY`` (JSON) that
the coordinator puts in their environment — never from their command line, which ``ps`` shows
to every user of the machine.

Three things keep a secured run honest and readable:

* ``describe``: the guarantee receipt's line — user, mechanism, TLS or not, never the password;
* ``check_login``: one connection per mode before anything runs, so a wrong password or a
  plaintext client at a TLS port is one line naming the mode, not a role's traceback;
* ``denied``: an authorization refusal (a user without permission on compare's topic or
  channel) is not a result to count as lost messages but a setup error; the sides and roles
  stop on it with ``AccessDenied``, one line naming the mode.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs

from dualmq.errors import AuthenticationError, DualmqError, KafkaError, ServerError

__all__ = ["ENVIRONMENT_VARIABLE", "AccessDenied", "ClientSecurity", "check_login", "denied", "leaves", "refusal",
           "refusals_named", "role_options", "stop_if_denied"]

ENVIRONMENT_VARIABLE = "DUALMQ_COMPARE_CLIENT_SECURITY"
LOGIN_TIMEOUT_S = 10.0
# Redis's refusals of a user's permissions or credentials (the first word of the error reply).
RESP_REFUSALS = ("NOPERM", "NOAUTH", "WRONGPASS")


class AccessDenied(DualmqError):
    """A broker refused compare's clients: wrong or missing credentials, or no permission on the
    run's topic or channel. The message names the mode and the address; never a password."""


@attrs.frozen
class ClientSecurity:
    """Each mode's security keyword arguments for the SDK (empty: plaintext, no login).

    ``repr`` leaves them out: they hold the password.
    """

    kafka: dict[str, Any] = attrs.field(factory=dict, repr=False)
    resp: dict[str, Any] = attrs.field(factory=dict, repr=False)

    def options(self, mode: str) -> dict[str, Any]:
        """The keyword arguments for ``mode``'s clients (``pull``: ``dualmq.pull``; ``push``: ``dualmq.push``)."""
        return dict(self.kafka if mode == "pull" else self.resp)

    def environment(self, mode: str) -> dict[str, str]:
        """What to add to a role process's environment so that ``role_options`` finds ``mode``'s options."""
        options = self.options(mode)
        return {ENVIRONMENT_VARIABLE: json.dumps(options)} if options else {}

    def describe(self, mode: str) -> str:
        """The receipt's line: who the clients logged in as, how, and whether over TLS."""
        if mode == "pull":
            protocol = self.kafka.get("security_protocol", "PLAINTEXT")
            login = (f"SASL {self.kafka.get('sasl_mechanism')} as user {self.kafka.get('sasl_plain_username')}"
                     if protocol.startswith("SASL_") else "none (no SASL)")
            tls = protocol in ("SSL", "SASL_SSL")
            certificate = self.kafka.get("ssl_certfile")
        else:
            login = ("none (the default user, no password)" if self.resp.get("password") is None
                     else f"AUTH as ACL user {self.resp.get('username') or 'default'}")
            tls = bool(self.resp.get("ssl"))
            certificate = self.resp.get("ssl_certfile")
        if not tls:
            return f"{login}; no TLS"
        return f"{login}; over TLS" + (" with a client certificate" if certificate else "")


def role_options() -> dict[str, Any]:
    """In a role process: its mode's security keyword arguments, as ``ClientSecurity.environment`` set them."""
    return json.loads(os.environ.get(ENVIRONMENT_VARIABLE) or "{}")


def denied(exc: BaseException) -> bool:
    """Whether ``exc`` is a broker refusing who the client is or what it asked for (see the module docstring)."""
    if isinstance(exc, AuthenticationError):
        return True
    if isinstance(exc, KafkaError):
        return getattr(exc.code, "name", "").endswith(("_AUTHORIZATION_FAILED", "_AUTHENTICATION_FAILED"))
    return isinstance(exc, ServerError) and str(exc).startswith(RESP_REFUSALS)


def refusal(mode: str, address: str | None, exc: BaseException | str) -> AccessDenied:
    """``exc`` as the one line the user reads: ``pull mode (--kafka 127.0.0.1:9092): ...``."""
    flag = "--kafka" if mode == "pull" else "--resp"
    return AccessDenied(f"{mode} mode ({flag} {address}): {exc}")


def leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside ``exc``, however deep trio's nurseries nested them in groups."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc


@contextmanager
def refusals_named(mode: str, address: str | None) -> Iterator[None]:
    """Turn a refusal (``denied``) raised inside, alone or in a group, into one ``AccessDenied``
    naming the mode; anything else passes unchanged."""
    try:
        yield
    except Exception as exc:  # sorted below; anything but a refusal is re-raised as it came
        refused = next((leaf for leaf in leaves(exc) if denied(leaf)), None)
        if refused is None or not all(isinstance(leaf, Exception) for leaf in leaves(exc)):
            raise   # not a refusal, or one beside Ctrl-C or a cancellation: those go on as they came
        raise refusal(mode, address, refused) from None


def stop_if_denied(mode: str, address: str | None, exc: BaseException) -> None:
    """Raise ``AccessDenied`` for ``exc`` if it is a refusal (``denied``); else return, the caller
    deals with ``exc``."""
    if denied(exc):
        raise refusal(mode, address, exc) from None


async def check_login(security: ClientSecurity, kafka: str | None, resp: str | None) -> None:
    """Connect once to each broker given, with ``security``, before a scenario starts.

    Raises:
        AccessDenied: a broker refused the credentials, or could not be reached or spoken to
            with these settings (a plaintext client at a TLS port, a CA file that cannot be read).
    """
    from dualmq import pull, push

    if kafka:
        try:
            async with pull.Admin(kafka, request_timeout_ms=LOGIN_TIMEOUT_S * 1000, client_id="dualmq-compare",
                                  **security.kafka) as admin:
                await admin.api_versions()
        except (DualmqError, ValueError) as exc:
            raise refusal("pull", kafka, exc) from None
    if resp:
        try:
            async with push.Publisher(resp, timeout=LOGIN_TIMEOUT_S, name="compare-login", **security.resp) as publisher:
                await publisher.execute("PING")
        except (DualmqError, ValueError) as exc:
            raise refusal("push", resp, exc) from None
