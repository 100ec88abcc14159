"""docs/specs.md lists exactly the spec markers of the suite (regenerate with `make specs`)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests import spec_report

pytestmark = pytest.mark.once

ALLOWED_RESULT = r"^(passed|failed|error|skipped|not run)( \(\d+ of \d+ cases\))?$"


def current_rows(request, tmp_path) -> set[spec_report.Row]:
    """The suite's spec rows, through the same function `make specs` uses: from this run's own
    collection when it is the whole suite (`pytest` or `make test-sqlite`: every xdist worker
    collects every test), otherwise from a `pytest --collect-only` of the whole suite."""
    if _collected_the_whole_suite(request.config):
        return spec_report.rows_of(request.session.items)
    rows_file = tmp_path / "rows.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "tests.spec_report",
            f"--spec-rows={rows_file}",
        ],
        cwd=spec_report.ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return {tuple(row) for row in json.loads(rows_file.read_text())}


def _collected_the_whole_suite(config: pytest.Config) -> bool:
    """Run from the root on the configured test paths, nothing deselected or left out."""
    option = config.option
    return (
        config.args == config.getini("testpaths")
        and config.invocation_params.dir == spec_report.ROOT
        and not option.keyword
        and not option.markexpr
        and not option.ignore
        and not option.deselect
        and not getattr(option, "lf", False)
    )


def test_the_table_round_trips_through_render_and_parse():
    rows = {
        ("RFC 6749", "4.1.2", "tests/a.py::test_one"),
        ("RFC 6749", "10.12", "tests/a.py::test_two"),
        ("OpenID Connect Core 1.0", "3.1.2.1", "tests/b.py::test_three"),
    }
    results = {"tests/a.py::test_one": "passed", "tests/a.py::test_two": "failed (1 of 3 cases)"}

    text = spec_report.render(rows, results, when="now")
    parsed = spec_report.parse(text)

    assert set(parsed) == rows
    assert parsed[("RFC 6749", "10.12", "tests/a.py::test_two")] == "failed (1 of 3 cases)"
    assert parsed[("OpenID Connect Core 1.0", "3.1.2.1", "tests/b.py::test_three")] == "not run"
    # Clauses sort as numbers: 4.1.2 before 10.12.
    assert text.index("| 4.1.2 |") < text.index("| 10.12 |")


def test_document_spellings_share_one_section():
    assert spec_report.document_name("OIDC Core") == "OpenID Connect Core 1.0"
    assert spec_report.test_id("tests/a.py::test_x[case-1]") == "tests/a.py::test_x"


def test_docs_specs_md_lists_exactly_the_spec_markers_of_the_suite(request, tmp_path):
    current = current_rows(request, tmp_path)
    assert len(current) > 100, "the suite's spec markers were collected"
    recorded = spec_report.parse(spec_report.SPECS_FILE.read_text())

    missing = sorted(current - set(recorded))
    extra = sorted(set(recorded) - current)
    assert not missing and not extra, (  # noqa: PT018 (one message naming both differences)
        "docs/specs.md is stale: run `make specs`.\n"
        f"Not in the table: {missing[:20]}\nNo longer in the suite: {extra[:20]}"
    )
    bad_results = {row: result for row, result in recorded.items() if not _allowed(result)}
    assert bad_results == {}


def _allowed(result: str) -> bool:
    import re

    return re.match(ALLOWED_RESULT, result) is not None


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        (["passed"], "passed"),
        (["passed", "passed"], "passed"),
        (["passed", "failed", "failed"], "failed (2 of 3 cases)"),
        (["skipped"], "skipped"),
    ],
)
def test_a_parametrized_test_passes_only_when_every_case_passed(outcomes, expected):
    recorder = spec_report._Recorder(config=None)
    recorder.outcomes["tests/a.py::test_x"] = outcomes
    assert recorder.results() == {"tests/a.py::test_x": expected}
