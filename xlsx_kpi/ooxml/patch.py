"""Patching parts of an existing package: a byte-level tag scanner, edits spliced into the bytes, the zip writer."""

from __future__ import annotations

import io
import re
import struct
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.parsers import expat

from defusedxml.common import DefusedXmlException

from xlsx_kpi.errors import XlsxKpiError
from xlsx_kpi.ooxml.package import Package, new_parser, open_package

__all__ = [
    "Element",
    "Row",
    "Unpatchable",
    "apply_edits",
    "free_name",
    "open_patchable",
    "parse_sheet",
    "parse_tags",
    "read_part",
    "scan_rows",
    "set_attrs",
    "write_zip",
]

MAX_PART_BYTES = 64 * 1024 * 1024  # one XML part inflated here
DEFLATE_LEVEL = 1  # 2 ms less per copy than level 6, for a copy ~15% larger


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


START_TAG = re.compile(rb"<[^\s/>]+(?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*\s*(/?)>")
_TAG_NAME = re.compile(rb"<[^\s/>]+")
_ATTR = re.compile(rb"\s+([^\s=/>]+)\s*=\s*(\"[^\"]*\"|'[^']*')")
_END_TAG = re.compile(rb"</[^\s>]+\s*>")
_ENCODING = re.compile(rb"^<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
# Characters XML 1.0 cannot carry at all (review.clean removes the C0 controls already).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class Unpatchable(Exception):
    """The file has a structure the patcher does not handle; the caller writes its copy another way."""


# -- the package, opened for patching ------------------------------------------------------------------
@contextmanager
def open_patchable(path: Path) -> Iterator[Package]:
    """The package at `path`, with package.open_package's guards, that write_zip can copy member by member.

    Unpatchable for whatever open_package refuses, and for what write_zip cannot copy as it is: zip64,
    encrypted members, a compression Excel never writes. No budget over all members: read_part bounds each.
    """
    try:
        with open_package(path, budget=None) as pkg:
            for info in pkg.infos:
                if max(info.file_size, info.compress_size, info.header_offset) >= 0xFFFFFFFF:
                    raise Unpatchable  # zip64
                if info.flag_bits & ~0x80E or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise Unpatchable  # encrypted, or a compression Excel never writes
            yield pkg
    except XlsxKpiError:
        raise Unpatchable from None


def read_part(pkg: Package, name: str) -> bytes:
    """A member by its exact item name, inflated whole (at most MAX_PART_BYTES, CRC checked)."""
    info = pkg.names.get(name)
    if info is None or info.file_size > MAX_PART_BYTES:
        raise Unpatchable
    try:
        return pkg.read(name)
    except XlsxKpiError:
        raise Unpatchable from None


def free_name(pkg: Package, pattern: str, taken: set[str]) -> str:
    """The first pattern.format(n) (n = 1, 2, ...) that names no member (part names ignore case)."""
    n = 1
    while (name := pattern.format(n)) in pkg.members or name.lower() in taken:
        n += 1
    taken.add(name.lower())
    return name


# -- XML text ----------------------------------------------------------------------------------------


def xml_text(text: str) -> str:
    text = _NOT_XML.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def xml_attr(text: str) -> str:
    return xml_text(text).replace('"', "&quot;").replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;")


def local_name(tag: str) -> str:
    return tag.rpartition(":")[2]


def prefix_of(tag: str) -> str:
    """The "x:" of "x:worksheet", or ""."""
    head, sep, _ = tag.rpartition(":")
    return head + sep


# -- the tag scanner -----------------------------------------------------------------------------------
@dataclass(slots=True, eq=False)
class Element:
    """An element of a parsed part, by byte offsets: data[start:head_end] is its start tag."""

    tag: str
    attrs: dict[str, str]
    start: int
    head_end: int
    empty: bool
    inner_end: int = -1  # offset of its end tag (head_end for an empty element)
    end: int = -1  # offset after the element
    children: list[Element] = field(default_factory=list)  # those kept (see parse_tags)
    count: int = 0  # child elements, kept or not

    @property
    def local(self) -> str:
        return local_name(self.tag)

    def kids(self, local: str) -> list[Element]:
        return [c for c in self.children if c.local == local]

    def kid(self, local: str) -> Element | None:
        return next((c for c in self.children if c.local == local), None)


@dataclass(slots=True, eq=False)
class Row:
    """A <row> of <sheetData> and its cells as (r, offset of "<c")."""

    el: Element
    cells: list[tuple[str | None, int]] | None = field(default_factory=list)  # None: see row_cells
    tail: int = -1  # offset of a child that is not a cell (a row's extLst): new cells go before it
    prefix: bytes = b""


def _check_encoding(data: bytes) -> None:
    """Offsets are bytes and inserted text is UTF-8: anything but a UTF-8 part is Unpatchable."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise Unpatchable
    m = _ENCODING.match(data[3:] if data.startswith(b"\xef\xbb\xbf") else data)
    if m and m.group(1).lower() not in (b"utf-8", b"utf8"):
        raise Unpatchable


def parse_tags(
    data: bytes,
    keep: dict[str, str | None],
    sheet_rows: list[Row] | None = None,
    skip: list[tuple[int, int]] | None = None,
) -> Element:
    """Parse a part with the guarded expat parser, keeping the root, its children, and the grandchildren
    under the children named in `keep` (only those with the attribute it names, when it names one).

    With `sheet_rows`, the <row> elements of <sheetData> are collected there, each with its cells'
    (r, offset). Each `skip` range is the content of a top-level element (from the end of its start tag
    to its end tag): expat still checks it, but with no callbacks at all (see parse_sheet).
    """
    _check_encoding(data)
    parser = new_parser()
    stack: list[Element | None] = []  # the open elements down to depth 3; None: one not kept
    level = 0
    in_data = False  # inside <sheetData>, collecting rows
    row: Row | None = None
    cell_tag = "c"
    resume = -1  # where callbacks resume after a skipped element content
    skipped = ""  # that element's name

    def element(tag: str, attrs: dict[str, str]) -> Element:
        pos = parser.CurrentByteIndex
        m = START_TAG.match(data, pos)
        if m is None:
            raise Unpatchable
        return Element(tag, attrs, pos, m.end(), bool(m.group(1)))

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal level, in_data, row, cell_tag
        if resume >= 0:
            raise Unpatchable  # the skipped stretch did not end at </sheetData>
        level += 1
        if in_data:
            if level == 3:
                row = Row(element(tag, attrs))
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
            cell_tag = prefix_of(tag) + "c"
            return
        parent = stack[-1]
        assert parent is not None
        parent.count += 1
        el: Element | None = None
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
            raise Unpatchable
        if resume >= 0:
            if level != 2 or parser.CurrentByteIndex != resume or local_name(tag) != skipped:
                raise Unpatchable  # the skipped stretch was not exactly that element's content
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

    def close(el: Element, pos: int) -> None:
        if el.empty:
            el.inner_end = el.end = el.head_end
            return
        m = _END_TAG.match(data, pos)
        if m is None:
            raise Unpatchable
        el.inner_end, el.end = pos, m.end()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        pos = 0
        for a, b in skip or ():
            parser.Parse(data[pos:a], False)
            last = stack[-1] if stack else None
            if resume >= 0 or level != 2 or last is None or last.head_end != a:
                raise Unpatchable
            skipped = last.local
            parser.StartElementHandler = parser.EndElementHandler = None
            parser.Parse(data[a:b], False)
            parser.StartElementHandler, parser.EndElementHandler = start, end
            resume, pos = b, b
        parser.Parse(data[pos:], True)
    except (expat.ExpatError, DefusedXmlException):
        raise Unpatchable from None
    if not stack or stack[0] is None or resume >= 0 or level != 0:
        raise Unpatchable
    return stack[0]


_ROOT = re.compile(rb"<([^\s/>!?]+)")


def parse_sheet(data: bytes, keep: dict[str, str | None], with_rows: bool) -> tuple[Element, list[Row]]:
    """A worksheet parsed for patching: its top-level elements and, with `with_rows`, every row (with its
    cells' offsets, or with `cells` None: found later by row_cells when the row is patched).

    Where the part has no comment, CDATA or processing instruction, and no extension inside <sheetData>
    (Excel, LibreOffice, WPS, openpyxl and XlsxWriter write none), every "<" in it starts a tag. Then
    expat checks <sheetData> and <dataValidations> without callbacks, and anchored regexes find the
    rows; otherwise every element goes through the callbacks.
    """
    rows: list[Row] = []
    found = _skippable(data) if b"<!" not in data and data.count(b"<?") <= 1 else None
    if found is None:
        return parse_tags(data, keep, rows if with_rows else None), rows
    p, skips, (a, b) = found
    root = parse_tags(data, keep, None, skips)
    return root, scan_rows(data, a, b, p) if with_rows else rows


def scan_rows(
    data: bytes, a: int, b: int, p: bytes, attrs: Callable[[bytes], dict[str, str]] | None = None
) -> list[Row]:
    """The <row> elements of data[a:b] (a <sheetData> content with no comment, CDATA or processing instruction),
    found by their tags; `attrs` reads a row's start tag (default tag_attrs; a caller may pass a cached one)."""
    read = attrs or tag_attrs
    rows: list[Row] = []
    row_end = re.compile(b"</" + re.escape(p) + rb"row\s*>")
    for m in re.compile(b"<" + re.escape(p) + rb"row[\s/>]").finditer(data, a, b):
        head = START_TAG.match(data, m.start())
        if head is None:
            raise Unpatchable
        start = data[m.start() : head.end()]
        el = Element(p.decode() + "row", read(start), m.start(), head.end(), bool(head.group(1)))
        if el.empty:
            el.inner_end = el.end = el.head_end
        else:
            close = row_end.search(data, el.head_end, b)
            if close is None:
                raise Unpatchable
            el.inner_end, el.end = close.start(), close.end()
        rows.append(Row(el, None, -1, p))
    return rows


def row_cells(data: bytes, row: Row) -> list[tuple[str | None, int]]:
    """The cells of a row found by parse_sheet's regex scan: (r, offset of "<c")."""
    if row.cells is None:
        row.cells = []
        cell = re.compile(b"<" + re.escape(row.prefix) + rb"c[\s/>]")
        for c in cell.finditer(data, row.el.head_end, row.el.inner_end):
            head = START_TAG.match(data, c.start())
            if head is None:
                raise Unpatchable
            row.cells.append((attr_value(data[c.start() : head.end()], b"r"), c.start()))
    return row.cells


def _skippable(data: bytes) -> tuple[bytes, list[tuple[int, int]], tuple[int, int]] | None:
    """(prefix, the contents expat may check without callbacks, <sheetData>'s content), or None."""
    root = _ROOT.search(data)
    if root is None:
        return None
    p = prefix_of(root.group(1).decode("utf-8", "replace")).encode()
    skips = []
    for name in (b"sheetData", b"dataValidations"):
        start = re.compile(b"<" + re.escape(p) + name + rb"[\s/>]").search(data)
        if start is None:
            if name == b"sheetData":
                return None
            continue
        head = START_TAG.match(data, start.start())
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


def set_attrs(head: bytes, changes: dict[str, str | None]) -> bytes:
    """A start tag with attributes replaced (None removes one); the others are kept as written."""
    m = _TAG_NAME.match(head)
    if m is None:
        raise Unpatchable
    parts = [head[: m.end()]]
    pos = m.end()
    seen = set()
    while (a := _ATTR.match(head, pos)) is not None:
        key = a.group(1).decode()
        if key in changes:
            seen.add(key)
            value = changes[key]
            if value is not None:
                parts.append(f' {key}="{xml_attr(value)}"'.encode())
        else:
            parts.append(a.group(0))
        pos = a.end()
    tail = head[pos:]
    extra = "".join(f' {k}="{xml_attr(v)}"' for k, v in changes.items() if k not in seen and v is not None)
    return b"".join(parts) + extra.encode() + tail.lstrip()


def apply_edits(data: bytes, edits: list[tuple[int, int, Any, bytes]]) -> bytes:
    """Splice (start, end, order, replacement) edits; insertions at one offset go in `order`."""
    edits.sort(key=lambda e: (e[0], e[1] != e[0], e[2]))
    out: list[bytes] = []
    pos = 0
    for start, end, _, text in edits:
        if start < pos:
            raise Unpatchable  # overlapping edits: never expected, but never write a broken part
        out.append(data[pos:start])
        out.append(text)
        pos = end
    out.append(data[pos:])
    return b"".join(out)


def check_namespace(root: Element, expected: str) -> None:
    declared = root.attrs.get(f"xmlns:{prefix_of(root.tag)[:-1]}" if prefix_of(root.tag) else "xmlns")
    if declared != expected:
        raise Unpatchable  # Strict OOXML, or not the part we expected


def open_tag(head: bytes) -> bytes:
    """<x .../> as <x ...>."""
    return head[:-2].rstrip() + b">" if head.endswith(b"/>") else head


def int_attr(text: str | None) -> int:
    if text is None or not (text.isascii() and text.strip().isdigit()):
        raise Unpatchable
    return int(text)


def attr_value(head: bytes, name: bytes) -> str | None:
    """One attribute of a start tag already checked by expat (values still escaped; we read numbers)."""
    for a in _ATTR.finditer(head):
        if a.group(1) == name:
            return a.group(2)[1:-1].decode()
    return None


def tag_attrs(head: bytes) -> dict[str, str]:
    """Attributes of a start tag already checked by expat (values still escaped; we only read numbers)."""
    return {a.group(1).decode(): a.group(2)[1:-1].decode() for a in _ATTR.finditer(head)}


# -- the zip writer ------------------------------------------------------------------------------------
_LOCAL = struct.Struct("<4s5H3L2H")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_END = struct.Struct("<4s4H2LH")


def _dos_time(stamp: tuple[int, ...]) -> tuple[int, int]:
    year, month, day, hour, minute, second = stamp[:6]
    if year < 1980:
        year, month, day, hour, minute, second = 1980, 1, 1, 0, 0, 0
    return (hour << 11) | (minute << 5) | (second // 2), ((year - 1980) << 9) | (month << 5) | day


def write_zip(pkg: Package, changed: dict[str, bytes | None], added: list[tuple[str, bytes]]) -> bytes:
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
        try:
            raw = pkg.compressed(info)
        except XlsxKpiError:
            raise Unpatchable from None
        entry(encoded, flags, info.compress_type, when, info.CRC, info.file_size, raw)
    for name, data in added:
        deflated(name, data)
    start = out.tell()
    for record in central:
        out.write(record)
    size = out.tell() - start
    if len(central) > 0xFFFF or out.tell() >= 0xFFFFFFFF:
        raise Unpatchable
    out.write(_END.pack(b"PK\x05\x06", 0, 0, len(central), len(central), size, start, 0))
    return out.getvalue()
