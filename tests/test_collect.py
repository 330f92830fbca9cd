"""`collect`: 23 returned workbooks of 22 units rolled up into 汇总.xlsx and the history database."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from helpers import recalc_with_libreoffice, soffice
from published import DEPT_WRITTEN, KECHUANG_WRITTEN, corrected_dept_inputs
from seed_data import CN_IDENTITY, GZ_IDENTITY, PROJECT_IDENTITY, cn_inputs, dept_inputs, gz_inputs, kechuang_inputs

from xlsx_kpi.audit.collection import Collection
from xlsx_kpi.audit.figures import FIGURES, shown_value
from xlsx_kpi.batch.check import Options, audit_file, check_file
from xlsx_kpi.batch.collect import collect
from xlsx_kpi.cli import main
from xlsx_kpi.errors import XlsxKpiError
from xlsx_kpi.formats.expr import Value
from xlsx_kpi.formats.layout import build_layout
from xlsx_kpi.formats.plan import Identity
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.outputs.summary import write_summary
from xlsx_kpi.outputs.template import write_template
from xlsx_kpi.store.history import History, to_dataframe

D = Decimal
ROOT = Path(__file__).resolve().parents[1]
NAMES = [
    "资阳市科学技术协会",
    "资阳市教育局",
    "资阳市财政局",
    "资阳市民政局",
    "资阳市司法局",
    "资阳市人力资源和社会保障局",
    "资阳市自然资源和规划局",
    "资阳市生态环境局",
    "资阳市住房和城乡建设局",
    "资阳市交通运输局",
    "资阳市水务局",
    "资阳市农业农村局",
    "资阳市商务局",
    "资阳市文化广电旅游局",
    "资阳市卫生健康委员会",
    "资阳市退役军人事务局",
    "资阳市应急管理局",
    "资阳市审计局",
    "资阳市市场监督管理局",
    "资阳市统计局",
    "资阳市医疗保障局",
    "资阳市林业局",  # in the list, never returned
]
# Scores zeroed to move the seed's 95.35 into each grade band.
GRADE_CUTS = {
    "优": [],
    "良": ["social_benefit"],  # 85.35
    "中": ["social_benefit", "key_work_rate"],  # 75.35
    "差": ["social_benefit", "key_work_rate", "quality_rate", "completion_rate"],  # 59.35
}
VARIANTS = {1: "published", 2: "优", 3: "良", 4: "中", 5: "优", 6: "差", 7: "above-max"}
VARIANTS.update({i: "优良中差"[(i - 8) % 4] for i in range(8, 22)})
AMOUNT_PREFIXES = ("exec.", "fund.", "b.prev_carry_")


def code(i: int) -> str:
    return f"1560{i:02d}"


def scaled(inputs: dict[str, Value], k: int) -> dict[str, Value]:
    """Every amount times k, so each unit's 预算额 is distinct (36808 k 百元)."""
    return {
        key: v * k if isinstance(v, Decimal) and key.startswith(AMOUNT_PREFIXES) else v for key, v in inputs.items()
    }


def overwrite(path: Path, catalog: Catalog, workbook_id: str, written: dict[str, float]) -> None:
    """Type values over formula cells, as a unit pasting figures from its Word report."""
    layout = build_layout(catalog, catalog.workbook(workbook_id), Identity(year=2021))
    wb = openpyxl.load_workbook(path)
    for key, value in written.items():
        ref = layout.refs[key]
        wb[ref.sheet].cell(ref.row + 1, ref.col + 1).value = value
    wb.save(path)


