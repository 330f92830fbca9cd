"""The generated workbook: layout, protection, validation, formulas, cached values, identity, print setup."""

from __future__ import annotations

import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from seed_data import DEPT_IDENTITY, dept_inputs

from xlsx_kpi.formats.layout import build_layout
from xlsx_kpi.formats.plan import WorkbookLayout
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.formats.widths import display_width
from xlsx_kpi.outputs.template import INPUT_FILL, legacy_password_hash, write_template


def a1(layout: WorkbookLayout, key: str) -> str:
    ref = layout.refs[key]
    return f"{openpyxl.utils.get_column_letter(ref.col + 1)}{ref.row + 1}"


def test_sheets_order_identity_and_structure_lock(dept_template: Path) -> None:
    wb = openpyxl.load_workbook(dept_template)
    assert wb.sheetnames == ["填表说明", "附件1", "附件2", "基础数据", "_xlsx_kpi"]
    assert wb["_xlsx_kpi"].sheet_state == "veryHidden"
    assert wb.security is not None and wb.security.lockStructure
    meta = {r[0]: r[1] for r in wb["_xlsx_kpi"].iter_rows(values_only=True)}
    assert meta["workbook_id"] == "sc-department"
    assert meta["workbook_version"] == "1"
    assert meta["unit_name"] == "资阳市科学技术协会"
    assert meta["unit_code"] == "156001"
    assert meta["year"] == "2021"
    assert meta["sheets"] == "sc-dept-score:1,sc-dept-target:1,sc-dept-basic:1"
    assert len(meta["fingerprint"]) == 16
    for name in wb.sheetnames:
        assert wb[name].protection.sheet, name


def test_score_table_layout_matches_the_official_table(dept_layout: WorkbookLayout, dept_template: Path) -> None:
    ws = openpyxl.load_workbook(dept_template)["附件1"]
    assert ws["A1"].value == "附件1"
    assert ws["A2"].value == "2021年度市本级部门整体支出绩效自评计分表"
    assert [ws.cell(4, c).value for c in range(1, 8)] == [
        "一级指标",
        "二级指标",
        "三级指标",
        "指标解释",
        "指标说明（评价计分标准）",
        "自评分数",
        "自评依据及说明",
    ]
    assert a1(dept_layout, "s.goal_fit.score") == "F5"
    assert a1(dept_layout, "s.staff_control.score") == "F7"
    assert ws["C7"].value == "在职人员控制率（5分）"
    assert ws["A5"].value == "投入（20分）"
    merges = {str(m) for m in ws.merged_cells.ranges}
    assert "A5:A9" in merges  # 投入 spans its five indicators
    assert "B7:B9" in merges  # 预算配置 spans three
    assert "A32:E32" in merges  # 合      计
    assert ws["A32"].value == "合      计"
    assert ws["F32"].value == "=SUM(F5:F31)"
    assert ws["L5"].value == "=SUM(F5:F9)"  # 一级指标得分 投入 (not printed)
    assert ws["G3"].value.startswith('=IF(COUNT(F5:F31)<27,"",IF(F32>=90,"优"')
    assert ws["I7"].value == (
        "=IF(OR('基础数据'!C4=\"\",'基础数据'!C5=\"\",'基础数据'!C4=0),\"\","
        "IF('基础数据'!C5<='基础数据'!C4,5,ROUND(5*'基础数据'!C4/'基础数据'!C5,2)))"
    )


def test_inputs_unlocked_marked_and_validated(dept_layout: WorkbookLayout, dept_template: Path) -> None:
    ws = openpyxl.load_workbook(dept_template)["附件1"]
    cell = ws["F7"]
    assert cell.protection.locked is False
    assert cell.fill.fgColor.rgb == "FF" + INPUT_FILL[1:]
    assert ws["F32"].protection.locked is True
    assert ws["C7"].protection.locked is True
    [dv] = [d for d in ws.data_validations.dataValidation if "F7" in str(d.sqref)]
    assert (dv.type, dv.operator or "between", dv.formula1, dv.formula2) == ("decimal", "between", "0", "5")
    assert dv.promptTitle == "在职人员控制率（5分）自评分数"
    assert dv.prompt == "请填写0至5之间的分数（本项分值5分）。"
    assert dv.error == "自评分数须在0至5分之间，请重新填写。"
    assert dv.errorStyle in (None, "stop") and dv.showErrorMessage  # absent means stop
    n_inputs = sum(1 for c in dept_layout.cells.values() if c.role == "input" and c.key and c.key.startswith("s."))
    assert len(ws.data_validations.dataValidation) == n_inputs == 81  # score, basis, difference note


