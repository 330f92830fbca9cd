"""The seed's published figures, recalculated by LibreOffice and by our Decimal engine, agree."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from helpers import fill, read_values, recalc_with_libreoffice, soffice
from seed_data import dept_inputs, kechuang_inputs

from xlsx_kpi.audit.recalc import failing_checks, prefilled, recalculate
from xlsx_kpi.formats.expr import excel_round
from xlsx_kpi.formats.plan import WorkbookLayout

D = Decimal

pytestmark = pytest.mark.skipif(soffice() is None, reason="LibreOffice (soffice) not installed; .ci/run installs it")

# What the seed implies for the department workbook (seed 000 lines 206-357 and 634-676).
DEPT_EXPECTED = {
    "s.total": D("95.35"),
    "s.l1.input": D("16.35"),
    "s.l1.process": D("29"),
    "s.l1.output": D("30"),
    "s.l1.effect": D("20"),
    "s.l2.budget_allocation": D("12.35"),
    "s.grade": "优",
    "exec.total.budget": D(36808),
    "exec.total.actual": D(48413),
    "exec.total.carry": D(2922),
    "exec.total.carry_rate": D("0.0604"),  # 2922 / 48413 = 6.04 %
    "exec.project.carry_rate": D("0.1054"),  # 2922 / 27735 = 10.54 %
    "exec.total.carry_change": D("-0.7988"),  # (2922 - 14526) / 14526 = -79.88 %
    "fund.budget.total": D(36808),
    "s.staff_control.ref": D("3.75"),  # 5 x 6 / 8, the default reading
    "s.budget_completion.ref": D(4),
    "s.carryover_rate.ref": D(1),  # 6.04 % starts one 5-point step above 5 %
    "s.carryover_change.ref": D(2),
    "a1.status": "✔ 自检通过",
    "a2.status": "✔ 自检通过",
}


def _rounded(value: object) -> object:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return excel_round(D(f"{value:.15g}"), 4)
    if isinstance(value, Decimal):
        return excel_round(value, 4)
    return value


def _check(layout: WorkbookLayout, template: Path, inputs: dict, expected: dict, tmp_path: Path) -> None:
    filled = fill(template, layout, inputs, tmp_path / "filled.xlsx")
    [recalculated] = recalc_with_libreoffice([filled], tmp_path / "lo")
    lo = read_values(recalculated, layout)
    # The template already carries its identity (unit, project type tick): part of the inputs too.
    ours = recalculate(layout, {**prefilled(layout), **inputs})
    for key, want in expected.items():
        if want == "":
            assert lo[key] in (None, ""), f"LibreOffice {key}"
            assert ours[key] == "", f"recalc {key}"
            continue
        assert _rounded(lo[key]) == _rounded(want), f"LibreOffice {key}"
        assert _rounded(ours[key]) == _rounded(want), f"recalc {key}"
    # Beyond the named figures: every formula cell agrees between the two engines.
    for cell in layout.formulas():
        key = cell.key
        assert key is not None
        mine, theirs = ours[key], lo[key]
        if mine == "" or mine is None:
            assert theirs in (None, ""), key
        else:
            assert _rounded(theirs) == _rounded(mine), key


def test_department_seed_figures(dept_layout: WorkbookLayout, dept_template: Path, tmp_path: Path) -> None:
    _check(dept_layout, dept_template, dept_inputs(), DEPT_EXPECTED, tmp_path)
    assert failing_checks(dept_layout, recalculate(dept_layout, dept_inputs())) == []


def test_project_seed_figures(project_layout: WorkbookLayout, project_template: Path, tmp_path: Path) -> None:
    expected = {
        "s.total": D("98.5"),
        "s.l1.input": D("24.5"),
        "s.l1.process": D(25),
        "s.l1.output": D(20),
        "s.l1.effect": D(29),
        "s.grade": "优",
        "exec.total.carry_rate": D("0.3806"),  # 2922 / 7678 = 38.06 %, as the seed wrote
        "fund.carry_rate.general": D("0.3806"),
        "fund.carry_rate.gov_fund": "",  # no 预算额: no rate (the seed wrote 38.06 % here)
        "s.cost_saving.ref": D(5),
        "s.satisfaction.ref": D("9.5"),
        "a2.status": "✔ 自检通过",
    }
    _check(project_layout, project_template, kechuang_inputs(), expected, tmp_path)


def test_self_check_turns_status_red(dept_layout: WorkbookLayout, dept_template: Path, tmp_path: Path) -> None:
    inputs = dept_inputs()
    inputs["s.staff_control.score"] = D(6)  # above its 分值 of 5
    inputs["exec.basic.budget"] = D(-1)  # a negative amount
    filled = fill(dept_template, dept_layout, inputs, tmp_path / "bad.xlsx")
    [recalculated] = recalc_with_libreoffice([filled], tmp_path / "lo")
    lo = read_values(recalculated, dept_layout)
    # The negative budget also breaks 预算结构合计 = 预算执行合计.
    assert lo["a1.problems"] == 1
    assert lo["a2.problems"] == 2
    assert lo["a1.status"] == "✘ 自检发现1处问题，请修改标红单元格"
    failing = {c.key for c in failing_checks(dept_layout, recalculate(dept_layout, inputs))}
    assert failing == {"s.staff_control.score", "exec.basic.budget", "fund.budget.total"}
