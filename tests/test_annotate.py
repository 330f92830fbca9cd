"""The reviewer's annotated copy: fills, 批注, the 审核结果 sheet, and the unit's workbook left intact."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import zipfile
from copy import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.comments import Comment
from openpyxl.workbook.workbook import Workbook
from seed_data import DEPT_IDENTITY, dept_inputs

from xlsx_kpi.audit.findings import Finding, Severity
from xlsx_kpi.audit.report import Report
from xlsx_kpi.errors import OutputExistsError, XlsxKpiError
from xlsx_kpi.formats.layout import build_layout
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.formats.widths import display_width
from xlsx_kpi.outputs.annotate.fallback import (
    COMMENT_SEPARATOR,
    ERROR_FILL,
    EXPLAINED_FILL,
    INFO_FILL,
    PASS_FILL,
    WARNING_FILL,
    annotated_name,
    comment_size,
)
from xlsx_kpi.outputs.annotate.fallback import annotate_openpyxl as annotate
from xlsx_kpi.outputs.dump import dump_workbook
from xlsx_kpi.outputs.template import write_template

SOURCE_NAME = "2021_156001_资阳_部门.xlsx"
SHEETS = ["填表说明", "附件1", "附件2", "基础数据", "_xlsx_kpi"]
EVIL = '=HYPERLINK("http://x","y")'

RATE = Finding(
    "rate-mismatch",
    Severity.ERROR,
    "附件2",
    "F7",
    "结转结余率应为 10.54%（2922÷27735），填报为 6.03%",
    expected="10.54%",
    actual="6.03%",
    indicator="政策和项目支出·结转结余率%",
    title="比率与重算不符",
)
SCORE = Finding(
    "score-reference",
    Severity.WARNING,
    "附件1",
    "F7",
    "自评分数 3.35 与参考得分 3.75 不一致",
    expected="3.75",
    actual="3.35",
    indicator="在职人员控制率",
    title="自评分与参考得分不符",
    explained_by="M7",
    explanation="编制数按2021年批复口径计算",
)
BASIS = Finding(
    "basis-short",
    Severity.INFO,
    "附件1",
    "G5",
    "自评依据为空",
    indicator="绩效目标合理性",
    title="自评依据未填写",
)


def rgb(hex6: str) -> str:
    return "FF" + hex6


@pytest.fixture(scope="module")
def source(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A department template filled with the seed's figures, named as a unit would return it."""
    layout = build_layout(catalog, catalog.workbook("sc-department"), DEPT_IDENTITY)
    return write_template(layout, tmp_path_factory.mktemp("in") / SOURCE_NAME, inputs=dept_inputs())


def make_report(path: Path, findings: list[Finding], unit_name: str = "资阳市科学技术协会") -> Report:
    return Report(
        file=path,
        findings=findings,
        workbook_id="sc-department",
        unit_name=unit_name,
        unit_code="156001",
        year="2021",
        total=Decimal("95.345"),
        grade="优",
    )


@pytest.fixture(scope="module")
def annotated(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out") / annotated_name(source)
    return annotate(source, make_report(source, [RATE, SCORE, BASIS]), out)


@pytest.fixture(scope="module")
def wb(annotated: Path) -> Workbook:
    return openpyxl.load_workbook(annotated)


def sheet_xml(path: Path, name: str) -> str:
    """The XML of the worksheet called `name`, found through workbook.xml and its relationships."""
    with zipfile.ZipFile(path) as z:
        book = z.read("xl/workbook.xml").decode()
        rels = z.read("xl/_rels/workbook.xml.rels").decode()
        rid = re.search(rf'<sheet name="{re.escape(name)}"[^>]*r:id="(rId\d+)"', book)
        assert rid, name
        target = re.search(rf'<Relationship[^>]*Id="{rid.group(1)}"[^>]*Target="([^"]+)"', rels) or re.search(
            rf'<Relationship[^>]*Target="([^"]+)"[^>]*Id="{rid.group(1)}"', rels
        )
        assert target
        member = target.group(1).lstrip("/")
        return z.read(member if member.startswith("xl/") else "xl/" + member).decode()


def result_rows(wb: Workbook) -> list[list[Any]]:
    """The finding table of 审核结果, from the row after the 序号 header."""
    ws = wb["审核结果"]
    header = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == "序号")
    return [[c.value for c in row] for row in ws.iter_rows(min_row=header + 1, max_col=9)]


