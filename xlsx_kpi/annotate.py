"""Write the reviewer's annotated copy of a returned workbook (openpyxl): fills, 批注 and a 审核结果 sheet."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import re
import zipfile
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import defusedxml.ElementTree as defused_tree
import openpyxl
from defusedxml.common import DefusedXmlException
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell, MergedCell
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils.cell import coordinate_from_string, get_column_letter
from openpyxl.utils.exceptions import CellCoordinatesException, InvalidFileException
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.cell_range import MultiCellRange
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.worksheet import Worksheet

from xlsx_kpi import __version__
from xlsx_kpi.errors import OutputExistsError, XlsxKpiError, write_atomically
from xlsx_kpi.findings import Finding, Severity
from xlsx_kpi.layout import display_width, text_lines
from xlsx_kpi.reader import REVIEW_SHEET, check_loadable, read_core
from xlsx_kpi.report import REPLACED_LABEL, Report, replaced_text
from xlsx_kpi.safe_text import looks_like_formula, printable

RESULT_SHEET = REVIEW_SHEET
SUFFIX = "_审核"
AUTHOR = "xlsx-kpi"
FONT = "宋体"

# Fills (RGB) for flagged cells and the 级别 column. The error red is darker than Excel's "Bad" FFC7CE
# so it stands out on the template's pale-green input cells; an explained 警告 is a paler yellow.
ERROR_FILL = "FF9C9C"
WARNING_FILL = "FFD966"
EXPLAINED_FILL = "FFF2CC"
INFO_FILL = "BDD7EE"
PASS_FILL = "C6EFCE"
HEADER_FILL = "D9D9D9"
LINK_COLOR = "0563C1"

# Separates the unit's own 批注 from ours in the same comment box.
COMMENT_SEPARATOR = "—————— 审核意见 ——————"
# docProps/core.xml contentStatus of a copy we wrote: this text, a space and package_digest of its parts.
# Any save by Excel, WPS or LibreOffice rewrites the parts, so the digest matches only while the copy is
# exactly as we wrote it; a copy the unit edited and returned is a submission like any other.
REVIEW_MARK = "xlsx-kpi 审核副本"
# The fills we give findings, as a review mark is recognised again in a returned copy.
REVIEW_FILLS = frozenset((ERROR_FILL, WARNING_FILL, EXPLAINED_FILL, INFO_FILL))
_OUR_COMMENT = re.compile(r"^【(错误|警告|提示)】")
# "x_审核", "x_审核2", and the copies a mail program or browser makes of them: "x_审核 (1)", "x_审核（修改）".
_ROUND = re.compile(r"^(?P<base>.*?)_审核(?P<n>[0-9]*)(?:\s*[（(][^（）()]{0,20}[）)])?$")
# Excel's limit for the text of a cell (and what it will show of a comment).
MAX_TEXT = 32767

HEADERS = ("序号", "级别", "规则", "工作表", "单元格", "指标", "填报值", "应为", "说明")
# (minimum, maximum) width of each result column, in Excel character units.
WIDTHS = ((5, 6), (10, 10), (14, 36), (8, 12), (9, 16), (10, 30), (9, 20), (9, 20), (24, 56))

_THIN = Side(style="thin", color="808080")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_WRAP = Alignment(vertical="center", wrap_text=True)
_LEFT = Alignment(horizontal="left", vertical="center", wrap_text=True)
_CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
_BODY_FONT = Font(name=FONT, size=10, charset=134)
_BOLD_FONT = Font(name=FONT, size=10, bold=True, charset=134)
_NOTE_FONT = Font(name=FONT, size=9, color="595959", charset=134)
_TITLE_FONT = Font(name=FONT, size=14, bold=True, charset=134)
_LINK_FONT = Font(name=FONT, size=10, color=LINK_COLOR, underline="single", charset=134)


def review_round(source: Path) -> tuple[str, int]:
    """(the unit's file name stem, how many review rounds the name shows): "x" 0, "x_审核" 1, "x_审核2" 2."""
    stem = Path(source).stem
    m = _ROUND.match(stem)
    if m is None or not m.group("base"):
        return stem, 0
    n = m.group("n")
    return m.group("base"), int(n) if n and len(n) < 6 else 1


def annotated_name(source: Path) -> str:
    """The reviewer's copy of `source`: "x.xlsx" -> "x_审核.xlsx"; a returned copy "x_审核.xlsx" -> "x_审核2.xlsx"."""
    base, n = review_round(source)
    return f"{base}{SUFFIX}{n + 1 if n else ''}.xlsx"


_CORE_NS = {
    "cp": "http://schemas.openxmlformats.org/package/2006/metadata/core-properties",
    "dc": "http://purl.org/dc/elements/1.1/",
    "dcterms": "http://purl.org/dc/terms/",
    "dcmitype": "http://purl.org/dc/dcmitype/",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
CORE_PART = "docProps/core.xml"


def package_digest(members: Mapping[str, tuple[int, int]]) -> str:
    """A digest of a package's members (name -> (CRC-32, size)) other than docProps/core.xml.

    Any program that saves the workbook again rewrites its parts, so the digest no longer matches: that,
    not the save time (LibreOffice's converter keeps it), tells our untouched copy from a returned one.
    """
    h = hashlib.sha256()
    for name in sorted(members):
        if name != CORE_PART and not name.endswith("/"):
            crc, size = members[name]
            h.update(f"{name}\0{crc:08x}\0{size}\n".encode())
    return h.hexdigest()[:32]


def mark_core(data: bytes, digest: str) -> bytes:
    """docProps/core.xml as saved now by us, its contentStatus carrying REVIEW_MARK and the digest.

    Raises ValueError when the part is not core properties XML.
    """
    try:
        root = defused_tree.fromstring(data, forbid_dtd=True)
    except (defused_tree.ParseError, DefusedXmlException):
        raise ValueError("core.xml") from None
    if root.tag != f"{{{_CORE_NS['cp']}}}coreProperties":
        raise ValueError("core.xml")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    values = {
        ("dcterms", "modified"): now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        ("cp", "lastModifiedBy"): AUTHOR,
        ("cp", "contentStatus"): f"{REVIEW_MARK} {digest}",
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


def is_untouched_copy(path: Path) -> bool:
    """True for an annotated copy exactly as this tool wrote it (not edited and saved since)."""
    status = read_core(path).content_status
    if not status.startswith(REVIEW_MARK + " "):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            members = {i.filename: (i.CRC, i.file_size) for i in zf.infolist()}
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return False
    return status[len(REVIEW_MARK) + 1 :].strip() == package_digest(members)


def severity_fill(finding: Finding) -> str:
    """The fill colour of a finding's cell and 级别 entry."""
    if finding.severity is Severity.ERROR:
        return ERROR_FILL
    if finding.severity is Severity.WARNING:
        return EXPLAINED_FILL if finding.explained else WARNING_FILL
    return INFO_FILL


def _weight(finding: Finding) -> tuple[int, int]:
    """Lower is more severe; an unexplained 警告 outranks an explained one."""
    return (finding.severity.rank, 1 if finding.explained else 0)


def comment_text(findings: Iterable[Finding]) -> str:
    """Our 批注 for one cell: one paragraph per finding, the most severe first."""
    parts = []
    for f in sorted(findings, key=_weight):
        head = f"【{f.severity.value}】{f.title}（{f.code}）" if f.title else f"【{f.severity.value}】{f.code}"
        lines = [head, f.message]
        if f.actual:
            lines.append(f"填报值：{f.actual}")
        if f.expected:
            lines.append(f"应为：{f.expected}")
        if f.explained:
            lines.append(f"单位说明：{f.explanation}")
        parts.append("\n".join(line for line in lines if line))
    return "\n\n".join(parts)


def comment_size(text: str) -> tuple[int, int]:
    """(width, height) in pixels for a comment box showing `text` in Excel's 9-pt comment font.

    A CJK character is about 12 px wide, a Latin one 6 px; lines longer than 56 units wrap.
    """
    longest = max((display_width(line) for line in text.split("\n")), default=0)
    per_line = max(24, min(56, longest))
    width = per_line * 6 + 24
    lines = sum(max(1, math.ceil(display_width(line) / per_line)) for line in text.split("\n"))
    return width, min(lines * 15 + 16, 1200)


def clean(text: str) -> str:
    """Text as Excel can store it: no control characters, at most 32,767 characters."""
    cleaned: str = ILLEGAL_CHARACTERS_RE.sub("", printable(text))
    return cleaned[:MAX_TEXT]


def put_text(cell: Cell, text: str) -> Cell:
    """Write `text` as a text cell even when it starts with "=" (openpyxl would write a live formula)."""
    value = clean(text)
    cell.value = value
    cell.data_type = "s"
    if looks_like_formula(value):  # safe_text: the one rule every export follows
        # Excel's leading apostrophe: editing the cell later keeps it text instead of evaluating it.
        cell.quotePrefix = True
    return cell


def _solid(rgb: str) -> PatternFill:
    """A solid fill; the colour is given opaque (ARGB "FF...") as Excel writes it."""
    return PatternFill(fill_type="solid", start_color="FF" + rgb, end_color="FF" + rgb)


def _anchor(wb: Workbook, finding: Finding) -> Cell | None:
    """The cell a finding flags (the top-left cell of its merge), or None when it is not in the workbook."""
    if finding.sheet not in wb.sheetnames or finding.sheet == RESULT_SHEET:
        return None
    ws = wb[finding.sheet]
    if not isinstance(ws, Worksheet):
        return None
    try:
        col, row = coordinate_from_string(finding.cell.split(":")[0].replace("$", "").strip().upper())
        cell = ws[f"{col}{row}"]
    except (ValueError, CellCoordinatesException):
        return None
    if isinstance(cell, MergedCell):
        for rng in ws.merged_cells.ranges:
            if cell.coordinate in rng:
                top = ws.cell(rng.min_row, rng.min_col)
                return top if isinstance(top, Cell) else None
        return None
    return cell


def _merge_of(cell: Cell) -> list[Cell | MergedCell]:
    """Every cell of the merge `cell` starts, or just `cell`."""
    ws = cell.parent
    for rng in ws.merged_cells.ranges:
        if rng.min_row == cell.row and rng.min_col == cell.column:
            return [c for row in ws.iter_rows(rng.min_row, rng.max_row, rng.min_col, rng.max_col) for c in row]
    return [cell]


def size_comments(wb: Workbook) -> None:
    """Give the unit's own 批注 a box that fits their text: openpyxl forgets every box size on load."""
    for ws in wb.worksheets:
        # _cells holds only the cells that exist; iter_rows would create every cell of the used range.
        for cell in list(ws._cells.values()):
            if cell.comment is not None:
                cell.comment.width, cell.comment.height = comment_size(cell.comment.text)


def _rgb(fill: object) -> str:
    """The solid fill colour of a cell as RRGGBB (upper case), "" for none, a theme colour or a pattern."""
    # openpyxl hands out a StyleProxy around the PatternFill: read attributes, not the type.
    if getattr(fill, "fill_type", None) != "solid":
        return ""
    color = getattr(fill, "fgColor", None)
    rgb = color.rgb if color is not None and color.type == "rgb" else None
    return rgb[-6:].upper() if isinstance(rgb, str) and len(rgb) >= 6 else ""


def is_review_comment(comment: Comment) -> bool:
    """A 批注 we wrote: our author (LibreOffice keeps it) or our 【级别】 heading."""
    return comment.author == AUTHOR or bool(_OUR_COMMENT.match(comment.text.lstrip()))


def strip_review(wb: Workbook, fills: Mapping[str, str | None]) -> int:
    """Remove an earlier round's review from a returned copy: the 审核结果 sheet, our 批注 (the unit's own
    text before the separator stays) and our fills. A cell still in a review colour gets the template's
    fill from `fills` ("附件1!F7" -> RRGGBB or None). Returns the number of cells cleaned."""
    if RESULT_SHEET in wb.sheetnames:
        wb.remove(wb[RESULT_SHEET])
    cleaned = 0
    for ws in wb.worksheets:
        # _cells holds only the cells that exist; iter_rows would create every cell of the used range.
        for cell in list(ws._cells.values()):
            touched = False
            comment = cell.comment
            if comment is not None:
                text = comment.text
                if COMMENT_SEPARATOR in text:
                    own = text.split(COMMENT_SEPARATOR, 1)[0].rstrip()
                    cell.comment = Comment(own, comment.author) if own else None
                    touched = True
                elif is_review_comment(comment):
                    cell.comment = None
                    touched = True
            if _rgb(cell.fill) in REVIEW_FILLS:
                original = fills.get(f"{ws.title}!{cell.coordinate}")
                cell.fill = _solid(original) if original else PatternFill(fill_type=None)
                touched = True
            cleaned += touched
    return cleaned


def unshadow(wb: Workbook, marked: Iterable[tuple[str, str]]) -> None:
    """Drop the template's conditional formats (its self-check red) on cells we mark: a conditional fill
    paints over a cell's own fill, so a 提示 would print red. Only formats whose whole range is marked go."""
    by_sheet: dict[str, set[str]] = {}
    for sheet, a1 in marked:
        by_sheet.setdefault(sheet, set()).add(a1)
    for title, cells in by_sheet.items():
        ws = wb[title]
        if not isinstance(ws, Worksheet):
            continue
        rules = ws.conditional_formatting._cf_rules
        for cf in list(rules):
            if _covered(cf.sqref, cells):
                del rules[cf]


def _covered(sqref: MultiCellRange, cells: set[str]) -> bool:
    """True when every cell of `sqref` is in `cells` (ranges larger than the marks are never covered)."""
    total = sum(r.size["rows"] * r.size["columns"] for r in sqref.ranges)
    if total > len(cells):
        return False
    return all(f"{get_column_letter(c)}{r}" in cells for rng in sqref.ranges for r, c in rng.cells)


def mark_cells(wb: Workbook, findings: list[Finding]) -> dict[int, str]:
    """Fill and comment every flagged cell; returns, per finding index, the A1 link target it resolved to."""
    by_cell: dict[tuple[str, str], list[Finding]] = {}
    cells: dict[tuple[str, str], Cell] = {}
    targets: dict[int, str] = {}
    for i, f in enumerate(findings):
        cell = _anchor(wb, f)
        if cell is None:
            continue
        key = (cell.parent.title, cell.coordinate)
        by_cell.setdefault(key, []).append(f)
        cells[key] = cell
        targets[i] = f"'{key[0].replace(chr(39), chr(39) * 2)}'!{key[1]}"
    for key, found in by_cell.items():
        cell = cells[key]
        worst = min(found, key=_weight)
        fill = _solid(severity_fill(worst))
        for c in _merge_of(cell):
            # Assigning only .fill keeps the cell's font, border, alignment, number format and protection.
            c.fill = fill
        ours = comment_text(found)
        if cell.comment is not None and cell.comment.text.strip():
            ours = f"{cell.comment.text.rstrip()}\n{COMMENT_SEPARATOR}\n{ours}"
        text = clean(ours)
        width, height = comment_size(text)
        cell.comment = Comment(text, AUTHOR, height=height, width=width)
    unshadow(wb, [(t, c.coordinate) for (t, _), cell in cells.items() for c in _merge_of(cell)])
    return targets


# -- the 审核结果 sheet ----------------------------------------------------------------------------
def _style(cell: Cell, font: Font = _BODY_FONT, align: Alignment = _WRAP, fill: str | None = None) -> None:
    cell.font = font
    cell.alignment = align
    cell.border = _BORDER
    if fill:
        cell.fill = _solid(fill)


def _put(ws: Worksheet, row: int, col: int, value: Any) -> Cell:
    cell = ws.cell(row, col)
    if isinstance(value, str):
        return put_text(cell, value)
    cell.value = value
    return cell


def _total(value: Decimal | None) -> float | str:
    if value is None:
        return "（未能计算）"
    # float() of the rounded Decimal: openpyxl would write a Decimal as 95.34999999999999. A total past
    # Excel's 15 digits (a score typed as 1.5e28) is written as text: quantize would overflow the context.
    if not value.is_finite() or value.adjusted() > 15:
        return str(value)
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _summary(report: Report) -> list[tuple[str, Any, str | None]]:
    counts = report.counts
    status_fill = {"有错误": ERROR_FILL, "有警告": WARNING_FILL, "通过": PASS_FILL}.get(report.status)
    rows: list[tuple[str, Any, str | None]] = [
        ("单位名称", report.unit_name, None),
        ("预算单位编码", report.unit_code, None),
        ("年度", report.year, None),
        ("表种", report.workbook_id, None),
    ]
    if report.project_name:
        rows.append(("项目", report.project_name, None))
    rows += [
        ("重算合计", _total(report.total), None),
        ("等级", report.grade, None),
        ("错误", counts["错误"], ERROR_FILL if counts["错误"] else None),
        ("警告（未说明）", counts["警告"], WARNING_FILL if counts["警告"] else None),
        ("已说明的警告", counts["已说明"], EXPLAINED_FILL if counts["已说明"] else None),
        ("提示", counts["提示"], INFO_FILL if counts["提示"] else None),
        ("审核结论", report.status, status_fill),
    ]
    if report.replaced:
        rows.append((REPLACED_LABEL, replaced_text(report.replaced), None))
    return rows


def _table(report: Report) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for i, f in enumerate(report.findings):
        rule = f"{f.title}（{f.code}）" if f.title else f.code
        note = f.message + (f"（已说明：{f.explanation}）" if f.explained else "")
        rows.append([i + 1, f.severity.value, rule, f.sheet, f.where, f.indicator, f.actual, f.expected, note])
    return rows


def _widths(table: list[list[Any]]) -> list[float]:
    widths = []
    for j, (lo, hi) in enumerate(WIDTHS):
        texts = [HEADERS[j]] + [str(r[j]) for r in table if r[j] is not None]
        need = max(display_width(line) for t in texts for line in t.split("\n")) + 2
        widths.append(float(max(lo, min(hi, need))))
    return widths


def _height(texts: Iterable[tuple[str, float]]) -> float:
    lines = max((text_lines(t, w) for t, w in texts if t), default=1)
    return round(lines * 13.5 + 4, 1)


def write_result_sheet(wb: Workbook, report: Report, source: Path, targets: dict[int, str]) -> Worksheet:
    """Insert 审核结果 as the first, active sheet: summary block, then one row per finding."""
    ws = wb.create_sheet(RESULT_SHEET, 0)
    table = _table(report)
    widths = _widths(table)
    for j, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = w
    put_text(ws.cell(1, 1), f"审核结果 — {report.unit_name or '（单位未识别）'}").font = _TITLE_FONT
    ws.row_dimensions[1].height = 24
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    put_text(ws.cell(2, 1), f"原文件：{source.name}　审核时间：{stamp}　xlsx-kpi {__version__}").font = _NOTE_FONT

    label_width = widths[0] + widths[1]
    value_width = widths[2] + widths[3] + widths[4]
    r = 3
    for label, value, fill in _summary(report):
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=2)
        ws.merge_cells(start_row=r, start_column=3, end_row=r, end_column=5)
        _style(_put(ws, r, 1, label), _BOLD_FONT, _WRAP, HEADER_FILL)
        _style(ws.cell(r, 2), _BOLD_FONT, _WRAP, HEADER_FILL)
        cell = _put(ws, r, 3, value)
        # Left-aligned, so counts and the total line up with the text values above them.
        _style(cell, _BOLD_FONT if label == "审核结论" else _BODY_FONT, _LEFT, fill)
        if label == "重算合计" and isinstance(value, float):
            cell.number_format = "0.00"
        for c in (4, 5):
            _style(ws.cell(r, c), fill=fill)
        ws.row_dimensions[r].height = _height([(label, label_width), (str(value), value_width)])
        r += 1

    header = r + 1
    for j, text in enumerate(HEADERS, start=1):
        _style(_put(ws, header, j, text), _BOLD_FONT, _CENTER, HEADER_FILL)
    ws.row_dimensions[header].height = 20
    r = header + 1
    if not table:
        for j in range(1, len(HEADERS) + 1):
            _style(ws.cell(r, j), fill=PASS_FILL if j == 3 else None)
        put_text(ws.cell(r, 3), "未发现问题")
        r += 1
    for i, (row, f) in enumerate(zip(table, report.findings, strict=True)):
        for j, value in enumerate(row, start=1):
            cell = _put(ws, r, j, value)
            _style(cell, align=_CENTER if j in (1, 2, 4, 5) else _WRAP)
        _style(ws.cell(r, 2), _BOLD_FONT, _CENTER, severity_fill(f))
        if i in targets:
            link = ws.cell(r, 5)
            link.hyperlink = Hyperlink(ref=link.coordinate, location=targets[i], tooltip=f"转到 {f.where}")
            link.font = _LINK_FONT
        ws.row_dimensions[r].height = _height((str(v), w) for v, w in zip(row, widths, strict=True))
        r += 1
    last = r - 1

    ws.freeze_panes = ws.cell(header + 1, 1)
    ws.auto_filter.ref = f"A{header}:{get_column_letter(len(HEADERS))}{last}"
    ws.print_title_rows = f"{header}:{header}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.6
    ws.page_margins.header = ws.page_margins.footer = 0.3
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"
    return ws


def _activate(wb: Workbook, ws: Worksheet) -> None:
    """Open on `ws` alone: other sheets lose tabSelected, or Excel would open them grouped."""
    for sheet in wb.worksheets + wb.chartsheets:
        views = getattr(sheet, "views", None) or getattr(sheet, "sheetViews", None)  # chartsheets: sheetViews
        for view in getattr(views, "sheetView", []):
            view.tabSelected = sheet is ws
    wb.active = ws
    for view in wb.views:
        view.firstSheet = 0


# -- the file ----------------------------------------------------------------------------------------
def _check_paths(source: Path, out: Path, force: bool) -> None:
    if not source.is_file():
        raise XlsxKpiError("文件不存在，请检查路径", file=str(source))
    same = out.resolve() == source.resolve()
    if not same and out.exists():
        try:
            same = os.path.samefile(source, out)
        except OSError:
            same = False
    if same:
        raise XlsxKpiError("批注副本不能写到原文件上；请另选输出文件名", file=str(out))
    if out.is_dir():
        raise XlsxKpiError("输出路径是一个文件夹", file=str(out))
    if out.exists() and not force:
        raise OutputExistsError("文件已存在；如需覆盖请加 --force", file=str(out))


def _load(source: Path) -> Workbook:
    # openpyxl builds the whole workbook: only a file within check_loadable's budgets is given to it.
    check_loadable(source)
    try:
        # Never data_only: that would replace every formula by its cached value.
        return openpyxl.load_workbook(source, rich_text=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, OSError) as e:
        raise XlsxKpiError(f"无法打开工作簿（{type(e).__name__}: {e}）", file=str(source)) from None


def save_marked(wb: Workbook, path: Path) -> None:
    """wb.save, then the core properties that mark the file as our untouched copy (is_untouched_copy)."""
    wb.save(path)
    with zipfile.ZipFile(path) as saved:
        infos = saved.infolist()
        parts = {i.filename: saved.read(i) for i in infos}
    core = mark_core(parts[CORE_PART], package_digest({i.filename: (i.CRC, i.file_size) for i in infos}))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as out:
        for info in infos:
            out.writestr(info, core if info.filename == CORE_PART else parts[info.filename])


def annotate(
    source: Path, report: Report, out: Path, *, force: bool = False, fills: Mapping[str, str | None] | None = None
) -> Path:
    """Write a copy of `source` with every finding marked (fill + 批注) and a first sheet 审核结果.

    A returned annotated copy (it has a 审核结果 sheet) is reviewed afresh: the earlier round's sheet,
    批注 and fills go first (strip_review; `fills` gives the template's fill of each cell). `source` is
    never written: `out` must be another file, and an existing `out` needs `force`. The copy is saved to
    a temporary file beside `out` and moved into place, so no half-written file is ever left behind.
    Returns `out`.
    """
    source, out = Path(source), Path(out)
    _check_paths(source, out, force)
    if report.error is not None:
        raise XlsxKpiError(f"该文件未能审核（{report.error}），不生成批注副本", file=str(source))
    wb = _load(source)
    if RESULT_SHEET in wb.sheetnames:
        strip_review(wb, fills or {})
    size_comments(wb)
    targets = mark_cells(wb, report.findings)
    ws = write_result_sheet(wb, report, source, targets)
    _activate(wb, ws)

    return write_atomically(out, lambda tmp: save_marked(wb, tmp), failure="无法写入批注副本")
