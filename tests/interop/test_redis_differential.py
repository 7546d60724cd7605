"""Push mode against a real redis-server 7.0.15: the same commands, byte-identical replies.

Each case below is run on both servers, in RESP2 and RESP3 unless it says otherwise, by the
harness in ``tests.interop.differential`` (read its docstring for the step syntax). Where a
reply legitimately differs (a connection id, a hash-table order Redis leaves random) the
case's ``normalize`` rewrites that field on both sides, with the reason beside it.

Families: the empty keyspace (FLUSHALL, FLUSHDB, DBSIZE, SELECT), sharded pub/sub, the
subscribed-context rules, CONFIG, CLIENT's connection switches and PAUSE, SHUTDOWN's
errors, COMMAND's introspection, and the error texts of every check dispatch makes.
"""

from __future__ import annotations

import pytest

from modes.push.commands import COMMANDS
from tests.interop.differential import (
    Case,
    hello_id,
    reset_servers,
    run_case,
    servers_for,
    sorted_array,
    sorted_map_pairs,
    sorted_subcommands,
    unordered_unsubscribe_all,
)

pytestmark = pytest.mark.interop


def _cases(*cases: Case) -> list:
    return [pytest.param(case, protocol, id=f"{case.name}-resp{protocol}")
            for case in cases for protocol in case.protocols]


# --- the empty keyspace ------------------------------------------------------------------------

KEYSPACE = [
    Case("flushall", ("A: FLUSHALL", "A: FLUSHALL ASYNC", "A: FLUSHALL sync", "A: flushall Async")),
    Case("flushall-syntax", ("A: FLUSHALL FOO", "A: FLUSHALL ASYNC SYNC", "A: FLUSHALL SYNC x")),
    Case("flushdb", ("A: FLUSHDB", "A: FLUSHDB ASYNC", "A: FLUSHDB SYNC", "A: FLUSHDB nope",
                     "A: FLUSHDB ASYNC ASYNC")),
    Case("dbsize", ("A: DBSIZE", "A: DBSIZE extra", "A: dbsize")),
    Case("select-valid", ("A: SELECT 0", "A: SELECT 15", "A: SELECT 7", "A: DBSIZE", "A: SELECT 0")),
    Case("select-invalid", (
        "A: SELECT 16", "A: SELECT -1", "A: SELECT x", "A: SELECT 1.5", "A: SELECT 00", "A: SELECT +1",
        "A: SELECT ''", "A: SELECT -0", "A: SELECT 2147483648", "A: SELECT -2147483649",
        "A: SELECT 9223372036854775807", "A: SELECT 9223372036854775808", "A: SELECT",
        "A: SELECT 1 2",
    )),
    Case("keyspace-while-subscribed", (
        "A: SUBSCRIBE k", "A: SELECT 1", "A: DBSIZE", "A: FLUSHALL", "A: FLUSHDB ASYNC", "A: UNSUBSCRIBE",
        "A: DBSIZE",
    )),
]


# --- sharded pub/sub ---------------------------------------------------------------------------

