"""Write the reviewer's copy by patching the xlsx zip directly; None means "use annotate.annotate instead"."""

from __future__ import annotations

import datetime as dt
import io
import re
import struct
import time
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.parsers import expat

from defusedxml.common import DefusedXmlException

from xlsx_kpi import __version__
from xlsx_kpi.audit.findings import Finding
from xlsx_kpi.audit.reader import BOMB_MIN_BYTES, BOMB_RATIO, MAX_MEMBERS, MAX_TOTAL_BYTES, new_parser
from xlsx_kpi.audit.report import Report
from xlsx_kpi.errors import XlsxKpiError, write_atomically
from xlsx_kpi.formats.spec import col_index, col_letters
from xlsx_kpi.outputs.review import (
    AUTHOR,
    FONT,
    HEADER_FILL,
    HEADERS,
    LINK_COLOR,
    PASS_FILL,
    RESULT_SHEET,
    check_output_paths,
    clean,
    column_widths,
    comment_size,
    comment_text,
    mark_core,
    package_digest,
    result_rows,
    row_height,
    severity_fill,
    summary_rows,
    weight,
)
from xlsx_kpi.safe_text import looks_like_formula

__all__ = ["annotate_fast"]


_COORD = re.compile(r"^[$]?([A-Za-z]{1,3})[$]?(\d+)$")


def column_index_from_string(letters: str) -> int:
    """1-based column of 1 to 3 letters (openpyxl.utils.cell's, without importing openpyxl)."""
    if not 1 <= len(letters) <= 3 or not letters.isascii() or not letters.isalpha():
        raise ValueError(f"{letters} is not a valid column name")
    return col_index(letters.upper()) + 1


def get_column_letter(col: int) -> str:
    """Letters of a 1-based column."""
    if not 1 <= col <= 18278:
        raise ValueError(f"Invalid column index {col}")
    return col_letters(col - 1)


def coordinate_from_string(coord: str) -> tuple[str, int]:
    """("A", 1) from "A1" or "$A$1"; ValueError for anything else, row 0 included (as openpyxl)."""
    m = _COORD.match(coord)
    if m is None or int(m.group(2)) == 0:
        raise ValueError(f"Invalid cell coordinates ({coord})")
    return m.group(1).upper(), int(m.group(2))


MAX_SOURCE_BYTES = 50 * 1024 * 1024  # larger files go to openpyxl (they are not filled templates)
MAX_PART_BYTES = 64 * 1024 * 1024  # one XML part inflated here
MAX_MARKED_CELLS = 100_000  # cells filled (a finding on a huge merge would need one <c> per cell)
DEFLATE_LEVEL = 1  # 2 ms less per copy than level 6, for a copy ~15% larger
MAX_ROW = 1_048_576
MAX_COL = 16_384

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
REL_WORKSHEET = REL_NS + "/worksheet"
REL_STYLES = REL_NS + "/styles"
REL_COMMENTS = REL_NS + "/comments"
REL_VML = REL_NS + "/vmlDrawing"
REL_CALC_CHAIN = REL_NS + "/calcChain"
CT_WORKBOOK = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
CT_WORKSHEET = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
CT_COMMENTS = "application/vnd.openxmlformats-officedocument.spreadsheetml.comments+xml"
CT_VML = "application/vnd.openxmlformats-officedocument.vmlDrawing"
CT_RELS = "application/vnd.openxmlformats-package.relationships+xml"
XML_DECL = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

# Children of <worksheet> in the order the schema requires (CT_Worksheet).
WORKSHEET_ORDER = {
    name: i
    for i, name in enumerate(
        "sheetPr dimension sheetViews sheetFormatPr cols sheetData sheetCalcPr sheetProtection protectedRanges "
        "scenarios autoFilter sortState dataConsolidate customSheetViews mergeCells phoneticPr "
        "conditionalFormatting dataValidations hyperlinks printOptions pageMargins pageSetup headerFooter "
        "rowBreaks colBreaks customProperties cellWatches ignoredErrors smartTags drawing legacyDrawing "
        "legacyDrawingHF drawingHF picture oleObjects controls webPublishItems tableParts extLst".split()
    )
}
# Children of <workbook> that come after <definedNames> (CT_Workbook).
AFTER_DEFINED_NAMES = frozenset(
    "calcPr oleSize customWorkbookViews pivotCaches smartTagPr smartTagTypes webPublishing fileRecoveryPr "
    "webPublishObjects extLst".split()
)

