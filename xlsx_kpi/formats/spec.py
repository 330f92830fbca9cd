"""The table specs as plain typed records: what the tool works with once spec_schema.py has validated sheets/*.yaml.

The records import neither pydantic nor PyYAML, so a catalog unpickled from the cache (catalog.py) costs neither
(~0.08 s of every `check`, issue 14). Each record's fields are those of the pydantic model of the same name in
spec_schema.py, which holds the defaults, the constraints and the Chinese messages (tests/test_spec_records.py
keeps the two in step).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Literal, dataclass_transform

from xlsx_kpi.errors import SpecError

__all__ = [
    "COLUMN_PARTS",
    "Block",
    "Catalog",
    "CheckSpec",
    "ChoiceBlock",
    "ChoiceOption",
    "Column",
    "Defect",
    "FieldItem",
    "FieldsBlock",
    "Format",
    "Grade",
    "GridBlock",
    "GridColumn",
    "GridRow",
    "Identity",
    "Indicator",
    "IndicatorColumns",
    "IndicatorsBlock",
    "InputColumns",
    "InputItem",
    "InputType",
    "InputsBlock",
    "Level1",
    "Level2",
    "Measure",
    "Note",
    "Reading",
    "Record",
    "Rule",
    "SheetSpec",
    "Source",
    "TargetColumns",
    "TargetGroup",
    "TargetLevel1",
    "TargetsBlock",
    "TextBlock",
    "TextField",
    "WorkbookSpec",
    "col_index",
    "col_letters",
    "default_dir",
    "span",
]

COL_RE = re.compile(r"^[A-Z]{1,2}$")
SPAN_RE = re.compile(r"^([A-Z]{1,2})(?::([A-Z]{1,2}))?$")
ID_RE = r"^[a-z_][a-z0-9_]*$"

InputType = Literal["amount", "count", "percent", "score", "text", "longtext", "choice", "tick"]
Identity = Literal["unit_name", "unit_code", "year", "project_name", "project_type"]
Format = Literal["amount", "percent", "score"]


@dataclass_transform(kw_only_default=True, frozen_default=True)
class Record:
    """A frozen record of named fields (its class annotations), compared by value.

    Made by spec_schema.py from a validated model, or directly with keyword arguments (every field without a
    class-level default is required). No code is generated per class (a dataclass costs ~1 ms to define, and
    there are 30), and unpickling only fills the instance's __dict__.
    """

    _fields: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, **fields: Any) -> None:
        names = type(self).field_names()
        unknown = [n for n in fields if n not in names]
        missing = [n for n in names if n not in fields and not hasattr(type(self), n)]
        if unknown or missing:
            raise TypeError(f"{type(self).__name__}: unknown fields {unknown}, missing fields {missing}")
        self.__dict__.update(fields)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The fields in declaration order (base classes first)."""
        if cls.__dict__.get("_fields") is None:
            names: dict[str, None] = {}
            for klass in reversed(cls.__mro__):
                for name, kind in klass.__dict__.get("__annotations__", {}).items():
                    if not str(kind).startswith("ClassVar"):
                        names[name] = None
            cls._fields = tuple(names)
        return cls._fields or ()

    def as_dict(self) -> dict[str, Any]:
        """The fields and their values (not copied), in declaration order."""
        return {name: getattr(self, name) for name in self.field_names()}

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot set {name}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot delete {name}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash((type(self).__name__, *self.as_dict().values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.as_dict().items())})"


def col_index(letters: str) -> int:
    """Column letters to a 0-based index (A -> 0, AA -> 26)."""
    n = 0
    for ch in letters:
        n = n * 26 + (ord(ch) - 64)
    return n - 1


def col_letters(index: int) -> str:
    """0-based column index to letters."""
    s = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        s = chr(65 + rem) + s
    return s


def span(text: str) -> tuple[int, int]:
    """'B' or 'B:D' to a (first, last) 0-based column pair."""
    m = SPAN_RE.match(text)
    if not m:
        raise ValueError(f"列范围应写成 B 或 B:D，而不是 {text!r}")
    first = col_index(m.group(1))
    last = col_index(m.group(2)) if m.group(2) else first
    if last < first:
        raise ValueError(f"列范围 {text} 倒置")
    return first, last


class Source(Record):
    file: str
    lines: tuple[int, int]
    document: str


