"""Validate one sheets/*.yaml spec (pydantic models: defaults, constraints, Chinese messages) into spec.py's records.

Only a spec that is not in the cache is validated (catalog.py), so `check` with a warm cache imports neither
pydantic nor PyYAML (issue 14). Each model here has the fields of the record of the same name in spec.py.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from xlsx_kpi.errors import SpecError
from xlsx_kpi.formats import expr, spec
from xlsx_kpi.formats.spec import COL_RE, ID_RE, Format, Identity, InputType, span

__all__ = ["MODELS", "load_file", "to_record"]


class Strict(BaseModel):
    """Base: unknown keys in a spec are mistakes, so they fail at load time."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Strict):
    file: str
    lines: tuple[int, int]
    document: str


class Column(Strict):
    col: str
    width: float = Field(gt=0, le=120)
    print: bool = True


class Defect(Strict):
    where: str
    published: str
    decision: str


class Note(Strict):
    """What the transcription inferred, or a published figure the table's own rules contradict.

    `where` names a cell key (fund.total.budget), a block or a seed line range; `published` quotes the
    seed; `note` says what we made of it. Defects of indicator rows go in `defects` instead.
    """

    where: str
    published: str = ""
    note: str


class Reading(Strict):
    """One reading of a 计分标准: `name` is what the reviewer reads (按比例计分), `label` the rule in words."""

    name: str = ""
    label: str
    expr: str

    @field_validator("expr")
    @classmethod
    def _parses(cls, v: str) -> str:
        expr.parse(v)
        return v


class Rule(Strict):
    """A computable 计分标准: one or more readings of the published text."""

    readings: dict[str, Reading]
    default: str
    note: str = ""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # `rule: {expr: ..., label: ...}` is the common unambiguous case.
        if isinstance(data, dict) and "expr" in data:
            data = dict(data)
            reading = {"expr": data.pop("expr"), "label": data.pop("label", "")}
            data.setdefault("readings", {"default": reading})
            data.setdefault("default", "default")
        return data

    @model_validator(mode="after")
    def _default_exists(self) -> Rule:
        if self.default not in self.readings:
            raise ValueError(f"default 口径 {self.default!r} 不在 readings 中")
        unnamed = [k for k, r in self.readings.items() if not r.name.strip()]
        if len(self.readings) > 1 and unnamed:
            raise ValueError(f"有多种读法时每种读法须写中文 name（审核消息中显示），缺：{'、'.join(unnamed)}")
        return self


class Measure(Strict):
    """A quantitative 年度指标值: the number the 实际完成值 is compared with (by a check rule, not a formula).

    `direction` says which side meets the target: at_least (≥, more is better), at_most (≤, less is
    better) or equal. `value` is the target as a number, a percentage as a fraction (90% -> 0.9).
    """

    direction: Literal["at_least", "at_most", "equal"]
    value: Decimal
    unit: str = ""


class Indicator(Strict):
    id: str = Field(pattern=ID_RE)
    name: str
    points: Decimal = Field(gt=0)
    explanation: str = ""
    standard: str = ""
    # The printed 年度指标值 (needs a `target` column) and, when it is a number, how to compare it.
    target: str = ""
    measure: Measure | None = None
    # Lowest score allowed; below 0 for a 加减分项 whose deductions are typed as negative scores.
    min_score: Decimal = Decimal(0)
    rule: Rule | None = None
    # The name of a derived rate the 自评依据/评分依据 text states ("…=89.25%"); a check compares the two.
    rate: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]*(\.[a-z0-9_]+)*$")
    defect: str = ""

    @model_validator(mode="after")
    def _range(self) -> Indicator:
        if self.min_score >= self.points:
            raise ValueError(f"min_score {self.min_score} 须小于分值 {self.points}")
        if self.measure and not self.target:
            raise ValueError("有 measure 的指标须写出 target（年度指标值）")
        return self


class Level2(Strict):
    """A 二级指标: fixed indicators from the spec, or `rows` free rows the unit names (三级指标 typed).

    A free row has a typed 三级指标, 年度指标值, 实际完成值, 分值, 得分 and 偏差原因; its count can be
    changed when a template is generated (`template --rows`) and grows when the unit inserts rows.
    """

    id: str = Field(pattern=ID_RE)
    name: str
    points: Decimal = Field(gt=0)
    indicators: list[Indicator] = []
    rows: int | None = Field(default=None, ge=1, le=200)

    @model_validator(mode="after")
    def _rows_or_indicators(self) -> Level2:
        if bool(self.indicators) == (self.rows is not None):
            raise ValueError("二级指标须写 indicators（固定指标）或 rows（空行数），二者取其一")
        return self


