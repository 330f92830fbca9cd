"""The patcher's memo: parts parsed once per layout give the same copy, byte for byte, as parsing them afresh."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest
from published import dept_published

from xlsx_kpi.audit.report import Report
from xlsx_kpi.batch.check import Options, check_file
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.ooxml.patch import Unpatchable
from xlsx_kpi.outputs.annotate import memo
from xlsx_kpi.outputs.annotate.memo import Memo, flagged_sheet, forget
from xlsx_kpi.outputs.annotate.patcher import annotate_fast
from xlsx_kpi.outputs.annotate.sheets import merges_of

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
    assert len(parsed) == len({f.sheet for f in report.findings}) == 3  # parsed afresh
    assert members(warm) == members(cold)
    # The content after the new row moved: the extra row is in the copy, and the findings' fills still land.
    part = sheet_part(warm, "附件2")
    assert EXTRA_ROW in members(warm)[part]
    assert members(warm)[part] != members(first)[part]
    assert re.search(rb'<c r="F7" s="(\d+)"', members(warm)[part]).group(1) == re.search(  # type: ignore[union-attr]
        rb'<c r="F7" s="(\d+)"', members(first)[part]
    ).group(1)


def test_two_layouts_keep_two_entries(catalog: Catalog, source: Path, report: Report, tmp_path: Path) -> None:
    forget()
    other = longer_sheets(source, tmp_path / "other.xlsx")
    annotate_fast(source, report, tmp_path / "a.xlsx")
    kept = len(memo._SKELETONS.entries)
    # A sheet with another skeleton (a merge more) is a new entry, not a hit on the first one.
    with zipfile.ZipFile(source) as z:
        part = sheet_part(source, "附件2")
        data = z.read(part)
    moved = data.replace(b'<mergeCell ref="', b'<mergeCell ref="AA1:AB1"/><mergeCell ref="', 1)
    root_a = flagged_sheet(data, KEEP, merges_of)
    root_b = flagged_sheet(moved, KEEP, merges_of)
    assert len(memo._SKELETONS.entries) == kept + 1
    assert (1, 27, 1, 28) in root_b.merges and (1, 27, 1, 28) not in root_a.merges
    annotate_fast(other, report, tmp_path / "b.xlsx")
    assert len(memo._SKELETONS.entries) == kept + 1  # same layout as the first file: no new entry


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
