"""`check` on the national (雁峰区) and 广州 forms: the published tables' mistakes found, corrected copies clean."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from seed_data import CN_IDENTITY, GZ_IDENTITY, cn_inputs, gz_inputs

from xlsx_kpi.audit.findings import Severity
from xlsx_kpi.audit.report import Report
from xlsx_kpi.batch.check import Options, check_file
from xlsx_kpi.formats.expr import Value
from xlsx_kpi.formats.layout import build_layout
from xlsx_kpi.formats.plan import Identity
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.outputs.template import write_template

D = Decimal


def run(catalog: Catalog, tmp_path: Path, wid: str, ident: Identity, inputs: dict[str, Value]) -> Report:
    path = write_template(build_layout(catalog, catalog.workbook(wid), ident), tmp_path / f"{wid}.xlsx", inputs=inputs)
    return check_file(path, catalog, Options(annotate=False))


def serious(report: Report) -> set[tuple[str, str, str]]:
    return {(f.severity.value, f.where, f.code) for f in report.findings if f.severity is not Severity.INFO}


def test_national_form_as_published(catalog: Catalog, tmp_path: Path) -> None:
    report = run(catalog, tmp_path, "cn-department", CN_IDENTITY, cn_inputs())
    assert serious(report) == {
        ("错误", "附件1!D7", "cross-check"),  # 年度资金总额 54.41 ≠ 42.09 + blank rows (年初预算数)
        ("错误", "附件1!E7", "cross-check"),  # 全年预算数
        ("错误", "附件1!F7", "cross-check"),  # 全年执行数
        ("警告", "附件1!I7", "score-vs-reference"),  # 执行率 100 % scored 9 of 10
    }
    [score] = [f for f in report.findings if f.where == "附件1!I7"]
    assert (score.expected, score.actual) == ("10", "9")
    assert report.total == D(99)


def test_national_form_corrected(catalog: Catalog, tmp_path: Path) -> None:
    inputs = cn_inputs()
    inputs.update(
        {
            "fund.total.budget_initial": D("42.09"),
            "fund.fiscal.budget": D("54.41"),
            "fund.fiscal.actual": D("54.41"),
            "fund.total.score": D(10),
        }
    )
    report = run(catalog, tmp_path, "cn-department", CN_IDENTITY, inputs)
    assert serious(report) == set()
    assert report.total == D(100)


def test_national_measure_rule_scores_a_missed_target(catalog: Catalog, tmp_path: Path) -> None:
    inputs = cn_inputs()
    inputs["s.service_satisfaction.1.result"] = "81%"  # target 90 %: 81 / 90 x 10 = 9 points, scored 10
    inputs["s.service_satisfaction.1.deviation"] = "宣传不到位"
    report = run(catalog, tmp_path, "cn-department", CN_IDENTITY, inputs)
    [f] = [f for f in report.findings if f.code == "measure-vs-score"]
    assert (f.severity, f.expected, f.actual) == (Severity.WARNING, "9", "10")
    assert "实际完成值 81.00%" in f.message


def test_guangzhou_form_as_published(catalog: Catalog, tmp_path: Path) -> None:
    report = run(catalog, tmp_path, "gz-department", GZ_IDENTITY, gz_inputs())
    assert serious(report) == {
        ("错误", "自评表!J10", "cross-check"),  # 市本级 + 转移支付区 ≠ 财政拨款 + 其他资金 (全年预算数)
        ("错误", "自评表!J11", "cross-check"),  # ... (全年执行数)
        ("错误", "自评表!J17", "basis-rate-mismatch"),  # written −1.37 %, recomputes to −1.38 %
        ("警告", "自评表!I19", "score-vs-reference"),  # 结转结余率 scored 2, reference 1.99
        # Results that read as not done, yet full marks: 基本完成, 预计明年落地, 将于2022年完成, 正在实施中.
        ("警告", "自评表!H44", "result-reads-not-done"),
        ("警告", "自评表!H51", "result-reads-not-done"),
        ("警告", "自评表!H53", "result-reads-not-done"),
        ("警告", "自评表!H54", "result-reads-not-done"),
    }
    [museum] = [f for f in report.findings if f.where == "自评表!H44"]
    assert "“广州科学馆基本完成征地拆迁工作”（基本完成）" in museum.message and "却得满分" in museum.message
    [rate] = [f for f in report.findings if f.code == "basis-rate-mismatch"]
    assert (rate.expected, rate.actual) == ("-1.38%", "-1.37%")
    assert report.total == D("93.89")


def test_guangzhou_form_corrected(catalog: Catalog, tmp_path: Path) -> None:
    inputs = gz_inputs()
    inputs.update(
        {
            "scale.budget.city": D("34478.93"),
            "scale.actual.city": D("33447.33"),
            "s.income_variance.basis": "(收入决算数31133.57-预算调整数31570.33)/预算调整数31570.33=-1.38%",
            "s.carryover_rate.score": D("1.99"),
            # The four results that read as not done, explained in the 差异说明 column.
            "s.science_museum.note": "征地拆迁为年度目标，已按计划完成",
            "s.culture_base.note": "年度建设任务已完成，课程上线在下一年度",
            "s.smart_campus.note": "等保为跨年度项目，年度部分已完成",
            "s.research.note": "运维服务跨年度，年度部分已完成",
        }
    )
    report = run(catalog, tmp_path, "gz-department", GZ_IDENTITY, inputs)
    assert {f.code for f in report.findings if f.severity is not Severity.INFO and not f.explained} == set()
    assert report.counts["已说明"] == 4
    assert report.total == D("93.88")