class IndicatorColumns(Strict):
    """Where each part of an indicator row goes: a column (B) or a merged span (G:H); None leaves it out.

    Printed parts: level1/level2/level3 names, their printed 分值 (level1_points, level2_points, and `max`
    for the 三级指标 when it lies in the print area), explanation, standard, target (年度指标值), actual
    (实际完成值, typed), score (typed), basis and remark (typed). Parts outside the print area (print:
    false columns) are the helpers: max, ref (reference score), reading, l2_total, l1_total, note.
    """

    level1: str | None = None
    level1_points: str | None = None
    level2: str | None = None
    level2_points: str | None = None
    level3: str
    explanation: str | None = None
    standard: str | None = None
    target: str | None = None
    actual: str | None = None
    score: str
    basis: str | None = None
    remark: str | None = None
    max: str | None = None
    ref: str | None = None
    reading: str | None = None
    l2_total: str | None = None
    l1_total: str | None = None
    note: str | None = None

    @field_validator("*")
    @classmethod
    def _span(cls, v: str | None) -> str | None:
        if v is not None:
            span(v)
        return v


COLUMN_PARTS = frozenset(IndicatorColumns.model_fields)


class Level1(Strict):
    id: str = Field(pattern=ID_RE)
    name: str
    points: Decimal = Field(gt=0)
    groups: list[Level2] = Field(min_length=1)
    # A group laid out differently from the rest of the table: parts moved or left out (None) ...
    columns: dict[str, str | None] = {}
    # ... and, when given, its own header row printed above it (block headers overridden by these).
    headers: dict[str, str] | None = None

    @field_validator("columns")
    @classmethod
    def _parts(cls, v: dict[str, str | None]) -> dict[str, str | None]:
        for part, cols in v.items():
            if part not in COLUMN_PARTS:
                raise ValueError(f"未知的列 {part!r}，可用：{'、'.join(sorted(COLUMN_PARTS))}")
            if cols is not None:
                span(cols)
        if ("level3" in v and v["level3"] is None) or ("score" in v and v["score"] is None):
            raise ValueError("level3 和 score 列不能省略")
        return v


class IndicatorsBlock(Strict):
    """The scoring table: 一级/二级/三级指标, texts, 自评分数, 自评依据, reference scores."""

    type: Literal["indicators"]
    id: str = Field(pattern=ID_RE)
    columns: IndicatorColumns
    headers: dict[str, str]
    total_label: str = "合计"
    repeat_header: bool = True
    # A printed section label left of the table (绩效指标), spanning its header and rows.
    section: str | None = None
    section_cols: str | None = None
    # Score cells laid out earlier on the same sheet that count in the total (预算执行率 得分).
    total_includes: list[str] = []
    groups: list[Level1] = Field(min_length=1)


class FieldItem(Strict):
    """One cell of a fields row: a label (text), an input (key+input) or a formula (key+expr)."""

    cols: str
    text: str | None = None
    key: str | None = Field(default=None, pattern=ID_RE)
    input: InputType | None = None
    identity: Identity | None = None
    expr: str | None = None
    grade_of: str | None = None
    align: Literal["left", "center", "right"] = "center"
    # Minimum height of the row in points (room for a long typed text such as 年度整体绩效目标).
    height: float | None = Field(default=None, gt=0, le=409)


class FieldsBlock(Strict):
    """Label/value rows such as 部门（单位）名称 | value | 预算单位编码 | value."""

    type: Literal["fields"]
    id: str = Field(pattern=ID_RE)
    rows: list[list[FieldItem]]


class GridColumn(Strict):
    id: str = Field(pattern=ID_RE)
    header: str
    cols: str
    input: InputType | None = None
    formula: str | None = None
    rows: list[str] | None = None
    format: Format | None = None
    # Fixed cells by row id: a number is a named constant formulas can read (分值 10), text is printed
    # as is ("—", or "" for an empty cell). They take precedence over formulas and inputs.
    values: dict[str, Decimal | str] = {}
    # Upper bound of score inputs in this column: a number, or the id of a column whose constant in the
    # same row is the bound (得分 capped by 分值).
    max: Decimal | str | None = None
    # Consecutive columns with the same group get one merged header above their own (按资金来源).
    group: str | None = None


