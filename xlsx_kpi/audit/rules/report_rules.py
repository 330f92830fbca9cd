"""Rules on a unit's 自评报告 (.docx): its figures against the workbook, and against themselves.

They are registered like every rule (stable codes, the catalogue in docs/RULES.md) but look at a report,
not at a workbook: `check(ctx)` yields nothing, and xlsx_kpi.selfreport (check, statements) runs them with
`found()`.
"""

from __future__ import annotations

from collections.abc import Iterator

from xlsx_kpi.audit.findings import Finding, Severity
from xlsx_kpi.audit.rules.base import Context, Rule, register


class ReportRule(Rule):
    """A rule over a report's text: findings name the report file and the paragraph (第N段 / 表N第R行)."""

    def check(self, ctx: Context) -> Iterator[Finding]:
        return iter(())

    @classmethod
    def found(
        cls, file: str, name: str, where: str, message: str, *, expected: str, actual: str, indicator: str
    ) -> Finding:
        return Finding(
            code=cls.code,
            severity=cls.severity,
            sheet=name,
            cell=where,
            message=message,
            expected=expected,
            actual=actual,
            indicator=indicator,
            title=cls.title,
            file=file,
        )


@register
class ReportFigureMismatch(ReportRule):
    code = "report-figure-mismatch"
    severity = Severity.ERROR
    title = "报告金额或比率与工作簿不符"
    example = "“2021年，市科协财政拨款总收入360.08万元。”中预算数为 360.08万元，工作簿（附件2!C5）为 368.08万元"
    description = (
        "自评报告中写明的预算数、执行数、结转结余额（元、百元、万元均可，小数位可不同：按两者中较粗的精度四舍五入后"
        "相等即视为一致）、预算执行率、结转结余率、“三公经费”、人数、满意度等，与工作簿重新计算的数值不符。"
    )


@register
class ReportScoreMismatch(ReportRule):
    code = "report-score-mismatch"
    severity = Severity.ERROR
    title = "报告得分或等级与工作簿不符"
    example = "“自评得分合计96.35分”中自评得分合计为 96.35分，工作簿（附件1!F32）重新计算为 95.35分"
    description = (
        "自评报告中写明的一级指标得分、自评得分合计（按报告所写小数位四舍五入比较）或自评等级，与工作簿重新计算的不符。"
    )


@register
class ReportIndicatorMismatch(ReportRule):
    code = "report-indicator-mismatch"
    severity = Severity.ERROR
    title = "报告指标完成值与目标完成情况表不符"
    example = "“科普活动场次完成15场”中“科普活动场次”完成值为 15场，目标完成情况表的执行结果为 12场"
    description = (
        "自评报告中某项绩效指标的完成值（指标名称后写“完成”“实际完成值”“执行结果”等），与目标完成情况表的执行结果不符。"
    )


@register
class ReportContradiction(ReportRule):
    code = "report-contradiction"
    severity = Severity.ERROR
    title = "报告中同一数字前后不一致"
    example = (
        "预算数（财政拨款收入）在第23段“2021年，市科协财政拨款总收入360.08万元。”中为 360.08万元，在第38段"
        "“预算完成率=（预算完成数/预算数）×100%=(484.13/ 368.08）×100%=131.53%”中为 368.08"
    )
    description = "自评报告在不同位置写同一个量（如财政拨款收入/预算数、结转结余额、自评得分）时数值不同。"


@register
class ReportCalcMismatch(ReportRule):
    code = "report-calc-mismatch"
    severity = Severity.ERROR
    title = "报告中的算式结果不对"
    example = (
        "“结转结余率=结转结余总额/执行数×100%=29.22/484.13×100%=6.14%”中 "
        "29.22/484.13×100% 重新计算为 6.04%，报告写作 6.14%"
    )
    description = (
        "自评报告中写出的计算（如“a/b×100%=c%”“较上年减少x万元，下降y%”“合计A万元，其中B万元、C万元”）重新计算后"
        "不成立：结果按所写小数位四舍五入（或截断）后须等于所写数字；合计与分项之差不得超过各分项的舍入误差。"
    )
