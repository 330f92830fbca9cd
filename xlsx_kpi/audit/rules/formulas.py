"""Rules on derived cells: totals, rates and scores overwritten with values, altered or written without a base."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

from xlsx_kpi.audit.findings import Finding, Severity
from xlsx_kpi.audit.rules.base import Context, Rule, register, show
from xlsx_kpi.audit.values import Status, parse_number, parse_percent
from xlsx_kpi.formats import expr
from xlsx_kpi.formats.expr import Value
from xlsx_kpi.formats.plan import Cell

# Amounts and scores have 2 decimals: a written value within half a hundredth of the recomputed one agrees.
VALUE_TOLERANCE = Decimal("0.005")
# A written rate agrees when the recomputed rate, rounded to the written precision (at least 0.01 % i.e.
# 4 decimals of the fraction... or coarser if the unit wrote fewer decimals), equals it.
RATE_MIN_DECIMALS = 2
SUM_RE = re.compile(r"^SUM\(.*\)$|^[a-z0-9_.]+(\+[a-z0-9_.]+)+$")


def kind_of(cell: Cell) -> str:
    """rate / sum / derived: which rule owns a formula cell (depends only on the spec)."""
    if cell.style == "f_percent":
        return "rate"
    if cell.expr and SUM_RE.match(cell.expr.replace(" ", "")):
        return "sum"
    return "derived"


def explain(ctx: Context, cell: Cell) -> str:
    """The formula in A1 terms with the values it uses: 公式 =E7/D7，其中 E7=2922、D7=27735."""
    assert cell.expr is not None
    tree = expr.parse(cell.expr)
    sheet = ctx.layout.refs[cell.key or ""].sheet
    formula = ctx.layout.excel(cell.key or "")
    parts = []
    for name in sorted(
        tree.names(),
        key=lambda n: (
            ctx.layout.refs[n].sheet != sheet,
            ctx.layout.refs[n].sheet,
            ctx.layout.refs[n].row,
            ctx.layout.refs[n].col,
        ),
    ):
        ref = ctx.layout.refs[name]
        where = ctx.where(name)[1] if ref.sheet == sheet else f"{ref.sheet}!{ctx.where(name)[1]}"
        parts.append(f"{where}={show(ctx.values.get(name), ctx.fmt(name))}")
    if len(parts) > 6:
        parts = parts[:6] + ["…"]
    return f"公式 ={formula}" + (f"，其中 {'、'.join(parts)}" if parts else "")


def written_candidates(cell: Cell, raw: object) -> tuple[Decimal, ...]:
    """The numbers a written value can mean (a rate typed as 6.03 may mean 6.03 %)."""
    if cell.style == "f_percent":
        return parse_percent(raw)[1]
    parsed = parse_number(raw)
    return (parsed.value,) if parsed.status is Status.OK and parsed.value is not None else ()


def agrees(kind: str, written: Decimal, expected: Decimal) -> bool:
    if kind == "rate":
        decimals = max(RATE_MIN_DECIMALS, -written.normalize().as_tuple().exponent)  # type: ignore[operator]
        return expr.excel_round(expected, decimals) == expr.excel_round(written, decimals)
    return abs(written - expected) <= VALUE_TOLERANCE


def formula_cells(ctx: Context, kind: str | None = None) -> list[Cell]:
    """The layout's formula cells (of one kind), worked out once per layout."""
    memo = ctx.layout.memo
    if "formula_cells" not in memo:
        cells = [c for c in ctx.layout.cells.values() if c.role == "formula" and c.key and c.expr is not None]
        memo["formula_cells"] = cells
        memo["formula_kinds"] = {k: [c for c in cells if kind_of(c) == k] for k in ("rate", "sum", "derived")}
    result: list[Cell] = memo["formula_cells"] if kind is None else memo["formula_kinds"][kind]
    return result


@register
class SumOverwritten(Rule):
    code = "sum-mismatch"
    severity = Severity.ERROR
    title = "合计与分项不符"
    example = "预算结构·执行额（百元）·合计应为 48000，填报为 48413（公式 =D10+E10+F10+G10，其中 D10=48000、…）"
    description = "合计、小计单元格的公式被数值覆盖，且该数值不等于各分项之和（按输入单元格重算）。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        yield from _overwritten(self, ctx, "sum")


@register
class RateOverwritten(Rule):
    code = "rate-mismatch"
    severity = Severity.ERROR
    title = "比率与重算不符"
    example = (
        "预算执行情况·政策和项目支出·结转结余率%应为 10.54%，填报为 6.03%"
        '（公式 =IF(D7=0,"",E7/D7)，其中 D7=27735、E7=2922）'
    )
    description = "结转结余率、变动率等比率单元格被填写的数值与按金额重算的比率不符（按填写的小数位比较，至少0.01%）。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        yield from _overwritten(self, ctx, "rate")


@register
class OtherOverwritten(Rule):
    code = "derived-mismatch"
    severity = Severity.ERROR
    title = "计算结果与重算不符"
    example = "等级应为“优”，填报为“良”（公式 …）"
    description = "等级、参考得分等计算单元格被覆盖为与重算结果不同的值。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        yield from _overwritten(self, ctx, "derived")


