"""The rule machinery: a Context over one recalculated filing, the Rule base class and its registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

from xlsx_kpi.audit.filing import Filing, RawCell
from xlsx_kpi.audit.findings import Finding, Severity
from xlsx_kpi.audit.values import Target, parse_targets
from xlsx_kpi.formats import expr
from xlsx_kpi.formats.expr import ExcelError, Value
from xlsx_kpi.formats.plan import Cell, WorkbookLayout


def show(value: Value | object, fmt: str = "number") -> str:
    """A value as the reviewer reads it: 10.54%, 3.75, 2922, or the text itself."""
    if value is None or value == "":
        return "（空）"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, ExcelError):
        return value.code
    if isinstance(value, Decimal):
        if fmt == "percent":
            return f"{expr.excel_round(value * 100, 2):.2f}%"
        q = expr.excel_round(value, 4).normalize()
        return f"{q:f}"
    return str(value)


_BLANK = RawCell(None)


# Parsed 指标值 texts, shared by every workbook a process checks (bounded for the long-running web app).
_TARGETS: dict[str, list[Target]] = {}
_TARGETS_KEPT = 8192


@dataclass
class Context:
    """Everything a rule may look at for one workbook; rules never read files themselves."""

    filing: Filing
    inputs: dict[str, Value]
    values: dict[str, Value]
    readings: dict[str, dict[str, Value]]
    previous: dict[str, Value] | None = None
    findings: list[Finding] = field(default_factory=list)
    # What several rules derive from this workbook, worked out once (what depends on the layout alone is kept
    # with the layout instead: recalc.once_per_layout).
    memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def layout(self) -> WorkbookLayout:
        return self.filing.layout

    def cell(self, key: str) -> Cell:
        return self.layout.cells[key]

    def raw(self, key: str) -> RawCell:
        return self.filing.cells.get(key) or _BLANK

    def where(self, key: str) -> tuple[str, str]:
        return self.filing.a1(key)

    def fmt(self, key: str) -> str:
        cell = self.layout.cells.get(key)
        if cell is None:
            return "number"
        if cell.input_type == "percent" or cell.style == "f_percent":
            return "percent"
        return "number"

    def targets(self, text: str) -> list[Target]:
        """values.parse_targets(text), parsed once per distinct text in this process (units of a batch type the
        same 指标值 again and again), whichever rules ask; do not modify the list."""
        found = _TARGETS.get(text)
        if found is None:
            if len(_TARGETS) >= _TARGETS_KEPT:
                _TARGETS.clear()
            found = _TARGETS[text] = parse_targets(text)
        return found

    def text(self, key: str) -> str:
        """An input's text, stripped ("" when blank)."""
        v = self.inputs.get(key)
        return v.strip() if isinstance(v, str) else ("" if v is None else show(v))


class Rule:
    """One audit rule: a stable kebab-case code, a severity, a Chinese title; yields Findings, never raises."""

    code: ClassVar[str]
    severity: ClassVar[Severity]
    title: ClassVar[str]
    description: ClassVar[str]
    # A message as the rule words it on a real workbook (shown in docs/RULES.md).
    example: ClassVar[str] = ""

    def check(self, ctx: Context) -> Iterator[Finding]:
        raise NotImplementedError

    def finding(
        self,
        ctx: Context,
        key: str,
        message: str,
        *,
        expected: str = "",
        actual: str = "",
        severity: Severity | None = None,
        explain_key: str | None = None,
        indicator: str | None = None,
    ) -> Finding:
        sheet, a1 = ctx.where(key)
        explanation, explained_by = "", ""
        sev = severity or self.severity
        if explain_key and sev is Severity.WARNING and explain_key in ctx.layout.refs:
            explanation = ctx.text(explain_key)
            place_sheet, place = ctx.where(explain_key)
            if explanation:
                explained_by = place
            # Every 警告 says where its 说明 goes, so the unit can answer it in the workbook.
            label = ctx.layout.cells[explain_key].label
            message += f"（如有理由，请在 {place_sheet}!{place}“{label}”中写明说明）"
        cell = ctx.layout.cells.get(key)
        return Finding(
            code=self.code,
            severity=sev,
            sheet=sheet,
            cell=a1,
            message=message,
            expected=expected,
            actual=actual,
            indicator=indicator if indicator is not None else (cell.label if cell else ""),
            title=self.title,
            explained_by=explained_by,
            explanation=explanation,
        )


REGISTRY: dict[str, type[Rule]] = {}
R = TypeVar("R", bound=type[Rule])


def register(cls: R) -> R:
    """Add a rule class to the registry under its code; codes are stable and unique."""
    if cls.code in REGISTRY:
        raise ValueError(f"duplicate rule code {cls.code}")
    REGISTRY[cls.code] = cls
    return cls


def run_rules(ctx: Context, only: Callable[[str], bool] | None = None) -> list[Finding]:
    """Every registered rule over one context; a rule that breaks becomes a finding, not a crash."""
    out: list[Finding] = []
    for code, cls in REGISTRY.items():
        if only and not only(code):
            continue
        try:
            out.extend(cls().check(ctx))
        except Exception as e:  # noqa: BLE001 - one faulty rule must not lose the other findings
            sheet = ctx.layout.sheets[0].name
            out.append(
                Finding(
                    code="rule-failed",
                    severity=Severity.INFO,
                    sheet=sheet,
                    cell="A1",
                    message=f"规则 {code} 未能完成（{type(e).__name__}），请人工核对",
                    title="规则未完成",
                    expected="规则完成",
                    actual=type(e).__name__,
                )
            )
    return merge_relations(out)


# Rules whose findings state a broken relation at a cell (a total vs its parts, a rate vs its amounts, a
# cross-check between tables): one cell breaking two relations is one problem, reported once.
RELATION_CODES = ("sum-mismatch", "rate-mismatch", "derived-mismatch", "cross-check")


def merge_relations(findings: list[Finding]) -> list[Finding]:
    """One finding per cell for broken relations: the first keeps its code, the message names every relation."""
    first: dict[tuple[str, str], int] = {}
    out: list[Finding] = []
    for f in findings:
        if f.code not in RELATION_CODES:
            out.append(f)
            continue
        at = (f.sheet, f.cell)
        if at not in first:
            first[at] = len(out)
            out.append(f)
            continue
        kept = out[first[at]]
        out[first[at]] = replace(
            kept,
            message=f"{kept.message}；同时{f.message}",
            title=f"{kept.title}、{f.title}" if f.title not in kept.title else kept.title,
            expected=kept.expected if kept.expected == f.expected else f"{kept.expected}；{f.expected}",
        )
    return out


def catalogue() -> str:
    """The rule catalogue (docs/RULES.md), generated from the registry so it cannot drift."""
    lines = [
        "# 审核规则目录",
        "",
        "由 `xlsx-kpi rules` 从规则注册表生成，请勿手工修改。级别：错误（必须改正）、警告（须在工作簿中写明说明）、"
        "提示（供审核人参考）。",
        "",
        "| 代码 | 级别 | 名称 | 说明 | 消息示例 |",
        "|---|---|---|---|---|",
    ]
    for code, cls in REGISTRY.items():
        example = cls.example.replace("|", "\\|")
        lines.append(f"| `{code}` | {cls.severity.value} | {cls.title} | {cls.description} | {example} |")
    return "\n".join(lines) + "\n"
