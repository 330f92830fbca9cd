"""Rules on 附件1 self-scores: present, numeric, within 0..分值, explained, close to the rule's reference."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from xlsx_kpi.audit.findings import Finding, Severity
from xlsx_kpi.audit.recalc import once_per_layout
from xlsx_kpi.audit.rules.base import Context, Rule, register, show
from xlsx_kpi.audit.rules.targets import missed
from xlsx_kpi.audit.values import Status, parse_number, parse_percent
from xlsx_kpi.formats import expr
from xlsx_kpi.formats.plan import WorkbookLayout
from xlsx_kpi.formats.spec import Indicator, IndicatorsBlock, Measure

# A score is compared at the table's 2 decimals: differences below half a hundredth are equal.
SCORE_TOLERANCE = Decimal("0.005")
PERCENT = re.compile(r"(-?\d+(?:\.\d+)?)\s*%")


@dataclass(frozen=True)
class ScoreCell:
    """A typed score: an indicator's 自评分数 or any other score input (e.g. the 预算执行率 得分)."""

    key: str
    base: str
    name: str
    points: Decimal
    low: Decimal
    indicator: Indicator | None
    # A free row (三级指标 and 分值 typed by the unit): its name and 分值 are read from the row; without a
    # typed 分值 the group's points are only an upper bound (no "full marks" to compare with).
    free: bool = False
    points_known: bool = True


def score_cells(ctx: Context) -> list[ScoreCell]:
    """Every score input of the workbook, with its 分值 and lowest allowed score.

    The cells are worked out once per layout; a free row's typed name and 分值 are filled in once per
    workbook, and a free row left entirely blank (a spare row) is not a score cell.
    """
    found: list[ScoreCell] | None = ctx.memo.get("score_cells")
    if found is None:
        cells = once_per_layout(ctx.layout, "score_cells", lambda layout: list(_score_cells(layout)))
        found = ctx.memo["score_cells"] = [r for sc in cells if (r := _resolve(ctx, sc)) is not None]
    return found


FREE_PARTS = ("name", "target", "result", "max", "score", "deviation")


def _resolve(ctx: Context, sc: ScoreCell) -> ScoreCell | None:
    if not sc.free:
        return sc
    if all(ctx.inputs.get(f"{sc.base}.{p}") in (None, "") for p in FREE_PARTS):
        return None
    points = ctx.inputs.get(f"{sc.base}.max")
    known = isinstance(points, Decimal) and points > 0
    return dataclasses.replace(
        sc,
        name=ctx.text(f"{sc.base}.name") or sc.name,
        points=points if isinstance(points, Decimal) and known else sc.points,
        points_known=known,
    )


def _score_cells(layout: WorkbookLayout) -> Iterator[ScoreCell]:
    free = {g.base(i) for g in layout.groups if "score" in g.parts for i in range(1, g.count + 1)}
    indicators: dict[str, Indicator] = {}
    for sl in layout.sheets:
        for block in sl.spec.blocks:
            if isinstance(block, IndicatorsBlock):
                for _, _, row in block.indicators():
                    indicators[f"{block.id}.{row.id}"] = row
    for key, cell in layout.cells.items():
        if cell.role != "input" or cell.input_type != "score" or not key.endswith(".score"):
            continue
        base = key[: -len(".score")]
        found = indicators.get(base)
        name = found.name if found else (cell.label.removesuffix("得分") if base in free else cell.label)
        low = cell.min if cell.min is not None else Decimal(0)
        yield ScoreCell(key, base, name, cell.max if cell.max is not None else Decimal(0), low, found, base in free)


@register
class ScoreMissing(Rule):
    code = "score-missing"
    severity = Severity.ERROR
    title = "自评分数未填"
    example = "“预算完成率（4分）”未填写自评分数（分值4分）"
    description = "每个三级指标都须填写自评分数。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for sc in score_cells(ctx):
            value = ctx.raw(sc.key).value
            if value is None or (not isinstance(value, Decimal) and parse_number(value).status is Status.BLANK):
                yield self.finding(
                    ctx,
                    sc.key,
                    f"“{sc.name}”未填写自评分数（分值{sc.points}分）",
                    expected=f"{sc.low}～{sc.points}",
                    actual="（空）",
                )