def test_target_sheet_amounts_rates_and_choices(
    catalog: Catalog, dept_layout: WorkbookLayout, dept_template: Path, project_template: Path
) -> None:
    ws = openpyxl.load_workbook(dept_template)["附件2"]
    assert a1(dept_layout, "exec.total.budget") == "C5"
    assert ws["C5"].value == "=C6+C7"
    assert ws["F5"].value == '=IF(D5=0,"",E5/D5)'
    assert ws["G7"].value == ("=IF(OR('基础数据'!C15=\"\",'基础数据'!C15=0),\"\",(E7-'基础数据'!C15)/'基础数据'!C15)")
    assert ws["C9"].value == "=D9+E9+F9+G9"
    assert ws["C12"].value == '=IF(C10=0,"",C11/C10)'
    assert ws["C9"].number_format == "#,##0.00"
    assert ws["F5"].number_format == "0.00%"
    [dv] = [d for d in ws.data_validations.dataValidation if "C6" in str(d.sqref).split()]
    assert (dv.type, dv.operator, dv.formula1) == ("decimal", "greaterThanOrEqual", "0")
    pws = openpyxl.load_workbook(project_template)["附件2"]
    ticks = [pws.cell(5, c).value for c in range(3, 7)]
    assert ticks == ["√", None, None, None]  # 产业发展 ticked from the identity
    [dv] = [d for d in pws.data_validations.dataValidation if "D5" in str(d.sqref).split()]
    assert (dv.type, dv.formula1) == ("list", '"√"')


def test_defined_names_point_at_the_cells(dept_layout: WorkbookLayout, dept_template: Path) -> None:
    wb = openpyxl.load_workbook(dept_template)
    assert wb.defined_names["K_s__total"].attr_text == "'附件1'!$F$32"
    assert wb.defined_names["K_exec__total__carry_rate"].attr_text == "'附件2'!$F$5"
    assert wb.defined_names["K_b__staff_quota"].attr_text == "'基础数据'!$C$4"
    assert len(wb.defined_names) == len(dept_layout.refs)


def test_print_setup(dept_template: Path) -> None:
    wb = openpyxl.load_workbook(dept_template)
    ws = wb["附件1"]
    assert ws.page_setup.orientation == "landscape"
    assert ws.page_setup.paperSize == 9
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.page_setup.fitToWidth in (None, 1) and ws.page_setup.fitToHeight == 0  # absent means 1
    assert ws.print_title_rows == "$4:$4"
    assert ws.print_area == "'附件1'!$A$1:$G$32"
    assert ws.freeze_panes == "A5"
    assert ws["C7"].font.name == "宋体"
    assert ws["A2"].font.name == "黑体"
    assert ws.column_dimensions["E"].width == pytest.approx(46, abs=1)
    assert wb["附件2"].print_area == "'附件2'!$A$1:$G$40"


