"""Writing an `Expr` as the Excel formula the template carries (cells in A1 terms, runs merged into ranges)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from xlsx_kpi.formats.expr.syntax import (
    ATOM_POWER,
    BINARY_POWER,
    UNARY_POWER,
    Binary,
    Bool,
    Call,
    CellRef,
    Expr,
    Name,
    Node,
    Num,
    Str,
    Unary,
)

# Arguments that are plain cells may be merged into ranges only where a range means the same as
# the list of cells: these functions treat both as references.
_RANGE_FUNCTIONS = frozenset({"SUM", "COUNT", "MIN", "MAX"})


def _col_letters(col: int) -> str:
    letters = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _sheet_prefix(cell: CellRef, sheet: str) -> str:
    if cell.sheet == sheet:
        return ""
    return "'" + cell.sheet.replace("'", "''") + "'!"


def _a1(cell: CellRef) -> str:
    return f"{_col_letters(cell.col)}{cell.row + 1}"


def format_number(value: Decimal) -> str:
    if value == 0:
        return "0"  # also drops the sign of -0, which Excel does not have
    return format(value.normalize(), "f")


def _quote_text(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _merge_cells(cells: list[CellRef]) -> list[tuple[CellRef, CellRef]]:
    """Group consecutive cells into vertical or horizontal runs, keeping their order."""
    runs: list[tuple[CellRef, CellRef]] = []
    for cell in cells:
        if runs:
            start, end = runs[-1]
            same_sheet = cell.sheet == start.sheet
            # A single cell may start either direction; a longer run only continues its own.
            down = cell.col == start.col == end.col and cell.row == end.row + 1
            across = cell.row == start.row == end.row and cell.col == end.col + 1
            if same_sheet and (down or across):
                runs[-1] = (start, cell)
                continue
        runs.append((cell, cell))
    return runs


def to_excel(expr: Expr, ref: Callable[[str], CellRef], sheet: str) -> str:
    """The Excel formula for `expr` (without the leading '='), written on `sheet`."""

    def cell_text(cell: CellRef) -> str:
        return _sheet_prefix(cell, sheet) + _a1(cell)

    def write(node: Node) -> tuple[str, int]:
        """Return the formula text and its binding power, so the parent knows whether to wrap it."""
        if isinstance(node, Num):
            return format_number(node.value), ATOM_POWER
        if isinstance(node, Str):
            return _quote_text(node.value), ATOM_POWER
        if isinstance(node, Bool):
            return ("TRUE" if node.value else "FALSE"), ATOM_POWER
        if isinstance(node, Name):
            return cell_text(ref(node.name)), ATOM_POWER
        if isinstance(node, Unary):
            text, power = write(node.operand)
            if power < UNARY_POWER:
                text = f"({text})"
            return node.op + text, UNARY_POWER
        if isinstance(node, Binary):
            power = BINARY_POWER[node.op]
            left, left_power = write(node.left)
            right, right_power = write(node.right)
            if left_power < power:
                left = f"({left})"
            # Operators are left-associative, so an equal-power right side needs its parentheses:
            # a-(b-c) differs from a-b-c, and even a+(b+c) may round differently.
            if right_power <= power:
                right = f"({right})"
            return f"{left}{node.op}{right}", power
        return f"{node.func}({','.join(write_args(node))})", ATOM_POWER

    def write_args(call: Call) -> list[str]:
        if call.func not in _RANGE_FUNCTIONS:
            return [write(arg)[0] for arg in call.args]
        parts: list[str] = []
        pending: list[CellRef] = []

        def flush() -> None:
            for start, end in _merge_cells(pending):
                text = cell_text(start)
                if end != start:
                    text += ":" + _a1(end)
                parts.append(text)
            pending.clear()

        for arg in call.args:
            if isinstance(arg, Name):
                pending.append(ref(arg.name))
            else:
                flush()
                parts.append(write(arg)[0])
        flush()
        return parts

    return write(expr.root)[0]
