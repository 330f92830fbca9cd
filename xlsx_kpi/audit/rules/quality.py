"""Indicator-quality rules on every 绩效指标 row: placeholders, direction, completeness, measurability, consistency."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from xlsx_kpi.audit.findings import Finding, Severity
from xlsx_kpi.audit.recalc import once_per_layout
from xlsx_kpi.audit.rules.base import Context, Rule, register, show
from xlsx_kpi.audit.rules.indicators import IndicatorRow, full_marks, indicator_rows, quality_data
from xlsx_kpi.audit.values import Target
from xlsx_kpi.formats.plan import WorkbookLayout
from xlsx_kpi.formats.spec import GridBlock, TextBlock

YEAR = re.compile(r"((?:19|20)\d{2})\s*年")
DIGIT = re.compile(r"\d")
FIGURE = re.compile(r"\d+(?:\.\d+)?")
# A number followed by neither a unit nor a digit: "10" or "≥10" alone.
BARE_NUMBER = re.compile(r"^[=＝≥≤><≧≦]*\s*\d+(?:\.\d+)?$")
# Text that is a value rather than an indicator name: "=10人", "≥30家", "100%".
VALUE_LIKE = re.compile(
    r"^\s*(?:[=＝≥≤><≧≦]|不低于|不少于|不高于|不超过)?\s*\d+(?:\.\d+)?\s*(?:%|％|[^\d\s]{1,3})?\s*$"
)


def _squash(text: str) -> str:
    return re.sub(r"[\s。.，,]", "", text)


def placeholder(text: str) -> bool:
    data = quality_data()
    bare = _squash(text)
    return bool(text) and (
        bare in data["placeholders"] or any(bare.startswith(p) for p in data["placeholder_prefixes"]) or bare == ""
    )


def no_deviation(text: str) -> bool:
    """“无偏差”, “无”, “无偏差，保质保量完成”: a deviation text that claims there is none."""
    bare = _squash(text)
    words = quality_data()["no_deviation_words"]
    return bare in words or any(len(w) > 1 and bare.startswith(w) for w in words)


def explain_key(ctx: Context, row: IndicatorRow) -> str | None:
    """Where a 警告 on the row counts as explained: its 差异说明, else a 偏差原因 that gives a reason."""
    if row.key("note"):
        return row.key("note")
    key = row.key("deviation")
    return key if key and not no_deviation(ctx.text(key)) else None


CLAUSE = re.compile(r"[^，,。；;：:\n]+")


def clauses_with(text: str, words: list[str]) -> list[str]:
    """The clauses of a long text that hold one of the words (what a message quotes)."""
    return [c.strip() for c in CLAUSE.findall(text) if any(w in c for w in words)]


def _name(ctx: Context, row: IndicatorRow) -> str:
    return row.label(ctx)


@register
class IndicatorPlaceholder(Rule):
    code = "indicator-placeholder"
    severity = Severity.ERROR
    title = "绩效指标以占位符代替数值"
    example = "“助推企业开展创新驱动活动个数”的执行结果写作“待定”，没有写出指标值"
    description = "预算指标值或执行结果只写了 *、/、—、待定、无、略、“详见…”等占位符，没有写出指标值。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        words = {"target": "预算指标值", "result": "执行结果"}
        for row in indicator_rows(ctx):
            for part, what in words.items():
                key = row.key(part)
                text = row.text(ctx, part)
                if key and text and placeholder(text):
                    yield self.finding(
                        ctx,
                        key,
                        f"“{_name(ctx, row)}”的{what}写作“{text}”，没有写出指标值",
                        expected=f"写明{what}（数字和单位）",
                        actual=text,
                        indicator=_name(ctx, row),
                    )


@register
class CostNotUpperBound(Rule):
    code = "cost-not-upper-bound"
    severity = Severity.ERROR
    title = "成本指标不是上限"
    example = "成本指标“预算数”的预算指标值“≥100万元”是下限，成本指标应写上限（≤）"
    description = "成本指标的预算指标值应是上限（≤），如“≤80万元”；写成“≥”“不低于”即方向相反。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        upper = set(quality_data()["upper_bound"])
        for row in indicator_rows(ctx):
            key, text = row.key("target"), row.text(ctx, "target")
            if not key or "cost" not in row.kinds or len(row.kinds) > 1 or not text:
                continue
            pieces = ctx.targets(text)
            if pieces and all(p.op in (">=", ">") for p in pieces):
                yield self.finding(
                    ctx,
                    key,
                    f"成本指标“{_name(ctx, row)}”的预算指标值“{text}”是下限，成本指标应写上限（≤）",
                    expected="≤" + _amount(pieces[0]),
                    actual=text,
                    indicator=_name(ctx, row),
                )
            elif pieces and not any(p.op in upper for p in pieces) and any(p.op == "=" for p in pieces):
                yield self.finding(
                    ctx,
                    key,
                    f"成本指标“{_name(ctx, row)}”的预算指标值“{text}”没有写成上限（≤），无法判断是否超支",
                    expected="≤" + _amount(pieces[0]),
                    actual=text,
                    indicator=_name(ctx, row),
                    severity=Severity.WARNING,
                    explain_key=explain_key(ctx, row),
                )


def _amount(t: Target) -> str:
    mantissa = (t.value / t.scale).normalize() if t.scale else t.value
    prefix = {Decimal(10000): "万", Decimal(100000000): "亿", Decimal(1000): "千", Decimal(100): "百"}.get(t.scale, "")
    return f"{mantissa:f}{prefix}{t.unit}"


@register
class RateTargetAbove100(Rule):
    code = "rate-target-above-100"
    severity = Severity.ERROR
    title = "比率指标值超过100%"
    example = "“企业及群众满意度”是比率，预算指标值“≥120%”超过100%"
    description = "满意度、达标率、完成率等比率的预算指标值不能超过100%（如“≥120%”）。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        data = quality_data()
        ceiling = Decimal(str(data["rate_ceiling"]))
        for row in indicator_rows(ctx):
            key, text = row.key("target"), row.text(ctx, "target")
            if not key or not text:
                continue
            names = row.text(ctx, "name") + text + ("满意度" if "satisfaction" in row.kinds else "")
            if not any(w in names for w in data["rate_words"]):
                continue
            over = [p for p in ctx.targets(text) if p.unit == "%" and p.value > ceiling]
            if over:
                yield self.finding(
                    ctx,
                    key,
                    f"“{_name(ctx, row)}”是比率，预算指标值“{text}”超过100%",
                    expected="≤100%",
                    actual=text,
                    indicator=_name(ctx, row),
                )


@register
class TimeOutsideYear(Rule):
    code = "time-outside-year"
    severity = Severity.WARNING
    title = "时效指标不在预算年度内"
    example = "时效指标“完成时限”的预算指标值“2022年6月30日前”不在预算年度 2021 年内；如有原因请在偏差原因中说明"
    description = "时效指标的日期应在预算年度内（如“2021年12月底前”）；不在年度内的，须在偏差原因中说明。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        year = ctx.filing.meta.get("year", "")
        if not year.isdigit():
            return
        for row in indicator_rows(ctx):
            key, text = row.key("target"), row.text(ctx, "target")
            if not key or "time" not in row.kinds or len(row.kinds) > 1 or not text:
                continue
            years = [y for y in YEAR.findall(text) if y != year]
            if years:
                yield self.finding(
                    ctx,
                    key,
                    f"时效指标“{_name(ctx, row)}”的预算指标值“{text}”不在预算年度 {year} 年内；"
                    "如有原因请在偏差原因中说明",
                    expected=f"{year}年内的日期",
                    actual=text,
                    indicator=_name(ctx, row),
                    explain_key=explain_key(ctx, row),
                )


@register
class IndicatorKindMissing(Rule):
    code = "indicator-kind-missing"
    severity = Severity.ERROR
    title = "缺少某类绩效指标"
    example = "没有填写任何满意度指标；满意度指标至少应有一项"
    description = "单位填写的绩效指标中，产出指标的数量、质量、时效、成本指标以及效益指标、满意度指标各须至少一项。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        data = quality_data()
        typed = [r for r in indicator_rows(ctx) if r.typed("name")]
        if not typed or not any(r.filled(ctx) for r in typed):
            return  # no table the unit names its own indicators in, or an empty one (text-missing says so)
        for kind in data["required_kinds"]:
            rows = [r for r in typed if kind in r.kinds]
            if not rows or any(r.filled(ctx) for r in rows):
                continue
            what = data["kinds"][kind]["name"]
            yield self.finding(
                ctx,
                rows[0].anchor(),
                f"没有填写任何{what}；{what}至少应有一项",
                expected=f"至少1项{what}",
                actual="0项",
                indicator=what,
            )


@register
class IndicatorRowShifted(Rule):
    code = "indicator-row-shifted"
    severity = Severity.ERROR
    title = "绩效指标行错位"
    example = (
        "数量指标第3行：只填写了偏差原因“无偏差”，三级指标、预算指标值、执行结果都是空"
        "的；请按列填写三级指标、预算指标值、执行结果"
    )
    description = (
        "一行绩效指标只填了偏差原因，或内容错列（三级指标中写的是数值、执行结果写“无偏差”）；整行作为一个问题提示。"
    )

    def check(self, ctx: Context) -> Iterator[Finding]:
        for row in indicator_rows(ctx):
            name, target, result = (row.text(ctx, p) for p in ("name", "target", "result"))
            deviation = row.text(ctx, "deviation") if row.typed("deviation") else ""
            problem = ""
            if row.typed("name") and deviation and not (name or target or result):
                problem = f"只填写了偏差原因“{deviation}”，三级指标、预算指标值、执行结果都是空的"
            elif row.typed("name") and name and VALUE_LIKE.match(name):
                problem = f"三级指标写的是数值“{name}”，内容可能错列"
            elif row.typed("result") and result and no_deviation(result) and not placeholder(result):
                problem = f"执行结果写作“{result}”，这是偏差情况，内容可能错列"
            if problem:
                yield self.finding(
                    ctx,
                    row.anchor(),
                    f"{row.level2.splitlines()[0]}第{row.index}行：{problem}；请按列填写三级指标、预算指标值、执行结果",
                    expected="三级指标、预算指标值、执行结果各在其列",
                    actual="、".join(t for t in (name, target, result, deviation) if t) or "（空）",
                    indicator=name,
                )


@register
class TargetNotMeasurable(Rule):
    code = "target-not-measurable"
    severity = Severity.WARNING
    title = "指标值不可衡量"
    example = "“助推企业开展创新驱动活动个数”的预算指标值“3”只有数字没有单位"
    description = (
        "数量、质量指标的预算指标值应是可核对的数字和单位：没有数字、数字没有单位、或一格中写了多个数字和句子"
        "（应写在执行结果中）时警告，可在偏差原因中说明。"
    )

    def check(self, ctx: Context) -> Iterator[Finding]:
        data = quality_data()
        for row in indicator_rows(ctx):
            key, text = row.key("target"), row.text(ctx, "target")
            if not key or not text or placeholder(text) or not (row.kinds & {"quantity", "quality"}):
                continue
            if len(row.kinds) > 1:
                continue
            problem = ""
            if not DIGIT.search(text):
                problem = "没有数字，无法核对是否完成"
            elif BARE_NUMBER.match(text.strip()):
                problem = "只有数字没有单位"
            elif len(FIGURE.findall(text)) > data["max_target_figures"] or len(text) > data["max_target_chars"]:
                problem = "一格中写了多个数字或整句说明，应拆成几个指标，说明写在执行结果中"
            if problem:
                yield self.finding(
                    ctx,
                    key,
                    f"“{_name(ctx, row)}”的预算指标值“{text}”{problem}",
                    expected="一个数字加单位，如“≥10个”",
                    actual=text,
                    indicator=_name(ctx, row),
                    explain_key=explain_key(ctx, row),
                )


def _goal_texts(ctx: Context) -> list[tuple[str, str]]:
    """(header, text) of the 年度总体目标 and its result."""
    return [(header, ctx.text(key)) for header, key in once_per_layout(ctx.layout, "goal_fields", _goal_fields)]


def _goal_fields(layout: WorkbookLayout) -> list[tuple[str, str]]:
    out = []
    for sl in layout.sheets:
        for block in sl.spec.blocks:
            if isinstance(block, TextBlock):
                for f in block.fields:
                    if not f.id.startswith("deviation"):
                        out.append((f.header, f"{block.id}.{f.id}"))
    return out


@dataclass(frozen=True)
class Quantity:
    """A figure in running text: 125 万 人次."""

    number: Decimal
    magnitude: str
    unit: str
    text: str


@functools.lru_cache(maxsize=1)
def _quantity_pattern() -> re.Pattern[str]:
    """A number, a magnitude (万, 亿) and a unit from the rules data file; built once, not per text."""
    data = quality_data()
    units = sorted(data["quantity_units"], key=len, reverse=True)
    mags = "".join(m for m in data["magnitudes"] if m)
    return re.compile(rf"(\d+(?:\.\d+)?)\s*([{mags}]?)\s*({'|'.join(map(re.escape, units))})")


@functools.lru_cache(maxsize=4096)
def quantities(text: str) -> tuple[Quantity, ...]:
    """Every number-with-unit in a text (“覆盖125万人次” -> 125 万 人次); money units split as 万 + 元.

    Once per distinct text: the same 目标 and 指标值 come back in every file of a batch."""
    out = []
    for m in _quantity_pattern().finditer(text):
        number, magnitude, unit = Decimal(m[1]), m[2], m[3]
        if unit in ("万元", "亿元"):
            magnitude, unit = magnitude + unit[0], "元"
        out.append(Quantity(number, magnitude, unit, m[0]))
    return tuple(out)


@register
class MagnitudeMismatch(Rule):
    code = "magnitude-mismatch"
    severity = Severity.WARNING
    title = "同一数量前后量级不一致"
    example = "“科普活动覆盖人次”写“=125人次”，而预算总体目标写“125万人次”：同一数量量级不同"
    description = (
        "年度总体目标中的数量与绩效指标中的同一数量数字相同、单位相同而量级不同（如“125万人次”与“=125人次”），"
        "或成本指标的执行金额超过本表的执行额合计。"
    )

    def check(self, ctx: Context) -> Iterator[Finding]:
        stated = [(header, q) for header, text in _goal_texts(ctx) for q in quantities(text)]
        spent = _table_spending(ctx)
        for row in indicator_rows(ctx):
            for part in ("target", "result"):
                key, text = row.key(part), row.text(ctx, part)
                if not key or not text:
                    continue
                for q in quantities(text):
                    other = next(
                        (
                            (h, g)
                            for h, g in stated
                            if g.unit == q.unit and g.number == q.number and g.magnitude != q.magnitude
                        ),
                        None,
                    )
                    if other:
                        header, g = other
                        yield self.finding(
                            ctx,
                            key,
                            f"“{_name(ctx, row)}”写“{text}”，而{header}写“{g.text}”：同一数量量级不同",
                            expected=g.text,
                            actual=q.text,
                            indicator=_name(ctx, row),
                            explain_key=explain_key(ctx, row),
                        )
                        break
            if spent is None or "cost" not in row.kinds or len(row.kinds) > 1:
                continue
            key, text = row.key("result"), row.text(ctx, "result")
            pieces = [t for t in ctx.targets(text) if t.unit == "元"] if key and text else []
            label, amount = spent
            if key and pieces and pieces[0].value > amount * Decimal("1.005"):
                yield self.finding(
                    ctx,
                    key,
                    f"成本指标“{_name(ctx, row)}”的执行结果“{text}”超过本表{label} {show(amount / 10000)}万元",
                    expected=f"≤{show(amount / 10000)}万元",
                    actual=_amount(pieces[0]),
                    indicator=_name(ctx, row),
                    explain_key=explain_key(ctx, row),
                )


def _table_spending(ctx: Context) -> tuple[str, Decimal] | None:
    """The workbook's total 执行额 in 元 (from the first grid with a total row and an actual column)."""
    for key, multiplier in once_per_layout(ctx.layout, "spending_cells", _spending_cells):
        value = ctx.values.get(key)
        if isinstance(value, Decimal):
            return "执行额合计", value * multiplier
    return None


