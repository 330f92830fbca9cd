"""The zip-patching annotator: the same reviewer's copy as annotate.py, the rest of the file byte for byte."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import openpyxl
import pytest
from helpers import recalc_with_libreoffice, soffice
from openpyxl.comments import Comment
from openpyxl.workbook.workbook import Workbook
from published import dept_published

from xlsx_kpi.audit.findings import Finding, Severity
from xlsx_kpi.audit.report import Report
from xlsx_kpi.batch.check import Options, check_file
from xlsx_kpi.errors import OutputExistsError, XlsxKpiError
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.outputs.annotate.fallback import (
    ERROR_FILL,
    EXPLAINED_FILL,
    INFO_FILL,
    PASS_FILL,
    WARNING_FILL,
    comment_size,
)
from xlsx_kpi.outputs.annotate.fallback import annotate_openpyxl as annotate
from xlsx_kpi.outputs.annotate.patcher import annotate_fast
from xlsx_kpi.outputs.dump import dump_workbook

UNIT_SHEETS = ["填表说明", "附件1", "附件2", "基础数据", "_xlsx_kpi"]
EVIL = '=HYPERLINK("http://x","y")'
STAMP = re.compile(r"审核时间：\d{4}-\d\d-\d\d \d\d:\d\d")


# -- inputs: the seed department as published (its real mistakes), and its audit report ----------------
@pytest.fixture(scope="module")
def source(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dept_published(catalog, tmp_path_factory.mktemp("pub"))


@pytest.fixture(scope="module")
def report(source: Path, catalog: Catalog) -> Report:
    return check_file(source, catalog, Options(annotate=False))


@pytest.fixture(scope="module")
def copies(source: Path, report: Report, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(fast copy, openpyxl copy) of the seed for its own report."""
    out = tmp_path_factory.mktemp("out")
    made = annotate_fast(source, report, out / "fast.xlsx")
    assert made == out / "fast.xlsx"
    return made, annotate(source, report, out / "slow.xlsx")


@pytest.fixture(scope="module")
def fast_wb(copies: tuple[Path, Path]) -> Workbook:
    return openpyxl.load_workbook(copies[0])


@pytest.fixture(scope="module")
def slow_wb(copies: tuple[Path, Path]) -> Workbook:
    return openpyxl.load_workbook(copies[1])


def make_report(path: Path, findings: list[Finding]) -> Report:
    return Report(
        file=path,
        findings=findings,
        workbook_id="sc-department",
        unit_name="资阳市科学技术协会",
        unit_code="156001",
        year="2021",
        total=Decimal("95.345"),
        grade="优",
    )


