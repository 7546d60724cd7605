"""``dualmq acl``: add, list and remove Kafka ACLs on a running broker.

``acl add | list | remove`` speak CreateAcls / DescribeAcls / DeleteAcls to a running broker
(through ``Admin``, so they work against real Kafka too) with the options Kafka's
``kafka-acls.sh`` has: ``--allow-principal`` / ``--deny-principal``, ``--operation`` (repeatable),
``--topic`` / ``--group`` / ``--cluster``, ``--resource-pattern-type``, ``--host``. Connecting takes
the usual ``--kafka --user --password --tls --ca-file`` (the user must be a super user, or be
allowed Alter on the cluster).

The users themselves are added with ``dualmq users add NAME --mode pull`` (``users.py``).
"""

from __future__ import annotations

import argparse
import sys

import trio

from dualmq.cli.common import add_kafka_option
from dualmq.client_options import kafka_security
from dualmq.errors import DualmqError
from dualmq.pull import Acl, AclFilter, Admin

__all__ = ["add_parsers"]

OPERATIONS = ("all", "read", "write", "create", "delete", "alter", "describe", "describe_configs",
              "alter_configs", "idempotent_write")


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Register ``acl`` on the CLI's subcommand parser."""
    acl = commands.add_parser("acl", help="pull mode: add, list and remove Kafka ACLs on a running broker")
    actions = acl.add_subparsers(dest="acl_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="grant (or deny) operations on a resource")
    who = add.add_mutually_exclusive_group(required=True)
    who.add_argument("--allow-principal", metavar="User:NAME", help="allow this principal (User:* for everyone)")
    who.add_argument("--deny-principal", metavar="User:NAME", help="deny this principal (deny wins over allow)")
    add.add_argument("--operation", action="append", required=True, choices=OPERATIONS,
                     help="an operation to allow or deny (repeatable)")
    _resource_options(add, required=True)
    add.add_argument("--resource-pattern-type", choices=("literal", "prefixed"), default="literal",
                     help="literal: that name (or every name for '*'); prefixed: names starting with it")
    add.add_argument("--host", default="*", help="the client address it applies to (default *: any)")
    add_kafka_option(add)
    for name, helptext in (("list", "the ACLs matching the filter (all by default)"),
                           ("remove", "remove the ACLs matching the filter")):
        action = actions.add_parser(name, help=helptext)
        action.add_argument("--principal", metavar="User:NAME", help="only this principal's")
        action.add_argument("--operation", choices=("any", *OPERATIONS), default="any", help="only this operation")
        _resource_options(action, required=False)
        action.add_argument("--resource-pattern-type", choices=("any", "match", "literal", "prefixed"),
                            default="any", help="match: every ACL that applies to the named resource")
        add_kafka_option(action)
    acl.set_defaults(handler=_acl)


def _resource_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    resource = parser.add_mutually_exclusive_group(required=required)
    resource.add_argument("--topic", metavar="NAME", help="a topic (or prefix, or '*')")
    resource.add_argument("--group", metavar="NAME", help="a consumer group (or prefix, or '*')")
    resource.add_argument("--cluster", action="store_true", help="the cluster (ACL and topic administration)")


def _resource(args: argparse.Namespace) -> tuple[str, str | None]:
    if args.topic is not None:
        return "topic", args.topic
    if args.group is not None:
        return "group", args.group
    if args.cluster:
        return "cluster", "kafka-cluster"
    return "any", None


def _acl(args: argparse.Namespace) -> int:
    resource_type, name = _resource(args)

    async def run() -> list[Acl]:
        async with Admin(args.kafka, **kafka_security(args)) as admin:
            if args.acl_command == "add":
                principal = args.allow_principal or args.deny_principal
                permission = "allow" if args.allow_principal else "deny"
                try:
                    bindings = [Acl(principal, operation, resource_type, name, pattern=args.resource_pattern_type,
                                    permission=permission, host=args.host) for operation in args.operation]
                    await admin.create_acls(bindings)
                except ValueError as exc:
                    raise DualmqError(str(exc)) from None
                return bindings
            selection = AclFilter(principal=args.principal, operation=args.operation, resource_type=resource_type,
                                  resource_name=name, pattern=args.resource_pattern_type)
            if args.acl_command == "list":
                return await admin.describe_acls(selection)
            return await admin.delete_acls(selection)

    bindings = trio.run(run)
    verb = {"add": "added", "list": "", "remove": "removed"}[args.acl_command]
    for binding in bindings:
        print(f"{verb} {binding}".strip())
    if not bindings and args.acl_command != "add":
        print("no ACL matches", file=sys.stderr)
    return 0
