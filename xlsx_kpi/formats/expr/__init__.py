"""A tiny Excel-like formula language: one definition, written as an Excel formula and run in Decimal.

`syntax` parses a spec expression into an `Expr`; `excel` writes it as the template's Excel formula; `coerce`
holds Excel's value rules (15 digits, ROUND, coercion, comparison); `evaluate` runs it in Decimal.
"""

from xlsx_kpi.formats.expr.coerce import excel_round
from xlsx_kpi.formats.expr.evaluate import Program, evaluate
from xlsx_kpi.formats.expr.excel import to_excel
from xlsx_kpi.formats.expr.syntax import CellRef, ExcelError, Expr, ExprError, Value, parse

__all__ = [
    "CellRef",
    "ExcelError",
    "Expr",
    "ExprError",
    "Program",
    "Value",
    "evaluate",
    "excel_round",
    "parse",
    "to_excel",
]
