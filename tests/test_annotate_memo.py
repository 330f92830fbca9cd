"""The patcher's memo: parts parsed once per layout give the same copy, byte for byte, as parsing them afresh."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import pytest
from published import dept_published

from xlsx_kpi.audit.report import Report
from xlsx_kpi.batch.check import Options, check_file
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.ooxml.patch import Element, Unpatchable, parse_sheet, parse_tags
from xlsx_kpi.outputs.annotate import memo, workbook
from xlsx_kpi.outputs.annotate.memo import Memo, flagged_sheet, forget, sheet_root, tags_from
from xlsx_kpi.outputs.annotate.patcher import annotate_fast
from xlsx_kpi.outputs.annotate.sheets import merges_of
from xlsx_kpi.outputs.annotate.workbook import drop_app_titles

STAMP = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ| [0-9a-f]{32}<")
KEEP: dict[str, str | None] = {"sheetViews": None, "cols": None, "mergeCells": None}
NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
# A row long enough that every element after <sheetData> moves by more than the distance between them.
EXTRA_ROW = b'<row r="1000"><c r="A1000" t="inlineStr"><is><t>' + b"x" * 100_000 + b"</t></is></c></row>"


@pytest.fixture(scope="module")
def source(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dept_published(catalog, tmp_path_factory.mktemp("pub"))


@pytest.fixture(scope="module")
def report(source: Path, catalog: Catalog) -> Report:
    return check_file(source, catalog, Options(annotate=False))


def members(path: Path) -> dict[str, bytes]:
    """The copy's members, the review time and the digest over it blanked (they change from one minute to the next)."""
    with zipfile.ZipFile(path) as z:
        return {n: STAMP.sub(b"T", z.read(n)) for n in z.namelist()}


