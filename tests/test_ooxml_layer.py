"""The OOXML layer (xlsx_kpi/ooxml) and the one annotator entry (xlsx_kpi.outputs.annotate.annotate)."""

from __future__ import annotations

import ast
import io
import zipfile
from pathlib import Path

import openpyxl
import pytest
from published import dept_published

import xlsx_kpi
from xlsx_kpi.batch.check import Options, check_file, template_fills
from xlsx_kpi.errors import XlsxKpiError
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.ooxml.load import check_loadable
from xlsx_kpi.ooxml.package import (
    MSG_TEXT,
    MSG_TOO_MUCH_XML,
    MSG_UNSAFE_XML,
    new_parser,
    open_package,
    parse_part,
)
from xlsx_kpi.ooxml.parts import CORE_PART, member_sums, read_core, resolve_target, stamp_core
from xlsx_kpi.ooxml.patch import Unpatchable, free_name, open_patchable, read_part, write_zip
from xlsx_kpi.outputs.annotate import annotate
from xlsx_kpi.outputs.review import ERROR_FILL, RESULT_SHEET

CORE = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"'
    b' xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>unit</dc:creator></cp:coreProperties>'
)


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


# -- the package ---------------------------------------------------------------------------------------
def test_open_package_says_what_a_file_is(tmp_path: Path) -> None:
    text = tmp_path / "table.xlsx"
    text.write_text("单位,得分\n资阳,95\n", encoding="gb18030")
    with pytest.raises(XlsxKpiError) as refused, open_package(text):
        pass
    assert refused.value.render() == f"文件 {text}：{MSG_TEXT}"
    with pytest.raises(Unpatchable), open_patchable(text):
        pass  # the patcher never reports: the fallback says it in its own words


def test_members_read_whole_within_a_limit_and_case_insensitively(tmp_path: Path) -> None:
    path = make_zip(
        tmp_path / "p.xlsx", {"xl/SharedStrings.xml": b"<sst/>", "xl/big.xml": b"<a>" + b" " * 5000 + b"</a>"}
    )
    with open_package(path) as pkg:
        assert pkg.read("xl/sharedStrings.xml") == b"<sst/>"  # OPC part names ignore case
        assert list(pkg.names) == ["xl/SharedStrings.xml", "xl/big.xml"]  # exact item names, zip order
        with pytest.raises(XlsxKpiError) as refused:
            pkg.read("xl/big.xml", limit=1000)
        assert refused.value.message == MSG_TOO_MUCH_XML
        with pytest.raises(Unpatchable):
            read_part(pkg, "xl/sharedStrings.xml")  # the patcher names parts exactly, as its zip writer does
        taken: set[str] = set()
        assert free_name(pkg, "xl/sharedstrings{}.xml", taken) == "xl/sharedstrings1.xml"
        assert free_name(pkg, "xl/big{}.xml", taken) == "xl/big1.xml"
        assert free_name(pkg, "xl/BIG{}.xml", taken) == "xl/BIG2.xml"


def test_a_dtd_in_any_part_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "dtd.xlsx", {"x.xml": b'<!DOCTYPE a [<!ENTITY e "eeee">]><a>&e;</a>'})
    with open_package(path) as pkg, pytest.raises(XlsxKpiError) as refused:
        parse_part(pkg, "x.xml", new_parser())
    assert refused.value.message == MSG_UNSAFE_XML


def test_relationship_targets_are_uris() -> None:
    assert resolve_target("xl", "worksheets/sheet%201.xml") == "xl/worksheets/sheet 1.xml"
    assert resolve_target("xl/worksheets", "../drawings/vmlDrawing1.vml") == "xl/drawings/vmlDrawing1.vml"
    assert resolve_target("xl", " /xl/styles.xml") == "xl/styles.xml"


