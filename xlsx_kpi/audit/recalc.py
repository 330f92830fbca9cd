"""Recompute every derived value of a workbook from its inputs, in Decimal; no I/O."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from xlsx_kpi.formats import expr
from xlsx_kpi.formats.plan import Check, WorkbookLayout
from xlsx_kpi.formats.spec import IndicatorsBlock

Values = dict[str, expr.Value]
T = TypeVar("T")


def once_per_layout(layout: WorkbookLayout, name: str, build: Callable[[WorkbookLayout], T]) -> T:
    """What `build` derives from a layout alone, built on first use and kept with the layout.

    The reader keeps one layout per kind, version and row shape (not per unit), so everything kept here is
    worked out once for all the files of a batch that share it. A layout is read-only once built, so a value
    kept here never goes stale; two threads racing to build one only build it twice.
    """
    memo = layout.memo
    try:
        found: T = memo[name]
    except KeyError:
        found = memo[name] = build(layout)
    return found


@dataclass(frozen=True)
class Plan:
    """A layout's recalculation, compiled once: the values fixed by the spec, the input keys, the formulas in
    dependency order, the self-checks and the readings of rule-based indicators."""

    constants: Values
    inputs: tuple[str, ...]
    formulas: expr.Program
    checks: tuple[Check, ...]
    check_program: expr.Program
    # (indicator key `<block>.<indicator>`, its reading names): their expressions run in this order in `readings`.
    reading_names: tuple[tuple[str, tuple[str, ...]], ...]
    readings: expr.Program


def plan(layout: WorkbookLayout) -> Plan:
    """The layout's compiled recalculation (built on first use, then shared by every file of the layout)."""
    return once_per_layout(layout, "recalc_plan", _build_plan)


def _build_plan(layout: WorkbookLayout) -> Plan:
    checks = tuple(layout.checks())
    names: list[tuple[str, tuple[str, ...]]] = []
    reading_exprs: list[tuple[str, expr.Expr]] = []
    for sl in layout.sheets:
        for block in sl.spec.blocks:
            if isinstance(block, IndicatorsBlock):
                for _, _, ind in block.indicators():
                    if ind.rule:
                        key = f"{block.id}.{ind.id}"
                        names.append((key, tuple(ind.rule.readings)))
                        reading_exprs += [(key, expr.parse(r.expr)) for r in ind.rule.readings.values()]
    formulas = []
    for cell in layout.formulas():
        assert cell.key is not None and cell.expr is not None
        formulas.append((cell.key, expr.parse(cell.expr)))
    return Plan(
        constants=constants(layout),
        inputs=tuple(k for k, c in layout.cells.items() if c.role == "input"),
        formulas=expr.Program(formulas),
        checks=checks,
        check_program=expr.Program((c.key, expr.parse(c.expr)) for c in checks),
        reading_names=tuple(names),
        readings=expr.Program(reading_exprs),
    )


def constants(layout: WorkbookLayout) -> Values:
    """Values fixed by the spec (分值 and the like)."""
    return {k: c.value for k, c in layout.cells.items() if c.role == "constant" and c.value is not None}


def recalculate(layout: WorkbookLayout, inputs: Mapping[str, expr.Value]) -> Values:
    """Every input, constant and formula value, evaluated from the inputs alone.

    Cached values in a returned workbook are never used: a formula cell's value here depends only on
    the input cells, through the same expressions the template wrote as Excel formulas. Names were checked
    when the specs loaded (layout.check_catalog), so a plain dict lookup is enough.
    """
    compiled = plan(layout)
    values: Values = dict(compiled.constants)
    values.update(zip(compiled.inputs, map(inputs.get, compiled.inputs), strict=True))
    compiled.formulas.run(values)
    return values


def failing_checks(layout: WorkbookLayout, values: Mapping[str, expr.Value]) -> list[Check]:
    """The self-checks that are TRUE (a problem) for these values, as the template would show them."""
    compiled = plan(layout)
    results = compiled.check_program.each(values.get)
    return [c for c, result in zip(compiled.checks, results, strict=True) if result is True]


def prefilled(layout: WorkbookLayout) -> dict[str, expr.Value]:
    """The inputs a fresh template already carries (identity fields, the project-type tick)."""
    return {k: c.text for k, c in layout.cells.items() if c.role == "input" and c.text}


def reading_values(layout: WorkbookLayout, values: Mapping[str, expr.Value]) -> dict[str, dict[str, expr.Value]]:
    """Every reading of every rule-based indicator: key `<block>.<indicator>` -> {reading: score}."""
    compiled = plan(layout)
    results = iter(compiled.readings.each(values.get))
    return {key: {name: next(results) for name in names} for key, names in compiled.reading_names}


def as_decimal(value: expr.Value) -> Decimal | None:
    return value if isinstance(value, Decimal) else None