SHARDED = [
    Case("ssubscribe-frames", ("A: SSUBSCRIBE a b a", "A: SSUBSCRIBE c", "A: SUNSUBSCRIBE b",
                               "A: SUNSUBSCRIBE zz", "A: SUNSUBSCRIBE", "A: SUNSUBSCRIBE"),
         normalize=unordered_unsubscribe_all),
    Case("ssubscribe-arity", ("A: SSUBSCRIBE", "A: SPUBLISH a", "A: SPUBLISH a b c", "A: SUNSUBSCRIBE")),
    Case("spublish-delivers-smessage", (
        "A: SSUBSCRIBE news", "B: SPUBLISH news hello", "B: SPUBLISH other x", "B: PUBLISH news plain",
        "A: SUNSUBSCRIBE news", "B: SPUBLISH news gone",
    )),
    Case("shard-and-plain-namespaces-apart", (
        "A: SUBSCRIBE ch", "A: SSUBSCRIBE ch", "B: PUBLISH ch p", "B: SPUBLISH ch s",
        "A: PSUBSCRIBE c*", "B: SPUBLISH ch s2", "B: PUBLISH ch p2",
        "B: PUBSUB NUMSUB ch", "B: PUBSUB SHARDNUMSUB ch", "B: PUBSUB CHANNELS", "B: PUBSUB SHARDCHANNELS",
    )),
    Case("shard-counts-separate", (
        "A: SUBSCRIBE x", "A: PSUBSCRIBE p*", "A: SSUBSCRIBE a", "A: SSUBSCRIBE b", "A: UNSUBSCRIBE",
        "A: PUNSUBSCRIBE", "A: SUNSUBSCRIBE a", "A: SUNSUBSCRIBE",
    )),
    Case("shard-subscribed-context-resp2", (
        "A: SSUBSCRIBE a", "A: SUBSCRIBE x", "A: UNSUBSCRIBE x", "A: PING", "A: PING hi", "A: DBSIZE",
        "A: SPUBLISH a m", "A: PUBSUB SHARDCHANNELS", "A: SUNSUBSCRIBE", "A: PING", "A: DBSIZE",
    )),
    Case("shard-then-plain-unsubscribe", (
        "A: SUBSCRIBE x", "A: SSUBSCRIBE a", "A: SUNSUBSCRIBE a", "A: PING", "A: UNSUBSCRIBE", "A: PING",
    )),
    Case("shard-only-unsubscribe-none", (
        "A: SSUBSCRIBE a", "A: UNSUBSCRIBE", "A: PUNSUBSCRIBE", "A: PING", "A: SUNSUBSCRIBE", "A: PING",
    )),
    Case("pubsub-shardchannels", (
        "A: SSUBSCRIBE alpha beta abc", "B: SSUBSCRIBE alpha", "C: PUBSUB SHARDCHANNELS a*",
        "C: PUBSUB SHARDCHANNELS", "C: PUBSUB SHARDCHANNELS nomatch*", "C: PUBSUB SHARDNUMSUB alpha beta gamma",
        "C: PUBSUB SHARDNUMSUB", "C: PUBSUB SHARDCHANNELS a b", "C: PUBSUB shardnumsub", "B: SUNSUBSCRIBE",
        "C: PUBSUB SHARDNUMSUB alpha", "C: PUBSUB CHANNELS", "C: PUBSUB NUMSUB alpha",
    ), normalize=lambda data: unordered_unsubscribe_all(sorted_array(data))),
    Case("spublish-from-subscriber-resp3", (
        "A: SSUBSCRIBE me", "A: SPUBLISH me self", "A: PUBLISH me plain",
    ), protocols=(3,)),
    Case("reset-leaves-shard-channels", (
        "A: SSUBSCRIBE a", "A: SUBSCRIBE b", "A: RESET", "A: PING", "B: PUBSUB SHARDNUMSUB a",
        "B: SPUBLISH a gone",
    )),
    Case("ssubscribe-different-slots-single-node", ("A: SSUBSCRIBE {a}1 {b}2 foo bar", "B: SPUBLISH bar x")),
]


# --- errors of dispatch's checks ---------------------------------------------------------------

