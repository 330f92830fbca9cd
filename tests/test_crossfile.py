"""Roll-up per kind and the cross-workbook rules, on the seed's department and its five projects (seed 000)."""

from __future__ import annotations

import json
from csv import DictReader
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from helpers import recalc_with_libreoffice, soffice
from published import dept_published
from seed_data import dept_inputs
from seed_projects import OTHER_PROJECTS, SHEHUIHUA, project_published, unit_published

from xlsx_kpi.audit.collection import Collection
from xlsx_kpi.audit.findings import Severity
from xlsx_kpi.audit.rules import REGISTRY
from xlsx_kpi.audit.rules.crossfile import CrossFinding
from xlsx_kpi.batch.check import Options, audit_paths, cross_check
from xlsx_kpi.batch.collect import collect
from xlsx_kpi.cli import main
from xlsx_kpi.formats.layout import build_layout
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.outputs.summary import write_summary
from xlsx_kpi.outputs.template import write_template
from xlsx_kpi.store.history import History

FILES = [
    "资阳_部门.xlsx",
    "资阳_科创会.xlsx",
    "资阳_全民科学素质.xlsx",
    "资阳_天府科技云.xlsx",
    "资阳_社会化工作者.xlsx",
    "资阳_院士专家工作站.xlsx",
]  # the department first, then the projects by name
PROJECT_FILES = FILES[1:]


@dataclass
class Unit:
    folder: Path
    collection: Collection
    summary: Path