class GridRow(Strict):
    id: str = Field(pattern=ID_RE)
    label: str
    formula: str | None = None
    cols: list[str] | None = None
    input: InputType | None = None
    format: Format | None = None


class GridBlock(Strict):
    """A rows x columns block of amounts and rates (预算执行情况, 预算结构)."""

    type: Literal["grid"]
    id: str = Field(pattern=ID_RE)
    section: str
    section_cols: str
    corner: str
    corner_cols: str
    columns: list[GridColumn] = Field(min_length=1)
    rows: list[GridRow] = Field(min_length=1)
    input: InputType = "amount"
    # An unprinted input column where the unit explains a warning on that row (e.g. 执行额 above 预算额).
    note_cols: str | None = None
    note_header: str = "情况说明（不打印）"

    @model_validator(mode="after")
    def _ids(self) -> GridBlock:
        rows = {r.id for r in self.rows}
        cols = {c.id for c in self.columns}
        for c in self.columns:
            for rid in [*(c.rows or []), *c.values]:
                if rid not in rows:
                    raise ValueError(f"列 {c.id} 引用了不存在的行 {rid!r}")
            if isinstance(c.max, str) and c.max not in cols:
                raise ValueError(f"列 {c.id} 的 max 引用了不存在的列 {c.max!r}")
        for r in self.rows:
            for cid in r.cols or []:
                if cid not in cols:
                    raise ValueError(f"行 {r.id} 引用了不存在的列 {cid!r}")
        return self


class TextField(Strict):
    id: str = Field(pattern=ID_RE)
    header: str
    cols: str


class TextBlock(Strict):
    """Free-text inputs under headers (年度总体目标)."""

    type: Literal["text"]
    id: str = Field(pattern=ID_RE)
    section: str
    section_cols: str
    fields: list[TextField] = Field(min_length=1)
    height: float = 90


class TargetGroup(Strict):
    id: str = Field(pattern=ID_RE)
    name: str
    # Rows printed by default; `template --rows` and approved targets may ask for more (up to 200).
    rows: int = Field(ge=1, le=50)


class TargetLevel1(Strict):
    id: str = Field(pattern=ID_RE)
    name: str
    groups: list[TargetGroup] = Field(min_length=1)


class TargetColumns(Strict):
    level1: str
    level2: str
    name: str
    target: str
    result: str
    deviation: str


class TargetsBlock(Strict):
    """年度绩效指标: groups of indicator rows the unit fills (name, 指标值, 执行结果, 偏差原因)."""

    type: Literal["targets"]
    id: str = Field(pattern=ID_RE)
    section: str
    section_cols: str
    columns: TargetColumns
    headers: dict[str, str]
    groups: list[TargetLevel1] = Field(min_length=1)


class ChoiceOption(Strict):
    text: str
    cols: str


class ChoiceBlock(Strict):
    """A single choice printed as tick boxes (项目类型: exactly one √)."""

    type: Literal["choice"]
    id: str = Field(pattern=ID_RE)
    label: str
    label_cols: str
    options: list[ChoiceOption] = Field(min_length=2)
    identity: Identity | None = None
    mark: str = "√"


class InputItem(Strict):
    """One raw figure; `expr` instead of `input` makes it a derived value (e.g. a total)."""

    id: str = Field(pattern=ID_RE)
    label: str
    unit: str = ""
    input: InputType | None = None
    expr: str | None = None
    used_by: str = ""
    options: list[str] | None = None
    max: Decimal | None = None
    # Number format of a derived value (`expr`): amounts by default, "percent" for a rate.
    format: Format | None = None


class InputColumns(Strict):
    seq: str
    label: str
    value: str
    unit: str
    used_by: str


class InputsBlock(Strict):
    """基础数据: named raw figures the unit enters for the rule-based reference scores."""

    type: Literal["inputs"]
    id: str = Field(pattern=ID_RE)
    columns: InputColumns
    headers: dict[str, str]
    items: list[InputItem] = Field(min_length=1)


Block = Annotated[
    IndicatorsBlock | FieldsBlock | GridBlock | TextBlock | TargetsBlock | ChoiceBlock | InputsBlock,
    Field(discriminator="type"),
]