ERRORS = [
    # (Not SET or GET: Redis has them. Keys are the one place where dualmq differs on purpose.)
    Case("unknown-command", ("A: FOO", "A: NOSUCH k v", "A: foo 'a b' c",
                             ("A", b"NOSUCH " + b"x" * 200 + b" y\r\n"))),
    Case("container-arity", ("A: PUBSUB", "A: CLIENT", "A: CONFIG", "A: COMMAND COUNT x")),
    Case("unknown-subcommands", ("A: PUBSUB FOO", "A: CLIENT FOO", "A: CONFIG FOO x", "A: COMMAND FOO",
                                 "A: pubsub foo")),
    Case("subcommand-arity", (
        "A: PUBSUB NUMPAT x", "A: PUBSUB HELP x", "A: CLIENT ID x", "A: CLIENT SETNAME", "A: CLIENT GETNAME x",
        "A: CONFIG GET", "A: CONFIG SET timeout", "A: CONFIG RESETSTAT x", "A: CONFIG HELP x",
        "A: PUBSUB CHANNELS a b",
    )),
    Case("subscribed-context-names-subcommands", (
        "A: SUBSCRIBE c", "A: PUBSUB NUMPAT", "A: PUBSUB CHANNELS", "A: CLIENT ID", "A: CONFIG GET timeout",
        "A: COMMAND COUNT", "A: PUBLISH c x", "A: SPUBLISH c x", "A: ECHO hi", "A: HELLO", "A: INFO",
        "A: PUBSUB FOO", "A: PUBSUB NUMPAT x", "A: FOO",
    ), protocols=(2,)),
    Case("subscribed-context-resp3-allows", (
        "A: SUBSCRIBE c", "A: PUBSUB NUMPAT", "A: PUBSUB CHANNELS c", "A: ECHO hi", "A: PUBLISH c x",
    ), protocols=(3,)),
    Case("pubsub-help", ("A: PUBSUB HELP", "A: pubsub help")),
    Case("config-help", ("A: CONFIG HELP",)),
]


# --- CONFIG -----------------------------------------------------------------------------------

CONFIG = [
    Case("config-get-single", (
        "A: CONFIG GET timeout", "A: CONFIG GET maxclients", "A: CONFIG GET client-output-buffer-limit",
        "A: CONFIG GET proto-max-bulk-len", "A: CONFIG GET client-query-buffer-limit",
        "A: CONFIG GET maxmemory-clients", "A: CONFIG GET save", "A: CONFIG GET appendonly",
        "A: CONFIG GET databases", "A: CONFIG GET TIMEOUT", "A: CONFIG GET Maxclients",
    )),
    Case("config-get-unknown", ("A: CONFIG GET nosuch", "A: CONFIG GET no*such*", "A: CONFIG GET nosuch other")),
    Case("config-get-glob", ("A: CONFIG GET *buffer-limit", "A: CONFIG GET timeou?", "A: CONFIG GET maxcl*",
                             "A: CONFIG GET proto-*", "A: CONFIG GET [tx]imeout", "A: CONFIG GET *BUFFER-LIMIT"),
         normalize=sorted_map_pairs),
    Case("config-get-many", ("A: CONFIG GET timeout maxclients", "A: CONFIG GET timeout timeout",
                             "A: CONFIG GET timeout TIMEOUT", "A: CONFIG GET timeout timeou*",
                             "A: CONFIG GET save appendonly databases"),
         normalize=sorted_map_pairs),
    Case("config-set-timeout", ("A: CONFIG SET timeout 7", "A: CONFIG GET timeout", "A: CONFIG SET TIMEOUT 0",
                                "A: CONFIG GET timeout")),
    Case("config-set-many", ("A: CONFIG SET timeout 5 maxclients 100", "A: CONFIG GET timeout",
                             "A: CONFIG GET maxclients", "A: CONFIG SET timeout 0 maxclients 10000")),
    Case("config-set-errors", (
        "A: CONFIG SET nosuch 1", "A: CONFIG SET timeout abc", "A: CONFIG SET timeout -1",
        "A: CONFIG SET timeout 2147483648", "A: CONFIG SET timeout 0 timeout 1", "A: CONFIG SET timeout 0 maxclients",
        "A: CONFIG SET timeout 1 nosuch 2", "A: CONFIG SET nosuch 1 timeout x", "A: CONFIG SET TIMEOUT abc",
        "A: CONFIG SET maxclients 0", "A: CONFIG SET maxclients x", "A: CONFIG SET timeout 5 maxclients 0",
        "A: CONFIG GET timeout", "A: CONFIG SET timeout 1.5", "A: CONFIG SET timeout ''",
        "A: CONFIG SET timeout 0 TIMEOUT 1",
    )),
    Case("config-set-output-buffer-limit", (
        "A: CONFIG SET client-output-buffer-limit 'pubsub 1mb 512kb 30'", "A: CONFIG GET client-output-buffer-limit",
        "A: CONFIG SET client-output-buffer-limit 'pubsub 1048576 0 0 normal 0 0 0'",
        "A: CONFIG GET client-output-buffer-limit",
        "A: CONFIG SET client-output-buffer-limit 'PUBSUB 2GB 1gb 60'", "A: CONFIG GET client-output-buffer-limit",
        "A: CONFIG SET client-output-buffer-limit 'replica 1 2 3'", "A: CONFIG GET client-output-buffer-limit",
        "A: CONFIG SET client-output-buffer-limit 'slave 4 5 6 pubsub 7 8 9'",
        "A: CONFIG GET client-output-buffer-limit",
    )),
    Case("config-set-output-buffer-limit-errors", (
        "A: CONFIG SET client-output-buffer-limit 'pubsub 1 2'", "A: CONFIG SET client-output-buffer-limit 'foo 1 2 3'",
        "A: CONFIG SET client-output-buffer-limit 'pubsub x 2 3'", "A: CONFIG SET client-output-buffer-limit 'pubsub 1 -2 3'",
        "A: CONFIG SET client-output-buffer-limit 'pubsub 1 2 x'", "A: CONFIG SET client-output-buffer-limit ''",
        "A: CONFIG SET client-output-buffer-limit 'pubsub 1 2 -1'", "A: CONFIG GET client-output-buffer-limit",
    )),
    Case("config-set-memory-values", (
        "A: CONFIG SET proto-max-bulk-len 2mb", "A: CONFIG GET proto-max-bulk-len",
        "A: CONFIG SET proto-max-bulk-len 1k", "A: CONFIG SET proto-max-bulk-len abc",
        "A: CONFIG SET proto-max-bulk-len 512mb", "A: CONFIG GET proto-max-bulk-len",
        "A: CONFIG SET client-query-buffer-limit 2gb", "A: CONFIG GET client-query-buffer-limit",
        "A: CONFIG SET client-query-buffer-limit 1gb",
    )),
    Case("config-set-persistence", ("A: CONFIG SET save ''", "A: CONFIG SET appendonly no", "A: CONFIG GET save")),
    Case("config-resetstat", ("A: CONFIG RESETSTAT", "A: config resetstat")),
]


