"""Rules on typed figures: numbers that are not numbers, negatives, out of range, and budget arithmetic."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from xlsx_kpi.audit.findings import Finding, Severity
from xlsx_kpi.audit.recalc import once_per_layout
from xlsx_kpi.audit.rules.base import Context, Rule, register, show
from xlsx_kpi.audit.values import Status, parse_number, parse_percent
from xlsx_kpi.formats.plan import WorkbookLayout
from xlsx_kpi.formats.spec import GridBlock

# Amounts have 2 decimals (百元): differences below half a hundredth are equal.
AMOUNT_TOLERANCE = Decimal("0.005")
NUMERIC = ("amount", "count", "percent")


def numeric_inputs(ctx: Context) -> list[tuple[str, str]]:
    """(key, input type) of every amount, count and percent input (worked out once per layout)."""
    return once_per_layout(ctx.layout, "numeric_inputs", _numeric_inputs)


def _numeric_inputs(layout: WorkbookLayout) -> list[tuple[str, str]]:
    return [(k, c.input_type or "") for k, c in layout.cells.items() if c.role == "input" and c.input_type in NUMERIC]


def _plain_number_or_blank(value: object) -> bool:
    """A blank cell or a finite number: what parse_number reads as BLANK or OK without looking further."""
    return value is None or (isinstance(value, Decimal) and value.is_finite())


@register
class InputNotNumber(Rule):
    code = "input-not-number"
    severity = Severity.ERROR
    title = "数字单元格填了非数字"
    example = "预算执行情况·基本支出·预算额（百元）应填写数字，现为“两万”"
    description = "金额、个数、百分数单元格中是文字、错误值（如 #DIV/0!）或日期，无法计算。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for key, kind in numeric_inputs(ctx):
            raw = ctx.raw(key)
            if not raw.is_date and _plain_number_or_blank(raw.value):
                continue  # what most cells hold: nothing to parse
            parsed = parse_percent(raw.value)[0] if kind == "percent" else parse_number(raw.value)
            if raw.is_date or parsed.status in (Status.TEXT, Status.ERROR, Status.DATE):
                label = ctx.cell(key).label
                yield self.finding(
                    ctx, key, f"{label}应填写数字，现为“{show(raw.value)}”", actual=show(raw.value), expected="数字"
                )


@register
class NumberAsText(Rule):
    code = "number-as-text"
    severity = Severity.INFO
    title = "数字以文字填写"
    example = "预算执行情况·基本支出·预算额（百元）写作文字“1,234.5”，已按 1234.5 计算"
    description = "数字写成文字（如“1,234.5”“３５”“95%”文本）时按其中的数字计算，并提示审核人。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for key, kind in numeric_inputs(ctx):
            raw = ctx.raw(key)
            if not isinstance(raw.value, str) or not raw.value.strip():
                continue
            parsed = parse_percent(raw.value)[0] if kind == "percent" else parse_number(raw.value)
            if parsed.status is Status.OK:
                yield self.finding(
                    ctx,
                    key,
                    f"{ctx.cell(key).label}写作文字“{raw.value}”，已按 {show(parsed.value, ctx.fmt(key))} 计算",
                    actual=raw.value,
                    expected=show(parsed.value, ctx.fmt(key)),
                )


@register
class InputOutOfRange(Rule):
    code = "input-out-of-range"
    severity = Severity.ERROR
    title = "数值超出范围"
    example = "基础数据·在职人员数不得为负数（填报 -8）"
    description = "金额、个数不得为负；个数须为整数；百分数在 0%～100% 之间；有上限的个数不超过上限。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for key, kind in numeric_inputs(ctx):
            v = ctx.inputs.get(key)
            if not isinstance(v, Decimal):
                continue
            cell = ctx.cell(key)
            problem, want = "", ""
            if v < 0:
                problem, want = "不得为负数", "≥0"
            elif kind == "count" and v != v.to_integral_value():
                problem, want = "应为整数", "整数"
            elif kind == "count" and cell.max is not None and v > cell.max:
                problem, want = f"不得超过 {cell.max}", f"≤{cell.max}"
            elif kind == "percent" and v > 1:
                problem, want = "不得超过100%", "≤100%"
            if problem:
                yield self.finding(
                    ctx,
                    key,
                    f"{cell.label}{problem}（填报 {show(v, ctx.fmt(key))}）",
                    actual=show(v, ctx.fmt(key)),
                    expected=want,
                )


def budget_rows(ctx: Context) -> list[tuple[GridBlock, str, str, str, str, str]]:
    """(block, row label, budget key, actual key, carry key, note key) for grids with a 情况说明 column.

    By convention a grid's amount columns are named budget / actual / carry; only grids where the unit can
    write an explanation (note_cols) are checked, so every warning here can be explained. Worked out once
    per layout.
    """
    return once_per_layout(ctx.layout, "budget_rows", lambda layout: list(_budget_rows(layout)))


def _budget_rows(layout: WorkbookLayout) -> Iterator[tuple[GridBlock, str, str, str, str, str]]:
    for sl in layout.sheets:
        for block in sl.spec.blocks:
            if not isinstance(block, GridBlock) or not block.note_cols:
                continue
            cols = {c.id for c in block.columns}
            if not {"budget", "actual", "carry"} <= cols:
                continue
            for row in block.rows:
                base = f"{block.id}.{row.id}"
                yield block, row.label, f"{base}.budget", f"{base}.actual", f"{base}.carry", f"{base}.note"


@register
class OverBudget(Rule):
    code = "over-budget"
    severity = Severity.WARNING
    title = "执行额超过预算额"
    example = (
        "预算执行情况·合计：执行额 48413 超过预算额 36808（超出 11605），须说明原因（如使用上年结转资金）"
        "（如有理由，请在 附件2!H5“预算执行情况·合计情况说明”中写明说明）"
    )
    description = "执行额大于预算额（如使用了上年结转资金），须在该行“情况说明”列说明原因。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for block, label, b, a, _, note in budget_rows(ctx):
            budget, actual = ctx.values.get(b), ctx.values.get(a)
            if isinstance(budget, Decimal) and isinstance(actual, Decimal) and actual > budget + AMOUNT_TOLERANCE:
                yield self.finding(
                    ctx,
                    a,
                    f"{block.section}·{label}：执行额 {show(actual)} 超过预算额 {show(budget)}"
                    f"（超出 {show(actual - budget)}），须说明原因（如使用上年结转资金）",
                    expected=f"≤{show(budget)}",
                    actual=show(actual),
                    explain_key=note,
                )


@register
class CarryMismatch(Rule):
    code = "carry-mismatch"
    severity = Severity.WARNING
    title = "结转结余额与预算执行不符"
    example = (
        "预算执行情况·合计：预算额 36808 − 执行额 30000 = 6808，而结转结余额填报 2922；如有原因请在“情况说明”列说明"
    )
    description = "执行额未超预算时，当年结转结余额一般应等于预算额减执行额；不等时须在“情况说明”列说明。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for block, label, b, a, c, note in budget_rows(ctx):
            budget, actual, carry = ctx.values.get(b), ctx.values.get(a), ctx.values.get(c)
            if not all(isinstance(x, Decimal) for x in (budget, actual, carry)):
                continue
            assert isinstance(budget, Decimal) and isinstance(actual, Decimal) and isinstance(carry, Decimal)
            if actual > budget + AMOUNT_TOLERANCE or budget == 0:
                continue
            if abs(budget - actual - carry) > AMOUNT_TOLERANCE:
                yield self.finding(
                    ctx,
                    c,
                    f"{block.section}·{label}：预算额 {show(budget)} − 执行额 {show(actual)} = "
                    f"{show(budget - actual)}，而结转结余额填报 {show(carry)}；如有原因请在“情况说明”列说明",
                    expected=show(budget - actual),
                    actual=show(carry),
                    explain_key=note,
                )
