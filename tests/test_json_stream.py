"""check --json written as it comes (issue 14): the same bytes as before, only summaries kept in memory."""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from published import dept_published
from seed_projects import SHEHUIHUA, project_published

from xlsx_kpi.audit.findings import Finding, Severity
from xlsx_kpi.audit.report import Report, ReportSummary
from xlsx_kpi.batch.check import Options, audit_paths, check_paths, cross_check, slim
from xlsx_kpi.cli import JsonFiles, batch_json, main
from xlsx_kpi.formats.spec import Catalog

DATA = Path(__file__).parent / "data"


def reports() -> list[Report]:
    explained = Finding(
        code="rate-mismatch",
        severity=Severity.WARNING,
        sheet="附件2",
        cell="G7",
        message="执行率与金额不符\n请核对",
        expected="95.00%",
        actual="96.00%",
        explained_by="附件2!H7",
        explanation="年中追加",
    )
    error = Finding(code="sum-mismatch", severity=Severity.ERROR, sheet="附件1", cell="F32", message="合计不符")
    return [
        Report(file=Path("a.xlsx"), findings=[error, explained], unit_name="资阳市科协", grade="良"),
        Report(file=Path("b.xlsx"), error="文件 b.xlsx：不是有效的 .xlsx 文件"),
    ]


def streamed(items: list[Report]) -> str:
    buf = io.StringIO()
    stream = JsonFiles(buf)
    for r in items:
        stream.add(r)
    stream.finish([r.summary() for r in items], [], ())
    return buf.getvalue()


def test_streamed_document_is_byte_identical() -> None:
    items = reports()
    expected = json.dumps(batch_json(items), ensure_ascii=False, indent=2) + "\n"
    assert streamed(items) == expected
    assert json.loads(streamed(items))["summary"] == {"files": 2, "unusable": 1, "错误": 1, "警告": 0, "提示": 0}
    assert json.loads(streamed(items))["exit_code"] == 2


def test_no_files_gives_an_empty_list() -> None:
    assert streamed([]) == json.dumps(batch_json([]), ensure_ascii=False, indent=2) + "\n"
    assert streamed([]).startswith('{\n  "files": [],\n  "cross": []')


def test_summary_keeps_counts_status_and_exit_code() -> None:
    full = reports()[0]
    small = full.summary()
    assert isinstance(small, ReportSummary)
    assert small.findings == []
    assert small.counts == {"错误": 1, "警告": 0, "已说明": 1, "提示": 0} == full.counts
    assert (small.status, small.exit_code, small.unit_name, small.grade) == ("有错误", 1, "资阳市科协", "良")
    assert small.count(Severity.WARNING) == 1


def test_check_paths_keeps_only_summaries_but_progress_sees_findings(catalog: Catalog, tmp_path: Path) -> None:
    files = []
    for i in range(2):
        files.append(shutil.copy(DATA / "cn_inserted_lo.xlsx", tmp_path / f"f{i}.xlsx"))
    seen: list[tuple[str, int]] = []
    kept = check_paths(
        [Path(f) for f in files],
        catalog,
        Options(annotate=False),
        progress=lambda r: seen.append((r.file.name, len(r.findings))),
        keep_findings=False,
    )
    full = check_paths([Path(files[0])], catalog, Options(annotate=False))[0]
    assert [n for n, _ in seen] == ["f0.xlsx", "f1.xlsx"]
    assert seen[0][1] == len(full.findings) > 0
    assert [type(r) for r in kept] == [ReportSummary, ReportSummary]
    assert [r.findings for r in kept] == [[], []]
    assert kept[0].counts == full.counts
    assert kept[0].exit_code == full.exit_code == 1


def test_slim_results_give_the_same_cross_findings(catalog: Catalog, tmp_path: Path) -> None:
    folder = tmp_path / "回收"
    dept_published(catalog, folder)
    # A contradicting target (a text rule) and the projects' amounts against the department (amount rules).
    project = replace(SHEHUIHUA, targets=[*SHEHUIHUA.targets, ("qty", "评选最美科技工作者", "≥12个", "=12个", "")])
    project_published(catalog, folder, project)
    files = sorted(folder.glob("*.xlsx"))
    full = audit_paths(files, catalog, Options(annotate=False))
    kept = audit_paths(files, catalog, Options(annotate=False), keep_findings=False)
    assert [c.inputs for c in kept] == [{}, {}]
    assert all(set(c.values) <= set(c.places) for c in kept)
    assert len(kept[0].values) < len(full[0].values) / 4
    expected = [(c.finding.code, c.finding.actual, c.finding.expected) for c in cross_check(full, catalog)]
    assert ("target-contradicts-department", "≥12个", "≥10个") in expected
    assert [(c.finding.code, c.finding.actual, c.finding.expected) for c in cross_check(kept, catalog)] == expected
    assert [slim(c).report.counts for c in full] == [c.report.counts for c in kept]


def test_jsonl_gives_one_line_per_file_then_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("cn_inserted_lo.xlsx", "tianfu_12_qty_lo.xlsx"):
        shutil.copy(DATA / name, tmp_path / name)
    args = ["check", str(tmp_path), "--no-annotate", "--workers", "1"]
    assert main([*args, "--json"]) == 1
    whole = json.loads(capsys.readouterr().out)
    assert main([*args, "--jsonl"]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3
    assert lines[:2] == whole["files"]
    assert [Path(f["file"]).name for f in lines[:2]] == ["cn_inserted_lo.xlsx", "tianfu_12_qty_lo.xlsx"]
    assert lines[2] == {k: v for k, v in whole.items() if k != "files"}
    assert lines[2]["summary"]["files"] == 2


def test_json_and_jsonl_together_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(DATA / "cn_inserted_lo.xlsx"), "--json", "--jsonl"]) == 2
    assert "--json 与 --jsonl 只能选一个" in capsys.readouterr().err