# --- CLIENT: replies, eviction, pause, unblock ---------------------------------------------------

CLIENT = [
    Case("client-reply-errors", ("A: CLIENT REPLY", "A: CLIENT REPLY foo", "A: CLIENT REPLY ON",
                                 "A: CLIENT REPLY ON x")),
    Case("client-reply-off-on", ("A~ CLIENT REPLY OFF", "A~ PING", "A~ FOO", "A~ ECHO x",
                                 "A: CLIENT REPLY ON", "A: PING")),
    Case("client-reply-skip", ("A~ CLIENT REPLY SKIP", "A: ECHO shown", "A~ CLIENT REPLY SKIP", "A~ ECHO hidden",
                               "A: ECHO shown2")),
    Case("client-reply-skip-error", ("A~ CLIENT REPLY SKIP", "A~ FOO", "A: ECHO after")),
    Case("client-reply-skip-twice", ("A~ CLIENT REPLY SKIP", "A~ CLIENT REPLY SKIP", "A~ ECHO 1", "A: ECHO 2")),
    Case("client-reply-off-then-skip", ("A~ CLIENT REPLY OFF", "A~ CLIENT REPLY SKIP", "A: CLIENT REPLY ON",
                                        "A: ECHO 5")),
    Case("client-reply-skip-then-on", ("A~ CLIENT REPLY SKIP", "A: CLIENT REPLY ON", "A: ECHO 6")),
    Case("client-reply-off-publish", ("A~ CLIENT REPLY OFF", "A~ PUBLISH x y", "A~ PUBLISH x z",
                                      "A: CLIENT REPLY ON")),
    Case("client-reply-skip-publish-pipelined", (
        ("A", b"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$4\r\nSKIP\r\n*3\r\n$7\r\nPUBLISH\r\n$1\r\nx\r\n$1\r\ny\r\n"
              b"*3\r\n$7\r\nPUBLISH\r\n$1\r\nx\r\n$1\r\nz\r\n"),
    )),
    Case("client-reply-off-still-gets-pushes", (
        "A~ CLIENT REPLY OFF", "A~ SUBSCRIBE rq", "A~ SSUBSCRIBE rs", "B: PUBLISH rq m1", "B: SPUBLISH rs m2",
        "A~ PING", "A~ UNSUBSCRIBE rq", "A~ SUNSUBSCRIBE",
    )),
    Case("client-reply-on-refused-while-subscribed", (
        "A: SUBSCRIBE s", "A: CLIENT REPLY OFF", "A: CLIENT REPLY ON", "A: UNSUBSCRIBE", "A: CLIENT REPLY ON",
    ), protocols=(2,)),
    Case("client-no-evict", ("A: CLIENT NO-EVICT on", "A: CLIENT NO-EVICT OFF", "A: CLIENT NO-EVICT x",
                             "A: CLIENT NO-EVICT", "A: CLIENT NO-EVICT on off")),
    Case("client-unblock", ("A: CLIENT UNBLOCK 1", "A: CLIENT UNBLOCK x", "A: CLIENT UNBLOCK 1 TIMEOUT",
                            "A: CLIENT UNBLOCK 1 error", "A: CLIENT UNBLOCK 1 FOO", "A: CLIENT UNBLOCK -5",
                            "A: CLIENT UNBLOCK", "A: CLIENT UNBLOCK 1 2 3")),
    Case("client-pause-errors", ("A: CLIENT PAUSE", "A: CLIENT PAUSE x", "A: CLIENT PAUSE -1",
                                 "A: CLIENT PAUSE 1.5", "A: CLIENT PAUSE 10 FOO", "A: CLIENT PAUSE 10 WRITE x",
                                 "A: CLIENT UNPAUSE x", "A: CLIENT UNPAUSE")),
    # Steps that a pause holds are written "X~": X's synchronising PING would wait behind them.
    # Each held client sends all it holds in one step: when a held client sends more later,
    # Redis may run the later part after other clients' (the timing of its reads decides).
    Case("client-pause-write-holds-publish", (
        "A: SUBSCRIBE held", "C: CLIENT PAUSE 10000 WRITE", "B~ PUBLISH held first",
        "C: PUBSUB NUMSUB held", "C: DBSIZE", "C: PING", "D~ SPUBLISH s x", "E~ FLUSHALL", "F~ FLUSHDB",
        "C: CLIENT UNPAUSE", "B: ECHO after", "D: ECHO after", "E: ECHO after", "F: ECHO after",
    )),
    Case("client-pause-write-keeps-order-across-clients", (
        "A: SUBSCRIBE ord", "C: CLIENT PAUSE 10000 write", "B~ PUBLISH ord from-b", "D~ PUBLISH ord from-d",
        "E~ PUBLISH ord from-e", "C: CLIENT UNPAUSE", "B: PING", "D: PING",
    )),
    Case("client-pause-write-holds-the-rest-of-a-pipeline", (
        "A: SUBSCRIBE pipe", "C: CLIENT PAUSE 10000 WRITE",
        ("B~", b"*2\r\n$4\r\nECHO\r\n$6\r\nbefore\r\n*3\r\n$7\r\nPUBLISH\r\n$4\r\npipe\r\n$1\r\n1\r\n"
               b"*2\r\n$4\r\nECHO\r\n$6\r\nbehind\r\n*3\r\n$7\r\nPUBLISH\r\n$4\r\npipe\r\n$1\r\n2\r\n"),
        "D~ PUBLISH pipe 3", "C: CLIENT UNPAUSE", "B: PING", "D: PING",
    )),
    Case("client-pause-all-ends-at-timeout", (
        "C~ CLIENT PAUSE 300 ALL", "B~ PING during", "B~ CLIENT UNPAUSE", "C: ECHO after", "B: ECHO after",
    )),
    Case("client-pause-write-lets-subscribe-through", (
        "C: CLIENT PAUSE 10000 WRITE", "A: SUBSCRIBE p", "A: SSUBSCRIBE q", "A: UNSUBSCRIBE", "A: SUNSUBSCRIBE",
        "C: CLIENT UNPAUSE",
    )),
    Case("client-pause-held-error-comes-later", (
        "C: CLIENT PAUSE 10000 WRITE", "B~ PUBLISH x", "B~ PUBLISH x y", "C: CLIENT UNPAUSE", "B: PING",
    )),
    Case("client-pause-all-holds-unpause-itself", (
        "C~ CLIENT PAUSE 400 ALL", "C~ CLIENT UNPAUSE", "B~ CLIENT UNPAUSE", "C: ECHO after", "B: ECHO after",
    )),
    Case("client-pause-grows-only", (
        "C: CLIENT PAUSE 10000 WRITE", "C~ CLIENT PAUSE 1 WRITE", "B~ PUBLISH x y", "C~ CLIENT UNPAUSE",
        "C: PING", "B: PING",
    )),
]


