"""The parts of a returned workbook the reader needs: workbook.xml, strings, styles, properties, sheet cells."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from xlsx_kpi.audit.cells import (
    DATE_FORMAT_IDS,
    MAX_COL,
    FoundCell,
    Masters,
    is_date_format,
    small_int,
    split_a1,
    unescape,
)
from xlsx_kpi.audit.filing import (
    MAX_NAMES,
    MAX_SHARED_STRINGS,
    MAX_SHEETS,
    MSG_DUPLICATE_CELL,
    MSG_ROW_ORDER,
    MSG_STRICT,
    MSG_TOO_MANY_STRINGS,
    PART_MEMO_SIZE,
    fail,
)
from xlsx_kpi.formats.spec import col_letters
from xlsx_kpi.ooxml.package import Package, Stop, Tags, new_parser, parse_part
from xlsx_kpi.ooxml.parts import rels_of, resolve_target
from xlsx_kpi.ooxml.shared_strings import read_plain

STRICT_NS = "http://purl.oclc.org/ooxml/spreadsheetml/main"


# --- XML parts (opened and parsed by ooxml.package) ------------------------------------------------------


def _root_namespace(tag: str, attrs: dict[str, str]) -> str:
    prefix = tag.rpartition(":")[0]
    return attrs.get(f"xmlns:{prefix}" if prefix else "xmlns", "")


T = TypeVar("T")
_PARTS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_PARTS_LOCK = threading.Lock()


def read_once(pkg: Package, what: str, parts: tuple[str, ...], read: Callable[[Package], T]) -> T:
    """read(pkg), once per `what` and distinct content of `parts` (compressed bytes, size, CRC) in this process.

    A hit means the same bytes were parsed, within every budget, for an earlier file: the result is the same.
    Results are shared, so read-only. Failures are not kept: a refused part is refused again.
    """
    key: list[Any] = [what]
    for name in parts:
        info = pkg.members.get(name)
        raw = pkg.raw(name) if info is not None else b""
        if info is not None and raw is None:
            return read(pkg)
        key.append((name, raw, info.file_size, info.CRC, info.compress_type) if info is not None else (name,))
    with _PARTS_LOCK:
        hit = _PARTS.get(tuple(key), _PARTS)
        if hit is not _PARTS:
            _PARTS.move_to_end(tuple(key))
            return hit  # type: ignore[no-any-return]
    result = read(pkg)
    with _PARTS_LOCK:
        _PARTS[tuple(key)] = result
        while len(_PARTS) > PART_MEMO_SIZE:
            _PARTS.popitem(last=False)
    return result


@dataclass
class Book:
    sheets: dict[str, str] = field(default_factory=dict)  # sheet name -> relationship id
    names: dict[str, str] = field(default_factory=dict)  # workbook-scoped defined names -> text
    targets: dict[str, str] = field(default_factory=dict)  # relationship id -> member name
    shared_strings: str | None = None
    styles: str | None = None


def read_book(pkg: Package) -> Book:
    """Sheet names and workbook-scoped defined names (workbook.xml), member names (its rels)."""
    book = Book()
    tags = Tags(sheet=1, definedName=2)
    text: list[str] = []
    pending: str | None = None  # the defined name whose text is being collected

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal pending
        if pending is not None:
            # A defined name has no child elements: its text is all that came since it opened
            # (plus any indentation after it, hence strip; a reference never has outer spaces).
            book.names.setdefault(pending, (text[0] if len(text) == 1 else "".join(text)).strip())
            pending = None
        kind = tags[tag]
        if kind == 2:
            name = attrs.get("name", "")
            # Ours are workbook-scoped K_ names; sheet-scoped ones (print areas) and others are skipped.
            if name.startswith("K_") and "localSheetId" not in attrs and len(book.names) < MAX_NAMES:
                pending = name
                text.clear()
        elif kind == 1:
            if len(book.sheets) < MAX_SHEETS:
                rid = next((v for k, v in attrs.items() if k == "id" or k.endswith(":id")), "")
                book.sheets.setdefault(attrs.get("name", ""), rid)

    def root(tag: str, attrs: dict[str, str]) -> None:
        if _root_namespace(tag, attrs) == STRICT_NS:
            raise fail(MSG_STRICT, pkg.path)
        parser.StartElementHandler = start

    parser = new_parser()
    parser.StartElementHandler = root
    parser.CharacterDataHandler = text.append
    parse_part(pkg, pkg.main, parser)
    if pending is not None:
        book.names.setdefault(pending, "".join(text).strip())

    rels = rels_of(pkg.main)
    base = pkg.main.rpartition("/")[0]
    if rels in pkg.members:
        rel_tags = Tags(Relationship=1)

        def rel(tag: str, attrs: dict[str, str]) -> None:
            if rel_tags[tag] is None or attrs.get("TargetMode") == "External":
                return
            member = resolve_target(base, attrs.get("Target", ""))
            book.targets[attrs.get("Id", "")] = member
            kind = attrs.get("Type", "")
            if kind.endswith("/sharedStrings"):
                book.shared_strings = member
            elif kind.endswith("/styles"):
                book.styles = member

        parser = new_parser()
        parser.StartElementHandler = rel
        parse_part(pkg, rels, parser)
    return book


def read_shared_strings(pkg: Package, name: str | None) -> Sequence[str]:
    """Every shared string: rich-text runs concatenated, phonetic (rPh) runs left out.

    The part is inflated whole (within the package's budgets). In the plain form every program writes,
    shared_strings.read_plain splits it without a Python call per element and decodes a string when a
    cell uses it; anything else is parsed here, with end and text callbacks switched on only inside <t>
    and start callbacks off inside <rPr>: the same strings, the same refusals.
    """
    if name is None or name not in pkg.members:
        return []
    data = pkg.read(name)
    plain = read_plain(data, MAX_SHARED_STRINGS, unescape)
    if plain is not None:
        return plain
    strings: list[str] = []
    parts: list[str] = []
    tags = Tags(si=1, t=2, rPr=3, rPh=4)
    parser = new_parser()
    started = False
    phonetic = False

    def finish() -> None:
        if len(strings) >= MAX_SHARED_STRINGS:
            raise fail(MSG_TOO_MANY_STRINGS, pkg.path)
        strings.append(unescape(parts[0] if len(parts) == 1 else "".join(parts)))
        parts.clear()

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal started, phonetic
        kind = tags[tag]
        if kind == 2:
            if not phonetic:
                parser.CharacterDataHandler = parts.append
                parser.EndElementHandler = end_t
        elif kind == 1:
            if started:
                finish()
            started, phonetic = True, False
        elif kind == 3:
            # Run properties (LibreOffice writes a font per script) hold no text: skip their children.
            parser.StartElementHandler = None
            parser.EndElementHandler = end_rpr
        elif kind == 4:  # phonetic runs follow the text runs of an <si>
            phonetic = True

    def end_t(tag: str) -> None:
        if tags[tag] == 2:
            parser.CharacterDataHandler = None
            parser.EndElementHandler = None

    def end_rpr(tag: str) -> None:
        if tags[tag] == 3:
            parser.StartElementHandler = start
            parser.EndElementHandler = None

    parser.StartElementHandler = start
    parse_part(pkg, name, parser, iter((data,)))
    if started:
        finish()
    return strings


def read_date_styles(pkg: Package, name: str | None) -> frozenset[int]:
    """Indexes into cellXfs whose number format shows a date or time."""
    if name is None or name not in pkg.members:
        return frozenset()
    custom: dict[int, str] = {}
    formats: list[int] = []
    # Elements that may follow <cellXfs>: reaching one ends the scan.
    tags = Tags(numFmt=1, cellXfs=2, xf=3, cellStyles=4, dxfs=4, tableStyles=4, colors=4, extLst=4)
    in_xfs = False

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal in_xfs
        kind = tags[tag]
        if kind == 3:
            if in_xfs:
                formats.append(small_int(attrs.get("numFmtId")) or 0)
        elif kind == 1:
            fmt = small_int(attrs.get("numFmtId"))
            if fmt is not None:
                custom[fmt] = attrs.get("formatCode", "")
        elif kind == 2:
            in_xfs = True
        elif kind == 4 and in_xfs:
            raise Stop

    parser = new_parser()
    parser.StartElementHandler = start
    parse_part(pkg, name, parser)
    dates = set()
    for index, fmt in enumerate(formats):
        code = custom.get(fmt)
        if (code is not None and is_date_format(code)) or (code is None and fmt in DATE_FORMAT_IDS):
            dates.add(index)
    return frozenset(dates)


def read_custom_properties(pkg: Package) -> dict[str, str]:
    """docProps/custom.xml properties named xlsx_kpi_<key>; the template writes "-" for empty."""
    name = "docProps/custom.xml"
    if name not in pkg.members:
        return {}
    meta: dict[str, str] = {}
    text: list[str] = []
    tags = Tags(property=1)
    key = ""

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal key
        if tags[tag]:
            prop = attrs.get("name", "")
            key = prop.removeprefix("xlsx_kpi_") if prop.startswith("xlsx_kpi_") else ""
            text.clear()

    def end(tag: str) -> None:
        nonlocal key
        if tags[tag] and key:
            value = "".join(text).strip()
            meta[key] = "" if value == "-" else value
            key = ""

    parser = new_parser()
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text.append
    parse_part(pkg, name, parser)
    return meta


# --- Worksheets -----------------------------------------------------------------------------------------

_C, _ROW, _V, _F, _IS, _T, _RPH, _AFTER = range(8)
# Elements that follow <sheetData> in a worksheet: reaching one ends the scan.
_AFTER_SHEETDATA = (
    "sheetCalcPr sheetProtection protectedRanges scenarios autoFilter sortState dataConsolidate "
    "customSheetViews mergeCells phoneticPr conditionalFormatting dataValidations hyperlinks printOptions "
    "pageMargins pageSetup headerFooter rowBreaks colBreaks customProperties cellWatches ignoredErrors "
    "smartTags drawing legacyDrawing legacyDrawingHF picture oleObjects controls webPublishItems tableParts"
).split()
_KINDS = Tags(
    {"c": _C, "row": _ROW, "v": _V, "f": _F, "is": _IS, "t": _T, "rPh": _RPH} | dict.fromkeys(_AFTER_SHEETDATA, _AFTER)
)


def scan_sheet(
    pkg: Package, name: str, wanted: set[str], rows: set[int], sheet: str = ""
) -> tuple[dict[str, FoundCell], Masters]:
    """The cells at `wanted` addresses ("F7") of one worksheet, and its shared-formula masters.

    Only cells in `rows` (1-based) are looked at, so cells anywhere else cost a callback and no memory.
    The scan ends at the first element after <sheetData>: validations and conditional formats are
    never parsed. End and text callbacks are switched on only while a wanted <v>, <f> or <t> is open.
    A cell or row without an r attribute takes the position after the previous one. Rows out of
    ascending order, and a wanted cell written twice, are refused as damaged (Excel says so too):
    read as they come, they would hide data or give a value other programs do not show.
    """
    found: dict[str, FoundCell] = {}
    masters: Masters = {}
    last_row = max(rows, default=0)
    kinds = Tags(_KINDS)
    parser = new_parser()
    row = 0  # current 1-based row
    skip = True  # the current row has no wanted cell
    last_r: str | None = None  # r of the previous cell in the row; parsed only if a cell lacks r
    col = -1  # 0-based column of the previous cell, valid when col_known
    col_known = True
    cell: FoundCell | None = None  # the wanted cell being read
    phonetic = False
    buf: list[str] = []
    open_kind = -1  # the element whose text is being captured
    master: tuple[str, int, int] | None = None
    beyond = False  # a row below every wanted row was seen: the next row decides (stop, or out of order)

    def capture(kind: int) -> None:
        nonlocal buf, open_kind
        buf, open_kind = [], kind
        parser.CharacterDataHandler = buf.append
        parser.EndElementHandler = end

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal row, skip, last_r, col, col_known, cell, phonetic, master, buf, open_kind, beyond
        kind = kinds[tag]
        if kind is None:
            return
        if kind == _C:
            cell = None
            r = attrs.get("r")
            if r is None:
                if not col_known:
                    pos = split_a1(last_r) if last_r else None
                    col = pos[1] if pos else -1
                col += 1
                col_known = True
                if skip or col >= MAX_COL:
                    return
                r = col_letters(col) + str(row)
            else:
                last_r = r
                col_known = False
                if skip:
                    return
            if r in wanted:
                if r in found:
                    raise fail(MSG_DUPLICATE_CELL, pkg.path, cell=f"{sheet}!{r}" if sheet else r)
                cell = found[r] = FoundCell(attrs.get("t"), attrs.get("s"))
                phonetic = False
        elif kind == _V:
            if cell is not None:  # capture(_V), inlined: this is the hot path
                buf, open_kind = [], _V
                parser.CharacterDataHandler = buf.append
                parser.EndElementHandler = end
        elif kind == _ROW:
            cell = None
            r = attrs.get("r")
            previous = row
            row = int(r) if r and len(r) < 8 and r.isascii() and r.isdigit() else row + 1
            if row <= previous:
                raise fail(MSG_ROW_ORDER.format(part=sheet or name, row=row, previous=previous), pkg.path)
            if beyond:
                # Rows come in ascending order (checked just above): nothing wanted is left, however
                # many rows a hostile file declares below.
                raise Stop
            beyond = row > last_row
            skip = beyond or row not in rows
            last_r = None
            col = -1
            col_known = True
        elif kind == _F:
            f_type = attrs.get("t")
            if f_type == "shared":
                ref = attrs.get("ref")
                anchor = split_a1(ref.split(":")[0]) if ref else None
                if anchor is not None:
                    master = (attrs.get("si", ""), anchor[0], anchor[1])
                if cell is not None:
                    cell.shared = attrs.get("si", "")
            if cell is not None:
                cell.f_type = f_type
            if cell is not None or master is not None:
                capture(_F)
        elif kind == _IS:
            if cell is not None:
                cell.inline = []
        elif kind == _T:
            if cell is not None and cell.inline is not None and not phonetic:
                capture(_T)
        elif kind == _RPH:
            phonetic = True  # phonetic runs follow the text runs
        elif kind == _AFTER:
            raise Stop

    def end(tag: str) -> None:
        nonlocal master
        if kinds[tag] != open_kind:
            return
        parser.CharacterDataHandler = None
        parser.EndElementHandler = None
        text = buf[0] if len(buf) == 1 else "".join(buf)
        if open_kind == _V:
            if cell is not None:
                cell.v = text
        elif open_kind == _F:
            if master is not None:
                if text:
                    masters[master[0]] = (master[1], master[2], text)
                master = None
            if cell is not None:
                cell.f = text
        elif cell is not None and cell.inline is not None:
            cell.inline.append(text)

    parser.StartElementHandler = start
    parse_part(pkg, name, parser)
    return found, masters
