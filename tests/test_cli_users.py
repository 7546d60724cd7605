"""``dualmq users add`` / ``users list``: push-mode users written without hand-editing, hashed.

Each added user is read back by what the broker itself uses at start (``build_acl``), so the
test proves the file loads, the password works and the plain password was never written.
"""

from __future__ import annotations

import subprocess
import sys

from broker.config import BrokerConfig
from modes.push.commands.acl import build_acl


def dualmq(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dualmq", *args], capture_output=True, text=True, timeout=30,
                          input=stdin)


def test_add_writes_a_hashed_resp_users_table(tmp_path) -> None:
    config = tmp_path / "dualmq.toml"
    config.write_text('# my broker\n[resp]\nrequirepass = "door"\n')
    result = dualmq("users", "add", "alice", "--mode", "push", "--config", str(config),
                    "--rules", "on +@pubsub &news.*", stdin="alice-Pass-1\n")
    assert result.returncode == 0, result.stderr
    text = config.read_text()
    assert text.startswith("# my broker\n") and "[[resp.users]]" in text and "alice-Pass-1" not in text
    acl = build_acl(BrokerConfig.from_toml(config).resp)
    assert acl.authenticate("alice", b"alice-Pass-1") is not None
    assert acl.authenticate("alice", b"wrong") is None
    assert acl.users["alice"].may_use_channel(b"news.x", False) and not acl.users["alice"].may_use_channel(b"x", False)
    listing = dualmq("users", "list", "--mode", "push", "--config", str(config))
    assert "user alice on #" in listing.stdout and "user default on #" in listing.stdout


def test_add_appends_to_the_acl_file_when_the_config_names_one(tmp_path) -> None:
    aclfile = tmp_path / "users.acl"
    aclfile.write_text("user ops on nopass +@all allchannels\n")
    config = tmp_path / "dualmq.toml"
    config.write_text(f'[resp]\naclfile = "{aclfile}"\n')
    result = dualmq("users", "add", "bob", "--mode", "push", "--config", str(config), stdin="bob-Pass-2\n")
    assert result.returncode == 0, result.stderr
    lines = aclfile.read_text().splitlines()
    assert lines[0] == "user ops on nopass +@all allchannels" and lines[1].startswith("user bob on #")
    assert "bob-Pass-2" not in aclfile.read_text() and "bob" not in config.read_text()
    assert build_acl(BrokerConfig.from_toml(config).resp).authenticate("bob", b"bob-Pass-2") is not None


def test_refusals_write_nothing(tmp_path) -> None:
    config = tmp_path / "dualmq.toml"
    config.write_text('[[resp.users]]\nname = "alice"\nrules = "on nopass"\n')
    before = config.read_text()
    again = dualmq("users", "add", "alice", "--mode", "push", "--config", str(config), stdin="x\n")
    assert again.returncode == 1 and "already exists" in again.stderr
    bad_rule = dualmq("users", "add", "carol", "--mode", "push", "--config", str(config), "--rules", "on +nosuch",
                      stdin="x\n")
    assert bad_rule.returncode == 1 and "'+nosuch': Unknown command or category name in ACL" in bad_rule.stderr
    empty = dualmq("users", "add", "dave", "--mode", "push", "--config", str(config), stdin="\n")
    assert empty.returncode == 1 and "empty password" in empty.stderr
    assert config.read_text() == before


def test_nopass_user_needs_no_password(tmp_path) -> None:
    config = tmp_path / "dualmq.toml"
    config.write_text("")
    result = dualmq("users", "add", "guest", "--mode", "push", "--config", str(config), "--nopass",
                    "--rules", "on +subscribe &public")
    assert result.returncode == 0, result.stderr
    assert build_acl(BrokerConfig.from_toml(config).resp).authenticate("guest", b"anything") is not None