class Column(Record):
    col: str
    width: float
    print: bool


class Defect(Record):
    where: str
    published: str
    decision: str


class Note(Record):
    """What the transcription inferred, or a published figure the table's own rules contradict."""

    where: str
    published: str
    note: str


class Reading(Record):
    """One reading of a 计分标准: `name` is what the reviewer reads (按比例计分), `label` the rule in words."""

    name: str
    label: str
    expr: str


class Rule(Record):
    """A computable 计分标准: one or more readings of the published text."""

    readings: dict[str, Reading]
    default: str
    note: str

    def name_of(self, reading: str) -> str:
        """The Chinese name of a reading (按计分标准 for the only one)."""
        return self.readings[reading].name.strip() or "按计分标准"


class Measure(Record):
    """A quantitative 年度指标值: the number the 实际完成值 is compared with (at_least, at_most or equal)."""

    direction: Literal["at_least", "at_most", "equal"]
    value: Decimal
    unit: str = ""


class Indicator(Record):
    id: str
    name: str
    points: Decimal
    explanation: str
    standard: str
    target: str
    measure: Measure | None
    min_score: Decimal
    rule: Rule | None
    rate: str | None
    defect: str


class Level2(Record):
    """A 二级指标: fixed indicators from the spec, or `rows` free rows the unit names (三级指标 typed)."""

    id: str
    name: str
    points: Decimal
    indicators: list[Indicator]
    rows: int | None


class IndicatorColumns(Record):
    """Where each part of an indicator row goes: a column (B) or a merged span (G:H); None leaves it out."""

    level1: str | None
    level1_points: str | None
    level2: str | None
    level2_points: str | None
    level3: str
    explanation: str | None
    standard: str | None
    target: str | None
    actual: str | None
    score: str
    basis: str | None
    remark: str | None
    max: str | None
    ref: str | None
    reading: str | None
    l2_total: str | None
    l1_total: str | None
    note: str | None


COLUMN_PARTS = frozenset(IndicatorColumns.field_names())


class Level1(Record):
    id: str
    name: str
    points: Decimal
    groups: list[Level2]
    columns: dict[str, str | None]
    headers: dict[str, str] | None


class IndicatorsBlock(Record):
    """The scoring table: 一级/二级/三级指标, texts, 自评分数, 自评依据, reference scores."""

    type: Literal["indicators"]
    id: str
    columns: IndicatorColumns
    headers: dict[str, str]
    total_label: str
    repeat_header: bool
    section: str | None
    section_cols: str | None
    total_includes: list[str]
    groups: list[Level1]

    def columns_of(self, l1: Level1) -> dict[str, tuple[int, int]]:
        """The parts of this group's rows and their column spans, after the group's overrides."""
        merged: dict[str, str | None] = {**self.columns.as_dict(), **l1.columns}
        return {part: span(cols) for part, cols in merged.items() if cols is not None}

    def indicators(self) -> Iterator[tuple[Level1, Level2, Indicator]]:
        for l1 in self.groups:
            for l2 in l1.groups:
                for ind in l2.indicators:
                    yield l1, l2, ind


class FieldItem(Record):
    """One cell of a fields row: a label (text), an input (key+input) or a formula (key+expr)."""

    cols: str
    text: str | None
    key: str | None
    input: InputType | None
    identity: Identity | None
    expr: str | None
    grade_of: str | None
    align: Literal["left", "center", "right"]
    height: float | None


class FieldsBlock(Record):
    """Label/value rows such as 部门（单位）名称 | value | 预算单位编码 | value."""

    type: Literal["fields"]
    id: str
    rows: list[list[FieldItem]]


class GridColumn(Record):
    id: str
    header: str
    cols: str
    input: InputType | None
    formula: str | None
    rows: list[str] | None
    format: Format | None
    values: dict[str, Decimal | str]
    max: Decimal | str | None
    group: str | None


class GridRow(Record):
    id: str
    label: str
    formula: str | None
    cols: list[str] | None
    input: InputType | None
    format: Format | None


class GridBlock(Record):
    """A rows x columns block of amounts and rates (预算执行情况, 预算结构)."""

    type: Literal["grid"]
    id: str
    section: str
    section_cols: str
    corner: str
    corner_cols: str
    columns: list[GridColumn]
    rows: list[GridRow]
    input: InputType
    note_cols: str | None
    note_header: str