def both(source: Path, report: Report, folder: Path) -> tuple[Path, Path]:
    made = annotate_fast(source, report, folder / "fast.xlsx", force=True)
    assert made is not None, "fell back to openpyxl"
    return made, annotate(source, report, folder / "slow.xlsx", force=True)


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def patched(path: Path, out: Path, changes: dict[str, bytes]) -> Path:
    """A copy of the workbook with some members replaced (or added)."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, changes.pop(info.filename, src.read(info)))
        for name, data in changes.items():
            dst.writestr(name, data)
    return out


# -- comparing the two copies ----------------------------------------------------------------------------
def style_of(c: Any) -> tuple[Any, ...]:
    f, al, bd = c.font, c.alignment, c.border
    color = f.color.rgb[-6:] if f.color is not None and isinstance(f.color.rgb, str) else None
    side = bd.left.color.rgb[-6:] if bd.left.color is not None else None
    return (
        c.number_format,
        bool(c.quotePrefix),
        f.name,
        f.sz,
        bool(f.b),
        f.u,
        color,
        c.fill.fill_type,
        c.fill.fgColor.rgb,
        al.horizontal,
        al.vertical,
        bool(al.wrap_text),
        bd.left.style,
        bd.right.style,
        bd.top.style,
        bd.bottom.style,
        side,
    )


def result_cells(wb: Workbook) -> dict[str, tuple[Any, ...]]:
    ws = wb["审核结果"]
    out = {}
    for row in ws.iter_rows():
        for c in row:
            value = STAMP.sub("审核时间：…", c.value) if isinstance(c.value, str) else c.value
            link = (c.hyperlink.location, c.hyperlink.target, c.hyperlink.tooltip) if c.hyperlink else None
            out[c.coordinate] = (value, link, *style_of(c))
    return out


def assert_same_result_sheet(fast: Workbook, slow: Workbook) -> None:
    a, b = fast["审核结果"], slow["审核结果"]
    assert result_cells(fast) == result_cells(slow)
    assert sorted(map(str, a.merged_cells.ranges)) == sorted(map(str, b.merged_cells.ranges))
    assert {k: d.width for k, d in a.column_dimensions.items()} == {k: d.width for k, d in b.column_dimensions.items()}
    assert {k: d.height for k, d in a.row_dimensions.items() if d.height} == {
        k: d.height for k, d in b.row_dimensions.items() if d.height
    }
    assert (a.freeze_panes, a.auto_filter.ref, a.print_title_rows) == (
        b.freeze_panes,
        b.auto_filter.ref,
        b.print_title_rows,
    )
    for ws in (a, b):
        assert ws.page_setup.orientation == "landscape" and ws.page_setup.paperSize == 9
        assert (ws.page_setup.fitToWidth, ws.page_setup.fitToHeight) == (1, 0)
        assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.print_options.horizontalCentered
        assert (ws.page_margins.left, ws.page_margins.top, ws.page_margins.header) == (0.4, 0.6, 0.3)
        assert ws.oddFooter.center.text == "第 &P 页，共 &N 页"


def marks(wb: Workbook) -> dict[tuple[str, str], tuple[Any, ...]]:
    """Every filled or commented cell of the unit's sheets: (fill type, colour, comment text)."""
    out = {}
    for ws in wb.worksheets:
        if ws.title == "审核结果":
            continue
        for row in ws.iter_rows():
            for c in row:
                if c.fill.fill_type or c.comment is not None:
                    out[(ws.title, c.coordinate)] = (
                        c.fill.fill_type,
                        c.fill.fgColor.rgb,
                        c.comment.text if c.comment else None,
                    )
    return out


NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def xml_fill(path: Path, sheet: str, a1: str) -> str | None:
    """A cell's fill colour read from the XML (openpyxl shows no style on the inner cells of a merge)."""
    parts = members(path)
    book = ElementTree.fromstring(parts["xl/workbook.xml"])
    rid = next(s.get(REL) for s in book.iterfind("m:sheets/m:sheet", NS) if s.get("name") == sheet)
    rels = ElementTree.fromstring(parts["xl/_rels/workbook.xml.rels"])
    target = next(r.get("Target", "") for r in rels if r.get("Id") == rid)
    part = target.lstrip("/") if target.startswith("/") else "xl/" + target
    cell = ElementTree.fromstring(parts[part]).find(f".//m:c[@r='{a1}']", NS)
    if cell is None:
        return None
    styles = ElementTree.fromstring(parts["xl/styles.xml"])
    xf = styles.findall("m:cellXfs/m:xf", NS)[int(cell.get("s", "0"))]
    fill = styles.findall("m:fills/m:fill", NS)[int(xf.get("fillId", "0"))]
    color = fill.find("m:patternFill/m:fgColor", NS)
    return None if color is None else color.get("rgb")


def vml_text(path: Path) -> str:
    return "".join(data.decode() for name, data in members(path).items() if name.endswith(".vml"))


# -- the seed's copy -------------------------------------------------------------------------------------
def test_the_seed_report_is_the_real_one(report: Report) -> None:
    assert len(report.findings) == 8  # issue 11: typed-over correct totals are listed, not findings
    assert ("附件2", "F7", "rate-mismatch", Severity.ERROR) in report.flatten("sheet", "cell", "code", "severity")
    assert report.counts == {"错误": 4, "警告": 3, "已说明": 0, "提示": 1}
    assert len(report.replaced) == 19


def test_opens_on_the_result_sheet(fast_wb: Workbook) -> None:
    assert fast_wb.sheetnames == ["审核结果", *UNIT_SHEETS]
    assert fast_wb.active is not None and fast_wb.active.title == "审核结果"
    assert [bool(ws.sheet_view.tabSelected) for ws in fast_wb.worksheets] == [True] + [False] * 5
    assert fast_wb["_xlsx_kpi"].sheet_state == "veryHidden"
    assert fast_wb.security is not None and fast_wb.security.lockStructure


