"""Parts of an xlsx package read whole: relationships, content types, what kind of package it is, core properties."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree
from xml.parsers import expat

import defusedxml.ElementTree as defused_tree
from defusedxml.common import DefusedXmlException

from xlsx_kpi.errors import XlsxKpiError
from xlsx_kpi.ooxml.package import (
    MAX_DIRECTORY_BYTES,
    MAX_MEMBERS,
    Package,
    Tags,
    fail,
    new_parser,
    parse_part,
    zip_directory,
)

__all__ = [
    "CORE_PART",
    "CoreProperties",
    "PartMemo",
    "check_kind",
    "content_types",
    "member_sums",
    "parse_w3cdtf",
    "read_core",
    "relationships",
    "rels_of",
    "resolve_target",
    "stamp_core",
    "text_columns",
]

MSG_DOCX = "这是 Word 文档（.docx），不是 Excel 工作簿，请使用下发的 .xlsx 模板"
MSG_PPTX = "这是 PowerPoint 演示文稿（.pptx），不是 Excel 工作簿，请使用下发的 .xlsx 模板"
MSG_ODS = "这是 OpenDocument 表格（.ods），请在 WPS 或 LibreOffice 中另存为 .xlsx"
MSG_NOT_XLSX = "不是 Excel 工作簿（缺少 xl/workbook.xml），请使用下发的 .xlsx 模板"
MSG_MACRO = "工作簿包含宏（VBA），为安全起见不予读取；请另存为不含宏的 .xlsx"


def resolve_target(base: str, target: str) -> str:
    """Resolve a relationship target ("worksheets/sheet1.xml", "/xl/worksheets/sheet1.xml", "sheet%201.xml").

    A target is a URI: percent-escapes are decoded, as OPC maps part names to zip item names.
    """
    target = unquote(target.strip())
    parts = target[1:].split("/") if target.startswith("/") else [*base.split("/"), *target.split("/")]
    out: list[str] = []
    for part in parts:
        if part == "..":
            if out:
                out.pop()
        elif part not in ("", "."):
            out.append(part)
    return "/".join(out)


def rels_of(part: str) -> str:
    """The relationships part of a part: xl/workbook.xml -> xl/_rels/workbook.xml.rels."""
    folder, _, name = part.rpartition("/")
    return f"{folder}/_rels/{name}.rels" if folder else f"_rels/{name}.rels"


def relationships(pkg: Package, rels: str) -> list[tuple[str, str, str]]:
    """(Id, Type, Target) of every internal relationship in a .rels part; [] when it is missing."""
    if rels not in pkg.members:
        return []
    found: list[tuple[str, str, str]] = []
    tags = Tags(Relationship=1)

    def start(tag: str, attrs: dict[str, str]) -> None:
        if tags[tag] is not None and attrs.get("TargetMode") != "External":
            found.append((attrs.get("Id", ""), attrs.get("Type", ""), attrs.get("Target", "")))

    parser = new_parser()
    parser.StartElementHandler = start
    parse_part(pkg, rels, parser)
    return found


def content_types(pkg: Package) -> list[str]:
    """Every ContentType named by [Content_Types].xml (Default and Override)."""
    name = "[Content_Types].xml"
    if name not in pkg.members:
        return []
    found: list[str] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        kind = attrs.get("ContentType")
        if kind:
            found.append(kind)

    parser = new_parser()
    parser.StartElementHandler = start
    parse_part(pkg, name, parser)
    return found


MACRO_CONTENT = ("macroenabled", "vbaproject", "vnd.ms-excel.addin", "vnd.ms-excel.template.macro")


# read_once(pkg, what, parts, read): read(pkg), or the result kept for the same content of `parts` (audit.xml_parts).
PartMemo = Callable[[Package, str, tuple[str, ...], Callable[[Package], Any]], Any]


def check_kind(pkg: Package, once: PartMemo | None = None) -> None:
    """Say what the package is, find its main part through _rels/.rels (OPC), and refuse macros.

    With `once`, the three small parts read here are parsed once per distinct content (a batch of returned
    copies of one template has the same relationships and content types).
    """

    def parsed(what: str, part: str, read: Callable[[Package], Any]) -> Any:
        return read(pkg) if once is None else once(pkg, what, (part,), read)

    names = pkg.members
    if "word/document.xml" in names:
        raise fail(MSG_DOCX, pkg.path)
    if any(n.startswith("ppt/") for n in names):
        raise fail(MSG_PPTX, pkg.path)
    package_rels = parsed("rels", "_rels/.rels", lambda p: tuple(relationships(p, "_rels/.rels")))
    main = next(
        (resolve_target("", t) for _, kind, t in package_rels if kind.endswith("/officeDocument")), "xl/workbook.xml"
    )
    if main not in names and "xl/workbook.xml" in names:
        main = "xl/workbook.xml"
    if main not in names:
        if "mimetype" in names and names["mimetype"].file_size < 200:
            if b"opendocument.spreadsheet" in b"".join(pkg.chunks("mimetype")):
                raise fail(MSG_ODS, pkg.path)
        raise fail(MSG_NOT_XLSX, pkg.path)
    pkg.main = main
    # A macro project may have any name: its content type and relationship type say what it is.
    if any(n.endswith("vbaproject.bin") for n in names):
        raise fail(MSG_MACRO, pkg.path)
    kinds = parsed("content types", "[Content_Types].xml", lambda p: tuple(content_types(p)))
    if any(any(m in kind.lower() for m in MACRO_CONTENT) for kind in kinds):
        raise fail(MSG_MACRO, pkg.path)
    main_rels = rels_of(main)
    if any(
        kind.lower().endswith("/vbaproject")
        for _, kind, _ in parsed("rels", main_rels, lambda p: tuple(relationships(p, main_rels)))
    ):
        raise fail(MSG_MACRO, pkg.path)


# --- The identity sheet in its plain form -------------------------------------------------------------------
# The template's hidden identity sheet holds two columns of text, which Excel, WPS, LibreOffice and XlsxWriter
# all write as shared-string cells: `<c r="A3" t="s"><v>12</v></c>` (LibreOffice adds s="0"). In that form its
# sheetData is matched whole by two patterns, with no Python call per element.
_TEXT_ROWS = re.compile(
    rb'(?:<row r="([0-9]{1,7})"[^<>]*>(?:<c r="[AB]\1"(?: s="[0-9]{1,9}")? t="s"><v>[0-9]{1,9}</v></c>)*+</row>)*+'
)
_TEXT_ROW_NUMBER = re.compile(rb'<row r="([0-9]{1,7})"')
_TEXT_CELL = re.compile(rb'<c r="([AB])([0-9]{1,7})"(?: s="[0-9]{1,9}")? t="s"><v>([0-9]{1,9})</v></c>')


def text_columns(pkg: Package, name: str, max_row: int) -> dict[int, tuple[int | None, int | None]] | None:
    """Row (1-based, up to max_row) -> shared-string indexes of its A and B cells, for a worksheet part whose
    every cell is a shared string in A or B; None for any other part (scan_sheet then reads it).

    The part is parsed by expat first (well-formed, no DTD), so the patterns see markup as it is.
    """
    try:
        data = pkg.read(name)
    except XlsxKpiError:
        return None  # scan_sheet says what is wrong with it, as for any sheet
    parser = new_parser()
    try:
        parser.Parse(data, True)
    except (expat.ExpatError, DefusedXmlException):
        return None
    start = data.find(b"<sheetData>")
    end = data.find(b"</sheetData>", start)
    if start < 0 or end < 0 or _TEXT_ROWS.fullmatch(data, start + len(b"<sheetData>"), end) is None:
        return None  # anything but rows of shared-string cells in A and B (each cell of its own row)
    rows = [int(r) for r in _TEXT_ROW_NUMBER.findall(data, start, end)]
    cells = _TEXT_CELL.findall(data, start, end)
    if any(b <= a for a, b in pairwise([0, *rows])) or len({(c, r) for c, r, _ in cells}) != len(cells):
        return None  # rows out of order, or a cell written twice: refused by scan_sheet
    # Nothing outside sheetData that scan_sheet would read as a row or a cell.
    if data.count(b"<row") != len(rows) or data.count(b"<c ") + data.count(b"<c>") + data.count(b"<c/") != len(cells):
        return None
    out: dict[int, tuple[int | None, int | None]] = {}
    for column, digits, index in cells:
        row = int(digits)
        if row <= max_row:
            a, b = out.get(row, (None, None))
            out[row] = (int(index), b) if column == b"A" else (a, int(index))
    return out


# --- Core properties ------------------------------------------------------------------------------------

CORE_PART = "docProps/core.xml"
MAX_CORE_BYTES = 64 * 1024  # docProps/core.xml holds a dozen short fields (~1 KB)
_DC_TERMS = "{http://purl.org/dc/terms/}"
_CORE_PROPS = "{http://schemas.openxmlformats.org/package/2006/metadata/core-properties}"
_CORE_NS = {
    "cp": "http://schemas.openxmlformats.org/package/2006/metadata/core-properties",
    "dc": "http://purl.org/dc/elements/1.1/",
    "dcterms": "http://purl.org/dc/terms/",
    "dcmitype": "http://purl.org/dc/dcmitype/",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}


@dataclass(frozen=True)
class CoreProperties:
    """What docProps/core.xml says about the last save: when (UTC), by whom, and its content status."""

    modified: datetime | None = None
    last_modified_by: str = ""
    content_status: str = ""


def parse_w3cdtf(text: str) -> datetime | None:
    """ "2026-12-06T05:40:12Z" (or with an offset or fractions) as an aware UTC datetime; None if not a date."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def read_core(path: Path) -> CoreProperties:
    """The workbook's own save time and status from docProps/core.xml; empty when absent or unreadable.

    Excel, WPS and LibreOffice set `modified` on every save, so it orders two submissions of one unit
    better than the file time, which copying and e-mail change. Never raises: a file that cannot be read
    has no save time (the audit reports why it cannot be read).
    """
    try:
        with path.open("rb") as fh:
            declared = zip_directory(fh)
            if declared is None or declared[0] > MAX_MEMBERS or declared[1] > MAX_DIRECTORY_BYTES:
                return CoreProperties()  # not a zip, or a directory too large to list (see package.open_package)
            with zipfile.ZipFile(fh) as zf:
                info = zf.getinfo("docProps/core.xml")
                if info.file_size > MAX_CORE_BYTES or info.compress_size > MAX_CORE_BYTES:
                    return CoreProperties()
                data = zf.read(info)
        root = _core_tree(data)
    except (OSError, KeyError, zipfile.BadZipFile, ValueError, EOFError, DefusedXmlException, RuntimeError):
        return CoreProperties()
    if root is None:
        return CoreProperties()

    def text(tag: str) -> str:
        el = root.find(tag)
        return (el.text or "").strip() if el is not None else ""

    return CoreProperties(
        modified=parse_w3cdtf(text(f"{_DC_TERMS}modified")),
        last_modified_by=text(f"{_CORE_PROPS}lastModifiedBy"),
        content_status=text(f"{_CORE_PROPS}contentStatus"),
    )