def _spending_cells(layout: WorkbookLayout) -> list[tuple[str, int]]:
    """(key, multiplier to 元) of each grid's total 执行额 whose header names its unit, in sheet order."""
    units: dict[str, int] = quality_data()["amount_units"]
    out = []
    for sl in layout.sheets:
        for block in sl.spec.blocks:
            if not isinstance(block, GridBlock):
                continue
            key = f"{block.id}.total.actual"
            cell = layout.cells.get(key)
            if cell is None:
                continue
            header = cell.label + block.section
            unit = max((u for u in units if u in header), key=len, default="")
            if unit:
                out.append((key, units[unit]))
    return out


@register
class ResultReadsNotDone(Rule):
    code = "result-reads-not-done"
    severity = Severity.WARNING
    title = "执行结果读来未完成"
    example = "“3.3推进广州科学馆建设”的执行结果写“广州科学馆基本完成征地拆迁工作”（基本完成），读来尚未完成，却得满分"
    description = (
        "执行结果写“预计”“将于…完成”“正在”“建设中”“未完成”“部分”等，却得满分或偏差原因写“无偏差”时警告，"
        "引用原话；在偏差原因中说明后视为已说明。"
    )

    def check(self, ctx: Context) -> Iterator[Finding]:
        words = quality_data()["not_done_words"]
        for row in indicator_rows(ctx):
            key, result = row.key("result"), row.text(ctx, "result")
            if not key or not result:
                continue
            found = [w for w in words if w in result]
            if not found:
                continue
            marks = full_marks(ctx, row)
            deviation = row.text(ctx, "deviation") if row.typed("deviation") else ""
            claim = ""
            if marks:
                claim = "却得满分"
            elif deviation and no_deviation(deviation):
                claim = f"偏差原因却写“{deviation}”"
            elif not deviation and marks is None:
                claim = "偏差原因未填"
            if not claim:
                continue
            quoted = "；".join(f"“{c}”" for c in clauses_with(result, found))
            yield self.finding(
                ctx,
                key,
                f"“{_name(ctx, row)}”的执行结果写{quoted}（{'、'.join(found)}），读来尚未完成，{claim}",
                expected="已完成的结果，或说明偏差",
                actual=result,
                indicator=_name(ctx, row),
                explain_key=explain_key(ctx, row),
            )


