"""Reading returned workbooks as XlsxWriter, openpyxl and LibreOffice save them, and every refusal."""

from __future__ import annotations

import hashlib
import io
import re
import statistics
import struct
import time
import zipfile
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from helpers import fill, recalc_with_libreoffice, soffice
from seed_data import DEPT_IDENTITY, dept_inputs

from xlsx_kpi.audit import reader, xml_parts
from xlsx_kpi.audit.cells import is_date_format, shift_formula, to_inputs
from xlsx_kpi.audit.filing import Filing, RawCell
from xlsx_kpi.audit.reader import read_workbook
from xlsx_kpi.audit.recalc import prefilled
from xlsx_kpi.errors import XlsxKpiError
from xlsx_kpi.formats.expr import ExcelError
from xlsx_kpi.formats.layout import build_layout
from xlsx_kpi.formats.plan import WorkbookLayout
from xlsx_kpi.formats.spec import Catalog, col_index, col_letters
from xlsx_kpi.ooxml import package
from xlsx_kpi.outputs.template import write_template

D = Decimal
needs_libreoffice = pytest.mark.skipif(soffice() is None, reason="LibreOffice (soffice) not installed")


# --- helpers ---------------------------------------------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read(path: Path, catalog: Catalog) -> Filing:
    """read_workbook, checking that reading never changes the file."""
    before = sha256(path)
    filing = read_workbook(path, catalog)
    assert sha256(path) == before
    return filing


def refusal(path: Path, catalog: Catalog) -> XlsxKpiError:
    """The error read_workbook raises for `path`; the file is unchanged and named in the message."""
    before = sha256(path) if path.is_file() else None
    with pytest.raises(XlsxKpiError) as info:
        read_workbook(path, catalog)
    if before is not None:
        assert sha256(path) == before
    err = info.value
    assert err.file == str(path)
    assert err.exit_code == 2
    assert str(err).startswith(f"文件 {path}")
    return err


def rezip(src: Path, dst: Path, edit: dict[str, Callable[[str], str] | bytes | None]) -> Path:
    """Copy an xlsx, replacing members (text edit function, new bytes, or None to delete); adds new ones."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            change = edit.get(info.filename, ...)
            if change is ...:
                zout.writestr(info, zin.read(info))
            elif callable(change):
                new = change(zin.read(info).decode("utf-8"))
                zout.writestr(info.filename, new.encode("utf-8"))
            elif change is not None:
                zout.writestr(info.filename, change)
        for name, data in edit.items():
            if name not in zin.namelist() and isinstance(data, bytes):
                zout.writestr(name, data)
    return dst


def member(path: Path, name: str) -> str:
    with zipfile.ZipFile(path) as zf:
        return zf.read(name).decode("utf-8")


def a1(layout: WorkbookLayout, key: str) -> str:
    ref = layout.refs[key]
    return f"{col_letters(ref.col)}{ref.row + 1}"


def sheet_member(path: Path, sheet: str) -> str:
    """The zip member holding a sheet (our templates: sheetN.xml in workbook order)."""
    names = re.findall(r'<sheet [^>]*name="([^"]+)"', member(path, "xl/workbook.xml"))
    return f"xl/worksheets/sheet{names.index(sheet) + 1}.xml"


def edit_cells(src: Path, dst: Path, layout: WorkbookLayout, values: dict[str, object]) -> Path:
    """Type values into keyed cells with openpyxl (as a user in Excel would) and save a copy."""
    wb = openpyxl.load_workbook(src)
    for key, value in values.items():
        ref = layout.refs[key]
        wb[ref.sheet].cell(ref.row + 1, ref.col + 1).value = value
    wb.save(dst)
    return dst


@pytest.fixture(scope="module")
def layout(catalog: Catalog) -> WorkbookLayout:
    return build_layout(catalog, catalog.workbook("sc-department"), DEPT_IDENTITY)


@pytest.fixture(scope="module")
def filled(layout: WorkbookLayout, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The department template filled with the seed's figures by our own writer (XlsxWriter)."""
    return write_template(layout, tmp_path_factory.mktemp("filled") / "filled.xlsx", inputs=dept_inputs())