# --- SHUTDOWN's checks (the stop itself is tested against a dualmq process of its own) ------------

SHUTDOWN = [
    Case("shutdown-syntax", ("A: SHUTDOWN FOO", "A: SHUTDOWN NOSAVE SAVE", "A: SHUTDOWN SAVE NOSAVE",
                             "A: SHUTDOWN NOW FOO", "A: SHUTDOWN ABORT x", "A: SHUTDOWN ABORT",
                             "A: SHUTDOWN nosave save now")),
    Case("shutdown-while-subscribed", ("A: SUBSCRIBE s", "A: SHUTDOWN", "A: SHUTDOWN ABORT"), protocols=(2,)),
]


# --- connection commands --------------------------------------------------------------------------

CONNECTION = [
    Case("ping-echo", ("A: PING", "A: PING hello", "A: PING a b", "A: ECHO x", "A: ECHO", "A: echo ''")),
    Case("hello", ("A: HELLO", "A: HELLO 2", "A: HELLO 3", "A: HELLO 2", "A: HELLO 4", "A: HELLO x",
                   "A: HELLO 3 SETNAME foo", "A: CLIENT GETNAME", "A: HELLO 2 SETNAME 'a b'", "A: HELLO 3 FOO",
                   "A: HELLO 3 AUTH default x", "A: HELLO 2"),
         normalize=hello_id),
    Case("subscribed-ping", ("A: SUBSCRIBE p", "A: PING", "A: PING msg", "A: PSUBSCRIBE q*", "A: PING")),
    Case("reset-clears-everything", (
        "A: SELECT 3", "A: CLIENT SETNAME n", "A: CLIENT NO-EVICT on", "A: SUBSCRIBE s", "A: PSUBSCRIBE p*",
        "A: SSUBSCRIBE t", "A: RESET", "A: CLIENT GETNAME", "A: PUBSUB NUMSUB s", "A: PUBSUB SHARDNUMSUB t",
        "A: PUBSUB NUMPAT",
    )),
    Case("reset-ends-reply-off", ("A~ CLIENT REPLY OFF", "A: RESET", "A: PING")),
    Case("quit", ("A: PING", "A: QUIT !closes")),
    Case("quit-while-subscribed", ("A: SUBSCRIBE q", "A: QUIT !closes")),
    Case("inline-commands", (("A", b"PING\r\n"), ("A", b"ECHO 'a b'\r\n"), ("A", b"FLUSHALL async\r\n"),
                             ("A", b"SELECT 5\r\n"), ("A", b"\r\n"), ("A", b"DBSIZE\r\n"))),
    Case("protocol-error", ("A: PING", ("A!", b"ECHO ok\r\n*1\r\n$x\r\n"))),
    Case("protocol-error-others-unharmed", ("A: SUBSCRIBE c", ("B!", b"*1\r\nfoo\r\n"), "C: PUBLISH c still")),
]