class TextField(Record):
    id: str
    header: str
    cols: str


class TextBlock(Record):
    """Free-text inputs under headers (年度总体目标)."""

    type: Literal["text"]
    id: str
    section: str
    section_cols: str
    fields: list[TextField]
    height: float


class TargetGroup(Record):
    id: str
    name: str
    rows: int


class TargetLevel1(Record):
    id: str
    name: str
    groups: list[TargetGroup]


class TargetColumns(Record):
    level1: str
    level2: str
    name: str
    target: str
    result: str
    deviation: str


class TargetsBlock(Record):
    """年度绩效指标: groups of indicator rows the unit fills (name, 指标值, 执行结果, 偏差原因)."""

    type: Literal["targets"]
    id: str
    section: str
    section_cols: str
    columns: TargetColumns
    headers: dict[str, str]
    groups: list[TargetLevel1]


class ChoiceOption(Record):
    text: str
    cols: str


class ChoiceBlock(Record):
    """A single choice printed as tick boxes (项目类型: exactly one √)."""

    type: Literal["choice"]
    id: str
    label: str
    label_cols: str
    options: list[ChoiceOption]
    identity: Identity | None
    mark: str


class InputItem(Record):
    """One raw figure; `expr` instead of `input` makes it a derived value (e.g. a total)."""

    id: str
    label: str
    unit: str
    input: InputType | None
    expr: str | None
    used_by: str
    options: list[str] | None
    max: Decimal | None
    format: Format | None


class InputColumns(Record):
    seq: str
    label: str
    value: str
    unit: str
    used_by: str


class InputsBlock(Record):
    """基础数据: named raw figures the unit enters for the rule-based reference scores."""

    type: Literal["inputs"]
    id: str
    columns: InputColumns
    headers: dict[str, str]
    items: list[InputItem]


Block = IndicatorsBlock | FieldsBlock | GridBlock | TextBlock | TargetsBlock | ChoiceBlock | InputsBlock


class CheckSpec(Record):
    """A self-check shown in the template: `expr` is TRUE when something is wrong at `cell`."""

    cell: str
    expr: str
    message: str


class SheetSpec(Record):
    """One official table, laid out on one worksheet."""

    id: str
    version: int
    name: str
    sheet: str
    workbook: str
    order: int
    region: str
    source: Source | None
    attachment: str | None
    key: str
    title: str
    subtitle: str | None
    orientation: Literal["landscape", "portrait"]
    columns: list[Column]
    blocks: list[Block]
    checks: list[CheckSpec]
    defects: list[Defect]
    notes: list[Note]
    path: str

    @property
    def print_last_col(self) -> int:
        return max(col_index(c.col) for c in self.columns if c.print)

    @property
    def aux_first_col(self) -> int | None:
        """First column outside the print area (reference scores, status), if any."""
        aux = [col_index(c.col) for c in self.columns if not c.print]
        return min(aux) if aux else None


class Grade(Record):
    grade: str
    min: Decimal


class WorkbookSpec(Record):
    """A kind of workbook (one unit's department or project filing) made of several sheets."""

    id: str
    version: int
    name: str
    kind: Literal["department", "project"]
    region: str
    order: int
    sheets: list[str]
    grades: list[Grade]
    readings: dict[str, str]
    decimals: int
    filename: str
    contact: str
    instructions: list[str]
    path: str


class Catalog(Record):
    """Every spec found in a folder, indexed by id."""

    workbooks: dict[str, WorkbookSpec]
    sheets: dict[str, SheetSpec]

    def workbook(self, wid: str) -> WorkbookSpec:
        try:
            return self.workbooks[wid]
        except KeyError:
            known = "、".join(sorted(self.workbooks))
            raise SpecError(f"没有名为 {wid!r} 的表种，可用：{known}") from None

    def sheets_of(self, wb: WorkbookSpec) -> list[SheetSpec]:
        return [self.sheets[s] for s in wb.sheets]


def default_dir() -> Path:
    """The sheets/ folder shipped with the package (installed as files, as importlib.resources would find it; its
    __path__ directly: importlib.resources.files takes ~5 ms of every command, issue 14)."""
    return Path(next(iter(importlib.import_module("xlsx_kpi.sheets").__path__)))
