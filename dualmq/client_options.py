"""The command-line options that say how a client connects securely, and the SDK arguments they become.

``--user``, ``--password`` (or ``$DUALMQ_PASSWORD``), ``--sasl-mechanism`` and ``--tls``,
``--ca-file``, ``--cert-file``, ``--key-file``: one definition for the Kafka client commands
(``dualmq/cli/pull.py``, ``dualmq/cli/acl.py``), the TLS half of ``publish`` / ``subscribe``
(``dualmq/cli/push.py``) and ``dualmq compare`` (``dualmq/compare/command.py``), which applies
them to both modes. ``kafka_security`` turns them into the pull SDK's keyword arguments
(kafka-python's names), ``resp_tls`` and ``resp_login`` into the push SDK's (redis-py's).

It lives beside the SDK rather than in ``dualmq/cli/`` because ``compare`` (SDK side, see
docs/layering.md#import-rules) needs it too, and must not import the CLI, which imports the broker.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from dualmq.errors import DualmqError

__all__ = ["PASSWORD_ENVIRONMENT_VARIABLE", "SASL_MECHANISMS", "add_login_options", "add_tls_options",
           "kafka_security", "password", "resp_login", "resp_tls", "uses_tls"]

# Read when --password is not given, so a password need not appear in ps or shell history
# (redis-cli reads REDISCLI_AUTH the same way).
PASSWORD_ENVIRONMENT_VARIABLE = "DUALMQ_PASSWORD"
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
DEFAULT_SASL_MECHANISM = "SCRAM-SHA-256"
KAFKA_USER_HELP = "authenticate with SASL as this user (kafka.security_protocol SASL_PLAINTEXT, or SASL_SSL with --tls)"


def add_login_options(parser: argparse.ArgumentParser, *, user_help: str = KAFKA_USER_HELP) -> None:
    """``--user``, ``--password``, ``--sasl-mechanism`` and the TLS options (``add_tls_options``)."""
    parser.add_argument("--user", metavar="NAME", help=user_help)
    parser.add_argument("--password", help=f"the user's password (default: ${PASSWORD_ENVIRONMENT_VARIABLE}, "
                                           "which, unlike a command line, other users of the machine cannot see)")
    parser.add_argument("--sasl-mechanism", choices=SASL_MECHANISMS, default=DEFAULT_SASL_MECHANISM,
                        help=f"how to prove the password over SASL (default {DEFAULT_SASL_MECHANISM})")
    add_tls_options(parser)


def add_tls_options(parser: argparse.ArgumentParser) -> None:
    """``--tls`` and the files it may need, for any client command."""
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument("--ca-file", metavar="PATH", help="trust the broker certificates this CA signed "
                                                          "(default: the system's CAs); implies --tls")
    parser.add_argument("--cert-file", metavar="PATH", help="present this client certificate (mTLS); implies --tls")
    parser.add_argument("--key-file", metavar="PATH", help="the client certificate's key")


def uses_tls(args: argparse.Namespace) -> bool:
    """Whether the options ask for TLS (``--tls``, or a file only TLS reads)."""
    return bool(args.tls or args.ca_file or args.cert_file)


def password(args: argparse.Namespace) -> str | None:
    """``--password``, else ``$DUALMQ_PASSWORD`` when ``--user`` is given, else None.

    Raises:
        DualmqError: ``--user`` without a password (the CLI prints it as a one-line error).
    """
    if args.password is not None:
        return args.password
    if not args.user:
        return None
    found = os.environ.get(PASSWORD_ENVIRONMENT_VARIABLE)
    if found is None:
        raise DualmqError(f"--user needs --password or ${PASSWORD_ENVIRONMENT_VARIABLE}")
    return found


def kafka_security(args: argparse.Namespace) -> dict[str, Any]:
    """The pull SDK's security keyword arguments (kafka-python's names) for the options given.

    Raises:
        DualmqError: ``--user`` without a password.
    """
    tls = uses_tls(args)
    settings: dict[str, Any] = {"ssl_cafile": args.ca_file, "ssl_certfile": args.cert_file,
                                "ssl_keyfile": args.key_file}
    if args.user:
        settings.update(security_protocol="SASL_SSL" if tls else "SASL_PLAINTEXT",
                        sasl_mechanism=args.sasl_mechanism, sasl_plain_username=args.user,
                        sasl_plain_password=password(args))
    else:
        settings["security_protocol"] = "SSL" if tls else "PLAINTEXT"
    return settings


def resp_tls(args: argparse.Namespace) -> dict[str, Any]:
    """The push SDK's TLS keyword arguments (redis-py's names) for the options given."""
    return {"ssl": uses_tls(args), "ssl_ca_certs": args.ca_file, "ssl_certfile": args.cert_file,
            "ssl_keyfile": args.key_file}


def resp_login(args: argparse.Namespace) -> dict[str, Any]:
    """The push SDK's ``username`` / ``password`` (Redis ``AUTH [user] pass``) and TLS arguments.

    A ``--password`` without ``--user`` logs in as Redis's ``default`` user (``requirepass``).

    Raises:
        DualmqError: ``--user`` without a password.
    """
    return {"username": args.user or None, "password": password(args), **resp_tls(args)}