@register
class ScoreNotNumber(Rule):
    code = "score-not-number"
    severity = Severity.ERROR
    title = "自评分数不是数字"
    example = "“重点支出安排率（5分）”的自评分数“满分”不是数字，请填写0至5之间的数字"
    description = "自评分数须为数字；文字、错误值（如 #DIV/0!）或日期都无法计分。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for sc in score_cells(ctx):
            raw = ctx.raw(sc.key)
            if not raw.is_date and (raw.value is None or (isinstance(raw.value, Decimal) and raw.value.is_finite())):
                continue  # blank or a number: nothing to parse
            parsed = parse_number(raw.value)
            if raw.is_date or parsed.status in (Status.TEXT, Status.ERROR, Status.DATE):
                yield self.finding(
                    ctx,
                    sc.key,
                    f"“{sc.name}”的自评分数“{show(raw.value)}”不是数字，请填写{sc.low}至{sc.points}之间的数字",
                    expected=f"{sc.low}～{sc.points}",
                    actual=show(raw.value),
                )


@register
class ScoreTextNumber(Rule):
    code = "score-as-text"
    severity = Severity.INFO
    title = "分数以文字填写"
    example = "“目标明确性（2分）”的自评分数写作“2.5分”（去掉了单位“分”），已按 2.5 计分"
    description = "分数写成文字（如“3.35分”“３.３５”）时按其中的数字计分，并提示审核人。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for sc in score_cells(ctx):
            raw = ctx.raw(sc.key)
            if not isinstance(raw.value, str):
                continue
            parsed = parse_number(raw.value)
            if parsed.status is Status.OK:
                yield self.finding(
                    ctx,
                    sc.key,
                    f"“{sc.name}”的自评分数写作“{raw.value}”（{parsed.note}），已按 {show(parsed.value)} 计分",
                    actual=str(raw.value),
                    expected=show(parsed.value),
                )


@register
class ScoreOutOfRange(Rule):
    code = "score-above-max"
    severity = Severity.ERROR
    title = "自评分数超出分值"
    example = "“绩效目标合理性（2分）”自评 3 分，超过本项分值 2 分"
    description = "自评分数须在该行下限（一般为 0，加减分项可为负）至分值之间。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for sc in score_cells(ctx):
            v = ctx.inputs.get(sc.key)
            if not isinstance(v, Decimal):
                continue
            if v > sc.points + SCORE_TOLERANCE:
                yield self.finding(
                    ctx,
                    sc.key,
                    f"“{sc.name}”自评 {show(v)} 分，超过本项分值 {sc.points} 分",
                    expected=f"≤{sc.points}",
                    actual=show(v),
                )
            elif v < sc.low - SCORE_TOLERANCE:
                what = "为负数" if sc.low == 0 else f"低于本项下限 {sc.low} 分"
                yield self.finding(
                    ctx,
                    sc.key,
                    f"“{sc.name}”自评分数{what}（{show(v)}）",
                    expected=f"{sc.low}～{sc.points}",
                    actual=show(v),
                )


