"""Plans compiled once per layout (issue 14): the same figures as evaluating each formula, built once, reused."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from seed_data import (
    CN_IDENTITY,
    DEPT_IDENTITY,
    GZ_IDENTITY,
    PROJECT_IDENTITY,
    cn_inputs,
    dept_inputs,
    gz_inputs,
    kechuang_inputs,
)

from xlsx_kpi.audit import values as values_module
from xlsx_kpi.audit.cells import to_inputs
from xlsx_kpi.audit.reader import read_workbook
from xlsx_kpi.audit.recalc import (
    failing_checks,
    once_per_layout,
    plan,
    prefilled,
    reading_values,
    recalculate,
)
from xlsx_kpi.audit.rules import Context, base, run_rules
from xlsx_kpi.audit.rules.scores import score_cells
from xlsx_kpi.formats.expr import Program, Value, evaluate, parse
from xlsx_kpi.formats.layout import build_layout
from xlsx_kpi.formats.plan import Identity, WorkbookLayout
from xlsx_kpi.formats.spec import Catalog, IndicatorsBlock
from xlsx_kpi.outputs.table_writer import text_width
from xlsx_kpi.outputs.template import write_template
from xlsx_kpi.store import history as history_module
from xlsx_kpi.store.history import History

D = Decimal
KINDS: list[tuple[str, Identity, Callable[[], dict[str, Value]]]] = [
    ("sc-department", DEPT_IDENTITY, dept_inputs),
    ("sc-project", PROJECT_IDENTITY, kechuang_inputs),
    ("gz-department", GZ_IDENTITY, gz_inputs),
    ("cn-department", CN_IDENTITY, cn_inputs),
]


def walked(layout: WorkbookLayout, inputs: dict[str, Value]) -> dict[str, Value]:
    """The recalculation as it was before plans: every formula parsed and evaluated on its own, in order."""
    values: dict[str, Value] = {
        k: c.value for k, c in layout.cells.items() if c.role == "constant" and c.value is not None
    }
    for key, cell in layout.cells.items():
        if cell.role == "input":
            values[key] = inputs.get(key)
    for cell in layout.formulas():
        assert cell.key is not None and cell.expr is not None
        values[cell.key] = evaluate(parse(cell.expr), values.get)
    return values


def exact(values: dict[str, Value]) -> list[tuple[str, str, str]]:
    """Key, type and text of every value: Decimal("3.750") and Decimal("3.75") differ here, as in the JSON."""
    return [(k, type(v).__name__, str(v)) for k, v in values.items()]


@pytest.mark.parametrize(("wid", "identity", "inputs_of"), KINDS, ids=[k[0] for k in KINDS])
def test_the_compiled_recalculation_gives_the_walked_figures_exactly(
    catalog: Catalog, wid: str, identity: Identity, inputs_of: Callable[[], dict[str, Value]]
) -> None:
    layout = build_layout(catalog, catalog.workbook(wid), identity)
    inputs = {**prefilled(layout), **inputs_of()}
    ours = recalculate(layout, inputs)
    assert exact(ours) == exact(walked(layout, inputs))  # same keys in the same order, same digits
    want_checks = [c for c in layout.checks() if evaluate(parse(c.expr), ours.get) is True]
    assert failing_checks(layout, ours) == want_checks
    want_readings = {
        f"{block.id}.{ind.id}": {name: evaluate(parse(r.expr), ours.get) for name, r in ind.rule.readings.items()}
        for sl in layout.sheets
        for block in sl.spec.blocks
        if isinstance(block, IndicatorsBlock)
        for _, _, ind in block.indicators()
        if ind.rule
    }
    assert reading_values(layout, ours) == want_readings


def test_the_seed_figures_through_the_plan(dept_layout: WorkbookLayout) -> None:
    values = recalculate(dept_layout, {**prefilled(dept_layout), **dept_inputs()})
    assert (values["s.total"], values["s.grade"], values["exec.total.carry_rate"]) == (
        D("95.35"),
        "优",
        D(2922) / D(48413),  # 6.04 %, unrounded as the template's formula leaves it
    )
    readings = reading_values(dept_layout, values)["s.staff_control"]
    assert sorted(v for v in readings.values() if isinstance(v, Decimal)) == [D("3.33"), D("3.35"), D("3.75")]


def test_the_plan_is_built_once_per_layout_and_kept_with_it(dept_layout: WorkbookLayout) -> None:
    first = plan(dept_layout)
    recalculate(dept_layout, dept_inputs())
    recalculate(dept_layout, {})
    assert plan(dept_layout) is first and dept_layout.memo["recalc_plan"] is first
    assert len(first.inputs) == sum(c.role == "input" for c in dept_layout.cells.values())
    assert first.formulas.keys == tuple(c.key for c in dept_layout.formulas())
    built: list[str] = []

    def build(layout: WorkbookLayout) -> list[str]:
        built.append(layout.spec.id)
        return ["exec.total.budget"]

    assert once_per_layout(dept_layout, "test-list", build) == ["exec.total.budget"]
    assert once_per_layout(dept_layout, "test-list", build) == ["exec.total.budget"]
    assert built == ["sc-department"]


def test_a_program_runs_in_order_and_shows_a_blank_reference_as_zero() -> None:
    program = Program([("x", parse("a+1")), ("y", parse("x*2")), ("z", parse("b")), ("r", parse("IF(a=0,0,1/a)"))])
    values: dict[str, Value] = {"a": D(4), "b": None}
    program.run(values)
    assert values == {"a": D(4), "b": None, "x": D(5), "y": D(10), "z": D(0), "r": D("0.25")}
    assert program.each({"a": D(0), "x": D(3)}.get) == [D(1), D(6), D(0), D(0)]
    assert program.keys == ("x", "y", "z", "r")


def test_each_target_text_is_parsed_once(catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = build_layout(catalog, catalog.workbook("sc-department"), DEPT_IDENTITY)
    path = write_template(layout, tmp_path / "dept.xlsx", inputs=dept_inputs())
    filing = read_workbook(path, catalog)
    inputs = to_inputs(filing)
    values = recalculate(filing.layout, inputs)
    calls: list[object] = []
    real = values_module.parse_targets

    def counting(text: object) -> list[values_module.Target]:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(base, "parse_targets", counting)
    monkeypatch.setattr(base, "_TARGETS", {})  # what earlier tests in this process parsed
    ctx = Context(filing=filing, inputs=inputs, values=values, readings=reading_values(filing.layout, values))
    run_rules(ctx)
    # Several rules read the same 预算指标值 (unverifiable, cost, rate, listed names...): each text once.
    assert {"≥10个", "≥3家", "≥5.5万人次"} <= set(calls)
    assert len(calls) == len(set(calls))
    # The next workbook of a batch types the same texts: none is parsed again.
    parsed = len(calls)
    run_rules(Context(filing=filing, inputs=inputs, values=values, readings=reading_values(filing.layout, values)))
    assert len(calls) == parsed
    assert ctx.targets("≥3家") is ctx.targets("≥3家")
    assert [(t.op, t.value, t.unit) for t in ctx.targets("≥5.5万人次")] == [(">=", D(55000), "人次")]
    # The score cells, resolved for this workbook, are shared by the score rules.
    assert score_cells(ctx) is score_cells(ctx)
    assert [sc.key for sc in score_cells(ctx)][:2] == ["s.goal_fit.score", "s.indicator_clarity.score"]


def test_a_stored_file_is_not_encoded_again(catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xlsx_kpi.batch.check import Options, audit_file

    layout = build_layout(catalog, catalog.workbook("sc-department"), DEPT_IDENTITY)
    path = write_template(layout, tmp_path / "dept.xlsx", inputs=dept_inputs())
    checked = audit_file(path, catalog, Options(annotate=False))
    with History(tmp_path / "h.sqlite") as history:
        assert history.store(checked, sha256="a" * 64, file_mtime=datetime(2026, 1, 1))
        encoded: list[int] = []
        real = history_module.encode_values
        monkeypatch.setattr(history_module, "encode_values", lambda values: encoded.append(1) or real(values))
        assert history.store(checked, sha256="a" * 64, file_mtime=datetime(2026, 1, 1)) is False
        assert encoded == []
        assert history.count() == 1


def test_text_width_counts_wide_characters_twice() -> None:
    def naive(text: str) -> int:
        return max(
            sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line) for line in text.split("\n")
        )

    for text in ("资阳市科学技术协会", "abc 12.5%", "（全角）ＡＢ", "“科创会”专项经费\n2025年", "ｱｲ half-width kana"):
        assert text_width(text) == naive(text), text
    assert (text_width("资阳 ab\n（x）"), text_width(""), text_width("abc")) == (7, 0, 3)
