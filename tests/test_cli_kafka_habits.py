"""Kafka users' habits work with ``dualmq``: ``-b`` / ``--bootstrap-server``, ``-K :`` keys, kcat's
``--format`` tokens (checked against kcat itself), values only into a pipe, and help for every option.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
import trio

from dualmq.cli import build_parser
from dualmq.pull import Producer
from tests.support import broker_process, require_binary


@pytest.fixture(scope="module")
def kafka(tmp_path_factory):
    with broker_process(tmp_path_factory.mktemp("cli-habits")) as broker:
        yield broker.kafka_address


def dualmq(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dualmq", *args], input=stdin, capture_output=True, text=True,
                          timeout=60)


def test_bootstrap_server_and_b_are_kafka_aliases(kafka) -> None:
    assert dualmq("topics", "create", "aliased", "--bootstrap-server", kafka).returncode == 0
    listed = dualmq("topics", "list", "-b", kafka)
    assert listed.returncode == 0 and "aliased" in listed.stdout.split()
    # A kcat-style list of brokers is accepted too (the first reachable one answers).
    assert "aliased" in dualmq("topics", "list", "-b", f"{kafka},127.0.0.1:1").stdout.split()
    bad = dualmq("topics", "list", "-b", "no-port")
    assert bad.returncode == 2 and "HOST:PORT" in bad.stderr


def test_key_delimiter_splits_each_line_as_kcat_does(kafka) -> None:
    produced = dualmq("produce", "-b", kafka, "keyed", "-K", ":", "--key", "fallback",
                      stdin="alice:coffee\nbob:tea:with:milk\nno delimiter\n")
    assert produced.returncode == 0, produced.stderr
    consumed = dualmq("consume", "-b", kafka, "keyed", "--from-beginning", "--max", "3", "-f", r"%k=%s\n")
    assert consumed.stdout.splitlines() == ["alice=coffee", "bob=tea:with:milk", "fallback=no delimiter"]


def test_piped_output_is_values_only_by_default(kafka) -> None:
    assert dualmq("produce", "-b", kafka, "plain", "--key", "k", stdin="one\ntwo\n").returncode == 0
    consumed = dualmq("consume", "-b", kafka, "plain", "--from-beginning", "--max", "2")
    assert consumed.stdout == "one\ntwo\n"


def test_unknown_format_token_is_a_usage_error(kafka) -> None:
    result = dualmq("consume", "-b", kafka, "plain", "--from-beginning", "--max", "1", "-f", "%y")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("dualmq: error: --format: unknown token %y")


@pytest.mark.interop
def test_format_tokens_print_what_kcat_prints_for_the_same_records(kafka) -> None:
    kcat = require_binary("kcat", "kcat")

    async def produce() -> None:
        async with Producer(kafka) as producer:
            await producer.send("formatted", b"first value", key=b"k1", headers=[("trace", b"abc"), ("n", b"1")])
            await producer.send("formatted", None, key=b"tomb")   # a null value
            await producer.send("formatted", b"keyless")            # a null key

    trio.run(produce)
    fmt = r"%t|%p|%o|%k|%K|%s|%S|%T|%h\n"
    ours = subprocess.run([sys.executable, "-m", "dualmq", "consume", "-b", kafka, "formatted", "--from-beginning",
                           "--max", "3", "--format", fmt], capture_output=True, timeout=60)
    theirs = subprocess.run([kcat, "-b", kafka, "-t", "formatted", "-C", "-o", "beginning", "-e", "-q", "-f", fmt],
                            capture_output=True, timeout=60)
    assert ours.returncode == 0 and theirs.returncode == 0, (ours.stderr, theirs.stderr)
    assert ours.stdout == theirs.stdout
    assert ours.stdout.count(b"\n") == 3 and b"|trace=abc,n=1\n" in ours.stdout


def _options(parser: argparse.ArgumentParser, path: str):
    """Every (command path, action) below ``parser``, help and version flags excepted."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{path} {name}")
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield path, action


def _commands() -> list[str]:
    [subcommands] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return list(subcommands.choices)


@pytest.mark.parametrize("command", _commands())
def test_every_option_and_argument_has_help(command: str) -> None:
    [subcommands] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    missing = [f"{path}: {'/'.join(action.option_strings) or action.dest}"
               for path, action in _options(subcommands.choices[command], f"dualmq {command}")
               if not action.help]
    assert missing == []