@register
class BasisMissing(Rule):
    code = "basis-missing"
    severity = Severity.ERROR
    title = "扣分未写依据"
    example = "“目标明确性（2分）”自评 1.5 分，低于满分 2 分，但未填写自评依据及说明"
    description = "自评分数低于满分时，须在“自评依据及说明”中写明扣分依据（加减分项除外）。"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for sc in score_cells(ctx):
            basis = f"{sc.base}.basis" if f"{sc.base}.basis" in ctx.layout.refs else f"{sc.base}.deviation"
            # A 加减分项 (scores below 0 allowed) has no "full marks" to fall short of.
            if basis not in ctx.layout.refs or sc.low < 0 or not sc.points_known:
                continue
            v = ctx.inputs.get(sc.key)
            # A free row that missed its 年度指标值 already gets target-missed at the same 偏差原因 cell.
            if sc.free and missed(ctx.text(f"{sc.base}.target"), ctx.inputs.get(f"{sc.base}.result")):
                continue
            if isinstance(v, Decimal) and 0 <= v < sc.points - SCORE_TOLERANCE and not ctx.text(basis):
                yield self.finding(
                    ctx,
                    basis,
                    f"“{sc.name}”自评 {show(v)} 分，低于满分 {sc.points} 分，但未填写自评依据及说明",
                    expected="扣分依据",
                    actual="（空）",
                )


@register
class ScoreVsReference(Rule):
    code = "score-vs-reference"
    severity = Severity.WARNING
    title = "自评分数与参考得分不一致"
    example = (
        "“在职人员控制率（5分）”自评 3.35 分；计分标准有 3 种读法：按比例计分"
        " 3.75 分；按超编比例扣分 3.35 分；按超编比例扣分（超编率不取整） 3"
        ".33 分（模板参考得分按“按比例计分”）；自评分数与“按超编比例扣分”一致"
    )
    description = (
        "有计算公式的计分标准，按基础数据和附件2算出参考得分；自评分数与模板采用的读法相差 0.005 分以上时警告。"
        "计分标准有几种读法（如在职人员控制率的按比例计分与按超编比例扣分）且得分不同时，逐一列出每种读法的中文名称和得分，"
        "并指出自评分数与哪种一致。单位在“与参考得分不一致的说明”列写明理由后，视为已说明。"
    )

    def check(self, ctx: Context) -> Iterator[Finding]:
        for sc in score_cells(ctx):
            key = f"{sc.base}.ref"
            score = ctx.inputs.get(sc.key)
            if key not in ctx.layout.refs or not isinstance(score, Decimal):
                continue
            ref = ctx.values.get(key)
            rule = sc.indicator.rule if sc.indicator else None
            computed = {
                k: v for k, v in ctx.readings.get(sc.base, {}).items() if isinstance(v, Decimal) and rule is not None
            }
            if isinstance(ref, Decimal) and abs(score - ref) <= SCORE_TOLERANCE:
                continue  # the reading the template uses (the region's choice) agrees
            if not isinstance(ref, Decimal) and len(set(computed.values())) <= 1:
                continue  # nothing to compare with: reference-unavailable tells the reviewer
            note = explanation_key(ctx, sc.base)
            if rule is None or len(set(computed.values())) <= 1:
                assert isinstance(ref, Decimal)
                message = f"“{sc.name}”自评 {show(score)} 分，按计分标准参考得分为 {show(ref)} 分"
                expected = show(ref)
            else:
                chosen = ctx.layout.readings.get(sc.base) or rule.default
                listed = "；".join(
                    f"{rule.name_of(k)} {show(v)} 分" if isinstance(v, Decimal) else f"{rule.name_of(k)} 无法计算"
                    for k, v in ctx.readings.get(sc.base, {}).items()
                )
                same = [rule.name_of(k) for k, v in computed.items() if abs(v - score) <= SCORE_TOLERANCE]
                verdict = f"自评分数与“{'”“'.join(same)}”一致" if same else "自评分数与任何一种读法都不一致"
                message = (
                    f"“{sc.name}”自评 {show(score)} 分；计分标准有 {len(ctx.readings.get(sc.base, {}))} 种读法："
                    f"{listed}（模板参考得分按“{rule.name_of(chosen)}”）；{verdict}"
                )
                expected = (
                    show(ref) if isinstance(ref, Decimal) else "；".join(sorted({show(v) for v in computed.values()}))
                )
            yield self.finding(ctx, sc.key, message, expected=expected, actual=show(score), explain_key=note)


def explanation_key(ctx: Context, base: str) -> str | None:
    """Where a unit explains a score that differs from its reference: the note column, else the basis."""
    for suffix in (".note", ".basis", ".deviation"):
        if base + suffix in ctx.layout.refs:
            return base + suffix
    return None


