"""Rule on the year: the year the sheet titles show must be the year of the hidden identity."""

from __future__ import annotations

import re
from collections.abc import Iterator

from xlsx_kpi.audit.findings import Finding, Severity
from xlsx_kpi.audit.rules.base import Context, Rule, register

_YEAR = re.compile(r"(?<![0-9])([0-9]{4})\s*年")


@register
class YearMismatch(Rule):
    code = "year-mismatch"
    severity = Severity.ERROR
    title = "标题年度与模板标识不符"
    description = (
        "表格标题中印出的年度（如“2021年度”）须与模板隐藏标识中的年度一致；不一致说明标识被改动，"
        "报送会被记到错误的年度。"
    )
    example = "标题“2021年度市本级部门整体支出绩效自评计分表”中的年度与模板标识的年度 2022 不一致，请核对报送的年度"

    def check(self, ctx: Context) -> Iterator[Finding]:
        year = ctx.filing.meta.get("year", "")
        for where, shown in ctx.filing.titles.items():
            years = set(_YEAR.findall(shown))
            if years and years != {year}:
                sheet, _, a1 = where.rpartition("!")
                yield Finding(
                    code=self.code,
                    severity=self.severity,
                    sheet=sheet,
                    cell=a1,
                    message=f"标题“{shown.strip()}”中的年度与模板标识的年度 {year} 不一致，请核对报送的年度",
                    expected=f"{year}年度",
                    actual="、".join(f"{y}年度" for y in sorted(years)),
                    indicator="标题",
                    title=self.title,
                )
