"""AUTH, ACL and protected mode against a real redis-server 7.0.15: same bytes in, same bytes out.

The synchronising PING of ``tests.interop.differential`` cannot be used here: a client that
has not authenticated gets ``-NOAUTH`` for it. So each step says how many RESP values it
waits for, and connections open when a case first uses them — after the case's ``setup``
has given ``default`` a password, so they start unauthenticated, as a new client would.

Step syntax::

    "A: AUTH alice pw"      A sends it and reads one reply
    "A3: SUBSCRIBE a b c"   ... reads three values
    "B<: "                  B sends nothing and reads one value (a message delivered to it)
    "A!: ACL DELUSER me"    A sends it and reads until the server closes the connection
    "B!"                    B reads until the server closes it
    ("A", b"raw")           A sends raw bytes and reads one reply

Connections ``R`` and ``S`` connect from 127.0.0.2: Redis's protected mode
treats every address but 127.0.0.1 and ::1 as remote, so this is a remote client that never
leaves the loopback interface.

Fields that legitimately differ are rewritten on both sides (``normalize``): connection ids,
ACL LOG's ages and client descriptions, ACL CAT's hash-table order, ACL GENPASS's randomness.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable

import attrs
import pytest

from tests.interop.differential import TIMEOUT, _Conn, _parse_raw, encode_command, hello_id, servers_for

pytestmark = pytest.mark.interop

DEFAULT_PASSWORD = "pw"
# Connections made from 127.0.0.2: remote, for protected mode.
REMOTE = "RS"
# What a case's setup may give ``default``; reset restores it as Redis starts it.
RESET = [
    ["AUTH", "default", DEFAULT_PASSWORD],
    ["ACL", "SETUSER", "default", "resetpass", "nopass", "on", "allkeys", "allchannels", "+@all"],
    ["ACL", "LOG", "RESET"],
    ["CONFIG", "SET", "requirepass", "", "protected-mode", "yes", "acllog-max-len", "128",
     "acl-pubsub-default", "resetchannels"],
]


def _identity(data: bytes) -> bytes:
    return data


@attrs.frozen
class AclCase:
    name: str
    steps: tuple[str | tuple[str, bytes], ...]
    setup: tuple[str, ...] = ()
    normalize: Callable[[bytes], bytes] = _identity


# --- normalisers ----------------------------------------------------------------------------

def acl_log_fields(data: bytes) -> bytes:
    """ACL LOG: the age (a time) and the client description (ids, ports, buffer sizes differ)."""
    data = re.sub(rb"(\$11\r\nage-seconds\r\n)(\$\d+\r\n[^\r]*\r\n|,[^\r]*\r\n)", rb"\1<age>\r\n", data)
    return re.sub(rb"(\$11\r\nclient-info\r\n)\$\d+\r\n[^\r]*\r\n", rb"\1<client>\r\n", data)


def single_command_rules(data: bytes) -> bytes:
    """ACL GETUSER / LIST: the rules naming single commands, sorted.

    Redis describes a user's commands as ``+@all`` / ``-@all``, then categories (in a fixed
    order), then the commands still differing — in the order of its command table, a hash
    table seeded at random when it starts. Only which single-command rules appear is defined.
    """
    def sort_rules(match: re.Match) -> bytes:
        words = match.group(2).split(b" ")
        first = next((i for i, w in enumerate(words) if w[:1] in b"+-" and not w[1:2] == b"@" and i > 0), len(words))
        tail = sorted(words[first:], key=lambda w: w.lstrip(b"+-"))
        return match.group(1) + b" ".join(words[:first] + tail) + b"\r\n"
    return re.sub(rb"(\$\d+\r\n)((?:user |[+-]@all)[^\r]*)\r\n", sort_rules, data)


def sorted_bulks(data: bytes) -> bytes:
    """An array of bulk strings in sorted order (ACL CAT lists a hash table's order)."""
    match = re.fullmatch(rb"\*(\d+)\r\n(.*)", data, re.S)
    if match is None:
        return data
    items = re.findall(rb"\$\d+\r\n.*?\r\n", match.group(2), re.S)
    return b"*" + match.group(1) + b"\r\n" + b"".join(sorted(items))


def genpass_digits(data: bytes) -> bytes:
    """ACL GENPASS: random hex digits; only their count and alphabet are defined."""
    return re.sub(rb"\$(\d+)\r\n[0-9a-f]+\r\n", rb"$\1\r\n<hex>\r\n", data)


# --- the cases ---------------------------------------------------------------------------------

PASSWORD = ("ACL SETUSER default >pw",)
ALICE = ("ACL SETUSER alice on >secret +@pubsub -pubsub|numpat &news* +ping",)

CASES = [
    AclCase("noauth-before-auth", (
        "A: PING", "A: ECHO x", "A: SUBSCRIBE c", "A: PUBLISH c m", "A: CLIENT ID", "A: FOO", "A: ECHO",
        "A: CLIENT FOO", "A: ACL WHOAMI", "A: PING", "A: AUTH pw", "A: PING", "A: ACL WHOAMI",
    ), setup=PASSWORD),
    AclCase("wrongpass", (
        "A: AUTH bad", "A: AUTH default bad", "A: AUTH nobody pw", "A: PING", "A: AUTH default pw",
        "A: PING",
    ), setup=PASSWORD),
    AclCase("auth-arguments", (
        "A: AUTH", "A: AUTH a b c", "A: AUTH pw", "A: AUTH default pw", "A: AUTH alice secret",
        "A: ACL WHOAMI",
    ), setup=PASSWORD + ALICE),
    AclCase("auth-one-argument-without-password", ("A: AUTH x", "A: AUTH default anything", "A: ACL WHOAMI")),
    AclCase("disabled-user", ("A: AUTH bob pw", "A: ACL WHOAMI"), setup=("ACL SETUSER bob off >pw +@all",)),
    AclCase("hello-auth", (
        "A: HELLO", "A: HELLO 3", "A: HELLO 3 AUTH default bad", "A: HELLO 3 AUTH alice secret SETNAME n",
        "A: CLIENT GETNAME", "A: ACL WHOAMI",
    ), setup=PASSWORD + ("ACL SETUSER alice on >secret +@all",), normalize=hello_id),
    AclCase("hello-auth-syntax", ("A: HELLO 3 AUTH", "A: HELLO 3 AUTH alice", "A: HELLO 2 AUTH alice secret x",
                                  "A: HELLO 2 AUTH alice secret"),
            setup=PASSWORD + ("ACL SETUSER alice on >secret +@all",), normalize=hello_id),
    AclCase("noperm-command", (
        "A: AUTH alice secret", "A: PING", "A: ECHO x", "A: CLIENT ID", "A: PUBSUB NUMPAT", "A: PUBSUB CHANNELS",
        "A: ACL WHOAMI", "A: CONFIG GET timeout", "A: QUIT",
    ), setup=ALICE),
    AclCase("noperm-channel", (
        "A: AUTH alice secret", "A: PUBLISH news1 x", "A: PUBLISH other x", "A: SUBSCRIBE other news2",
        "A: SPUBLISH other x", "A: SSUBSCRIBE other",
    ), setup=ALICE),
    AclCase("channel-allowed-delivers", (
        "A: AUTH alice secret", "A: SUBSCRIBE news1", "B: PUBLISH news1 hi", "A<", "A: PSUBSCRIBE news*",
        "A: PSUBSCRIBE n*", "A: PING",
    ), setup=ALICE),
    AclCase("subscribed-context-after-acl", (
        "A: AUTH alice secret", "A: SUBSCRIBE news1", "A: PUBSUB NUMPAT", "A: PUBSUB CHANNELS", "A: PING",
    ), setup=ALICE),
    AclCase("client-kill-denied", (
        "A: AUTH ops pw", "A: CLIENT ID", "A: CLIENT LIST ID 1", "A: CLIENT KILL ID 999999",
        "A: CONFIG SET timeout 0",
    ), setup=("ACL SETUSER ops on >pw +@all -client|kill -config|set allchannels",),
       normalize=lambda data: re.sub(rb":\d+\r\n", b":<id>\r\n", data)),
    AclCase("getuser-list-users", (
        "A: ACL GETUSER alice", "A: ACL GETUSER default", "A: ACL GETUSER nosuch", "A: ACL LIST", "A: ACL USERS",
        "A: ACL GETUSER ops", "A: ACL DELUSER ops nosuch", "A: ACL DELUSER default", "A: ACL USERS",
    ), setup=ALICE + ("ACL SETUSER ops on #2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b "
                      "+@all -client|kill ~k* %R~ro* &a &b",), normalize=single_command_rules),
    AclCase("getuser-resp3", ("A: HELLO 3", "A: ACL GETUSER alice", "A: ACL GETUSER nosuch"),
            setup=ALICE, normalize=lambda data: single_command_rules(hello_id(data))),
    AclCase("setuser-rules-described", (
        "A: ACL SETUSER u1 &*", "A: ACL SETUSER u1 &x", "A: ACL SETUSER u2 ~* ~x",
        "A: ACL SETUSER u3 >p1 >p1 >p2 <p1", "A: ACL GETUSER u3", "A: ACL SETUSER u3 nopass",
        "A: ACL SETUSER u4 on +@all -@all +ping +client|kill -client +@pubsub -publish +publish",
        "A: ACL GETUSER u4", "A: ACL SETUSER u5 -@all +select|0 +select|1", "A: ACL SETUSER u6 reset",
        "A: ACL SETUSER u7 on skip-sanitize-payload +@all -client|kill", "A: ACL LIST",
    ), normalize=single_command_rules),
    AclCase("setuser-malformed-rules", (
        "A: ACL SETUSER u foo", "A: ACL SETUSER u +nosuch", "A: ACL SETUSER u +@nosuch", "A: ACL SETUSER u +client|",
        "A: ACL SETUSER u +client|id|x", "A: ACL SETUSER u +client|nosuch", "A: ACL SETUSER u -select|0",
        "A: ACL SETUSER u #abc", "A: ACL SETUSER u <nope", "A: ACL SETUSER u %X~f", "A: ACL SETUSER 'a b' on",
        "A: ACL SETUSER u on >ok +bad", "A: ACL GETUSER u", "A: ACL SETUSER", "A: ACL GETUSER", "A: ACL FOO",
        "A: ACL CAT a b", "A: ACL CAT nosuch", "A: ACL WHOAMI x",
    )),
    AclCase("acl-cat", ("A: ACL CAT", "A: ACL CAT pubsub", "A: ACL CAT PubSub"), normalize=sorted_bulks),
    AclCase("acl-help", ("A: ACL HELP",)),
    AclCase("acl-genpass", ("A: ACL GENPASS", "A: ACL GENPASS 1", "A: ACL GENPASS 5", "A: ACL GENPASS 4096",
                            "A: ACL GENPASS 0", "A: ACL GENPASS 4097", "A: ACL GENPASS x"),
            normalize=genpass_digits),
    AclCase("acl-dryrun", (
        "A: ACL DRYRUN alice publish news1 x", "A: ACL DRYRUN alice publish other x", "A: ACL DRYRUN alice echo x",
        "A: ACL DRYRUN alice pubsub numpat", "A: ACL DRYRUN alice psubscribe n*", "A: ACL DRYRUN nosuch ping",
        "A: ACL DRYRUN alice nosuch", "A: ACL DRYRUN alice publish x", "A: ACL DRYRUN alice client nosuch",
        "A: ACL DRYRUN alice client", "A: ACL DRYRUN alice auth x", "A: ACL DRYRUN alice ssubscribe news1 x",
        "A: ACL LOG -1", "A: ACL LOG 0", "A: ACL DELUSER",
    ), setup=ALICE),
    AclCase("acl-log", (
        "A: AUTH alice bad", "A: AUTH alice bad", "A: auth nobody x", "A: AUTH alice secret", "A: CLIENT ID",
        "A: PUBLISH other x", "A: PSUBSCRIBE n*", "B: ACL LOG", "B: ACL LOG 2", "B: ACL LOG x", "B: ACL LOG RESET",
        "B: ACL LOG",
    ), setup=ALICE, normalize=acl_log_fields),
    AclCase("acl-load-save-without-file", ("A: ACL LOAD", "A: ACL SAVE")),
    AclCase("revoked-channel-disconnects", (
        "A: AUTH alice secret", "A: SUBSCRIBE news1", "C: AUTH alice secret", "C: PING",
        "B: ACL SETUSER alice resetchannels &other", "A!", "C: PING", "B: PUBSUB NUMSUB news1",
    ), setup=ALICE),
    AclCase("kept-channel-stays", (
        "A: AUTH alice secret", "A: SUBSCRIBE news1", "B: ACL SETUSER alice &more -ping", "B: PUBLISH news1 x",
        "A<",
    ), setup=ALICE),
    AclCase("deleted-user-disconnects", (
        "A: AUTH alice secret", "A: PING", "B: ACL DELUSER alice", "A!",
    ), setup=ALICE),
    AclCase("auth-while-subscribed", ("A: SUBSCRIBE c", "A: AUTH x", "A: ACL WHOAMI", "A: UNSUBSCRIBE")),
    AclCase("client-kill-user", (
        "A: AUTH alice secret", "C: AUTH alice secret", "B: CLIENT KILL USER nosuch", "B: CLIENT KILL USER default",
        "B: CLIENT KILL USER alice", "A!", "C!",
    ), setup=("ACL SETUSER alice on >secret +@all",)),
    AclCase("reset-deauthenticates", ("A: AUTH pw", "A: PING", "A: RESET", "A: PING", "A: QUIT"),
            setup=PASSWORD),
    AclCase("client-list-shows-user", (
        "A: AUTH alice secret", "B: CLIENT LIST ID 0", "B: ACL WHOAMI",
    ), setup=("ACL SETUSER alice on >secret +@all",)),
    AclCase("config-security-settings", (
        "A: CONFIG GET protected-mode", "A: CONFIG SET protected-mode maybe", "A: CONFIG GET acllog-max-len",
        "A: CONFIG SET acllog-max-len -1", "A: CONFIG SET acllog-max-len x", "A: CONFIG SET acllog-max-len 1",
        "A: CONFIG GET acl-pubsub-default", "A: CONFIG SET acl-pubsub-default some",
        "A: CONFIG SET acl-pubsub-default allchannels", "A: ACL SETUSER fresh", "A: ACL GETUSER fresh",
        "A: CONFIG GET requirepass", "A: CONFIG SET requirepass pw", "A: CONFIG GET requirepass", "A: PING",
        "B: PING", "B: AUTH pw", "A: CONFIG SET requirepass ''", "C: PING",
    )),
    AclCase("acl-log-max-len", (
        "A: CONFIG SET acllog-max-len 2", "A: AUTH nobody a", "A: AUTH nobody b", "A: AUTH other c",
        "A: AUTH third d", "A: ACL LOG",
    ), normalize=acl_log_fields),
    AclCase("protected-mode-denied", ("R!",)),
    AclCase("protected-mode-off", ("A: CONFIG SET protected-mode no", "R: PING", "A: CONFIG SET protected-mode yes",
                                   "R: PING", "S!")),
    AclCase("protected-mode-password-lets-in", ("R: PING", "R: AUTH pw", "R: PING"), setup=PASSWORD),
]


# --- running ---------------------------------------------------------------------------------

class _Side:
    """One server's connections for one case, opened on first use."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.conns: dict[str, _Conn] = {}

    def conn(self, name: str) -> _Conn:
        if name not in self.conns:
            conn = _Conn(self.address, source="127.0.0.2" if name in REMOTE else None)
            self.conns[name] = conn
        return self.conns[name]

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()


def read_values(conn: _Conn, count: int) -> bytes:
    """Exactly ``count`` complete RESP values (within ``TIMEOUT``)."""
    deadline = time.monotonic() + TIMEOUT
    out = b""
    for _ in range(count):
        while True:
            try:
                _, end = _parse_raw(conn.buffer, 0)
                if end <= len(conn.buffer):
                    break
            except (ValueError, IndexError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"no complete reply within {TIMEOUT}s; got {conn.buffer!r}")
            chunk = conn.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed; got {conn.buffer!r}")
            conn.buffer += chunk
        out += conn.buffer[:end]
        conn.buffer = conn.buffer[end:]
    return out


def _parse_step(step: str | tuple[str, bytes]) -> tuple[str, bytes, int, bool]:
    """-> (connection, bytes to send, values to read, read until closed)."""
    if isinstance(step, tuple):
        return step[0], step[1], 1, False
    head, _, text = step.partition(":")
    closes = head.endswith("!")
    head = head.rstrip("!")
    if head.endswith("<"):
        name, count = head[:-1], 1
    else:
        match = re.fullmatch(r"([A-Z])(\d*)", head)
        assert match, f"bad step {step!r}"
        name, count = match.group(1), int(match.group(2) or 1)
    data = encode_command(shlex.split(text)) if text.strip() else b""
    return name, data, 0 if closes else count, closes


def _admin(address: tuple[str, int], commands: list[list[str]]) -> list[bytes]:
    conn = _Conn(address)
    try:
        replies = []
        for words in commands:
            conn.send(encode_command(words))
            replies.append(read_values(conn, 1))
        return replies
    finally:
        conn.close()


def reset_acl(address: tuple[str, int]) -> None:
    """Back to Redis's start: ``default`` open to all, no other user, an empty ACL LOG."""
    replies = _admin(address, [*RESET, ["ACL", "USERS"]])
    users = re.findall(rb"\$\d+\r\n([^\r]*)\r\n", replies[-1])
    others = [name.decode() for name in users if name != b"default"]
    if others:
        _admin(address, [["ACL", "DELUSER", *others]])


def run_acl_case(servers, case: AclCase) -> None:
    sides = {"redis": _Side(servers.redis), "dualmq": _Side(servers.dualmq)}
    try:
        for side in sides.values():
            for reply in _admin(side.address, [shlex.split(line) for line in case.setup]):
                assert reply == b"+OK\r\n", f"{case.name} setup on {side.address}: {reply!r}"
        for index, step in enumerate(case.steps):
            name, data, count, closes = _parse_step(step)
            outputs = {}
            for label, side in sides.items():
                conn = side.conn(name)
                if data:
                    conn.send(data)
                output = conn.read_until_closed() if closes else read_values(conn, count)
                outputs[label] = case.normalize(output)
            assert outputs["dualmq"] == outputs["redis"], (
                f"{case.name} step {index} {step!r}\n  redis : {outputs['redis']!r}\n  dualmq: {outputs['dualmq']!r}")
    finally:
        for side in sides.values():
            side.close()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    with servers_for(tmp_path_factory.mktemp("acl-differential")) as running:
        yield running


@pytest.mark.parametrize("case", [pytest.param(case, id=case.name) for case in CASES])
def test_same_bytes_as_redis(servers, case: AclCase) -> None:
    try:
        run_acl_case(servers, case)
    finally:
        reset_acl(servers.redis)
        reset_acl(servers.dualmq)
