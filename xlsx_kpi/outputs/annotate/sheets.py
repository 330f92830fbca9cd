"""The reviewer's copy: the unit's flagged worksheets patched (fills, new cells, the comment drawing)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from xlsx_kpi.audit.findings import Finding
from xlsx_kpi.formats.spec import col_index, col_letters
from xlsx_kpi.ooxml.patch import (
    REL_NS,
    START_TAG,
    WORKSHEET_ORDER,
    Element,
    Row,
    Unpatchable,
    apply_edits,
    attr_value,
    int_attr,
    open_tag,
    prefix_of,
    row_cells,
    set_attrs,
)
from xlsx_kpi.outputs.annotate.styles import Styles
from xlsx_kpi.outputs.review import (
    clean,
    comment_text,
    severity_fill,
    weight,
)

MAX_MARKED_CELLS = 100_000  # cells filled (a finding on a huge merge would need one <c> per cell)
MAX_ROW = 1_048_576
MAX_COL = 16_384
_COORD = re.compile(r"^[$]?([A-Za-z]{1,3})[$]?(\d+)$")
_CELL = re.compile(r"^([A-Z]{1,3})([0-9]{1,7})$")
_RANGE = re.compile(r"^\$?([A-Z]{1,3})\$?([0-9]{1,7})(?::\$?([A-Z]{1,3})\$?([0-9]{1,7}))?$")


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


def _cell(a1: str) -> tuple[int, int]:
    m = _CELL.match(a1)
    if m is None:
        raise Unpatchable
    row, col = int(m.group(2)), column_index_from_string(m.group(1))
    if not (1 <= row <= MAX_ROW and 1 <= col <= MAX_COL):
        raise Unpatchable
    return row, col


def a1(row: int, col: int) -> str:
    return f"{get_column_letter(col)}{row}"


def _true(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true")


@dataclass(slots=True, eq=False)
class SheetPart:
    """A <sheet> of workbook.xml and the part it names."""

    name: str
    el: Element
    part: str
    kind: str


def finding_cell(cell: str) -> tuple[int, int] | None:
    """(row, col) of a finding's cell as fallback._anchor reads it; None where openpyxl finds no cell."""
    try:
        letters, row = coordinate_from_string(cell.split(":")[0].replace("$", "").strip().upper())
        col = column_index_from_string(letters)
    except ValueError:
        return None
    if not 1 <= row <= MAX_ROW:
        return None
    if col > MAX_COL:
        raise Unpatchable  # openpyxl would mark a cell beyond XFD, which Excel cannot hold
    return row, col


def merges_of(root: Element) -> list[tuple[int, int, int, int]]:
    """Merged ranges as (min_row, min_col, max_row, max_col), in document order."""
    block = root.kid("mergeCells")
    out = []
    for el in block.kids("mergeCell") if block is not None else []:
        m = _RANGE.match(el.attrs.get("ref", "").strip().upper())
        if m is None:
            raise Unpatchable
        r1, c1 = int(m.group(2)), column_index_from_string(m.group(1))
        r2, c2 = (int(m.group(4)), column_index_from_string(m.group(3))) if m.group(3) else (r1, c1)
        out.append((min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2)))
    return out


@dataclass
class Marks:
    """What one worksheet gets: fills by cell, and our 批注 by anchor cell."""

    fills: dict[tuple[int, int], str] = field(default_factory=dict)
    comments: dict[tuple[int, int], str] = field(default_factory=dict)


