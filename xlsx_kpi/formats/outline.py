"""The 自评报告 outline (sheets/reports/*.yaml): headings, blocks and the named figures a report states."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from xlsx_kpi.errors import SpecError
from xlsx_kpi.formats import expr
from xlsx_kpi.formats.spec import default_dir

FigureKind = Literal["amount", "rate", "score", "count", "text"]
# The seeds state amounts in 万元 with 2 decimals and rates as percentages with 2 decimals.
WAN = Decimal(10000)
CENT = Decimal("0.01")
AMOUNT_UNITS: dict[str, Decimal] = {"元": Decimal(1), "百元": Decimal(100), "万元": WAN, "亿元": Decimal(100000000)}
FILL_MARK = "【请填写：{}】"
PLACEHOLDER = re.compile(r"\{(\w+)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # built when a report is drafted


class Figure(_Strict):
    """A named figure: an expression over workbook names (the grammar of sheets/*.yaml formulas)."""

    expr: str
    kind: FigureKind
    label: str

    @model_validator(mode="after")
    def _parses(self) -> Figure:
        try:
            expr.parse(self.expr)
        except expr.ExprError as e:
            raise ValueError(f"expr {self.expr!r}: {e}") from None
        return self


class Block(_Strict):
    """Exactly one of the keys: what goes under a heading."""

    text: str | None = None
    needs: list[str] = []
    fill: str | None = None
    field: str | None = None
    prompt: str = ""
    budget_table: str | None = None
    indicators: str | None = None
    scores: str | None = None
    problems: str | None = None
    measures: str | None = None

    @property
    def kind(self) -> str:
        for name in ("text", "fill", "field", "budget_table", "indicators", "scores", "problems", "measures"):
            if getattr(self, name) is not None:
                return name
        raise AssertionError("validated: one key is set")

    @model_validator(mode="after")
    def _one(self) -> Block:
        kinds = [
            n
            for n in ("text", "fill", "field", "budget_table", "indicators", "scores", "problems", "measures")
            if getattr(self, n) is not None
        ]
        if len(kinds) != 1:
            raise ValueError(f"每个块须且只须有一种内容（text/fill/field/表格），现有：{kinds or '无'}")
        return self


class Section(_Strict):
    heading: str
    blocks: list[Block] = []
    sections: list[Section] = []


class KindOutline(_Strict):
    title: str
    sections: list[Section] = Field(min_length=1)
    signature: list[str] = []


class Outline(_Strict):
    """One region's report outline; `figures` are shared by the draft and the checker."""

    id: str
    name: str
    source: str = ""
    workbooks: list[str] = Field(min_length=1)
    amount_unit: Literal["元", "百元", "万元"]
    figures: dict[str, Figure]
    kinds: dict[Literal["department", "project"], KindOutline]
    path: str = ""

    @model_validator(mode="after")
    def _placeholders(self) -> Outline:
        known = set(self.figures) | {"unit", "year", "project"}
        for kind, ko in self.kinds.items():
            texts = [ko.title, *ko.signature]
            stack = list(ko.sections)
            while stack:
                s = stack.pop()
                stack.extend(s.sections)
                for b in s.blocks:
                    texts.append(b.text or "")
                    for n in b.needs:
                        if n not in self.figures:
                            raise ValueError(f"kinds.{kind}: needs 中的 {n!r} 不是 figures 中的名称")
            for t in texts:
                for name in PLACEHOLDER.findall(t):
                    if name not in known:
                        raise ValueError(f"kinds.{kind}: 文字 {t!r} 中的 {{{name}}} 不是 figures 中的名称")
        return self

    @property
    def scale(self) -> Decimal:
        """元 per workbook amount unit."""
        return AMOUNT_UNITS[self.amount_unit]


def outlines_dir(sheets: Path | None = None) -> Path:
    return (sheets or default_dir()) / "reports"


def load_outline(path: Path) -> Outline:
    """Read and validate one outline file; a bad one fails here, naming the file and the key path."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise SpecError(f"无法读取报告提纲 {path}：{e}") from None
    if not isinstance(data, dict):
        raise SpecError(f"报告提纲 {path.name} 应是一个映射（key: value）")
    data["path"] = str(path)
    try:
        return Outline.model_validate(data)
    except ValidationError as e:
        lines = [f"报告提纲 {path.name} 有误："]
        for err in e.errors()[:10]:
            lines.append(f"  {'.'.join(str(p) for p in err['loc'])}: {err['msg']}")
        raise SpecError("\n".join(lines)) from None


def outline_for(workbook_id: str, sheets: Path | None = None, path: Path | None = None) -> Outline:
    """The outline given, or the shipped one that lists this workbook kind."""
    if path is not None:
        outline = load_outline(path)
        if workbook_id not in outline.workbooks:
            raise SpecError(f"报告提纲 {path.name} 不适用于表种 {workbook_id}（适用：{'、'.join(outline.workbooks)}）")
        return outline
    for p in sorted(outlines_dir(sheets).glob("report-outline-*.yaml")):
        outline = load_outline(p)
        if workbook_id in outline.workbooks:
            return outline
    raise SpecError(f"没有适用于表种 {workbook_id} 的自评报告提纲（sheets/reports/report-outline-*.yaml）")


def figure_values(outline: Outline, values: Mapping[str, expr.Value]) -> dict[str, Decimal | str]:
    """Each figure the workbook gives: amounts in 元, rates as fractions; absent when blank or not in it."""
    out: dict[str, Decimal | str] = {}
    for name, fig in outline.figures.items():
        tree = expr.parse(fig.expr)
        if any(n not in values for n in tree.names()):
            continue
        if all(values.get(n) in (None, "") for n in tree.names()):
            continue  # nothing filled in: evaluate() would show a blank reference as 0
        result = expr.evaluate(tree, values.get)
        if isinstance(result, Decimal):
            out[name] = result * outline.scale if fig.kind == "amount" else result
        elif isinstance(result, str) and result.strip() and fig.kind == "text":
            out[name] = result.strip()
    return out


def half_up(x: Decimal, quantum: Decimal) -> Decimal:
    """Round half up to a quantum (0.01, 1, 100...): the one rounding rule of reports."""
    if quantum >= 1:
        return (x / quantum).quantize(Decimal(1), rounding=ROUND_HALF_UP) * quantum
    return x.quantize(quantum, rounding=ROUND_HALF_UP)


def fmt_wan(yuan: Decimal) -> str:
    """An amount in 元 as the seeds write it in 万元: 484.13."""
    return f"{half_up(yuan / WAN, CENT):.2f}"


def fmt_percent(fraction: Decimal) -> str:
    return f"{half_up(fraction * 100, CENT):.2f}%"


def fmt_score(score: Decimal) -> str:
    """95.35, 29, 3.5: two decimals at most, no trailing zeros (as the seeds write scores)."""
    text = f"{half_up(score, CENT):.2f}".rstrip("0").rstrip(".")
    return text or "0"


def fmt_figure(kind: FigureKind, value: Decimal | str) -> str:
    if isinstance(value, str):
        return value
    if kind == "amount":
        return fmt_wan(value)
    if kind == "rate":
        return fmt_percent(value)
    if kind == "score":
        return fmt_score(value)
    return fmt_score(value) if kind == "count" else str(value)