class CheckSpec(Strict):
    """A self-check shown in the template: `expr` is TRUE when something is wrong at `cell`."""

    cell: str
    expr: str
    message: str

    @field_validator("expr")
    @classmethod
    def _parses(cls, v: str) -> str:
        expr.parse(v)
        return v


class SheetSpec(Strict):
    """One official table, laid out on one worksheet."""

    id: str
    version: int = Field(ge=1)
    name: str
    sheet: str
    workbook: str
    order: int
    region: str
    source: Source | None = None
    attachment: str | None = None
    key: str = Field(pattern=ID_RE)
    title: str
    subtitle: str | None = None
    # Printed page: A4 in this orientation, scaled to the page width.
    orientation: Literal["landscape", "portrait"] = "landscape"
    columns: list[Column] = Field(min_length=1)
    blocks: list[Block] = Field(min_length=1)
    checks: list[CheckSpec] = []
    defects: list[Defect] = []
    notes: list[Note] = []
    path: str = ""

    @model_validator(mode="after")
    def _columns(self) -> SheetSpec:
        for c in self.columns:
            if not COL_RE.match(c.col):
                raise ValueError(f"列名 {c.col!r} 无效")
        if len(self.sheet) > 31 or any(ch in self.sheet for ch in "[]:*?/\\"):
            raise ValueError(f"工作表名 {self.sheet!r} 不合 Excel 规则")
        return self


class Grade(Strict):
    grade: str
    min: Decimal


class WorkbookSpec(Strict):
    """A kind of workbook (one unit's department or project filing) made of several sheets."""

    id: str
    version: int = Field(ge=1)
    name: str
    kind: Literal["department", "project"]
    region: str
    # Listing order; `--kind` picks the first workbook of its kind (lowest order, then file name).
    order: int = 0
    sheets: list[str] = Field(min_length=1)
    grades: list[Grade] = Field(min_length=1)
    readings: dict[str, str] = {}
    decimals: int = Field(default=2, ge=0, le=4)
    filename: str
    contact: str = "请按下发通知的要求报送"
    instructions: list[str] = Field(min_length=1)
    path: str = ""

    @field_validator("grades")
    @classmethod
    def _descending(cls, v: list[Grade]) -> list[Grade]:
        mins = [g.min for g in v]
        if mins != sorted(mins, reverse=True):
            raise ValueError("grades 须按 min 从高到低排列")
        return v


def _format_error(path: Path, err: ValidationError) -> str:
    lines = [f"规格文件 {path.name} 有误："]
    for e in err.errors()[:10]:
        loc = ".".join(str(p) for p in e["loc"])
        lines.append(f"  {loc}: {e['msg']}")
    return "\n".join(lines)


# libyaml's safe loader (same constructors, C scanner) when PyYAML was built with it: load_specs, which every
# command pays at start, then takes 0.28 s instead of 0.55 s.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_file(path: Path) -> spec.WorkbookSpec | spec.SheetSpec:
    """Parse one YAML spec into its record; a bad spec fails here, naming the file and the key path."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except (OSError, yaml.YAMLError) as e:
        raise SpecError(f"无法读取规格文件 {path}：{e}") from None
    if not isinstance(data, dict):
        raise SpecError(f"规格文件 {path.name} 应是一个映射（key: value）")
    data["path"] = str(path)
    model: type[WorkbookSpec] | type[SheetSpec] = WorkbookSpec if "sheets" in data else SheetSpec
    try:
        validated = model.model_validate(data)
    except ValidationError as e:
        raise SpecError(_format_error(path, e)) from None
    record = to_record(validated)
    assert isinstance(record, spec.WorkbookSpec | spec.SheetSpec)
    return record


# Every model and the record (spec.py) it becomes: the same name, the same fields.
MODELS: dict[type[Strict], type[spec.Record]] = {
    model: getattr(spec, model.__name__) for model in Strict.__subclasses__()
}


def to_record(value: Any) -> Any:
    """A validated model as spec.py's record of the same name, recursively (lists, tuples, dicts); other values as
    they are."""
    if isinstance(value, Strict):
        fields = {name: to_record(getattr(value, name)) for name in type(value).model_fields}
        return MODELS[type(value)](**fields)
    if isinstance(value, list):
        return [to_record(v) for v in value]
    if isinstance(value, tuple):
        return tuple(to_record(v) for v in value)
    if isinstance(value, dict):
        return {k: to_record(v) for k, v in value.items()}
    return value