# --- COMMAND's introspection: Redis's own description of each command we have ------------------

def _introspection_steps(command) -> list[str]:
    names = [command.fullname] + [sub.fullname for sub in (command.subcommands or {}).values()]
    # CLIENT SETINFO and NO-TOUCH came in Redis 7.2: redis-server 7.0.15 knows nothing of them
    # (test_later_subcommands_are_unknown_to_7_0 below); neither has the CLIENT container all
    # of Redis's subcommands (no TRACKING, CACHING, ...), so it is compared one by one.
    names = [name for name in names if name not in ("client", "client|setinfo", "client|no-touch")]
    return [f"A: COMMAND {what} {name}" for name in names for what in ("INFO", "DOCS")]


COMMAND = [
    Case(f"command-{command.fullname}", tuple(_introspection_steps(command)), normalize=sorted_subcommands)
    for command in COMMANDS.values()
] + [
    Case("command-info-docs-many", ("A: COMMAND INFO publish nosuch client|list CLIENT|ID pubsub|nosuch publish|x",
                                    "A: COMMAND DOCS nosuch ping PUBSUB|NUMSUB a|b|c", "A: COMMAND DOCS nosuch",
                                    "A: COMMAND INFO nosuch")),
    Case("command-list-filters", (
        "A: COMMAND LIST FILTERBY PATTERN pubsub*", "A: COMMAND LIST FILTERBY PATTERN *|numpat",
        "A: COMMAND LIST FILTERBY PATTERN PUBSUB|NUM*", "A: COMMAND LIST FILTERBY PATTERN *subscribe",
        "A: COMMAND LIST FILTERBY ACLCAT pubsub", "A: COMMAND LIST FILTERBY ACLCAT nosuch",
        "A: COMMAND LIST FILTERBY ACLCAT @pubsub", "A: COMMAND LIST FILTERBY MODULE x",
        "A: COMMAND LIST FILTERBY", "A: COMMAND LIST FOO", "A: COMMAND LIST FILTERBY FOO x",
        "A: COMMAND LIST FILTERBY PATTERN a b",
    ), normalize=sorted_array),
    Case("command-getkeys", (
        "A: COMMAND GETKEYS", "A: COMMAND GETKEYS publish a b", "A: COMMAND GETKEYS spublish a b",
        "A: COMMAND GETKEYS ssubscribe a b c", "A: COMMAND GETKEYS nosuch", "A: COMMAND GETKEYS nosuch x",
        "A: COMMAND GETKEYS client list", "A: COMMAND GETKEYS client nosuch", "A: COMMAND GETKEYS publish a",
        "A: COMMAND GETKEYSANDFLAGS spublish a b", "A: COMMAND GETKEYSANDFLAGS",
    )),
    Case("command-help", ("A: COMMAND HELP", "A: COMMAND HELP x", "A: COMMAND COUNT x")),
]


