"""Rules on who filed: unit name and code as sent, the project type ticked once, required texts, cross-checks."""

from __future__ import annotations

import re
from collections.abc import Iterator

from xlsx_kpi import expr
from xlsx_kpi.findings import Finding, Severity
from xlsx_kpi.rules.base import Context, Rule, register
from xlsx_kpi.spec import ChoiceBlock, FieldsBlock, TextBlock

IDENTITY_NAMES = {"unit_name": "单位名称", "unit_code": "预算单位编码", "project_name": "项目名称"}


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@register
class IdentityMismatch(Rule):
    code = "identity-mismatch"
    severity = Severity.ERROR
    title = "单位信息与模板不符"
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
                        elif sent and _squash(written) != _squash(sent):
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


@register
class SpecCrossCheck(Rule):
    code = "cross-check"
    severity = Severity.ERROR
    title = "表内勾稽不符"
    description = "表种规格中定义的勾稽关系（如预算结构合计 = 预算执行情况合计），按重算后的数值检查。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        def lookup(name: str) -> expr.Value:
            return ctx.values.get(name)

        for sl in ctx.layout.sheets:
            for chk in sl.spec.checks:
                if expr.evaluate(expr.parse(chk.expr), lookup) is True:
                    yield self.finding(ctx, chk.cell, chk.message)


@register
class InputHoldsFormula(Rule):
    code = "input-formula"
    severity = Severity.INFO
    title = "填写单元格中是公式"
    description = "应直接填写的单元格中是公式；按其计算结果读取，提示审核人核对。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for key, cell in ctx.layout.cells.items():
            if cell.role == "input" and ctx.raw(key).formula:
                yield self.finding(
                    ctx,
                    key,
                    f"{cell.label}中填写的是公式 ={ctx.raw(key).formula}，已按其结果读取",
                    actual=f"={ctx.raw(key).formula}",
                )


@register
class CellMoved(Rule):
    code = "cell-moved"
    severity = Severity.INFO
    title = "单元格位置变动"
    description = "单位插入或删除了行列，单元格已按 Excel 名称找到新位置读取。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for key, where in sorted(ctx.filing.moved.items()):
            yield self.finding(
                ctx, key, f"{ctx.cell(key).label}已从模板位置移到 {where}（表格行列被增删），已按新位置读取"
            )
