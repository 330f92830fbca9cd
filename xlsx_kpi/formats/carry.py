"""Last year's figures a workbook repeats: which input this year equals which key of last year's workbook."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from xlsx_kpi.formats.expr import Value
from xlsx_kpi.formats.plan import WorkbookLayout


def carry_pairs(layout: WorkbookLayout) -> list[tuple[str, str]]:
    """(this year's previous-year input, last year's key it should equal), by the specs' naming convention.

    基础数据 `b.prev_carry_<row>` is last year's 附件2 `exec.<row>.carry`, and `b.prev_carry_f_<col>` is
    last year's `fund.carry.<col>` (预算结构). Only input cells are paired: the totals follow from them.
    """
    pairs: list[tuple[str, str]] = []
    for key, cell in layout.cells.items():
        if cell.role != "input" or not key.startswith("b.prev_carry_"):
            continue
        part = key.removeprefix("b.prev_carry_")
        if part.startswith("f_"):
            pairs.append((key, f"fund.carry.{part.removeprefix('f_')}"))
        else:
            pairs.append((key, f"exec.{part}.carry"))
    return pairs


def fill_prior_year(
    layout: WorkbookLayout, inputs: Mapping[str, Value], previous: Mapping[str, Value]
) -> dict[str, Value]:
    """The inputs with blank previous-year 结转结余额 cells taken from last year's stored figures."""
    out = dict(inputs)
    for key, prev_key in carry_pairs(layout):
        value = previous.get(prev_key)
        if out.get(key) is None and isinstance(value, Decimal):
            out[key] = value
    return out
