"""What a finding's cell looks like in its sheet: the rows around it, its labels and the value Excel shows."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils.cell import column_index_from_string, coordinate_from_string, get_column_letter

from xlsx_kpi.audit.report import Report
from xlsx_kpi.ooxml.load import check_loadable

__all__ = ["CONTEXT_COLS", "CONTEXT_ROWS", "cell_contexts"]

CONTEXT_ROWS = 3  # rows shown above and below a finding's cell
CONTEXT_COLS = 8  # columns shown at least (from A), at most 14


def _display(value: Any, number_format: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, int | float):
        if "%" in number_format:
            return f"{value * 100:.2f}%"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return f"{value:.10g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d")
    return str(value)


def cell_contexts(path: Path, report: Report) -> list[dict[str, Any]]:
    """Each finding's cell in its sheet: a few rows around it, its row and column labels, its shown value.

    Read with openpyxl (read-only, cached values: what Excel shows) after the reader's load budget passed.
    """
    check_loadable(path)
    wanted: dict[str, list[tuple[int, int]]] = {}
    for f in report.findings:
        try:
            letters, row = coordinate_from_string(f.cell)
            wanted.setdefault(f.sheet, []).append((row, column_index_from_string(letters)))
        except ValueError:
            continue
    grids: dict[str, dict[tuple[int, int], str]] = {}
    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        for sheet, cells in wanted.items():
            if sheet not in wb.sheetnames:
                continue
            ws = wb[sheet]
            ws.reset_dimensions()
            last_row = max(r for r, _ in cells) + CONTEXT_ROWS
            last_col = min(max(max(c for _, c in cells) + 2, CONTEXT_COLS), 16384)
            cells_seen: dict[tuple[int, int], str] = {}
            for row in ws.iter_rows(min_row=1, max_row=last_row, max_col=last_col):
                for cell in row:
                    value = getattr(cell, "value", None)
                    if value is not None and hasattr(cell, "row"):
                        cells_seen[(cell.row, cell.column)] = _display(value, cell.number_format or "")
            grids[sheet] = cells_seen
    finally:
        wb.close()
    out: list[dict[str, Any]] = []
    for f in report.findings:
        grid: dict[tuple[int, int], str] | None = grids.get(f.sheet)
        try:
            letters, r = coordinate_from_string(f.cell)
            c = column_index_from_string(letters)
        except ValueError:
            grid = None
        if grid is None:
            out.append({"sheet": f.sheet, "cell": f.cell, "rows": [], "cols": []})
            continue
        first_col = 1 if c <= 12 else c - 6
        last_col = min(max(c + 1, first_col + CONTEXT_COLS - 1), first_col + 13)
        cols = list(range(first_col, last_col + 1))
        rows = list(range(max(1, r - CONTEXT_ROWS), r + CONTEXT_ROWS + 1))
        row_label = " · ".join(
            t for k in range(1, c) if (t := grid.get((r, k), "")) and not _numeric(t) and len(t) < 60
        )
        if not row_label:
            row_label = next((grid[(k, 1)] for k in range(r, 0, -1) if grid.get((k, 1))), "")
        col_label = next(
            (t for k in range(r - 1, max(0, r - 25), -1) if (t := grid.get((k, c), "")) and not _numeric(t)), ""
        )
        out.append(
            {
                "sheet": f.sheet,
                "cell": f.cell,
                "row": r,
                "col": c,
                "value": grid.get((r, c), ""),
                "row_label": row_label,
                "col_label": col_label,
                "cols": [get_column_letter(k) for k in cols],
                "rows": [[k, [grid.get((k, j), "") for j in cols]] for k in rows],
            }
        )
    return out


def _numeric(text: str) -> bool:
    return text.replace(".", "", 1).replace("%", "").replace("-", "", 1).isdigit()
