"""Issue 11: indicator-quality rules on edited copies of real templates, every reading shown, and no noise."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from published import DEPT_IDENTITY, corrected_dept_inputs, dept_published, kechuang_full_inputs, kechuang_published
from seed_data import CN_IDENTITY, GZ_IDENTITY, cn_inputs, gz_inputs

from xlsx_kpi.audit.findings import Finding, Severity
from xlsx_kpi.audit.recalc import recalculate
from xlsx_kpi.audit.report import Report
from xlsx_kpi.audit.rules import REGISTRY
from xlsx_kpi.batch.check import Options, check_file
from xlsx_kpi.cli import main
from xlsx_kpi.formats.expr import Value
from xlsx_kpi.formats.layout import build_layout
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.outputs.template import write_template

NO_ANNOTATION = Options(annotate=False)
QUALITY = {
    "indicator-placeholder",
    "cost-not-upper-bound",
    "rate-target-above-100",
    "time-outside-year",
    "indicator-kind-missing",
    "indicator-row-shifted",
    "target-not-measurable",
    "magnitude-mismatch",
    "result-reads-not-done",
    "count-vs-listed-names",
}


def dept(catalog: Catalog, tmp_path: Path, **edits: Value) -> Report:
    """The corrected department workbook (0 错误) with edits to its inputs (dots written as __)."""
    inputs = corrected_dept_inputs()
    inputs.update({k.replace("__", "."): v for k, v in edits.items()})
    return check_file(dept_published(catalog, tmp_path, inputs=inputs, written={}), catalog, NO_ANNOTATION)


def quality(report: Report) -> set[tuple[str, str, str]]:
    return {(f.severity.value, f.where, f.code) for f in report.findings if f.code in QUALITY}


def one(report: Report, code: str) -> Finding:
    [f] = [f for f in report.findings if f.code == code]
    return f


def test_every_quality_rule_is_registered() -> None:
    assert QUALITY <= set(REGISTRY)


def test_correct_values_raise_nothing(catalog: Catalog, tmp_path: Path) -> None:
    report = dept(
        catalog,
        tmp_path,
        tgt__quality__1__target="≥5.5万人次",
        tgt__quality__1__result="＝5.6万人次",
        tgt__satisfaction__1__target="不低于90%",
        tgt__satisfaction__1__result="95%",
        tgt__time__1__target="2021年12月底前",
        tgt__time__1__result="2021年12月20日",
    )
    assert quality(report) == set()
    assert report.counts["错误"] == 0 and report.counts["警告"] == 0


def test_placeholders(catalog: Catalog, tmp_path: Path) -> None:
    report = dept(
        catalog, tmp_path, tgt__qty__1__target="*", tgt__qty__2__result="待定", tgt__quality__1__result="详见报告"
    )
    assert quality(report) == {
        ("错误", "附件2!E17", "indicator-placeholder"),
        ("错误", "附件2!F18", "indicator-placeholder"),
        ("错误", "附件2!F23", "indicator-placeholder"),
    }
    f = [f for f in report.findings if f.where == "附件2!F18"][0]
    assert "“助推企业开展创新驱动活动个数”的执行结果写作“待定”" in f.message
    assert (f.actual, f.expected) == ("待定", "写明执行结果（数字和单位）")


def test_direction_rules(catalog: Catalog, tmp_path: Path) -> None:
    report = dept(
        catalog,
        tmp_path,
        tgt__cost__1__target="≥100万元",
        tgt__satisfaction__1__target="≥120%",
        tgt__time__1__target="2022年6月30日前",
    )
    assert quality(report) == {
        ("错误", "附件2!E28", "cost-not-upper-bound"),
        ("错误", "附件2!E39", "rate-target-above-100"),
        ("警告", "附件2!E26", "time-outside-year"),
    }
    assert one(report, "cost-not-upper-bound").expected == "≤100万元"
    assert "不在预算年度 2021 年内" in one(report, "time-outside-year").message


def test_cost_without_bound_is_a_warning(catalog: Catalog, tmp_path: Path) -> None:
    report = dept(catalog, tmp_path, tgt__cost__1__target="484.13万元")
    assert quality(report) == {("警告", "附件2!E28", "cost-not-upper-bound")}


def test_a_workbook_without_satisfaction_rows(catalog: Catalog, tmp_path: Path) -> None:
    report = dept(
        catalog,
        tmp_path,
        tgt__satisfaction__1__name="",
        tgt__satisfaction__1__target="",
        tgt__satisfaction__1__result="",
    )
    f = one(report, "indicator-kind-missing")
    assert (f.severity, f.where, f.actual, f.expected) == (Severity.ERROR, "附件2!D39", "0项", "至少1项满意度指标")


def test_shifted_rows_are_one_finding_each(catalog: Catalog, tmp_path: Path) -> None:
    report = dept(
        catalog,
        tmp_path,
        tgt__qty__3__deviation="无偏差",  # a row with only its 偏差 column
        tgt__qty__4__name="=10个",  # a result typed in the 三级指标 cell
        tgt__qty__4__target="≥10个",
        tgt__qty__4__result="=10个",
        tgt__quality__1__result="无偏差",  # 无偏差 as a result
    )
    assert quality(report) == {
        ("错误", "附件2!D19", "indicator-row-shifted"),
        ("错误", "附件2!D20", "indicator-row-shifted"),
        ("错误", "附件2!D23", "indicator-row-shifted"),
    }


def test_measurability(catalog: Catalog, tmp_path: Path) -> None:
    report = dept(catalog, tmp_path, tgt__qty__1__target="较好", tgt__qty__2__target="3", tgt__qty__2__result="3")
    assert quality(report) == {
        ("警告", "附件2!E17", "target-not-measurable"),
        ("警告", "附件2!E18", "target-not-measurable"),
    }
    assert "只有数字没有单位" in [f for f in report.findings if f.where == "附件2!E18"][0].message


def test_magnitude_against_the_overall_goal(catalog: Catalog, tmp_path: Path) -> None:
    goal = str(corrected_dept_inputs()["goal.target"]) + "全年科普活动覆盖125万人次。"
    report = dept(
        catalog,
        tmp_path,
        goal__target=goal,
        tgt__qty__3__name="科普活动覆盖人次",
        tgt__qty__3__target="=125人次",
        tgt__qty__3__result="=125人次",
    )
    got = [(f.severity, f.where, f.expected, f.actual) for f in report.findings if f.code == "magnitude-mismatch"]
    assert got == [
        (Severity.WARNING, "附件2!E19", "125万人次", "125人次"),  # 预算指标值
        (Severity.WARNING, "附件2!F19", "125万人次", "125人次"),  # 执行结果
    ]


def test_cost_result_above_the_tables_spending(catalog: Catalog, tmp_path: Path) -> None:
    report = dept(catalog, tmp_path, tgt__cost__1__result="=584.13万元", tgt__cost__1__deviation="")
    f = [f for f in report.findings if f.code == "magnitude-mismatch"][0]
    assert (f.where, f.expected, f.actual) == ("附件2!F28", "≤484.13万元", "584.13万元")


def test_result_that_reads_as_not_done(catalog: Catalog, tmp_path: Path) -> None:
    report = dept(catalog, tmp_path, tgt__qty__1__result="=10个，其中2个正在评审中", tgt__qty__1__deviation="无偏差")
    f = one(report, "result-reads-not-done")
    assert (f.severity, f.where) == (Severity.WARNING, "附件2!F17")
    assert "“其中2个正在评审中”（正在）" in f.message and "偏差原因却写“无偏差”" in f.message
    explained = dept(
        catalog, tmp_path, tgt__qty__1__result="=10个，其中2个正在评审中", tgt__qty__1__deviation="2个年底公示，已计入"
    )
    assert [f.code for f in explained.findings if f.code in QUALITY] == []


def test_national_form_rows_are_covered(catalog: Catalog, tmp_path: Path) -> None:
    inputs = cn_inputs()
    inputs["s.service_satisfaction.1.result"] = "待定"
    inputs["s.benefit_kinds.1.result"] = "预计下年度完成"
    layout = build_layout(catalog, catalog.workbook("cn-department"), CN_IDENTITY)
    report = check_file(write_template(layout, tmp_path / "cn.xlsx", inputs=inputs), catalog, NO_ANNOTATION)
    got = {(f.severity.value, f.code) for f in report.findings if f.code in QUALITY}
    assert got == {("错误", "indicator-placeholder"), ("警告", "result-reads-not-done")}
    assert one(report, "indicator-placeholder").indicator == "群众满意度"
    assert "却得满分" in one(report, "result-reads-not-done").message  # 学习党史 10 of 10


# -- every reading shown ----------------------------------------------------------------------------------
def test_staff_control_lists_every_reading(catalog: Catalog, tmp_path: Path) -> None:
    report = dept(catalog, tmp_path, s__staff_control__note="")
    f = one(report, "score-vs-reference")
    assert "按比例计分 3.75 分；按超编比例扣分 3.35 分；按超编比例扣分（超编率不取整） 3.33 分" in f.message
    assert "自评分数与“按超编比例扣分”一致" in f.message
    assert (f.severity, f.expected, f.actual) == (Severity.WARNING, "3.75", "3.35")


def test_score_on_the_templates_reading_is_quiet(catalog: Catalog, tmp_path: Path) -> None:
    report = dept(catalog, tmp_path, s__staff_control__score=Decimal("3.75"), s__staff_control__note="")
    assert [f for f in report.findings if f.code == "score-vs-reference"] == []


def test_a_rate_from_a_zero_base_shows_both_readings(catalog: Catalog, tmp_path: Path) -> None:
    # Seed 000: “三公经费” 2020 budget 0, 2021 budget 0.12 万元, scored 4 of 5.
    report = dept(catalog, tmp_path, b__tp_budget=Decimal(12), b__tp_budget_prev=Decimal(0))
    [f] = [f for f in report.findings if f.where == "附件1!F8"]
    assert f.code == "score-vs-reference" and f.severity is Severity.WARNING
    assert (
        "按计分标准（上年为0时无法计算） 无法计算；上年为0时视为无可比基数（得满分） 5 分；"
        "上年为0时视为增幅超过100%（扣完） 0 分" in f.message
    )
    assert "自评分数与任何一种读法都不一致" in f.message
    assert not [g for g in report.findings if g.code == "reference-unavailable" and "变动率" in g.message]


# -- signal over noise ----------------------------------------------------------------------------------
def test_every_finding_has_both_figures(catalog: Catalog, tmp_path: Path) -> None:
    reports = [
        check_file(dept_published(catalog, tmp_path / "d"), catalog, NO_ANNOTATION),
        check_file(kechuang_published(catalog, tmp_path / "k", inputs=kechuang_full_inputs()), catalog, NO_ANNOTATION),
    ]
    for wid, ident, inputs in (
        ("cn-department", CN_IDENTITY, cn_inputs()),
        ("gz-department", GZ_IDENTITY, gz_inputs()),
    ):
        layout = build_layout(catalog, catalog.workbook(wid), ident)
        reports.append(
            check_file(write_template(layout, tmp_path / f"{wid}.xlsx", inputs=inputs), catalog, NO_ANNOTATION)
        )
    findings = [f for r in reports for f in r.findings]
    assert len(findings) > 20
    assert [f.where for f in findings if not f.actual or not f.expected] == []
    assert all(r.counts["提示"] <= 3 for r in reports)
    cross = [f for f in reports[2].findings if f.where == "附件1!D7"][0]
    assert (cross.code, cross.actual, cross.expected) == ("cross-check", "54.41", "42.09")
    assert "D7 = 54.41，D8+D9+D10（42.09+（空）+（空）） = 42.09" in cross.message


def test_published_department_counts(catalog: Catalog, tmp_path: Path) -> None:
    """Before issue 11 this workbook had 34 提示 (19 typed-over totals, 15 blank 基础数据); now one."""
    report = check_file(dept_published(catalog, tmp_path), catalog, NO_ANNOTATION)
    assert report.counts == {"错误": 4, "警告": 3, "已说明": 0, "提示": 1}
    assert len(report.replaced) == 19 and report.replaced[:3] == ["附件1!F32", "附件2!C5", "附件2!D5"]
    assert report.to_json()["replaced"] == report.replaced
    [info] = [f for f in report.findings if f.severity is Severity.INFO]
    assert (info.code, info.where, info.actual) == ("reference-unavailable", "基础数据!C6", "23 项未填")
    assert "以下 15 个指标的参考得分无法计算" in info.message


def test_a_total_breaking_two_relations_is_one_finding(catalog: Catalog, tmp_path: Path) -> None:
    inputs = corrected_dept_inputs()
    inputs["fund.actual.general"] = Decimal(48000)  # 预算结构 执行额 no longer matches 预算执行情况
    path = dept_published(catalog, tmp_path, inputs=inputs, written={"fund.actual.total": 48413})
    report = check_file(path, catalog, NO_ANNOTATION)
    at = [f for f in report.findings if f.where == "附件2!C10"]
    assert [f.code for f in at] == ["sum-mismatch"]
    assert "应为 48000，填报为 48413" in at[0].message and "同时预算结构的执行额合计应等于" in at[0].message


def test_console_lists_errors_and_warnings_and_counts_infos(
    capsys: pytest.CaptureFixture[str], catalog: Catalog, tmp_path: Path
) -> None:
    path = dept_published(catalog, tmp_path / "in")
    assert main(["check", str(path), "--no-annotate"]) == 1
    text = capsys.readouterr().out
    assert "reference-unavailable" not in text and "另有 1 条提示" in text
    assert "以下公式被数值替换，数值正确：附件1：F32；附件2：C5、D5" in text
    assert "〔填报 6.03%；应为 10.54%〕" in text
    assert main(["check", str(path), "--no-annotate", "--verbose"]) == 1
    assert "基础数据!C6 参考得分无法计算（reference-unavailable）" in capsys.readouterr().out


def test_result_sheet_lists_the_typed_over_formulas(catalog: Catalog, tmp_path: Path) -> None:
    path = dept_published(catalog, tmp_path / "in")
    report = check_file(path, catalog, Options(out_dir=tmp_path / "out"))
    assert report.annotated is not None
    ws = openpyxl.load_workbook(report.annotated)["审核结果"]
    rows = {ws.cell(r, 1).value: ws.cell(r, 3).value for r in range(3, 20)}
    assert rows["以下公式被数值替换，数值正确"].startswith("附件1：F32；附件2：C5、D5、E5、G5、F6、G6、G7")
    assert "共19处" in rows["以下公式被数值替换，数值正确"]


def test_count_contradicted_by_the_names_listed(catalog: Catalog, tmp_path: Path) -> None:
    report = dept(catalog, tmp_path, tgt__qty__2__result="资阳化工、雁江电子")  # target ≥3家
    f = one(report, "count-vs-listed-names")
    assert (f.severity, f.where, f.expected, f.actual) == (Severity.WARNING, "附件2!F18", "≥3家", "列出2个")
    assert "（资阳化工、雁江电子）" in f.message
    full = dept(catalog, tmp_path, tgt__qty__2__result="资阳化工、雁江电子、安岳柠檬")
    assert [f for f in full.findings if f.code == "count-vs-listed-names"] == []


def test_national_row_without_a_result_is_incomplete(catalog: Catalog, tmp_path: Path) -> None:
    inputs = cn_inputs()
    inputs["s.benefit_kinds.2.result"] = ""
    layout = build_layout(catalog, catalog.workbook("cn-department"), CN_IDENTITY)
    report = check_file(write_template(layout, tmp_path / "cn.xlsx", inputs=inputs), catalog, NO_ANNOTATION)
    f = one(report, "target-incomplete")
    assert (f.severity, f.message) == (Severity.ERROR, "落实廉政建设缺少执行结果")


def fully_filled_dept_inputs(catalog: Catalog) -> dict[str, Value]:
    """The corrected seed with every 基础数据 figure filled and every score set to its reference score."""
    inputs = corrected_dept_inputs()
    figures = {
        "staff_quota": 8, "staff_actual": 8, "tp_budget": 12, "tp_budget_prev": 12, "tp_actual": 10,
        "key_spend": 16130, "project_spend": 16130, "budget_adjust": 0, "prev_carry_f_gov_fund": 0,
        "prev_carry_f_soe": 0, "prev_carry_f_social": 0, "public_budget": 100, "public_actual": 90,
        "proc_budget": 0, "proc_actual": 0, "fa_total": 100, "fa_in_use": 100, "work_planned": 10,
        "work_done": 10, "work_quality": 10, "timely_quarters": 4, "key_work_assigned": 5, "key_work_done": 5,
        "econ_degree": 1, "social_degree": 1, "satisfaction": Decimal("0.9"),
    }  # fmt: skip
    inputs.update({f"b.{k}": Decimal(v) for k, v in figures.items()})
    inputs.update({"b.pay_year_end": "是", "b.pay_quarterly": "是", "s.staff_control.note": ""})
    layout = build_layout(catalog, catalog.workbook("sc-department"), DEPT_IDENTITY)
    values = recalculate(layout, inputs)
    for key in list(inputs):
        ref = values.get(key.removesuffix(".score") + ".ref") if key.endswith(".score") else None
        if isinstance(ref, Decimal):
            inputs[key] = ref
    return inputs


def test_a_clean_fully_filled_workbook_has_no_findings(catalog: Catalog, tmp_path: Path) -> None:
    inputs = fully_filled_dept_inputs(catalog)
    report = check_file(dept_published(catalog, tmp_path, inputs=inputs, written={}), catalog, NO_ANNOTATION)
    # Only the seed's real 执行额 above 预算额 (used last year's carry-over), explained in 情况说明.
    assert [(f.where, f.code, f.explained) for f in report.findings] == [
        ("附件2!D5", "over-budget", True),
        ("附件2!D7", "over-budget", True),
    ]
    assert report.replaced == []


def test_a_result_of_so_many_below_the_target_is_missed(catalog: Catalog, tmp_path: Path) -> None:
    report = dept(catalog, tmp_path, tgt__qty__1__result="8个多", tgt__qty__1__deviation="无偏差")  # target ≥10个
    [f] = [f for f in report.findings if f.where == "附件2!G17"]
    assert (f.code, f.severity, f.actual) == ("target-missed", Severity.ERROR, "无偏差")