def test_every_printed_label_fits_its_column(
    catalog: Catalog, dept_layout: WorkbookLayout, project_layout: WorkbookLayout
) -> None:
    """Unwrapped labels (headers of short cells) must fit; wrapped text gets a row tall enough."""
    for layout in (dept_layout, project_layout):
        for sl in layout.sheets:
            widths = {ord(c.col) - 65: c.width for c in sl.spec.columns}
            for cell in sl.cells:
                if not cell.text or cell.style not in ("label_center", "header"):
                    continue
                width = sum(widths[c] for c in range(cell.col, cell.right + 1))
                rows = cell.bottom - cell.row + 1
                height = sum(sl.row_heights.get(r, 15) for r in range(cell.row, cell.bottom + 1))
                longest = max(display_width(p) for p in cell.text.split("\n"))
                lines_needed = -(-longest // max(1, int(width - 1.5)))
                assert lines_needed * 13.5 <= height + 1, f"{sl.name}!{cell.a1} {cell.text!r} rows={rows}"


def test_cached_values_are_our_recalculation(catalog: Catalog, tmp_path: Path) -> None:
    layout = build_layout(catalog, catalog.workbook("sc-department"), DEPT_IDENTITY)
    path = write_template(layout, tmp_path / "filled.xlsx", inputs=dept_inputs())
    ws = openpyxl.load_workbook(path, data_only=True)
    assert ws["附件1"]["F32"].value == pytest.approx(95.35)
    assert ws["附件1"]["G3"].value == "优"
    assert ws["附件1"]["L5"].value == pytest.approx(16.35)
    assert ws["附件2"]["F5"].value == pytest.approx(2922 / 48413)
    assert ws["附件1"]["H1"].value == "✔ 自检通过"
    blank = openpyxl.load_workbook(
        write_template(
            build_layout(catalog, catalog.workbook("sc-department"), DEPT_IDENTITY), tmp_path / "blank.xlsx"
        ),
        data_only=True,
    )
    assert blank["附件1"]["F32"].value == 0
    assert blank["附件1"]["G3"].value is None  # no grade until every score is filled
    assert blank["附件2"]["F5"].value is None  # no rate without an amount


def test_text_that_looks_like_a_formula_stays_text(catalog: Catalog, tmp_path: Path) -> None:
    layout = build_layout(catalog, catalog.workbook("sc-department"), DEPT_IDENTITY)
    evil = '=HYPERLINK("http://x","y")'
    path = write_template(layout, tmp_path / "t.xlsx", inputs={"s.goal_fit.basis": evil, "goal.target": "+1-2"})
    with zipfile.ZipFile(path) as z:
        sheet = z.read("xl/worksheets/sheet2.xml").decode()
    assert "HYPERLINK" not in sheet  # not a formula: it lives in sharedStrings
    ws = openpyxl.load_workbook(path)["附件1"]
    assert ws["G5"].value == evil and ws["G5"].data_type == "s"


def test_existing_file_is_not_overwritten(catalog: Catalog, tmp_path: Path) -> None:
    from xlsx_kpi.errors import OutputExistsError

    layout = build_layout(catalog, catalog.workbook("sc-department"), DEPT_IDENTITY)
    target = tmp_path / "t.xlsx"
    target.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError):
        write_template(layout, target)
    assert target.read_bytes() == b"keep me"
    write_template(layout, target, force=True)
    assert zipfile.is_zipfile(target)
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind


def test_password_protects_sheets_and_structure(catalog: Catalog, tmp_path: Path) -> None:
    layout = build_layout(catalog, catalog.workbook("sc-department"), DEPT_IDENTITY)
    wb = openpyxl.load_workbook(write_template(layout, tmp_path / "p.xlsx", password="kpi2025"))
    # XlsxWriter hashes the sheet password itself; our workbook hash must be the same legacy hash.
    assert wb["附件1"].protection.password == legacy_password_hash("kpi2025")
    assert wb.security.workbookPassword == wb["附件1"].protection.password


def test_grade_bands_are_configurable(catalog: Catalog) -> None:
    wb = catalog.workbook("sc-department")
    grades = [(g.grade, g.min) for g in wb.grades]
    assert grades == [("优", Decimal(90)), ("良", Decimal(80)), ("中", Decimal(60)), ("差", Decimal(0))]


def test_written_file_is_readable_like_any_saved_file(catalog: Catalog, tmp_path: Path) -> None:
    import os
    import stat

    layout = build_layout(catalog, catalog.workbook("sc-department"), DEPT_IDENTITY)
    path = write_template(layout, tmp_path / "t.xlsx")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
