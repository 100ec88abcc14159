"""The guides in docs/ show the tested snippet files verbatim, and every snippet is shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.conftest import DOCS_DIR, ROOT, SNIPPETS_DIR

SNIPPET_BLOCK = re.compile(r"<!-- snippet: (?P<path>\S+) -->\n```\w+\n(?P<body>.*?)\n```", re.S)
GUIDES = [
    "README.md",
    "button.md",
    "demo.md",
    "guides/django.md",
    "guides/oidc-libraries.md",
    "guides/spa.md",
    "guides/machine-to-machine.md",
    "guides/device-flow.md",
    "guides/resource-server.md",
    "guides/saml-generic.md",
    "guides/saml-django.md",
    "guides/saml-node.md",
    "guides/admin-api.md",
    "guides/upstream-providers.md",
    "guides/scim.md",
]


def included_snippets() -> dict[Path, list[tuple[Path, str]]]:
    found: dict[Path, list[tuple[Path, str]]] = {}
    for guide in DOCS_DIR.rglob("*.md"):
        for match in SNIPPET_BLOCK.finditer(guide.read_text()):
            path = (guide.parent / match["path"]).resolve()
            found.setdefault(path, []).append((guide, match["body"]))
    return found


def test_every_guide_exists():
    assert [name for name in GUIDES if not (DOCS_DIR / name).is_file()] == []


def test_guides_show_each_snippet_file_exactly_as_tested():
    found = included_snippets()
    assert found, "the guides include snippets"
    for path, uses in found.items():
        assert path.is_file(), path
        for guide, body in uses:
            assert body == path.read_text().rstrip("\n"), (
                f"{guide.relative_to(ROOT)} shows an outdated copy of {path.relative_to(ROOT)}"
            )


def test_every_snippet_file_is_shown_in_a_guide():
    shown = set(included_snippets())
    snippets = {path.resolve() for path in SNIPPETS_DIR.iterdir() if path.suffix in {".py", ".mjs"}}
    assert snippets - shown == set()


@pytest.mark.parametrize("guide", GUIDES)
def test_relative_links_in_the_guides_resolve(guide):
    path = DOCS_DIR / guide
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
        if "://" in target:
            continue
        assert (path.parent / target).exists(), f"{guide}: broken link {target}"