def resolve_marks(
    findings: list[tuple[int, Finding, tuple[int, int]]], merges: list[tuple[int, int, int, int]]
) -> tuple[Marks, dict[int, tuple[int, int]]]:
    """fallback.mark_cells on one sheet: the anchor of each finding (a merge's top-left cell), the most
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
    marks = Marks()
    for anchor, found in by_anchor.items():
        rgb = severity_fill(min(found, key=weight))
        r1, c1, r2, c2 = ranges[anchor]
        if len(marks.fills) + (r2 - r1 + 1) * (c2 - c1 + 1) > MAX_MARKED_CELLS:
            raise Unpatchable
        for r in range(r1, r2 + 1):
            for c in range(c1, c2 + 1):
                marks.fills[(r, c)] = rgb
        marks.comments[anchor] = clean(comment_text(found))
    return marks, anchors


def patch_sheet(data: bytes, root: Element, rows: list[Row], marks: Marks, styles: Styles, drawing_rid: str) -> bytes:
    """Fill the marked cells (adding <c> or <row> elements where the file has none), add <legacyDrawing>,
    and clear tabSelected."""
    p = prefix_of(root.tag)
    for child in root.children:
        if prefix_of(child.tag) != p or child.local not in WORKSHEET_ORDER:
            raise Unpatchable  # mc:AlternateContent and the like: leave the placement to openpyxl
    if root.kid("legacyDrawing") is not None or root.kid("sheetData") is None:
        raise Unpatchable
    edits: list[tuple[int, int, Any, bytes]] = []
    edits += unselect(data, root)

    by_number: dict[int, Row] = {}
    for row in rows:
        number = row.el.attrs.get("r", "")
        if not (number.isascii() and number.isdigit()) or int(number) in by_number:
            raise Unpatchable  # rows without r (or twice the same) are left to openpyxl
        by_number[int(number)] = row
    col_styles: list[tuple[int, int, int]] = []
    cols = root.kid("cols")
    for col in cols.kids("col") if cols is not None else []:
        try:
            col_styles.append((int(col.attrs["min"]), int(col.attrs["max"]), int(col.attrs.get("style", "0"))))
        except (KeyError, ValueError):
            raise Unpatchable from None

    def base_style(row: Row | None, col: int) -> int:
        """What Excel shows in a cell the file does not list: the row's format, else the column's."""
        if row is not None and _true(row.el.attrs.get("customFormat")):
            return int_attr(row.el.attrs.get("s", "0"))
        return next((s for lo, hi, s in col_styles if lo <= col <= hi), 0)

    def new_cell(row: Row | None, r: int, c: int, rgb: str) -> bytes:
        return f'<{p}c r="{a1(r, c)}" s="{styles.marked(base_style(row, c), rgb)}"/>'.encode()

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
        for ref, at_pos in row_cells(data, row):
            if ref is None:
                raise Unpatchable
            at = _cell(ref)
            if at[0] != r or at[1] in present:
                raise Unpatchable
            present[at[1]] = at_pos
        missing: list[tuple[int, str]] = []
        for c, rgb in cells:
            pos = present.get(c, -1)
            if pos < 0:
                missing.append((c, rgb))
                continue
            m = START_TAG.match(data, pos)
            if m is None:
                raise Unpatchable
            head = data[pos : m.end()]
            style = int_attr(attr_value(head, b"s") or "0")
            edits.append((pos, m.end(), 0, set_attrs(head, {"s": str(styles.marked(style, rgb))})))
        if not missing:
            continue
        added += [(r, c) for c, _ in missing]
        head = data[row.el.start : row.el.head_end]
        if "spans" in row.el.attrs:
            head = set_attrs(head, {"spans": None})  # a hint Excel checks: drop it rather than widen it
        if row.el.empty:
            text = (
                open_tag(head) + b"".join(new_cell(row, r, c, rgb) for c, rgb in missing) + f"</{row.el.tag}>".encode()
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
            text = open_tag(data[sheet_data.start : sheet_data.head_end])
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
    # we give it: formats whose whole range we mark are dropped (fallback.unshadow).
    for child in root.kids("conditionalFormatting"):
        sqref = child.attrs.get("sqref", "")
        covered = _sqref_set(sqref) or _sqref_cells(sqref, len(marks.fills))
        if covered is not None and covered <= marks.fills.keys():
            edits.append((child.start, child.end, 0, b""))

    order = WORKSHEET_ORDER["legacyDrawing"]
    after = next((c for c in root.children if WORKSHEET_ORDER[c.local] > order), None)
    pos = after.start if after is not None else root.inner_end
    edits.append((pos, pos, 0, f'<{p}legacyDrawing xmlns:r="{REL_NS}" r:id="{drawing_rid}"/>'.encode()))
    return apply_edits(data, edits)


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


@functools.lru_cache(maxsize=4096)
def _sqref_set(sqref: str) -> frozenset[tuple[int, int]] | None:
    """_sqref_cells for a sqref of at most 4,096 cells, once per distinct sqref (a layout repeats its own on every
    file); None for a larger or unparseable one (ask _sqref_cells with the limit that matters)."""
    cells = _sqref_cells(sqref, 4096)
    return frozenset(cells) if cells is not None else None


def _widen(data: bytes, dimension: Element, cells: list[tuple[int, int]]) -> list[tuple[int, int, Any, bytes]]:
    """<dimension ref> grown to hold cells the copy adds (it is a hint, but read_only readers trust it)."""
    m = _RANGE.match(dimension.attrs.get("ref", "").strip().upper())
    if m is None:
        return []
    r1, c1 = int(m.group(2)), column_index_from_string(m.group(1))
    r2, c2 = (int(m.group(4)), column_index_from_string(m.group(3))) if m.group(3) else (r1, c1)
    rows, cols = [r for r, _ in cells] + [r1, r2], [c for _, c in cells] + [c1, c2]
    ref = f"{a1(min(rows), min(cols))}:{a1(max(rows), max(cols))}"
    head = data[dimension.start : dimension.head_end]
    return [(dimension.start, dimension.head_end, 0, set_attrs(head, {"ref": ref}))]


def unselect(data: bytes, root: Element) -> list[tuple[int, int, Any, bytes]]:
    """Edits that clear tabSelected, so Excel opens the copy on 审核结果 alone rather than grouped."""
    edits: list[tuple[int, int, Any, bytes]] = []
    views = root.kid("sheetViews")
    for view in views.kids("sheetView") if views is not None else []:
        value = view.attrs.get("tabSelected")
        if value is not None and value.strip().lower() not in ("0", "false"):
            head = data[view.start : view.head_end]
            edits.append((view.start, view.head_end, 0, set_attrs(head, {"tabSelected": None})))
    return edits