@pytest.fixture(scope="module")
def blank(layout: WorkbookLayout, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_template(layout, tmp_path_factory.mktemp("blank") / "blank.xlsx")


# --- reading what we wrote ---------------------------------------------------------------------------------


def test_filled_template_reads_back_the_typed_inputs(filled: Path, catalog: Catalog, layout: WorkbookLayout) -> None:
    filing = read(filled, catalog)
    inputs = to_inputs(filing)
    assert inputs["s.staff_control.score"] == D("3.35")
    assert inputs["info.unit_code"] == "156001"
    assert inputs["b.staff_quota"] == D(6)
    assert inputs["s.staff_control.basis"] == "编制数6人，\n在职人员数8人"
    assert inputs["tgt.qty.1.result"] == "=10个"  # written as text, so it stays text
    expected = dept_inputs()
    assert {k: v for k, v in inputs.items() if k in expected} == expected
    # Every other input is blank; the prefilled identity fields are among the seed's inputs.
    assert {k for k, v in inputs.items() if v is not None} == set(expected) | set(prefilled(layout))
    assert filing.moved == {}
    assert filing.meta["workbook_id"] == "sc-department"
    assert filing.meta["workbook_version"] == "1"
    assert filing.meta["unit_code"] == "156001"
    assert filing.meta["year"] == "2021"
    assert filing.meta["project_name"] == ""
    assert set(filing.cells) == set(layout.refs)
    # One layout serves every unit of a kind and year: the unit itself is in `meta`.
    assert filing.layout.identity.year == DEPT_IDENTITY.year


def test_formula_cells_keep_formula_and_cached_value(filled: Path, catalog: Catalog) -> None:
    filing = read(filled, catalog)
    assert filing.cells["s.total"] == RawCell(D("95.35"), "SUM(F5:F31)", False, "附件1!F32")
    assert filing.a1("s.total") == ("附件1", "F32")
    rate = filing.cells["exec.total.carry_rate"]
    assert rate.formula == 'IF(D5=0,"",E5/D5)'
    assert rate.value == D("0.0603556895875075")  # 2922 / 48413 cached by our own recalculation
    assert filing.cells["s.grade"].value == "优"
    assert filing.cells["s.staff_control.max"] == RawCell(D(5), None, False, "附件1!H7")  # a constant
    # A formula whose result is "" reads blank, like an empty input.
    assert filing.cells["s.key_spending.ref"].value is None
    assert "s.total" not in to_inputs(filing)
    assert "exec.total.carry_rate" not in to_inputs(filing)


def test_blank_template_reads_only_the_prefilled_identity(
    blank: Path, catalog: Catalog, layout: WorkbookLayout
) -> None:
    inputs = to_inputs(read(blank, catalog))
    assert {k: v for k, v in inputs.items() if v is not None} == {
        "info.unit_name": "资阳市科学技术协会",
        "info.unit_code": "156001",
    }
    assert len(inputs) == sum(1 for c in layout.cells.values() if c.role == "input")


# --- what users do in Excel, simulated with openpyxl ------------------------------------------------------


def test_filled_by_openpyxl_like_a_user(blank: Path, catalog: Catalog, layout: WorkbookLayout, tmp_path: Path) -> None:
    out = fill(blank, layout, dept_inputs(), tmp_path / "user.xlsx")
    filing = read(out, catalog)
    inputs = to_inputs(filing)
    expected = dept_inputs()
    # helpers.fill stores typed text as text, so "=10个" stays the user's text, not a formula.
    assert filing.cells["tgt.qty.1.result"] == RawCell("=10个", None, False, f"附件2!{a1(layout, 'tgt.qty.1.result')}")
    assert {k: v for k, v in inputs.items() if k in expected} == expected
    # openpyxl keeps no cached results: formula cells read blank.
    assert filing.cells["s.total"] == RawCell(None, "SUM(F5:F31)", False, "附件1!F32")


def test_value_pasted_over_a_formula(filled: Path, catalog: Catalog, layout: WorkbookLayout, tmp_path: Path) -> None:
    out = edit_cells(filled, tmp_path / "pasted.xlsx", layout, {"exec.total.carry_rate": 0.0603})
    cell = read(out, catalog).cells["exec.total.carry_rate"]
    assert cell == RawCell(D("0.0603"), None, False, "附件2!F5")


def test_what_users_type_into_input_cells(
    filled: Path, catalog: Catalog, layout: WorkbookLayout, tmp_path: Path
) -> None:
    typed: dict[str, object] = {
        "s.goal_fit.score": "3.35分",  # text with a unit in a score cell
        "s.indicator_clarity.score": "abc",
        "s.staff_control.score": 0,  # zero is not blank
        "s.three_public_change.score": None,  # cleared
        "s.key_spending.score": "=1+2.35",  # a formula typed into an input cell
        "s.budget_completion.score": " ",  # only a space
        "exec.basic.budget": "#DIV/0!",  # an error value
        "exec.project.budget": datetime(2021, 12, 31),  # a date in a number cell
        "b.staff_quota": True,
        "b.satisfaction": "95%",
        "b.social_degree": 0.9,
        "b.econ_degree": "90",
        "info.unit_code": 156001.0,  # a code typed into a General cell
        "s.goal_fit.basis": True,
        "s.indicator_clarity.basis": "   ",
        "tgt.time.1.result": datetime(2021, 12, 31),
        "b.pay_year_end": "是",
    }
    out = edit_cells(filled, tmp_path / "typed.xlsx", layout, typed)
    filing = read(out, catalog)
    cells, inputs = filing.cells, to_inputs(filing)
    assert inputs["s.goal_fit.score"] == D("3.35")
    assert inputs["s.indicator_clarity.score"] == "abc"
    assert inputs["s.staff_control.score"] == D(0)
    assert cells["s.three_public_change.score"].value is None
    assert inputs["s.three_public_change.score"] is None
    assert cells["s.key_spending.score"].formula == "1+2.35"
    assert cells["s.key_spending.score"].value is None  # openpyxl saves no result
    assert inputs["s.budget_completion.score"] is None
    assert cells["exec.basic.budget"].value == ExcelError("#DIV/0!")
    assert inputs["exec.basic.budget"] == ExcelError("#DIV/0!")
    assert cells["exec.project.budget"] == RawCell(D(44561), None, True, "附件2!C7")
    assert inputs["exec.project.budget"] == D(44561)  # the serial number, flagged by is_date
    assert cells["b.staff_quota"].value is True
    assert inputs["b.staff_quota"] is True  # not a number: left for the rules to report
    assert inputs["b.satisfaction"] == D("0.95")
    assert inputs["b.social_degree"] == D("0.9")
    assert inputs["b.econ_degree"] == D("0.9")  # "90" typed as text means 90 %
    assert inputs["info.unit_code"] == "156001"
    assert inputs["s.goal_fit.basis"] == "TRUE"
    assert inputs["s.indicator_clarity.basis"] is None
    assert inputs["tgt.time.1.result"] == "2021-12-31"
    assert inputs["b.pay_year_end"] == "是"
    assert not cells["s.goal_fit.score"].is_date


@needs_libreoffice
def test_libreoffice_round_trip_reads_the_same(
    filled: Path, catalog: Catalog, layout: WorkbookLayout, tmp_path: Path
) -> None:
    typed = edit_cells(filled, tmp_path / "typed.xlsx", layout, {"s.key_spending.score": "=1+2.35"})
    saved, saved_typed = recalc_with_libreoffice([filled, typed], tmp_path / "lo")
    original = read(filled, catalog)
    filing = read(saved, catalog)
    assert to_inputs(filing) == to_inputs(original)
    assert filing.cells["s.total"] == RawCell(D("95.35"), "SUM(F5:F31)", False, "附件1!F32")
    assert filing.cells["exec.total.carry_rate"].value == D("0.0603556895875075")
    assert filing.cells["s.grade"].value == "优"
    assert filing.moved == {}
    # Every value LibreOffice computed agrees with the cached values our writer stored.
    assert {k: c.value for k, c in filing.cells.items()} == {k: c.value for k, c in original.cells.items()}
    # A formula typed into an input cell: LibreOffice computed it, we read formula and result.
    cell = read(saved_typed, catalog).cells["s.key_spending.score"]
    assert (cell.formula, cell.value) == ("1+2.35", D("3.35"))


def test_rows_inserted_above_a_table_follow_the_defined_names(
    filled: Path, catalog: Catalog, layout: WorkbookLayout, tmp_path: Path
) -> None:
    wb = openpyxl.load_workbook(filled)
    wb["附件1"].insert_rows(3, 2)  # two rows above the indicator table
    for name, dn in wb.defined_names.items():
        m = re.fullmatch(r"'附件1'!\$([A-Z]+)\$(\d+)", dn.attr_text)
        if name.startswith("K_") and m and int(m.group(2)) >= 3:
            dn.attr_text = f"'附件1'!${m.group(1)}${int(m.group(2)) + 2}"
    out = tmp_path / "inserted.xlsx"
    wb.save(out)
    filing = read(out, catalog)
    assert filing.moved["s.staff_control.score"] == "附件1!F9"
    assert filing.a1("s.staff_control.score") == ("附件1", "F9")
    assert filing.cells["s.staff_control.score"] == RawCell(D("3.35"), None, False, "附件1!F9")
    assert filing.cells["s.total"].address == "附件1!F34"
    moved_sheets = {filing.moved[k].split("!")[0] for k in filing.moved}
    assert moved_sheets == {"附件1"}
    assert len(filing.moved) == sum(1 for r in layout.refs.values() if r.sheet == "附件1" and r.row >= 2)
    assert to_inputs(filing) == to_inputs(read(filled, catalog))


def test_workbook_part_parsed_once_per_content(
    filled: Path, catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """workbook.xml is parsed once per distinct content; a changed copy (a name moved) is parsed anew."""
    calls: list[str] = []
    real = xml_parts.read_book

    def counting(pkg: Any) -> Any:
        calls.append(pkg.path.name)
        return real(pkg)

    monkeypatch.setattr(reader, "read_book", counting)
    monkeypatch.setattr(xml_parts, "_PARTS", type(xml_parts._PARTS)())
    copy = tmp_path / "copy.xlsx"
    copy.write_bytes(filled.read_bytes())
    name = "<definedName name=\"K_s__staff_control__score\">'附件1'!$F$"

    def move(xml: str) -> str:
        return xml.replace(name + "7<", name + "40<")

    moved = rezip(filled, tmp_path / "moved.xlsx", {"xl/workbook.xml": move})
    assert read(filled, catalog).cells["s.staff_control.score"].value == D("3.35")
    assert read(copy, catalog).cells["s.staff_control.score"].value == D("3.35")
    # The name now points at a row without the indicator's 三级指标 label: refused, not read as blank.
    with pytest.raises(XlsxKpiError, match="附件1!C40：三级指标应为“在职人员控制率（5分）”，此处却是“（空）”"):
        read(moved, catalog)
    assert calls == [filled.name, moved.name]


def test_a_missing_name_falls_back_to_the_layout_and_ref_is_refused(
    filled: Path, catalog: Catalog, layout: WorkbookLayout, tmp_path: Path
) -> None:
    def drop(xml: str) -> str:
        return re.sub(r'<definedName name="K_s__goal_fit__score">[^<]*</definedName>', "", xml)

    out = rezip(filled, tmp_path / "names.xlsx", {"xl/workbook.xml": drop})
    assert "K_s__goal_fit__score" not in member(out, "xl/workbook.xml")
    filing = read(out, catalog)
    assert filing.moved == {}
    assert filing.cells["s.goal_fit.score"].value == D(2)
    # #REF! means the cell was deleted (names below it moved up): the template position holds another row.
    deleted = rezip(
        filled, tmp_path / "ref.xlsx", {"xl/workbook.xml": lambda xml: xml.replace(">'附件1'!$F$7<", ">'附件1'!#REF!<")}
    )
    err = refusal(deleted, catalog)
    assert err.cell == "附件1!F7"
    assert err.message.startswith("模板中的这个单元格已被删除（Excel 名称 K_s__staff_control__score 显示 #REF!")


# --- XML variants other writers produce ---------------------------------------------------------------------


def test_cells_and_rows_without_r_attributes(
    filled: Path, catalog: Catalog, layout: WorkbookLayout, tmp_path: Path
) -> None:
    """Some writers omit r= when a cell follows the previous one; positions then run on."""

    def strip_positions(xml: str) -> str:
        prev_row = 0

        def row(m: re.Match[str]) -> str:
            nonlocal prev_row
            number = int(m.group(2))
            keep = number != prev_row + 1
            prev_row = number
            prev_col = -1

            def cell(c: re.Match[str]) -> str:
                nonlocal prev_col
                col = col_index(c.group(1))
                keep_r = col != prev_col + 1
                prev_col = col
                return c.group(0) if keep_r else "<c"

            body = re.sub(r'<c r="([A-Z]+)\d+"', cell, m.group(3))
            return (m.group(1) if keep else "<row") + body

        return re.sub(r'(<row r="(\d+)")([^>]*/>|.*?</row>)', row, xml, flags=re.S)

    name = sheet_member(filled, "基础数据")
    out = rezip(filled, tmp_path / "no_r.xlsx", {name: strip_positions})
    xml = member(out, name)
    assert '<row r="5"' not in xml  # row 5 follows row 4, so it lost its r=
    assert 'r="C4"' not in xml  # C4 follows B4
    inputs = to_inputs(read(out, catalog))
    original = to_inputs(read(filled, catalog))
    assert inputs["b.staff_quota"] == D(6)
    assert {k: v for k, v in inputs.items() if k.startswith("b.")} == {
        k: v for k, v in original.items() if k.startswith("b.")
    }


def test_shared_formula_children_are_rebuilt(filled: Path, catalog: Catalog, tmp_path: Path) -> None:
    def share(xml: str) -> str:
        xml = xml.replace('<f>IF(D5=0,"",E5/D5)</f>', '<f t="shared" ref="F5:F7" si="0">IF(D5=0,"",E5/D5)</f>')
        for row in (6, 7):
            xml = xml.replace(f'<f>IF(D{row}=0,"",E{row}/D{row})</f>', '<f t="shared" si="0"/>')
        return xml.replace("&quot;", '"')

    name = sheet_member(filled, "附件2")
    out = rezip(filled, tmp_path / "shared.xlsx", {name: share})
    assert member(out, name).count('si="0"') == 3
    cells = read(out, catalog).cells
    assert cells["exec.total.carry_rate"].formula == 'IF(D5=0,"",E5/D5)'
    assert cells["exec.basic.carry_rate"].formula == 'IF(D6=0,"",E6/D6)'
    assert cells["exec.project.carry_rate"] == RawCell(D("0.105354245538129"), 'IF(D7=0,"",E7/D7)', False, "附件2!F7")


def test_shift_formula() -> None:
    assert shift_formula("SUM(F5:F31)+$A$1+A$2+'附件2'!C5&\"B2\"", 1, 2) == "SUM(H6:H32)+$A$1+C$2+'附件2'!E6&\"B2\""
    assert shift_formula("LOG10(A1)", 1, 0) == "LOG10(A2)"
    assert shift_formula("SUM(A:A)", 1, 0) is None  # whole columns: left as "(shared)"
    assert shift_formula("A1", -1, 0) is None


def test_rich_text_phonetic_runs_and_escapes(filled: Path, catalog: Catalog, tmp_path: Path) -> None:
    def rich(xml: str) -> str:
        plain = "<si><t>编制数6人，\n在职人员数8人</t></si>"
        assert plain in xml
        runs = (
            '<si><r><rPr><b/><sz val="10"/><rFont val="宋体"/></rPr><t>编制数6人，</t></r>'
            '<r><t xml:space="preserve">\n在职人员数8人_x000D_</t></r>'
            '<rPh sb="0" eb="1"><t>ヘンセイ</t></rPh><phoneticPr fontId="1"/></si>'
        )
        return xml.replace(plain, runs)

    out = rezip(filled, tmp_path / "rich.xlsx", {"xl/sharedStrings.xml": rich})
    assert read(out, catalog).cells["s.staff_control.basis"].value == "编制数6人，\n在职人员数8人\r"


def test_inline_strings_and_cell_types(filled: Path, catalog: Catalog, layout: WorkbookLayout, tmp_path: Path) -> None:
    sheet = sheet_member(filled, "基础数据")
    quota, actual, year_end, satisfaction, planned = (
        a1(layout, k) for k in ("b.staff_quota", "b.staff_actual", "b.pay_year_end", "b.satisfaction", "b.work_planned")
    )

    def cells(xml: str) -> str:
        def put(xml: str, ref: str, cell: str) -> str:
            new, n = re.subn(rf'<c r="{ref}"[^>]*?(/>|>.*?</c>)', cell, xml, count=1, flags=re.S)
            assert n == 1
            return new

        xml = put(xml, quota, f'<c r="{quota}" t="inlineStr"><is><r><t>6</t></r><rPh><t>x</t></rPh></is></c>')
        xml = put(xml, actual, f'<c r="{actual}" t="b"><v>1</v></c>')
        xml = put(xml, year_end, f'<c r="{year_end}" t="d"><v>2021-12-31T00:00:00</v></c>')
        xml = put(xml, planned, f'<c r="{planned}"><v>6.0299999999999994</v></c>')
        return put(xml, satisfaction, f'<c r="{satisfaction}" t="e"><v>#N/A</v></c>')

    out = rezip(filled, tmp_path / "types.xlsx", {sheet: cells})
    filing = read(out, catalog)
    assert filing.cells["b.staff_quota"].value == "6"
    assert filing.cells["b.staff_actual"].value is True
    assert filing.cells["b.pay_year_end"] == RawCell("2021-12-31T00:00:00", None, True, f"基础数据!{year_end}")
    assert filing.cells["b.satisfaction"].value == ExcelError("#N/A")
    assert filing.cells["b.work_planned"].value == D("6.03")  # 15 significant digits, as Excel shows it
    inputs = to_inputs(filing)
    assert inputs["b.staff_quota"] == D(6)  # text that is a number
    assert inputs["b.staff_actual"] is True
    assert inputs["b.pay_year_end"] == "2021-12-31T00:00:00"
    assert inputs["b.satisfaction"] == ExcelError("#N/A")


def test_hostile_far_cell_costs_nothing(filled: Path, catalog: Catalog, tmp_path: Path) -> None:
    far = '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData>'
    name = sheet_member(filled, "附件1")
    out = rezip(filled, tmp_path / "far.xlsx", {name: lambda xml: xml.replace("</sheetData>", far)})
    assert to_inputs(read(out, catalog)) == to_inputs(read(filled, catalog))


def test_identity_from_document_properties_when_the_sheet_is_gone(
    filled: Path, catalog: Catalog, tmp_path: Path
) -> None:
    def drop_meta(xml: str) -> str:
        return re.sub(r'<sheet name="_xlsx_kpi"[^>]*/>', "", xml)

    out = rezip(filled, tmp_path / "props.xlsx", {"xl/workbook.xml": drop_meta})
    filing = read(out, catalog)
    assert filing.meta["workbook_id"] == "sc-department"
    assert filing.meta["unit_name"] == "资阳市科学技术协会"
    assert filing.meta["project_name"] == ""  # "-" in the properties means empty
    assert to_inputs(filing)["s.staff_control.score"] == D("3.35")


def test_read_time(filled: Path, catalog: Catalog) -> None:
    """A guard against regressions such as parsing whole sheets: the target is ~5 ms on a quiet machine."""
    read_workbook(filled, catalog)
    times = []
    for _ in range(20):
        start = time.perf_counter()
        read_workbook(filled, catalog)
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.05


# --- refusals -----------------------------------------------------------------------------------------------


def test_missing_file_and_folder(tmp_path: Path, catalog: Catalog) -> None:
    assert refusal(tmp_path / "none.xlsx", catalog).message == "文件不存在，请检查文件名和路径"
    assert refusal(tmp_path, catalog).message == "这是一个文件夹，不是 Excel 文件，请指定其中的 .xlsx 文件"


def test_no_read_permission(filled: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = Path.open

    def deny(self: Path, *args: object, **kwargs: object) -> object:
        if self == filled:
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", deny)
    with pytest.raises(XlsxKpiError) as info:
        read_workbook(filled, catalog)
    assert info.value.message == "没有读取权限，请关闭正在使用它的程序或检查文件权限后重试"


OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


NOT_WORKBOOKS: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "文件是空的（0 字节），请重新保存或重新索取后报送"),
    "random": (bytes(range(256)) * 16, "文件格式无法识别，不是 Excel 工作簿，请使用下发的 .xlsx 模板"),
    "encrypted": (
        OLE + b"\x00" * 20000 + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 100,
        "工作簿设置了打开密码（已加密），请取消密码后另存为 .xlsx 再报送",
    ),
    "xls": (
        OLE + b"\x00" * 500 + "Workbook".encode("utf-16-le") + b"\x00" * 100,
        "这是旧版 Excel 97-2003（.xls）文件，请在 Excel 或 WPS 中另存为 .xlsx",
    ),
    "csv": (
        "单位名称,预算单位编码\n资阳市科学技术协会,156001\n".encode(),
        "这不是 Excel 工作簿（看起来是文本、CSV 或网页文件），请使用下发的 .xlsx 模板",
    ),
    "csv_gbk": (
        "单位名称,预算单位编码\r\n资阳市科学技术协会,156001\r\n".encode("gbk"),
        "这不是 Excel 工作簿（看起来是文本、CSV 或网页文件），请使用下发的 .xlsx 模板",
    ),
    "html": (
        b"\xef\xbb\xbf<html><body><table><tr><td>1</td></tr></table></body></html>",
        "这不是 Excel 工作簿（看起来是文本、CSV 或网页文件），请使用下发的 .xlsx 模板",
    ),
    "docx": (
        _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"}),
        "这是 Word 文档（.docx），不是 Excel 工作簿，请使用下发的 .xlsx 模板",
    ),
    "pptx": (
        _zip({"[Content_Types].xml": b"<Types/>", "ppt/presentation.xml": b"<p/>"}),
        "这是 PowerPoint 演示文稿（.pptx），不是 Excel 工作簿，请使用下发的 .xlsx 模板",
    ),
    "ods": (
        _zip({"mimetype": b"application/vnd.oasis.opendocument.spreadsheet", "content.xml": b"<x/>"}),
        "这是 OpenDocument 表格（.ods），请在 WPS 或 LibreOffice 中另存为 .xlsx",
    ),
    "other_zip": (
        _zip({"readme.txt": b"hello"}),
        "不是 Excel 工作簿（缺少 xl/workbook.xml），请使用下发的 .xlsx 模板",
    ),
    "many_members": (
        _zip({f"x/{i}.txt": b"" for i in range(package.MAX_MEMBERS + 1)}),
        "文件异常（压缩包内超过 5000 个部件），已拒绝读取",
    ),
}


@pytest.mark.parametrize("kind", sorted(NOT_WORKBOOKS))
def test_files_that_are_not_workbooks(kind: str, tmp_path: Path, catalog: Catalog) -> None:
    data, message = NOT_WORKBOOKS[kind]
    path = tmp_path / f"{kind}.xlsx"
    path.write_bytes(data)
    err = refusal(path, catalog)
    assert err.message == message
    assert err.cell is None


def _set_declared_sizes(data: bytes, name: str, *, compressed: int | None = None, size: int | None = None) -> bytes:
    """Patch a member's sizes in the central directory (what zipfile trusts), leaving its data alone."""
    out = bytearray(data)
    pos = out.find(b"PK\x01\x02")
    while pos >= 0:
        name_len = struct.unpack_from("<H", out, pos + 28)[0]
        if out[pos + 46 : pos + 46 + name_len].decode() == name:
            if compressed is not None:
                struct.pack_into("<I", out, pos + 20, compressed)
            if size is not None:
                struct.pack_into("<I", out, pos + 24, size)
            return bytes(out)
        pos = out.find(b"PK\x01\x02", pos + 4)
    raise AssertionError(name)


def test_zip_bombs_and_lying_sizes(filled: Path, catalog: Catalog, tmp_path: Path) -> None:
    data = filled.read_bytes()
    bomb = tmp_path / "bomb.xlsx"
    bomb.write_bytes(_set_declared_sizes(data, "xl/worksheets/sheet2.xml", size=300 * 1024 * 1024))
    assert refusal(bomb, catalog).message == "文件异常（压缩比过高，疑似压缩炸弹），已拒绝读取"
    huge = tmp_path / "huge.xlsx"
    huge.write_bytes(
        _set_declared_sizes(data, "xl/worksheets/sheet2.xml", compressed=3 * 1024 * 1024, size=250 * 1024 * 1024)
    )
    assert refusal(huge, catalog).message == "文件异常（解压后超过 200 MB），已拒绝读取"
    lying = tmp_path / "lying.xlsx"
    lying.write_bytes(_set_declared_sizes(data, "xl/workbook.xml", size=100))
    assert refusal(lying, catalog).message == "文件异常（压缩包部件解压后超过其声明的大小），已拒绝读取"
    short = tmp_path / "short.xlsx"  # declares more than it holds: the CRC and size check fail
    short.write_bytes(_set_declared_sizes(data, "xl/workbook.xml", size=30000))
    assert refusal(short, catalog).message == "文件已损坏（不是完整的 .xlsx），请重新保存或重新索取"


def test_truncated_and_damaged_zips(filled: Path, catalog: Catalog, tmp_path: Path) -> None:
    data = filled.read_bytes()
    truncated = tmp_path / "truncated.xlsx"
    truncated.write_bytes(data[: len(data) // 2])
    assert refusal(truncated, catalog).message == "文件已损坏（不是完整的 .xlsx），请重新保存或重新索取"
    with zipfile.ZipFile(filled) as zf:
        info = zf.getinfo("xl/sharedStrings.xml")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    damaged = bytearray(data)
    damaged[start + 100 : start + 400] = bytes(300)
    path = tmp_path / "damaged.xlsx"
    path.write_bytes(bytes(damaged))
    assert refusal(path, catalog).message == "文件已损坏（不是完整的 .xlsx），请重新保存或重新索取"


def test_macros_and_strict_open_xml(filled: Path, catalog: Catalog, tmp_path: Path) -> None:
    macro = rezip(filled, tmp_path / "macro.xlsx", {"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0 VBA"})
    assert refusal(macro, catalog).message == "工作簿包含宏（VBA），为安全起见不予读取；请另存为不含宏的 .xlsx"

    def strict(xml: str) -> str:
        return xml.replace(
            'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"',
            'xmlns="http://purl.oclc.org/ooxml/spreadsheetml/main"',
        )

    path = rezip(filled, tmp_path / "strict.xlsx", {"xl/workbook.xml": strict})
    assert refusal(path, catalog).message == "这是“严格 Open XML”格式，请在 Excel 中另存为“Excel 工作簿(.xlsx)”"


@pytest.mark.parametrize(
    ("part", "doctype"),
    [
        ("xl/workbook.xml", '<!DOCTYPE x [<!ENTITY a "b">]>'),
        ("xl/sharedStrings.xml", '<!DOCTYPE x [<!ENTITY a "b">]>'),
        ("xl/worksheets/sheet2.xml", '<!DOCTYPE x SYSTEM "http://example.com/x.dtd">'),
        ("xl/styles.xml", '<!DOCTYPE lol [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'),
        ("xl/_rels/workbook.xml.rels", "<!DOCTYPE x>"),
    ],
)
def test_dtd_and_entities_are_refused(part: str, doctype: str, filled: Path, catalog: Catalog, tmp_path: Path) -> None:
    def add(xml: str) -> str:
        head, sep, rest = xml.partition("?>")
        return head + sep + doctype + rest

    path = rezip(filled, tmp_path / "dtd.xlsx", {part: add})
    assert doctype in member(path, part)
    message = "文件包含不安全的 XML 内容（DTD/实体声明），已拒绝读取，请用 Excel 或 WPS 重新保存后报送"
    assert refusal(path, catalog).message == message


def test_malformed_xml_names_the_part(filled: Path, catalog: Catalog, tmp_path: Path) -> None:
    name = sheet_member(filled, "附件2")
    path = rezip(filled, tmp_path / "bad.xlsx", {name: lambda xml: xml.replace("<sheetData>", "<sheetData><row &x;>")})
    assert refusal(path, catalog).message == f"文件已损坏（{name} 无法解析），请在 Excel 或 WPS 中重新保存后报送"
    bad_index = rezip(
        filled,
        tmp_path / "index.xlsx",
        {name: lambda xml: re.sub(r'(<c r="C3"[^>]*t="s"[^>]*><v>)\d+', r"\g<1>99999", xml, count=1)},
    )
    err = refusal(bad_index, catalog)
    assert (err.message, err.cell) == ("文件已损坏（不是完整的 .xlsx），请重新保存或重新索取", "附件2!C3")


def test_generic_workbook_is_not_ours(tmp_path: Path, catalog: Catalog) -> None:
    wb = openpyxl.Workbook()
    wb.active["A1"] = "资阳市科学技术协会"
    path = tmp_path / "generic.xlsx"
    wb.save(path)
    assert refusal(path, catalog).message == "不是由 xlsx-kpi 生成的模板（找不到模板标识），请使用下发的模板填写"


def _identity_row(src: Path, dst: Path, key: str, value: str) -> Path:
    wb = openpyxl.load_workbook(src)
    ws = wb["_xlsx_kpi"]
    for row in ws.iter_rows(min_col=1, max_col=2):
        if row[0].value == key:
            row[1].value = value
            break
    else:
        raise AssertionError(key)
    wb.save(dst)
    return dst


def test_identity_checks(filled: Path, catalog: Catalog, tmp_path: Path) -> None:
    old = _identity_row(filled, tmp_path / "old.xlsx", "workbook_version", "0")
    assert refusal(old, catalog).message == "模板版本 0 已过期（当前为第 1 版），无法读取，请用新模板重新填写"
    new = _identity_row(filled, tmp_path / "new.xlsx", "workbook_version", "7")
    assert refusal(new, catalog).message == "模板版本 7 比本工具的规格（第 1 版）新，请升级 xlsx-kpi 后再读取"
    kind = _identity_row(filled, tmp_path / "kind.xlsx", "workbook_id", "xx-department")
    assert (
        refusal(kind, catalog).message == "模板表种“xx-department”不在本工具的规格中，请使用下发的模板或升级 xlsx-kpi"
    )
    fp = _identity_row(filled, tmp_path / "fp.xlsx", "fingerprint", "0000000000000000")
    assert refusal(fp, catalog).message == "模板结构与当前规格不一致（版式指纹不符），请用新模板重新填写"
    year = _identity_row(filled, tmp_path / "year.xlsx", "year", "二〇二一")
    assert refusal(year, catalog).message == "模板标识不完整（year 缺失或无法识别），请使用下发的模板重新填写"


def test_renamed_sheet_is_recognised_by_its_content(filled: Path, catalog: Catalog, tmp_path: Path) -> None:
    """Renamed without its defined names following (as a hand edit would): found by its titles and labels."""
    path = rezip(
        filled, tmp_path / "renamed.xlsx", {"xl/workbook.xml": lambda x: x.replace('name="附件2"', 'name="表2"')}
    )
    filing = reader.read_workbook(path, catalog)
    assert filing.renamed == {"附件2": "表2"} and filing.added == [] and filing.moved == {}
    assert filing.a1("exec.total.budget") == ("表2", "C5")
    assert filing.sheet_name("附件2") == "表2" and filing.sheet_name("附件1") == "附件1"


def test_deleted_sheet(filled: Path, catalog: Catalog, tmp_path: Path) -> None:
    path = rezip(
        filled,
        tmp_path / "deleted.xlsx",
        {"xl/workbook.xml": lambda x: re.sub(r'<sheet name="附件2"[^>]*/>', "", x)},
    )
    err = refusal(path, catalog)
    assert err.message == "缺少工作表“附件2”（可能被删除或改名），请用原模板重新填写"
    assert err.cell is None


def test_date_formats() -> None:
    assert is_date_format("yyyy-mm-dd")
    assert is_date_format('yyyy"年"m"月"d"日";@')
    assert is_date_format("[$-804]aaaa h:mm")
    assert is_date_format("[h]:mm:ss")
    assert not is_date_format("General")
    assert not is_date_format("0.00%")
    assert not is_date_format('#,##0.00"元"')
    assert not is_date_format("0.00E+00")
    assert not is_date_format("[Red]0.00;[Blue]-0.00")


def test_size_and_count_limits(filled: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(package, "MAX_FILE_BYTES", 1000)
    assert refusal(filled, catalog).message == "文件过大（超过 200 MB），不是填报的模板，已拒绝读取"
    monkeypatch.setattr(package, "MAX_FILE_BYTES", 200 * 1024 * 1024)
    monkeypatch.setattr(xml_parts, "MAX_SHARED_STRINGS", 10)
    assert refusal(filled, catalog).message == "文件异常（超过 1000000 个文字单元格内容），已拒绝读取"
