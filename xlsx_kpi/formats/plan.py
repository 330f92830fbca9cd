"""The layout plan as data: each cell's place, role and formula, per sheet and per workbook, and the identity."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from xlsx_kpi.errors import SpecError
from xlsx_kpi.formats import expr
from xlsx_kpi.formats.spec import InputType, SheetSpec, WorkbookSpec, col_letters

__all__ = ["Approved", "Cell", "Check", "Identity", "Role", "RowGroup", "SheetLayout", "WorkbookLayout"]

Role = Literal["title", "label", "header", "input", "formula", "constant"]


@dataclass(frozen=True)
class Approved:
    """An approved 绩效目标 (from a 绩效目标申报表 export): a row of `group` ("tgt.qty") prefilled and locked."""

    group: str
    name: str
    target: str


@dataclass(frozen=True)
class Identity:
    """Who a workbook is for, and the shape of its indicator groups: recognised again when it comes back.

    rows: (group key, row count) pairs overriding the spec's counts ("tgt.qty", 12); approved: the approved
    targets, in row order within each group. Both travel in the identity sheet and the fingerprint.
    """

    year: int
    unit_name: str = ""
    unit_code: str = ""
    project_name: str = ""
    project_type: str = ""
    contact: str = ""
    rows: tuple[tuple[str, int], ...] = ()
    approved: tuple[Approved, ...] = ()

    def get(self, name: str) -> str:
        value = getattr(self, name)
        return str(value) if value else ""

    def row_count(self, group: str, default: int) -> int:
        """Rows of a group: the count asked for, else the spec's but at least one per approved target."""
        asked = dict(self.rows).get(group)
        return asked if asked is not None else max(default, sum(1 for a in self.approved if a.group == group))

    def approved_in(self, group: str) -> list[Approved]:
        return [a for a in self.approved if a.group == group]


@dataclass(frozen=True)
class RowGroup:
    """An indicator group whose rows the sender sizes and the unit may insert into.

    Row i has keys `<key>.<i>.<part>` for each of `parts` (name, target, result, deviation, and for a
    scoring table max and score). `count` is the number of rows in this layout.
    """

    key: str
    name: str
    sheet: str
    count: int
    parts: tuple[str, ...]
    # Names a sender may use for the group in `--rows` and a targets file (数量指标, 数量, qty).
    aliases: tuple[str, ...] = ()

    def base(self, i: int) -> str:
        return f"{self.key}.{i}"


@dataclass
class Cell:
    """One cell (or merged range) of a sheet."""

    row: int
    col: int
    role: Role
    style: str
    text: str | None = None
    value: Decimal | None = None
    key: str | None = None
    expr: str | None = None
    input_type: InputType | None = None
    max: Decimal | None = None
    min: Decimal | None = None
    options: list[str] | None = None
    last_row: int | None = None
    last_col: int | None = None
    label: str = ""
    min_height: float = 0

    @property
    def a1(self) -> str:
        return f"{col_letters(self.col)}{self.row + 1}"

    @property
    def bottom(self) -> int:
        return self.last_row if self.last_row is not None else self.row

    @property
    def right(self) -> int:
        return self.last_col if self.last_col is not None else self.col

    @property
    def merged(self) -> bool:
        return self.bottom != self.row or self.right != self.col


@dataclass(frozen=True)
class Check:
    """A self-check: `expr` is TRUE when the cell `key` shows a problem the unit must fix."""

    key: str
    expr: str
    message: str


@dataclass
class SheetLayout:
    spec: SheetSpec
    name: str
    cells: list[Cell] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    row_heights: dict[int, float] = field(default_factory=dict)
    repeat_rows: tuple[int, int] | None = None
    last_row: int = 0
    groups: list[RowGroup] = field(default_factory=list)

    @property
    def print_last_col(self) -> int:
        return self.spec.print_last_col


@dataclass
class WorkbookLayout:
    spec: WorkbookSpec
    identity: Identity
    sheets: list[SheetLayout]
    refs: dict[str, expr.CellRef]
    cells: dict[str, Cell]
    readings: dict[str, str]
    # Groups of rows the unit fills (年度绩效指标, free 三级指标 rows), in sheet order.
    groups: list[RowGroup] = field(default_factory=list)
    # Derived once per layout: a layout is immutable after build_layout and reused for many files.
    _order: list[Cell] | None = field(default=None, repr=False, compare=False)
    _excel: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    # Other derived data that rules compute once per layout (e.g. the list of score cells).
    memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def ref(self, name: str) -> expr.CellRef:
        try:
            return self.refs[name]
        except KeyError:
            raise SpecError(f"表种 {self.spec.id}：公式引用了不存在的单元格名 {name!r}") from None

    def formulas(self) -> list[Cell]:
        """Formula cells in an order where every cell comes after the cells it reads."""
        if self._order is None:
            self._order = self._sort_formulas()
        return self._order

    def excel(self, key: str) -> str:
        """The Excel formula text (without "=") the template writes for the formula cell `key`."""
        if key not in self._excel:
            source = self.cells[key].expr
            assert source is not None, key
            self._excel[key] = expr.to_excel(expr.parse(source), self.ref, self.refs[key].sheet)
        return self._excel[key]

    def _sort_formulas(self) -> list[Cell]:
        order: list[Cell] = []
        state: dict[str, int] = {}

        def visit(key: str, chain: tuple[str, ...]) -> None:
            if state.get(key) == 2:
                return
            if state.get(key) == 1:
                raise SpecError(f"表种 {self.spec.id}：公式循环引用 {' -> '.join((*chain, key))}")
            cell = self.cells[key]
            if cell.role != "formula" or cell.expr is None:
                state[key] = 2
                return
            state[key] = 1
            for name in sorted(expr.parse(cell.expr).names()):
                self.ref(name)
                visit(name, (*chain, key))
            state[key] = 2
            order.append(cell)

        for key in self.cells:
            visit(key, ())
        return order

    def checks(self) -> list[Check]:
        return [c for s in self.sheets for c in s.checks]
