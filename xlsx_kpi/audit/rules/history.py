"""Rules across years: last year's 结转结余额 as written this year against what the unit reported last year."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from xlsx_kpi.audit.findings import Finding, Severity
from xlsx_kpi.audit.rules.base import Context, Rule, register, show
from xlsx_kpi.formats.carry import carry_pairs

# Amounts have 2 decimals (百元): differences below half a hundredth are equal.
AMOUNT_TOLERANCE = Decimal("0.005")


def prior_year(ctx: Context) -> str:
    year = ctx.filing.meta.get("year", "").strip()
    return str(int(year) - 1) if year.isdigit() else "上一"


def written(ctx: Context, key: str) -> bool:
    """The unit typed something in this cell (a blank cell may have been filled from the history)."""
    value = ctx.raw(key).value
    return value is not None and not (isinstance(value, str) and not value.strip())


@register
class PriorYearMismatch(Rule):
    code = "prior-year-mismatch"
    severity = Severity.ERROR
    title = "上年结转结余额与上年报送不符"
    example = "上年度结转结余额填报 14000，而上年报送的当年结转结余额为 14526"
    description = (
        "基础数据中填写的上年度结转结余额，须等于本单位上一年度报送（历史数据库中）的当年结转结余额；"
        "仅在使用历史数据库时检查（check --db、collect）。"
    )

    def check(self, ctx: Context) -> Iterator[Finding]:
        if not ctx.previous:
            return
        year = prior_year(ctx)
        for key, prev_key in carry_pairs(ctx.layout):
            now, before = ctx.inputs.get(key), ctx.previous.get(prev_key)
            if not written(ctx, key) or not isinstance(now, Decimal) or not isinstance(before, Decimal):
                continue
            if abs(now - before) > AMOUNT_TOLERANCE:
                label = ctx.cell(key).label
                yield self.finding(
                    ctx,
                    key,
                    f"{label}填写为 {show(now)}，而本单位 {year} 年报送的当年结转结余额为 {show(before)}"
                    f"（相差 {show(now - before)}），请按上年报送数填写或说明更正原因",
                    expected=show(before),
                    actual=show(now),
                )


@register
class PriorYearFilled(Rule):
    code = "prior-year-filled"
    severity = Severity.INFO
    title = "上年结转结余额取自历史数据"
    example = "上年度结转结余额未填，已按上年报送的 14526 补足"
    description = "基础数据中的上年度结转结余额未填写，已按本单位上一年度报送的当年结转结余额计算结转结余变动率。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        if not ctx.previous:
            return
        year = prior_year(ctx)
        for key, prev_key in carry_pairs(ctx.layout):
            before = ctx.previous.get(prev_key)
            if written(ctx, key) or not isinstance(before, Decimal):
                continue
            label = ctx.cell(key).label
            yield self.finding(
                ctx,
                key,
                f"{label}未填写，已按本单位 {year} 年报送的 {show(before)} 计算结转结余变动率",
                expected=show(before),
                actual="（空）",
            )
