"""Every string of the code is translated in every language (the check `make check` runs).

idp.translations runs makemessages into a temporary copy of locale/ and reports untranslated
and fuzzy entries, changed placeholders and msgfmt's refusals; the negative tests below prove
it reports each of them.
"""

from __future__ import annotations

import gettext
from pathlib import Path

import pytest
from django.conf import settings

from idp import translations

pytestmark = pytest.mark.once

LANGUAGES = ["de", "es", "fr", "ja"]
HEADER = """msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\\n"
"""


def write_po(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "django.po"
    path.write_text(HEADER + "\n" + body, encoding="utf-8")
    return path


def test_every_language_has_a_catalogue():
    locale_dir = Path(settings.LOCALE_PATHS[0])

    assert sorted(p.parent.parent.name for p in translations.catalogues(locale_dir)) == LANGUAGES


def test_the_catalogues_translate_every_string_of_the_code():
    assert translations.check() == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogue_is_the_po_file(language):
    """Django reads the .mo (`make install` compiles it): it must say what the .po says."""
    po_file = Path(settings.LOCALE_PATHS[0]) / language / "LC_MESSAGES" / "django.po"
    compiled = gettext.GNUTranslations(po_file.with_suffix(".mo").open("rb"))

    for entry in translations.parse_po(po_file.read_text(encoding="utf-8")):
        if entry.msgid and entry.msgid_plural is None:
            assert compiled.gettext(entry.msgid) == entry.msgstr[0], entry.msgid
        elif entry.msgid:
            assert compiled.ngettext(entry.msgid, entry.msgid_plural, 1) == entry.msgstr[0]


def test_a_translated_catalogue_has_no_problems(tmp_path):
    po_file = write_po(
        tmp_path,
        '#, python-format\nmsgid "Hello %(name)s"\nmsgstr "Hallo %(name)s"\n\n'
        '#, python-format\nmsgid "%(count)d app"\nmsgid_plural "%(count)d apps"\n'
        'msgstr[0] "%(count)d App"\nmsgstr[1] "%(count)d Apps"\n\n'
        '#~ msgid "Removed from the code"\n#~ msgstr ""\n',
    )

    assert translations.problems_in(po_file) == []
    assert translations.msgfmt_problems(po_file) == []


def test_an_untranslated_string_is_reported(tmp_path):
    po_file = write_po(tmp_path, 'msgid "New in the code"\nmsgstr ""\n')

    assert translations.problems_in(po_file) == [f"{po_file}: 'New in the code' is not translated"]


def test_a_missing_plural_form_is_reported(tmp_path):
    po_file = write_po(
        tmp_path,
        'msgid "one app"\nmsgid_plural "%(count)d apps"\nmsgstr[0] "eine App"\nmsgstr[1] ""\n',
    )

    assert translations.problems_in(po_file) == [f"{po_file}: 'one app' is not translated"]


def test_a_fuzzy_string_is_reported(tmp_path):
    po_file = write_po(
        tmp_path,
        '#, fuzzy\n#| msgid "Sign in now"\nmsgid "Sign in"\nmsgstr "Jetzt anmelden"\n',
    )

    assert translations.problems_in(po_file) == [
        f"{po_file}: 'Sign in' is fuzzy (changed in the code: check and unmark it)"
    ]


def test_a_changed_placeholder_is_reported(tmp_path):
    po_file = write_po(
        tmp_path, '#, python-format\nmsgid "Sign in to %(company)s"\nmsgstr "Bei %(firma)s"\n'
    )

    problems = translations.problems_in(po_file)

    assert len(problems) == 1
    assert "placeholders ['%(firma)s'] instead of ['%(company)s']" in problems[0]
    assert translations.msgfmt_problems(po_file)  # gettext refuses it as well


def test_a_new_string_in_the_code_fails_the_check(tmp_path, settings):
    """The check's own makemessages finds a string the catalogues lack (a copy of them)."""
    import shutil

    locale_copy = tmp_path / "locale"
    shutil.copytree(Path(settings.LOCALE_PATHS[0]), locale_copy)
    german = locale_copy / "de" / "LC_MESSAGES" / "django.po"
    text = german.read_text(encoding="utf-8")
    # The catalogue as it was before "Skip to content" was translated.
    german.write_text(
        text.replace(
            'msgid "Skip to content"\nmsgstr "Zum Inhalt springen"', 'msgid "x"\nmsgstr "x"'
        ),
        encoding="utf-8",
    )

    problems = translations.check(locale_copy)

    assert f"{german}: 'Skip to content' is not translated" in problems


def test_the_po_parser_reads_continuations_and_escapes():
    entries = translations.parse_po(
        HEADER
        + '\nmsgctxt "button"\nmsgid ""\n"Two "\n"lines\\n"\nmsgstr ""\n"Zwei \\"Zeilen\\"\\n"\n'
    )

    assert len(entries) == 2
    assert entries[1].context == "button"
    assert entries[1].msgid == "Two lines\n"
    assert entries[1].msgstr == {0: 'Zwei "Zeilen"\n'}
