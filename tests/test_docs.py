"""Citations of ``docs/`` stay true: every ``docs/<file>.md#<anchor>`` the project cites exists.

Code comments explain *why* by pointing at a section of the project's own docs (users have
those, unlike the team's internal notes). A heading renamed or a file moved would silently turn
such a pointer into a dead end; this test turns it into a failure naming the citation.
Anchors are computed the way GitHub renders Markdown headings: lower case, punctuation other
than ``-`` and ``_`` dropped, spaces turned into ``-``.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CITATION = re.compile(r"docs/([A-Za-z0-9_-]+\.md)(?:#([a-z0-9_-]+))?")
SEARCHED = ("broker", "modes", "wire", "dualmq", "tests", "bench", "examples", "docs")


def anchor(heading: str) -> str:
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors_of(doc: Path) -> set[str]:
    found = set()
    in_code = False
    for line in doc.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            found.add(anchor(line.lstrip("#")))
    return found


def citations() -> list[tuple[str, str, str | None]]:
    cited = []
    files = [ROOT / "README.md"]
    for top in SEARCHED:
        files += [p for p in (ROOT / top).rglob("*") if p.suffix in (".py", ".md")]
    for path in files:
        for match in CITATION.finditer(path.read_text(errors="replace")):
            cited.append((path.relative_to(ROOT).as_posix(), match.group(1), match.group(2)))
    return cited


def test_anchor_follows_githubs_rule() -> None:
    assert anchor("PUBLISH's receiver count") == "publishs-receiver-count"
    assert anchor("Check-then-parse and size limits") == "check-then-parse-and-size-limits"
    assert anchor("CLIENT, INFO, CONFIG and COMMAND") == "client-info-config-and-command"


def test_every_cited_doc_and_section_exists() -> None:
    cited = citations()
    assert cited, "no docs/ citation found at all: the search itself is broken"
    broken = []
    for where, name, section in cited:
        doc = ROOT / "docs" / name
        if not doc.is_file():
            broken.append(f"{where}: docs/{name} does not exist")
        elif section is not None and section not in anchors_of(doc):
            broken.append(f"{where}: docs/{name} has no section #{section}")
    assert broken == []


def test_architecture_tree_matches_the_modules() -> None:
    """docs/architecture.md's tree is what the module docstrings say today."""
    from tests.architecture_tree import committed, tree

    assert committed() == tree(), "run: python tests/architecture_tree.py --write"


# A backticked path into one of the project's folders, e.g. `broker/log/segment.py` or `dualmq/cli/`.
PATH_IN_BACKTICKS = re.compile(r"`((?:broker|modes|wire|dualmq|examples|bench|tests|docs)/[A-Za-z0-9_./-]*)`")


def test_every_path_the_readme_and_docs_name_exists() -> None:
    """The README's map and the docs point at files that exist (a move updates them too)."""
    missing = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for match in PATH_IN_BACKTICKS.finditer(doc.read_text()):
            path = match.group(1).rstrip(".")
            if "*" not in path and not (ROOT / path).exists():
                missing.append(f"{doc.name}: {path}")
    assert missing == []