@register
class RateWithoutBase(Rule):
    code = "rate-without-base"
    severity = Severity.ERROR
    title = "无基数却填写了比率"
    example = "财政拨款结构·结转结余率%·政府性基金预算安排：基数为0或未填，比率无从计算，不应填写（填报 38.06%；…）"
    description = "比率的基数（执行额、上年结转结余额等）为 0 或未填，比率无从计算，却填写了非零数值。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for cell in formula_cells(ctx, "rate"):
            assert cell.key is not None
            raw = ctx.raw(cell.key)
            if raw.formula is not None or ctx.values.get(cell.key) != "":
                continue
            cands = written_candidates(cell, raw.value)
            if cands and any(c != 0 for c in cands):
                yield self.finding(
                    ctx,
                    cell.key,
                    f"{cell.label}：基数为0或未填，比率无从计算，不应填写"
                    f"（填报 {show(raw.value, 'percent')}；{explain(ctx, cell)}）",
                    expected="（空）",
                    actual=show(raw.value, "percent"),
                )


def replaced_cells(ctx: Context) -> list[str]:
    """Formula cells the unit replaced by a typed value that agrees with the recalculation (not a finding).

    A typed 0 where the formula shows nothing (a rate without a base) counts as agreeing: it prints the
    same and no figure depends on it. The 审核结果 sheet lists these once ("以下公式被数值替换，数值正确").
    """
    out: list[str] = []
    for cell in formula_cells(ctx):
        assert cell.key is not None
        raw, value = ctx.raw(cell.key), ctx.values.get(cell.key)
        if raw.formula is not None or raw.value in (None, ""):
            continue
        cands = written_candidates(cell, raw.value)
        if (isinstance(value, Decimal) and any(agrees(kind_of(cell), c, value) for c in cands)) or (
            value == "" and cands and all(c == 0 for c in cands)
        ):
            sheet, a1 = ctx.where(cell.key)
            out.append(f"{sheet}!{a1}")
    return out


@register
class FormulaAltered(Rule):
    code = "formula-altered"
    severity = Severity.INFO
    title = "公式与模板不同"
    example = "合计：公式被改为 =SUM(F5:F30)，模板公式为 =SUM(F5:F31)；审核按模板公式重算"
    description = "计算单元格中的公式与模板不同（审核以按模板公式重算的结果为准）。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for cell in formula_cells(ctx):
            assert cell.key is not None
            raw = ctx.raw(cell.key)
            if raw.formula is None or raw.formula == "(shared)":
                continue
            # The self-check counter names each row's checks, so it cannot grow with rows the unit inserted
            # into an indicator group (sums over ranges do); the audit runs every check itself.
            if ctx.filing.inserted and cell.key.endswith(".problems"):
                continue
            want = ctx.layout.excel(cell.key)
            if raw.formula != want and _norm(raw.formula) != _norm(want):
                yield self.finding(
                    ctx,
                    cell.key,
                    f"{cell.label}：公式被改为 ={raw.formula}，模板公式为 ={want}；审核按模板公式重算",
                    expected=f"={want}",
                    actual=f"={raw.formula}",
                )


def _norm(formula: str) -> str:
    """Spelling differences that are not changes: $, quotes, spaces, and LibreOffice's FALSE()/TRUE()."""
    text = re.sub(r"[\s$']", "", formula.lstrip("=")).upper()
    return text.replace("FALSE()", "FALSE").replace("TRUE()", "TRUE")


def _overwritten(rule: Rule, ctx: Context, kind: str) -> Iterator[Finding]:
    for cell in formula_cells(ctx, kind):
        assert cell.key is not None
        raw = ctx.raw(cell.key)
        if raw.formula is not None:
            continue
        value: Value = ctx.values.get(cell.key)
        fmt = ctx.fmt(cell.key)
        if raw.value in (None, ""):
            if isinstance(value, Decimal) and value != 0:
                yield rule.finding(
                    ctx,
                    cell.key,
                    f"{cell.label}：公式被删除，单元格为空；应为 {show(value, fmt)}（{explain(ctx, cell)}）",
                    expected=show(value, fmt),
                    actual="（空）",
                )
            continue
        cands = written_candidates(cell, raw.value)
        written = show(raw.value, fmt)
        if isinstance(value, Decimal):
            if not cands or not any(agrees(kind, c, value) for c in cands):
                yield rule.finding(
                    ctx,
                    cell.key,
                    f"{cell.label}应为 {show(value, fmt)}，填报为 {written}（{explain(ctx, cell)}）",
                    expected=show(value, fmt),
                    actual=written,
                )
        elif isinstance(value, str) and value and str(raw.value).strip() != value:
            yield rule.finding(
                ctx,
                cell.key,
                f"{cell.label}应为“{value}”，填报为“{show(raw.value)}”（{explain(ctx, cell)}）",
                expected=value,
                actual=show(raw.value),
            )
