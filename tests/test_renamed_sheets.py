"""Renamed and added sheets: LibreOffice and WPS drop the structure lock, so units rename and add sheets."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import openpyxl
import pytest
from helpers import soffice
from published import corrected_dept_inputs, dept_published

from xlsx_kpi.audit.reader import read_workbook
from xlsx_kpi.batch.check import Options, audit_file
from xlsx_kpi.formats.spec import Catalog


@pytest.fixture(scope="module")
def clean(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corrected seed figures: a workbook with no 错误."""
    return dept_published(catalog, tmp_path_factory.mktemp("clean"), inputs=corrected_dept_inputs(), written={})


def renamed_in_names(src: Path, dst: Path) -> Path:
    """附件2 renamed to 表2 as Excel, WPS and LibreOffice do it: every defined name follows the sheet."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "xl/workbook.xml":
                text = data.decode("utf-8").replace('name="附件2"', 'name="表2"')
                text = text.replace("'附件2'!", "'表2'!").replace(">附件2!", ">表2!")
                data = text.encode("utf-8")
            zout.writestr(info, data)
    return dst


def test_renamed_sheet_found_by_its_defined_names(clean: Path, catalog: Catalog, tmp_path: Path) -> None:
    path = renamed_in_names(clean, tmp_path / "renamed.xlsx")
    filing = read_workbook(path, catalog)
    assert filing.renamed == {"附件2": "表2"} and filing.moved == {} and filing.added == []
    assert filing.a1("exec.project.carry") == ("表2", "E7")
    checked = audit_file(path, catalog, Options(out_dir=tmp_path / "out"))
    report = checked.report
    assert report.exit_code == 0 and report.total is not None and str(report.total) == "95.35"
    assert [(f.where, f.code, f.message) for f in report.findings if f.code.startswith("sheet-")] == [
        ("表2!A1", "sheet-renamed", "工作表“附件2”被改名为“表2”，已按其内容识别并读取；请改回原名“附件2”")
    ]
    # Findings on the renamed sheet are marked there, under its new name.
    assert any(f.sheet == "表2" and f.code == "over-budget" for f in report.findings)
    assert report.annotated is not None
    wb = openpyxl.load_workbook(report.annotated)
    assert wb["表2"]["A1"].comment is not None and "sheet-renamed" in wb["表2"]["A1"].comment.text


def test_renamed_and_added_sheets_by_content(clean: Path, catalog: Catalog, tmp_path: Path) -> None:
    """openpyxl renames without updating the names: the sheet is recognised by its titles and labels."""
    wb = openpyxl.load_workbook(clean)
    wb["附件1"].title = "计分表"
    notes = wb.create_sheet("单位备注")
    notes["A1"] = "我们自己的测算"
    path = tmp_path / "edited.xlsx"
    wb.save(path)
    filing = read_workbook(path, catalog)
    assert filing.renamed == {"附件1": "计分表"}
    assert filing.added == ["单位备注"]
    checked = audit_file(path, catalog, Options(out_dir=tmp_path / "out"))
    report = checked.report
    assert report.exit_code == 0
    assert (
        checked.inputs["s.staff_control.score"] is not None and str(checked.inputs["s.staff_control.score"]) == "3.35"
    )
    found = {(f.where, f.code) for f in report.findings if f.code.startswith("sheet-")}
    assert found == {("计分表!A1", "sheet-renamed"), ("单位备注!A1", "sheet-added")}
    # The 审核结果 sheet lists the added sheet.
    assert report.annotated is not None
    result = openpyxl.load_workbook(report.annotated)["审核结果"]
    rows = [[c.value for c in row] for row in result.iter_rows(values_only=False)]
    listed = [r for r in rows if r[4] == "单位备注!A1"]
    assert (
        listed
        and listed[0][1] == "提示"
        and "工作表“单位备注”不在模板中（单位新增），其内容未审核、未汇总" in listed[0][8]
    )


def test_a_sheet_with_other_content_is_not_taken_for_a_renamed_one(
    clean: Path, catalog: Catalog, tmp_path: Path
) -> None:
    wb = openpyxl.load_workbook(clean)
    del wb["附件2"]
    wb.create_sheet("表2")["A1"] = "别的内容"
    path = tmp_path / "deleted.xlsx"
    wb.save(path)
    report = audit_file(path, catalog, Options(annotate=False)).report
    assert report.error is not None and "缺少工作表“附件2”（可能被删除或改名），请用原模板重新填写" in report.error


SYSTEM_PYTHON = Path("/usr/bin/python3")


def has_uno() -> bool:
    if soffice() is None or not SYSTEM_PYTHON.exists():
        return False
    return subprocess.run([str(SYSTEM_PYTHON), "-c", "import uno"], capture_output=True).returncode == 0


@pytest.mark.skipif(not has_uno(), reason="LibreOffice with python3-uno (/usr/bin/python3) is not installed")
def test_renamed_and_added_in_libreoffice(clean: Path, catalog: Catalog, tmp_path: Path) -> None:
    """Calc itself renames 附件2 and adds a sheet (tests/lo/rename_sheet.py): the names follow, the file is read."""
    out = tmp_path / "lo.xlsx"
    script = Path(__file__).parent / "lo" / "rename_sheet.py"
    args = [
        str(SYSTEM_PYTHON),
        str(script),
        str(clean),
        str(out),
        "附件2",
        "表2",
        "单位备注",
        str(tmp_path / "profile"),
    ]
    subprocess.run(args, check=True, capture_output=True, timeout=180)
    with zipfile.ZipFile(out) as z:
        book = z.read("xl/workbook.xml").decode("utf-8")
    assert ">表2!$C$5<" in book  # LibreOffice rewrote the defined names
    filing = read_workbook(out, catalog)
    assert filing.renamed == {"附件2": "表2"} and filing.added == ["单位备注"] and filing.moved == {}
    report = audit_file(out, catalog, Options(annotate=False)).report
    assert report.exit_code == 0 and str(report.total) == "95.35"
    found = {(f.where, f.code) for f in report.findings if f.code.startswith("sheet-")}
    assert found == {("表2!A1", "sheet-renamed"), ("单位备注!A1", "sheet-added")}