LIST_SEPARATORS = re.compile(r"[、，,；;]")


@register
class CountVsListedNames(Rule):
    code = "count-vs-listed-names"
    severity = Severity.WARNING
    title = "执行结果列出的名称少于指标数"
    example = "“助推企业开展创新驱动活动个数”的执行结果列出 2 个名称（资阳化工、雁江电子），少于预算指标值“≥3家”"
    description = (
        "数量指标的执行结果没有写数字，而是列出名称（用顿号分隔），列出的个数少于预算指标值（如指标“≥5家”，"
        "结果只列出3家企业名称）时警告。"
    )

    def check(self, ctx: Context) -> Iterator[Finding]:
        for row in indicator_rows(ctx):
            key, target, result = row.key("result"), row.text(ctx, "target"), row.text(ctx, "result")
            if not key or not target or not result or DIGIT.search(result) or "quantity" not in row.kinds:
                continue
            names = [n.strip() for n in LIST_SEPARATORS.split(result.rstrip("。.")) if n.strip()]
            wanted = [t for t in ctx.targets(target) if t.op in ("=", ">=", ">") and t.unit not in ("", "%")]
            if len(names) < 2 or not wanted or len(names) >= wanted[0].value:
                continue
            yield self.finding(
                ctx,
                key,
                f"“{_name(ctx, row)}”的执行结果列出 {len(names)} 个名称（{'、'.join(names)}），"
                f"少于预算指标值“{target}”",
                expected=target,
                actual=f"列出{len(names)}个",
                indicator=_name(ctx, row),
                explain_key=explain_key(ctx, row),
            )