def test_same_fills_and_comments_as_the_openpyxl_copy(fast_wb: Workbook, slow_wb: Workbook) -> None:
    fast, slow = marks(fast_wb), marks(slow_wb)
    assert fast == slow
    assert fast[("附件2", "F7")][:2] == ("solid", "FF" + ERROR_FILL)
    assert fast[("附件1", "F7")][:2] == ("solid", "FF" + WARNING_FILL)
    assert fast[("基础数据", "C6")][:2] == ("solid", "FF" + INFO_FILL)  # the blank 基础数据, once
    assert fast[("附件1", "F6")] == ("solid", "FFE2EFDA", None)  # an unflagged input keeps its green
    assert sum(1 for v in fast.values() if v[2]) == 8  # 8 findings on 8 cells
    assert fast[("附件2", "D5")][:2] == ("solid", "FF" + WARNING_FILL)
    assert fast[("附件2", "F7")][2].startswith("【错误】比率与重算不符（rate-mismatch）\n")


def test_comment_boxes_are_sized_to_their_text(copies: tuple[Path, Path], fast_wb: Workbook) -> None:
    vml = vml_text(copies[0])
    texts = [c.comment.text for ws in fast_wb.worksheets for row in ws.iter_rows() for c in row if c.comment]
    assert len(texts) == 8
    for text in texts:
        width, height = comment_size(text)
        assert f"width:{width}px;height:{height}px" in vml
    # Each drawing has its own shape-id block (openpyxl gives every sheet the same ids).
    assert sorted(re.findall(r'data="(\d+)"', vml)) == ["1", "2", "3"]