def _core_tree(data: bytes) -> Any:
    try:
        return defused_tree.fromstring(data, forbid_dtd=True)
    except defused_tree.ParseError:
        return None


def stamp_core(data: bytes, last_modified_by: str, content_status: str) -> bytes:
    """docProps/core.xml as saved now: modified (UTC, now), lastModifiedBy and contentStatus set, the rest kept.

    Raises ValueError when the part is not core properties XML.
    """
    try:
        root = defused_tree.fromstring(data, forbid_dtd=True)
    except (defused_tree.ParseError, DefusedXmlException):
        raise ValueError("core.xml") from None
    if root.tag != f"{{{_CORE_NS['cp']}}}coreProperties":
        raise ValueError("core.xml")
    now = datetime.now(UTC).replace(microsecond=0)
    values = {
        ("dcterms", "modified"): now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        ("cp", "lastModifiedBy"): last_modified_by,
        ("cp", "contentStatus"): content_status,
    }
    for (prefix, local), text in values.items():
        tag = f"{{{_CORE_NS[prefix]}}}{local}"
        el = root.find(tag)
        if el is None:
            el = ElementTree.SubElement(root, tag)
        el.text = text
        if local == "modified":
            el.set(f"{{{_CORE_NS['xsi']}}}type", "dcterms:W3CDTF")
    for prefix, uri in _CORE_NS.items():
        ElementTree.register_namespace(prefix, uri)
    body: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + body


def member_sums(path: Path) -> dict[str, tuple[int, int]] | None:
    """(CRC-32, size) of every member by item name, from the zip's directory; None when not a zip we may list."""
    try:
        with path.open("rb") as fh:
            declared = zip_directory(fh)
            if declared is None or declared[0] > MAX_MEMBERS or declared[1] > MAX_DIRECTORY_BYTES:
                return None
            with zipfile.ZipFile(fh) as zf:
                return {i.filename: (i.CRC, i.file_size) for i in zf.infolist()}
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return None
