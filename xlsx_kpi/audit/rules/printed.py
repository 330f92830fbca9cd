"""Rules on what the unit printed: totals whose displayed value differs from the recalculation, sheets renamed
or added."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from xlsx_kpi.audit.cells import to_inputs
from xlsx_kpi.audit.filing import Filing
from xlsx_kpi.audit.findings import Finding, Severity
from xlsx_kpi.audit.recalc import recalculate
from xlsx_kpi.audit.rules.base import Context, Rule, register, show
from xlsx_kpi.audit.rules.formulas import explain, formula_cells, kind_of

# A displayed amount or score agrees within half a hundredth (2 decimals); a rate within half a hundredth
# of a percent. The cached value is the full double the spreadsheet computed, so no rounding is applied.
PRINTED_TOLERANCE = Decimal("0.005")
PRINTED_RATE_TOLERANCE = Decimal("0.00005")


def printed_mismatches(filing: Filing, values: dict[str, object]) -> dict[str, Decimal]:
    """Formula cells (formula intact) whose displayed (cached) number differs from the recalculation: key ->
    the number the unit's spreadsheet showed and printed.

    Calc's and Excel's SUM skip a number typed as text ("1分"), which the tool reads as 1. Helper cells
    that are not printed (the self-check counters, styles aux_*) are left out. A file saved without
    cached values (openpyxl) shows nothing to compare.
    """
    out: dict[str, Decimal] = {}
    for cell in filing.layout.formulas():
        key = cell.key
        if not key or cell.style.startswith("aux") or cell.style == "status":
            continue
        raw = filing.cells.get(key)
        value = values.get(key)
        if raw is None or raw.formula is None or not isinstance(raw.value, Decimal) or not isinstance(value, Decimal):
            continue
        tolerance = PRINTED_RATE_TOLERANCE if kind_of(cell) == "rate" else PRINTED_TOLERANCE
        if abs(raw.value - value) > tolerance:
            out[key] = raw.value
    return out


def own_values(ctx: Context) -> dict[str, object]:
    """The recalculation from the file's own inputs: what its spreadsheet should show. Differs from
    ctx.values only when blank previous-year figures were filled from the history."""
    if ctx.previous is None:
        return dict(ctx.values)
    return dict(recalculate(ctx.layout, to_inputs(ctx.filing)))


@register
class PrintedMismatch(Rule):
    code = "printed-mismatch"
    severity = Severity.ERROR
    title = "显示（打印）的结果与重算不符"
    example = (
        "合计：工作簿显示（打印）为 93.35，按填写内容重算为 94.35（=F8+F12+…）；通常是有分数或金额以文字填写（如“1分”）"
    )
    description = (
        "计算单元格的公式未被改动，但工作簿中显示、打印的结果与按填写内容重算的结果不同"
        "（常见原因：分数或金额以文字填写，如“1分”，Excel 的 SUM 不计入）；以单位打印的数字报告。"
    )

    def check(self, ctx: Context) -> Iterator[Finding]:
        own = own_values(ctx)
        shown = printed_mismatches(ctx.filing, own)
        cells = {c.key: c for c in formula_cells(ctx)}
        for key, printed in shown.items():
            cell = ctx.cell(key)
            fmt = ctx.fmt(key)
            value = own.get(key)
            why = f"（{explain(ctx, cell)}）" if key in cells else ""
            yield self.finding(
                ctx,
                key,
                f"{cell.label}：工作簿显示（打印）为 {show(printed, fmt)}，按填写内容重算为 {show(value, fmt)}{why}；"
                "通常是有分数或金额以文字填写（如“1分”），Excel 的求和不计入它。请把这些单元格改为数字，"
                "使显示的结果与重算一致",
                expected=show(value, fmt),
                actual=show(printed, fmt),
            )


@register
class SheetRenamed(Rule):
    code = "sheet-renamed"
    severity = Severity.INFO
    title = "工作表被改名"
    example = "工作表“附件1”被改名为“表1”，已按其内容识别并读取；请改回原名“附件1”"
    description = "模板中的工作表被改名（LibreOffice、WPS 保存后不再锁定工作簿结构）；已按内容识别并读取，请改回原名。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for template_name, name in ctx.filing.renamed.items():
            yield Finding(
                code=self.code,
                severity=self.severity,
                sheet=name,
                cell="A1",
                message=f"工作表“{template_name}”被改名为“{name}”，已按其内容识别并读取；请改回原名“{template_name}”",
                expected=template_name,
                actual=name,
                title=self.title,
            )


@register
class SheetAdded(Rule):
    code = "sheet-added"
    severity = Severity.INFO
    title = "单位新增的工作表"
    example = "工作表“Sheet1”不在模板中（单位新增），其内容未审核、未汇总，请查看"
    description = "工作簿中有模板以外的工作表；其内容不审核、不汇总，请审核人查看。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for name in ctx.filing.added:
            yield Finding(
                code=self.code,
                severity=self.severity,
                sheet=name,
                cell="A1",
                message=f"工作表“{name}”不在模板中（单位新增），其内容未审核、未汇总，请查看",
                actual=name,
                title=self.title,
            )
