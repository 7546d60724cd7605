"""Enforce DESIGN.md §2: which top-level package may import which.

Walks every module's imports with ``ast`` (including imports inside functions) and fails on
any edge the layering forbids:

- ``wire`` imports only the standard library, attrs and codec libraries;
- ``broker`` imports neither ``wire`` nor ``modes`` nor ``dualmq``;
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
# A path ending in "/" names a whole package.
COMPOSITION_ROOTS = {"dualmq/cli/", "dualmq/embedded.py", "dualmq/__main__.py", "broker/daemon.py"}

FORBIDDEN = {
    "wire": {"broker", "modes", "dualmq"},
    "broker": {"wire", "modes", "dualmq"},
    "modes": {"dualmq"},
    "dualmq": {"broker", "modes"},
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


def is_composition_root(relative: str) -> bool:
    return any(relative == root or (root.endswith("/") and relative.startswith(root)) for root in COMPOSITION_ROOTS)


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
        if is_composition_root(relative):
            continue
        package = relative.split("/")[0]
        for name in imported_top_levels(path):
            if name in FORBIDDEN[package]:
                violations.append(f"{relative} imports {name}")
            if package == "wire" and name not in PROJECT | CODEC_LIBRARIES | {"__future__"}:
                if name not in sys.stdlib_module_names:
                    violations.append(f"{relative} imports third-party {name} (wire/ allows stdlib, attrs, codecs)")
    assert violations == []


def test_checker_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from wire.resp import requests\n")
    assert "wire" in imported_top_levels(bad)