def test_same_result_sheet_as_the_openpyxl_copy(fast_wb: Workbook, slow_wb: Workbook) -> None:
    assert_same_result_sheet(fast_wb, slow_wb)
    ws = fast_wb["审核结果"]
    assert ws["A1"].value == "审核结果 — 资阳市科学技术协会"
    assert ws["A7"].value == "重算合计" and ws["C7"].value == 95.35 and ws["C7"].number_format == "0.00"
    # The summary gains a row listing the 19 typed-over formulas, so the table starts one row lower.
    assert ws["A14"].value == "以下公式被数值替换，数值正确" and "共19处" in ws["C14"].value
    assert [ws.cell(16, c).value for c in range(1, 10)] == [
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
    assert [c.value for c in ws[18]][:8] == [
        2,
        "错误",
        "比率与重算不符（rate-mismatch）",
        "附件2",
        "附件2!F7",
        "预算执行情况·政策和项目支出·结转结余率%",
        "6.03%",
        "10.54%",
    ]
    assert ws["E18"].hyperlink.location == "'附件2'!F7" and ws["E18"].hyperlink.target is None
    assert ws["B18"].fill.fgColor.rgb == "FF" + ERROR_FILL
    # (Text starting with "-" keeps Excel's apostrophe: tested with its own findings further down.)
    assert (ws.freeze_panes, ws.auto_filter.ref, ws.print_title_rows) == (
        "A17",
        "A16:I24",
        "$16:$16",
    )  # 8 findings below the header


def test_the_units_sheets_are_otherwise_unchanged(source: Path, copies: tuple[Path, Path], slow_wb: Workbook) -> None:
    before, after = dump_workbook(source), dump_workbook(copies[0])
    assert after["sheets"] == ["审核结果", *before["sheets"]]
    assert after["names"] == before["names"] and len(after["names"]) == 326
    assert after["lock_structure"] is True
    original = marks(openpyxl.load_workbook(source))
    flagged = {k for k, v in marks(slow_wb).items() if original.get(k) != v}
    assert len(flagged) == 8
    for name in UNIT_SHEETS:
        b, a = dict(before[name]), dict(after[name])
        bc, ac = b.pop("cells"), a.pop("cells")
        # The template's self-check formats on marked cells go: their red would paint over our marks.
        assert a.pop("conditional") == [c for c in b.pop("conditional") if (name, c[0]) not in flagged], name
        assert a == b, name  # merges, validations, protection, widths, print setup
        for key in set(bc) | set(ac):
            if (name, key) in flagged:
                # value, number format, locked, font, bold, wrap kept; fill and comment are ours
                assert ac[key][:3] + ac[key][4:7] == bc[key][:3] + bc[key][4:7], (name, key)
            else:
                assert ac.get(key) == bc.get(key), (name, key)
    assert after["附件1"]["cells"]["F32"][0] == 95.35  # the unit typed its total over the formula
    assert after["附件1"]["cells"]["H1"][0].startswith('=IF(I1=0,"✔ 自检通过"')
    assert len(after["附件1"]["validations"]) == 81


def test_print_titles_still_point_at_their_sheets(fast_wb: Workbook) -> None:
    assert fast_wb["附件1"].print_title_rows == "$4:$4"
    assert fast_wb["附件1"].print_area == "'附件1'!$A$1:$G$32"
    assert fast_wb["附件2"].print_area == "'附件2'!$A$1:$G$40"
    assert fast_wb["基础数据"].print_title_rows == "$3:$3"
    assert fast_wb["审核结果"].print_title_rows == "$16:$16"


def test_every_other_member_is_byte_identical(source: Path, copies: tuple[Path, Path]) -> None:
    before, after = members(source), members(copies[0])
    changed = {n for n in before if after.get(n) != before[n]}
    assert changed == {
        "[Content_Types].xml",
        "docProps/core.xml",  # saved by xlsx-kpi, with the mark of an untouched copy
        "xl/workbook.xml",
        "xl/_rels/workbook.xml.rels",
        "xl/styles.xml",
        "xl/worksheets/sheet1.xml",  # 填表说明: tabSelected cleared
        "xl/worksheets/sheet2.xml",  # 附件1
        "xl/worksheets/sheet3.xml",  # 附件2
        "xl/worksheets/sheet4.xml",  # 基础数据: the one 提示 on its blank figures
    }
    assert sorted(set(after) - set(before)) == [
        "xl/comments1.xml",
        "xl/comments2.xml",
        "xl/comments3.xml",
        "xl/drawings/vmlDrawing1.vml",
        "xl/drawings/vmlDrawing2.vml",
        "xl/drawings/vmlDrawing3.vml",
        "xl/worksheets/_rels/sheet2.xml.rels",
        "xl/worksheets/_rels/sheet3.xml.rels",
        "xl/worksheets/_rels/sheet4.xml.rels",
        "xl/worksheets/sheet6.xml",
    ]
    for name in changed | (set(after) - set(before)):
        ElementTree.fromstring(after[name])  # every part written is well-formed XML
    with zipfile.ZipFile(copies[0]) as z:
        assert z.testzip() is None
    # Only the attributes we own changed in the flagged sheets: strip them and the rest is the source.
    sheet = after["xl/worksheets/sheet3.xml"].decode()
    sheet = re.sub(r"<legacyDrawing [^>]*/>", "", sheet)
    original = before["xl/worksheets/sheet3.xml"].decode()
    # Conditional formats on marked cells are dropped (compared in test_the_units_sheets_are_otherwise_unchanged).
    cf = re.compile(r"<conditionalFormatting .*?</conditionalFormatting>")
    # 附件2 marks F5, F7, C12, D12, D5, D7; two of them carry a self-check format.
    assert len(cf.findall(original)) - len(cf.findall(sheet)) == 2
    assert cf.sub("", re.sub(r' s="\d+"', "", sheet)) == cf.sub("", re.sub(r' s="\d+"', "", original))


def test_the_xlsxwriter_template_too(catalog: Catalog, tmp_path: Path) -> None:
    """A template as XlsxWriter writes it: shared strings, and an app.xml that lists the sheets."""
    from seed_data import DEPT_IDENTITY, dept_inputs

    from xlsx_kpi.formats.layout import build_layout
    from xlsx_kpi.outputs.template import write_template

    layout = build_layout(catalog, catalog.workbook("sc-department"), DEPT_IDENTITY)
    source = write_template(layout, tmp_path / "tpl.xlsx", inputs=dept_inputs())
    report = check_file(source, catalog, Options(annotate=False))
    assert report.findings
    fast, slow = both(source, report, tmp_path)
    fast_wb, slow_wb = openpyxl.load_workbook(fast), openpyxl.load_workbook(slow)
    assert marks(fast_wb) == marks(slow_wb)
    assert_same_result_sheet(fast_wb, slow_wb)
    before, after = members(source), members(fast)
    assert after["xl/sharedStrings.xml"] == before["xl/sharedStrings.xml"]
    # The sheet list in app.xml would miss 审核结果: it goes (Excel rewrites it on save).
    assert b"<TitlesOfParts>" in before["docProps/app.xml"] and b"TitlesOfParts" not in after["docProps/app.xml"]
    assert b"<Application>Microsoft Excel</Application>" in after["docProps/app.xml"]


# -- refusals and the file on disk -----------------------------------------------------------------------
def test_source_bytes_unchanged(source: Path, report: Report, tmp_path: Path) -> None:
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    assert annotate_fast(source, report, tmp_path / "x.xlsx") is not None
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before


def test_refusals(source: Path, report: Report, copies: tuple[Path, Path], tmp_path: Path) -> None:
    for out in (source, source.parent / "." / source.name):
        with pytest.raises(XlsxKpiError, match="不能写到原文件"):
            annotate_fast(source, report, out, force=True)
    link = tmp_path / "link.xlsx"
    link.symlink_to(source)
    with pytest.raises(XlsxKpiError, match="不能写到原文件"):
        annotate_fast(source, report, link, force=True)
    out = tmp_path / "out.xlsx"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError, match="文件已存在；如需覆盖请加 --force") as e:
        annotate_fast(source, report, out)
    assert e.value.exit_code == 2 and out.read_bytes() == b"keep me"
    broken = Report(file=source, error="文件已损坏")
    with pytest.raises(XlsxKpiError, match="该文件未能审核（文件已损坏），不生成批注副本"):
        annotate_fast(source, broken, tmp_path / "b.xlsx")
    # A returned 审核 copy is annotated by openpyxl, which removes the earlier round's marks first.
    assert annotate_fast(copies[0], report, tmp_path / "again.xlsx") is None
    assert annotate_fast(source, report, out, force=True) == out
    assert openpyxl.load_workbook(out).sheetnames[0] == "审核结果"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.xlsx", "out.xlsx"]  # no temporary file left


