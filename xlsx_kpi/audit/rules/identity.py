"""Rules on who filed: unit name and code as sent, the project type ticked once, required texts, cross-checks."""

from __future__ import annotations

import re
from collections.abc import Iterator

from xlsx_kpi.audit.findings import Finding, Severity
from xlsx_kpi.audit.recalc import once_per_layout, plan
from xlsx_kpi.audit.rules.base import Context, Rule, register, show
from xlsx_kpi.formats import expr
from xlsx_kpi.formats.plan import WorkbookLayout
from xlsx_kpi.formats.spec import CheckSpec, ChoiceBlock, FieldsBlock, TextBlock
from xlsx_kpi.safe_text import without_spaces

IDENTITY_NAMES = {"unit_name": "单位名称", "unit_code": "预算单位编码", "project_name": "项目名称"}


@register
class IdentityMismatch(Rule):
    code = "identity-mismatch"
    severity = Severity.ERROR
    title = "单位信息与模板不符"
    example = "预算单位编码“156002”与下发模板中的“156001”不一致"
    description = "单位名称、预算单位编码（及项目名称）须填写，且与下发模板记录的一致。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for sl in ctx.layout.sheets:
            for block in sl.spec.blocks:
                if not isinstance(block, FieldsBlock):
                    continue
                for row in block.rows:
                    for item in row:
                        if not item.identity or not item.key or item.identity not in IDENTITY_NAMES:
                            continue
                        key = f"{block.id}.{item.key}"
                        written, sent = ctx.text(key), ctx.filing.meta.get(item.identity, "").strip()
                        what = IDENTITY_NAMES[item.identity]
                        if not written:
                            yield self.finding(ctx, key, f"未填写{what}", expected=sent or what, actual="（空）")
                        elif sent and without_spaces(written) != without_spaces(sent):
                            yield self.finding(
                                ctx,
                                key,
                                f"{what}“{written}”与下发模板中的“{sent}”不一致",
                                expected=sent,
                                actual=written,
                            )


@register
class ProjectTypeChoice(Rule):
    code = "project-type"
    severity = Severity.ERROR
    title = "项目类型须且只能选一项"
    example = "项目类型勾选了 2 项（产业发展、民生保障），须且只能勾选一项"
    description = "项目类型（产业发展/民生保障/基础设施/行政运行）须勾选且只勾选一项。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for sl in ctx.layout.sheets:
            for block in sl.spec.blocks:
                if not isinstance(block, ChoiceBlock):
                    continue
                ticked = [o.text for i, o in enumerate(block.options, 1) if ctx.text(f"{block.id}.{i}")]
                if len(ticked) != 1:
                    yield self.finding(
                        ctx,
                        f"{block.id}.1",
                        f"{block.label}勾选了 {len(ticked)} 项"
                        f"{'（' + '、'.join(ticked) + '）' if ticked else ''}，须且只能勾选一项",
                        expected="勾选一项",
                        actual="、".join(ticked) or "（未勾选）",
                    )


@register
class RequiredText(Rule):
    code = "text-missing"
    severity = Severity.ERROR
    title = "必填文字未填"
    example = "年度总体目标：未填写“预算总体目标执行结果”"
    description = "年度总体目标及其执行结果须填写（偏差情况在有偏差时填写）。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for sl in ctx.layout.sheets:
            for block in sl.spec.blocks:
                if isinstance(block, TextBlock):
                    for f in block.fields:
                        key = f"{block.id}.{f.id}"
                        if not f.id.startswith("deviation") and not ctx.text(key):
                            yield self.finding(
                                ctx, key, f"{block.section}：未填写“{f.header}”", expected="填写", actual="（空）"
                            )


# A self-check written as a relation that must hold: ROUND(<left>-<right>,2)<>0.
RELATION = re.compile(r"^ROUND\((?P<diff>.+),\s*\d+\)\s*<>\s*0$")
NAME = re.compile(r"[a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)+")


def relation_sides(text: str) -> tuple[str, str] | None:
    """The two sides of a check `ROUND(a-(b+c),2)<>0` -> ("a", "b+c"); None for another shape."""
    m = RELATION.match(text.replace(" ", ""))
    if not m:
        return None
    diff, depth = m["diff"], 0
    for i, ch in enumerate(diff):
        depth += (ch == "(") - (ch == ")")
        if ch == "-" and depth == 0 and i > 0:
            left, right = diff[:i], diff[i + 1 :]
            if left.startswith("(") and left.endswith(")"):
                left = left[1:-1]
            if right.startswith("(") and right.endswith(")"):
                right = right[1:-1]
            return left, right
    return None


