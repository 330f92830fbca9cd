"""Read a returned workbook straight from its xlsx zip: refuse unusable files, identify it, locate every cell."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from xlsx_kpi.audit.values import Status, parse_number, parse_percent, to_decimal
from xlsx_kpi.errors import XlsxKpiError
from xlsx_kpi.formats.expr import ExcelError, Value
from xlsx_kpi.formats.identity import GUIDE_SHEET, META_SHEET, defined_name, fingerprint, identity_digest
from xlsx_kpi.formats.layout import build_layout
from xlsx_kpi.formats.plan import Approved, Identity, RowGroup, WorkbookLayout
from xlsx_kpi.formats.spec import Catalog, IndicatorsBlock, col_index, col_letters
from xlsx_kpi.ooxml.package import MSG_BAD_PART, MSG_CORRUPT, Package, Stop, Tags, new_parser, open_package, parse_part
from xlsx_kpi.ooxml.parts import check_kind, rels_of, resolve_target
from xlsx_kpi.ooxml.shared_strings import read_plain

__all__ = [
    "Filing",
    "RawCell",
    "read_workbook",
    "to_inputs",
]

# --- Limits (the zip and XML guards are in ooxml.package) -----------------------------------------------
MAX_SHARED_STRINGS = 1_000_000  # ~60 MB of str objects; a filled template has ~300
MAX_NAMES = 100_000  # K_ defined names kept (a template has one per keyed cell, ~330); more are ignored
MAX_SHEETS = 10_000  # sheet entries kept from workbook.xml
MAX_META_ROWS = 200  # rows of the identity sheet read; it has ~15
MAX_GROUP_ROWS = 500  # rows one indicator group may have (as generated or after the unit inserted rows)
STRAY_WINDOW = 30  # rows below the last indicator row of a sheet searched for indicators typed outside it
LAYOUT_CACHE_SIZE = 64  # laid-out workbooks kept per (catalog, kind, year); build_layout costs ~6 ms
# workbook.xml (~330 defined names) and styles.xml cost ~25% of a read and are the same in every workbook made
# from one template: their parsed form is kept per distinct compressed content (see _memo).
PART_MEMO_SIZE = 32

# --- The refusals: one Chinese sentence each, saying what to do -------------------------------------
MSG_TOO_MANY_STRINGS = f"文件异常（超过 {MAX_SHARED_STRINGS} 个文字单元格内容），已拒绝读取"
MSG_STRICT = "这是“严格 Open XML”格式，请在 Excel 中另存为“Excel 工作簿(.xlsx)”"
MSG_NOT_OURS = "不是由 xlsx-kpi 生成的模板（找不到模板标识），请使用下发的模板填写"
MSG_BAD_IDENTITY = "模板标识不完整（{field} 缺失或无法识别），请使用下发的模板重新填写"
MSG_UNKNOWN_KIND = "模板表种“{wid}”不在本工具的规格中，请使用下发的模板或升级 xlsx-kpi"
MSG_OLD_VERSION = "模板版本 {found} 已过期（当前为第 {current} 版），无法读取，请用新模板重新填写"
MSG_NEW_VERSION = "模板版本 {found} 比本工具的规格（第 {current} 版）新，请升级 xlsx-kpi 后再读取"
MSG_FINGERPRINT = "模板结构与当前规格不一致（版式指纹不符），请用新模板重新填写"
MSG_MISSING_SHEET = "缺少工作表“{sheet}”（可能被删除或改名），请用原模板重新填写"
MSG_DUPLICATE_CELL = (
    "文件已损坏（同一个单元格在文件中出现了两次，不同软件会读出不同的值），请在 Excel 或 WPS 中重新保存后报送"
)
MSG_ROW_ORDER = (
    "文件已损坏（工作表 {part} 中第 {row} 行排在第 {previous} 行之后，行的顺序错乱，Excel 也会报告它已损坏），"
    "请在 Excel 或 WPS 中修复并重新保存后报送"
)
MSG_IDENTITY_MISSING = (
    "模板的隐藏标识没有校验值（由旧版 xlsx-kpi 生成的模板，或校验值被删除），无法确认这份报送属于哪个单位和年度；"
    "请用新版下发的模板重新填写"
)
MSG_IDENTITY_TAMPERED = (
    "模板的隐藏标识（年度、单位、表种等）与其校验值不符，可能被改动过，无法确认这份报送属于哪个单位和年度；"
    "请使用下发的模板重新填写"
)
MSG_LABEL_MOVED = (
    "三级指标应为“{expected}”，此处却是“{found}”（指标行可能被排序、调换或改写），按位置读取会把分数记到别的指标下，"
    "无法可靠读取；请用原模板重新填写，不要对指标表排序或调换行"
)
MSG_CELL_DELETED = (
    "模板中的这个单元格已被删除（Excel 名称 {name} 显示 #REF!，可能删除了行或列），"
    "无法可靠读取；请用原模板重新填写，不要删除行或列"
)

# The first sheet of an annotated copy (annotate.RESULT_SHEET); a returned copy still has it.
REVIEW_SHEET = "审核结果"
RENAME_MIN_LABELS = 3  # fixed texts of a sheet compared to recognise it under another name
RENAME_MATCH = 0.6  # share of those texts (or of its cells' defined names) that must agree

STRICT_NS = "http://purl.oclc.org/ooxml/spreadsheetml/main"

# Built-in number formats that show a date or time: 14-22 and 45-47 everywhere, and in Chinese
# (and other East Asian) Excel also 27-36 and 50-58, e.g. 31 = yyyy"年"m"月"d"日".
DATE_FORMAT_IDS = frozenset([*range(14, 23), *range(27, 37), *range(45, 48), *range(50, 59)])
_FORMAT_NOISE = re.compile(r'"[^"]*"|\\.|_.|\*.|\[[^\]]*\]')
_ELAPSED = re.compile(r"\[(?:h+|m+|s+)\]", re.IGNORECASE)
_ESCAPED_CHAR = re.compile(r"_x([0-9A-Fa-f]{4})_")
_NAME_REF = re.compile(
    r"^=?\s*(?:'((?:[^']|'')+)'|([^'!]+))!\$?([A-Za-z]{1,3})\$?([0-9]{1,7})(?::\$?[A-Za-z]{1,3}\$?[0-9]{1,7})?\s*$"
)
_A1 = re.compile(r"^\$?([A-Z]{1,3})\$?([0-9]{1,7})$")
# Shared formulas: cell references to shift, and the text that must not be touched (strings, sheet names).
_FORMULA_TOKEN = re.compile(
    r'"(?:[^"]|"")*"|\'(?:[^\']|\'\')*\'|(?<![A-Za-z0-9_.$])(\$?)([A-Z]{1,3})(\$?)([0-9]{1,7})(?![A-Za-z0-9_(!])'
)
_WHOLE_LINES = re.compile(r"(?<![A-Za-z0-9_.])\$?(?:[A-Z]{1,3}:\$?[A-Z]{1,3}|[0-9]+:\$?[0-9]+)(?![A-Za-z0-9_(])")
MAX_ROW = 1_048_576
MAX_COL = 16_384  # XFD


@dataclass(frozen=True)
class RawCell:
    """What one cell of the file holds, before any interpretation.

    value: text (shared, inline or a formula's text result), a number as Decimal (to_decimal, so
    6.0299999999999994 reads 6.03), a bool, an ExcelError, or None for a blank cell and for a formula
    whose cached result is missing or empty text. formula: the formula text without "=", if any.
    is_date: a number shown with a date or time format, or an ISO date cell (t="d", kept as text).
    address: "附件1!F7", where the value was read.
    """

    value: str | Decimal | bool | ExcelError | None
    formula: str | None = None
    is_date: bool = False
    address: str = ""


@dataclass
class Filing:
    """A returned workbook as read: its identity, its layout and the raw content of every keyed cell.

    The layout is shared by every filing of the same unit and kind (building one costs ~7 ms), so treat
    it as read-only.
    """

    path: Path
    layout: WorkbookLayout
    meta: dict[str, str]
    cells: dict[str, RawCell]
    moved: dict[str, str] = field(default_factory=dict)
    # Text of the sheet titles that show the year ("2021年度…"), by address ("附件1!A2"): the visible
    # year, which rules compare with the hidden identity's year.
    titles: dict[str, str] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)  # template sheet name -> the name in this file
    added: list[str] = field(default_factory=list)  # sheets the unit added (not ours, not 审核结果)
    # Filled cells inside an indicator table that belong to no indicator row (e.g. a row inserted between
    # two groups): each is a whole row's first filled cell, with the row's text.
    stray: list[tuple[RawCell, str]] = field(default_factory=list)
    # Rows the unit inserted into (positive) or deleted from (negative) each indicator group, by group key.
    inserted: dict[str, int] = field(default_factory=dict)

    def sheet_name(self, template_name: str) -> str:
        """Where a sheet of the template is in this file (a renamed sheet under its new name)."""
        return self.renamed.get(template_name, template_name)

    def a1(self, key: str) -> tuple[str, str]:
        """(sheet, "F7") where `key` was read, after following moved defined names."""
        cell = self.cells.get(key)
        if cell is not None and cell.address:
            sheet, _, a1 = cell.address.rpartition("!")
            return sheet, a1
        ref = self.layout.ref(key)
        return ref.sheet, f"{col_letters(ref.col)}{ref.row + 1}"


# --- XML parts (opened and parsed by ooxml.package) ------------------------------------------------------


def _fail(message: str, path: Path, cell: str | None = None) -> XlsxKpiError:
    return XlsxKpiError(message, file=str(path), cell=cell)


def _root_namespace(tag: str, attrs: dict[str, str]) -> str:
    prefix = tag.rpartition(":")[0]
    return attrs.get(f"xmlns:{prefix}" if prefix else "xmlns", "")


def _int(text: str | None) -> int | None:
    """A small non-negative ASCII integer, or None ("²".isdigit() is True, and int() of 5,000 digits raises)."""
    return int(text) if text and len(text) <= 9 and text.isascii() and text.isdigit() else None


_ESCAPED_PAIR = re.compile(r"_x([dD][89abAB][0-9A-Fa-f]{2})__x([dD][c-fC-F][0-9A-Fa-f]{2})_")


def _unescape(text: str) -> str:
    """OOXML writes control characters as _xHHHH_ (Excel: a CR is _x000D_).

    A UTF-16 surrogate pair written as two escapes becomes its one character; a lone surrogate
    (_xD800_), which no text can hold, becomes U+FFFD: kept, it breaks every UTF-8 output later.
    """
    if "_x" not in text:
        return text
    text = _ESCAPED_PAIR.sub(_pair, text)
    return _ESCAPED_CHAR.sub(lambda m: _char(int(m.group(1), 16)), text)


def _pair(m: re.Match[str]) -> str:
    high, low = int(m.group(1), 16), int(m.group(2), 16)
    return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))


def _char(code: int) -> str:
    return "\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code)


T = TypeVar("T")
_PARTS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_PARTS_LOCK = threading.Lock()


def _memo(pkg: Package, what: str, parts: tuple[str, ...], read: Callable[[Package], T]) -> T:
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
class _Book:
    sheets: dict[str, str] = field(default_factory=dict)  # sheet name -> relationship id
    names: dict[str, str] = field(default_factory=dict)  # workbook-scoped defined names -> text
    targets: dict[str, str] = field(default_factory=dict)  # relationship id -> member name
    shared_strings: str | None = None
    styles: str | None = None


def _read_book(pkg: Package) -> _Book:
    """Sheet names and workbook-scoped defined names (workbook.xml), member names (its rels)."""
    book = _Book()
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
            raise _fail(MSG_STRICT, pkg.path)
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


def _read_shared_strings(pkg: Package, name: str | None) -> Sequence[str]:
    """Every shared string: rich-text runs concatenated, phonetic (rPh) runs left out.

    The part is inflated whole (within the package's budgets). In the plain form every program writes,
    shared_strings.read_plain splits it without a Python call per element and decodes a string when a
    cell uses it; anything else is parsed here, with end and text callbacks switched on only inside <t>
    and start callbacks off inside <rPr>: the same strings, the same refusals.
    """
    if name is None or name not in pkg.members:
        return []
    data = pkg.read(name)
    plain = read_plain(data, MAX_SHARED_STRINGS, _unescape)
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
            raise _fail(MSG_TOO_MANY_STRINGS, pkg.path)
        strings.append(_unescape(parts[0] if len(parts) == 1 else "".join(parts)))
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


def is_date_format(code: str) -> bool:
    """True for a number format that shows a date or time (yyyy-mm-dd, h:mm, [h]:mm, 上午/下午)."""
    if _ELAPSED.search(code):
        return True
    text = _FORMAT_NOISE.sub("", code).lower().replace("general", "")
    return any(ch in text for ch in "ymdhs") or "am/pm" in text or "上午/下午" in text


def _read_date_styles(pkg: Package, name: str | None) -> frozenset[int]:
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
                formats.append(_int(attrs.get("numFmtId")) or 0)
        elif kind == 1:
            fmt = _int(attrs.get("numFmtId"))
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


def _read_custom_properties(pkg: Package) -> dict[str, str]:
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


@dataclass(slots=True)
class _Found:
    """A cell as found in the sheet XML, before its value is typed."""

    t: str | None
    s: str | None
    v: str | None = None
    f: str | None = None  # formula text; "" when the <f> element had none (shared-formula child)
    f_type: str | None = None  # <f t="...">: shared, array, dataTable
    shared: str | None = None  # si of the shared formula this cell belongs to
    inline: list[str] | None = None  # text runs of an inline string


def _split_a1(a1: str) -> tuple[int, int] | None:
    m = _A1.match(a1)
    if not m:
        return None
    row, col = int(m.group(2)) - 1, col_index(m.group(1))
    if not (0 <= row < MAX_ROW and 0 <= col < MAX_COL):
        return None
    return row, col


Masters = dict[str, tuple[int, int, str]]


def _scan_sheet(
    pkg: Package, name: str, wanted: set[str], rows: set[int], sheet: str = ""
) -> tuple[dict[str, _Found], Masters]:
    """The cells at `wanted` addresses ("F7") of one worksheet, and its shared-formula masters.

    Only cells in `rows` (1-based) are looked at, so cells anywhere else cost a callback and no memory.
    The scan ends at the first element after <sheetData>: validations and conditional formats are
    never parsed. End and text callbacks are switched on only while a wanted <v>, <f> or <t> is open.
    A cell or row without an r attribute takes the position after the previous one. Rows out of
    ascending order, and a wanted cell written twice, are refused as damaged (Excel says so too):
    read as they come, they would hide data or give a value other programs do not show.
    """
    found: dict[str, _Found] = {}
    masters: Masters = {}
    last_row = max(rows, default=0)
    kinds = Tags(_KINDS)
    parser = new_parser()
    row = 0  # current 1-based row
    skip = True  # the current row has no wanted cell
    last_r: str | None = None  # r of the previous cell in the row; parsed only if a cell lacks r
    col = -1  # 0-based column of the previous cell, valid when col_known
    col_known = True
    cell: _Found | None = None  # the wanted cell being read
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
                    pos = _split_a1(last_r) if last_r else None
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
                    raise _fail(MSG_DUPLICATE_CELL, pkg.path, cell=f"{sheet}!{r}" if sheet else r)
                cell = found[r] = _Found(attrs.get("t"), attrs.get("s"))
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
                raise _fail(MSG_ROW_ORDER.format(part=sheet or name, row=row, previous=previous), pkg.path)
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
                anchor = _split_a1(ref.split(":")[0]) if ref else None
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


def shift_formula(formula: str, rows: int, cols: int) -> str | None:
    """A shared formula's text moved by (rows, cols) as Excel fills it; None when not simple enough."""
    if _WHOLE_LINES.search(_FORMULA_TOKEN.sub(lambda m: "" if m.group(2) is None else m.group(0), formula)):
        return None
    failed = False

    def move(m: re.Match[str]) -> str:
        nonlocal failed
        if m.group(2) is None:  # a string literal or a quoted sheet name
            return m.group(0)
        col_abs, letters, row_abs, digits = m.groups()
        col = col_index(letters) + (0 if col_abs else cols)
        row = int(digits) + (0 if row_abs else rows)
        if not (0 <= col < MAX_COL and 1 <= row <= MAX_ROW):
            failed = True
            return m.group(0)
        return f"{col_abs}{col_letters(col)}{row_abs}{row}"

    out = _FORMULA_TOKEN.sub(move, formula)
    return None if failed else out


def _raw_cell(
    found: _Found | None,
    address: str,
    pos: tuple[int, int],
    strings: Sequence[str],
    dates: frozenset[int],
    masters: Masters,
    path: Path,
) -> RawCell:
    if found is None:
        return RawCell(None, address=address)
    formula = found.f
    if formula:
        formula = formula.removeprefix("=")
    elif formula is not None:
        # A shared-formula child holds only the group id: rebuild its text from the group's first cell.
        master = masters.get(found.shared or "") if found.f_type == "shared" else None
        shifted = shift_formula(master[2], pos[0] - master[0], pos[1] - master[1]) if master else None
        formula = shifted or f"({found.f_type or 'formula'})"
    t, v = found.t, found.v
    value: str | Decimal | bool | ExcelError | None
    is_date = False
    if t is None or t == "n":
        if not v or not v.strip():
            value = None
        elif len(v) < 16 and v.isascii() and v.isdigit():
            value = Decimal(v)  # an integer as written is exact; skip the float round trip
        else:
            try:
                value = to_decimal(float(v))
            except ValueError:  # not a number, or NaN/inf: keep what the file says
                value = v
        if value is not None and found.s is not None and found.s != "0":
            is_date = _int(found.s) in dates
    elif t == "s":
        index = _int(v)
        if index is None or index >= len(strings):
            raise _fail(MSG_CORRUPT, path, cell=address)
        value = strings[index]
    elif t == "inlineStr":
        value = _unescape("".join(found.inline) if found.inline is not None else (v or ""))
    elif t == "str":
        # An empty text result reads as blank: XlsxWriter caches "" untyped and openpyxl keeps no
        # cache at all, so only this makes LibreOffice's t="str" agree with them.
        value = _unescape(v) if v else None
    elif t == "b":
        value = (v or "").strip().upper() in ("1", "TRUE")
    elif t == "e":
        value = ExcelError((v or "").strip() or "#N/A")
    elif t == "d":
        value, is_date = (v, True) if v else (None, False)
    else:  # an unknown type: keep the text
        value = v or None
    return RawCell(value, formula, is_date, address)


# --- Identity and layout ------------------------------------------------------------------------------

_META_ROWS = set(range(1, MAX_META_ROWS + 1))
_META_CELLS = {f"{c}{r}" for r in _META_ROWS for c in "AB"}


def _read_meta_sheet(pkg: Package, book: _Book, strings: Sequence[str]) -> dict[str, str]:
    """The identity rows (key in A, value in B) of the very hidden sheet the template writes."""
    member = book.targets.get(book.sheets.get(META_SHEET, ""))
    if member is None or member not in pkg.members:
        return {}
    found, _ = _scan_sheet(pkg, member, _META_CELLS, _META_ROWS, META_SHEET)
    meta: dict[str, str] = {}
    for r in range(1, MAX_META_ROWS + 1):
        if f"A{r}" in found:
            a, b = found[f"A{r}"], found.get(f"B{r}")
            key = _as_text(_raw_cell(a, f"{META_SHEET}!A{r}", (r - 1, 0), strings, frozenset(), {}, pkg.path))
            value = _as_text(_raw_cell(b, f"{META_SHEET}!B{r}", (r - 1, 1), strings, frozenset(), {}, pkg.path))
            if key and key.strip():
                meta[key.strip()] = (value or "").strip()
    return meta


@dataclass(frozen=True)
class _Plan:
    """What reading needs from a layout, computed once per layout."""

    layout: WorkbookLayout
    fingerprint: str
    names: dict[str, str]  # key -> its defined name (K_...)
    expected: dict[str, tuple[str, str]]  # key -> the name's text, quoted and unquoted
    cells: dict[str, tuple[str, int, int, str]]  # key -> (sheet, row, col, "F7")
    blanks: dict[str, RawCell]  # key -> RawCell(None) at its layout address (immutable, so shared)
    wanted: dict[str, tuple[set[str], set[int]]]  # sheet -> (addresses, 1-based rows), labels included
    label_cols: list[tuple[str, int]]  # (score key, column of its 三级指标 label)
    label_texts: list[str]  # the label the spec prints, in label_cols order
    labels: list[tuple[str, int, int, str]]  # where each label sits in the template: (sheet, row, col, "C7")
    titles: list[tuple[str, int, int, str]]  # sheet titles that show the year (never moved: above every table)


_CACHE: OrderedDict[tuple[int, str, Identity], tuple[Catalog, _Plan]] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def _label_cells(
    label_cols: list[tuple[str, int]], cells: dict[str, tuple[str, int, int, str]]
) -> list[tuple[str, int, int, str]]:
    """Where each 三级指标 label should be: its column, on the row its score is read from."""
    out: list[tuple[str, int, int, str]] = []
    for key, col in label_cols:
        sheet, row, _, _ = cells[key]
        out.append((sheet, row, col, f"{col_letters(col)}{row + 1}"))
    return out


def _fixed_labels(layout: WorkbookLayout) -> tuple[list[tuple[str, int]], list[str]]:
    """(score key, label column) and label text of every indicator row whose 三级指标 the spec prints."""
    cols: list[tuple[str, int]] = []
    texts: list[str] = []
    for sl in layout.sheets:
        # Only cells the template prints as a locked label: a 三级指标 the unit types is not checked.
        printed = {(c.row, c.col): c.text for c in sl.cells if c.role == "label"}
        for block in sl.spec.blocks:
            if not isinstance(block, IndicatorsBlock):
                continue
            for l1 in block.groups:
                level3 = block.columns_of(l1).get("level3")
                if level3 is None:
                    continue
                for l2 in l1.groups:
                    for ind in l2.indicators:
                        key = f"{block.id}.{ind.id}.score"
                        ref = layout.refs.get(key)
                        if ref is not None and ind.name.strip() and printed.get((ref.row, level3[0])) == ind.name:
                            cols.append((key, level3[0]))
                            texts.append(ind.name)
    return cols, texts


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _wanted(cells: Iterator[tuple[str, int, int, str]]) -> dict[str, tuple[set[str], set[int]]]:
    out: dict[str, tuple[set[str], set[int]]] = {}
    for sheet, row, _, a1 in cells:
        addresses, rows = out.setdefault(sheet, (set(), set()))
        addresses.add(a1)
        rows.add(row + 1)
    return out


def _plan(catalog: Catalog, wid: str, identity: Identity) -> _Plan:
    """build_layout and fingerprint take ~7 ms, so each unit's layout is built once and kept (read-only)."""
    key = (id(catalog), wid, identity)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None and hit[0] is catalog:
            _CACHE.move_to_end(key)
            return hit[1]
    layout = build_layout(catalog, catalog.workbook(wid), identity)
    cells: dict[str, tuple[str, int, int, str]] = {}
    expected: dict[str, tuple[str, str]] = {}
    for k, ref in layout.refs.items():
        a1 = f"{col_letters(ref.col)}{ref.row + 1}"
        cells[k] = (ref.sheet, ref.row, ref.col, a1)
        absolute = f"${col_letters(ref.col)}${ref.row + 1}"
        expected[k] = (f"'{ref.sheet.replace(chr(39), chr(39) * 2)}'!{absolute}", f"{ref.sheet}!{absolute}")
    label_cols, label_texts = _fixed_labels(layout)
    labels = _label_cells(label_cols, cells)
    titles = [
        (sl.name, c.row, c.col, c.a1)
        for sl in layout.sheets
        for c in sl.cells
        if c.style in ("title", "subtitle") and c.text and f"{identity.year}" in c.text
    ]
    plan = _Plan(
        layout=layout,
        fingerprint=fingerprint(layout),
        names={k: defined_name(k) for k in layout.refs},
        expected=expected,
        cells=cells,
        blanks={k: RawCell(None, address=f"{sheet}!{a1}") for k, (sheet, _, _, a1) in cells.items()},
        wanted=_wanted(itertools.chain(cells.values(), labels, titles)),
        label_cols=label_cols,
        label_texts=label_texts,
        labels=labels,
        titles=titles,
    )
    with _CACHE_LOCK:
        _CACHE[key] = (catalog, plan)  # holding the catalog keeps its id from being reused
        while len(_CACHE) > LAYOUT_CACHE_SIZE:
            _CACHE.popitem(last=False)
    return plan


def _identify(meta: dict[str, str], catalog: Catalog, path: Path) -> _Plan:
    wid = meta.get("workbook_id", "")
    if wid not in catalog.workbooks:
        raise _fail(MSG_UNKNOWN_KIND.format(wid=wid), path)
    current = catalog.workbooks[wid].version
    found = meta.get("workbook_version", "")
    if found != str(current):
        newer = _int(found)
        if newer is not None and newer > current:
            raise _fail(MSG_NEW_VERSION.format(found=found, current=current), path)
        raise _fail(MSG_OLD_VERSION.format(found=found or "（未知）", current=current), path)
    year = meta.get("year", "")
    year_number = _int(year)
    if year_number is None or len(year) != 4:
        raise _fail(MSG_BAD_IDENTITY.format(field="year"), path)
    # Positions, formulas and the fingerprint do not depend on the unit, so one layout per kind and year
    # serves every unit's file (the unit's identity is in `meta`); 1,000 units cost one build, not 1,000.
    rows, approved = _shape(meta, path)
    plan = _plan(catalog, wid, Identity(year=year_number, rows=rows, approved=approved))
    if meta.get("fingerprint") != plan.fingerprint:
        raise _fail(MSG_FINGERPRINT, path)
    if not meta.get("identity"):
        raise _fail(MSG_IDENTITY_MISSING, path)
    if meta.get("identity") != identity_digest(meta):
        raise _fail(MSG_IDENTITY_TAMPERED, path)
    return plan


def _shape(meta: dict[str, str], path: Path) -> tuple[tuple[tuple[str, int], ...], tuple[Approved, ...]]:
    """The row counts and approved targets the template was generated with (identity rows `rows`, `approved`)."""
    try:
        rows_data = json.loads(meta["rows"]) if meta.get("rows") else {}
        approved_data = json.loads(meta["approved"]) if meta.get("approved") else []
        rows = tuple(sorted((str(k), int(v)) for k, v in rows_data.items()))
        approved = tuple(Approved(str(g), str(n), str(t)) for g, n, t in approved_data)
    except (ValueError, TypeError, AttributeError):
        raise _fail(MSG_BAD_IDENTITY.format(field="rows/approved"), path) from None
    if any(not 1 <= n <= MAX_GROUP_ROWS for _, n in rows) or len(approved) > MAX_GROUP_ROWS * 20:
        raise _fail(MSG_BAD_IDENTITY.format(field="rows/approved"), path)
    return rows, approved


def _target(text: str, sheets: dict[str, str]) -> tuple[str, int, int, str] | None:
    """Parse a defined name's text ('附件1'!$F$7 or 附件1!$F$7); None if #REF!, a range elsewhere or unknown."""
    m = _NAME_REF.match(text)
    if not m:
        return None
    sheet = m.group(1).replace("''", "'") if m.group(1) is not None else m.group(2).strip()
    if sheet not in sheets:
        return None
    letters, row = m.group(3).upper(), int(m.group(4)) - 1
    col = col_index(letters)
    if not (0 <= row < MAX_ROW and 0 <= col < MAX_COL):
        return None
    return sheet, row, col, f"{letters}{row + 1}"


# --- Public API -----------------------------------------------------------------------------------------


def read_workbook(path: Path, catalog: Catalog) -> Filing:
    """Read a returned workbook: refuse what cannot be read, identify it, and read every layout cell.

    Raises XlsxKpiError (exit code 2) with one Chinese sentence naming the file. Never writes.
    """
    path = Path(path)
    with open_package(path) as pkg:
        return _read_package(pkg, path, catalog)


def _read_package(pkg: Package, path: Path, catalog: Catalog) -> Filing:
    check_kind(pkg)
    book = _memo(pkg, "book", (pkg.main, rels_of(pkg.main)), _read_book)
    strings = _read_shared_strings(pkg, book.shared_strings)
    meta = _read_meta_sheet(pkg, book, strings)
    if not meta.get("workbook_id"):
        meta = _read_custom_properties(pkg) or meta
    if not meta.get("workbook_id"):
        raise _fail(MSG_NOT_OURS, path)
    plan = _identify(meta, catalog, path)
    renamed = _renamed_sheets(pkg, book, plan, strings)
    for sl in plan.layout.sheets:
        if sl.name not in book.sheets and sl.name not in renamed:
            raise _fail(MSG_MISSING_SHEET.format(sheet=sl.name), path)
    ours = {sl.name for sl in plan.layout.sheets} | set(renamed.values()) | {META_SHEET, GUIDE_SHEET, REVIEW_SHEET}
    added = [name for name in book.sheets if name not in ours]

    # Indicator groups are found from their named first and last rows: rows the unit inserted inside a
    # group (or deleted from it) change the layout to one with that many rows, read at the file's rows.
    counts = {g.key: g.count for g in plan.layout.groups}
    plan, placed = _discover_rows(plan, catalog, book, renamed)
    inserted = {g.key: g.count - counts[g.key] for g in plan.layout.groups if g.count != counts.get(g.key, g.count)}
    # Each key is read where its defined name points (rows may have been inserted), else where the
    # layout put it: a missing or unparseable name falls back to the layout position; #REF! is refused.
    cells = plan.cells
    if renamed:
        cells = {k: (renamed.get(v[0], v[0]), *v[1:]) for k, v in plan.cells.items()}
    if placed:
        cells = {**cells, **placed}
    moved: dict[str, str] = {}
    names = book.names
    for key, dn in plan.names.items():
        if key in placed:
            continue
        text = names.get(dn)
        if text is None or text in plan.expected[key]:
            continue
        if "#REF!" in text.upper():
            # Excel, WPS and LibreOffice turn the name of a deleted cell into #REF! and move the names
            # below it: reading the template position would read a neighbouring row's data as this one.
            sheet, _, _, a1 = plan.cells[key]
            raise _fail(MSG_CELL_DELETED.format(name=dn), path, cell=f"{sheet}!{a1}")
        target = _target(text, book.sheets)
        if target is not None and target != cells[key]:
            if cells is plan.cells:
                cells = dict(plan.cells)
            cells[key] = target
            moved[key] = f"{target[0]}!{target[3]}"
    # The 三级指标 labels the spec prints, read on the row where each score is read: a sorted or swapped
    # table keeps its defined names, so only the labels show that a score now sits under another name.
    where_labels = plan.labels if cells is plan.cells else _label_cells(plan.label_cols, cells)
    titles_at = plan.titles if not renamed else [(renamed.get(t[0], t[0]), *t[1:]) for t in plan.titles]
    wanted = plan.wanted if cells is plan.cells else _wanted(itertools.chain(cells.values(), where_labels, titles_at))
    suspects = _stray_candidates(plan, cells, renamed)
    if suspects:
        wanted = {sheet: (set(a), set(r)) for sheet, (a, r) in wanted.items()}
        for sheet, by_row in suspects.items():
            addresses, rows = wanted.setdefault(sheet, (set(), set()))
            for row, cols in by_row.items():
                addresses.update(f"{col_letters(c)}{row + 1}" for c in cols)
                rows.add(row + 1)

    found: dict[str, dict[str, _Found]] = {}
    masters: dict[str, Masters] = {}
    for sheet, (addresses, rows) in wanted.items():
        member = book.targets.get(book.sheets[sheet])
        if member is None or member not in pkg.members:
            raise _fail(MSG_BAD_PART.format(part=member or f"工作表“{sheet}”"), path)
        found[sheet], masters[sheet] = _scan_sheet(pkg, member, addresses, rows, sheet)

    needs_styles = any(
        f.s is not None and f.s != "0" and (f.t is None or f.t == "n") for by in found.values() for f in by.values()
    )
    styles = book.styles
    dates: frozenset[int] = frozenset()
    if needs_styles and styles:
        dates = _memo(pkg, "dates", (styles,), lambda p: _read_date_styles(p, styles))

    for (sheet, row, _, a1), expected in zip(where_labels, plan.label_texts, strict=True):
        label = found[sheet].get(a1)
        text = _as_text(_raw_cell(label, f"{sheet}!{a1}", (row, 0), strings, frozenset(), {}, path)) or ""
        if _squash(text) != _squash(expected):
            shown = text.strip() or "（空）"
            raise _fail(MSG_LABEL_MOVED.format(expected=expected, found=shown), path, cell=f"{sheet}!{a1}")

    titles: dict[str, str] = {}
    for sheet, row, col, a1 in titles_at:
        found_title = found[sheet].get(a1)
        text = _as_text(_raw_cell(found_title, f"{sheet}!{a1}", (row, col), strings, frozenset(), {}, path))
        titles[f"{sheet}!{a1}"] = text or ""

    raw: dict[str, RawCell] = {}
    blanks = plan.blanks
    for key, (sheet, row, col, a1) in cells.items():
        cell = found[sheet].get(a1)
        if (cell is None or (cell.v is None and cell.f is None and cell.inline is None)) and key not in moved:
            same = not renamed and key not in placed
            raw[key] = blanks[key] if same else RawCell(None, address=f"{sheet}!{a1}")
        else:
            raw[key] = _raw_cell(cell, f"{sheet}!{a1}", (row, col), strings, dates, masters[sheet], path)
    stray: list[tuple[RawCell, str]] = []
    template_names = {v: k for k, v in renamed.items()}
    labels = {sheet: _label_texts(plan.layout, template_names.get(sheet, sheet)) for sheet in suspects}
    for sheet, by_row in sorted(suspects.items()):
        for row, cols in sorted(by_row.items()):
            filled: list[RawCell] = []
            for c in cols:
                a1 = f"{col_letters(c)}{row + 1}"
                cell = found[sheet].get(a1)
                if cell is None:
                    continue
                rc = _raw_cell(cell, f"{sheet}!{a1}", (row, c), strings, dates, masters[sheet], path)
                text = _as_text(rc)
                if text is not None and text.strip() not in labels[sheet]:
                    filled.append(rc)
            if filled:
                stray.append((filled[0], "｜".join(_as_text(f) or "" for f in filled)))
    return Filing(
        path=path,
        layout=plan.layout,
        meta=meta,
        cells=raw,
        moved=moved,
        titles=titles,
        renamed=renamed,
        added=added,
        stray=stray,
        inserted=inserted,
    )


def _discover_rows(
    plan: _Plan, catalog: Catalog, book: _Book, renamed: dict[str, str]
) -> tuple[_Plan, dict[str, tuple[str, int, int, str]]]:
    """The plan for the rows each indicator group really has, and where its rows' cells are in the file.

    A group's first and last rows are found by their defined names (Excel, WPS and LibreOffice move names
    when rows are inserted and extend the block between them); rows i = 1..n of the group are then the
    file's rows between them, in order, whatever their names say. Groups whose first or last row cannot
    be found keep the template's rows (a deleted name is refused later, as for any cell).
    """
    layout = plan.layout
    names = book.names

    def where(key: str) -> tuple[str, int, int, str] | None:
        text = names.get(plan.names[key])
        if text is None or text in plan.expected[key]:
            sheet, row, col, a1 = plan.cells[key]
            return renamed.get(sheet, sheet), row, col, a1
        return _target(text, book.sheets)

    tops: dict[str, int] = {}
    changed: dict[str, int] = {}
    for g in layout.groups:
        first, last = where(f"{g.base(1)}.name"), where(f"{g.base(g.count)}.name")
        sheet = renamed.get(g.sheet, g.sheet)
        if first is None or last is None or first[0] != sheet or last[0] != sheet or first[2] != last[2]:
            continue
        n = last[1] - first[1] + 1
        if not 1 <= n <= MAX_GROUP_ROWS:
            continue
        tops[g.key] = first[1]
        if n != g.count:
            changed[g.key] = n
    if not changed:
        return plan, {}
    ident = layout.identity
    rows = tuple(sorted({**dict(ident.rows), **changed}.items()))
    plan = _plan(catalog, layout.spec.id, dataclasses.replace(ident, rows=rows))
    placed: dict[str, tuple[str, int, int, str]] = {}
    for g in plan.layout.groups:
        if g.key in changed:
            for i in range(1, g.count + 1):
                row = tops[g.key] + i - 1
                for part in g.parts:
                    key = f"{g.base(i)}.{part}"
                    sheet, _, col, _ = plan.cells[key]
                    placed[key] = (renamed.get(sheet, sheet), row, col, f"{col_letters(col)}{row + 1}")
    return plan, placed


def _group_span(layout: WorkbookLayout, g: RowGroup) -> tuple[int, int]:
    """First and last layout rows of a group."""
    return layout.refs[f"{g.base(1)}.name"].row, layout.refs[f"{g.base(g.count)}.name"].row


def _stray_candidates(
    plan: _Plan, cells: dict[str, tuple[str, int, int, str]], renamed: dict[str, str]
) -> dict[str, dict[int, list[int]]]:
    """Rows of the file, per sheet, inside or just around an indicator table that belong to no indicator row.

    Around each sheet's groups: rows between two groups beyond the template's gap, rows between the header
    and the first group, and rows below the last group (up to the next named cell, else STRAY_WINDOW rows).
    The value is the columns of an indicator row's parts, to be searched for filled cells.
    """
    layout = plan.layout
    out: dict[str, dict[int, list[int]]] = {}
    by_sheet: dict[str, list[RowGroup]] = {}
    for g in layout.groups:
        by_sheet.setdefault(g.sheet, []).append(g)
    for sheet, groups in by_sheet.items():
        cols = sorted({cells[f"{g.base(1)}.{p}"][2] for g in groups for p in g.parts})
        spans = sorted((cells[f"{g.base(1)}.name"][1], cells[f"{g.base(g.count)}.name"][1], g) for g in groups)
        rows: set[int] = set()
        for (_, low, ga), (high, _, gb) in itertools.pairwise(spans):
            gap = _group_span(layout, gb)[0] - _group_span(layout, ga)[1] - 1
            if high - low - 1 > gap:
                rows.update(range(low + 1, high))
        first_layout, last_layout = _group_span(layout, spans[0][2])[0], _group_span(layout, spans[-1][2])[1]
        above, below = _anchors(layout, sheet, first_layout, last_layout)
        if above is not None and above in cells:
            header = first_layout - 1 + (cells[above][1] - layout.refs[above].row)
            rows.update(range(header + 1, spans[0][0]))
        bottom = spans[-1][1]
        if below is not None and below in cells:
            extra = (cells[below][1] - bottom) - (layout.refs[below].row - last_layout)
            rows.update(range(bottom + 1, bottom + 1 + max(0, extra)))
        else:
            rows.update(range(bottom + 1, bottom + 1 + STRAY_WINDOW))
        if rows:
            out[renamed.get(sheet, sheet)] = {r: cols for r in sorted(rows) if 0 <= r < MAX_ROW}
    return out


def _anchors(layout: WorkbookLayout, sheet: str, first: int, last: int) -> tuple[str | None, str | None]:
    """The named cells nearest above a sheet's indicator table header and below its last row (once per layout).

    Where the file has them tells how far the table's edges moved, so rows inserted at its edges are found.
    """
    memo = f"stray_anchors:{sheet}"
    if memo not in layout.memo:
        on_sheet = [(ref.row, k) for k, ref in layout.refs.items() if ref.sheet == sheet]
        above = max(((r, k) for r, k in on_sheet if r < first - 1), default=None)
        below = min(((r, k) for r, k in on_sheet if r > last), default=None)
        layout.memo[memo] = (above[1] if above else None, below[1] if below else None)
    anchors: tuple[str | None, str | None] = layout.memo[memo]
    return anchors


def _label_texts(layout: WorkbookLayout, sheet: str) -> frozenset[str]:
    """Texts the template prints on a sheet (headers, group names): never an indicator typed by the unit."""
    memo = f"label_texts:{sheet}"
    if memo not in layout.memo:
        texts: frozenset[str] = frozenset()
        for sl in layout.sheets:
            if sl.name == sheet:
                texts = frozenset((c.text or "").strip() for c in sl.cells if c.role == "label" and c.text)
        layout.memo[memo] = texts
    found: frozenset[str] = layout.memo[memo]
    return found


def _renamed_sheets(pkg: Package, book: _Book, plan: _Plan, strings: Sequence[str]) -> dict[str, str]:
    """Template sheets missing under their own name but found under another (LibreOffice and WPS drop the
    structure lock): template name -> name in the file.

    A sheet is recognised first by where its cells' defined names point (Excel, WPS and LibreOffice
    rename the sheet in every name), else by its fixed texts (titles, labels) at their template places.
    """
    missing = [sl for sl in plan.layout.sheets if sl.name not in book.sheets]
    if not missing:
        return {}
    template = {sl.name for sl in plan.layout.sheets}
    candidates = [n for n in book.sheets if n not in template and n not in (META_SHEET, GUIDE_SHEET, REVIEW_SHEET)]
    found: dict[str, str] = {}
    for sl in missing:
        free = [c for c in candidates if c not in found.values()]
        if not free:
            break
        votes: dict[str, int] = {}
        keys = [k for k, (sheet, *_) in plan.cells.items() if sheet == sl.name]
        for key in keys:
            target = _target(book.names.get(plan.names[key], ""), book.sheets)
            if target is not None and target[0] in free:
                votes[target[0]] = votes.get(target[0], 0) + 1
        best = max(votes, key=lambda n: votes[n], default=None)
        if best is not None and votes[best] >= RENAME_MATCH * len(keys):
            found[sl.name] = best
            continue
        by_text = _same_texts(pkg, book, sl.cells, free, strings)
        if by_text is not None:
            found[sl.name] = by_text
    return found


def _same_texts(
    pkg: Package, book: _Book, cells: list[Any], candidates: list[str], strings: Sequence[str]
) -> str | None:
    """The one candidate sheet showing the layout's fixed texts at their places, if any."""
    fixed = [c for c in cells if c.role in ("title", "label", "header") and c.text and c.text.strip()]
    texts = {c.a1: c.text.strip() for c in fixed}
    if len(texts) < RENAME_MIN_LABELS:
        return None
    rows = {int(a1.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")) for a1 in texts}
    matches: list[str] = []
    for name in candidates:
        member = book.targets.get(book.sheets[name])
        if member is None or member not in pkg.members:
            continue
        found, _ = _scan_sheet(pkg, member, set(texts), rows)
        same = 0
        for a1, want in texts.items():
            at = _split_a1(a1) or (0, 0)
            got = _as_text(_raw_cell(found.get(a1), f"{name}!{a1}", at, strings, frozenset(), {}, pkg.path))
            same += (got or "").strip() == want
        if same >= RENAME_MATCH * len(texts):
            matches.append(name)
    return matches[0] if len(matches) == 1 else None


# --- Typed inputs ---------------------------------------------------------------------------------------

_EXCEL_EPOCH = datetime(1899, 12, 30)


def _render_number(value: Decimal) -> str:
    """156001 rather than 156001.0 or 1.56001E+5."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def _render_date(serial: Decimal) -> str:
    """A date-formatted number as ISO text (Excel's fictitious 1900-02-29 is serial 60)."""
    days = float(serial)
    try:
        moment = (_EXCEL_EPOCH if days >= 61 else _EXCEL_EPOCH + timedelta(days=1)) + timedelta(days=days)
    except OverflowError:
        return _render_number(serial)
    moment = moment.replace(microsecond=0) + timedelta(seconds=round(moment.microsecond / 1e6))
    return moment.strftime("%Y-%m-%d") if moment.time() == datetime.min.time() else moment.isoformat(" ")


def _iso_serial(text: str) -> Decimal | None:
    """An ISO date cell (t="d") as the serial number the same date typed into Excel would have."""
    try:
        moment = datetime.fromisoformat(text.strip().removesuffix("Z"))
    except ValueError:
        return None
    delta = moment.replace(tzinfo=None) - _EXCEL_EPOCH
    days = delta.days if delta.days >= 61 else delta.days - 1
    return to_decimal(days + delta.seconds / 86400) if delta.seconds else Decimal(days)


def _as_text(raw: RawCell) -> str | None:
    value = raw.value
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, Decimal):
        return _render_date(value) if raw.is_date else _render_number(value)
    if isinstance(value, ExcelError):
        return value.code
    return value if value.strip() else None


def _typed(raw: RawCell, kind: str | None) -> Value:
    value = raw.value
    if isinstance(value, ExcelError):
        return value
    if kind not in ("score", "amount", "count", "percent"):
        return _as_text(raw)
    if raw.is_date and isinstance(value, str):
        serial = _iso_serial(value)
        return serial if serial is not None else value
    parsed = parse_percent(value)[0] if kind == "percent" else parse_number(value)
    if parsed.status is Status.OK:
        return parsed.value
    if parsed.status is Status.BLANK:
        return None
    if parsed.status is Status.ERROR and isinstance(value, str):
        return ExcelError(value.strip().upper() if value.strip().startswith("#") else value.strip())
    return value


def to_inputs(filing: Filing) -> dict[str, Value]:
    """Typed values of every input cell, for recalc.recalculate(); formula cells are not inputs.

    score/amount/count: the number (text such as "3.35分" is read as 3.35), the text itself when it is
    no number, TRUE/FALSE as bool, None when blank; a date keeps its serial number. percent: the
    primary reading of values.parse_percent. text/longtext/choice/tick: the text, numbers written
    without exponent or ".0" (156001), dates as ISO text, TRUE/FALSE, None when blank or only spaces.
    An error value (#DIV/0!) stays an ExcelError whatever the type.
    """
    out: dict[str, Value] = {}
    for key, cell in filing.layout.cells.items():
        if cell.role == "input":
            out[key] = _typed(filing.cells.get(key) or RawCell(None), cell.input_type)
    return out
