"""The headline figures of a filing (level subtotals, total, amounts, rates) that the summary and history show."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from xlsx_kpi.formats.expr import Value

__all__ = [
    "AMOUNTS",
    "EXECUTION_RATE",
    "FIGURES",
    "LEVELS",
    "RATES",
    "TOTAL",
    "Figure",
    "execution_rate",
    "shown_value",
]


@dataclass(frozen=True)
class Figure:
    """One figure of a submission: a stable id (JSON), a Chinese label, the value key, and how to show it."""

    id: str
    label: str
    key: str
    fmt: Literal["score", "amount", "rate"]


# Level-1 subtotals are `s.l1.<id>` in every spec; specs without one of these ids (cn-, gz-department)
# simply leave it blank. Amounts are the 预算执行情况 合计 row of the Sichuan 附件2.
LEVELS = (
    Figure("input", "投入", "s.l1.input", "score"),
    Figure("process", "过程", "s.l1.process", "score"),
    Figure("output", "产出", "s.l1.output", "score"),
    Figure("effect", "效果", "s.l1.effect", "score"),
)
TOTAL = Figure("total", "合计", "s.total", "score")
AMOUNTS = (
    Figure("budget", "预算额", "exec.total.budget", "amount"),
    Figure("actual", "执行额", "exec.total.actual", "amount"),
    Figure("carry", "结转结余额", "exec.total.carry", "amount"),
)
RATES = (
    Figure("carry_rate", "结转结余率", "exec.total.carry_rate", "rate"),
    Figure("carry_change", "结转结余变动率", "exec.total.carry_change", "rate"),
)
FIGURES = (*LEVELS, TOTAL, *AMOUNTS, *RATES)
EXECUTION_RATE = Figure("execution_rate", "执行率", "", "rate")


def shown_value(value: Value, figure: Figure) -> Value:
    """A rate to 4 decimals (a percentage to 2) for display; other values unchanged."""
    if figure.fmt == "rate" and isinstance(value, Decimal) and value.is_finite() and value.adjusted() < 20:
        return value.quantize(Decimal("0.0001")).normalize()  # larger rates are shown as they are
    return value


def execution_rate(values: Mapping[str, Value]) -> Decimal | None:
    """执行额 ÷ 预算额 of the 合计 row; None without a positive budget."""
    budget, actual = values.get("exec.total.budget"), values.get("exec.total.actual")
    if isinstance(budget, Decimal) and isinstance(actual, Decimal) and budget != 0:
        return actual / budget
    return None
