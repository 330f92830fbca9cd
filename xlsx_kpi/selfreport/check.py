"""Check the figures a 自评报告 (.docx) states against its workbook and themselves (Decimal, stated tolerances)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from xlsx_kpi.audit.filing import Filing
from xlsx_kpi.audit.findings import Finding
from xlsx_kpi.audit.report import Report
from xlsx_kpi.audit.rules.report_rules import (
    ReportContradiction,
    ReportFigureMismatch,
    ReportIndicatorMismatch,
    ReportScoreMismatch,
)
from xlsx_kpi.audit.values import NUMBER_PATTERN, parse_targets
from xlsx_kpi.errors import SpecError, XlsxKpiError
from xlsx_kpi.formats import expr
from xlsx_kpi.formats.outline import AMOUNT_UNITS, Outline, fmt_figure, fmt_score, half_up, outline_for
from xlsx_kpi.selfreport.statements import (
    Statement,
    StatementReader,
    decimals_of,
    load_patterns,
    read_report,
    same_at,
    shorten,
    without_spaces,
)

if TYPE_CHECKING:
    from xlsx_kpi.selfreport.draft import Draftable


@dataclass
class ReportCheck:
    """What was read from one report and what was found."""

    path: Path
    statements: list[Statement] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def stated(self, quantity: str) -> list[Decimal | str]:
        return [s.value for s in self.statements if s.quantity == quantity]


def _base(st: Statement, unit: str) -> tuple[Decimal, Decimal]:
    """(value, quantum) of an amount in 元 read in `unit`; other kinds as written (rates as percent)."""
    assert isinstance(st.value, Decimal)
    q = Decimal(1).scaleb(-st.decimals)
    if st.kind == "amount":
        scale = AMOUNT_UNITS[unit]
        return st.value * scale, q * scale
    return st.value, q


def _units(st: Statement) -> list[str]:
    if st.kind != "amount":
        return [""]
    return [st.unit] if st.unit else ["元", "百元", "万元"]


def _agree(a: Statement, b: Statement) -> bool:
    if isinstance(a.value, str) or isinstance(b.value, str):
        return a.value == b.value
    for ua in _units(a):
        for ub in _units(b):
            va, qa = _base(a, ua)
            vb, qb = _base(b, ub)
            coarse = max(qa, qb)
            if half_up(va, coarse) == half_up(vb, coarse):
                return True
    return False


def _show(st: Statement) -> str:
    return st.value if isinstance(st.value, str) else f"{st.value:f}{st.unit}"


def contradictions(check: ReportCheck, name: str) -> Iterator[Finding]:
    """The same quantity written with different values: one finding per differing value, at its first place."""
    seen: dict[str, list[Statement]] = {}
    for st in check.statements:
        earlier = seen.setdefault(st.quantity, [])
        if earlier and not any(_agree(st, e) for e in earlier):
            first = earlier[0]
            label = _label(st.quantity)
            yield ReportContradiction.found(
                str(check.path),
                name,
                st.where,
                f"{label}在{first.where}“{first.quote}”中为 {_show(first)}，在{st.where}“{st.quote}”中为 {_show(st)}",
                expected=_show(first),
                actual=_show(st),
                indicator=label,
            )
        earlier.append(st)


def _label(quantity: str) -> str:
    if quantity.startswith("score:"):
        return f"{_label(quantity[6:])}得分"
    if quantity.startswith("l1:"):
        return f"{quantity[3:]}指标得分"
    if quantity == "grade":
        return "自评等级"
    labels = {q.id: q.label for q in load_patterns().patterns.quantities}
    return labels.get(quantity, quantity)


def against_workbook(
    check: ReportCheck, name: str, outline: Outline, d: Draftable, where_of: Callable[[str], str]
) -> Iterator[Finding]:
    """Every statement whose quantity names a workbook figure, compared with the recalculated value."""
    p = load_patterns().patterns
    figures = {q.id: q.figure for q in p.quantities if q.figure}
    scores = {q.id: q.score_figure for q in p.quantities if q.score_figure}
    level1 = {n: (v, k) for (n, _, v), k in zip(d.level1, d.level1_keys, strict=True)}
    reported: set[tuple[str, str]] = set()
    for st in check.statements:
        key = (st.quantity, _show(st))
        if key in reported:
            continue
        if st.quantity.startswith("l1:"):
            entry = next(((v, k) for n, (v, k) in level1.items() if n.startswith(st.quantity[3:])), None)
            if entry is None or entry[0] is None or not isinstance(st.value, Decimal):
                continue
            value, cell = entry
            q = Decimal(1).scaleb(-st.decimals)
            if value is not None and half_up(value, q) != st.value:
                reported.add(key)
                yield ReportScoreMismatch.found(
                    str(check.path),
                    name,
                    st.where,
                    f"“{st.quote}”中{_label(st.quantity)}为 {_show(st)}，"
                    f"工作簿（{where_of(cell)}）重新计算为 {fmt_score(value)}分",
                    expected=f"{fmt_score(value)}分",
                    actual=_show(st),
                    indicator=_label(st.quantity),
                )
            continue
        if st.quantity.startswith("score:"):
            fig_name: str | None = scores.get(st.quantity[6:])
        else:
            fig_name = "grade" if st.quantity == "grade" else figures.get(st.quantity)
        if fig_name is None or fig_name not in d.figures:
            continue
        fig = outline.figures[fig_name]
        want = d.figures[fig_name]
        ok = _matches(st, want, outline.scale)
        if ok:
            continue
        reported.add(key)
        shown = fmt_figure(fig.kind, want) + {"amount": "万元", "score": "分", "count": ""}.get(fig.kind, "")
        rule = ReportScoreMismatch if fig.kind in ("score", "text") else ReportFigureMismatch
        at = where_of(fig.expr)
        yield rule.found(
            str(check.path),
            name,
            st.where,
            f"“{st.quote}”中{fig.label}为 {_show(st)}，工作簿{f'（{at}）' if at else ''}为 {shown}",
            expected=shown,
            actual=_show(st),
            indicator=fig.label,
        )


def _matches(st: Statement, want: Decimal | str, scale: Decimal) -> bool:
    if isinstance(want, str) or isinstance(st.value, str):
        return str(st.value) == str(want)
    q = Decimal(1).scaleb(-st.decimals)
    if st.kind == "rate":
        return same_at(want * 100, st.value, q)
    if st.kind == "amount":
        for unit in _units(st):
            value, quantum = _base(st, unit)
            coarse = max(quantum, scale)  # the workbook holds amounts to its own unit (百元)
            if half_up(value, coarse) == half_up(want, coarse):
                return True
        return False
    return half_up(want, q) == st.value


def indicator_findings(check: ReportCheck, name: str, reader: StatementReader, d: Draftable) -> Iterator[Finding]:
    results = {i.name: i.result for i in d.indicators}
    for ind, written, where, sentence in reader.indicator_statements:
        result = results.get(ind, "")
        said = [t for t in parse_targets(written) if t.op != "range"]
        want = [t for t in parse_targets(result) if t.op != "range"]
        if len(said) != 1 or len(want) != 1 or said[0].unit != want[0].unit:
            continue
        num = re.search(NUMBER_PATTERN, written)
        q = Decimal(1).scaleb(-decimals_of(num[0] if num else "0")) * said[0].scale
        if half_up(want[0].value, q) == half_up(said[0].value, q):
            continue
        yield ReportIndicatorMismatch.found(
            str(check.path),
            name,
            where,
            f"“{shorten(sentence)}”中“{ind}”完成值为 {written}，目标完成情况表的执行结果为 {result}",
            expected=result,
            actual=written,
            indicator=ind,
        )


def check_report(
    path: Path,
    *,
    outline: Outline | None = None,
    draftable: Draftable | None = None,
    where_of: Callable[[str], str] = lambda _: "",
) -> ReportCheck:
    """Read one report; internal checks always, workbook cross-checks when its figures are given."""
    compiled = load_patterns()
    pieces = read_report(path)
    reader = StatementReader(compiled, [i.name for i in draftable.indicators] if draftable else [])
    reader.report_path, reader.report_name = str(path), path.name
    reader.read(pieces)
    check = ReportCheck(path, reader.statements)
    check.findings.extend(reader.calc)
    check.findings.extend(contradictions(check, path.name))
    if draftable is not None and outline is not None:
        check.findings.extend(against_workbook(check, path.name, outline, draftable, where_of))
        check.findings.extend(indicator_findings(check, path.name, reader, draftable))
    return check


def report_alone(path: Path) -> Report:
    """`xlsx-kpi check 报告.docx`: a Report of the internal checks only (error set when unreadable)."""
    report = Report(file=path, workbook_id="自评报告", unit_name="仅核对报告本身")
    try:
        report.findings = check_report(path).findings
    except XlsxKpiError as e:
        report.error = e.render()
    report.sort()
    return report


def matches(title: str, unit: str, project: str, kind: str) -> bool:
    """Whether a report (its name and title) belongs to a workbook of `unit` (and `project`)."""
    if not unit or without_spaces(unit) not in title:
        return False
    if kind == "project":
        return bool(project) and without_spaces(project).strip('“”"') in title.replace("“", "").replace("”", "")
    return "部门" in title or "整体" in title


def pick_report(
    reports: tuple[tuple[Path, str], ...], unit: str, project: str, kind: str, *, match_any: bool = False
) -> Path | None:
    """The report (path, title) that belongs to this workbook: the only one given with --report, or by title."""
    if match_any and len(reports) == 1:
        return reports[0][0]
    for path, title in reports:
        if matches(title, unit, project, kind):
            return path
    return None


def workbook_report_findings(doc: Path, filing: Filing, values: dict[str, expr.Value]) -> list[Finding]:
    """The findings of a unit's report read beside its recalculated workbook (internal checks when no outline)."""
    spec = filing.layout.spec
    try:
        outline: Outline | None = outline_for(spec.id, Path(spec.path).parent if spec.path else None)
    except SpecError:
        outline = None
    from xlsx_kpi.selfreport.draft import gather_from

    d = gather_from(filing, values, outline) if outline is not None else None

    def where_of(text: str) -> str:
        if text in filing.layout.refs:
            sheet, a1 = filing.a1(text)
            return f"{sheet}!{a1}"
        return ""

    return check_report(doc, outline=outline, draftable=d, where_of=where_of).findings


