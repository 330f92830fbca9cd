"""collect run again (issue 14): an unchanged summary is kept, a long batch prints only the rows needing attention."""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from published import corrected_dept_inputs
from test_collect import Batch, batch, dept_workbook, two_year_inputs, year_workbook  # noqa: F401 - session's batch

from xlsx_kpi.batch import collect as collect_module
from xlsx_kpi.batch.collect import collect
from xlsx_kpi.cli import main, render
from xlsx_kpi.formats.spec import Catalog, default_dir
from xlsx_kpi.store import history as history_module
from xlsx_kpi.store.history import History

KEPT = "汇总表未变，未重写："
WRITTEN = "汇总工作簿："


@dataclass
class Round:
    folder: Path
    db: Path
    summary: Path

    def collect(self, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
        args = ["collect", str(self.folder), "--db", str(self.db), "-o", str(self.summary), "--workers", "1"]
        code = main([*args, *extra])
        return code, capsys.readouterr().out


@pytest.fixture()
def again(batch: Batch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Round:  # noqa: F811
    """The session's batch copied (files with their times, the history database), collected once into 汇总.xlsx."""
    folder = tmp_path / "回收"
    shutil.copytree(batch.folder, folder)
    db = tmp_path / "history.sqlite"
    shutil.copyfile(batch.db, db)
    r = Round(folder, db, tmp_path / "汇总.xlsx")
    code, out = r.collect(capsys)
    assert code == 2  # the broken file
    assert out.rstrip().endswith(f"{WRITTEN}{r.summary}")
    return r


def state(path: Path) -> tuple[int, bytes]:
    return path.stat().st_mtime_ns, path.read_bytes()


def test_an_unchanged_folder_keeps_the_summary(again: Round, capsys: pytest.CaptureFixture[str]) -> None:
    before = state(again.summary)
    code, out = again.collect(capsys, "--force")
    assert code == 2  # exit code as when it is written
    assert out.rstrip().splitlines()[-1] == f"{KEPT}{again.summary}"
    assert "新存入 0 份，已有 22 份" in out
    assert state(again.summary) == before
    with sqlite3.connect(again.db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM summary_file").fetchone()[0] == 1


def test_without_force_an_existing_summary_is_refused_as_before(
    again: Round, capsys: pytest.CaptureFixture[str]
) -> None:
    before = state(again.summary)
    assert main(["collect", str(again.folder), "--db", str(again.db), "-o", str(again.summary)]) == 2
    assert "文件已存在；如需覆盖请加 --force" in capsys.readouterr().err
    assert state(again.summary) == before


def test_a_changed_file_rewrites_the_summary(
    again: Round, catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    before = state(again.summary)
    # Unit 2 (资阳市教育局) sends its workbook again with other scores.
    dept_workbook(catalog, again.folder, 2, "差")
    code, out = again.collect(capsys, "--force")
    assert code == 2
    assert out.rstrip().splitlines()[-1] == f"{WRITTEN}{again.summary}"
    assert "新存入 1 份，已有 21 份" in out
    assert state(again.summary) != before
    # And then it is the summary of record: run again, it is kept.
    code, out = again.collect(capsys, "--force")
    assert out.rstrip().splitlines()[-1] == f"{KEPT}{again.summary}"


def test_a_deleted_summary_is_written_again(again: Round, capsys: pytest.CaptureFixture[str]) -> None:
    again.summary.unlink()
    code, out = again.collect(capsys)
    assert out.rstrip().splitlines()[-1] == f"{WRITTEN}{again.summary}"
    assert again.summary.stat().st_size > 10_000


def test_an_edited_summary_is_written_again(again: Round, capsys: pytest.CaptureFixture[str]) -> None:
    wb = openpyxl.load_workbook(again.summary)
    wb["汇总"]["A1"] = "我的备注"  # the reviewer typed into it and saved
    wb.save(again.summary)
    code, out = again.collect(capsys, "--force")
    assert out.rstrip().splitlines()[-1] == f"{WRITTEN}{again.summary}"
    assert openpyxl.load_workbook(again.summary, read_only=True)["汇总"]["A1"].value == "2021年度预算绩效自评汇总"


def test_recheck_always_writes_the_summary(again: Round, capsys: pytest.CaptureFixture[str]) -> None:
    before = state(again.summary)
    code, out = again.collect(capsys, "--force", "--recheck")
    assert out.rstrip().splitlines()[-1] == f"{WRITTEN}{again.summary}"
    assert state(again.summary)[0] != before[0]


def test_another_unit_list_writes_the_summary(
    again: Round,
    batch: Batch,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    units = tmp_path / "单位清单.csv"
    units.write_text(batch.units.read_text(encoding="utf-8") + "资阳市新单位,156099,\n", encoding="utf-8")
    code, out = again.collect(capsys, "--force", "--units", str(units))
    assert "未报送：156099 资阳市新单位" in out
    assert out.rstrip().splitlines()[-1] == f"{WRITTEN}{again.summary}"


def test_the_record_is_per_summary_path(again: Round, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "另一份汇总.xlsx"
    code = main(["collect", str(again.folder), "--db", str(again.db), "-o", str(other), "--workers", "1"])
    assert capsys.readouterr().out.rstrip().splitlines()[-1] == f"{WRITTEN}{other}"
    with History(again.db) as history:
        assert history.summary_record(again.summary) is not None
        assert history.summary_record(other) is not None
        assert history.summary_record(tmp_path / "没有.xlsx") is None
    assert code == 2


def test_a_long_batch_lists_only_the_rows_needing_attention(
    again: Round, catalog: Catalog, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "LONG_BATCH", 10)  # 22 submissions: a long batch
    code, out = again.collect(capsys, "--force")
    lines = out.splitlines()
    assert lines[:5] == [
        "汇总：采用 22 份，需要注意的 3 份（有错误、警告或本次新存入）逐份列出：",
        "  156001 资阳市科学技术协会（2021）：合计 95.35 优，错误 5、警告 3、已说明 0、提示 1",
        "  156001 资阳市科学技术协会（2021，“科创会”专项经费）：合计 98.50 优，错误 5、警告 1、已说明 0、提示 1",
        "  156007 资阳市自然资源和规划局（2021）：合计 96.35 优，错误 1、警告 0、已说明 3、提示 1",
        "其余 19 份无错误、无警告、此前已存入（优 6 份、良 5 份、中 4 份、差 4 份），未逐行列出，"
        f"见汇总工作簿：{again.summary}",
    ]
    assert "│" not in out  # no table
    assert "无法读取：文件 " in out and "重复报送：采用 2021_156005_资阳市司法局" in out  # as before
    # A file sent again is listed as new even without errors or warnings.
    dept_workbook(catalog, again.folder, 2, "差")
    code, out = again.collect(capsys, "--force")
    lines = out.splitlines()
    assert lines[0] == "汇总：采用 22 份，需要注意的 4 份（有错误、警告或本次新存入）逐份列出："
    assert [line for line in lines if line.startswith("  156002 ")] == [
        "  156002 资阳市教育局（2021）：合计 59.35 差，错误 0、警告 0、已说明 3、提示 1；本次新存入"
    ]
    assert lines[5].startswith("其余 18 份无错误、无警告、此前已存入（优 5 份、良 5 份、中 4 份、差 4 份）")


def test_a_short_batch_prints_the_table_as_before(again: Round, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = again.collect(capsys, "--force")
    assert "逐份列出" not in out
    rows = [line for line in out.splitlines() if "156007" in line and "│" in line]
    assert len(rows) == 1 and "96.35" in rows[0]


def test_check_of_a_long_folder_lists_only_files_needing_attention(
    again: Round, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "LONG_BATCH", 10)
    code = main(["check", str(again.folder), "--no-annotate", "--workers", "1"])
    assert code == 2
    lines = capsys.readouterr().out.splitlines()
    assert lines[:7] == [
        "审核汇总：共 24 份，需要注意的 5 份（有错误、警告或无法读取）逐份列出：",
        "  2021_156001_资阳市科学技术协会_科创会_项目支出.xlsx（资阳市科学技术协会）：有错误，合计 98.50 优，"
        "错误 5、警告 1、已说明 0、提示 1",
        "  2021_156001_资阳市科学技术协会_部门整体支出绩效自评.xlsx（资阳市科学技术协会）：有错误，合计 95.35 优，"
        "错误 5、警告 3、已说明 0、提示 1",
        "  2021_156005_资阳市司法局_部门整体支出绩效自评（旧）.xlsx（资阳市司法局）：有错误，合计 96.35 优，"
        "错误 1、警告 0、已说明 3、提示 1",
        "  2021_156007_资阳市自然资源和规划局_部门整体支出绩效自评.xlsx（资阳市自然资源和规划局）：有错误，"
        "合计 96.35 优，错误 1、警告 0、已说明 3、提示 1",
        "  2021_156099_损坏.xlsx：无法读取",
        "其余 19 份通过（无错误、无警告；优 6 份、良 5 份、中 4 份、差 4 份），未逐行列出；加 --json 可得每份的结果",
    ]
    assert lines[7].startswith("无法读取：文件 ")


@pytest.fixture()
def audited(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files collect reads and audits."""
    names: list[str] = []
    real = collect_module.audit_paths

    def counting(files, *args, **kwargs):  # type: ignore[no-untyped-def]
        names.extend(f.name for f in files)
        return real(files, *args, **kwargs)

    monkeypatch.setattr(collect_module, "audit_paths", counting)
    return names


def test_files_checked_by_another_version_are_read_once_more_only(
    batch: Batch,  # noqa: F811
    catalog: Catalog,
    tmp_path: Path,
    audited: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tmp_path / "history.sqlite"
    shutil.copyfile(batch.db, db)
    monkeypatch.setattr(history_module, "__version__", "9.9.9")  # an upgrade
    with History(db) as history:
        first = collect([batch.folder], catalog, units=batch.units, history=history)
    assert len(audited) == 24 and (first.stored, first.already_stored) == (0, 22)
    with History(db) as history:
        again = collect([batch.folder], catalog, units=batch.units, history=history)
    # The 22 stored files got this version's audit: only the broken file and the older duplicate are read.
    assert sorted(audited[24:]) == sorted([batch.broken.name, batch.duplicate_old.name])
    assert [s.report.flatten("code", "actual") for s in again.submissions] == [
        s.report.flatten("code", "actual") for s in first.submissions
    ]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT DISTINCT tool_version FROM submission").fetchall() == [("9.9.9",)]


def test_edited_specs_read_every_file_again(
    batch: Batch,  # noqa: F811
    catalog: Catalog,
    tmp_path: Path,
    audited: list[str],
) -> None:
    db = tmp_path / "history.sqlite"
    shutil.copyfile(batch.db, db)
    sheets = tmp_path / "sheets"
    shutil.copytree(default_dir(), sheets)
    with History(db) as history:
        collect([batch.folder], catalog, units=batch.units, history=history, sheets=sheets)
    assert len(audited) == 2  # the same specs elsewhere: nothing stored is read again
    spec = sheets / "sc-department.yaml"
    spec.write_text(spec.read_text(encoding="utf-8") + "\n# 本地修改\n", encoding="utf-8")
    with History(db) as history:
        collect([batch.folder], catalog, units=batch.units, history=history, sheets=sheets)
    assert len(audited) == 2 + 24
    with History(db) as history:
        collect([batch.folder], catalog, units=batch.units, history=history, sheets=sheets)
    assert len(audited) == 2 + 24 + 2


def as_version_1(data: dict[str, Any]) -> dict[str, Any]:
    """A snapshot as the first release of the snapshot wrote it: one tagged value per key."""
    old = dict(data)
    del old["v"]
    for part in ("inputs", "values", "written"):
        m = data[part]
        old[part] = {**m["s"], **{k: {"d": v} for k, v in m["d"].items()}, **{k: {"e": v} for k, v in m["e"].items()}}
    return old


def test_snapshots_written_before_are_still_read(
    batch: Batch,  # noqa: F811
    catalog: Catalog,
    tmp_path: Path,
    audited: list[str],
) -> None:
    db = tmp_path / "history.sqlite"
    shutil.copyfile(batch.db, db)
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT sha256, snapshot FROM submission").fetchall()
        assert {json.loads(s)["v"] for _, s in rows} == {2}
        conn.executemany(
            "UPDATE submission SET snapshot = ? WHERE sha256 = ?",
            [(json.dumps(as_version_1(json.loads(s)), ensure_ascii=False), sha) for sha, s in rows],
        )
    with History(db) as history:
        again = collect([batch.folder], catalog, units=batch.units, history=history)
    assert sorted(audited) == sorted([batch.broken.name, batch.duplicate_old.name])
    first = batch.collection
    assert [s.checked.values for s in again.submissions] == [s.checked.values for s in first.submissions]
    assert [s.checked.inputs for s in again.submissions] == [s.checked.inputs for s in first.submissions]
    assert [s.checked.written for s in again.submissions] == [s.checked.written for s in first.submissions]
    # Figures keep their exponents: 投入 of the published 资阳市科学技术协会 workbook typed as 16, recalculated 16.35.
    kexie = next(s for s in again.submissions if s.report.unit_code == "156001" and not s.report.project_name)
    assert (str(kexie.checked.written["s.l1.input"]), str(kexie.checked.values["s.l1.input"])) == ("16", "16.35")


def test_check_of_a_long_folder_says_where_the_other_copies_are(
    again: Round, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "LONG_BATCH", 10)
    out_dir = tmp_path / "审核"
    main(["check", str(again.folder), "--out-dir", str(out_dir), "--workers", "1"])
    lines = capsys.readouterr().out.splitlines()
    passed = (
        "其余 19 份通过（无错误、无警告；优 6 份、良 5 份、中 4 份、差 4 份），未逐行列出；加 --json 可得每份的结果"
    )
    assert passed in lines
    # One line says where all 23 copies are (the 24th file is unreadable); none is named on a line of its own.
    assert f"审核文件 23 份在 {out_dir}" in lines and len(list(out_dir.glob("*_审核.xlsx"))) == 23
    assert not [line for line in lines if line.startswith("审核文件：")]
    problems = [line for line in lines if line.startswith(("无法读取", "未生成"))]
    assert len(problems) == 1 and "2021_156099_损坏.xlsx" in problems[0]


def test_a_long_folder_checked_in_place_says_the_copies_are_beside_the_files(
    again: Round, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "LONG_BATCH", 10)
    folder = tmp_path / "就地审核"
    shutil.copytree(again.folder, folder)
    (folder / "子文件夹").mkdir()
    first = sorted(folder.glob("2021_156002_*.xlsx"))[0]
    first.rename(folder / "子文件夹" / first.name)
    main(["check", str(folder), "--workers", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert "审核文件 23 份在各原文件旁（原文件名后加“_审核”）" in lines
    assert len(list(folder.rglob("*_审核.xlsx"))) == 23


def test_a_file_checked_again_for_its_previous_year_keeps_that_audit(
    catalog: Catalog, tmp_path: Path, audited: list[str]
) -> None:
    folder = tmp_path / "in"
    year_workbook(catalog, folder, 2022, two_year_inputs(2022, project_carry=1461, prev_project=None), "a_2022.xlsx")
    db = tmp_path / "h.sqlite"
    with History(db) as history:
        alone = collect([folder], catalog, history=history)
    assert alone.submissions[0].value("exec.total.carry_change") != D("-0.5")  # no 2021 figure to compare with
    # The 2021 workbook comes in: stored first, then 2022 (already stored) is checked again against it.
    year_workbook(catalog, folder, 2021, corrected_dept_inputs(), "b_2021.xlsx")
    with History(db) as history:
        both = collect([folder], catalog, history=history)
    assert (both.stored, both.already_stored) == (1, 1)
    assert audited == ["a_2022.xlsx", "b_2021.xlsx"]
    # Run again: nothing is read, and 2022 is as checked against 2021, not as first stored.
    with History(db) as history:
        again = collect([folder], catalog, history=history)
    assert audited == ["a_2022.xlsx", "b_2021.xlsx"]
    [later] = [s for s in again.submissions if s.report.year == "2022"]
    assert later.value("exec.total.carry_change") == D("-0.5")
    assert [f.code for f in later.report.findings].count("prior-year-filled") == 6
