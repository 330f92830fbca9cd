"""Recompute every derived value of a workbook from its inputs, in Decimal; no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from xlsx_kpi.formats import expr
from xlsx_kpi.formats.layout import Check, WorkbookLayout
from xlsx_kpi.formats.spec import IndicatorsBlock

Values = dict[str, expr.Value]


def constants(layout: WorkbookLayout) -> Values:
    """Values fixed by the spec (分值 and the like)."""
    return {k: c.value for k, c in layout.cells.items() if c.role == "constant" and c.value is not None}


def recalculate(layout: WorkbookLayout, inputs: Mapping[str, expr.Value]) -> Values:
    """Every input, constant and formula value, evaluated from the inputs alone.

    Cached values in a returned workbook are never used: a formula cell's value here depends only on
    the input cells, through the same expressions the template wrote as Excel formulas.
    """
    values: Values = constants(layout)
    for key, cell in layout.cells.items():
        if cell.role == "input":
            values[key] = inputs.get(key)

    # Names were checked when the specs loaded (layout.check_catalog), so a plain dict lookup is enough.
    lookup = values.get

    for cell in layout.formulas():
        assert cell.key is not None and cell.expr is not None
        values[cell.key] = expr.evaluate(expr.parse(cell.expr), lookup)
    return values


def failing_checks(layout: WorkbookLayout, values: Mapping[str, expr.Value]) -> list[Check]:
    """The self-checks that are TRUE (a problem) for these values, as the template would show them."""
    lookup = values.get
    return [c for c in layout.checks() if expr.evaluate(expr.parse(c.expr), lookup) is True]


def prefilled(layout: WorkbookLayout) -> dict[str, expr.Value]:
    """The inputs a fresh template already carries (identity fields, the project-type tick)."""
    return {k: c.text for k, c in layout.cells.items() if c.role == "input" and c.text}


def reading_values(layout: WorkbookLayout, values: Mapping[str, expr.Value]) -> dict[str, dict[str, expr.Value]]:
    """Every reading of every rule-based indicator: key `<block>.<indicator>` -> {reading: score}."""
    lookup = values.get
    out: dict[str, dict[str, expr.Value]] = {}
    for sl in layout.sheets:
        for block in sl.spec.blocks:
            if isinstance(block, IndicatorsBlock):
                for _, _, ind in block.indicators():
                    if ind.rule:
                        out[f"{block.id}.{ind.id}"] = {
                            name: expr.evaluate(expr.parse(r.expr), lookup) for name, r in ind.rule.readings.items()
                        }
    return out


def as_decimal(value: expr.Value) -> Decimal | None:
    return value if isinstance(value, Decimal) else None
