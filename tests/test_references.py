"""Code, comments and docs point only to files in this repository and name no work items.

A comment that says "issue 28" or "(round 10)" sends the reader to a tracker or a diary this
repository does not hold; one that cites a file outside it (the maintainers' shared notes) or a
file that is gone (BENCHMARKS.md became docs/performance.md) sends them nowhere. Each says the
fact itself instead. `docs/specs.md` is generated from the tests' markers and `bench/last.json`
from `make bench`; they are read here like any other file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.once

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_DIRS = {
    ".git", ".venv", "node_modules", "__pycache__", "var",
    ".mypy_cache", ".ruff_cache", ".pytest_cache",
}  # fmt: skip
TEXT_SUFFIXES = {
    ".py", ".md", ".txt", ".html", ".po", ".toml", ".yml", ".yaml", ".sh", ".cfg", ".js",
    ".mjs", ".css", ".lua", ".json", ".ini", ".conf",
}  # fmt: skip
TEXT_NAMES = {"Makefile", "Dockerfile", "run"}

FORBIDDEN = (
    (re.compile(r"\b[Ii]ssues?\s+#?\d+\b"), "a numbered issue"),
    (re.compile(r"\b[Rr]ound \d+\b"), "a round of earlier work"),
    (re.compile(r"LIBRARY-NOTES|STYLE\.md|\.\./shared/"), "a file outside the repository"),
    # The one mention left is the git command that shows the page's history under its old name.
    (
        re.compile(r"BENCHMARKS\.md(?<!git log -- docs/performance\.md BENCHMARKS\.md)"),
        "a file that is gone",
    ),
)


def references(text: str) -> list[str]:
    """What `text` points to that a reader of this repository cannot follow."""
    return [
        f"{what}: {match.group(0)!r}"
        for pattern, what in FORBIDDEN
        for match in pattern.finditer(text)
    ]


def _text_files() -> list[Path]:
    """Every text file of the repository but this one, which names what it looks for."""
    files = []
    for directory, subdirectories, names in os.walk(ROOT):
        subdirectories[:] = [d for d in subdirectories if d not in SKIPPED_DIRS]
        for name in names:
            path = Path(directory) / name
            if path == Path(__file__).resolve():
                continue
            if path.suffix in TEXT_SUFFIXES or name in TEXT_NAMES:
                files.append(path)
    return files


def test_the_rule_finds_work_items_and_outside_files_and_lets_facts_through():
    facts = (
        "# The admin REST API at /api/v1/, on django-ninja (RFC 9457 problem details).\n"
        "# Issued 3 tokens; a round trip of 0.1 ms; `git log -- docs/performance.md BENCHMARKS.md`."
    )
    assert references(facts) == []
    pointers = (
        "# The admin REST API (issue 32).\n# Seen in round 10 (BENCHMARKS.md).\n"
        "# See LIBRARY-NOTES and ../shared/STYLE.md.\n"
    )
    found = references(pointers)
    assert any("numbered issue" in f for f in found)
    assert any("round of earlier work" in f for f in found)
    assert any("outside the repository" in f for f in found)
    assert any("gone" in f for f in found)


def test_no_file_of_the_repository_names_a_work_item_or_a_file_outside_it():
    offenders = {}
    for path in _text_files():
        found = references(path.read_text(encoding="utf-8", errors="replace"))
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}


ARCHITECTURE = ROOT / "ARCHITECTURE.md"
# A repository path in backticks: a file with its extension, or a folder with its slash. A row
# also names its own sub-folders alone (`upstream/` in federation's); only paths from the
# repository's root are checked.
NAMED_PATH = re.compile(r"`([a-z_][\w.-]*/(?:[\w.-]+/)*(?:[\w.-]+\.[a-z]+)?)`")


def test_architecture_names_files_that_exist_each_in_one_row():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    named = {p for p in NAMED_PATH.findall(text) if (ROOT / p.split("/")[0]).is_dir()}
    assert "oauth_clients/oidc/store.py" in named
    assert "accounts/" in named
    assert [path for path in sorted(named) if not (ROOT / path).exists()] == []
    # A module's row appears once: a merge that kept both sides of a row leaves two.
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    first_cells = [row.split("|")[1].strip() for row in rows]
    assert sorted({c for c in first_cells if first_cells.count(c) > 1}) == []