def test_a_failed_write_leaves_no_file(
    source: Path, report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", full_disk)
    with pytest.raises(XlsxKpiError, match="无法写入批注副本：磁盘空间不足（No space left on device）"):
        annotate_fast(source, report, tmp_path / "out.xlsx")
    assert list(tmp_path.iterdir()) == []


# -- cells: merges, cells the file does not list, text from the unit --------------------------------------
def test_a_merged_cell_and_cells_that_are_not_there(source: Path, tmp_path: Path) -> None:
    inside = Finding("label-changed", Severity.ERROR, "附件1", "A6", "一级指标被改动", title="表头被改动")
    nowhere = Finding("missing-sheet", Severity.ERROR, "附件9", "B2", "缺少工作表", title="缺表")
    odd = [Finding("odd", Severity.INFO, "附件1", a1, "坐标无效") for a1 in ("F0", "ZZZZ1", "", "$F$1048577")]
    # No <c> in the file: a cell right of row 5's last one, a cell between two of row 1's, and a new row.
    absent = [Finding("x", Severity.WARNING, "附件1", a1, "不在文件中") for a1 in ("P5", "C1")]
    absent.append(Finding("x", Severity.WARNING, "附件1", "B40", "不在文件中", explanation="已说明"))
    report = make_report(source, [inside, nowhere, *odd, *absent])
    fast, slow = both(source, report, tmp_path)
    fast_wb, slow_wb = openpyxl.load_workbook(fast), openpyxl.load_workbook(slow)
    assert marks(fast_wb) == marks(slow_wb)
    assert_same_result_sheet(fast_wb, slow_wb)
    ws = fast_wb["附件1"]
    for path in (fast, slow):
        assert [xml_fill(path, "附件1", f"A{r}") for r in range(5, 10)] == ["FF" + ERROR_FILL] * 5
    assert ws["A5"].comment is not None and ws["A6"].comment is None
    for a1, rgb in (("P5", WARNING_FILL), ("C1", WARNING_FILL), ("B40", EXPLAINED_FILL)):
        assert ws[a1].fill.fgColor.rgb == "FF" + rgb and ws[a1].comment is not None
    res = fast_wb["审核结果"]
    assert [res.cell(r, 5).hyperlink.location if res.cell(r, 5).hyperlink else None for r in range(16, 25)] == [
        "'附件1'!A5",
        None,
        None,
        None,
        None,
        None,
        "'附件1'!P5",
        "'附件1'!C1",
        "'附件1'!B40",
    ]
    sheet = members(fast)["xl/worksheets/sheet2.xml"].decode()
    row1 = re.search(r'<row r="1"[^>]*>(.*?)</row>', sheet)
    assert row1 and re.findall(r'<c r="([A-Z]+)1"', row1.group(1)) == ["A", "C", "H", "I"]  # in column order
    assert re.search(r'<row r="40"><c r="B40" s="\d+"/></row>', sheet)
    assert '<dimension ref="A1:P40"/>' in sheet


def test_text_from_the_unit_is_stored_as_text(source: Path, tmp_path: Path) -> None:
    evil = Finding("odd-value", Severity.ERROR, "附件1", "G6", "=1+1 不是合理的依据", actual=EVIL, title="可疑内容")
    report = make_report(source, [evil])
    report.unit_name = "=CMD|' /C calc'!A0"
    fast, slow = both(source, report, tmp_path)
    xml = members(fast)["xl/worksheets/sheet6.xml"].decode()
    assert "<f>" not in xml and "<f " not in xml
    assert '<t>=HYPERLINK("http://x","y")</t>' in xml
    fast_wb = openpyxl.load_workbook(fast)
    ws = fast_wb["审核结果"]
    cells = {c.value: c for row in ws.iter_rows() for c in row if isinstance(c.value, str)}
    for text in (EVIL, "=1+1 不是合理的依据"):
        assert cells[text].data_type == "s" and cells[text].quotePrefix
    assert ws["A1"].value == "审核结果 — =CMD|' /C calc'!A0"
    comment = fast_wb["附件1"]["G6"].comment
    assert comment is not None and f"填报值：{EVIL}" in comment.text
    assert_same_result_sheet(fast_wb, openpyxl.load_workbook(slow))


def test_xml_special_characters_and_control_characters(source: Path, tmp_path: Path) -> None:
    odd = Finding("odd-value", Severity.INFO, "附件1", "G6", "a<b & c>\x07d", actual=' "q" ', title="<&>")
    fast, slow = both(source, make_report(source, [odd]), tmp_path)
    fast_wb = openpyxl.load_workbook(fast)
    assert_same_result_sheet(fast_wb, openpyxl.load_workbook(slow))
    assert fast_wb["审核结果"]["I16"].value == "a<b & c>d"
    assert fast_wb["审核结果"]["G16"].value == ' "q" '
    assert marks(fast_wb) == marks(openpyxl.load_workbook(slow))


def test_no_findings_says_so(source: Path, tmp_path: Path) -> None:
    report = make_report(source, [])
    report.project_name = "“科创会”专项经费"
    fast, slow = both(source, report, tmp_path)
    fast_wb = openpyxl.load_workbook(fast)
    assert_same_result_sheet(fast_wb, openpyxl.load_workbook(slow))
    ws = fast_wb["审核结果"]
    assert ws["C17"].value == "未发现问题" and ws["C17"].fill.fgColor.rgb == "FF" + PASS_FILL
    assert not [n for n in members(fast) if "comments" in n or n.endswith(".vml")]


def test_a_sheet_written_with_a_namespace_prefix(source: Path, tmp_path: Path) -> None:
    """<x:worksheet xmlns:x=...>: new cells and the legacyDrawing take the sheet's prefix."""
    data = members(source)["xl/worksheets/sheet2.xml"]
    data = re.sub(rb"<(/?)([A-Za-z])", rb"<\1x:\2", data).replace(b'xmlns="', b'xmlns:x="', 1)
    odd = patched(source, tmp_path / "prefixed.xlsx", {"xl/worksheets/sheet2.xml": data})
    findings = [Finding("x", Severity.ERROR, "附件1", a1, "看一下") for a1 in ("F7", "A6", "P5", "B40")]
    fast, slow = both(odd, make_report(odd, findings), tmp_path)
    assert marks(openpyxl.load_workbook(fast)) == marks(openpyxl.load_workbook(slow))
    sheet = members(fast)["xl/worksheets/sheet2.xml"].decode()
    assert '<x:c r="P5" s="' in sheet and '<x:row r="40"><x:c r="B40"' in sheet
    assert re.search(r'<x:legacyDrawing xmlns:r="[^"]+" r:id="rId\d+"/></x:worksheet>$', sheet)
    assert xml_fill(fast, "附件1", "A7") == "FF" + ERROR_FILL


# -- what it leaves to openpyxl ----------------------------------------------------------------------------
def test_a_flagged_sheet_with_the_units_own_comment_falls_back(source: Path, tmp_path: Path) -> None:
    wb = openpyxl.load_workbook(source)
    wb["附件1"]["G9"].comment = Comment("单位：按年初预算口径", "张会计")
    wb.save(tmp_path / "commented.xlsx")
    report = make_report(tmp_path / "commented.xlsx", [Finding("x", Severity.INFO, "附件1", "F9", "看一下")])
    assert annotate_fast(tmp_path / "commented.xlsx", report, tmp_path / "out.xlsx") is None
    assert not (tmp_path / "out.xlsx").exists()
    # A comment on a sheet with no finding is no obstacle, and its drawing is copied untouched.
    report = make_report(tmp_path / "commented.xlsx", [Finding("x", Severity.INFO, "附件2", "F7", "看一下")])
    made = annotate_fast(tmp_path / "commented.xlsx", report, tmp_path / "out.xlsx")
    assert made is not None
    before, after = members(tmp_path / "commented.xlsx"), members(made)
    assert after["xl/drawings/commentsDrawing1.vml"] == before["xl/drawings/commentsDrawing1.vml"]
    fast_wb = openpyxl.load_workbook(made)
    assert fast_wb["附件1"]["G9"].comment is not None
    assert fast_wb["附件1"]["G9"].comment.text == "单位：按年初预算口径"
    assert 'data="2"' in after["xl/drawings/vmlDrawing1.vml"].decode()  # a shape-id block of its own


@pytest.mark.parametrize(
    "member, old, new",
    [
        # A macro workbook: openpyxl converts it (and drops the macros).
        ("[Content_Types].xml", b"sheet.main+xml", b"sheet.macroEnabled.main+xml"),
        # Markup-compatibility wrappers around a top-level element: placement left to openpyxl.
        (
            "xl/worksheets/sheet2.xml",
            b"<pageMargins ",
            b'<mc:AlternateContent xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">'
            b"<mc:Fallback/></mc:AlternateContent><pageMargins ",
        ),
        # A part in another encoding: offsets and inserted text are UTF-8.
        ("xl/styles.xml", b"<styleSheet", b'<?xml version="1.0" encoding="ISO-8859-1"?><styleSheet'),
        # A DTD (entity expansion): refused by the guarded parser.
        ("xl/workbook.xml", b"<workbook", b'<!DOCTYPE workbook [<!ENTITY a "aaaa">]><workbook'),
        # Form controls already drawn on a flagged sheet.
        ("xl/worksheets/sheet2.xml", b"</worksheet>", b'<legacyDrawing r:id="rId9" xmlns:r="x"/></worksheet>'),
        # Rows without their r attribute.
        ("xl/worksheets/sheet2.xml", b'<row r="7"', b"<row"),
        # A cell style the styles part does not have.
        ("xl/worksheets/sheet2.xml", b'<c r="F7" s="', b'<c r="F7" s="9999" x="'),
    ],
)
def test_structures_left_to_openpyxl(source: Path, tmp_path: Path, member: str, old: bytes, new: bytes) -> None:
    data = members(source)[member]
    assert old in data
    odd = patched(source, tmp_path / "odd.xlsx", {member: data.replace(old, new, 1)})
    report = make_report(odd, [Finding("x", Severity.INFO, "附件1", "F7", "看一下")])
    assert annotate_fast(odd, report, tmp_path / "out.xlsx") is None
    assert list(tmp_path.iterdir()) == [odd]


def test_the_calculation_chain_is_dropped(source: Path, tmp_path: Path) -> None:
    """Excel rebuilds a missing chain silently; a stale one after a sheet insertion is worse."""
    before = members(source)
    chain_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.calcChain+xml"
    rel = (
        '<Relationship Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/calcChain"'
        ' Target="calcChain.xml" Id="rId99" />'
    )
    odd = patched(
        source,
        tmp_path / "chain.xlsx",
        {
            "xl/calcChain.xml": b'<calcChain xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            b'<c r="F32" i="2"/></calcChain>',
            "xl/_rels/workbook.xml.rels": before["xl/_rels/workbook.xml.rels"].replace(
                b"</Relationships>", rel.encode() + b"</Relationships>"
            ),
            "[Content_Types].xml": before["[Content_Types].xml"].replace(
                b"</Types>", f'<Override PartName="/xl/calcChain.xml" ContentType="{chain_type}"/></Types>'.encode()
            ),
        },
    )
    made = annotate_fast(
        odd, make_report(odd, [Finding("x", Severity.INFO, "附件1", "F7", "看一下")]), tmp_path / "o.xlsx"
    )
    assert made is not None
    after = members(made)
    assert "xl/calcChain.xml" not in after
    assert b"calcChain" not in after["xl/_rels/workbook.xml.rels"] + after["[Content_Types].xml"]
    assert openpyxl.load_workbook(made).sheetnames[0] == "审核结果"


# -- LibreOffice -------------------------------------------------------------------------------------------
@pytest.mark.libreoffice
def test_a_workbook_saved_by_libreoffice(source: Path, catalog: Catalog, tmp_path: Path) -> None:
    if soffice() is None:
        pytest.skip("LibreOffice is not installed")
    (saved,) = recalc_with_libreoffice([source], tmp_path / "lo")
    report = check_file(saved, catalog, Options(annotate=False))
    assert len(report.findings) == 8
    fast, slow = both(saved, report, tmp_path)
    fast_wb, slow_wb = openpyxl.load_workbook(fast), openpyxl.load_workbook(slow)
    assert marks(fast_wb) == marks(slow_wb)
    assert_same_result_sheet(fast_wb, slow_wb)
    assert [bool(ws.sheet_view.tabSelected) for ws in fast_wb.worksheets] == [True] + [False] * 5
    assert fast_wb["附件1"].print_title_rows == "$4:$4"
    assert b'tabSelected="true"' not in b"".join(members(fast).values())


@pytest.mark.libreoffice
def test_libreoffice_renders_the_copy_like_the_openpyxl_one(copies: tuple[Path, Path], tmp_path: Path) -> None:
    exe = soffice()
    if exe is None:
        pytest.skip("LibreOffice is not installed")
    subprocess.run(
        [
            exe,
            f"-env:UserInstallation=file://{tmp_path / 'profile'}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path),
            *map(str, copies),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    fast, slow = tmp_path / "fast.pdf", tmp_path / "slow.pdf"
    assert fast.stat().st_size > 10_000 and slow.stat().st_size > 10_000
    if shutil.which("pdfinfo") and shutil.which("pdftotext"):
        pages = [
            re.search(rb"Pages:\s+(\d+)", subprocess.run(["pdfinfo", str(p)], capture_output=True).stdout)
            for p in (fast, slow)
        ]
        assert pages[0] and pages[1] and pages[0].group(1) == pages[1].group(1)
        text = [
            STAMP.sub("", subprocess.run(["pdftotext", "-layout", str(p), "-"], capture_output=True, text=True).stdout)
            for p in (fast, slow)
        ]
        assert "审核结果 — 资阳市科学技术协会" in text[0] and "rate-mismatch" in text[0]
        assert text[0] == text[1]


def test_zip_members_keep_their_compressed_bytes(source: Path, copies: tuple[Path, Path]) -> None:
    """Unchanged members are copied without being inflated and deflated again."""
    with zipfile.ZipFile(source) as a, zipfile.ZipFile(copies[0]) as b:
        info = a.getinfo("xl/worksheets/sheet5.xml")
        copy = b.getinfo("xl/worksheets/sheet5.xml")
        assert (copy.CRC, copy.compress_size, copy.file_size) == (info.CRC, info.compress_size, info.file_size)
        data = io.BytesIO(copies[0].read_bytes())
        data.seek(copy.header_offset + 30 + len(copy.filename.encode()))
        raw = io.BytesIO(source.read_bytes())
        raw.seek(info.header_offset + 26)
        name_len, extra_len = int.from_bytes(raw.read(2), "little"), int.from_bytes(raw.read(2), "little")
        raw.seek(info.header_offset + 30 + name_len + extra_len)
        assert data.read(copy.compress_size) == raw.read(info.compress_size)
