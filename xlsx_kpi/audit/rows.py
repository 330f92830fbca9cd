"""Where a filing's indicator rows really are: groups with rows inserted or deleted, and rows outside them."""

from __future__ import annotations

import dataclasses
import itertools

from xlsx_kpi.audit.cells import MAX_ROW
from xlsx_kpi.audit.filing import MAX_GROUP_ROWS, STRAY_WINDOW
from xlsx_kpi.audit.identify import Plan, name_target, plan_for
from xlsx_kpi.audit.xml_parts import Book
from xlsx_kpi.formats.plan import RowGroup, WorkbookLayout
from xlsx_kpi.formats.spec import Catalog, col_letters


def discover_rows(
    plan: Plan, catalog: Catalog, book: Book, renamed: dict[str, str]
) -> tuple[Plan, dict[str, tuple[str, int, int, str]]]:
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
        return name_target(text, book.sheets)

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
    plan = plan_for(catalog, layout.spec.id, dataclasses.replace(ident, rows=rows))
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


def stray_candidates(
    plan: Plan, cells: dict[str, tuple[str, int, int, str]], renamed: dict[str, str]
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


def printed_texts(layout: WorkbookLayout, sheet: str) -> frozenset[str]:
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
