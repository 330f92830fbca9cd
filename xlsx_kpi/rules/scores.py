"""Rules on 附件1 self-scores: present, numeric, within 0..分值, explained, close to the rule's reference."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from xlsx_kpi import expr
from xlsx_kpi.findings import Finding, Severity
from xlsx_kpi.rules.base import Context, Rule, register, show
from xlsx_kpi.spec import IndicatorsBlock
from xlsx_kpi.values import Status, parse_number

# A score is compared at the table's 2 decimals: differences below half a hundredth are equal.
SCORE_TOLERANCE = Decimal("0.005")


def score_rows(ctx: Context) -> Iterator[tuple[str, str, Decimal, str]]:
    """(key base like `s.staff_control`, indicator name, 分值, block id) for every scoring row."""
    for sl in ctx.layout.sheets:
        for block in sl.spec.blocks:
            if isinstance(block, IndicatorsBlock):
                for _, _, ind in block.indicators():
                    yield f"{block.id}.{ind.id}", ind.name, ind.points, block.id


@register
class ScoreMissing(Rule):
    code = "score-missing"
    severity = Severity.ERROR
    title = "自评分数未填"
    description = "每个三级指标都须填写自评分数。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for base, name, points, _ in score_rows(ctx):
            if parse_number(ctx.raw(f"{base}.score").value).status is Status.BLANK:
                yield self.finding(
                    ctx,
                    f"{base}.score",
                    f"“{name}”未填写自评分数（分值{points}分）",
                    expected=f"0～{points}",
                    actual="（空）",
                )


@register
class ScoreNotNumber(Rule):
    code = "score-not-number"
    severity = Severity.ERROR
    title = "自评分数不是数字"
    description = "自评分数须为数字；文字、错误值（如 #DIV/0!）或日期都无法计分。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for base, name, points, _ in score_rows(ctx):
            raw = ctx.raw(f"{base}.score")
            parsed = parse_number(raw.value)
            if raw.is_date or parsed.status in (Status.TEXT, Status.ERROR, Status.DATE):
                yield self.finding(
                    ctx,
                    f"{base}.score",
                    f"“{name}”的自评分数“{show(raw.value)}”不是数字，请填写0至{points}之间的数字",
                    expected=f"0～{points}",
                    actual=show(raw.value),
                )


@register
class ScoreTextNumber(Rule):
    code = "score-as-text"
    severity = Severity.INFO
    title = "分数以文字填写"
    description = "分数写成文字（如“3.35分”“３.３５”）时按其中的数字计分，并提示审核人。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for base, name, _, _ in score_rows(ctx):
            raw = ctx.raw(f"{base}.score")
            parsed = parse_number(raw.value)
            if parsed.status is Status.OK and isinstance(raw.value, str):
                yield self.finding(
                    ctx,
                    f"{base}.score",
                    f"“{name}”的自评分数写作“{raw.value}”（{parsed.note}），已按 {show(parsed.value)} 计分",
                    actual=str(raw.value),
                    expected=show(parsed.value),
                )


@register
class ScoreOutOfRange(Rule):
    code = "score-above-max"
    severity = Severity.ERROR
    title = "自评分数超出分值"
    description = "自评分数须在 0 至该行分值之间（负数同样报告）。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for base, name, points, _ in score_rows(ctx):
            v = ctx.inputs.get(f"{base}.score")
            if not isinstance(v, Decimal):
                continue
            if v > points + SCORE_TOLERANCE:
                yield self.finding(
                    ctx,
                    f"{base}.score",
                    f"“{name}”自评 {show(v)} 分，超过本项分值 {points} 分",
                    expected=f"≤{points}",
                    actual=show(v),
                )
            elif v < 0:
                yield self.finding(
                    ctx,
                    f"{base}.score",
                    f"“{name}”自评分数为负数（{show(v)}）",
                    expected=f"0～{points}",
                    actual=show(v),
                )


@register
class BasisMissing(Rule):
    code = "basis-missing"
    severity = Severity.ERROR
    title = "扣分未写依据"
    description = "自评分数低于满分时，须在“自评依据及说明”中写明扣分依据。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for base, name, points, _ in score_rows(ctx):
            v = ctx.inputs.get(f"{base}.score")
            if isinstance(v, Decimal) and 0 <= v < points - SCORE_TOLERANCE and not ctx.text(f"{base}.basis"):
                yield self.finding(
                    ctx,
                    f"{base}.basis",
                    f"“{name}”自评 {show(v)} 分，低于满分 {points} 分，但未填写自评依据及说明",
                    expected="扣分依据",
                    actual="（空）",
                )


@register
class ScoreVsReference(Rule):
    code = "score-vs-reference"
    severity = Severity.WARNING
    title = "自评分数与参考得分不一致"
    description = (
        "有计算公式的计分标准，按基础数据和附件2算出参考得分；自评分数与之相差 0.005 分以上时警告，"
        "口径有歧义时列出各读法的得分。单位在“与参考得分不一致的说明”列写明理由后，视为已说明。"
    )

    def check(self, ctx: Context) -> Iterator[Finding]:
        for base, name, _, _ in score_rows(ctx):
            key = f"{base}.ref"
            if key not in ctx.layout.refs:
                continue
            score, ref = ctx.inputs.get(f"{base}.score"), ctx.values.get(key)
            if not isinstance(score, Decimal) or not isinstance(ref, Decimal):
                continue
            if abs(score - ref) <= SCORE_TOLERANCE:
                continue
            readings = ctx.readings.get(base, {})
            chosen = ctx.layout.readings.get(base) or _default_reading(ctx, base)
            message = f"“{name}”自评 {show(score)} 分，按计分标准（口径 {chosen}）参考得分为 {show(ref)} 分"
            others = [f"口径 {k} 得 {show(v)} 分" for k, v in readings.items() if k != chosen]
            if others:
                message += "；另有" + "、".join(others)
                same = [k for k, v in readings.items() if isinstance(v, Decimal) and abs(v - score) <= SCORE_TOLERANCE]
                if same:
                    message += f"（自评分数与口径 {'、'.join(same)} 一致）"
            message += "。如有理由，请在本行“与参考得分不一致的说明”列写明"
            yield self.finding(
                ctx, f"{base}.score", message, expected=show(ref), actual=show(score), explain_key=f"{base}.note"
            )


def _default_reading(ctx: Context, base: str) -> str:
    block_id, ind_id = base.split(".", 1)
    for sl in ctx.layout.sheets:
        for block in sl.spec.blocks:
            if isinstance(block, IndicatorsBlock) and block.id == block_id:
                for _, _, ind in block.indicators():
                    if ind.id == ind_id and ind.rule:
                        return ind.rule.default
    return "default"


@register
class ReferenceUnavailable(Rule):
    code = "reference-unavailable"
    severity = Severity.INFO
    title = "参考得分无法计算"
    description = "计分标准所需的基础数据未填（或基数为 0）时，无法核对自评分数，提示审核人人工判断。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for base, name, _, _ in score_rows(ctx):
            key = f"{base}.ref"
            cell = ctx.layout.cells.get(key)
            if cell is None or cell.expr is None or not isinstance(ctx.inputs.get(f"{base}.score"), Decimal):
                continue
            if ctx.values.get(key) != "":
                continue
            needed = sorted(n for n in expr.parse(cell.expr).names() if ctx.layout.cells[n].role == "input")
            blank = [ctx.layout.cells[n].label for n in needed if ctx.inputs.get(n) in (None, "")]
            why = f"缺少：{'、'.join(blank)}" if blank else "基数为0或数据不适用于公式"
            yield self.finding(
                ctx, f"{base}.score", f"“{name}”的参考得分无法计算（{why}），请人工核对自评分数", severity=Severity.INFO
            )