@register
class ReferenceUnavailable(Rule):
    code = "reference-unavailable"
    severity = Severity.INFO
    title = "参考得分无法计算"
    example = (
        "未填写 23 项基础数据（本年度“三公经费”预算数、…），以下 15 个指标的参"
        "考得分无法计算，请人工核对其自评分数：“三公经费”变动率（5分）、…"
    )
    description = (
        "计分标准所需的基础数据未填时，每张表只提示一次：列出未填的数据和因此无法核对的指标（基数为 0 的另提示一次）。"
    )

    def check(self, ctx: Context) -> Iterator[Finding]:
        # sheet of the blank inputs -> (blank input keys in first-seen order, blocked indicator names)
        missing: dict[str, tuple[dict[str, None], list[str]]] = {}
        zero_base: list[ScoreCell] = []
        for sc in score_cells(ctx):
            key = f"{sc.base}.ref"
            cell = ctx.layout.cells.get(key)
            if cell is None or cell.expr is None or not isinstance(ctx.inputs.get(sc.key), Decimal):
                continue
            if ctx.values.get(key) != "":
                continue
            if any(isinstance(v, Decimal) for v in ctx.readings.get(sc.base, {}).values()):
                continue  # another reading computes: score-vs-reference lists them
            needed = sorted(n for n in expr.parse(cell.expr).names() if ctx.layout.cells[n].role == "input")
            blank = [n for n in needed if ctx.inputs.get(n) in (None, "")]
            if not blank:
                zero_base.append(sc)
                continue
            keys, names = missing.setdefault(ctx.where(blank[0])[0], ({}, []))
            keys.update(dict.fromkeys(blank))
            names.append(sc.name)
        for keys, names in missing.values():
            first = min(keys, key=lambda k: (ctx.layout.refs[k].row, ctx.layout.refs[k].col))
            labels = [ctx.layout.cells[k].label for k in keys]
            yield self.finding(
                ctx,
                first,
                f"未填写 {len(labels)} 项基础数据（{'、'.join(labels)}），以下 {len(names)} 个指标的参考得分无法计算，"
                f"请人工核对其自评分数：{'、'.join(names)}",
                expected="填写基础数据（自动核对自评分数）",
                actual=f"{len(labels)} 项未填",
                indicator=f"{len(names)} 个指标",
            )
        if zero_base:
            names = [sc.name for sc in zero_base]
            yield self.finding(
                ctx,
                zero_base[0].key,
                f"以下 {len(names)} 个指标的基数为 0 或数据不适用于计分公式，参考得分无法计算，请人工核对自评分数："
                f"{'、'.join(names)}",
                expected="人工核对",
                actual="基数为0",
                indicator=f"{len(names)} 个指标",
            )


@register
class MeasureVsScore(Rule):
    code = "measure-vs-score"
    severity = Severity.WARNING
    title = "得分与指标完成情况不符"
    example = "“群众满意度”实际完成值 81.00%、年度指标值“90%”，参考得分 9 分，自评 10 分"
    description = (
        "定量指标（规格中有 measure，或单位填写的年度指标值是一个数，如“≥90%”）：实际完成值达到年度指标值得满分，"
        "否则按 完成值÷指标值×分值（“≤”类指标按 "
        "指标值÷完成值×分值）计算参考得分；得分与之相差 0.005 分以上时警告，在偏差原因中说明后视为已说明。"
    )

    def check(self, ctx: Context) -> Iterator[Finding]:
        for sc in score_cells(ctx):
            score = ctx.inputs.get(sc.key)
            found = measure_of(ctx, sc)
            if found is None or not isinstance(score, Decimal) or not sc.points_known:
                continue
            m, target_text = found
            raw = ctx.inputs.get(f"{sc.base}.actual" if f"{sc.base}.actual" in ctx.layout.refs else f"{sc.base}.result")
            if isinstance(raw, str):
                raw = raw.strip().lstrip("=＝")
            actual = measured_value(raw, m.unit, m.value)
            if actual is None or actual <= 0:
                continue
            if m.direction == "at_least":
                ratio = Decimal(1) if actual >= m.value else actual / m.value
            elif m.direction == "at_most":
                ratio = Decimal(1) if actual <= m.value else m.value / actual
            else:
                ratio = Decimal(1) if actual == m.value else min(actual / m.value, m.value / actual)
            ref = expr.excel_round(sc.points * ratio, 2)
            if abs(score - ref) > SCORE_TOLERANCE:
                shown = show(actual, "percent" if m.unit == "%" else "number")
                yield self.finding(
                    ctx,
                    sc.key,
                    f"“{sc.name}”实际完成值 {shown}、年度指标值“{target_text}”，"
                    f"参考得分 {show(ref)} 分，自评 {show(score)} 分",
                    expected=show(ref),
                    actual=show(score),
                    explain_key=explanation_key(ctx, sc.base),
                )


