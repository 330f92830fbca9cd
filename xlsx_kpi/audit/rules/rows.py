"""Rules on indicator rows as a whole: rows the tool could not read, approved targets changed or deleted."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from decimal import Decimal

from xlsx_kpi.audit.findings import Finding, Severity
from xlsx_kpi.audit.rules.base import Context, Rule, register, show
from xlsx_kpi.audit.rules.indicators import indicator_rows
from xlsx_kpi.formats.plan import Approved, RowGroup

_SPACE = re.compile(r"\s+")


def same_text(a: str, b: str) -> bool:
    """Equal once full-width forms and spaces are ignored (“≥ 30 个” is “≥30个”)."""
    return _SPACE.sub("", unicodedata.normalize("NFKC", a)) == _SPACE.sub("", unicodedata.normalize("NFKC", b))


def approved_rows(ctx: Context) -> Iterator[tuple[Approved, RowGroup, int, str | None]]:
    """(approved target, its group, its place among the group's approved rows, base of the row carrying it).

    A row carries an approved target when its 三级指标 is the approved name (wherever the row now is); None
    when no row does.
    """
    groups = {g.key: g for g in ctx.layout.groups}
    places: dict[str, int] = {}
    for a in ctx.layout.identity.approved:
        g = groups.get(a.group)
        if g is None:
            continue
        places[a.group] = places.get(a.group, 0) + 1
        base = next(
            (g.base(i) for i in range(1, g.count + 1) if same_text(ctx.text(f"{g.base(i)}.name"), a.name)), None
        )
        yield a, g, places[a.group], base


@register
class RowUnread(Rule):
    code = "row-unread"
    severity = Severity.ERROR
    title = "此行未被读取"
    example = "附件2 数量指标与质量指标之间插入的一行写了“科技志愿服务活动场次｜≥12场”：此行未被读取"
    description = (
        "指标表内（两组指标之间、表头与第一行之间、最后一行之下）填写了内容，但这一行不属于任何指标行，工具无法读取。"
        "请把内容移到该组指标的行中（在组内插入行即可）。"
    )

    def check(self, ctx: Context) -> Iterator[Finding]:
        for cell, text in ctx.filing.stray:
            sheet, _, a1 = cell.address.rpartition("!")
            yield Finding(
                code=self.code,
                severity=self.severity,
                sheet=sheet,
                cell=a1,
                message=f"此行未被读取：“{text}”不在任何一组指标的行中，请在对应指标组内插入行后填写",
                expected="在指标组内的行中填写",
                actual=text,
                title=self.title,
            )


@register
class RowsInserted(Rule):
    code = "rows-inserted"
    severity = Severity.INFO
    title = "指标组内插入了行"
    example = "数量指标共 12 行（模板 8 行，单位插入了 4 行），已全部读取和审核"
    description = (
        "单位在一组指标的行中间插入（或删除）了行；该组按文件中的实际行数读取，每行都已审核，提示审核人留意新增的指标。"
    )

    def check(self, ctx: Context) -> Iterator[Finding]:
        groups = {g.key: g for g in ctx.layout.groups}
        for key, n in ctx.filing.inserted.items():
            g = groups[key]
            what = f"插入了 {n} 行" if n > 0 else f"删除了 {-n} 行"
            names = [ctx.text(f"{g.base(i)}.name") for i in range(1, g.count + 1)]
            listed = "、".join(x for x in names if x) or "（均未填写）"
            yield self.finding(
                ctx,
                f"{g.base(1)}.name",
                f"{g.name}共 {g.count} 行（模板 {g.count - n} 行，单位{what}），已全部读取和审核：{listed}",
                expected=f"{g.count - n} 行",
                actual=f"{g.count} 行",
                indicator=g.name,
            )


@register
class ApprovedTargetChanged(Rule):
    code = "target-changed"
    severity = Severity.ERROR
    title = "预算指标值与批复不符"
    example = "“服务科研项目个数”的预算指标值填报为“≥300个”，批复值为“≥350个”"
    description = (
        "模板按批复的绩效目标（template --targets）预填并锁定了三级指标和预算指标值；填报的预算指标值须与批复值一致"
        "（忽略空格和全角半角差异）。"
    )

    def check(self, ctx: Context) -> Iterator[Finding]:
        for a, _, _, base in approved_rows(ctx):
            if base is None:
                continue
            typed = ctx.text(f"{base}.target")
            if not same_text(typed, a.target):
                yield self.finding(
                    ctx,
                    f"{base}.target",
                    f"“{a.name}”的预算指标值填报为“{typed or '（空）'}”，批复值为“{a.target}”，不得修改，请改回批复值",
                    expected=a.target,
                    actual=typed or "（空）",
                    indicator=a.name,
                )


@register
class ApprovedTargetDeleted(Rule):
    code = "target-deleted"
    severity = Severity.ERROR
    title = "批复的绩效指标被删除"
    example = "批复的绩效指标“科技供需对接服务量”（预算指标值“≥1000单”）在数量指标中找不到"
    description = "批复的绩效目标（template --targets）中的三级指标，在本组指标中找不到（被删除或改名）。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for a, g, place, base in approved_rows(ctx):
            if base is not None:
                continue
            at = g.base(min(place, g.count))
            yield self.finding(
                ctx,
                f"{at}.name",
                f"批复的绩效指标“{a.name}”（预算指标值“{a.target}”）在{g.name}中找不到，已被删除或改名，请恢复",
                expected=a.name,
                actual=ctx.text(f"{at}.name") or "（空）",
                indicator=a.name,
            )


@register
class PointsMissing(Rule):
    code = "points-missing"
    severity = Severity.ERROR
    title = "指标分值未填"
    example = "全国通用表产出指标一行填写了三级指标“送教下乡次数”和得分 7，分值却为空"
    description = "单位自行填写三级指标的评分表（如全国通用的整体支出绩效自评表）中，已填写的指标行须填写分值。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for row in indicator_rows(ctx):
            key = row.key("max")
            if key is None or isinstance(ctx.inputs.get(key), Decimal):
                continue
            name = row.text(ctx, "name")
            score_key = row.key("score")
            score = ctx.inputs.get(score_key) if score_key else None
            if name or score not in (None, ""):
                yield self.finding(
                    ctx,
                    key,
                    f"“{row.label(ctx)}”未填写分值（得分 {show(score)}）",
                    expected="分值",
                    actual=show(ctx.inputs.get(key)),
                )