def test_zip_writer_copies_unchanged_members_compressed_as_they_are(tmp_path: Path) -> None:
    path = make_zip(
        tmp_path / "src.xlsx", {CORE_PART: CORE, "xl/a.xml": b"<a>" + b"x" * 3000 + b"</a>", "old.xml": b"<o/>"}
    )
    with open_patchable(path) as pkg:
        info = pkg.names["xl/a.xml"]
        raw = pkg.compressed(info)
        core = stamp_core(read_part(pkg, CORE_PART), "xlsx-kpi", "checked 42")
        data = write_zip(pkg, {CORE_PART: core, "old.xml": None}, [("xl/new.xml", b"<n/>")])
    out = tmp_path / "out.xlsx"
    out.write_bytes(data)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        assert z.namelist() == [CORE_PART, "xl/a.xml", "xl/new.xml"]
        copied = z.getinfo("xl/a.xml")
        assert (copied.CRC, copied.compress_size) == (info.CRC, info.compress_size)
    with open_package(out) as again:
        assert again.compressed(again.names["xl/a.xml"]) == raw
    core_read = read_core(out)
    assert (core_read.last_modified_by, core_read.content_status) == ("xlsx-kpi", "checked 42")
    assert core_read.modified is not None
    sums = member_sums(out)
    assert sums is not None and sums["xl/new.xml"] == (zipfile.crc32(b"<n/>"), 4)
    assert member_sums(tmp_path / "missing.xlsx") is None


# -- the one annotator entry -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seed(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dept_published(catalog, tmp_path_factory.mktemp("seed"))


def test_a_fresh_workbook_is_patched_and_never_asks_for_template_fills(
    seed: Path, catalog: Catalog, tmp_path: Path
) -> None:
    report = check_file(seed, catalog, Options(annotate=False))
    asked: list[int] = []

    def fills() -> dict[str, str | None]:
        asked.append(1)
        return {}

    out = annotate(seed, report, tmp_path / "copy.xlsx", fills=fills, isolate=False)
    assert asked == []  # the patcher wrote it
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames[0] == RESULT_SHEET
    assert wb["附件2"]["F7"].fill.fgColor.rgb == "FF" + ERROR_FILL  # the seed's rate-mismatch
    check_loadable(out)


def test_a_returned_copy_takes_the_fallback_which_strips_the_earlier_round(
    seed: Path, catalog: Catalog, tmp_path: Path
) -> None:
    first = check_file(seed, catalog, Options(out_dir=tmp_path / "round1"))
    assert first.annotated is not None
    returned = first.annotated
    filing_fills: list[int] = []
    report = check_file(returned, catalog, Options(annotate=False))

    def fills() -> dict[str, str | None]:
        filing_fills.append(1)
        from xlsx_kpi.audit.reader import read_workbook

        return template_fills(read_workbook(returned, catalog))

    out = annotate(returned, report, tmp_path / "round2.xlsx", fills=fills, isolate=False)
    assert filing_fills == [1]  # openpyxl wrote it, with the template's fills for the cleaned cells
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames.count(RESULT_SHEET) == 1 and wb.sheetnames[0] == RESULT_SHEET
    assert wb["附件2"]["F7"].fill.fgColor.rgb == "FF" + ERROR_FILL
    comment = wb["附件2"]["F7"].comment
    assert comment is not None and comment.text.count("【错误】") == 1  # last round's 批注 replaced, not added to


# -- only the OOXML layer opens the package --------------------------------------------------------------------
# Modules outside xlsx_kpi/ooxml that still import a zip or XML library, and why; anything else must go through
# the layer. (zipfile for an exception class or a .docx/upload check is not reading an xlsx package's parts.)
OUTSIDE = {
    "outputs/summary.py": {"zipfile"},  # is_summary: our own summary's custom property
    "outputs/template.py": {"zipfile"},  # lock_structure: the template XlsxWriter just wrote
    "selfreport/statements.py": {"zipfile"},  # is_zipfile on a .docx before python-docx opens it
    "web/app.py": {"zipfile"},  # uploaded .zip archives of workbooks
    "outputs/annotate/fallback.py": {"zipfile"},  # zipfile.BadZipFile from openpyxl.load_workbook
    "outputs/annotate/patcher.py": {"zlib"},  # CRC-32 of the changed parts, for the copy's digest
}
WATCHED = ("zipfile", "zlib", "xml", "defusedxml", "lxml")


def test_only_the_ooxml_layer_opens_zip_members_and_parses_xml() -> None:
    package = Path(xlsx_kpi.__file__).parent
    found: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if rel.startswith("ooxml/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in WATCHED:
                    found.setdefault(rel, set()).add(name.split(".")[0])
    assert found == OUTSIDE