ALL = KEYSPACE + SHARDED + ERRORS + CONFIG + CLIENT + SHUTDOWN + CONNECTION + COMMAND


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    with servers_for(tmp_path_factory.mktemp("differential")) as running:
        yield running


@pytest.mark.parametrize(("case", "protocol"), _cases(*ALL))
def test_same_bytes_as_redis(servers, case: Case, protocol: int) -> None:
    try:
        run_case(servers, case, protocol)
    finally:
        reset_servers(servers)


def test_later_subcommands_are_unknown_to_7_0(servers) -> None:
    """CLIENT SETINFO and NO-TOUCH answer as Redis 7.2 does; 7.0.15 has neither (if this fails,
    the redis-server here is newer: add them to the byte-for-byte table above)."""
    run_case(servers, Case("later", ()), 2)  # both servers answer at all
    import socket

    from tests.interop.differential import encode_command
    with socket.create_connection(servers.redis, timeout=5) as sock:
        sock.sendall(encode_command(["CLIENT", "NO-TOUCH", "ON"]) + encode_command(["CLIENT", "SETINFO", "LIB-NAME", "x"]))
        expected = (b"-ERR unknown subcommand 'NO-TOUCH'. Try CLIENT HELP.\r\n"
                    b"-ERR unknown subcommand 'SETINFO'. Try CLIENT HELP.\r\n")
        data = b""
        while len(data) < len(expected):
            data += sock.recv(4096)
    assert data == expected
