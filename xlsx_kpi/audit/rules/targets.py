"""Rules on 年度绩效指标: complete rows, results that miss their target, and the 偏差原因 that must explain it."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from decimal import Decimal

from xlsx_kpi.audit.findings import Finding, Severity
from xlsx_kpi.audit.rules.base import Context, Rule, register, show
from xlsx_kpi.audit.rules.indicators import indicator_rows
from xlsx_kpi.audit.values import Status, meets, parse_percent, parse_targets
from xlsx_kpi.formats.spec import InputsBlock

# Text that claims there is no deviation.
NO_DEVIATION = re.compile(r"^(无|没有)(偏差|差异)?[。.，,]?$|^无偏差|^未发生偏差|^[/／\-—－]+$")
# Two satisfaction rates agree within half a percentage point.
RATE_TOLERANCE = Decimal("0.005")


@functools.lru_cache(maxsize=4096)
def missed(target: str, result: object) -> bool | None:
    """False when every target piece is met, True when one is missed, None when it cannot be decided."""
    pieces = parse_targets(target)
    if not pieces:
        return None
    verdicts = [meets(t, result) for t in pieces]
    if any(v is False for v in verdicts):
        return True
    if all(v is True for v in verdicts):
        return False
    return None


@register
class TargetIncomplete(Rule):
    code = "target-incomplete"
    severity = Severity.ERROR
    title = "绩效指标行填写不全"
    example = "满意度指标第1行缺少执行结果"
    description = "一行绩效指标须同时填写三级指标、预算指标值和执行结果。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        names = {"name": "三级指标", "target": "预算指标值", "result": "执行结果"}
        for row in indicator_rows(ctx):
            parts = {p: row.text(ctx, p) for p in names}
            if not any(parts.values()) or all(parts.values()):
                continue
            lacking = [names[p] for p, v in parts.items() if not v]
            key = next((row.keys[p] for p, v in parts.items() if not v and p in row.keys), None)
            if key is None:
                continue
            yield self.finding(
                ctx,
                key,
                f"{row.label(ctx)}缺少{'、'.join(lacking)}"
                if row.text(ctx, "name")
                else f"{row.level2.splitlines()[0]}第{row.index}行缺少{'、'.join(lacking)}",
                expected="填写完整",
                actual="（空）",
            )


@register
class TargetMissed(Rule):
    code = "target-missed"
    severity = Severity.ERROR
    title = "未达目标且未说明偏差"
    example = "“评选最美科技工作者”执行结果“=8个”未达到预算指标值“≥10个”，须填写偏差原因"
    description = "执行结果未达到预算指标值（≥、≤、=、区间，单位万/亿/%换算后比较）时，须填写偏差原因。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for row in indicator_rows(ctx):
            rkey, dkey = row.key("result"), row.key("deviation")
            target, result = row.text(ctx, "target"), ctx.inputs.get(rkey) if rkey else None
            if not target or not dkey or result in (None, "") or missed(target, result) is not True:
                continue
            deviation = ctx.text(dkey)
            name = row.label(ctx)
            if not deviation:
                yield self.finding(
                    ctx,
                    dkey,
                    f"“{name}”执行结果“{show(result)}”未达到预算指标值“{target}”，须填写偏差原因",
                    expected=f"达到{target}或说明原因",
                    actual="（空）",
                    indicator=name,
                )
            elif NO_DEVIATION.match(deviation):
                yield self.finding(
                    ctx,
                    dkey,
                    f"“{name}”执行结果“{show(result)}”未达到预算指标值“{target}”，偏差原因却写“{deviation}”",
                    expected="偏差原因",
                    actual=deviation,
                    indicator=name,
                    severity=Severity.ERROR,
                )


@register
class TargetUnverifiable(Rule):
    code = "target-unverifiable"
    severity = Severity.INFO
    title = "执行结果无法与指标值比对"
    example = "“推荐我市重点企业入选全省重点项目发布”执行结果“已完成”无法与预算指标值“1个项目入选…”比对，请人工核对"
    description = "预算指标值可以解析，但执行结果没有可比的数字或单位（如“已完成”），提示审核人人工核对。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for row in indicator_rows(ctx):
            rkey = row.key("result")
            target, result = row.text(ctx, "target"), ctx.inputs.get(rkey) if rkey else None
            if rkey and target and result not in (None, "") and ctx.targets(target) and missed(target, result) is None:
                name = row.label(ctx)
                yield self.finding(
                    ctx,
                    rkey,
                    f"“{name}”执行结果“{show(result)}”无法与预算指标值“{target}”比对，请人工核对",
                    expected=target,
                    actual=show(result),
                    indicator=name,
                )


@register
class SatisfactionAgrees(Rule):
    code = "cross-sheet-mismatch"
    severity = Severity.ERROR
    title = "两表数据不一致"
    example = "附件2 满意度执行结果为 90.00%，而基础数据（附件1 满意度计分）为 95.00%，两者应一致"
    description = "附件2 满意度指标的执行结果与基础数据中（附件1 计分用）的满意率须一致（相差不超过0.5个百分点）。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        basic = [
            f"{b.id}.satisfaction"
            for sl in ctx.layout.sheets
            for b in sl.spec.blocks
            if isinstance(b, InputsBlock) and any(i.id == "satisfaction" for i in b.items)
        ]
        if not basic or not isinstance(ctx.inputs.get(basic[0]), Decimal):
            return
        rate = ctx.inputs[basic[0]]
        assert isinstance(rate, Decimal)
        for row in indicator_rows(ctx):
            rkey = row.key("result")
            if rkey is None or row.kinds != {"satisfaction"}:
                continue
            parsed, cands = parse_percent(ctx.inputs.get(rkey))
            if parsed.status is not Status.OK or not cands:
                continue
            written = [c for c in cands if c <= 1] or list(cands)
            if all(abs(c - rate) > RATE_TOLERANCE for c in written):
                yield self.finding(
                    ctx,
                    rkey,
                    f"附件2 满意度执行结果为 {show(written[0], 'percent')}，而基础数据"
                    f"（附件1 满意度计分）为 {show(rate, 'percent')}，两者应一致",
                    expected=show(rate, "percent"),
                    actual=show(written[0], "percent"),
                )
