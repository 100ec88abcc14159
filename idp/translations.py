"""The project's translation catalogues (locale/): refresh them, and check none lacks a string.

`python -m idp.translations update` runs `makemessages` over the project's own code (Python
modules, templates, emails) into locale/<lang>/LC_MESSAGES/django.po; translators then fill in
the new entries. `python -m idp.translations check` (`make check`, tests/test_translations.py)
runs the same `makemessages` into a temporary copy of locale/, so the working tree is never
touched, and fails when any entry there is untranslated or fuzzy (a string added or changed in
the code since the catalogues were last refreshed and translated), when a translation drops or
invents a placeholder, or when gettext's `msgfmt --check` refuses a catalogue.

Entries carry their file names without line numbers (`--add-location=file`): a translator sees
where a string is used, and moving code does not rewrite every catalogue.
allauth, Django's admin and Django's forms ship their own catalogues; they are not copied here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.test.utils import override_settings

# Directories that hold no page text of this project: virtualenv and data, tests, benchmarks,
# deployment files and the demo app, the developer guides, the catalogues themselves, and the
# static files, served as they are. makemessages writes a `NAME.html.py` beside every template it
# reads: run by `update` in the real tree, in static/ that file would appear to a collectstatic
# or the start-up check running at the same moment (`check` scans a copy: below).
IGNORED = [
    "var",
    "static",
    "staticfiles",
    "tests",
    "bench",
    "deploy",
    "docs",
    "locale",
    "node_modules",
]
MAKEMESSAGES_OPTIONS = {
    "all": True,
    "domain": "django",
    "extensions": ["html", "txt", "py"],
    "ignore_patterns": IGNORED,
    "add_location": "file",
    "no_obsolete": True,
    "verbosity": 0,
}
# %(name)s, %s, %d and {name}: what gettext's python-format and python-brace-format carry.
PLACEHOLDER = re.compile(r"%\([^)]+\)[#0 +-]*\d*(?:\.\d+)?[sdifr]|%[sdifr]|\{[A-Za-z_]\w*\}")


@dataclass
class Entry:
    """One message of a .po file (the header, msgid "", included)."""

    msgid: str = ""
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    context: str | None = None

    @property
    def fuzzy(self) -> bool:
        return "fuzzy" in self.flags

    @property
    def translated(self) -> bool:
        return bool(self.msgstr) and all(self.msgstr.values())


# The escapes xgettext and msgmerge write in a .po string (a C string literal).
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b"}
ESCAPE = re.compile(r"\\(.)")
KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(".*")$')


def unquote(literal: str) -> str:
    if len(literal) < 2 or not (literal.startswith('"') and literal.endswith('"')):
        raise ValueError(f"not a .po string: {literal!r}")
    return ESCAPE.sub(lambda m: ESCAPES.get(m.group(1), m.group(0)), literal[1:-1])


def parse_entry(block: list[str]) -> Entry | None:
    """One blank-line-separated block: comments and flags, then keywords with continuations."""
    entry = Entry()
    current: tuple[str, int] | None = None
    for line in block:
        if line.startswith("#~"):
            return None  # obsolete: no longer in the code
        if line.startswith("#,"):
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
            continue
        if line.startswith("#"):
            continue
        if line.startswith('"'):
            if current is None:
                raise ValueError(f"continuation line without a keyword: {line!r}")
            text = unquote(line)
        else:
            match = KEYWORD.match(line)
            if match is None:
                raise ValueError(f"unexpected line in a .po file: {line!r}")
            keyword, index, literal = match.groups()
            current = ("msgstr" if keyword.startswith("msgstr") else keyword, int(index or 0))
            text = unquote(literal)
            if current[0] == "msgstr":
                entry.msgstr[current[1]] = ""
            elif current[0] == "msgid_plural":
                entry.msgid_plural = ""
            elif current[0] == "msgctxt":
                entry.context = ""
        name, index = current
        if name == "msgctxt":
            entry.context = (entry.context or "") + text
        elif name == "msgid":
            entry.msgid += text
        elif name == "msgid_plural":
            entry.msgid_plural = (entry.msgid_plural or "") + text
        else:
            entry.msgstr[index] += text
    return entry if current is not None else None


def parse_po(text: str) -> list[Entry]:
    """The entries of a .po file as xgettext and msgmerge write it (one blank line between
    entries), obsolete ones (#~) left out; the header is the entry whose msgid is ""."""
    entries, block = [], []
    for line in [*text.splitlines(), ""]:
        line = line.strip()
        if line:
            block.append(line)
            continue
        if block:
            entry = parse_entry(block)
            if entry is not None:
                entries.append(entry)
            block = []
    return entries


def placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


def problems_in(po_file: Path) -> list[str]:
    """What is wrong with one catalogue: untranslated, fuzzy, placeholders changed."""
    found = []
    for entry in parse_po(po_file.read_text(encoding="utf-8")):
        if not entry.msgid:
            if entry.fuzzy:
                found.append(f"{po_file}: the header is marked fuzzy")
            continue
        label = f"{po_file}: {entry.msgid!r}"
        if entry.fuzzy:
            found.append(f"{label} is fuzzy (changed in the code: check and unmark it)")
        if not entry.translated:
            found.append(f"{label} is not translated")
            continue
        expected = placeholders(entry.msgid)
        plural_expected = placeholders(entry.msgid_plural or entry.msgid)
        for index, text in entry.msgstr.items():
            # A plural form may leave out the count (Japanese "1 件" vs "%(count)s 件" is fine
            # either way), but must never name a placeholder the code does not pass.
            allowed = set(expected) | set(plural_expected)
            if entry.msgid_plural is None and placeholders(text) != expected:
                found.append(f"{label}: placeholders {placeholders(text)} instead of {expected}")
            elif entry.msgid_plural is not None and not set(placeholders(text)) <= allowed:
                found.append(f"{label}[{index}]: unknown placeholders in {text!r}")
    return found


def msgfmt_problems(po_file: Path) -> list[str]:
    """gettext's own checks: format strings, header, plural forms (the compile step's)."""
    # A fixed command on our own file; msgfmt is found on PATH as `make` finds it.
    result = subprocess.run(  # noqa: S603
        ["msgfmt", "--check", "--output-file=/dev/null", str(po_file)],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    return [] if result.returncode == 0 else [f"{po_file}: msgfmt: {result.stderr.strip()}"]


def catalogues(locale_dir: Path) -> list[Path]:
    return sorted(locale_dir.glob("*/LC_MESSAGES/django.po"))


def update(locale_dir: Path | None = None, *, root: Path | None = None) -> None:
    """makemessages over the code under `root` (default: the project) for every language under
    locale_dir (default: LOCALE_PATHS[0])."""
    locale_dir = locale_dir or Path(settings.LOCALE_PATHS[0])
    previous = Path.cwd()
    # makemessages scans the current directory, and writes to ./locale whenever it exists.
    os.chdir(root or settings.BASE_DIR)
    try:
        with override_settings(LOCALE_PATHS=[str(locale_dir)]):
            call_command("makemessages", **MAKEMESSAGES_OPTIONS)
    finally:
        os.chdir(previous)


def check(locale_dir: Path | None = None) -> list[str]:
    """Every problem of the catalogues as the code stands now (none: an empty list).

    makemessages always writes into the scanned tree's own locale/, and a `NAME.html.py`
    beside every template it reads (deleting it afterwards), so it scans a stand-in project: a
    temporary copy of the code it reads and of the catalogues. Linked instead of copied, two
    checks at once (`make check` beside the suite's tests/test_translations.py) would delete
    each other's files mid-scan.
    """
    locale_dir = locale_dir or Path(settings.LOCALE_PATHS[0])
    po_files = catalogues(locale_dir)
    if not po_files:
        return [f"{locale_dir}: no catalogues"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        skipped = shutil.ignore_patterns("__pycache__", "*.pyc", "*.mo", "node_modules")
        for entry in Path(settings.BASE_DIR).iterdir():
            if entry.name in IGNORED or entry.name.startswith("."):
                continue  # makemessages would not read it (MAKEMESSAGES_OPTIONS)
            if entry.is_dir():
                shutil.copytree(entry, root / entry.name, ignore=skipped)
            else:
                shutil.copy2(entry, root / entry.name)
        copy = root / "locale"
        shutil.copytree(locale_dir, copy, ignore=shutil.ignore_patterns("*.mo"))
        update(copy, root=root)
        found = []
        for po_file in catalogues(copy):
            found += problems_in(po_file) + msgfmt_problems(po_file)
        return [line.replace(str(copy), str(locale_dir)) for line in found]


def main(argv: list[str]) -> int:
    import django

    django.setup()
    if argv == ["update"]:
        update()
        return 0
    if argv == ["check"]:
        found = check()
        for line in found:
            print(line, file=sys.stderr)
        if found:
            print(
                f"{len(found)} translation problem(s): run `make messages`, translate the new "
                "entries in locale/*/LC_MESSAGES/django.po, remove their fuzzy flags.",
                file=sys.stderr,
            )
        return 1 if found else 0
    print("usage: python -m idp.translations update|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "idp.settings")
    sys.exit(main(sys.argv[1:]))
