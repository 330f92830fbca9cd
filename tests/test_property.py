"""Whatever a unit types into the input cells, `check` returns a report or a clear error, and writes no formula.

Hypothesis fills input cells of a real department template with arbitrary values (numbers with NaN and
infinities, huge and tiny, text with control characters, formulas and formula-like text, error values,
blanks, booleans, dates and times), saved by openpyxl as a user's spreadsheet would save them.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from seed_data import DEPT_IDENTITY
from test_bad_inputs import assert_text_stays_text

from xlsx_kpi.batch.check import Options, check_file
from xlsx_kpi.formats.layout import build_layout
from xlsx_kpi.formats.plan import WorkbookLayout
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.outputs import annotate as annotate_entry
from xlsx_kpi.outputs.template import write_template

ERRORS = ("#REF!", "#DIV/0!", "#N/A", "#VALUE!", "#NAME?", "#NUM!", "#NULL!")
FORMULAS = ("=1/0", "=SUM(A1:A3)", "=#REF!+1", '="a"&"b"', '=INDIRECT("XFD1048576")', "=NOW()", "=1E+308*10")


class Formula(str):
    """A formula the user typed (stored as a formula), as opposed to text that merely starts with "="."""


def excel_text(text: str) -> str:
    """Text as Excel stores it: control characters that XML cannot hold become _xHHHH_ escapes."""
    return ILLEGAL_CHARACTERS_RE.sub(lambda m: f"_x{ord(m.group(0)):04X}_", text)


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e-300, max_value=1e-300),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.decimals(min_value=-(10**15), max_value=10**15, allow_nan=False, places=4),
    st.text(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=0x20), max_size=8),  # control characters
    st.from_regex(r"\A[=+\-@][^\n]{0,30}\Z"),  # text that a spreadsheet would take for a formula
    st.sampled_from(("95%", "９５％", "3.35分", "1,234.5", "≥10个", "两万", " ", "", "TRUE", "0")),
    st.sampled_from(ERRORS),
    st.sampled_from(FORMULAS).map(Formula),
    st.none(),
    st.booleans(),
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(9999, 12, 31)),
    st.dates(min_value=dt.date(1900, 1, 1)),
    st.times(),
    st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=3000)),
)


@pytest.fixture(scope="module")
def layout(catalog: Catalog) -> WorkbookLayout:
    return build_layout(catalog, catalog.workbook("sc-department"), DEPT_IDENTITY)


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


@pytest.fixture(scope="module")
def blank(layout: WorkbookLayout, folder: Path) -> tuple[Path, Any]:
    """The template, and the template loaded once by openpyxl (each example fills and restores it)."""
    path = write_template(layout, folder / "template.xlsx")
    return path, openpyxl.load_workbook(path)


def fill(typed: dict[str, Any], layout: WorkbookLayout, wb: Any, path: Path) -> list[str]:
    """Save the template with `typed` in its input cells, as a user's spreadsheet would; returns the
    formula-like texts typed (they must stay text). The loaded template is restored afterwards."""
    saved: dict[str, tuple[Any, str]] = {}
    texts: list[str] = []
    try:
        for key, value in typed.items():
            ref = layout.refs[key]
            cell = wb[ref.sheet].cell(ref.row + 1, ref.col + 1)
            saved[key] = (cell.value, cell.data_type)
            if isinstance(value, Formula):
                cell.value = str(value)
            elif isinstance(value, str):
                cell.value = excel_text(value)
                cell.data_type = "s"  # typed text stays text, "=1+1" included
                if value[:1] in "=+-@" and value == cell.value and not re.search(r"[<>&]", value):
                    texts.append(value)
            else:
                cell.value = value
        wb.save(path)
    finally:
        for key, (value, kind) in saved.items():
            ref = layout.refs[key]
            cell = wb[ref.sheet].cell(ref.row + 1, ref.col + 1)
            cell.value = value
            cell.data_type = kind
    return texts


def typed_inputs(layout: WorkbookLayout) -> st.SearchStrategy[dict[str, Any]]:
    inputs = sorted(k for k, c in layout.cells.items() if c.role == "input")
    return st.dictionaries(st.sampled_from(inputs), values, min_size=1, max_size=12)


def assert_clear(report: Any, path: Path) -> bool:
    """A report, or an error naming the file that is not "意外错误" (a crash caught by check_file)."""
    if report.error is None:
        assert report.exit_code in (0, 1)
        assert report.total is None or isinstance(report.total, Decimal)
        return True
    assert report.error.startswith(f"文件 {path}") and "意外" not in report.error, report.error
    return False


SETTINGS = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@settings(SETTINGS, max_examples=40)
@given(data=st.data())
def test_check_never_crashes(
    data: st.DataObject, catalog: Catalog, layout: WorkbookLayout, blank: Any, folder: Path
) -> None:
    """Read, recalculate and run every rule (~0.1 s an example)."""
    path = folder / "filled.xlsx"
    fill(data.draw(typed_inputs(layout)), layout, blank[1], path)
    assert_clear(check_file(path, catalog, Options(annotate=False)), path)


@pytest.mark.filterwarnings("ignore:Cell .* is marked as a date:UserWarning")  # openpyxl on 1e16 in a date cell
@settings(SETTINGS, max_examples=16)
@given(data=st.data())
def test_annotated_copy_never_fails_and_adds_no_formula(
    data: st.DataObject, catalog: Catalog, layout: WorkbookLayout, blank: Any, folder: Path
) -> None:
    """The same with the annotated copy, by the fast annotator or by openpyxl (its fallback, ~0.4 s an example):
    written, and no text became a formula."""
    path = folder / "annotated.xlsx"
    texts = fill(data.draw(typed_inputs(layout)), layout, blank[1], path)
    fast = data.draw(st.booleans(), label="fast annotator")
    with mock.patch.object(
        annotate_entry, "annotate_fast", annotate_entry.annotate_fast if fast else lambda *a, **k: None
    ):
        report = check_file(path, catalog, Options(out_dir=folder / "out", force=True, isolate=False))
    if assert_clear(report, path):
        assert report.output_error is None, report.output_error
        assert report.annotated is not None
        assert_text_stays_text(path, report.annotated, tuple(texts))