def side_text(ctx: Context, side: str, sheet: str) -> str:
    """A side of a relation in A1 terms with the values: D8+D9（42.09+（空））."""

    def a1(m: re.Match[str]) -> str:
        name = m[0]
        if name not in ctx.layout.refs:
            return name
        where_sheet, cell = ctx.where(name)
        return cell if where_sheet == sheet else f"{where_sheet}!{cell}"

    refs = NAME.sub(a1, side)
    names = [n for n in NAME.findall(side) if n in ctx.layout.refs]
    if len(names) <= 1:
        return refs
    return f"{refs}（{'+'.join(show(ctx.values.get(n)) for n in names)}）"


@register
class SpecCrossCheck(Rule):
    code = "cross-check"
    severity = Severity.ERROR
    title = "表内勾稽不符"
    example = (
        "年度资金总额的年初预算数应等于当年财政拨款、上年结转资金、其他资金之和：D7 ="
        " 54.41，D8+D9+D10（42.09+（空）+（空）） = 42.09"
    )
    description = (
        "表种规格中定义的勾稽关系（如预算结构合计 = 预算执行情况合计），按重算后的数值检查；"
        "消息列出两边的单元格和数值。"
    )

    def check(self, ctx: Context) -> Iterator[Finding]:
        lookup = ctx.values.get
        checks, program = once_per_layout(ctx.layout, "spec_checks", _spec_checks)
        for chk, result in zip(checks, program.each(lookup), strict=True):
            if result is not True:
                continue
            sides = relation_sides(chk.expr)
            if sides is None:
                yield self.finding(ctx, chk.cell, chk.message, expected="满足勾稽关系", actual="不满足")
                continue
            left, right = (expr.evaluate(expr.parse(s), lookup) for s in sides)
            sheet = ctx.where(chk.cell)[0]
            yield self.finding(
                ctx,
                chk.cell,
                f"{chk.message}：{side_text(ctx, sides[0], sheet)} = {show(left)}，"
                f"{side_text(ctx, sides[1], sheet)} = {show(right)}",
                expected=show(right),
                actual=show(left),
            )


def _spec_checks(layout: WorkbookLayout) -> tuple[list[CheckSpec], expr.Program]:
    """The spec's cross-checks in sheet order and their expressions compiled (once per layout)."""
    checks = [chk for sl in layout.sheets for chk in sl.spec.checks]
    return checks, expr.Program((chk.cell, expr.parse(chk.expr)) for chk in checks)


@register
class InputHoldsFormula(Rule):
    code = "input-formula"
    severity = Severity.INFO
    title = "填写单元格中是公式"
    example = "预算执行情况·基本支出·预算额（百元）中填写的是公式 =20000+678，已按其结果读取"
    description = "应直接填写的单元格中是公式；按其计算结果读取，提示审核人核对。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        cells = ctx.filing.cells
        for key in plan(ctx.layout).inputs:
            raw = cells.get(key)
            if raw is not None and raw.formula:
                yield self.finding(
                    ctx,
                    key,
                    f"{ctx.cell(key).label}中填写的是公式 ={raw.formula}，已按其结果读取",
                    actual=f"={raw.formula}",
                    expected=f"数值 {show(ctx.inputs.get(key), ctx.fmt(key))}",
                )


@register
class CellMoved(Rule):
    code = "cell-moved"
    severity = Severity.INFO
    title = "单元格位置变动"
    example = "评选最美科技工作者执行结果已从模板位置 附件2!F17 移到 附件2!F18（表格行列被增删），已按新位置读取"
    description = "单位插入或删除了行列，单元格已按 Excel 名称找到新位置读取。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for key, where in sorted(ctx.filing.moved.items()):
            sheet, a1 = ctx.layout.refs[key].sheet, expr_a1(ctx, key)
            yield self.finding(
                ctx,
                key,
                f"{ctx.cell(key).label}已从模板位置 {sheet}!{a1} 移到 {where}（表格行列被增删），已按新位置读取",
                expected=f"{sheet}!{a1}",
                actual=where,
            )


def expr_a1(ctx: Context, key: str) -> str:
    """The template's A1 address of a named cell (where it was before the unit moved it)."""
    ref = ctx.layout.refs[key]
    col, letters = ref.col + 1, ""
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return f"{letters}{ref.row + 1}"