@pytest.fixture(scope="module")
def unit(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Unit:
    root = tmp_path_factory.mktemp("unit")
    folder = root / "回收"
    paths = unit_published(catalog, folder)
    assert sorted(p.name for p in paths) == sorted(FILES)
    collection = collect([folder], catalog)
    return Unit(folder, collection, write_summary(collection, root / "汇总.xlsx"))


def rows(path: Path, sheet: str, *, data_only: bool = False) -> list[list[object]]:
    wb = openpyxl.load_workbook(path, data_only=data_only)
    return [list(r) for r in wb[sheet].iter_rows(values_only=True)]


def by_code(cross: list[CrossFinding], code: str) -> list[CrossFinding]:
    return [c for c in cross if c.finding.code == code]


def test_the_four_other_projects_are_the_seed_tables(unit: Unit) -> None:
    got = {s.file.name: s for s in unit.collection.submissions}
    # 附件2 合计 rows (百元) and 附件1 totals as published (seed 000 lines 1784, 2390, 2926, 3532; 1737 …).
    figures = {
        name: (s.value("exec.total.budget"), s.value("exec.total.actual"), s.report.total)
        for name, s in got.items()
        if s.kind == "project"
    }
    assert figures == {
        "资阳_科创会.xlsx": (Decimal(10600), Decimal(7678), Decimal("98.5")),
        "资阳_全民科学素质.xlsx": (Decimal(300), Decimal(492), Decimal(97)),
        "资阳_社会化工作者.xlsx": (Decimal(1000), Decimal(1000), Decimal(98)),
        "资阳_天府科技云.xlsx": (Decimal(2000), Decimal(3180), Decimal("99.3")),
        "资阳_院士专家工作站.xlsx": (Decimal(1000), Decimal(1000), Decimal(98)),
    }
    assert [p.total for p in OTHER_PROJECTS] == ["97", "98", "99.3", "98"]
    dept = got["资阳_部门.xlsx"]
    assert (dept.value("exec.project.budget"), dept.value("exec.project.actual")) == (Decimal(16130), Decimal(27735))
    # The seed's 天府科技云 财政拨款结构 says 合计 2000 beside 一般公共预算安排 3180: the audit sees it.
    assert ("附件2!C12", "sum-mismatch") in got["资阳_天府科技云.xlsx"].report.flatten("where", "code")


def test_projects_against_the_departments_policy_and_project_row(unit: Unit) -> None:
    cross = unit.collection.cross
    budget, actual = by_code(cross, "projects-below-department")
    # The five projects fit inside the department (14,900 < 16,130; 13,350 < 27,735): a 提示 with the
    # difference, since not every project needs a table. Only projects exceeding it give a 警告.
    for c, (sum_, dept, diff, cell) in zip(
        (budget, actual), (("14,900", "16,130", "1,230", "C7"), ("13,350", "27,735", "14,385", "D7")), strict=True
    ):
        f = c.finding
        assert (f.severity, f.actual, f.expected) == (Severity.INFO, sum_, dept)
        assert (c.unit_code, c.year, f.where) == ("156001", "2021", f"附件2!{cell}")
        assert "“政策和项目支出”行" in f.message and f"相差 {diff} 百元" in f.message
        assert [p.file.name for p in c.places] == FILES
        assert [p.label for p in c.places][:2] == ["部门整体", "“科创会”专项经费"]
        assert all(name in f.message for name in PROJECT_FILES)
        assert {(p.sheet, p.cell) for p in c.places[1:]} == {("附件2", f"{cell[0]}8")}
    assert "资阳_全民科学素质.xlsx（全民科学素质行动计划纲要）300" in budget.finding.message
    # Quiet when right: one name and code in all six; no indicator named alike with another target.
    assert not by_code(cross, "projects-exceed-department")
    assert not by_code(cross, "unit-identity-differs")
    assert not by_code(cross, "target-contradicts-department")
    assert unit.collection.exit_code == 1  # 错误 inside the workbooks themselves, none across them


def test_summary_totals_per_kind_never_mixed(unit: Unit) -> None:
    formulas = rows(unit.summary, "汇总")
    cached = rows(unit.summary, "汇总", data_only=True)
    head = [str(h) for h in formulas[2]]
    u, v = head.index("预算额（百元）"), head.index("执行额（百元）")
    assert [r[3] for r in formulas[3:9]] == ["部门整体"] + ["项目支出"] * 5
    assert [(r[0], r[3]) for r in formulas[9:]] == [("合计（部门整体）", "部门整体"), ("合计（项目支出）", "项目支出")]
    assert formulas[9][u] == "=SUMIFS(U$4:U$9,$D$4:$D$9,$D10,$Z$4:$Z$9,1)"
    assert formulas[10][v] == "=SUMIFS(V$4:V$9,$D$4:$D$9,$D11,$Z$4:$Z$9,1)"
    assert (cached[9][u], cached[9][v]) == (36808, 48413)
    assert (cached[10][u], cached[10][v]) == (14900, 13350)
    assert cached[10][v + 2] == pytest.approx(13350 / 14900)
    numbers = {x for r in cached for x in r if isinstance(x, int | float)}
    assert not numbers & {36808 + 14900, 48413 + 13350, 2922 + 2922}  # nothing adds the two kinds
    # Above the table: who sent which kinds.
    assert "报送单位及表种：资阳市科学技术协会（156001）：部门整体 1 份、项目支出 5 份。" in str(formulas[1][0])
    assert "两类不相加" in str(formulas[1][0])


@pytest.mark.skipif(soffice() is None, reason="LibreOffice (soffice) not installed; .ci/run installs it")
def test_libreoffice_totals_follow_kind_and_filter(unit: Unit, tmp_path: Path) -> None:
    """LibreOffice's own results: per kind, and without the rows a filter hides (天府科技云 filtered out)."""
    wb = openpyxl.load_workbook(unit.summary)
    ws = wb["汇总"]
    assert ws["E7"].value == "天府科技云"
    shown = [ws[f"E{r}"].value for r in range(5, 10) if r != 7]
    ws.auto_filter.add_filter_column(4, [str(x) for x in shown])
    ws.row_dimensions[7].hidden = True
    filtered = tmp_path / "filtered.xlsx"
    wb.save(filtered)
    whole, part = recalc_with_libreoffice([unit.summary, filtered], tmp_path / "lo")
    full = openpyxl.load_workbook(whole, data_only=True)["汇总"]
    assert [full[f"{c}10"].value for c in "UVW"] == [36808, 48413, 2922]
    assert [full[f"{c}11"].value for c in "UVW"] == [14900, 13350, 2922]
    assert full["X11"].value == pytest.approx(13350 / 14900)
    assert [full[f"Z{r}"].value for r in range(4, 10)] == [1] * 6
    less = openpyxl.load_workbook(part, data_only=True)["汇总"]
    assert less["Z7"].value == 0
    assert [less[f"{c}11"].value for c in "UV"] == [14900 - 2000, 13350 - 3180]
    assert [less[f"{c}10"].value for c in "UV"] == [36808, 48413]


def test_problem_list_links_every_file_of_a_cross_finding(unit: Unit) -> None:
    wb = openpyxl.load_workbook(unit.summary)
    ws = wb["问题清单"]
    data = [list(r) for r in ws.iter_rows(min_row=4, values_only=True)]
    cross = [(n, r) for n, r in enumerate(data, start=4) if r[4] == "projects-below-department"]
    assert len(cross) == 12  # 2 findings × 6 workbooks, listed first
    assert [n for n, _ in cross] == list(range(4, 16))
    assert [r[2] for _, r in cross[:6]] == FILES
    assert [(r[3], r[5], r[6], r[8], r[9]) for _, r in cross[:2]] == [
        ("提示", "附件2", "C7", "14,900", "16,130"),
        ("提示", "附件2", "C8", "14,900", "16,130"),
    ]
    targets = [ws[f"C{n}"].hyperlink.target for n, _ in cross[:6]]
    assert targets[0].endswith("资阳_部门.xlsx") and targets[3].endswith("资阳_天府科技云.xlsx")
    # Each row opens its own file at its own cell.
    assert [(ws[f"C{n}"].hyperlink.location) for n in (4, 5)] == ["'附件2'!C7", "'附件2'!C8"]
    assert "跨表检查（同一单位的多个工作簿之间）错误 0 条、警告 0 条、提示 2 条" in str(ws["A2"].value)


def test_charts_per_kind(unit: Unit) -> None:
    charts = rows(unit.summary, "图表", data_only=True)
    assert charts[2][:3] == ["等级", "部门整体", "项目支出"]
    assert charts[3][:3] == ["优", 1, 5]
    assert charts[2][4] == "部门整体：单位（项目）" and charts[3][4:7] == ["资阳市科学技术协会", 95.35, "优"]
    assert charts[5][4] == "项目支出：单位（项目）"
    assert charts[6][4:6] == ["资阳市科学技术协会·天府科技云", 99.3]  # highest project first


def test_projects_exceeding_the_department_give_a_warning(catalog: Catalog, tmp_path: Path) -> None:
    folder = tmp_path / "回收"
    unit_published(catalog, folder)
    inputs = dept_inputs()
    inputs["exec.project.budget"] = Decimal(12000)  # below the projects' 14,900
    dept_published(catalog, folder, inputs=inputs)
    cross = collect([folder], catalog).cross
    [warn] = by_code(cross, "projects-exceed-department")
    f = warn.finding
    assert (f.severity, f.where, f.actual, f.expected) == (Severity.WARNING, "附件2!C7", "14,900", "≤12,000")
    assert "超过部门整体表 资阳_部门.xlsx “政策和项目支出”行的预算额 12,000 百元，相差 2,900 百元" in f.message
    assert [p.file.name for p in warn.places] == FILES
    [short] = by_code(cross, "projects-below-department")  # the execution column still fits
    assert (short.finding.actual, short.finding.expected) == ("13,350", "27,735")


def test_unit_code_differing_between_workbooks(catalog: Catalog, tmp_path: Path) -> None:
    folder = tmp_path / "回收"
    dept_published(catalog, folder)
    # 社会化工作者 issued under code 156010: the name joins it to the unit, the code does not match.
    identity = replace(SHEHUIHUA.identity(), unit_code="156010")
    inputs = {**SHEHUIHUA.inputs(), "info.unit_code": "156010"}
    layout = build_layout(catalog, catalog.workbook("sc-project"), identity)
    write_template(layout, folder / SHEHUIHUA.file, inputs=inputs, force=True)
    [c] = by_code(collect([folder], catalog).cross, "unit-identity-differs")
    f = c.finding
    assert (f.code, f.severity, f.actual, f.expected) == ("unit-identity-differs", Severity.ERROR, "156010", "156001")
    assert [(p.file.name, p.sheet, p.cell) for p in c.places] == [
        ("资阳_部门.xlsx", "附件2", "F3"),
        ("资阳_社会化工作者.xlsx", "附件2", "F6"),
    ]
    assert "资阳_社会化工作者.xlsx 为“156010”" in f.message
    assert collect([folder], catalog).exit_code == 1


def test_indicator_target_contradicting_the_department(catalog: Catalog, tmp_path: Path) -> None:
    folder = tmp_path / "回收"
    dept_published(catalog, folder)
    # The department's first 数量指标 is 评选最美科技工作者 ≥10个; the project sets ≥12个 for it.
    project = replace(SHEHUIHUA, targets=[*SHEHUIHUA.targets, ("qty", "评选最美科技工作者", "≥12个", "=12个", "")])
    project_published(catalog, folder, project)
    [c] = by_code(collect([folder], catalog).cross, "target-contradicts-department")
    f = c.finding
    assert (f.severity, f.indicator, f.expected, f.actual) == (Severity.WARNING, "评选最美科技工作者", "≥10个", "≥12个")
    assert [p.file.name for p in c.places] == ["资阳_部门.xlsx", "资阳_社会化工作者.xlsx"]
    dept_cell, project_cell = (f"{p.sheet}!{p.cell}" for p in c.places)
    assert dept_cell.startswith("附件2!E") and project_cell.startswith("附件2!E")


def test_check_on_a_folder_runs_the_cross_rules(unit: Unit, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(unit.folder), "--no-annotate", "--json", "--workers", "1"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert [(c["code"], c["actual"], c["expected"]) for c in payload["cross"]] == [
        ("projects-below-department", "14,900", "16,130"),
        ("projects-below-department", "13,350", "27,735"),
    ]
    assert [Path(p["file"]).name for p in payload["cross"][0]["places"]] == FILES
    # One file named on its own: nothing to compare it with.
    main(["check", str(unit.folder / "资阳_部门.xlsx"), "--no-annotate", "--json"])
    assert json.loads(capsys.readouterr().out)["cross"] == []


def test_cross_check_is_the_same_from_python(unit: Unit, catalog: Catalog) -> None:
    files = sorted(unit.folder.glob("*.xlsx"))
    checked = audit_paths(files, catalog, Options(annotate=False))
    assert [c.finding.actual for c in cross_check(checked, catalog)] == ["14,900", "13,350"]


def test_history_totals_per_kind(
    unit: Unit, catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "h.sqlite"
    with History(db) as history:
        collect([unit.folder], catalog, history=history)
    assert main(["history", "--db", str(db), "--unit", "156001", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["totals"] == [
        {
            "year": 2021,
            "kind": "department",
            "workbooks": 1,
            "budget": "36808",
            "actual": "48413",
            "carry": "2922",
            "execution_rate": "1.3153",
        },
        {
            "year": 2021,
            "kind": "project",
            "workbooks": 5,
            "budget": "14900",
            "actual": "13350",
            "carry": "2922",
            "execution_rate": "0.896",
        },
    ]
    assert sorted(y["kind"] for y in payload["years"]) == ["department"] + ["project"] * 5
    csv = tmp_path / "h.csv"
    assert main(["history", "--db", str(db), "--csv", str(csv)]) == 0
    with csv.open(encoding="utf-8-sig", newline="") as fh:
        records = list(DictReader(fh))
    assert sorted(r["kind"] for r in records) == ["department"] + ["project"] * 5


def test_cross_rules_are_registered_with_stable_codes() -> None:
    codes = {
        "unit-identity-differs",
        "projects-exceed-department",
        "projects-below-department",
        "target-contradicts-department",
    }
    assert codes <= set(REGISTRY)
    assert {REGISTRY[c].severity for c in codes} == {Severity.ERROR, Severity.WARNING, Severity.INFO}
    assert all(REGISTRY[c].title.startswith("跨表：") for c in codes)


def test_cli_collect_prints_the_cross_findings(unit: Unit, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "汇总.xlsx"
    code = main(["collect", str(unit.folder), "-o", str(out), "--db", str(tmp_path / "h.sqlite"), "--workers", "1"])
    assert code == 1  # 错误 inside the seed's workbooks
    text = capsys.readouterr().out
    assert "跨表检查（同一单位、同一年度的多个工作簿之间）" in text
    assert "填报值 14,900；应为 16,130" in text and "填报值 13,350；应为 27,735" in text
    assert "资阳_天府科技云.xlsx 附件2!C8（天府科技云）" in text
