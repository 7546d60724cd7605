"""The layering rules: which package may import which.

Walks every module's imports with ``ast`` (including imports inside functions) and fails on
any edge the layering forbids:

- ``wire`` imports only the standard library, attrs and codec libraries;
- ``broker`` (the core) imports neither ``modes`` nor ``dualmq``, and of ``wire`` only
  ``wire.kafka.batch``, the RecordBatch v2 format the log stores. Nor does it import trio,
  threads or a clock: it is single-threaded, hands the front-ends tickets to await, and is
  told the time (``now_ms``), so tests and hypothesis drive it deterministically;
- ``modes`` may import ``wire`` and ``broker`` but not ``dualmq``;
- ``dualmq`` imports ``wire`` only, except the composition roots, which may import anything.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = {"wire", "broker", "modes", "dualmq"}
CODEC_LIBRARIES = {"attrs", "crc32c", "cramjam", "lz4", "zstandard", "hiredis"}
COMPOSITION_ROOTS = {"dualmq/cli.py", "dualmq/embedded.py", "dualmq/__main__.py", "dualmq/daemon.py"}

FORBIDDEN = {
    "wire": {"broker", "modes", "dualmq"},
    "broker": {"modes", "dualmq"},
    "modes": {"dualmq"},
    "dualmq": {"broker", "modes"},
}
# The one part of ``wire`` the core may import: the log *is* Kafka's batch format.
CORE_WIRE_MODULES = {"wire.kafka.batch"}
# What the core must not import: event loops and threads (the front-ends own concurrency;
# the core hands out tickets and jobs) and clocks (time comes in as ``now_ms``).
CORE_FORBIDDEN = {
    "trio", "anyio", "asyncio", "threading", "_thread", "concurrent", "multiprocessing",
    "time", "datetime", "calendar", "zoneinfo",
}


def imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, dotted in full.

    ``from a.b import c`` counts as importing ``a.b.c`` when ``c`` is a module of this
    project, and as importing ``a.b`` otherwise (``c`` is a name defined in ``a.b``).
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                is_module = (ROOT / candidate.replace(".", "/")).with_suffix(".py").is_file() or (
                    ROOT / candidate.replace(".", "/") / "__init__.py").is_file()
                found.add(candidate if is_module else node.module)
    return found


def modules():
    for package in sorted(PROJECT):
        yield from sorted((ROOT / package).rglob("*.py"))


def test_every_package_exists() -> None:
    for package in PROJECT:
        assert (ROOT / package / "__init__.py").is_file(), package


def test_layering() -> None:
    violations = []
    for path in modules():
        relative = path.relative_to(ROOT).as_posix()
        if relative in COMPOSITION_ROOTS:
            continue
        package = relative.split("/")[0]
        for name in imported_top_levels(path):
            if name in FORBIDDEN[package]:
                violations.append(f"{relative} imports {name}")
            if package == "wire" and name not in PROJECT | CODEC_LIBRARIES | {"__future__"}:
                if name not in sys.stdlib_module_names:
                    violations.append(f"{relative} imports third-party {name} (wire/ allows stdlib, attrs, codecs)")
    assert violations == []


def core_violations(path: Path) -> list[str]:
    """What a core module imports that the core may not: a ``wire`` module other than the
    batch format, an event loop, threads, a clock."""
    wire = sorted(name for name in imported_modules(path)
                  if (name == "wire" or name.startswith("wire.")) and name not in CORE_WIRE_MODULES)
    return wire + sorted(imported_top_levels(path) & CORE_FORBIDDEN)


def test_core_imports_only_the_batch_format_and_no_trio_threads_or_clock() -> None:
    violations = [f"{path.relative_to(ROOT).as_posix()} imports {name}"
                  for path in sorted((ROOT / "broker").rglob("*.py")) for name in core_violations(path)]
    assert violations == []


def test_checker_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from wire.resp import requests\n")
    assert "wire" in imported_top_levels(bad)
    assert "wire.resp.requests" in imported_modules(bad)
    bad.write_text("from wire.kafka import records\nfrom wire.kafka.batch import BatchHeader\nimport wire\n")
    assert imported_modules(bad) == {"wire.kafka.records", "wire.kafka.batch", "wire"}
    assert core_violations(bad) == ["wire", "wire.kafka.records"]
    bad.write_text("from time import monotonic\nimport threading as t\nimport trio.lowlevel\n")
    assert core_violations(bad) == ["threading", "time", "trio"]