_TAG = re.compile(rb"<[^\s/>]+(?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*\s*(/?)>")
_TAG_NAME = re.compile(rb"<[^\s/>]+")
_ATTR = re.compile(rb"\s+([^\s=/>]+)\s*=\s*(\"[^\"]*\"|'[^']*')")
_END_TAG = re.compile(rb"</[^\s>]+\s*>")
_ENCODING = re.compile(rb"^<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_CELL = re.compile(r"^([A-Z]{1,3})([0-9]{1,7})$")
_RANGE = re.compile(r"^\$?([A-Z]{1,3})\$?([0-9]{1,7})(?::\$?([A-Z]{1,3})\$?([0-9]{1,7}))?$")
# Characters XML 1.0 cannot carry at all (annotate.clean removes the C0 controls already).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class _Fallback(Exception):
    """The file has a structure this module does not patch; the caller uses the openpyxl annotator."""


# -- XML text -----------------------------------------------------------------------------------------
def _esc(text: str) -> str:
    text = _NOT_XML.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attr(text: str) -> str:
    return _esc(text).replace('"', "&quot;").replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;")


def _num(x: float) -> str:
    """A number as XML text: 6 rather than 6.0; repr keeps every float exact."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def _local(tag: str) -> str:
    return tag.rpartition(":")[2]


def _prefix(tag: str) -> str:
    """The "x:" of "x:worksheet", or ""."""
    head, sep, _ = tag.rpartition(":")
    return head + sep


@dataclass(slots=True, eq=False)
class _El:
    """An element of a parsed part, by byte offsets: data[start:head_end] is its start tag."""

    tag: str
    attrs: dict[str, str]
    start: int
    head_end: int
    empty: bool
    inner_end: int = -1  # offset of its end tag (head_end for an empty element)
    end: int = -1  # offset after the element
    children: list[_El] = field(default_factory=list)  # those kept (see _parse)
    count: int = 0  # child elements, kept or not

    @property
    def local(self) -> str:
        return _local(self.tag)

    def kids(self, local: str) -> list[_El]:
        return [c for c in self.children if c.local == local]

    def kid(self, local: str) -> _El | None:
        return next((c for c in self.children if c.local == local), None)


@dataclass(slots=True, eq=False)
class _Row:
    """A <row> of <sheetData> and its cells as (r, offset of "<c")."""

    el: _El
    cells: list[tuple[str | None, int]] | None = field(default_factory=list)  # None: see _row_cells
    tail: int = -1  # offset of a child that is not a cell (a row's extLst): new cells go before it
    prefix: bytes = b""


def _check_encoding(data: bytes) -> None:
    """Offsets are bytes and inserted text is UTF-8: anything but a UTF-8 part is left to openpyxl."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise _Fallback
    m = _ENCODING.match(data[3:] if data.startswith(b"\xef\xbb\xbf") else data)
    if m and m.group(1).lower() not in (b"utf-8", b"utf8"):
        raise _Fallback


def _parse(
    data: bytes,
    keep: dict[str, str | None],
    sheet_rows: list[_Row] | None = None,
    skip: list[tuple[int, int]] | None = None,
) -> _El:
    """Parse a part with the guarded expat parser, keeping the root, its children, and the grandchildren
    under the children named in `keep` (only those with the attribute it names, when it names one).

    With `sheet_rows`, the <row> elements of <sheetData> are collected there, each with its cells'
    (r, offset). Each `skip` range is the content of a top-level element (from the end of its start tag
    to its end tag): expat still checks it, but with no callbacks at all (see _sheet).
    """
    _check_encoding(data)
    parser = new_parser()
    stack: list[_El | None] = []  # the open elements down to depth 3; None: one not kept
    level = 0
    in_data = False  # inside <sheetData>, collecting rows
    row: _Row | None = None
    cell_tag = "c"
    resume = -1  # where callbacks resume after a skipped element content
    skipped = ""  # that element's name

    def element(tag: str, attrs: dict[str, str]) -> _El:
        pos = parser.CurrentByteIndex
        m = _TAG.match(data, pos)
        if m is None:
            raise _Fallback
        return _El(tag, attrs, pos, m.end(), bool(m.group(1)))

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal level, in_data, row, cell_tag
        if resume >= 0:
            raise _Fallback  # the skipped stretch did not end at </sheetData>
        level += 1
        if in_data:
            if level == 3:
                row = _Row(element(tag, attrs))
                assert sheet_rows is not None
                sheet_rows.append(row)
            elif level == 4 and row is not None and row.cells is not None:
                if tag == cell_tag:
                    row.cells.append((attrs.get("r"), parser.CurrentByteIndex))
                elif row.tail < 0:
                    row.tail = parser.CurrentByteIndex  # a row's extLst: new cells go before it
            return
        if level > 3:
            return
        if level == 1:
            stack.append(element(tag, attrs))
            cell_tag = _prefix(tag) + "c"
            return
        parent = stack[-1]
        assert parent is not None
        parent.count += 1
        el: _El | None = None
        if level == 2:
            el = element(tag, attrs)
            if sheet_rows is not None and el.local == "sheetData":
                in_data = True
        elif parent.local in keep:
            needs = keep[parent.local]
            if needs is None or needs in attrs:
                el = element(tag, attrs)
        if el is not None:
            parent.children.append(el)
        stack.append(el)

    def end(tag: str) -> None:
        nonlocal level, in_data, row, resume
        if level < 1:
            raise _Fallback
        if resume >= 0:
            if level != 2 or parser.CurrentByteIndex != resume or _local(tag) != skipped:
                raise _Fallback  # the skipped stretch was not exactly that element's content
            resume = -1
        if in_data and level > 2:
            if level == 3 and row is not None:
                close(row.el, parser.CurrentByteIndex)
                row = None
        elif level <= 3:
            el = stack.pop() if level > 1 else stack[0]
            if el is not None:
                close(el, parser.CurrentByteIndex)
            if level == 2:
                in_data = False
        level -= 1

    def close(el: _El, pos: int) -> None:
        if el.empty:
            el.inner_end = el.end = el.head_end
            return
        m = _END_TAG.match(data, pos)
        if m is None:
            raise _Fallback
        el.inner_end, el.end = pos, m.end()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        pos = 0
        for a, b in skip or ():
            parser.Parse(data[pos:a], False)
            last = stack[-1] if stack else None
            if resume >= 0 or level != 2 or last is None or last.head_end != a:
                raise _Fallback
            skipped = last.local
            parser.StartElementHandler = parser.EndElementHandler = None
            parser.Parse(data[a:b], False)
            parser.StartElementHandler, parser.EndElementHandler = start, end
            resume, pos = b, b
        parser.Parse(data[pos:], True)
    except (expat.ExpatError, DefusedXmlException):
        raise _Fallback from None
    if not stack or stack[0] is None or resume >= 0 or level != 0:
        raise _Fallback
    return stack[0]


_ROOT = re.compile(rb"<([^\s/>!?]+)")
_SELECTED = re.compile(rb"tabSelected\s*=\s*[\"'](?!0|false)")


def _sheet(data: bytes, keep: dict[str, str | None], with_rows: bool) -> tuple[_El, list[_Row]]:
    """A worksheet parsed for patching: its top-level elements and, with `with_rows`, every row (with its
    cells' offsets, or with `cells` None: found later by _row_cells when the row is patched).

    Where the part has no comment, CDATA or processing instruction, and no extension inside <sheetData>
    (Excel, LibreOffice, WPS, openpyxl and XlsxWriter write none), every "<" in it starts a tag. Then
    expat checks <sheetData> and <dataValidations> without callbacks, and anchored regexes find the
    rows; otherwise every element goes through the callbacks.
    """
    rows: list[_Row] = []
    found = _skippable(data) if b"<!" not in data and data.count(b"<?") <= 1 else None
    if found is None:
        return _parse(data, keep, rows if with_rows else None), rows
    p, skips, (a, b) = found
    root = _parse(data, keep, None, skips)
    if with_rows:
        row_end = re.compile(b"</" + re.escape(p) + rb"row\s*>")
        for m in re.compile(b"<" + re.escape(p) + rb"row[\s/>]").finditer(data, a, b):
            head = _TAG.match(data, m.start())
            if head is None:
                raise _Fallback
            el = _El(
                p.decode() + "row", _attrs(data[m.start() : head.end()]), m.start(), head.end(), bool(head.group(1))
            )
            if el.empty:
                el.inner_end = el.end = el.head_end
            else:
                close = row_end.search(data, el.head_end, b)
                if close is None:
                    raise _Fallback
                el.inner_end, el.end = close.start(), close.end()
            rows.append(_Row(el, None, -1, p))
    return root, rows


def _row_cells(data: bytes, row: _Row) -> list[tuple[str | None, int]]:
    """The cells of a row found by _sheet's regex scan: (r, offset of "<c")."""
    if row.cells is None:
        row.cells = []
        cell = re.compile(b"<" + re.escape(row.prefix) + rb"c[\s/>]")
        for c in cell.finditer(data, row.el.head_end, row.el.inner_end):
            head = _TAG.match(data, c.start())
            if head is None:
                raise _Fallback
            row.cells.append((_attr_value(data[c.start() : head.end()], b"r"), c.start()))
    return row.cells


def _skippable(data: bytes) -> tuple[bytes, list[tuple[int, int]], tuple[int, int]] | None:
    """(prefix, the contents expat may check without callbacks, <sheetData>'s content), or None."""
    root = _ROOT.search(data)
    if root is None:
        return None
    p = _prefix(root.group(1).decode("utf-8", "replace")).encode()
    skips = []
    for name in (b"sheetData", b"dataValidations"):
        start = re.compile(b"<" + re.escape(p) + name + rb"[\s/>]").search(data)
        if start is None:
            if name == b"sheetData":
                return None
            continue
        head = _TAG.match(data, start.start())
        if head is None:
            return None
        if head.group(1):
            if name == b"sheetData":
                return None  # <sheetData/>
            continue
        close = re.compile(b"</" + re.escape(p) + name + rb"\s*>").search(data, head.end())
        if close is None:
            return None
        skips.append((head.end(), close.start()))
    a, b = skips[0]
    if b"extLst" in data[a:b] or (len(skips) > 1 and skips[1][0] < b):
        return None
    return p, sorted(skips), (a, b)


def _set_attrs(head: bytes, changes: dict[str, str | None]) -> bytes:
    """A start tag with attributes replaced (None removes one); the others are kept as written."""
    m = _TAG_NAME.match(head)
    if m is None:
        raise _Fallback
    parts = [head[: m.end()]]
    pos = m.end()
    seen = set()
    while (a := _ATTR.match(head, pos)) is not None:
        key = a.group(1).decode()
        if key in changes:
            seen.add(key)
            value = changes[key]
            if value is not None:
                parts.append(f' {key}="{_attr(value)}"'.encode())
        else:
            parts.append(a.group(0))
        pos = a.end()
    tail = head[pos:]
    extra = "".join(f' {k}="{_attr(v)}"' for k, v in changes.items() if k not in seen and v is not None)
    return b"".join(parts) + extra.encode() + tail.lstrip()


def _apply(data: bytes, edits: list[tuple[int, int, Any, bytes]]) -> bytes:
    """Splice (start, end, order, replacement) edits; insertions at one offset go in `order`."""
    edits.sort(key=lambda e: (e[0], e[1] != e[0], e[2]))
    out: list[bytes] = []
    pos = 0
    for start, end, _, text in edits:
        if start < pos:
            raise _Fallback  # overlapping edits: never expected, but never write a broken part
        out.append(data[pos:start])
        out.append(text)
        pos = end
    out.append(data[pos:])
    return b"".join(out)


def _namespace(root: _El, expected: str) -> None:
    declared = root.attrs.get(f"xmlns:{_prefix(root.tag)[:-1]}" if _prefix(root.tag) else "xmlns")
    if declared != expected:
        raise _Fallback  # Strict OOXML, or not the part we expected


def _member(base: str, target: str) -> str:
    """Resolve a relationship target against the folder of its source part."""
    parts = target[1:].split("/") if target.startswith("/") else [*base.split("/"), *target.split("/")]
    out: list[str] = []
    for part in parts:
        if part == "..":
            if out:
                out.pop()
        elif part not in ("", "."):
            out.append(part)
    return "/".join(out)


def _cell(a1: str) -> tuple[int, int]:
    m = _CELL.match(a1)
    if m is None:
        raise _Fallback
    row, col = int(m.group(2)), column_index_from_string(m.group(1))
    if not (1 <= row <= MAX_ROW and 1 <= col <= MAX_COL):
        raise _Fallback
    return row, col


def _a1(row: int, col: int) -> str:
    return f"{get_column_letter(col)}{row}"


def _true(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true")


# -- the package --------------------------------------------------------------------------------------
class _Package:
    """The source zip, checked as reader.py checks it; members are inflated only when a part is patched."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        try:
            self.zf = zipfile.ZipFile(io.BytesIO(data))
            infos = self.zf.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
            raise _Fallback from None
        if len(infos) > MAX_MEMBERS:
            raise _Fallback
        total = 0
        for info in infos:
            if info.file_size > BOMB_MIN_BYTES and info.file_size > BOMB_RATIO * max(info.compress_size, 1):
                raise _Fallback
            if max(info.file_size, info.compress_size, info.header_offset) >= 0xFFFFFFFF:
                raise _Fallback  # zip64
            if info.flag_bits & ~0x80E or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise _Fallback  # encrypted, or a compression Excel never writes
            total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise _Fallback
        self.infos = infos
        self.members = {info.filename: info for info in infos}
        if len(self.members) != len(infos):
            raise _Fallback  # duplicate names
        self.lower = {name.lower() for name in self.members}

    def read(self, name: str) -> bytes:
        info = self.members.get(name)
        if info is None or info.file_size > MAX_PART_BYTES:
            raise _Fallback
        try:
            return self.zf.read(info)  # bounded by the declared size, CRC checked
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error):
            raise _Fallback from None

    def raw(self, info: zipfile.ZipInfo) -> bytes:
        """A member's compressed bytes, to copy without inflating them."""
        head = self.data[info.header_offset : info.header_offset + 30]
        if len(head) != 30 or head[:4] != b"PK\x03\x04":
            raise _Fallback
        name_len, extra_len = struct.unpack_from("<HH", head, 26)
        start = info.header_offset + 30 + name_len + extra_len
        raw = self.data[start : start + info.compress_size]
        if len(raw) != info.compress_size:
            raise _Fallback
        return raw

    def free_name(self, pattern: str, taken: set[str]) -> str:
        """The first pattern.format(n) (n = 1, 2, ...) that names no member (part names ignore case)."""
        n = 1
        while (name := pattern.format(n)).lower() in self.lower or name.lower() in taken:
            n += 1
        taken.add(name.lower())
        return name


_LOCAL = struct.Struct("<4s5H3L2H")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_END = struct.Struct("<4s4H2LH")


def _dos_time(stamp: tuple[int, ...]) -> tuple[int, int]:
    year, month, day, hour, minute, second = stamp[:6]
    if year < 1980:
        year, month, day, hour, minute, second = 1980, 1, 1, 0, 0, 0
    return (hour << 11) | (minute << 5) | (second // 2), ((year - 1980) << 9) | (month << 5) | day


def _zip(pkg: _Package, changed: dict[str, bytes | None], added: list[tuple[str, bytes]]) -> bytes:
    """The copy: members in source order, unchanged ones copied compressed as they are; then the new parts.

    `changed` maps a member to its new bytes, or None to leave it out.
    """
    out = io.BytesIO()
    central: list[bytes] = []
    now = _dos_time(time.localtime())

    def entry(name: bytes, flags: int, method: int, when: tuple[int, int], crc: int, size: int, raw: bytes) -> None:
        offset = out.tell()
        head = (flags, method, when[0], when[1], crc, len(raw), size, len(name))
        out.write(_LOCAL.pack(b"PK\x03\x04", 20, *head, 0))
        out.write(name)
        out.write(raw)
        central.append(_CENTRAL.pack(b"PK\x01\x02", 20, 20, *head, 0, 0, 0, 0, 0, offset) + name)

    def deflated(name: str, data: bytes) -> None:
        packer = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -15)
        raw = packer.compress(data) + packer.flush()
        encoded = name.encode()
        flags = 0 if encoded.isascii() else 0x800
        entry(encoded, flags, zipfile.ZIP_DEFLATED, now, zlib.crc32(data), len(data), raw)

    for info in pkg.infos:
        if info.filename in changed:
            data = changed[info.filename]
            if data is not None:
                deflated(info.filename, data)
            continue
        flags = info.flag_bits & 0x806  # no data descriptor: the sizes go in the local header
        encoded = info.orig_filename.encode("utf-8" if flags & 0x800 else "cp437")
        when = _dos_time(info.date_time)
        entry(encoded, flags, info.compress_type, when, info.CRC, info.file_size, pkg.raw(info))
    for name, data in added:
        deflated(name, data)
    start = out.tell()
    for record in central:
        out.write(record)
    size = out.tell() - start
    if len(central) > 0xFFFF or out.tell() >= 0xFFFFFFFF:
        raise _Fallback
    out.write(_END.pack(b"PK\x05\x06", 0, 0, len(central), len(central), size, start, 0))
    return out.getvalue()


# -- styles -------------------------------------------------------------------------------------------
_FONTS = {
    # key: (bold, size, rgb colour or None, underlined): annotate.py's _BODY/_BOLD/_NOTE/_TITLE/_LINK fonts
    "body": (False, 10, None, False),
    "bold": (True, 10, None, False),
    "note": (False, 9, "595959", False),
    "title": (True, 14, None, False),
    "link": (False, 10, LINK_COLOR, True),
}
_ALIGN = {
    "wrap": 'vertical="center" wrapText="1"',
    "left": 'horizontal="left" vertical="center" wrapText="1"',
    "center": 'horizontal="center" vertical="center" wrapText="1"',
}


class _Styles:
    """styles.xml with fills, fonts, a border and cell formats appended (nothing existing is renumbered)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        root = _parse(data, {"cellXfs": None})
        _namespace(root, MAIN_NS)
        self.p = _prefix(root.tag)
        self.lists: dict[str, tuple[_El, int]] = {}
        for name in ("fonts", "fills", "borders", "cellXfs"):
            el = root.kid(name)
            if el is None or el.empty:
                raise _Fallback
            self.lists[name] = (el, el.count)
        style_xfs = root.kid("cellStyleXfs")
        if style_xfs is None or not style_xfs.count:
            raise _Fallback  # new formats point at xfId 0
        self.xfs = self.lists["cellXfs"][0].children
        if len(self.xfs) != self.lists["cellXfs"][1] or any(xf.local != "xf" for xf in self.xfs):
            raise _Fallback
        self.added: dict[str, list[str]] = {name: [] for name in self.lists}
        self.fills: dict[str, int] = {}
        self.fonts: dict[str, int] = {}
        self.border: int | None = None
        self.clones: dict[tuple[int, str], int] = {}
        self.formats: dict[tuple[Any, ...], int] = {}
        self.clone_text: list[bytes] = []

    def _add(self, name: str, xml: str) -> int:
        self.added[name].append(xml)
        return self.lists[name][1] + len(self.added[name]) - 1

    def fill(self, rgb: str) -> int:
        if rgb not in self.fills:
            p = self.p
            color = f'rgb="FF{rgb}"'
            self.fills[rgb] = self._add(
                "fills",
                f'<{p}fill><{p}patternFill patternType="solid"><{p}fgColor {color}/><{p}bgColor {color}/>'
                f"</{p}patternFill></{p}fill>",
            )
        return self.fills[rgb]

    def font(self, key: str) -> int:
        if key not in self.fonts:
            bold, size, rgb, underline = _FONTS[key]
            p = self.p
            xml = f"<{p}font>" + (f"<{p}b/>" if bold else "") + (f'<{p}u val="single"/>' if underline else "")
            xml += f'<{p}sz val="{size}"/>' + (f'<{p}color rgb="FF{rgb}"/>' if rgb else "")
            xml += f'<{p}name val="{FONT}"/><{p}charset val="134"/></{p}font>'
            self.fonts[key] = self._add("fonts", xml)
        return self.fonts[key]

    def thin_border(self) -> int:
        if self.border is None:
            p = self.p
            side = "".join(
                f'<{p}{s} style="thin"><{p}color rgb="FF808080"/></{p}{s}>' for s in ("left", "right", "top", "bottom")
            )
            self.border = self._add("borders", f"<{p}border>{side}<{p}diagonal/></{p}border>")
        return self.border

    def marked(self, style: int, rgb: str) -> int:
        """The cell format `style` with a solid `rgb` fill: a clone of its <xf> (font, border, number
        format, alignment and protection kept)."""
        key = (style, rgb)
        if key not in self.clones:
            if not 0 <= style < len(self.xfs):
                raise _Fallback
            xf = self.xfs[style]
            head = _set_attrs(self.data[xf.start : xf.head_end], {"fillId": str(self.fill(rgb)), "applyFill": "1"})
            self.clone_text.append(head + self.data[xf.head_end : xf.end])
            self.clones[key] = len(self.xfs) + len(self.clone_text) - 1
        return self.clones[key]

    def result(self, font: str, align: str | None, fill: str | None, border: bool, numfmt: int, quote: bool) -> int:
        """A cell format of the 审核结果 sheet."""
        key = (font, align, fill, border, numfmt, quote)
        if key not in self.formats:
            p = self.p
            attrs = f'numFmtId="{numfmt}" fontId="{self.font(font)}" fillId="{self.fill(fill) if fill else 0}" '
            attrs += f'borderId="{self.thin_border() if border else 0}" xfId="0" applyFont="1"'
            attrs += ' applyNumberFormat="1"' if numfmt else ""
            attrs += ' applyFill="1"' if fill else ""
            attrs += ' applyBorder="1"' if border else ""
            attrs += ' quotePrefix="1"' if quote else ""
            if align:
                xml = f'<{p}xf {attrs} applyAlignment="1"><{p}alignment {_ALIGN[align]}/></{p}xf>'
            else:
                xml = f"<{p}xf {attrs}/>"
            self.clone_text.append(xml.encode())
            self.formats[key] = len(self.xfs) + len(self.clone_text) - 1
        return self.formats[key]

    def patched(self) -> bytes:
        edits: list[tuple[int, int, Any, bytes]] = []
        for name, (el, count) in self.lists.items():
            if name == "cellXfs":
                new = b"".join(self.clone_text)
                added = len(self.clone_text)
            else:
                new = "".join(self.added[name]).encode()
                added = len(self.added[name])
            if not added:
                continue
            edits.append(
                (el.start, el.head_end, 0, _set_attrs(self.data[el.start : el.head_end], {"count": str(count + added)}))
            )
            edits.append((el.inner_end, el.inner_end, 0, new))
        return _font_order(_apply(self.data, edits))


# The order of a <font>'s children in the schema (CT_Font, as the Open XML SDK and openxml-audit check it).
# openpyxl writes name, charset, family, b, …, color, sz: Excel opens that, a schema validator does not, and
# an annotated copy of an openpyxl-saved input would inherit it; the copy gets the schema's order.
_FONT_ORDER = {
    name.encode(): i
    for i, name in enumerate(
        "b i strike condense extend outline shadow u vertAlign sz color name family charset scheme".split()
    )
}
_FONT_ELEMENT = re.compile(rb"(<(?:\w+:)?font>)((?:\s*<(?:\w+:)?\w+(?:\s[^<>]*)?/>)*)(\s*</(?:\w+:)?font>)")
_EMPTY_CHILD = re.compile(rb"<(?:\w+:)?(\w+)(?:\s[^<>]*)?/>")


def _font_order(data: bytes) -> bytes:
    """styles.xml with the children of every <font> (all empty elements) in the schema's order."""

    def fix(m: re.Match[bytes]) -> bytes:
        kids = list(_EMPTY_CHILD.finditer(m.group(2)))
        if any(k.group(1) not in _FONT_ORDER for k in kids):
            return m.group(0)
        ordered = sorted(kids, key=lambda k: _FONT_ORDER[k.group(1)])
        return m.group(1) + b"".join(k.group(0) for k in ordered) + m.group(3)

    return _FONT_ELEMENT.sub(fix, data)


# -- the unit's worksheets ------------------------------------------------------------------------------
@dataclass(slots=True, eq=False)
class _Sheet:
    """A <sheet> of workbook.xml and the part it names."""

    name: str
    el: _El
    part: str
    kind: str


def _coordinate(cell: str) -> tuple[int, int] | None:
    """(row, col) of a finding's cell as annotate._anchor reads it; None where openpyxl finds no cell."""
    try:
        letters, row = coordinate_from_string(cell.split(":")[0].replace("$", "").strip().upper())
        col = column_index_from_string(letters)
    except ValueError:
        return None
    if not 1 <= row <= MAX_ROW:
        return None
    if col > MAX_COL:
        raise _Fallback  # openpyxl would mark a cell beyond XFD, which Excel cannot hold
    return row, col


def _merges(root: _El) -> list[tuple[int, int, int, int]]:
    """Merged ranges as (min_row, min_col, max_row, max_col), in document order."""
    block = root.kid("mergeCells")
    out = []
    for el in block.kids("mergeCell") if block is not None else []:
        m = _RANGE.match(el.attrs.get("ref", "").strip().upper())
        if m is None:
            raise _Fallback
        r1, c1 = int(m.group(2)), column_index_from_string(m.group(1))
        r2, c2 = (int(m.group(4)), column_index_from_string(m.group(3))) if m.group(3) else (r1, c1)
        out.append((min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2)))
    return out


@dataclass
class _Marks:
    """What one worksheet gets: fills by cell, and our 批注 by anchor cell."""

    fills: dict[tuple[int, int], str] = field(default_factory=dict)
    comments: dict[tuple[int, int], str] = field(default_factory=dict)


def _resolve(
    findings: list[tuple[int, Finding, tuple[int, int]]], merges: list[tuple[int, int, int, int]]
) -> tuple[_Marks, dict[int, tuple[int, int]]]:
    """annotate.mark_cells on one sheet: the anchor of each finding (a merge's top-left cell), the most
    severe fill over the anchor's whole merge, one comment per anchor."""
    by_anchor: dict[tuple[int, int], list[Finding]] = {}
    ranges: dict[tuple[int, int], tuple[int, int, int, int]] = {}
    anchors: dict[int, tuple[int, int]] = {}
    for i, f, (row, col) in findings:
        anchor = (row, col)
        for rng in merges:
            if rng[0] <= row <= rng[2] and rng[1] <= col <= rng[3]:
                anchor = (rng[0], rng[1])
                break
        anchors[i] = anchor
        by_anchor.setdefault(anchor, []).append(f)
        if anchor not in ranges:
            ranges[anchor] = next((r for r in merges if (r[0], r[1]) == anchor), (*anchor, *anchor))
    marks = _Marks()
    for anchor, found in by_anchor.items():
        rgb = severity_fill(min(found, key=weight))
        r1, c1, r2, c2 = ranges[anchor]
        if len(marks.fills) + (r2 - r1 + 1) * (c2 - c1 + 1) > MAX_MARKED_CELLS:
            raise _Fallback
        for r in range(r1, r2 + 1):
            for c in range(c1, c2 + 1):
                marks.fills[(r, c)] = rgb
        marks.comments[anchor] = clean(comment_text(found))
    return marks, anchors


def _open_tag(head: bytes) -> bytes:
    """<x .../> as <x ...>."""
    return head[:-2].rstrip() + b">" if head.endswith(b"/>") else head


def _patch_sheet(data: bytes, root: _El, rows: list[_Row], marks: _Marks, styles: _Styles, drawing_rid: str) -> bytes:
    """Fill the marked cells (adding <c> or <row> elements where the file has none), add <legacyDrawing>,
    and clear tabSelected."""
    p = _prefix(root.tag)
    for child in root.children:
        if _prefix(child.tag) != p or child.local not in WORKSHEET_ORDER:
            raise _Fallback  # mc:AlternateContent and the like: leave the placement to openpyxl
    if root.kid("legacyDrawing") is not None or root.kid("sheetData") is None:
        raise _Fallback
    edits: list[tuple[int, int, Any, bytes]] = []
    edits += _unselect(data, root)

    by_number: dict[int, _Row] = {}
    for row in rows:
        number = row.el.attrs.get("r", "")
        if not (number.isascii() and number.isdigit()) or int(number) in by_number:
            raise _Fallback  # rows without r (or twice the same) are left to openpyxl
        by_number[int(number)] = row
    col_styles: list[tuple[int, int, int]] = []
    cols = root.kid("cols")
    for col in cols.kids("col") if cols is not None else []:
        try:
            col_styles.append((int(col.attrs["min"]), int(col.attrs["max"]), int(col.attrs.get("style", "0"))))
        except (KeyError, ValueError):
            raise _Fallback from None

    def base_style(row: _Row | None, col: int) -> int:
        """What Excel shows in a cell the file does not list: the row's format, else the column's."""
        if row is not None and _true(row.el.attrs.get("customFormat")):
            return _int(row.el.attrs.get("s", "0"))
        return next((s for lo, hi, s in col_styles if lo <= col <= hi), 0)

    def new_cell(row: _Row | None, r: int, c: int, rgb: str) -> bytes:
        return f'<{p}c r="{_a1(r, c)}" s="{styles.marked(base_style(row, c), rgb)}"/>'.encode()

    wanted: dict[int, list[tuple[int, str]]] = {}
    for (r, c), rgb in sorted(marks.fills.items()):
        wanted.setdefault(r, []).append((c, rgb))
    added: list[tuple[int, int]] = []
    new_rows: dict[int, bytes] = {}
    for r, cells in wanted.items():
        found = by_number.get(r)
        if found is None:
            new_rows[r] = f'<{p}row r="{r}">'.encode() + b"".join(new_cell(None, r, c, rgb) for c, rgb in cells)
            new_rows[r] += f"</{p}row>".encode()
            added += [(r, c) for c, _ in cells]
            continue
        row = found
        present: dict[int, int] = {}
        for ref, at_pos in _row_cells(data, row):
            if ref is None:
                raise _Fallback
            at = _cell(ref)
            if at[0] != r or at[1] in present:
                raise _Fallback
            present[at[1]] = at_pos
        missing: list[tuple[int, str]] = []
        for c, rgb in cells:
            pos = present.get(c, -1)
            if pos < 0:
                missing.append((c, rgb))
                continue
            m = _TAG.match(data, pos)
            if m is None:
                raise _Fallback
            head = data[pos : m.end()]
            style = _int(_attr_value(head, b"s") or "0")
            edits.append((pos, m.end(), 0, _set_attrs(head, {"s": str(styles.marked(style, rgb))})))
        if not missing:
            continue
        added += [(r, c) for c, _ in missing]
        head = data[row.el.start : row.el.head_end]
        if "spans" in row.el.attrs:
            head = _set_attrs(head, {"spans": None})  # a hint Excel checks: drop it rather than widen it
        if row.el.empty:
            text = (
                _open_tag(head) + b"".join(new_cell(row, r, c, rgb) for c, rgb in missing) + f"</{row.el.tag}>".encode()
            )
            edits.append((row.el.start, row.el.end, 0, text))
            continue
        if head != data[row.el.start : row.el.head_end]:
            edits.append((row.el.start, row.el.head_end, 0, head))
        later = sorted(present.items())
        end = row.tail if row.tail >= 0 else row.el.inner_end
        for c, rgb in missing:
            pos = next((at for col, at in later if col > c), end)
            edits.append((pos, pos, c, new_cell(row, r, c, rgb)))

    if new_rows:
        sheet_data = root.kid("sheetData")
        assert sheet_data is not None
        if sheet_data.empty:
            text = _open_tag(data[sheet_data.start : sheet_data.head_end])
            text += b"".join(new_rows[r] for r in sorted(new_rows)) + f"</{sheet_data.tag}>".encode()
            edits.append((sheet_data.start, sheet_data.end, 0, text))
        else:
            numbers = sorted(by_number)
            for r, text in new_rows.items():
                later_row = next((by_number[n] for n in numbers if n > r), None)
                pos = later_row.el.start if later_row is not None else sheet_data.inner_end
                edits.append((pos, pos, r, text))
    dimension = root.kid("dimension")
    if added and dimension is not None:
        edits += _widen(data, dimension, added)

    # The template's self-check colours a cell through a conditional format, which paints over the fill
    # we give it: formats whose whole range we mark are dropped (annotate.unshadow).
    for child in root.kids("conditionalFormatting"):
        covered = _sqref_cells(child.attrs.get("sqref", ""), len(marks.fills))
        if covered is not None and covered <= marks.fills.keys():
            edits.append((child.start, child.end, 0, b""))

    order = WORKSHEET_ORDER["legacyDrawing"]
    after = next((c for c in root.children if WORKSHEET_ORDER[c.local] > order), None)
    pos = after.start if after is not None else root.inner_end
    edits.append((pos, pos, 0, f'<{p}legacyDrawing xmlns:r="{REL_NS}" r:id="{drawing_rid}"/>'.encode()))
    return _apply(data, edits)


def _sqref_cells(sqref: str, limit: int) -> set[tuple[int, int]] | None:
    """The (row, col) cells of a sqref ("F7 G9:H10"); None when unparseable or more than `limit` cells."""
    cells: set[tuple[int, int]] = set()
    for part in sqref.split():
        m = _RANGE.match(part.upper())
        if m is None:
            return None
        r1, c1 = int(m.group(2)), column_index_from_string(m.group(1))
        r2, c2 = (int(m.group(4)), column_index_from_string(m.group(3))) if m.group(3) else (r1, c1)
        if (abs(r2 - r1) + 1) * (abs(c2 - c1) + 1) + len(cells) > limit:
            return None
        cells.update((r, c) for r in range(min(r1, r2), max(r1, r2) + 1) for c in range(min(c1, c2), max(c1, c2) + 1))
    return cells or None


def _int(text: str | None) -> int:
    if text is None or not (text.isascii() and text.strip().isdigit()):
        raise _Fallback
    return int(text)


def _attr_value(head: bytes, name: bytes) -> str | None:
    """One attribute of a start tag already checked by expat (values still escaped; we read numbers)."""
    for a in _ATTR.finditer(head):
        if a.group(1) == name:
            return a.group(2)[1:-1].decode()
    return None


def _attrs(head: bytes) -> dict[str, str]:
    """Attributes of a start tag already checked by expat (values still escaped; we only read numbers)."""
    return {a.group(1).decode(): a.group(2)[1:-1].decode() for a in _ATTR.finditer(head)}


def _widen(data: bytes, dimension: _El, cells: list[tuple[int, int]]) -> list[tuple[int, int, Any, bytes]]:
    """<dimension ref> grown to hold cells the copy adds (it is a hint, but read_only readers trust it)."""
    m = _RANGE.match(dimension.attrs.get("ref", "").strip().upper())
    if m is None:
        return []
    r1, c1 = int(m.group(2)), column_index_from_string(m.group(1))
    r2, c2 = (int(m.group(4)), column_index_from_string(m.group(3))) if m.group(3) else (r1, c1)
    rows, cols = [r for r, _ in cells] + [r1, r2], [c for _, c in cells] + [c1, c2]
    ref = f"{_a1(min(rows), min(cols))}:{_a1(max(rows), max(cols))}"
    head = data[dimension.start : dimension.head_end]
    return [(dimension.start, dimension.head_end, 0, _set_attrs(head, {"ref": ref}))]


def _unselect(data: bytes, root: _El) -> list[tuple[int, int, Any, bytes]]:
    """Edits that clear tabSelected, so Excel opens the copy on 审核结果 alone rather than grouped."""
    edits: list[tuple[int, int, Any, bytes]] = []
    views = root.kid("sheetViews")
    for view in views.kids("sheetView") if views is not None else []:
        value = view.attrs.get("tabSelected")
        if value is not None and value.strip().lower() not in ("0", "false"):
            head = data[view.start : view.head_end]
            edits.append((view.start, view.head_end, 0, _set_attrs(head, {"tabSelected": None})))
    return edits


# -- comments -------------------------------------------------------------------------------------------
def _comments_xml(comments: list[tuple[tuple[int, int], str]]) -> bytes:
    items = "".join(
        f'<comment ref="{_a1(r, c)}" authorId="0"><text><t xml:space="preserve">{_esc(text)}</t></text></comment>'
        for (r, c), text in comments
    )
    body = f'<comments xmlns="{MAIN_NS}"><authors><author>{_esc(AUTHOR)}</author></authors>'
    return XML_DECL + f"{body}<commentList>{items}</commentList></comments>".encode()


def _vml(comments: list[tuple[tuple[int, int], str]], block: int) -> tuple[bytes, int]:
    """The comment boxes (openpyxl's shapes, with sizes from annotate.comment_size); returns the VML and
    the number of 1024-shape id blocks used from `block` on, so drawings never share shape ids."""
    blocks = len(comments) // 1024 + 1
    data = ",".join(str(block + k) for k in range(blocks))
    shapes = []
    for i, ((r, c), text) in enumerate(comments):
        width, height = comment_size(text)
        style = (
            "position:absolute;margin-left:59.25pt;margin-top:1.5pt;"
            f"width:{width}px;height:{height}px;z-index:{i + 1};visibility:hidden"
        )
        shapes.append(
            f'<v:shape id="_x0000_s{block * 1024 + i + 1}" type="#_x0000_t202" style="{style}" fillcolor="#ffffe1"'
            ' o:insetmode="auto"><v:fill color2="#ffffe1"/><v:shadow on="t" color="black" obscured="t"/>'
            '<v:path o:connecttype="none"/><v:textbox style="mso-direction-alt:auto">'
            '<div style="text-align:left"></div></v:textbox><x:ClientData ObjectType="Note"><x:MoveWithCells/>'
            f"<x:SizeWithCells/><x:AutoFill>False</x:AutoFill><x:Row>{r - 1}</x:Row><x:Column>{c - 1}</x:Column>"
            "</x:ClientData></v:shape>"
        )
    xml = (
        '<xml xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office"'
        ' xmlns:x="urn:schemas-microsoft-com:office:excel">'
        f'<o:shapelayout v:ext="edit"><o:idmap v:ext="edit" data="{data}"/></o:shapelayout>'
        '<v:shapetype id="_x0000_t202" coordsize="21600,21600" o:spt="202" path="m,l,21600r21600,l21600,xe">'
        '<v:stroke joinstyle="miter"/><v:path gradientshapeok="t" o:connecttype="rect"/></v:shapetype>'
        + "".join(shapes)
        + "</xml>"
    )
    return xml.encode(), blocks


_IDMAP = re.compile(rb"idmap\b[^>]*?\bdata\s*=\s*[\"']([0-9,\s]{1,200})[\"']")


def _first_vml_block(pkg: _Package) -> int:
    """The first shape-id block no existing VML drawing (another sheet's 批注 or buttons) claims."""
    used = [0]
    for name, info in pkg.members.items():
        if name.lower().endswith(".vml") and info.file_size <= MAX_PART_BYTES:
            for m in _IDMAP.finditer(pkg.read(name)):
                used += [int(n) for n in m.group(1).replace(b" ", b"").split(b",") if n.isdigit() and len(n) < 7]
    return max(used) + 1


# -- the 审核结果 sheet -----------------------------------------------------------------------------------
@dataclass
class _Result:
    """The sheet's XML and where its table sits (for the defined names)."""

    xml: bytes
    header: int
    last: int


def _result_sheet(report: Report, source: Path, targets: dict[int, str], styles: _Styles) -> _Result:
    """annotate.write_result_sheet, written as XML: same rows, merges, widths, styles, links and print setup."""
    table = result_rows(report)
    widths = column_widths(table)
    cells: dict[int, dict[int, bytes]] = {}
    heights: dict[int, float] = {}
    merges: list[str] = []
    links: list[str] = []

    def put(
        r: int,
        c: int,
        value: Any,
        font: str = "body",
        align: str | None = "wrap",
        fill: str | None = None,
        border: bool = True,
        numfmt: int = 0,
    ) -> None:
        ref = _a1(r, c)
        quote = False
        if isinstance(value, str):
            value = clean(value)
            quote = looks_like_formula(value)  # annotate.put_text: Excel's leading apostrophe
        s = styles.result(font, align, fill, border, numfmt, quote)
        if value is None or value == "":
            xml = f'<c r="{ref}" s="{s}"/>'
        elif isinstance(value, str):
            space = ' xml:space="preserve"' if value != value.strip() else ""
            xml = f'<c r="{ref}" s="{s}" t="inlineStr"><is><t{space}>{_esc(value)}</t></is></c>'
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise _Fallback  # annotate.py writes only text and numbers here
        else:
            xml = f'<c r="{ref}" s="{s}"><v>{value if isinstance(value, int) else _num(value)}</v></c>'
        cells.setdefault(r, {})[c] = xml.encode()

    put(1, 1, f"审核结果 — {report.unit_name or '（单位未识别）'}", "title", None, border=False)
    heights[1] = 24
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    put(2, 1, f"原文件：{source.name}　审核时间：{stamp}　xlsx-kpi {__version__}", "note", None, border=False)

    label_width = widths[0] + widths[1]
    value_width = widths[2] + widths[3] + widths[4]
    r = 3
    for label, value, fill in summary_rows(report):
        merges += [f"A{r}:B{r}", f"C{r}:E{r}"]
        put(r, 1, label, "bold", "wrap", HEADER_FILL)
        put(r, 2, None, "bold", "wrap", HEADER_FILL)
        numfmt = 2 if label == "重算合计" and isinstance(value, float) else 0  # built-in 2 is "0.00"
        put(r, 3, value, "bold" if label == "审核结论" else "body", "left", fill, numfmt=numfmt)
        put(r, 4, None, fill=fill)
        put(r, 5, None, fill=fill)
        heights[r] = row_height([(label, label_width), (str(value), value_width)])
        r += 1

    header = r + 1
    for j, text in enumerate(HEADERS, start=1):
        put(header, j, text, "bold", "center", HEADER_FILL)
    heights[header] = 20
    r = header + 1
    if not table:
        for j in range(1, len(HEADERS) + 1):
            put(r, j, "未发现问题" if j == 3 else None, fill=PASS_FILL if j == 3 else None)
        r += 1
    for i, (row, f) in enumerate(zip(table, report.findings, strict=True)):
        for j, value in enumerate(row, start=1):
            if j == 2:
                put(r, j, value, "bold", "center", severity_fill(f))
            elif j == 5 and i in targets:
                put(r, j, value, "link", "center")
                tip = _attr(f"转到 {f.where}")
                shown = _attr(clean(f.where))
                links.append(
                    f'<hyperlink ref="E{r}" location="{_attr(targets[i])}" tooltip="{tip}" display="{shown}"/>'
                )
            else:
                put(r, j, value, align="center" if j in (1, 4, 5) else "wrap")
        heights[r] = row_height((str(v), w) for v, w in zip(row, widths, strict=True))
        r += 1
    last = r - 1

    rows_xml = []
    for n in sorted(cells):
        height = f' ht="{_num(heights[n])}" customHeight="1"' if n in heights else ""
        rows_xml.append(f'<row r="{n}"{height}>'.encode() + b"".join(cells[n][c] for c in sorted(cells[n])) + b"</row>")
    cols = "".join(f'<col min="{j}" max="{j}" width="{_num(w)}" customWidth="1"/>' for j, w in enumerate(widths, 1))
    top = f"A{header + 1}"
    head = (
        f'<worksheet xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>'
        f'<dimension ref="A1:{get_column_letter(len(HEADERS))}{last}"/>'
        f'<sheetViews><sheetView tabSelected="1" workbookViewId="0"><pane ySplit="{header}" topLeftCell="{top}"'
        ' activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft" activeCell="A1" sqref="A1"/>'
        f'</sheetView></sheetViews><sheetFormatPr defaultRowHeight="15"/><cols>{cols}</cols><sheetData>'
    )
    tail = (
        f'</sheetData><autoFilter ref="A{header}:{get_column_letter(len(HEADERS))}{last}"/>'
        f'<mergeCells count="{len(merges)}">'
        + "".join(f'<mergeCell ref="{m}"/>' for m in merges)
        + "</mergeCells>"
        + (f"<hyperlinks>{''.join(links)}</hyperlinks>" if links else "")
        + '<printOptions horizontalCentered="1"/>'
        '<pageMargins left="0.4" right="0.4" top="0.6" bottom="0.6" header="0.3" footer="0.3"/>'
        '<pageSetup paperSize="9" orientation="landscape" fitToWidth="1" fitToHeight="0"/>'
        "<headerFooter><oddFooter>&amp;C第 &amp;P 页，共 &amp;N 页</oddFooter></headerFooter></worksheet>"
    )
    return _Result(XML_DECL + head.encode() + b"".join(rows_xml) + tail.encode(), header, last)


# -- workbook, relationships, content types --------------------------------------------------------------
def _patch_workbook(data: bytes, book: _El, sheet_xml_id: str, rel_prefix: str | None, result: _Result) -> bytes:
    """审核结果 first and active, sheet-scoped names (print titles and areas) moved to their sheets' new
    positions, and the new sheet's filter range and print titles."""
    p = _prefix(book.tag)
    sheets = book.kid("sheets")
    if sheets is None or sheets.empty:
        raise _Fallback
    ids = [_int(s.attrs.get("sheetId")) for s in sheets.kids("sheet")]
    rid = f"{rel_prefix}:id" if rel_prefix else f'xmlns:r="{REL_NS}" r:id'
    new_sheet = f'<{p}sheet name="{_attr(RESULT_SHEET)}" sheetId="{max(ids, default=0) + 1}" {rid}="{sheet_xml_id}"/>'
    edits: list[tuple[int, int, Any, bytes]] = [(sheets.head_end, sheets.head_end, 0, new_sheet.encode())]

    quoted = "'" + RESULT_SHEET.replace("'", "''") + "'"
    names = (
        f'<{p}definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">'
        f"{_esc(quoted)}!$A${result.header}:${get_column_letter(len(HEADERS))}${result.last}</{p}definedName>"
        f'<{p}definedName name="_xlnm.Print_Titles" localSheetId="0">'
        f"{_esc(quoted)}!${result.header}:${result.header}</{p}definedName>"
    ).encode()
    defined = book.kid("definedNames")
    if defined is None:
        after = next((c for c in book.children if c.local in AFTER_DEFINED_NAMES), None)
        pos = after.start if after is not None else book.inner_end
        edits.append((pos, pos, 0, f"<{p}definedNames>".encode() + names + f"</{p}definedNames>".encode()))
    elif defined.empty:
        edits.append(
            (
                defined.start,
                defined.end,
                0,
                _open_tag(data[defined.start : defined.head_end]) + names + f"</{defined.tag}>".encode(),
            )
        )
    else:
        edits.append((defined.head_end, defined.head_end, 0, names))
        for name in defined.kids("definedName"):
            local = name.attrs.get("localSheetId")
            if local is not None:
                head = data[name.start : name.head_end]
                edits.append((name.start, name.head_end, 0, _set_attrs(head, {"localSheetId": str(_int(local) + 1)})))
    views = book.kid("bookViews")
    for view in views.kids("workbookView") if views is not None else []:
        changes: dict[str, str | None] = {"activeTab": "0"}
        if "firstSheet" in view.attrs:
            changes["firstSheet"] = "0"
        edits.append((view.start, view.head_end, 0, _set_attrs(data[view.start : view.head_end], changes)))
    return _apply(data, edits)


def _rel_prefix(book: _El) -> str | None:
    """The prefix the workbook declares for the relationships namespace (usually "r")."""
    for key, value in book.attrs.items():
        if key.startswith("xmlns:") and value == REL_NS:
            return key[6:]
    return None


def _free_id(ids: Iterable[str]) -> str:
    taken = set(ids)
    numbers = [int(i[3:]) for i in taken if i.startswith("rId") and i[3:].isdigit() and len(i) < 12]
    n = max(numbers, default=0) + 1
    while f"rId{n}" in taken:
        n += 1
    return f"rId{n}"


def _relationship(rid: str, kind: str, target: str) -> str:
    return f'<Relationship Id="{rid}" Type="{kind}" Target="{_attr(target)}"/>'


def _add_relationships(data: bytes | None, new: list[tuple[str, str]]) -> tuple[bytes, list[str]]:
    """A .rels part (existing or new) with relationships (type, absolute target) added; returns their ids."""
    if data is None:
        ids = [f"rId{i}" for i in range(1, len(new) + 1)]
        body = "".join(_relationship(i, kind, target) for i, (kind, target) in zip(ids, new, strict=True))
        return XML_DECL + f'<Relationships xmlns="{PKG_REL_NS}">{body}</Relationships>'.encode(), ids
    root = _parse(data, {})
    _namespace(root, PKG_REL_NS)
    if root.empty:
        raise _Fallback
    taken = [el.attrs.get("Id", "") for el in root.children]
    ids = []
    for _ in new:
        ids.append(_free_id(taken + ids))
    p = _prefix(root.tag)
    body = "".join(_relationship(i, kind, target) for i, (kind, target) in zip(ids, new, strict=True))
    body = body.replace("<Relationship ", f"<{p}Relationship ") if p else body
    return _apply(data, [(root.inner_end, root.inner_end, 0, body.encode())]), ids


def _rels_name(part: str) -> str:
    folder, _, name = part.rpartition("/")
    return f"{folder}/_rels/{name}.rels" if folder else f"_rels/{name}.rels"


def _drop_app_titles(data: bytes) -> bytes:
    """docProps/app.xml without HeadingPairs/TitlesOfParts: the sheet list there would miss 审核结果.

    Both are optional; Excel rewrites them on save, and openpyxl's copy has neither.
    """
    try:
        root = _parse(data, {})
    except _Fallback:
        return data  # metadata only, and nothing reads it on open: leave it as the unit sent it
    cuts = [(c.start, c.end, 0, b"") for c in root.children if c.local in ("HeadingPairs", "TitlesOfParts")]
    return _apply(data, cuts) if cuts else data


# -- the whole copy ---------------------------------------------------------------------------------------
def _build(source: Path, report: Report) -> bytes:
    """The annotated copy's bytes; _Fallback when the file has a structure this module does not patch."""
    try:
        if source.stat().st_size > MAX_SOURCE_BYTES:
            raise _Fallback
        pkg = _Package(source.read_bytes())
    except OSError:
        raise _Fallback from None  # openpyxl's path reports the file's problem in its own words

    types_data = pkg.read("[Content_Types].xml")
    types = _parse(types_data, {})
    _namespace(types, CT_NS)
    overrides = {el.attrs.get("PartName", "").lower(): el for el in types.kids("Override")}
    defaults = {el.attrs.get("Extension", "").lower(): el for el in types.kids("Default")}
    workbook_type = overrides.get("/xl/workbook.xml")
    if workbook_type is None or workbook_type.attrs.get("ContentType") != CT_WORKBOOK:
        raise _Fallback  # .xlsm/.xltx: openpyxl converts the content type (and drops the macros)

    rels_data = pkg.read("xl/_rels/workbook.xml.rels")
    rels = _parse(rels_data, {})
    _namespace(rels, PKG_REL_NS)
    if rels.empty:
        raise _Fallback
    targets_by_id: dict[str, tuple[str, str]] = {}
    for el in rels.children:
        if el.attrs.get("TargetMode") != "External":
            targets_by_id[el.attrs.get("Id", "")] = (
                el.attrs.get("Type", ""),
                _member("xl", el.attrs.get("Target", "")),
            )

    book_data = pkg.read("xl/workbook.xml")
    book = _parse(book_data, {"sheets": None, "bookViews": None, "definedNames": "localSheetId"})
    _namespace(book, MAIN_NS)
    rel_prefix = _rel_prefix(book)
    sheets: dict[str, _Sheet] = {}
    sheets_el = book.kid("sheets")
    for el in sheets_el.kids("sheet") if sheets_el is not None else []:
        rid = next((v for k, v in el.attrs.items() if k.endswith(":id")), "")
        kind, part = targets_by_id.get(rid, ("", ""))
        if part not in pkg.members:
            raise _Fallback
        sheets[el.attrs.get("name", "")] = _Sheet(el.attrs.get("name", ""), el, part, kind)
    if not sheets:
        raise _Fallback
    if RESULT_SHEET in sheets:
        raise _Fallback  # a returned annotated copy: annotate.strip_review removes the earlier round first
    if "docProps/core.xml" not in pkg.members:
        raise _Fallback  # openpyxl writes one, with the mark that tells our copy from a unit's file
    styles_part = next((part for kind, part in targets_by_id.values() if kind == REL_STYLES), None)
    if styles_part is None:
        raise _Fallback
    styles_data = pkg.read(styles_part)
    styles = _Styles(styles_data)

    # Which cell each finding names, on which worksheet (annotate._anchor's rules).
    wanted: dict[str, list[tuple[int, Finding, tuple[int, int]]]] = {}
    for i, f in enumerate(report.findings):
        sheet = sheets.get(f.sheet)
        if sheet is None or sheet.kind != REL_WORKSHEET:
            continue
        at = _coordinate(f.cell)
        if at is not None:
            wanted.setdefault(f.sheet, []).append((i, f, at))

    changed: dict[str, bytes | None] = {}
    added: list[tuple[str, bytes]] = []
    taken: set[str] = set()
    new_types: list[str] = []
    targets: dict[int, str] = {}
    block = _first_vml_block(pkg) if wanted else 1
    for name, found in wanted.items():
        sheet = sheets[name]
        data = pkg.read(sheet.part)
        root, rows = _sheet(data, {"sheetViews": None, "cols": None, "mergeCells": None}, True)
        _namespace(root, MAIN_NS)
        marks, anchors = _resolve(found, _merges(root))
        for i, (r, c) in anchors.items():
            targets[i] = f"'{name.replace(chr(39), chr(39) * 2)}'!{_a1(r, c)}"
        rels_name = _rels_name(sheet.part)
        sheet_rels = pkg.read(rels_name) if rels_name in pkg.members else None
        if sheet_rels is None and rels_name.lower() in pkg.lower:
            raise _Fallback
        if sheet_rels is not None and REL_COMMENTS.encode() in sheet_rels:
            raise _Fallback  # the unit's own 批注: openpyxl merges ours into them
        comments_part = pkg.free_name("xl/comments{}.xml", taken)
        vml_part = pkg.free_name("xl/drawings/vmlDrawing{}.vml", taken)
        new_rels, (_, vml_rid) = _add_relationships(
            sheet_rels, [(REL_COMMENTS, "/" + comments_part), (REL_VML, "/" + vml_part)]
        )
        changed[sheet.part] = _patch_sheet(data, root, rows, marks, styles, vml_rid)
        if sheet_rels is None:
            added.append((rels_name, new_rels))
        else:
            changed[rels_name] = new_rels
        comments = sorted(marks.comments.items())
        vml, used = _vml(comments, block)
        block += used
        added += [(comments_part, _comments_xml(comments)), (vml_part, vml)]
        new_types.append(f'<Override PartName="/{comments_part}" ContentType="{CT_COMMENTS}"/>')

    # Every other sheet loses tabSelected (chart sheets too), so Excel opens the copy on 审核结果 alone.
    for sheet in sheets.values():
        if sheet.part in changed:
            continue
        data = pkg.read(sheet.part)
        if _SELECTED.search(data):
            root, _ = _sheet(data, {"sheetViews": None}, False)
            edits = _unselect(data, root)
            if edits:
                changed[sheet.part] = _apply(data, edits)

    result = _result_sheet(report, source, targets, styles)
    result_part = pkg.free_name("xl/worksheets/sheet{}.xml", taken)
    added.insert(0, (result_part, result.xml))
    new_types.insert(0, f'<Override PartName="/{result_part}" ContentType="{CT_WORKSHEET}"/>')
    result_rid = _free_id(el.attrs.get("Id", "") for el in rels.children)
    rel_edits: list[tuple[int, int, Any, bytes]] = []
    rp = _prefix(rels.tag)
    rel_edits.append(
        (
            rels.inner_end,
            rels.inner_end,
            0,
            f'<{rp}Relationship Id="{result_rid}" Type="{REL_WORKSHEET}" Target="/{result_part}"/>'.encode(),
        )
    )
    # The calculation chain lists cells by sheet; Excel rebuilds a missing one silently (openpyxl drops it too).
    types_edits: list[tuple[int, int, Any, bytes]] = []
    for el in rels.children:
        if el.attrs.get("Type") == REL_CALC_CHAIN:
            chain = _member("xl", el.attrs.get("Target", ""))
            rel_edits.append((el.start, el.end, 0, b""))
            if chain in pkg.members:
                changed[chain] = None
            override = overrides.get("/" + chain.lower())
            if override is not None:
                types_edits.append((override.start, override.end, 0, b""))
    changed["xl/_rels/workbook.xml.rels"] = _apply(rels_data, rel_edits)
    changed["xl/workbook.xml"] = _patch_workbook(book_data, book, result_rid, rel_prefix, result)
    changed[styles_part] = styles.patched()

    if "vml" not in defaults and wanted:
        new_types.append(f'<Default Extension="vml" ContentType="{CT_VML}"/>')
    if "rels" not in defaults:
        new_types.append(f'<Default Extension="rels" ContentType="{CT_RELS}"/>')
    tp = _prefix(types.tag)
    text = "".join(new_types)
    if tp:
        text = text.replace("<Override ", f"<{tp}Override ").replace("<Default ", f"<{tp}Default ")
    types_edits.append((types.inner_end, types.inner_end, 0, text.encode()))
    changed["[Content_Types].xml"] = _apply(types_data, types_edits)

    if "docProps/app.xml" in pkg.members:
        app = pkg.read("docProps/app.xml")
        trimmed = _drop_app_titles(app)
        if trimmed is not app:
            changed["docProps/app.xml"] = trimmed
    # The mark that tells this copy from a unit's edited return: a digest of every other member as written.
    final = {name: (info.CRC, info.file_size) for name, info in pkg.members.items()}
    for name, member in [*changed.items(), *added]:
        if member is None:
            final.pop(name, None)
        else:
            final[name] = (zlib.crc32(member), len(member))
    try:
        changed["docProps/core.xml"] = mark_core(pkg.read("docProps/core.xml"), package_digest(final))
    except ValueError:
        raise _Fallback from None
    return _zip(pkg, changed, added)


def annotate_fast(source: Path, report: Report, out: Path, *, force: bool = False) -> Path | None:
    """annotate.annotate's copy, made by patching the zip; None, with nothing written, when the workbook has
    a structure this does not handle: then call annotate.annotate.

    Only the parts that change are parsed and rewritten (workbook, its relationships, content types,
    styles, the flagged sheets, a sheet that was tabSelected); every other member is copied compressed,
    byte for byte. The seed department workbook with its 41 findings takes ~16 ms instead of ~200 ms.

    Refuses what annotate refuses (the source as output, an existing output without `force`, a report
    with `error` set, a workbook that already has 审核结果) with the same XlsxKpiError, and writes through
    a temporary file beside `out`, so no half-written file is ever left behind.
    """
    source, out = Path(source), Path(out)
    check_output_paths(source, out, force)
    if report.error is not None:
        raise XlsxKpiError(f"该文件未能审核（{report.error}），不生成批注副本", file=str(source))
    try:
        payload = _build(source, report)
    except XlsxKpiError:
        raise
    except _Fallback:
        return None
    except Exception:  # noqa: BLE001 - a file that trips this module is still annotated, by openpyxl
        return None

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(payload)

    return write_atomically(out, write, failure="无法写入批注副本")