def summary(wb: Workbook) -> dict[str, Any]:
    ws = wb["审核结果"]
    out = {}
    for r in range(3, ws.max_row + 1):
        if ws.cell(r, 1).value == "序号":
            break
        if ws.cell(r, 1).value:
            out[ws.cell(r, 1).value] = ws.cell(r, 3).value
    return out


# -- names and refusals -------------------------------------------------------------------------------
def test_annotated_name() -> None:
    assert annotated_name(Path("2021_156001_资阳_部门.xlsx")) == "2021_156001_资阳_部门_审核.xlsx"
    assert annotated_name(Path("/x/y/a.b.xlsm")) == "a.b_审核.xlsx"


def test_source_bytes_unchanged(source: Path, tmp_path: Path) -> None:
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    annotate(source, make_report(source, [RATE, SCORE, BASIS]), tmp_path / "x.xlsx")
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before


def test_refuses_to_write_the_source(source: Path) -> None:
    before = source.read_bytes()
    for out in (source, source.parent / "." / source.name):
        with pytest.raises(XlsxKpiError, match="不能写到原文件") as e:
            annotate(source, make_report(source, [RATE]), out, force=True)
        assert e.value.exit_code == 2
    assert source.read_bytes() == before


def test_refuses_a_symlink_to_the_source(source: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.xlsx"
    link.symlink_to(source)
    with pytest.raises(XlsxKpiError, match="不能写到原文件"):
        annotate(source, make_report(source, [RATE]), link, force=True)


def test_refuses_an_existing_output_without_force(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.xlsx"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError, match="文件已存在；如需覆盖请加 --force") as e:
        annotate(source, make_report(source, [RATE]), out)
    assert e.value.exit_code == 2
    assert out.read_bytes() == b"keep me"
    annotate(source, make_report(source, [RATE]), out, force=True)
    assert openpyxl.load_workbook(out).sheetnames[0] == "审核结果"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.xlsx"]  # no temporary file left


def test_an_annotated_copy_returned_is_annotated_afresh(annotated: Path, tmp_path: Path) -> None:
    """A returned 审核 copy: the earlier round's sheet, 批注 and fills go; only the new findings are marked."""
    fills = {"附件1!F7": "E2EFDA", "附件1!G5": "E2EFDA"}
    again = annotate(annotated, make_report(annotated, [RATE]), tmp_path / "again.xlsx", fills=fills)
    wb = openpyxl.load_workbook(again)
    assert wb.sheetnames.count("审核结果") == 1
    assert wb["附件1"]["F7"].comment is None and wb["附件1"]["G5"].comment is None
    assert wb["附件1"]["F7"].fill.fgColor.rgb == "FFE2EFDA"  # the template's input green again
    assert wb["附件1"]["G5"].fill.fgColor.rgb == "FFE2EFDA"
    assert wb["附件2"]["F7"].fill.fgColor.rgb == rgb(ERROR_FILL)
    assert wb["附件2"]["F7"].comment.text.count("【错误】比率与重算不符") == 1
    assert [c.value for c in wb["审核结果"]["E"] if "!" in str(c.value)] == ["附件2!F7"]


def test_a_failed_save_leaves_no_file(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_save(self: Workbook, filename: str) -> None:
        Path(filename).write_bytes(b"half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Workbook, "save", broken_save)
    with pytest.raises(XlsxKpiError, match="无法写入批注副本：磁盘空间不足（No space left on device）"):
        annotate(source, make_report(source, [RATE]), tmp_path / "out.xlsx")
    assert list(tmp_path.iterdir()) == []


# -- the marks on the unit's sheets ------------------------------------------------------------------
def test_sheet_order_active_sheet_and_selection(wb: Workbook) -> None:
    assert wb.sheetnames == ["审核结果", *SHEETS]
    assert wb.active is not None and wb.active.title == "审核结果"
    assert [ws.sheet_view.tabSelected for ws in wb.worksheets] == [True, False, False, False, False, False]
    assert wb["_xlsx_kpi"].sheet_state == "veryHidden"
    assert wb.security is not None and wb.security.lockStructure


def test_fills_by_severity_keep_the_rest_of_the_style(source: Path, wb: Workbook) -> None:
    assert wb["附件2"]["F7"].fill.fill_type == "solid"
    assert wb["附件2"]["F7"].fill.fgColor.rgb == rgb(ERROR_FILL)
    assert wb["附件1"]["F7"].fill.fgColor.rgb == rgb(EXPLAINED_FILL)
    assert wb["附件1"]["G5"].fill.fgColor.rgb == rgb(INFO_FILL)
    assert wb["附件1"]["F6"].fill.fgColor.rgb == "FFE2EFDA"  # an unflagged input keeps its green
    src = openpyxl.load_workbook(source)
    for sheet, a1 in (("附件2", "F7"), ("附件1", "F7"), ("附件1", "G5")):
        before, after = src[sheet][a1], wb[sheet][a1]
        assert after.value == before.value
        assert after.number_format == before.number_format
        # cell.font etc. are proxies that never compare equal to each other; copy() unwraps them.
        for attr in ("font", "border", "alignment", "protection"):
            assert copy(getattr(after, attr)) == copy(getattr(before, attr)), (sheet, a1, attr)
    assert wb["附件2"]["F7"].value == '=IF(D7=0,"",E7/D7)'
    assert wb["附件2"]["F7"].number_format == "0.00%"
    assert wb["附件1"]["F7"].protection.locked is False


def test_comments(wb: Workbook, annotated: Path) -> None:
    rate = wb["附件2"]["F7"].comment
    assert rate is not None and rate.author == "xlsx-kpi"
    assert rate.text == (
        "【错误】比率与重算不符（rate-mismatch）\n"
        "结转结余率应为 10.54%（2922÷27735），填报为 6.03%\n"
        "填报值：6.03%\n"
        "应为：10.54%"
    )
    score = wb["附件1"]["F7"].comment
    assert score is not None
    assert score.text == (
        "【警告】自评分与参考得分不符（score-reference）\n"
        "自评分数 3.35 与参考得分 3.75 不一致\n"
        "填报值：3.35\n"
        "应为：3.75\n"
        "单位说明：编制数按2021年批复口径计算"
    )
    basis = wb["附件1"]["G5"].comment
    assert basis is not None and basis.text == "【提示】自评依据未填写（basis-short）\n自评依据为空"
    assert wb["附件1"]["F6"].comment is None
    # openpyxl reads every box back at its default size, so look at the VML drawing for ours.
    with zipfile.ZipFile(annotated) as z:
        vml = "".join(z.read(n).decode() for n in z.namelist() if n.endswith(".vml"))
    width, height = comment_size(rate.text)
    assert f"width:{width}px;height:{height}px" in vml
    assert (width, height) == (24 + 6 * display_width(RATE.message), 4 * 15 + 16)  # 4 lines, the longest 49


def test_comment_size_counts_cjk_double() -> None:
    assert comment_size("abcd") == (24 * 6 + 24, 31)
    assert comment_size("字" * 40) == (56 * 6 + 24, 2 * 15 + 16)  # 80 units wrap onto two 56-unit lines


# -- the 审核结果 sheet --------------------------------------------------------------------------------
def test_result_table(wb: Workbook) -> None:
    assert wb["审核结果"]["A1"].value == "审核结果 — 资阳市科学技术协会"
    assert result_rows(wb) == [
        [
            1,
            "错误",
            "比率与重算不符（rate-mismatch）",
            "附件2",
            "附件2!F7",
            "政策和项目支出·结转结余率%",
            "6.03%",
            "10.54%",
            "结转结余率应为 10.54%（2922÷27735），填报为 6.03%",
        ],
        [
            2,
            "警告",
            "自评分与参考得分不符（score-reference）",
            "附件1",
            "附件1!F7",
            "在职人员控制率",
            "3.35",
            "3.75",
            "自评分数 3.35 与参考得分 3.75 不一致（已说明：编制数按2021年批复口径计算）",
        ],
        [3, "提示", "自评依据未填写（basis-short）", "附件1", "附件1!G5", "绩效目标合理性", None, None, "自评依据为空"],
    ]


def test_result_links_colours_and_layout(wb: Workbook, annotated: Path) -> None:
    ws = wb["审核结果"]
    header = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == "序号")
    first = header + 1
    # An internal link is stored as a location (no relationship, no "#" target), as Excel writes it.
    links = [ws.cell(first + i, 5).hyperlink for i in range(3)]
    assert [(h.location, h.target) for h in links if h] == [
        ("'附件2'!F7", None),
        ("'附件1'!F7", None),
        ("'附件1'!G5", None),
    ]
    assert ws.cell(first, 5).font.u == "single"
    assert [ws.cell(first + i, 2).fill.fgColor.rgb for i in range(3)] == [
        rgb(ERROR_FILL),
        rgb(EXPLAINED_FILL),
        rgb(INFO_FILL),
    ]
    assert [ws.cell(header, c).value for c in range(1, 10)] == [
        "序号",
        "级别",
        "规则",
        "工作表",
        "单元格",
        "指标",
        "填报值",
        "应为",
        "说明",
    ]
    assert ws.cell(header, 1).font.b and ws.cell(header, 1).fill.fgColor.rgb == "FFD9D9D9"
    assert ws.cell(first, 3).font.name == "宋体" and ws.cell(first, 3).font.sz == 10
    assert ws.cell(first, 9).alignment.wrap_text and ws.cell(first, 9).border.left.style == "thin"
    assert ws.freeze_panes == f"A{first}"
    assert ws.auto_filter.ref == f"A{header}:I{first + 2}"
    assert ws.print_title_rows == f"${header}:${header}"
    assert ws.page_setup.orientation == "landscape" and ws.page_setup.paperSize == 9
    assert (ws.page_setup.fitToWidth, ws.page_setup.fitToHeight) == (1, 0)
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert not ws.protection.sheet
    widths = {c: ws.column_dimensions[c].width for c in "ABCDEFGHI"}
    assert widths["C"] == 36  # the widest rule needs 41 units: capped, and it wraps
    assert widths["I"] == 56
    assert "<hyperlink " in sheet_xml(annotated, "审核结果")
    with zipfile.ZipFile(annotated) as z:
        rels = [n for n in z.namelist() if n.endswith("sheet1.xml.rels")]
        assert not rels or "hyperlink" not in z.read(rels[0]).decode()


def test_summary(wb: Workbook) -> None:
    assert summary(wb) == {
        "单位名称": "资阳市科学技术协会",
        "预算单位编码": "156001",
        "年度": "2021",
        "表种": "sc-department",
        "重算合计": 95.35,
        "等级": "优",
        "错误": 1,
        "警告（未说明）": 0,
        "已说明的警告": 1,
        "提示": 1,
        "审核结论": "有错误",
    }
    ws = wb["审核结果"]
    total = next(r for r in range(3, 20) if ws.cell(r, 1).value == "重算合计")
    assert ws.cell(total, 3).number_format == "0.00"


def test_no_findings_says_so(source: Path, tmp_path: Path) -> None:
    report = make_report(source, [])
    report.project_name = "“科创会”专项经费"
    out = annotate(source, report, tmp_path / "ok.xlsx")
    wb = openpyxl.load_workbook(out)
    assert result_rows(wb) == [[None, None, "未发现问题", None, None, None, None, None, None]]
    s = summary(wb)
    assert s["审核结论"] == "通过" and s["项目"] == "“科创会”专项经费"
    assert (s["错误"], s["警告（未说明）"], s["已说明的警告"], s["提示"]) == (0, 0, 0, 0)
    ws = wb["审核结果"]
    concl = next(r for r in range(3, 20) if ws.cell(r, 1).value == "审核结论")
    assert ws.cell(concl, 3).fill.fgColor.rgb == rgb(PASS_FILL)


# -- several findings on one cell, a merged cell, the unit's own comment --------------------------------
def test_most_severe_colour_wins_and_the_units_comment_is_kept(source: Path, tmp_path: Path) -> None:
    commented = tmp_path / "commented.xlsx"
    src = openpyxl.load_workbook(source)
    src["附件1"]["F9"].comment = Comment("单位：重点支出含专项", "张会计")
    src["附件1"]["G9"].comment = Comment("张会计：\n" + "重点支出安排率按年初预算口径计算。" * 3, "张会计")
    src.save(commented)
    info = Finding("score-round", Severity.INFO, "附件1", "F9", "分数可保留两位小数", title="分数精度")
    warn = Finding(
        "score-reference", Severity.WARNING, "附件1", "F9", "与参考得分 4 不一致", title="自评分与参考得分不符"
    )
    err = Finding("score-above-max", Severity.ERROR, "附件1", "F9", "超过分值 5", actual="6", title="自评分超过分值")
    wb = openpyxl.load_workbook(annotate(commented, make_report(commented, [info, warn, err]), tmp_path / "o.xlsx"))
    cell = wb["附件1"]["F9"]
    assert cell.fill.fgColor.rgb == rgb(ERROR_FILL)
    assert cell.comment is not None
    assert cell.comment.text == (
        "单位：重点支出含专项\n"
        f"{COMMENT_SEPARATOR}\n"
        "【错误】自评分超过分值（score-above-max）\n超过分值 5\n填报值：6\n\n"
        "【警告】自评分与参考得分不符（score-reference）\n与参考得分 4 不一致\n\n"
        "【提示】分数精度（score-round）\n分数可保留两位小数"
    )
    # The unit's other comment keeps its text and gets a box sized to it (openpyxl would use 144x79).
    other = wb["附件1"]["G9"].comment
    assert other is not None and other.text.startswith("张会计：\n重点支出安排率")
    with zipfile.ZipFile(tmp_path / "o.xlsx") as z:
        vml = "".join(z.read(n).decode() for n in z.namelist() if n.endswith(".vml"))
    assert comment_size(other.text) == (56 * 6 + 24, 3 * 15 + 16)  # 102 units wrap onto 2 lines + the name
    assert "width:360px;height:61px" in vml
    # Report order is kept in the table.
    assert [r[1] for r in result_rows(wb)] == ["提示", "警告", "错误"]
    only_warn = openpyxl.load_workbook(annotate(source, make_report(source, [info, warn]), tmp_path / "w.xlsx"))
    assert only_warn["附件1"]["F9"].fill.fgColor.rgb == rgb(WARNING_FILL)


def test_a_merged_cell_is_marked_at_its_top_left(source: Path, tmp_path: Path) -> None:
    inside = Finding("label-changed", Severity.ERROR, "附件1", "A6", "一级指标被改动", title="表头被改动")
    nowhere = Finding("missing-sheet", Severity.ERROR, "附件9", "B2", "缺少工作表", title="缺表")
    odd = [Finding("odd", Severity.INFO, "附件1", a1, "坐标无效") for a1 in ("F0", "ZZZZ1", "", "$F$1048577")]
    report = make_report(source, [inside, nowhere, *odd])
    wb = openpyxl.load_workbook(annotate(source, report, tmp_path / "m.xlsx"))
    ws = wb["附件1"]
    assert "A5:A9" in {str(m) for m in ws.merged_cells.ranges}
    assert ws["A5"].fill.fgColor.rgb == rgb(ERROR_FILL)
    assert ws["A5"].comment is not None and ws["A5"].comment.text.startswith("【错误】表头被改动")
    res = wb["审核结果"]
    header = next(r for r in range(1, res.max_row + 1) if res.cell(r, 1).value == "序号")
    assert res.cell(header + 1, 5).hyperlink.location == "'附件1'!A5"
    assert res.cell(header + 2, 5).value == "附件9!B2" and res.cell(header + 2, 5).hyperlink is None
    # Cells that do not exist are listed without a link and marked nowhere.
    assert [res.cell(header + 3 + i, 5).value for i in range(4)] == [
        "附件1!F0",
        "附件1!ZZZZ1",
        "附件1!",
        "附件1!$F$1048577",
    ]
    assert all(res.cell(header + 3 + i, 5).hyperlink is None for i in range(4))


# -- the unit's workbook is otherwise intact ----------------------------------------------------------
def test_unit_content_and_formatting_are_kept(source: Path, annotated: Path, wb: Workbook) -> None:
    before, after = dump_workbook(source), dump_workbook(annotated)
    assert after["sheets"] == ["审核结果", *before["sheets"]]
    assert after["names"] == before["names"] and len(after["names"]) == 326
    assert after["lock_structure"] is True
    flagged = {("附件2", "F7"), ("附件1", "F7"), ("附件1", "G5")}
    for name in SHEETS:
        b, a = dict(before[name]), dict(after[name])
        bc, ac = dict(b.pop("cells")), dict(a.pop("cells"))
        # openpyxl saves an empty-string cell as a blank one (_xlsx_kpi's empty project_name/type).
        bc = {k: v for k, v in bc.items() if v[0] != ""}
        # The template's self-check formats on marked cells go: their red would paint over our marks.
        assert a.pop("conditional") == [c for c in b.pop("conditional") if (name, c[0]) not in flagged], name
        assert a == b, name
        for sheet, a1 in flagged:
            if sheet == name:
                assert ac.pop(a1)[:3] == bc.pop(a1)[:3]  # value, number format, locked
        assert ac == bc, name
    ws1 = wb["附件1"]
    assert ws1["F32"].value == "=SUM(F5:F31)"
    assert len(ws1.data_validations.dataValidation) == 81
    assert all(wb[n].protection.sheet for n in SHEETS)
    assert "A32:E32" in {str(m) for m in ws1.merged_cells.ranges}
    src = openpyxl.load_workbook(source)
    for name in SHEETS:
        s, a = src[name], wb[name]
        assert a.page_setup.orientation == s.page_setup.orientation
        assert a.page_setup.fitToHeight == s.page_setup.fitToHeight
        assert a.page_setup.blackAndWhite == s.page_setup.blackAndWhite
        assert a.oddFooter.center.text == s.oddFooter.center.text
        assert a.freeze_panes == s.freeze_panes
        assert a.protection.password == s.protection.password
    # The print titles and areas still point at their own sheets after 审核结果 went in front.
    assert wb["附件1"].print_title_rows == "$4:$4"
    assert wb["附件1"].print_area == "'附件1'!$A$1:$G$32"


# -- text from the unit never becomes a formula -------------------------------------------------------
def test_text_from_the_unit_is_stored_as_text(source: Path, tmp_path: Path) -> None:
    evil = Finding("odd-value", Severity.ERROR, "附件1", "G6", "=1+1 不是合理的依据", actual=EVIL, title="可疑内容")
    out = annotate(source, make_report(source, [evil], unit_name="=CMD|' /C calc'!A0"), tmp_path / "evil.xlsx")
    xml = sheet_xml(out, "审核结果")
    assert "<f>" not in xml and "<f " not in xml
    assert "=HYPERLINK(&quot;http://x&quot;,&quot;y&quot;)" in xml or '=HYPERLINK("http://x","y")' in xml
    wb = openpyxl.load_workbook(out)
    ws = wb["审核结果"]
    cells = {c.value: c for row in ws.iter_rows() for c in row if isinstance(c.value, str)}
    for text in (EVIL, "=CMD|' /C calc'!A0", "=1+1 不是合理的依据"):
        assert cells[text].data_type == "s"
        assert cells[text].quotePrefix  # Excel keeps it text even when the reviewer edits the cell
    assert ws["A1"].value == "审核结果 — =CMD|' /C calc'!A0"
    comment = wb["附件1"]["G6"].comment
    assert comment is not None and f"填报值：{EVIL}" in comment.text


def test_control_characters_are_dropped(source: Path, tmp_path: Path) -> None:
    odd = Finding("odd-value", Severity.INFO, "附件1", "G6", "含\x07控制字符", actual="a\x00b", title="控制字符")
    wb = openpyxl.load_workbook(annotate(source, make_report(source, [odd]), tmp_path / "c.xlsx"))
    assert result_rows(wb)[0][6] == "ab"
    assert result_rows(wb)[0][8] == "含控制字符"


@pytest.mark.libreoffice
def test_libreoffice_opens_the_copy(annotated: Path, tmp_path: Path) -> None:
    exe = shutil.which("soffice")
    if exe is None:
        pytest.skip("LibreOffice is not installed")
    # LibreOffice exports the first sheet to CSV: it opens the copy, and 审核结果 comes first.
    subprocess.run(
        [
            exe,
            f"-env:UserInstallation=file://{tmp_path / 'profile'}",
            "--headless",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76",  # 76: UTF-8
            "--outdir",
            str(tmp_path),
            str(annotated),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    text = (tmp_path / (annotated.stem + ".csv")).read_text(encoding="utf-8", errors="replace")
    assert "审核结果" in text and "rate-mismatch" in text
