"""Every workbook the tool writes passes an OOXML schema validation (openxml-audit, the Open XML SDK's rules).

Templates of every kind (single, --units batch, shipped), summaries, and annotated copies of inputs written
by XlsxWriter (our templates), by openpyxl and by LibreOffice. The one known exception is documented in the
README (拒绝读取的文件与原因): the openpyxl fallback annotator writes styles.xml fonts in openpyxl's order.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from openxml_audit import OpenXmlValidator, ValidationErrorType, ValidationSeverity

sys.path.insert(0, str(Path(__file__).parent))

from helpers import fill, recalc_with_libreoffice, soffice  # noqa: E402
from published import corrected_dept_inputs, dept_published  # noqa: E402
from seed_data import DEPT_IDENTITY  # noqa: E402

from xlsx_kpi.batch.check import Options, audit_file, check_file  # noqa: E402
from xlsx_kpi.cli import main  # noqa: E402
from xlsx_kpi.formats.layout import build_layout  # noqa: E402
from xlsx_kpi.formats.plan import Identity  # noqa: E402
from xlsx_kpi.formats.spec import Catalog  # noqa: E402
from xlsx_kpi.outputs.annotate.fallback import annotate_openpyxl as annotate  # noqa: E402
from xlsx_kpi.outputs.annotate.patcher import annotate_fast  # noqa: E402
from xlsx_kpi.outputs.template import write_template  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VALIDATOR = OpenXmlValidator(max_errors=100)


def errors(path: Path, *, semantic: bool = False) -> list[str]:
    """Error-severity problems: schema, package and relationship ones, or (semantic=True) the SDK's semantic
    checks, which go beyond the schema (a workbook without a theme part, as LibreOffice saves it)."""
    result = VALIDATOR.validate(str(path))
    return [
        str(e)
        for e in result.errors
        if e.severity is ValidationSeverity.ERROR and (e.error_type is ValidationErrorType.SEMANTIC) == semantic
    ]


@pytest.mark.parametrize("kind", ["sc-department", "sc-project", "cn-department", "gz-department"])
def test_templates_of_every_kind_are_valid(kind: str, catalog: Catalog, tmp_path: Path) -> None:
    unit = Identity(year=2021, unit_name="资阳市科学技术协会", unit_code="156001", project_name="“科创会”专项经费")
    for name, identity in (("unit.xlsx", unit), ("blank.xlsx", Identity(year=2021))):
        path = write_template(build_layout(catalog, catalog.workbook(kind), identity), tmp_path / name)
        assert errors(path) == errors(path, semantic=True) == [], (kind, name)


def test_shipped_templates_and_a_units_batch_are_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shipped = sorted((ROOT / "templates").glob("*.xlsx"))
    assert len(shipped) == 4
    units = tmp_path / "单位.csv"
    units.write_text("单位名称,预算单位编码\n资阳市科学技术协会,156001\n=HYPERLINK(1),@156002\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["template", "-k", "department", "-y", "2021", "--units", str(units), "--out-dir", str(out)]) == 0
    made = sorted(out.glob("*.xlsx"))
    assert len(made) == 2
    for path in [*shipped, *made]:
        assert errors(path) == errors(path, semantic=True) == [], path.name


def test_summaries_are_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = tmp_path / "汇总.xlsx"
    code = main(["collect", str(ROOT / "examples"), "-o", str(summary), "--db", str(tmp_path / "h.sqlite")])
    assert code == 1  # the examples carry the seed's mistakes
    assert errors(summary) == errors(summary, semantic=True) == []


def test_annotated_copies_of_xlsxwriter_and_openpyxl_inputs_are_valid(catalog: Catalog, tmp_path: Path) -> None:
    written = dept_published(catalog, tmp_path, name="xlsxwriter.xlsx", written={})  # our template, filled
    layout = build_layout(catalog, catalog.workbook("sc-department"), DEPT_IDENTITY)
    template = write_template(layout, tmp_path / "empty.xlsx")
    saved = fill(template, layout, corrected_dept_inputs(), tmp_path / "openpyxl.xlsx")
    assert any("font" in e for e in errors(saved))  # the input itself: openpyxl's font order
    for source in (written, saved):
        report = check_file(source, catalog, Options(out_dir=tmp_path / "out", isolate=False))
        assert report.annotated is not None and report.output_error is None
        assert errors(report.annotated) == errors(report.annotated, semantic=True) == [], source.name


@pytest.mark.libreoffice
def test_annotated_copy_of_a_libreoffice_saved_input_is_valid(catalog: Catalog, tmp_path: Path) -> None:
    if soffice() is None:
        pytest.skip("LibreOffice is not installed")
    source = dept_published(catalog, tmp_path, name="lo.xlsx", written={})
    (saved,) = recalc_with_libreoffice([source], tmp_path / "lo")
    report = check_file(saved, catalog, Options(out_dir=tmp_path / "out", isolate=False))
    assert report.annotated is not None
    assert errors(report.annotated) == []
    # LibreOffice drops xl/theme/theme1.xml; the copy keeps the input's parts as they are (Excel opens both).
    no_theme = [
        "[semantic] /xl/workbook.xml: A required relationship type "
        "'http://schemas.openxmlformats.org/officeDocument/2006/relationships/theme' is missing."
    ]
    assert errors(saved, semantic=True) == errors(report.annotated, semantic=True) == no_theme


def test_the_openpyxl_fallback_copy_differs_only_in_font_order(catalog: Catalog, tmp_path: Path) -> None:
    """The documented exception: openpyxl rewrites styles.xml with <font> children out of the schema's order."""
    source = dept_published(catalog, tmp_path, name="src.xlsx", written={})
    report = audit_file(source, catalog, Options(annotate=False)).report
    fast = annotate_fast(source, report, tmp_path / "fast.xlsx")
    slow = annotate(source, report, tmp_path / "slow.xlsx")
    assert fast is not None and errors(fast) == []
    problems = errors(slow)
    assert problems and all(p.startswith("[schema] /xl/styles.xml:/styleSheet[1]/fonts[1]/font[") for p in problems)