def dept_workbook(
    catalog: Catalog, folder: Path, i: int, variant: str, *, year: int = 2021, name: str | None = None
) -> Path:
    unit = NAMES[i - 1]
    ident = Identity(year=year, unit_name=unit, unit_code=code(i))
    layout = build_layout(catalog, catalog.workbook("sc-department"), ident)
    inputs = dept_inputs() if variant == "published" else corrected_dept_inputs()
    inputs.update({"info.unit_name": unit, "info.unit_code": code(i)})
    for indicator in GRADE_CUTS.get(variant, []):
        inputs[f"s.{indicator}.score"] = D(0)
    if variant == "above-max":
        inputs["s.goal_fit.score"] = D(3)  # 分值 2
    path = folder / (name or f"{year}_{code(i)}_{unit}_部门整体支出绩效自评.xlsx")
    write_template(layout, path, inputs=scaled(inputs, i), force=True)
    if variant == "published":
        # The seed's typed-over figures, and a 投入 subtotal typed as 16 (the scores add up to 16.35).
        overwrite(path, catalog, "sc-department", {**DEPT_WRITTEN, "s.l1.input": 16})
    return path


@dataclass
class Batch:
    folder: Path
    units: Path
    files: list[Path]
    broken: Path
    duplicate_old: Path
    duplicate_new: Path
    project: Path
    hashes: dict[Path, str]
    collection: Collection
    summary: Path
    db: Path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def batch(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Batch:
    """Generated once: 21 departments, one project, one duplicate, one broken file; one unit never returns."""
    root = tmp_path_factory.mktemp("collect")
    folder = root / "回收"
    folder.mkdir()
    files = [dept_workbook(catalog, folder, i, VARIANTS[i]) for i in range(1, 22)]
    # 司法局 sent twice: yesterday's file had a score above its 分值, today's is correct.
    old = dept_workbook(
        catalog, folder, 5, "above-max", name="2021_156005_资阳市司法局_部门整体支出绩效自评（旧）.xlsx"
    )
    yesterday = time.time() - 86400
    os.utime(old, (yesterday, yesterday))
    project_layout = build_layout(catalog, catalog.workbook("sc-project"), PROJECT_IDENTITY)
    project = write_template(
        project_layout, folder / "2021_156001_资阳市科学技术协会_科创会_项目支出.xlsx", inputs=kechuang_inputs()
    )
    overwrite(project, catalog, "sc-project", KECHUANG_WRITTEN)
    broken = folder / "2021_156099_损坏.xlsx"
    broken.write_bytes(b"PK\x03\x04 this zip was cut off by the mail server")
    units = root / "单位清单.csv"
    lines = ["单位名称,预算单位编码,项目名称"] + [f"{n},{code(i)}," for i, n in enumerate(NAMES, start=1)]
    lines.append(f"资阳市科学技术协会,156001,{PROJECT_IDENTITY.project_name}")
    units.write_text("\n".join(lines) + "\n", encoding="utf-8")
    all_files = [*files, old, project, broken]
    hashes = {f: sha(f) for f in all_files}
    db = root / "history.sqlite"
    with History(db) as history:
        collection = collect([folder], catalog, units=units, history=history)
    summary = write_summary(collection, root / "汇总.xlsx")
    return Batch(folder, units, all_files, broken, old, files[4], project, hashes, collection, summary, db)


@functools.cache
def rows_of(path: Path, sheet: str, *, data_only: bool = False) -> list[list[object]]:
    wb = openpyxl.load_workbook(path, data_only=data_only)
    return [list(r) for r in wb[sheet].iter_rows(min_row=1, values_only=True)]


def summary_row(batch: Batch, unit_code: str, project: str | None = None) -> dict[str, object]:
    rows = rows_of(batch.summary, "汇总")
    header = [str(h) for h in rows[2]]
    [row] = [r for r in rows[3:] if r[1] == unit_code and (r[4] or None) == project]
    return dict(zip(header, row, strict=True))


# --- The summary workbook ------------------------------------------------------------------------------


def test_inputs_are_never_modified(batch: Batch) -> None:
    assert {f: sha(f) for f in batch.files} == batch.hashes
    assert sorted(p.name for p in batch.folder.iterdir()) == sorted(f.name for f in batch.files)


def test_one_row_per_unit_and_project_sorted_by_code(batch: Batch) -> None:
    rows = rows_of(batch.summary, "汇总")
    assert rows[0][0] == "2021年度预算绩效自评汇总"
    assert rows[2][:5] == ["单位", "编码", "年度", "表种", "项目"]
    # Above the table, which units sent which kinds (grouped: more than 10 units).
    assert "报送单位 21 个：报送部门整体和项目支出的 1 个单位（资阳市科学技术协会）；报送部门整体的 20 个单位（" in str(
        rows[1][0]
    )
    data = rows[3:25]
    assert [(r[1], r[4]) for r in data] == [
        ("156001", None),
        ("156001", "“科创会”专项经费"),
        *[(code(i), None) for i in range(2, 22)],
    ]
    # One 合计 row per kind: the project's money is inside the department's 政策和项目支出.
    assert [(r[0], r[3]) for r in rows[25:]] == [("合计（部门整体）", "部门整体"), ("合计（项目支出）", "项目支出")]
    assert [r[3] for r in data[:3]] == ["部门整体", "项目支出", "部门整体"]


def test_subtotals_as_filled_and_as_recalculated(batch: Batch, catalog: Catalog) -> None:
    seed = summary_row(batch, "156001")
    # 投入 typed over as 16; the scores add up to 16.35. 合计 typed as 95.35, which is right.
    assert (seed["投入\n填报"], seed["投入\n重算"]) == (16, 16.35)
    assert (seed["过程\n填报"], seed["过程\n重算"]) == (29, 29)
    assert (seed["合计\n填报"], seed["合计\n重算"], seed["等级"]) == (95.35, 95.35, "优")
    report = check_file(batch.files[0], catalog, Options(annotate=False))
    assert (seed["错误"], seed["警告"], seed["提示"]) == (
        report.counts["错误"],
        report.counts["警告"],
        report.counts["提示"],
    )
    assert seed["错误"] >= 5  # four rates typed over wrongly, and the 投入 subtotal
    assert (seed["预算额（百元）"], seed["执行额（百元）"], seed["结转结余额（百元）"]) == (36808, 48413, 2922)
    assert seed["执行率"] == '=IF(N(U4)=0,"",V4/U4)'
    assert seed["文件"] == "2021_156001_资阳市科学技术协会_部门整体支出绩效自评.xlsx"

    assert (summary_row(batch, "156003")["合计\n重算"], summary_row(batch, "156003")["等级"]) == (85.35, "良")
    assert (summary_row(batch, "156004")["合计\n重算"], summary_row(batch, "156004")["等级"]) == (75.35, "中")
    poor = summary_row(batch, "156006")
    assert (poor["合计\n重算"], poor["等级"], poor["错误"]) == (59.35, "差", 0)
    assert poor["预算额（百元）"] == 36808 * 6
    above = summary_row(batch, "156007")
    assert (above["合计\n重算"], above["错误"]) == (96.35, 1)  # 目标设定 3 of 2 points
    project = summary_row(batch, "156001", "“科创会”专项经费")
    assert (project["合计\n重算"], project["等级"], project["预算额（百元）"]) == (98.5, "优", 10600)


def test_amounts_total_row_is_a_live_subtotal(batch: Batch) -> None:
    rows = rows_of(batch.summary, "汇总")
    total = dict(zip([str(h) for h in rows[2]], rows[25], strict=True))
    # Only the visible rows (hidden 可见 column Z = SUBTOTAL(103, D)) of the row's own kind (D26).
    assert total["预算额（百元）"] == "=SUMIFS(U$4:U$25,$D$4:$D$25,$D26,$Z$4:$Z$25,1)"
    assert total["执行额（百元）"] == "=SUMIFS(V$4:V$25,$D$4:$D$25,$D26,$Z$4:$Z$25,1)"
    assert total["结转结余额（百元）"] == "=SUMIFS(W$4:W$25,$D$4:$D$25,$D26,$Z$4:$Z$25,1)"
    assert total["执行率"] == '=IF(N(U26)=0,"",V26/U26)'
    assert total["错误"] == "=SUMIFS(Q$4:Q$25,$D$4:$D$25,$D26,$Z$4:$Z$25,1)"
    assert total["合计\n重算"] is None  # scores are not added up
    assert rows[3][25] == "=SUBTOTAL(103,D4)"
    cached = rows_of(batch.summary, "汇总", data_only=True)
    # Σk for k = 1..21 is 231; the project's 10600 / 7678 / 2922 stay in the 项目支出 row.
    assert cached[25][20:24] == [36808 * 231, 48413 * 231, 2922 * 231, pytest.approx(48413 / 36808)]
    assert cached[26][20:24] == [10600, 7678, 2922, pytest.approx(7678 / 10600)]


def test_summary_sheet_format(batch: Batch) -> None:
    wb = openpyxl.load_workbook(batch.summary)
    ws = wb["汇总"]
    assert wb.sheetnames == ["汇总", "未报送", "重复报送", "问题清单", "图表"]
    assert ws.freeze_panes == "B4"
    assert ws.auto_filter.ref == "A3:Y25"
    assert ws["U4"].number_format == "#,##0.00" and ws["X4"].number_format == "0.00%"
    assert ws["G4"].number_format == "0.00"
    assert ws.page_setup.orientation == "landscape" and ws.page_setup.paperSize == 9
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToHeight == 0  # 1 page wide, any tall
    rules = {rng.sqref: [(r.type, r.operator, r.formula) for r in rng.rules] for rng in ws.conditional_formatting}
    assert rules["P4:P25"] == [("cellIs", "equal", [f'"{g}"']) for g in "优良中差"]
    assert rules["Q4:Q25"] == [("cellIs", "greaterThan", ["0"])]
    [(kind, _, [formula])] = rules["F4:F25"]
    assert kind == "expression" and "ABS(F4-G4)>0.005" in formula


def test_missing_duplicates_and_unlisted(batch: Batch) -> None:
    c = batch.collection
    assert [(r.unit_code, r.unit_name) for r in c.missing] == [("156022", "资阳市林业局")]
    assert c.expected == 23 and not c.unlisted
    missing = rows_of(batch.summary, "未报送")
    assert missing[2] == ["单位名称", "预算单位编码", "项目名称", "清单行号"]
    assert missing[3] == ["资阳市林业局", "156022", None, 23]
    assert "应报 23 份，已报 22 份，未报送 1 份" in str(missing[1][0])
    assert "另有 1 个文件无法读取" in str(missing[1][0])

    dupes = rows_of(batch.summary, "重复报送")
    assert [(r[1], r[5], r[7], r[9]) for r in dupes[3:]] == [
        ("156005", batch.duplicate_new.name, "采用", 0),
        ("156005", batch.duplicate_old.name, "未采用（有更新的文件）", 1),
    ]
    assert summary_row(batch, "156005")["文件"] == batch.duplicate_new.name


def test_problem_list(batch: Batch) -> None:
    c = batch.collection
    rows = rows_of(batch.summary, "问题清单")
    assert rows[2] == ["单位", "编码", "文件", "级别", "规则", "工作表", "单元格", "说明", "填报值", "应为"]
    cross_rows = sum(len(x.places) for x in c.cross)  # the seed's department and its project: 2 × 2 files
    assert cross_rows == 4
    assert len(rows) - 3 == sum(len(s.report.findings) for s in c.submissions) + 1 + cross_rows
    seed = [r for r in rows[3:] if r[1] == "156001" and r[4] == "rate-mismatch" and r[6] == "F7"]
    assert seed == [
        [
            "资阳市科学技术协会",
            "156001",
            "2021_156001_资阳市科学技术协会_部门整体支出绩效自评.xlsx",
            "错误",
            "rate-mismatch",
            "附件2",
            "F7",
            seed[0][7],
            "6.03%",
            "10.54%",
        ]
    ]
    assert "应为 10.54%，填报为 6.03%" in str(seed[0][7])
    [broken] = [r for r in rows[3:] if r[3] == "无法读取"]
    assert broken[2] == batch.broken.name and batch.broken.name in str(broken[7])
    assert not [r for r in rows[3:] if r[2] == batch.duplicate_old.name]  # superseded files are not listed
    ws = openpyxl.load_workbook(batch.summary)["问题清单"]
    links = {c.hyperlink.target for c in ws["C"] if c.hyperlink is not None}
    # Relative to the summary, Windows separators (XlsxWriter writes external links the way Excel does).
    assert "回收\\2021_156001_资阳市科学技术协会_部门整体支出绩效自评.xlsx" in links


def test_charts_are_native_excel_charts(batch: Batch) -> None:
    with zipfile.ZipFile(batch.summary) as z:
        names = set(z.namelist())
        assert {"xl/charts/chart1.xml", "xl/charts/chart2.xml", "xl/charts/chart3.xml"} <= names
        column, bar, bar2 = (z.read(f"xl/charts/chart{n}.xml").decode() for n in (1, 2, 3))
    # Grades counted per kind (two series), scores ranked per kind (one bar chart each).
    assert '<c:barDir val="col"/>' in column and "图表!$B$4:$B$8" in column and "图表!$C$4:$C$8" in column
    assert '<c:barDir val="bar"/>' in bar and "图表!$F$4:$F$24" in bar and "部门整体自评合计得分" in bar
    assert "图表!$F$27<" in bar2 and "项目支出自评合计得分" in bar2
    grades = rows_of(batch.summary, "图表", data_only=True)
    assert grades[2][:3] == ["等级", "部门整体", "项目支出"]
    assert [tuple(r[:3]) for r in grades[3:8]] == [
        ("优", 8, 1),
        ("良", 5, 0),
        ("中", 4, 0),
        ("差", 4, 0),
        ("未评级", 0, 0),
    ]
    assert grades[3][4:7] == ["资阳市自然资源和规划局", 96.35, "优"]  # highest department total first
    assert grades[26][4:7] == ["资阳市科学技术协会·“科创会”专项经费", 98.5, "优"]
    assert rows_of(batch.summary, "图表")[3][1] == '=COUNTIFS(汇总!$P$4:$P$25,"优",汇总!$D$4:$D$25,"部门整体")'


def test_other_regions_leave_missing_figures_blank(catalog: Catalog, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    for wid, ident, inputs in (
        ("cn-department", CN_IDENTITY, cn_inputs()),
        ("gz-department", GZ_IDENTITY, gz_inputs()),
    ):
        write_template(build_layout(catalog, catalog.workbook(wid), ident), folder / f"{wid}.xlsx", inputs=inputs)
    c = collect([folder], catalog)
    summary = write_summary(c, folder / "汇总.xlsx")
    rows = rows_of(summary, "汇总")
    cn, gz = (dict(zip([str(h) for h in rows[2]], r, strict=True)) for r in rows[3:5])
    assert (cn["编码"], cn["产出\n填报"], cn["合计\n重算"], cn["投入\n重算"], cn["预算额"]) == (
        "430406001",
        50,
        99,
        None,
        None,
    )
    assert (gz["编码"], gz["合计\n重算"], gz["产出\n重算"], gz["执行额"]) == ("440100001", 93.89, None, None)
    # A summary left in the folder is not taken for a returned workbook on the next run.
    assert [s.file.name for s in collect([folder], catalog).submissions] == ["cn-department.xlsx", "gz-department.xlsx"]


def test_exit_codes(batch: Batch, catalog: Catalog, tmp_path: Path) -> None:
    assert batch.collection.exit_code == 2  # the broken file
    usable = [f for f in batch.files if f != batch.broken]
    assert collect(usable, catalog).exit_code == 1  # 错误 in the seed's own workbook


@pytest.mark.skipif(soffice() is None, reason="LibreOffice (soffice) not installed; .ci/run installs it")
def test_libreoffice_recalculates_the_totals(batch: Batch, tmp_path: Path) -> None:
    [saved] = recalc_with_libreoffice([batch.summary], tmp_path / "lo")
    wb = openpyxl.load_workbook(saved, data_only=True)
    ws = wb["汇总"]
    # LibreOffice's own SUMIFS per kind: 21 departments (Σk = 231), the project alone; never the two added.
    assert [ws[f"{c}26"].value for c in "UVW"] == [36808 * 231, 48413 * 231, 2922 * 231]
    assert [ws[f"{c}27"].value for c in "UVW"] == [10600, 7678, 2922]
    assert ws["X26"].value == pytest.approx(48413 / 36808)
    assert ws["X4"].value == pytest.approx(48413 / 36808)
    subs = batch.collection.submissions
    assert ws["Q26"].value == sum(s.report.counts["错误"] for s in subs if s.kind == "department")
    assert ws["Q27"].value == sum(s.report.counts["错误"] for s in subs if s.kind == "project")
    assert [ws[f"Z{r}"].value for r in range(4, 26)] == [1] * 22  # nothing filtered
    assert [(wb["图表"][f"B{r}"].value, wb["图表"][f"C{r}"].value) for r in range(4, 9)] == [
        (8, 1),
        (5, 0),
        (4, 0),
        (4, 0),
        (0, 0),
    ]


def test_cli_collect(batch: Batch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "汇总.xlsx"
    db = tmp_path / "cli.sqlite"
    args = ["collect", str(batch.folder), "--units", str(batch.units), "-o", str(out), "--db", str(db)]
    assert main([*args, "--workers", "2"]) == 2
    text = capsys.readouterr().out
    assert "未报送：156022 资阳市林业局" in text
    assert f"重复报送：采用 {batch.duplicate_new.name}" in text
    assert "无法读取：文件" in text and "新存入 22 份" in text
    assert main(args) == 2
    assert "文件已存在" in capsys.readouterr().err
    assert main([*args, "--force"]) == 2
    assert "新存入 0 份，已有 22 份" in capsys.readouterr().out
    assert {f: sha(f) for f in batch.files} == batch.hashes


def test_summary_that_cannot_be_written(batch: Batch, tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file")
    target = blocker / "汇总.xlsx"
    with pytest.raises(XlsxKpiError) as info:
        write_summary(batch.collection, target)
    assert info.value.render() == f"文件 {target}：无法写入：已有同名的文件（File exists）"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_folder"]


# --- History --------------------------------------------------------------------------------------------


def dump(db: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(db)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in ("submission", "finding")}
    finally:
        conn.close()


def test_history_stores_each_file_once(batch: Batch, catalog: Catalog, tmp_path: Path) -> None:
    assert batch.collection.stored == 22 and batch.collection.already_stored == 0
    db = tmp_path / "again.sqlite"
    db.write_bytes(batch.db.read_bytes())
    before = dump(db)
    with History(db) as history:
        again = collect([batch.folder], catalog, units=batch.units, history=history)
    assert (again.stored, again.already_stored) == (0, 22)
    assert dump(db) == before
    assert len(before["submission"]) == 22
    with History(batch.db, readonly=True) as history:
        [seed] = [r for r in history.records("156001") if r.workbook_id == "sc-department"]
    assert seed.values["s.total"] == D("95.35") and seed.values["s.l1.input"] == D("16.35")
    assert seed.written["s.l1.input"] == D(16) and seed.inputs["exec.basic.budget"] == D(20678)
    assert seed.sha256 == batch.hashes[batch.files[0]]
    assert {f["code"] for f in seed.findings} >= {"rate-mismatch", "sum-mismatch"}
    assert seed.counts["错误"] == summary_row(batch, "156001")["错误"]


def test_rates_are_shown_to_four_decimals_however_large() -> None:
    rate = next(f for f in FIGURES if f.id == "carry_rate")
    assert shown_value(Decimal("0.060356"), rate) == Decimal("0.0604")
    assert shown_value(Decimal("1.5E+30"), rate) == Decimal("1.5E+30")  # quantize would overflow the context


def test_history_to_dataframe(batch: Batch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    df = to_dataframe(batch.db)
    assert len(df) == 22
    seed = df[(df.unit_code == "156001") & (df.workbook_id == "sc-department")].iloc[0]
    assert (seed["s.total"], seed["exec.total.budget"], seed["grade"]) == (D("95.35"), D(36808), "优")
    csv = tmp_path / "历史.csv"
    assert main(["history", "--db", str(batch.db), "--unit", "156006", "--csv", str(csv)]) == 0
    exported = pd.read_csv(csv, dtype=str, encoding="utf-8-sig")
    assert list(exported["unit_code"]) == ["156006"] and list(exported["s.total"]) == ["59.35"]


def test_an_interrupted_store_leaves_nothing(batch: Batch, catalog: Catalog, tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    checked = audit_file(batch.files[1], catalog)
    history = History(db)

    def fail(*args: object) -> None:
        History._insert_findings(history, *args)  # type: ignore[arg-type]
        raise OSError("disk full")

    history._insert_findings = fail  # type: ignore[method-assign]
    with pytest.raises(OSError):
        history.store(checked, sha256="x" * 64, file_mtime=checked_mtime(batch.files[1]))
    assert dump(db) == {"submission": [], "finding": []}
    history.close()
    with History(db) as fresh:
        assert fresh.store(checked, sha256="x" * 64, file_mtime=checked_mtime(batch.files[1]))
        assert fresh.count() == 1


def checked_mtime(path: Path) -> object:
    from datetime import datetime

    return datetime.fromtimestamp(path.stat().st_mtime)


KILLED_CHILD = """
import sys, time
from datetime import datetime
from pathlib import Path
from xlsx_kpi.batch.check import audit_file
from xlsx_kpi.store.history import History
from xlsx_kpi.formats.catalog import load_specs

checked = audit_file(Path(sys.argv[2]), load_specs())
history = History(Path(sys.argv[1]))
real = history._insert_findings

def slow(*args):
    real(*args)
    print("inside", flush=True)
    time.sleep(60)

history._insert_findings = slow
history.store(checked, sha256="k" * 64, file_mtime=datetime.now())
"""


def test_a_killed_collect_leaves_no_half_written_submission(batch: Batch, tmp_path: Path) -> None:
    db = tmp_path / "killed.sqlite"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_CHILD, str(db), str(batch.files[1])],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "inside"  # the row and its findings are written, not committed
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with History(db) as history:  # the next writer rolls the journal back
        assert history.count() == 0
        assert history.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert dump(db) == {"submission": [], "finding": []}


def two_year_inputs(year: int, *, project_carry: int, prev_project: int | None) -> dict[str, Value]:
    inputs = corrected_dept_inputs()
    inputs["exec.project.carry"] = D(project_carry)
    inputs["fund.carry.general"] = D(project_carry)
    for key in ("b.prev_carry_basic", "b.prev_carry_project", "b.prev_carry_f_general"):
        inputs.pop(key)  # blank: to be taken from the history
    if prev_project is not None:
        inputs["b.prev_carry_basic"] = D(0)
        inputs["b.prev_carry_project"] = D(prev_project)
        inputs["b.prev_carry_f_general"] = D(prev_project)
    return inputs


def year_workbook(catalog: Catalog, folder: Path, year: int, inputs: dict[str, Value], name: str) -> Path:
    ident = Identity(year=year, unit_name="资阳市科学技术协会", unit_code="156001")
    layout = build_layout(catalog, catalog.workbook("sc-department"), ident)
    return write_template(layout, folder / name, inputs=inputs, force=True)


def test_two_years(catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    y2021, y2022 = tmp_path / "2021", tmp_path / "2022"
    year_workbook(catalog, y2021, 2021, corrected_dept_inputs(), "2021.xlsx")  # 结转结余额 2922 (project)
    blank = year_workbook(catalog, y2022, 2022, two_year_inputs(2022, project_carry=1461, prev_project=None), "a.xlsx")
    db = tmp_path / "h.sqlite"
    with History(db) as history:
        assert collect([y2021], catalog, history=history).exit_code == 0
        c2022 = collect([y2022], catalog, history=history)
    [sub] = c2022.submissions
    # 上年度结转结余额 left blank: taken from the stored 2021 record (0 + 2922), so (1461 - 2922) / 2922.
    assert sub.value("b.prev_carry_total") == D(2922)
    assert sub.value("exec.total.carry_change") == D("-0.5")
    assert sub.value("exec.project.carry_change") == D("-0.5")
    assert sub.value("fund.carry_change.general") == D("-0.5")
    assert sub.value("exec.basic.carry_change") == ""  # last year's 0 is no base for a rate
    filled = [(f.where, f.code) for f in sub.report.findings if f.code.startswith("prior-year")]
    assert ("基础数据!C15", "prior-year-filled") in filled and len(filled) == 6
    assert c2022.exit_code == 0

    # Written, but not what the unit reported for 2021: an error naming both figures and the year.
    wrong = year_workbook(
        catalog, tmp_path / "wrong", 2022, two_year_inputs(2022, project_carry=1461, prev_project=3000), "b.xlsx"
    )
    with History(db, readonly=True) as history:
        report = check_file(wrong, catalog, Options(annotate=False), history=history)
        checked = audit_file(wrong, catalog, history=history)
    mismatches = [f for f in report.findings if f.code == "prior-year-mismatch"]
    assert [(f.where, f.severity.value, f.expected, f.actual) for f in mismatches] == [
        ("基础数据!C15", "错误", "2922", "3000"),
        ("基础数据!C17", "错误", "2922", "3000"),
    ]
    assert "3000" in mismatches[0].message and "2922" in mismatches[0].message and "2021 年" in mismatches[0].message
    assert checked.values["exec.total.carry_change"] == D("-0.513")  # from the figure written: (1461-3000)/3000
    assert check_file(wrong, catalog, Options(annotate=False)).counts["错误"] == 0  # without history: no check
    assert main(["check", str(wrong), "--no-annotate", "--db", str(db)]) == 1
    assert "prior-year-mismatch" in capsys.readouterr().out

    assert main(["history", "--unit", "156001", "--db", str(db), "--json"]) == 0
    years = json.loads(capsys.readouterr().out)["years"]
    assert [(y["year"], y["total"], y["carry"], y["carry_change"]) for y in years] == [
        (2021, "95.35", "2922", "-0.7988"),
        (2022, "95.35", "1461", "-0.5"),
    ]
    assert main(["history", "--unit", "156001", "--db", str(db)]) == 0
    table = capsys.readouterr().out
    assert "结转结余额" in table and "1,461.00" in table and "2,922.00" in table
    assert blank.exists()


def test_both_years_in_one_folder(catalog: Catalog, tmp_path: Path) -> None:
    """The later year is checked after the earlier one is stored, whatever order the files come in."""
    folder = tmp_path / "in"
    year_workbook(catalog, folder, 2022, two_year_inputs(2022, project_carry=1461, prev_project=None), "a_2022.xlsx")
    year_workbook(catalog, folder, 2021, corrected_dept_inputs(), "b_2021.xlsx")
    with History(tmp_path / "h.sqlite") as history:
        c = collect([folder], catalog, history=history)
        assert c.stored == 2
        [later] = [s for s in c.submissions if s.report.year == "2022"]
        assert later.value("exec.total.carry_change") == D("-0.5")
        assert history.latest("156001", "sc-department", "", 2022).values["exec.total.carry_change"] == D("-0.5")  # type: ignore[union-attr]


def test_readme_documents_collect_and_history() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in ("xlsx-kpi collect", "xlsx-kpi history", "--db"):
        assert command in readme