def find_reports(paths: list[Path], explicit: list[Path]) -> list[Path]:
    """Reports given with --report or as arguments, and every .docx in the folders given (Word's ~$ files skipped)."""
    found: list[Path] = list(explicit)
    for p in paths:
        if p.is_dir():
            found += [f for f in sorted(p.rglob("*.docx")) if f.is_file() and not f.name.startswith("~$")]
        elif p.suffix.lower() == ".docx" and not p.name.startswith("~$"):
            found.append(p)
    unique: dict[Path, None] = {}
    for f in found:
        unique.setdefault(f, None)
    return list(unique)


def report_titles(docs: list[Path]) -> tuple[list[tuple[Path, str]], list[Report]]:
    """(report, name + title) for each readable report; an unreadable one becomes a Report with its error."""
    titled: list[tuple[Path, str]] = []
    bad: list[Report] = []
    for doc in docs:
        try:
            pieces = read_report(doc)
        except XlsxKpiError as e:
            bad.append(Report(file=doc, workbook_id="自评报告", error=e.render()))
            continue
        titled.append((doc, without_spaces(doc.stem + "".join(p.text for p in pieces[:3]))))
    return titled, bad


def unmatched_reports(
    titled: list[tuple[Path, str]], reports: list[Report], kinds: Callable[[str], str], match_any: bool
) -> list[Path]:
    """Reports no usable workbook took (they are then checked alone); `kinds` maps a workbook id to its kind."""
    usable = [r for r in reports if r.usable]
    if match_any and usable:
        return []
    return [
        doc
        for doc, title in titled
        if not any(
            pick_report(((doc, title),), r.unit_name, r.project_name, kinds(r.workbook_id)) is not None for r in usable
        )
    ]