def measure_of(ctx: Context, sc: ScoreCell) -> tuple[Measure, str] | None:
    """The measure of a quantitative indicator and its printed 年度指标值.

    From the spec for a fixed indicator; for a free row, from the typed 年度指标值 when it is one number
    (≥、＞ at least; ≤、＜ at most; a bare or “=” target is one to reach, so at least).
    """
    if sc.indicator is not None:
        m = sc.indicator.measure
        return (m, sc.indicator.target) if m is not None else None
    if not sc.free:
        return None
    text = ctx.text(f"{sc.base}.target")
    pieces = ctx.targets(text)
    if len(pieces) != 1 or pieces[0].op == "range":
        return None
    t = pieces[0]
    direction: Literal["at_least", "at_most"] = "at_most" if t.op in ("<=", "<") else "at_least"
    return Measure(direction=direction, value=t.value, unit="%" if t.unit == "%" else ""), text


def measured_value(raw: object, unit: str, target: Decimal) -> Decimal | None:
    """The 实际完成值 as a number comparable to the target (a percent read as a fraction)."""
    if unit == "%":
        parsed, cands = parse_percent(raw)
        if not cands:
            return None
        # A bare 90 against a 0.9 target means 90 %: take the reading nearer the target.
        return min(cands, key=lambda c: abs(c - target))
    parsed_n = parse_number(raw)
    return parsed_n.value if parsed_n.status is Status.OK else None


@register
class BasisRateMismatch(Rule):
    code = "basis-rate-mismatch"
    severity = Severity.ERROR
    title = "依据中的比率与重算不符"
    example = "“财政拨款收入预决算差异率”的依据中写 -1.37%，按基础数据重算为 -1.38%"
    description = (
        "指标在规格中声明了比率（rate）时，自评依据/评分依据文字中写出的最后一个百分数须与按基础数据重算的比率一致"
        "（按写出的小数位比较）。"
    )

    def check(self, ctx: Context) -> Iterator[Finding]:
        for sc in score_cells(ctx):
            ind = sc.indicator
            basis = f"{sc.base}.basis"
            if ind is None or not ind.rate or basis not in ctx.layout.refs:
                continue
            rate = ctx.values.get(ind.rate)
            written = PERCENT.findall(ctx.text(basis).replace("％", "%").replace("－", "-").replace("−", "-"))
            if not isinstance(rate, Decimal) or not written:
                continue
            text = written[-1]
            stated = Decimal(text) / 100
            decimals = max(2, len(text.split(".")[1]) + 2 if "." in text else 2)
            if expr.excel_round(rate, decimals) != expr.excel_round(stated, decimals):
                yield self.finding(
                    ctx,
                    basis,
                    f"“{sc.name}”的依据中写 {text}%，按基础数据重算为 "
                    f"{show(rate, 'percent')}（{ctx.layout.cells[ind.rate].label}）",
                    expected=show(rate, "percent"),
                    actual=f"{text}%",
                )
