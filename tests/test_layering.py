"""Enforce the layering: which package may import which, and no import cycles.

Walks every module's imports with ``ast`` (including imports inside functions and under
``if TYPE_CHECKING:``: an import moved into a function to dodge a cycle is still a cycle)
and fails on any edge the layering forbids:

- ``wire`` imports only the standard library, attrs and codec libraries;
- ``broker`` (the core) imports neither ``modes`` nor ``dualmq``, and of ``wire`` only
  ``wire.kafka.batch``, the RecordBatch v2 format the log stores. Nor does it import trio,
  threads or a clock: it is single-threaded, hands the front-ends tickets to await, and is
  told the time (``now_ms``), so tests and hypothesis drive it deterministically;
- ``modes`` may import ``wire`` and ``broker`` but not ``dualmq``;
- ``dualmq`` imports ``wire`` only, except the composition roots, which may import anything;
- the SDK packages ``dualmq.pull`` and ``dualmq.push`` are entered through their
  ``__init__`` only: no other project module imports one of their inner modules;
- no two modules depend on each other, directly or through others (a cycle), in any of
  ``broker``, ``modes``, ``wire`` and ``dualmq``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = {"wire", "broker", "modes", "dualmq"}
CODEC_LIBRARIES = {"attrs", "crc32c", "cramjam", "lz4", "zstandard", "hiredis"}
# A path ending in "/" names a whole package.
COMPOSITION_ROOTS = {"dualmq/cli/", "dualmq/embedded.py", "dualmq/__main__.py", "dualmq/daemon.py"}

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


def imported_dotted(path: Path) -> set[str]:
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


def core_violations(path: Path) -> list[str]:
    """What a core module imports that the core may not: a ``wire`` module other than the
    batch format, an event loop, threads, a clock."""
    wire = sorted(name for name in imported_dotted(path)
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
    assert "wire.resp.requests" in imported_dotted(bad)
    bad.write_text("from wire.kafka import records\nfrom wire.kafka.batch import BatchHeader\nimport wire\n")
    assert imported_dotted(bad) == {"wire.kafka.records", "wire.kafka.batch", "wire"}
    assert core_violations(bad) == ["wire", "wire.kafka.records"]
    bad.write_text("from time import monotonic\nimport threading as t\nimport trio.lowlevel\n")
    assert core_violations(bad) == ["threading", "time", "trio"]


# --- module-level import graph and cycles ----------------------------------------------------------

# Cycles that exist and are being removed elsewhere; each entry must still be a cycle (so a
# fixed one is taken off the list and cannot come back unnoticed). Never add to this list.
KNOWN_CYCLES: list[frozenset[str]] = []

# Packages whose inner modules are private: the rest of the project imports the package only.
SEALED_PACKAGES = ("dualmq.pull", "dualmq.push")


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``packages`` under ``root``."""
    return {module_name(root, path): path for package in sorted(packages)
            for path in sorted((root / package).rglob("*.py"))}


def imported_modules(name: str, path: Path, known: Mapping[str, Path]) -> set[str]:
    """The project modules that module ``name`` imports, anywhere in its file.

    ``from package import name`` counts as importing the submodule ``package.name`` when
    that is a module, else as importing ``package`` itself. Importing a submodule does not
    count as importing its parent packages: every ``__init__`` that re-exports its modules
    would otherwise form a "cycle" with each of them.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: "from . import x", "from ..a import b"
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in known:
                    found.add(submodule)
                elif source in known:
                    found.add(source)
    found.discard(name)
    return found


def import_graph(root: Path, packages: Iterable[str]) -> dict[str, set[str]]:
    known = project_modules(root, packages)
    return {name: imported_modules(name, path, known) for name, path in known.items()}


def import_cycles(graph: Mapping[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm).

    Every module in such a component reaches every other through imports: each one is a
    cycle, however many modules it spans. Iterative, so a deep graph cannot hit the
    recursion limit.
    """
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[frozenset[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = lowlink[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = lowlink[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph.get(target, ())))))
                elif target in on_stack:
                    lowlink[node] = min(lowlink[node], index[target])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                lowlink[parent] = min(lowlink[parent], lowlink[node])
            if lowlink[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(frozenset(component))
    return cycles


def describe(cycle: frozenset[str], graph: Mapping[str, set[str]]) -> str:
    edges = [f"{a} -> {b}" for a in sorted(cycle) for b in sorted(graph[a] & cycle)]
    return "{" + ", ".join(sorted(cycle)) + "}: " + "; ".join(edges)


def test_no_import_cycles() -> None:
    graph = import_graph(ROOT, PROJECT)
    cycles = import_cycles(graph)
    new = [describe(cycle, graph) for cycle in cycles if cycle not in KNOWN_CYCLES]
    assert new == [], "import cycles (break them; do not hide them in a function):\n" + "\n".join(new)
    fixed = [sorted(cycle) for cycle in KNOWN_CYCLES if cycle not in cycles]
    assert fixed == [], f"no longer cycles: remove them from KNOWN_CYCLES: {fixed}"


def test_sdk_packages_are_entered_through_their_init() -> None:
    graph = import_graph(ROOT, PROJECT)
    violations = []
    for importer, imported in sorted(graph.items()):
        for target in sorted(imported):
            for sealed in SEALED_PACKAGES:
                inside = target.startswith(sealed + ".")
                if inside and not importer.startswith(sealed + ".") and importer != sealed:
                    violations.append(f"{importer} imports {target} (import it from {sealed})")
    assert violations == []


def test_cycle_finder_sees_cycles_through_function_level_and_package_imports(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from pkg.a import A\n")
    (package / "a.py").write_text("from pkg import b\nA = 1\n")
    (package / "b.py").write_text("def later():\n    from pkg.sub import c\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "c.py").write_text("from ..a import A\n")    # relative, back to a
    (package / "d.py").write_text("import pkg.a\n")                  # imports into the cycle only
    graph = import_graph(tmp_path, ["pkg"])
    assert graph["pkg.b"] == {"pkg.sub.c"} and graph["pkg.sub.c"] == {"pkg.a"}
    assert import_cycles(graph) == [frozenset({"pkg.a", "pkg.b", "pkg.sub.c"})]
    (package / "b.py").write_text("")
    assert import_cycles(import_graph(tmp_path, ["pkg"])) == []