def sheet_part(path: Path, name: str) -> str:
    """The member holding worksheet `name`."""
    with zipfile.ZipFile(path) as z:
        book = ElementTree.fromstring(z.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(z.read("xl/_rels/workbook.xml.rels"))
    rid = next(s.get(REL) for s in book.iterfind("m:sheets/m:sheet", NS) if s.get("name") == name)
    target = next(r.get("Target", "") for r in rels if r.get("Id") == rid)
    return target.lstrip("/") if target.startswith("/") else "xl/" + target


def rewritten(source: Path, out: Path, sheet: Callable[[bytes], bytes], book: Callable[[bytes], bytes]) -> Path:
    """The workbook with every worksheet part and workbook.xml passed through `sheet` and `book`."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.startswith("xl/worksheets/sheet"):
                data = sheet(data)
            elif info.filename == "xl/workbook.xml":
                data = book(data)
            dst.writestr(info, data)
    return out


def own_view(data: bytes) -> bytes:
    """A unit's save: its own zoom and first visible cell, a wider dimension, one more row of figures."""
    data = data.replace(b"<sheetView ", b'<sheetView zoomScale="85" topLeftCell="B3" ', 1)
    data = re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:Z1000"', data, count=1)
    return data.replace(b"</sheetData>", EXTRA_ROW + b"</sheetData>")


def own_window(data: bytes) -> bytes:
    """workbook.xml as another save leaves it: the window elsewhere, another sheet active."""
    data = re.sub(rb'windowWidth="\d+"', b'windowWidth="28800"', data)
    return re.sub(rb'activeTab="\d+"', b'activeTab="2"', data)


def dump(el: Element) -> tuple[object, ...]:
    """Everything an element holds, its kept descendants included."""
    return (el.tag, el.attrs, el.start, el.head_end, el.empty, el.inner_end, el.end, el.count) + tuple(
        dump(c) for c in el.children
    )


def longer_sheets(source: Path, out: Path) -> Path:
    """The same workbook with one more row in every worksheet's <sheetData>: the same layout, other content."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.startswith("xl/worksheets/sheet"):
                data = data.replace(b"</sheetData>", EXTRA_ROW + b"</sheetData>")
            dst.writestr(info, data)
    return out


def test_a_second_file_of_the_layout_gives_the_copy_a_fresh_parse_gives(
    source: Path, report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = longer_sheets(source, tmp_path / "other.xlsx")
    forget()
    first = annotate_fast(source, report, tmp_path / "first.xlsx")
    assert first is not None
    parsed: list[int] = []
    real = memo.parse_sheet
    monkeypatch.setattr(memo, "parse_sheet", lambda data, *a: parsed.append(len(data)) or real(data, *a))
    warm = annotate_fast(other, report, tmp_path / "warm.xlsx")
    assert warm is not None
    assert parsed == []  # every flagged sheet reused the first file's parse
    forget()
    cold = annotate_fast(other, report, tmp_path / "cold.xlsx")
    assert cold is not None
    # parsed afresh: the flagged sheets, and 填表说明 (tabSelected, so its copy is unselected)
    assert len(parsed) == len({f.sheet for f in report.findings}) + 1 == 4
    assert members(warm) == members(cold)
    # The content after the new row moved: the extra row is in the copy, and the findings' fills still land.
    part = sheet_part(warm, "附件2")
    assert EXTRA_ROW in members(warm)[part]
    assert members(warm)[part] != members(first)[part]
    assert re.search(rb'<c r="F7" s="(\d+)"', members(warm)[part]).group(1) == re.search(  # type: ignore[union-attr]
        rb'<c r="F7" s="(\d+)"', members(first)[part]
    ).group(1)
    # The tree made of the kept head (up to <sheetData>'s content) and the kept tail is the fresh parse's.
    with zipfile.ZipFile(other) as z:
        data = z.read(part)
    assert memo._HEADS.find((data[: data.index(b"<sheetData>") + 11], tuple(KEEP.items()))) is not None
    got = flagged_sheet(data, KEEP, merges_of)
    root, rows = parse_sheet(data, KEEP, True)
    assert dump(got.root) == dump(root) and [dump(r.el) for r in got.rows] == [dump(r.el) for r in rows]
    assert root.kid("sheetData").inner_end == data.index(b"</sheetData>")  # type: ignore[union-attr]


def test_two_layouts_keep_two_entries(catalog: Catalog, source: Path, report: Report, tmp_path: Path) -> None:
    forget()
    other = longer_sheets(source, tmp_path / "other.xlsx")
    annotate_fast(source, report, tmp_path / "a.xlsx")
    kept = len(memo._TAILS.entries)
    # A sheet with another skeleton (a merge more) is a new entry, not a hit on the first one.
    with zipfile.ZipFile(source) as z:
        part = sheet_part(source, "附件2")
        data = z.read(part)
    moved = data.replace(b'<mergeCell ref="', b'<mergeCell ref="AA1:AB1"/><mergeCell ref="', 1)
    root_a = flagged_sheet(data, KEEP, merges_of)
    root_b = flagged_sheet(moved, KEEP, merges_of)
    assert len(memo._TAILS.entries) == kept + 1
    assert (1, 27, 1, 28) in root_b.merges and (1, 27, 1, 28) not in root_a.merges
    annotate_fast(other, report, tmp_path / "b.xlsx")
    assert len(memo._TAILS.entries) == kept + 1  # same layout as the first file: no new entry


def test_new_content_is_still_checked_by_expat(source: Path, report: Report, tmp_path: Path) -> None:
    forget()
    with zipfile.ZipFile(source) as z:
        data = z.read(sheet_part(source, "附件2"))
    flagged_sheet(data, KEEP, merges_of)  # kept
    broken = data.replace(b"</sheetData>", b'<row r="1000"><c r="A1000"><v>1</v></row></sheetData>')
    with pytest.raises(Unpatchable):
        flagged_sheet(broken, KEEP, merges_of)
    entity = data.replace(b"</sheetData>", b'<row r="1000"><c r="A1000" t="str"><v>&bomb;</v></c></row></sheetData>')
    with pytest.raises(Unpatchable):
        flagged_sheet(entity, KEEP, merges_of)
    # A comment in the new content: parsed with expat's callbacks, the same tree as a fresh parse.
    commented = data.replace(b"</sheetData>", b"<!-- x --></sheetData>")
    got = flagged_sheet(commented, KEEP, merges_of)
    forget()
    fresh = flagged_sheet(commented, KEEP, merges_of)
    assert [(c.local, c.start, c.end) for c in got.root.children] == [
        (c.local, c.start, c.end) for c in fresh.root.children
    ]


def test_the_memo_is_bounded_and_keeps_no_failure() -> None:
    kept: Memo[int] = Memo(kept=2)
    assert kept.get(b"a", lambda: 1) == 1
    assert kept.get(b"b", lambda: 2) == 2
    assert kept.get(b"a", lambda: 99) == 1  # kept, and now the most recently used
    assert kept.get(b"c", lambda: 3) == 3
    assert list(kept.entries) == [b"a", b"c"]  # b, used longest ago, left

    def fails() -> int:
        raise Unpatchable

    with pytest.raises(Unpatchable):
        kept.get(b"d", fails)
    assert b"d" not in kept.entries


def test_other_findings_on_the_same_file_get_their_own_styles(source: Path, report: Report, tmp_path: Path) -> None:
    """styles.xml is parsed once, but patched once per set of additions: a report with only the 提示 adds no red."""
    only_info = Report(file=source, findings=[f for f in report.findings if f.severity.name == "INFO"])
    assert len(only_info.findings) == 1
    forget()
    full = annotate_fast(source, report, tmp_path / "full.xlsx")
    warm = annotate_fast(source, only_info, tmp_path / "warm.xlsx")
    forget()
    cold = annotate_fast(source, only_info, tmp_path / "cold.xlsx")
    assert full is not None and warm is not None and cold is not None
    assert members(warm) == members(cold)
    assert members(warm)["xl/styles.xml"] != members(full)["xl/styles.xml"]
    with zipfile.ZipFile(source) as z:
        red = z.read("xl/styles.xml").count(b'rgb="FFFF9C9C"')  # the 错误 fill (the template's own self-check red)
    assert members(full)["xl/styles.xml"].count(b'rgb="FFFF9C9C"') == red + 2  # our fill: fgColor and bgColor
    assert members(warm)["xl/styles.xml"].count(b'rgb="FFFF9C9C"') == red
    assert members(warm)["xl/styles.xml"].count(b'rgb="FFBDD7EE"') == 2  # the 提示 fill


def test_a_file_with_its_own_view_reuses_the_parsed_tail_and_gives_the_fresh_copy(
    source: Path, report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Heads differ (zoom, first visible cell, dimension; the window in workbook.xml), tails are the template's."""
    other = rewritten(source, tmp_path / "other.xlsx", own_view, own_window)
    forget()
    assert annotate_fast(source, report, tmp_path / "first.xlsx") is not None
    parsed: list[bytes] = []
    real_sheet, real_tags = memo.parse_sheet, memo.parse_tags
    monkeypatch.setattr(memo, "parse_sheet", lambda data, *a: parsed.append(data) or real_sheet(data, *a))
    monkeypatch.setattr(memo, "parse_tags", lambda data, *a: parsed.append(data) or real_tags(data, *a))
    warm = annotate_fast(other, report, tmp_path / "warm.xlsx")
    assert warm is not None
    # 3 flagged sheets, the tabSelected 填表说明 and workbook.xml: only their heads went through expat's callbacks.
    assert len(parsed) == 5
    assert not any(b"<mergeCell" in data or b"<definedName " in data for data in parsed)
    assert all(data.endswith(b"</worksheet>") or data.endswith(b"</workbook>") for data in parsed)
    monkeypatch.undo()
    forget()
    cold = annotate_fast(other, report, tmp_path / "cold.xlsx")
    assert cold is not None
    assert members(warm) == members(cold)
    part = sheet_part(warm, "附件2")
    assert b'<sheetView zoomScale="85" topLeftCell="B3" workbookViewId="0">' in members(warm)[part]
    assert b'<dimension ref="A1:Z1000" />' in members(warm)[part]
    assert b'windowWidth="28800"' in members(warm)["xl/workbook.xml"]
    assert b'activeTab="0"' in members(warm)["xl/workbook.xml"]  # 审核结果, first and active
    # The joined trees are the fresh parse's, offsets and kept grandchildren (the merges, the views) included.
    with zipfile.ZipFile(source) as z:
        memo_keep = {"sheetViews": None, "cols": None, "mergeCells": None}
        flagged_sheet(z.read(part), memo_keep, merges_of)  # its tail kept
    with zipfile.ZipFile(other) as z:
        data, book = z.read(part), z.read("xl/workbook.xml")
    joined = flagged_sheet(data, memo_keep, merges_of)
    root, rows = parse_sheet(data, memo_keep, True)
    assert dump(joined.root) == dump(root)
    assert [dump(r.el) for r in joined.rows] == [dump(r.el) for r in rows]
    assert joined.merges == merges_of(root) and (1, 1, 1, 2) in joined.merges  # A1:B1
    assert dump(sheet_root(data, {"sheetViews": None})) == dump(parse_sheet(data, {"sheetViews": None}, False)[0])
    book_keep: dict[str, str | None] = {"sheets": None, "bookViews": None, "definedNames": "localSheetId"}
    assert dump(tags_from(book, book_keep, "sheets")) == dump(parse_tags(book, book_keep))


def test_a_file_with_another_tail_is_parsed_afresh(
    source: Path, report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A merge more after </sheetData> (and another calcPr after <sheets>): new tails, whole parses, the same copy."""
    other = rewritten(
        source,
        tmp_path / "other.xlsx",
        lambda d: own_view(d).replace(b'<mergeCell ref="', b'<mergeCell ref="AA1:AB1"/><mergeCell ref="', 1),
        lambda d: own_window(d).replace(b"</workbook>", b'<calcPr calcId="191029"/></workbook>'),
    )
    forget()
    assert annotate_fast(source, report, tmp_path / "first.xlsx") is not None
    kept = len(memo._TAILS.entries)
    parsed: list[bytes] = []
    real_sheet, real_tags = memo.parse_sheet, memo.parse_tags
    monkeypatch.setattr(memo, "parse_sheet", lambda data, *a: parsed.append(data) or real_sheet(data, *a))
    monkeypatch.setattr(memo, "parse_tags", lambda data, *a: parsed.append(data) or real_tags(data, *a))
    warm = annotate_fast(other, report, tmp_path / "warm.xlsx")
    assert warm is not None
    whole = [data for data in parsed if b"AA1:AB1" in data or b'calcId="191029"' in data]
    # Each part with a new tail parsed whole, once: the 3 flagged sheets and workbook.xml (填表说明 has no merges:
    # its tail is the one kept, only its head is parsed).
    assert len(whole) == 4 and len(parsed) == 5
    assert len(memo._TAILS.entries) == kept + 4
    monkeypatch.undo()
    forget()
    cold = annotate_fast(other, report, tmp_path / "cold.xlsx")
    assert cold is not None
    assert members(warm) == members(cold)
    assert b'<mergeCell ref="AA1:AB1"/>' in members(warm)[sheet_part(warm, "附件2")]


def test_a_kept_tail_vouches_for_nothing_before_it(source: Path) -> None:
    """A broken head is refused as a fresh parse refuses it; a head with a comment is parsed whole."""
    keep: dict[str, str | None] = {"sheetViews": None, "cols": None, "mergeCells": None}
    with zipfile.ZipFile(source) as z:
        data = z.read(sheet_part(source, "附件2"))
    forget()
    flagged_sheet(data, keep, merges_of)  # its tail kept
    unclosed = data.replace(b"<sheetViews>", b"<sheetViews><sheetView>", 1)
    with pytest.raises(Unpatchable):
        flagged_sheet(unclosed, keep, merges_of)
    with pytest.raises(Unpatchable):
        parse_sheet(unclosed, keep, True)
    bomb = data.replace(b"<sheetViews>", b'<sheetViews a="&bomb;">', 1)
    with pytest.raises(Unpatchable):
        flagged_sheet(bomb, keep, merges_of)
    # The tail kept under another root tag is not used for this one (its end tag would not close it).
    prefixed = data.replace(b"<worksheet ", b"<x:worksheet xmlns:x='urn:x' ", 1)
    with pytest.raises(Unpatchable):
        flagged_sheet(prefixed, keep, merges_of)
    commented = data.replace(b"<sheetViews>", b"<!-- the unit's note --><sheetViews>", 1)
    got = flagged_sheet(commented, keep, merges_of)
    assert dump(got.root) == dump(parse_sheet(commented, keep, True)[0])
    assert got.root.kid("mergeCells") is not None and len(got.merges) == len(merges_of(got.root)) > 0


APP = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Properties xmlns="http://schemas.openxmlformats.org/'
    'officeDocument/2006/extended-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/'
    'docPropsVTypes"><Application>Microsoft Excel</Application><DocSecurity>0</DocSecurity>'
    '<HeadingPairs><vt:vector size="2" baseType="variant"><vt:variant><vt:lpstr>工作表</vt:lpstr></vt:variant>'
    "<vt:variant><vt:i4>2</vt:i4></vt:variant></vt:vector></HeadingPairs>"
    '<TitlesOfParts><vt:vector size="2" baseType="lpstr"><vt:lpstr>附件1</vt:lpstr><vt:lpstr>附件2</vt:lpstr>'
    "</vt:vector></TitlesOfParts><Company>资阳市科学技术协会</Company><AppVersion>16.0300</AppVersion></Properties>"
).encode()
APP_TRIMMED = APP[: APP.index(b"<HeadingPairs>")] + APP[APP.index(b"<Company>") :]


def test_app_titles_are_cut_with_their_vectors_checked_without_callbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    """docProps/app.xml differs between units (Company, AppVersion): no memo, but the long lists skip the callbacks."""
    skips: list[list[tuple[int, int]] | None] = []
    real = workbook.parse_tags
    monkeypatch.setattr(
        workbook,
        "parse_tags",
        lambda data, keep, rows=None, skip=None: skips.append(skip) or real(data, keep, rows, skip),
    )
    assert drop_app_titles(APP) == APP_TRIMMED
    vector = APP.index(b"<vt:vector")
    assert skips == [
        [
            (vector, APP.index(b"</HeadingPairs>")),
            (APP.index(b'<vt:vector size="2" baseType="lpstr">'), APP.index(b"</TitlesOfParts>")),
        ]
    ]
    # A comment: every element walked, the same cut.
    commented = APP.replace(b"<Company>", b"<!-- x --><Company>")
    skips.clear()
    assert drop_app_titles(commented) == APP_TRIMMED.replace(b"<Company>", b"<!-- x --><Company>")
    assert skips == [[]]
    # Broken inside a skipped vector: refused by expat all the same, the part left as the unit sent it.
    broken = APP.replace(b"<vt:i4>2</vt:i4>", b"<vt:i4>2</vt:i5>")
    assert drop_app_titles(broken) == broken
