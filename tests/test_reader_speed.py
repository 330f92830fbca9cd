"""Reading work saved per file (issue 14): the package's relationships and content types are parsed once per
content, the shared strings' markup checks stay exact, and the identity rows read as before."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from seed_data import DEPT_IDENTITY, dept_inputs

from xlsx_kpi.audit import identify, reader, xml_parts
from xlsx_kpi.audit.cells import unescape
from xlsx_kpi.audit.filing import MSG_DUPLICATE_CELL
from xlsx_kpi.audit.identify import read_meta_sheet
from xlsx_kpi.audit.reader import read_workbook
from xlsx_kpi.errors import XlsxKpiError
from xlsx_kpi.formats.layout import build_layout
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.ooxml import parts
from xlsx_kpi.ooxml.package import MSG_CORRUPT, MSG_UNSAFE_XML, open_package
from xlsx_kpi.ooxml.parts import MSG_MACRO, check_kind
from xlsx_kpi.ooxml.shared_strings import read_plain
from xlsx_kpi.outputs.template import write_template

NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def rezip(src: Path, dst: Path, edit: dict[str, Any]) -> Path:
    """A copy of `src` with members replaced (str -> str function) or added (bytes)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            change = edit.get(info.filename)
            if callable(change):
                data = change(data.decode("utf-8")).encode("utf-8")
            zout.writestr(info, data)
        for name, data in edit.items():
            if isinstance(data, bytes) and name not in zin.namelist():
                zout.writestr(name, data)
    return dst


