"""`check` on the seed's own workbooks: the published mistakes are found at their cells; corrected, none."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from helpers import recalc_with_libreoffice, soffice
from published import (
    corrected_dept_inputs,
    corrected_kechuang_inputs,
    dept_published,
    kechuang_full_inputs,
    kechuang_published,
)

from xlsx_kpi.audit.findings import Severity
from xlsx_kpi.audit.report import Report
from xlsx_kpi.batch.check import Options, check_file
from xlsx_kpi.cli import main
from xlsx_kpi.formats.spec import Catalog

NO_ANNOTATION = Options(annotate=False)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def of(report: Report, severity: Severity) -> set[tuple[str, str]]:
    return {(f.where, f.code) for f in report.findings if f.severity is severity}


def message(report: Report, where: str, code: str) -> str:
    [f] = [f for f in report.findings if f.where == where and f.code == code]
    return f.message


def test_published_department_workbook(catalog: Catalog, tmp_path: Path) -> None:
    path = dept_published(catalog, tmp_path)
    before = sha(path)
    report = check_file(path, catalog, NO_ANNOTATION)
    assert sha(path) == before
    assert report.usable and report.unit_code == "156001" and report.year == "2021"
    assert report.total == Decimal("95.35") and report.grade == "优"
    assert of(report, Severity.ERROR) == {
        ("附件2!F5", "rate-mismatch"),  # 合计 row: 6.03 written, 2922/48413 = 6.04 %
        ("附件2!F7", "rate-mismatch"),  # 政策和项目支出 row: 6.03 copied from 合计, 2922/27735 = 10.54 %
        ("附件2!C12", "rate-mismatch"),  # 预算结构 合计 column: 6.03 vs 6.04 %
        ("附件2!D12", "rate-mismatch"),  # 一般公共预算安排: 6.03 vs 6.04 %
    }
    assert of(report, Severity.WARNING) == {
        ("附件1!F7", "score-vs-reference"),  # 在职人员控制率 3.35 vs the reference 3.75
        ("附件2!D5", "over-budget"),  # 执行额 48413 above 预算额 36808
        ("附件2!D7", "over-budget"),
    }
    assert "应为 10.54%，填报为 6.03%" in message(report, "附件2!F7", "rate-mismatch")
    assert "D7=27735、E7=2922" in message(report, "附件2!F7", "rate-mismatch")
    staff = message(report, "附件1!F7", "score-vs-reference")
    assert "按比例计分 3.75 分；按超编比例扣分 3.35 分；按超编比例扣分（超编率不取整） 3.33 分" in staff
    assert "自评分数与“按超编比例扣分”一致" in staff
    reasons = staff.split("（如有理由，请在 ")[0]  # the 说明 cell's address (附件1!…) follows
    assert not any(ch.isascii() and ch.isalpha() for ch in reasons)  # no internal reading id reaches the user
    # -79.88 % is right, only typed: listed once, not a finding
    assert "附件2!G7" in report.replaced and "formula-overwritten" not in {f.code for f in report.findings}
    assert report.counts["提示"] == 1  # the blank 基础数据, once
    assert report.exit_code == 1


def test_corrected_department_workbook_is_clean(catalog: Catalog, tmp_path: Path) -> None:
    path = dept_published(catalog, tmp_path, inputs=corrected_dept_inputs(), written={})
    report = check_file(path, catalog, NO_ANNOTATION)
    assert report.counts["错误"] == 0
    assert report.counts["警告"] == 0
    assert report.counts["已说明"] == 3
    explained = {f.where: f.explained_by for f in report.findings if f.explained}
    assert explained == {"附件1!F7": "M7", "附件2!D5": "H5", "附件2!D7": "H7"}
    assert report.exit_code == 0


def test_published_kechuang_project_workbook(catalog: Catalog, tmp_path: Path) -> None:
    path = kechuang_published(catalog, tmp_path, inputs=kechuang_full_inputs())
    report = check_file(path, catalog, NO_ANNOTATION)
    assert of(report, Severity.ERROR) == {
        ("附件2!E15", "rate-without-base"),  # 政府性基金预算安排: no 预算额, yet 38.06 %
        ("附件2!F15", "rate-without-base"),
        ("附件2!G15", "rate-without-base"),
        ("附件2!D36", "indicator-kind-missing"),  # the table has no 效益指标 row at all
        ("附件2!F45", "target-incomplete"),  # 满意度 “超过95%” without a result
    }
    assert of(report, Severity.WARNING) == {
        ("附件1!F25", "score-vs-reference"),  # 满意度 9 vs 95 % x 10 = 9.5
        ("附件2!E28", "target-not-measurable"),  # three figures and a sentence in one 预算指标值
    }
    assert report.counts["提示"] <= 3
    assert report.total == Decimal("98.5")


def test_corrected_kechuang_workbook_is_clean(catalog: Catalog, tmp_path: Path) -> None:
    path = kechuang_published(catalog, tmp_path, inputs=corrected_kechuang_inputs(), written={})
    report = check_file(path, catalog, NO_ANNOTATION)
    assert report.counts == {"错误": 0, "警告": 0, "已说明": 0, "提示": 1}  # 基础数据 blank: one 提示
    assert report.total == Decimal(99)


def test_mistakes_users_make(catalog: Catalog, tmp_path: Path) -> None:
    inputs = corrected_dept_inputs()
    inputs["s.goal_fit.score"] = Decimal(3)  # above its 分值 2
    inputs["s.indicator_clarity.score"] = "2.5分"  # text with a unit: read as 2.5, below full marks
    inputs["s.indicator_clarity.basis"] = ""  # ... and no 依据
    inputs["s.key_spending.score"] = "满分"  # not a number
    inputs["s.budget_completion.score"] = None  # missing
    inputs["exec.basic.budget"] = "两万"  # text in an amount
    inputs["tgt.qty.1.result"] = "=8个"  # target ≥10个 missed ...
    inputs["tgt.qty.2.result"] = "=2家"  # ≥3家 missed, deviation says 无偏差
    inputs["tgt.qty.2.deviation"] = "无偏差"
    inputs["tgt.quality.1.result"] = ""  # row incomplete
    inputs["info.unit_code"] = "156002"  # not the code the template was sent with
    inputs["b.satisfaction"] = Decimal("0.95")  # 附件2 says 90 %
    path = dept_published(catalog, tmp_path, inputs=inputs, written={"s.total": 99, "s.l1.input": 17})
    report = check_file(path, catalog, NO_ANNOTATION)
    errors = of(report, Severity.ERROR)
    assert {
        ("附件1!F5", "score-above-max"),
        ("附件1!G6", "basis-missing"),
        ("附件1!F9", "score-not-number"),
        ("附件1!F10", "score-missing"),
        ("附件2!C6", "input-not-number"),
        ("附件2!G17", "target-missed"),
        ("附件2!G18", "target-missed"),
        ("附件2!F23", "target-incomplete"),
        ("附件2!F3", "identity-mismatch"),
        ("附件2!F39", "cross-sheet-mismatch"),
        ("附件1!F32", "sum-mismatch"),
        ("附件1!L5", "sum-mismatch"),
    } <= errors
    assert ("附件1!F6", "score-as-text") in of(report, Severity.INFO)
    assert "偏差原因却写“无偏差”" in message(report, "附件2!G18", "target-missed")
    assert "预算单位编码“156002”与下发模板中的“156001”不一致" in message(report, "附件2!F3", "identity-mismatch")


def test_unusable_file_in_a_batch(capsys: pytest.CaptureFixture[str], catalog: Catalog, tmp_path: Path) -> None:
    dept_published(catalog, tmp_path / "in")
    (tmp_path / "in" / "坏文件.xlsx").write_bytes(b"not a zip")
    (tmp_path / "in" / "~$资阳_部门.xlsx").write_bytes(b"lock")
    code = main(["check", str(tmp_path / "in"), "--json", "--no-annotate"])
    out = json.loads(capsys.readouterr().out)
    assert code == 2
    files = {Path(f["file"]).name: f for f in out["files"]}
    assert set(files) == {"资阳_部门.xlsx", "坏文件.xlsx"}
    assert files["坏文件.xlsx"]["status"] == "无法读取"
    assert "坏文件.xlsx" in files["坏文件.xlsx"]["error"]
    good = files["资阳_部门.xlsx"]
    assert good["counts"]["错误"] == 4
    f7 = [f for f in good["findings"] if f["cell"] == "F7" and f["sheet"] == "附件2"][0]
    assert (f7["code"], f7["severity"], f7["expected"], f7["actual"]) == ("rate-mismatch", "错误", "10.54%", "6.03%")


def test_check_writes_the_annotated_copy(capsys: pytest.CaptureFixture[str], catalog: Catalog, tmp_path: Path) -> None:
    path = dept_published(catalog, tmp_path / "in")
    before = sha(path)
    code = main(["check", str(path), "--out-dir", str(tmp_path / "out")])
    text = capsys.readouterr().out
    assert code == 1
    annotated = tmp_path / "out" / "资阳_部门_审核.xlsx"
    assert annotated.exists() and sha(path) == before
    assert "附件2!F7 比率与重算不符（rate-mismatch）" in text
    wb = openpyxl.load_workbook(annotated)
    assert wb.sheetnames[0] == "审核结果"
    assert wb["附件2"]["F7"].comment is not None
    assert main(["check", str(path), "--out-dir", str(tmp_path / "out")]) == 2  # exists, no --force
    assert "文件已存在" in capsys.readouterr().out
    assert main(["check", str(path), "--out-dir", str(tmp_path / "out"), "--force"]) == 1


@pytest.mark.skipif(soffice() is None, reason="LibreOffice (soffice) not installed; .ci/run installs it")
def test_a_workbook_saved_by_libreoffice_checks_the_same(catalog: Catalog, tmp_path: Path) -> None:
    """A unit that fills the template in LibreOffice (or WPS): same findings, no formula reported as altered."""
    clean = dept_published(catalog, tmp_path / "in", inputs=corrected_dept_inputs(), written={})
    dirty = dept_published(catalog, tmp_path / "in", name="published.xlsx")
    saved = recalc_with_libreoffice([clean, dirty], tmp_path / "lo")
    clean_report, dirty_report = (check_file(p, catalog, NO_ANNOTATION) for p in saved)
    assert clean_report.counts == {"错误": 0, "警告": 0, "已说明": 3, "提示": clean_report.counts["提示"]}
    assert not [f for f in clean_report.findings if f.code == "formula-altered"]
    assert of(dirty_report, Severity.ERROR) == {
        ("附件2!F5", "rate-mismatch"),
        ("附件2!F7", "rate-mismatch"),
        ("附件2!C12", "rate-mismatch"),
        ("附件2!D12", "rate-mismatch"),
    }
