"""Every command the README and ``examples/10_real_tools.md`` tell a reader to type works as written
from a fresh clone, where nothing is installed but what ``make run`` / ``make install`` put in ``.venv``.

The commands are taken from the pages themselves: every line of a ``sh`` block, every ``$ `` line of
a ``console`` block, and every inline code span that starts like a command (``.venv/bin/``,
``make``, ``python``, ``pip``, ``dualmq ... --flag``). Each one is checked against what really
exists — a Makefile target, a program the venv will hold, a file of the repository, a subcommand
and options the ``dualmq`` parser accepts — and the ``--help`` ones are run. A bare ``python
examples/...`` (which fails with "No module named dualmq" outside the venv) is refused, and so is
any program the test does not know, so a new kind of command gets looked at.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib

import pytest

from dualmq.cli import build_parser
from tests.examples.helpers import REPO

PAGES = [REPO / "README.md", REPO / "examples" / "10_real_tools.md"]
# Tools a reader installs from their system's packages (the pages say which), and shell builtins.
SYSTEM_TOOLS = {"redis-cli", "redis-benchmark", "kcat", "etcd", "printf", "echo", "sleep", "kill", "cat", "export"}
# What ``make install`` puts in .venv/bin: the interpreter, pip, and the project's console scripts.
VENV_PROGRAMS = {"python", "pip"} | set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_INLINE = re.compile(r"`([^`\n]+)`")
_COMMAND_START = re.compile(r"^(\.venv/|make\b|python3?\b|pip\b|dualmq \w+.* -)")


def commands(text: str) -> list[str]:
    """The command lines of one page (see the module docstring)."""
    found = []
    for language, body in _FENCE.findall(text):
        for line in body.splitlines():
            if language == "sh" and line.strip() and not line.lstrip().startswith("#"):
                found.append(line)
            elif language == "console" and line.startswith("$ "):
                found.append(line[2:])
    prose = _FENCE.sub("", text)
    found += [span for span in _INLINE.findall(prose) if _COMMAND_START.match(span)]
    return found


# The pages' shell variables, as the reader sets them (10_real_tools.md: export RESP_PORT=6379 ...).
PAGE_VARIABLES = {"KAFKA_PORT": "9092", "RESP_PORT": "6379"}


def simple_commands(line: str) -> list[list[str]]:
    """The words of each command of a shell line: split at ``|``, ``&&``, ``;`` and ``&``, comments
    dropped, the pages' ``$VARIABLES`` replaced by the values the reader set."""
    line = re.sub(r"\$(\w+)", lambda m: PAGE_VARIABLES.get(m[1], m[1]), line)
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    pipeline: list[list[str]] = [[]]
    for token in lexer:
        if token.strip("|&;") == "":
            pipeline.append([])
        else:
            pipeline[-1].append(token)
    return [words for words in pipeline if words]


def make_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M))


def problems_with(words: list[str]) -> list[str]:
    """What would stop ``words`` from running as written in a fresh clone ([] if nothing)."""
    program, args = words[0], words[1:]
    if "=" in program:  # VAR=value command ...
        return problems_with(args) if args else []
    if program == "make":
        return [f"make {target}: no such Makefile target" for target in args
                if not target.startswith("-") and "=" not in target and target not in make_targets()]
    if program.startswith(".venv/bin/"):
        name = program.removeprefix(".venv/bin/")
        if name not in VENV_PROGRAMS:
            return [f"{program}: make install puts no {name} in .venv/bin"]
        if name == "python" and args and not args[0].startswith("-") and not (REPO / args[0]).is_file():
            return [f"{program} {args[0]}: no such file in the repository"]
        if name == "dualmq":
            return dualmq_problems(args)
        return []
    if program in ("python", "python3", "pip", "dualmq"):
        return [f"{' '.join(words)}: '{program}' is not on a fresh clone's PATH; write .venv/bin/{program}"]
    if program in SYSTEM_TOOLS:
        return []
    return [f"{program}: a program this test does not know; is it installed on a fresh machine?"]


def dualmq_problems(args: list[str]) -> list[str]:
    # Optional parts of a synopsis ("[--config FILE]") are left out; placeholders are plain words.
    argv, optional = [], False
    for word in args:
        optional = optional or word.startswith("[")
        if not optional:
            argv.append(word)
        optional = optional and not word.endswith("]")
    try:
        build_parser().parse_args(argv)
    except SystemExit as exit_:
        if exit_.code != 0:  # --help exits 0
            return [f"dualmq {' '.join(args)}: the dualmq parser refuses it"]
    return []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_of_the_page_runs_as_written_from_a_fresh_clone(page, capsys) -> None:
    lines = commands(page.read_text())
    assert lines, f"{page.name}: no commands found (is the extraction still right?)"
    problems = [f"{line!r}: {problem}" for line in lines for words in simple_commands(line)
                for problem in problems_with(words)]
    capsys.readouterr()  # --help output of the parser checks
    assert problems == []


def test_the_readme_teaches_the_venv_commands_it_is_checked_for() -> None:
    readme = commands((REPO / "README.md").read_text())
    assert "make run" in readme and "make test" in readme  # the two quick-start commands, unchanged
    assert ".venv/bin/python examples/02_late_subscriber.py" in readme
    assert any(line.startswith(".venv/bin/dualmq compare") for line in readme)


def test_the_checker_refuses_what_fails_on_a_fresh_clone() -> None:
    assert problems_with(["python", "examples/02_late_subscriber.py"])
    assert problems_with([".venv/bin/python", "examples/99_missing.py"])
    assert problems_with([".venv/bin/dualmq", "consume", "--no-such-flag"])
    assert problems_with(["make", "no-such-target"])
    assert problems_with(["curl", "http://example.com"])
    assert problems_with([".venv/bin/dualmq", "check", "--data-dir", "DIR", "[--config", "FILE]"]) == []


@pytest.mark.parametrize("line", sorted({line for page in PAGES for line in commands(page.read_text())
                                         if line.startswith(".venv/bin/dualmq") and "--help" in line}))
def test_the_help_commands_run(line: str) -> None:
    args = shlex.split(line)[1:]
    done = subprocess.run([sys.executable, "-m", "dualmq", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("usage: dualmq"), done.stderr