@pytest.fixture(scope="module")
def filled(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The department template filled with the seed's figures by our own writer (XlsxWriter)."""
    layout = build_layout(catalog, catalog.workbook("sc-department"), DEPT_IDENTITY)
    return write_template(layout, tmp_path_factory.mktemp("filled") / "filled.xlsx", inputs=dept_inputs())


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The parts parsed by check_kind (relationships and content types), with an empty part memo."""
    calls: list[str] = []
    rels, types = parts.relationships, parts.content_types

    def relationships(pkg: Any, name: str) -> Any:
        calls.append(name)
        return rels(pkg, name)

    def content_types(pkg: Any) -> Any:
        calls.append("[Content_Types].xml")
        return types(pkg)

    monkeypatch.setattr(parts, "relationships", relationships)
    monkeypatch.setattr(parts, "content_types", content_types)
    monkeypatch.setattr(xml_parts, "_PARTS", type(xml_parts._PARTS)())
    return calls


def test_package_parts_are_parsed_once_per_content(
    filled: Path, catalog: Catalog, tmp_path: Path, counted: list[str]
) -> None:
    copy = tmp_path / "copy.xlsx"
    copy.write_bytes(filled.read_bytes())
    first = read_workbook(filled, catalog)
    assert counted == ["_rels/.rels", "[Content_Types].xml", "xl/_rels/workbook.xml.rels"]
    # A second returned copy with the same relationships and content types: nothing parsed again.
    assert read_workbook(copy, catalog).cells == first.cells
    assert len(counted) == 3


def test_a_changed_content_types_part_is_parsed_and_a_macro_refused(
    filled: Path, catalog: Catalog, tmp_path: Path, counted: list[str]
) -> None:
    read_workbook(filled, catalog)
    macro = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"

    def enable_macros(xml: str) -> str:
        return xml.replace("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml", macro)

    bad = rezip(filled, tmp_path / "macro.xlsx", {"[Content_Types].xml": enable_macros})
    with pytest.raises(XlsxKpiError, match=re.escape(MSG_MACRO)):
        read_workbook(bad, catalog)
    assert counted.count("[Content_Types].xml") == 2  # the changed part was parsed, not taken from the memo
    assert counted.count("_rels/.rels") == 1  # the unchanged ones were


def test_check_kind_without_a_memo_parses_every_time(filled: Path, counted: list[str]) -> None:
    for _ in range(2):
        with open_package(filled) as pkg:
            check_kind(pkg)
            assert pkg.main == "xl/workbook.xml"
    assert counted == ["_rels/.rels", "[Content_Types].xml", "xl/_rels/workbook.xml.rels"] * 2


def sst(*items: str) -> bytes:
    head = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="{NS}">'
    return (head + "".join(items) + "</sst>").encode("utf-8")


def test_exclamation_and_question_marks_in_text_are_still_plain() -> None:
    # The markup checks look for the rare "!" and "?" first: text holding them is no comment or instruction.
    strings = read_plain(
        sst("<si><t>注意!请填写</t></si>", "<si><t>是否?</t></si>", "<si><t>a&lt;!b&lt;?c</t></si>"), 10, unescape
    )
    assert strings is not None
    assert list(strings) == ["注意!请填写", "是否?", "a<!b<?c"]
    assert read_plain(sst("<si><t>注意!</t></si><!-- x -->"), 10, unescape) is None
    assert read_plain(sst("<si><t>是否?</t></si><?pi x?>"), 10, unescape) is None


def test_identity_rows_anywhere_in_the_first_rows_and_a_repeated_key(
    filled: Path, catalog: Catalog, tmp_path: Path
) -> None:
    """Identity rows are read from the top down among the rows the sheet has: a key repeated below keeps the
    lower row's value, a row below MAX_META_ROWS is not read."""
    member = meta_member(filled)

    def add_rows(xml: str) -> str:
        extra = (
            '<row r="150"><c r="A150" t="inlineStr"><is><t>note</t></is></c>'
            '<c r="B150" t="inlineStr"><is><t>第150行</t></is></c></row>'
            '<row r="160"><c r="A160" t="inlineStr"><is><t>note</t></is></c>'
            '<c r="B160" t="inlineStr"><is><t>第160行</t></is></c></row>'
            '<row r="201"><c r="A201" t="inlineStr"><is><t>late</t></is></c>'
            '<c r="B201" t="inlineStr"><is><t>不读</t></is></c></row>'
        )
        return xml.replace("</sheetData>", extra + "</sheetData>")

    out = rezip(filled, tmp_path / "meta.xlsx", {member: add_rows})
    meta = identity_rows(out)
    assert meta["note"] == "第160行"
    assert "late" not in meta
    assert meta["workbook_id"] == "sc-department" and meta["unit_code"] == DEPT_IDENTITY.unit_code
    assert meta.keys() == reader.read_workbook(filled, catalog).meta.keys() | {"note"}


def meta_member(path: Path) -> str:
    """The zip member of the hidden identity sheet, through workbook.xml and its relationships."""
    with zipfile.ZipFile(path) as z:
        book = z.read("xl/workbook.xml").decode()
        rels = z.read("xl/_rels/workbook.xml.rels").decode()
    rid = re.search(r'<sheet [^>]*name="_xlsx_kpi"[^>]*r:id="([^"]+)"', book)
    assert rid is not None
    target = re.search(rf'Id="{rid.group(1)}"[^>]*Target="([^"]+)"|Target="([^"]+)"[^>]*Id="{rid.group(1)}"', rels)
    assert target is not None
    return "xl/" + (target.group(1) or target.group(2))


def identity_rows(path: Path, *, plain: bool = True, monkeypatch: pytest.MonkeyPatch | None = None) -> dict[str, str]:
    """read_meta_sheet on a file: through the plain path when it applies, or (plain=False) through scan_sheet."""
    with open_package(path) as pkg:
        check_kind(pkg)
        book = xml_parts.read_book(pkg)
        strings = xml_parts.read_shared_strings(pkg, book.shared_strings)
        if not plain:
            assert monkeypatch is not None
            monkeypatch.setattr(identify, "text_columns", lambda *args: None)
        return read_meta_sheet(pkg, book, strings)


DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["filled", "cn_inserted_lo.xlsx", "tianfu_12_qty_lo.xlsx", "tianfu_stray_lo.xlsx"])
def test_identity_sheet_reads_the_same_without_a_callback_per_element(
    name: str, filled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """XlsxWriter's and LibreOffice's identity sheets are in the plain form; both paths give the same rows."""
    path = filled if name == "filled" else DATA / name
    with open_package(path) as pkg:
        check_kind(pkg)
        book = xml_parts.read_book(pkg)
        member = book.targets[book.sheets["_xlsx_kpi"]]
        columns = parts.text_columns(pkg, member, 200)
    assert columns is not None and len(columns) >= 15
    plain = identity_rows(path)
    assert plain["workbook_id"] in ("sc-department", "sc-project", "gz-department", "cn-department")
    assert len(plain["identity"]) == 16
    assert identity_rows(path, plain=False, monkeypatch=monkeypatch) == plain


def edit_meta(filled: Path, tmp_path: Path, edit: Any) -> Path:
    return rezip(filled, tmp_path / "meta.xlsx", {meta_member(filled): edit})


def test_identity_cells_in_other_forms_are_read_by_the_full_scan(filled: Path, tmp_path: Path) -> None:
    def number_and_inline(xml: str) -> str:
        extra = (
            '<row r="40"><c r="A40" t="inlineStr"><is><t>count</t></is></c><c r="B40"><v>7</v></c></row>'
            '<row r="41"><c r="A41" t="inlineStr"><is><t>blank</t></is></c><c r="B41" s="1"/></row>'
        )
        return xml.replace("</sheetData>", extra + "</sheetData>")

    out = edit_meta(filled, tmp_path, number_and_inline)
    with open_package(out) as pkg:
        check_kind(pkg)
        book = xml_parts.read_book(pkg)
        assert parts.text_columns(pkg, book.targets[book.sheets["_xlsx_kpi"]], 200) is None
    meta = identity_rows(out)
    assert meta["count"] == "7" and meta["blank"] == ""
    assert meta["workbook_id"] == "sc-department"


@pytest.mark.parametrize(
    ("what", "edit", "message"),
    [
        (
            "rows out of order",
            lambda xml: xml.replace("<sheetData>", '<sheetData><row r="300"><c r="A300" t="s"><v>0</v></c></row>', 1),
            "中第 1 行排在第 300 行之后",
        ),
        (
            "a cell written twice",
            lambda xml: re.sub(r'(<c r="A3" t="s"><v>[0-9]+</v></c>)', r"\1\1", xml, count=1),
            MSG_DUPLICATE_CELL,
        ),
        (
            "a string index past the shared strings",
            lambda xml: re.sub(r'(<c r="B3" t="s"><v>)[0-9]+(</v>)', r"\g<1>999999\g<2>", xml, count=1),
            "_xlsx_kpi!B3：" + MSG_CORRUPT,
        ),
        (
            "a DTD",
            lambda xml: xml.replace("?>", '?><!DOCTYPE worksheet [<!ENTITY a "b">]>', 1),
            MSG_UNSAFE_XML,
        ),
    ],
)
def test_damaged_identity_sheets_are_refused_as_before(
    what: str, edit: Any, message: str, filled: Path, catalog: Catalog, tmp_path: Path
) -> None:
    out = edit_meta(filled, tmp_path, edit)
    with pytest.raises(XlsxKpiError, match=re.escape(message)):
        read_workbook(out, catalog)
