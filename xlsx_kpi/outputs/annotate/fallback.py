"""The fallback annotator: the reviewer's copy written by openpyxl from the whole workbook (see __init__)."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.cell.cell import Cell, MergedCell
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils.cell import coordinate_from_string, get_column_letter
from openpyxl.utils.exceptions import CellCoordinatesException, InvalidFileException
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.cell_range import MultiCellRange
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.worksheet import Worksheet

from xlsx_kpi import __version__
from xlsx_kpi.audit.findings import Finding
from xlsx_kpi.audit.report import Report
from xlsx_kpi.errors import XlsxKpiError, write_atomically
from xlsx_kpi.ooxml.load import check_loadable
from xlsx_kpi.ooxml.parts import CORE_PART
from xlsx_kpi.ooxml.patch import open_patchable, read_part, write_zip
from xlsx_kpi.outputs.review import (
    AUTHOR,
    COMMENT_SEPARATOR,
    ERROR_FILL,
    EXPLAINED_FILL,
    FONT,
    HEADER_FILL,
    HEADERS,
    INFO_FILL,
    LINK_COLOR,
    MAX_TEXT,
    PASS_FILL,
    RESULT_SHEET,
    REVIEW_FILLS,
    REVIEW_MARK,
    SUFFIX,
    WARNING_FILL,
    WIDTHS,
    annotated_name,
    check_output_paths,
    clean,
    column_widths,
    comment_size,
    comment_text,
    is_untouched_copy,
    mark_core,
    package_digest,
    result_rows,
    review_round,
    row_height,
    severity_fill,
    summary_rows,
    weight,
)
from xlsx_kpi.safe_text import looks_like_formula

__all__ = [
    "AUTHOR",
    "COMMENT_SEPARATOR",
    "CORE_PART",
    "ERROR_FILL",
    "EXPLAINED_FILL",
    "HEADER_FILL",
    "INFO_FILL",
    "MAX_TEXT",
    "PASS_FILL",
    "RESULT_SHEET",
    "REVIEW_FILLS",
    "REVIEW_MARK",
    "SUFFIX",
    "WARNING_FILL",
    "WIDTHS",
    "annotate_openpyxl",
    "annotated_name",
    "clean",
    "comment_size",
    "comment_text",
    "is_untouched_copy",
    "mark_core",
    "package_digest",
    "review_round",
    "severity_fill",
]

_OUR_COMMENT = re.compile(r"^【(错误|警告|提示)】")

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
        worst = min(found, key=weight)
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


def write_result_sheet(wb: Workbook, report: Report, source: Path, targets: dict[int, str]) -> Worksheet:
    """Insert 审核结果 as the first, active sheet: summary block, then one row per finding."""
    ws = wb.create_sheet(RESULT_SHEET, 0)
    table = result_rows(report)
    widths = column_widths(table)
    for j, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = w
    put_text(ws.cell(1, 1), f"审核结果 — {report.unit_name or '（单位未识别）'}").font = _TITLE_FONT
    ws.row_dimensions[1].height = 24
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    put_text(ws.cell(2, 1), f"原文件：{source.name}　审核时间：{stamp}　xlsx-kpi {__version__}").font = _NOTE_FONT

    label_width = widths[0] + widths[1]
    value_width = widths[2] + widths[3] + widths[4]
    r = 3
    for label, value, fill in summary_rows(report):
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
        ws.row_dimensions[r].height = row_height([(label, label_width), (str(value), value_width)])
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
        ws.row_dimensions[r].height = row_height((str(v), w) for v, w in zip(row, widths, strict=True))
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
    with open_patchable(path) as pkg:
        sums = {i.filename: (i.CRC, i.file_size) for i in pkg.infos}
        core = mark_core(read_part(pkg, CORE_PART), package_digest(sums))
        data = write_zip(pkg, {CORE_PART: core}, [])  # every other member copied as openpyxl compressed it
    path.write_bytes(data)


def annotate_openpyxl(
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
    check_output_paths(source, out, force)
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
