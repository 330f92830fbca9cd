"""Issue 10 (template side): rows as needed, rows a unit inserts, approved targets, the national form for any unit."""

from __future__ import annotations

import json
import subprocess
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from helpers import fill, soffice
from seed_data import CN_IDENTITY, cn_inputs, kechuang_inputs

from xlsx_kpi.audit.cells import to_inputs
from xlsx_kpi.audit.findings import Severity
from xlsx_kpi.audit.reader import read_workbook
from xlsx_kpi.audit.report import Report
from xlsx_kpi.audit.rules import Context
from xlsx_kpi.audit.rules.indicators import indicator_rows
from xlsx_kpi.batch.check import Options, check_file
from xlsx_kpi.cli import main
from xlsx_kpi.errors import XlsxKpiError
from xlsx_kpi.formats.layout import build_layout
from xlsx_kpi.formats.plan import Identity
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.formats.units import TargetRow, parse_rows, read_targets
from xlsx_kpi.outputs.template import shaped, write_template

D = Decimal
DATA = Path(__file__).resolve().parent / "data"
TIANFU = json.loads((DATA / "tianfu_qty.json").read_text(encoding="utf-8"))["rows"]
TIANFU_ARGS = ["-y", "2021", "-u", "资阳市科学技术协会", "-c", "015001", "-p", "天府科技云"]
TIANFU_ARGS += ["--project-type", "民生保障"]


def names_read(path: Path, catalog: Catalog) -> list[tuple[str, str]]:
    """(address, 三级指标) of every 数量指标 row, as the rules see them (indicator_rows over the filing)."""
    filing = read_workbook(path, catalog)
    ctx = Context(filing=filing, inputs=to_inputs(filing), values={}, readings={})
    return [
        (filing.cells[row.keys["name"]].address, row.text(ctx, "name"))
        for row in indicator_rows(ctx)
        if row.level2 == "数量指标"
    ]


def sheet2(report: Report) -> list[tuple[str, str]]:
    """附件2 findings, leaving out the blank 年度总体目标 and the indicator-quality notes on empty groups."""
    skip = ("text-missing", "indicator-kind-missing")
    return [(f.where, f.code) for f in report.findings if f.sheet == "附件2" and f.code not in skip]


# -- rows as needed ---------------------------------------------------------------------------------------


def test_rows_option_gives_twelve_quantity_rows(catalog: Catalog, tmp_path: Path) -> None:
    out = tmp_path / "t.xlsx"
    assert main(["template", "-k", "project", *TIANFU_ARGS, "--rows", "数量=12,质量=4", "-o", str(out)]) == 0
    wb = openpyxl.load_workbook(out)
    meta = dict(wb["_xlsx_kpi"].iter_rows(values_only=True))
    assert json.loads(str(meta["rows"])) == {"tgt.qty": 12, "tgt.quality": 4}
    # Every name, validation and merge follows the 12 rows: 数量指标 spans D20:D31, 质量指标 D32:D35.
    assert wb.defined_names["K_tgt__qty__12__name"].attr_text == "'附件2'!$D$31"
    assert wb.defined_names["K_tgt__quality__4__result"].attr_text == "'附件2'!$F$35"
    ws = wb["附件2"]
    assert {"C20:C31", "C32:C35"} <= {str(m) for m in ws.merged_cells.ranges}
    assert "D31" in {str(d.sqref) for d in ws.data_validations.dataValidation}
    assert ws.protection.insertRows is False  # inserting rows stays allowed on the protected sheet
    layout = read_workbook(out, catalog).layout
    parts = ("name", "target", "result")
    values = {f"tgt.qty.{i}.{p}": v for i, row in enumerate(TIANFU, 1) for p, v in zip(parts, row, strict=True)}
    filled = fill(out, layout, values, tmp_path / "filled.xlsx")
    assert names_read(filled, catalog) == [(f"附件2!D{19 + i}", row[0]) for i, row in enumerate(TIANFU, 1)]
    report = check_file(filled, catalog, Options(annotate=False))
    # Audited like the others: the seed's 成果转化量 target (5000万元 without ≥) is missed by 5620万元.
    assert sheet2(report) == [("附件2!G28", "target-missed")]


def test_rows_inserted_in_libreoffice_are_read(catalog: Catalog) -> None:
    """tests/data/tianfu_12_qty_lo.xlsx: 4 rows inserted inside 数量指标 by LibreOffice (recipes/insert_rows_lo.py)."""
    path = DATA / "tianfu_12_qty_lo.xlsx"
    assert names_read(path, catalog) == [(f"附件2!D{19 + i}", row[0]) for i, row in enumerate(TIANFU, 1)]
    filing = read_workbook(path, catalog)
    assert [(g.key, g.count) for g in filing.layout.groups][:2] == [("tgt.qty", 12), ("tgt.quality", 3)]
    assert filing.moved == {} and filing.stray == []  # everything below sits where the 12-row layout puts it
    assert filing.cells["tgt.qty.5.result"].value == "=5324条"  # an inserted row (4th to 7th of the group)
    report = check_file(path, catalog, Options(annotate=False))
    assert sheet2(report) == [("附件2!G28", "target-missed"), ("附件2!D20", "rows-inserted")]
    [missed] = [f for f in report.findings if f.code == "target-missed"]
    assert missed.indicator == "成果转化量及金额"
    [note] = [f for f in report.findings if f.code == "rows-inserted"]
    assert (note.severity, note.expected, note.actual) == (Severity.INFO, "8 行", "12 行")
    assert note.message.startswith("数量指标共 12 行（模板 8 行，单位插入了 4 行），已全部读取和审核：全员“保姆”数量、")


def test_row_between_groups_is_never_dropped(catalog: Catalog) -> None:
    """tests/data/tianfu_stray_lo.xlsx: a row inserted above 质量指标, outside every group, with an indicator."""
    report = check_file(DATA / "tianfu_stray_lo.xlsx", catalog, Options(annotate=False))
    [f] = [f for f in report.findings if f.code == "row-unread"]
    assert (f.severity, f.where, f.actual) == (Severity.ERROR, "附件2!D28", "科技志愿服务活动场次｜≥12场")
    assert f.message.startswith("此行未被读取：“科技志愿服务活动场次｜≥12场”")
    assert report.exit_code == 1


def test_rows_option_mistakes_are_refused(catalog: Catalog, tmp_path: Path) -> None:
    assert parse_rows("数量 = 12，质量：4") == [("数量", 12), ("质量", 4)]
    with pytest.raises(XlsxKpiError, match="“数量=0”"):
        parse_rows("数量=0")
    ident = Identity(year=2021)
    with pytest.raises(XlsxKpiError, match="“产出”不是本表种的指标组"):
        shaped(catalog, catalog.workbook("sc-project"), ident, [("产出", 3)])
    out = tmp_path / "x.xlsx"
    assert main(["template", "-k", "project", *TIANFU_ARGS, "--rows", "数量12", "-o", str(out)]) == 2
    assert not out.exists()


def test_rows_per_unit_from_the_units_list(catalog: Catalog, tmp_path: Path) -> None:
    units = tmp_path / "units.csv"
    units.write_text(
        "单位名称,预算单位编码,项目名称,指标行数\n甲单位,001,甲项目,数量=10\n乙单位,002,乙项目,\n", encoding="utf-8"
    )
    assert main(["template", "-k", "project", "-y", "2021", "--units", str(units), "--out-dir", str(tmp_path)]) == 0
    counts = {}
    for f in sorted(tmp_path.glob("2021_*.xlsx")):
        counts[f.name.split("_")[2]] = [g.count for g in read_workbook(f, catalog).layout.groups][0]
    assert counts == {"甲单位": 10, "乙单位": 8}


# -- approved targets -------------------------------------------------------------------------------------


def targets_csv(tmp_path: Path) -> Path:
    path = tmp_path / "绩效目标.csv"
    lines = ["预算单位编码,项目名称,二级指标,三级指标,预算指标值"]
    lines += [f"015001,天府科技云,数量指标,{n},{t}" for n, t, _ in TIANFU[:11]]
    lines += ["015001,其他项目,数量指标,别的指标,≥1个", "999999,天府科技云,数量指标,别的单位,≥1个"]
    lines += ["015001,天府科技云,满意度指标,服务对象满意度,≥90%"]
    path.write_text("\n".join(lines) + "\n", encoding="gb18030")  # as Excel on Chinese Windows saves it
    return path


def approved_template(catalog: Catalog, tmp_path: Path) -> Path:
    out = tmp_path / "approved.xlsx"
    args = ["template", "-k", "project", *TIANFU_ARGS, "--targets", str(targets_csv(tmp_path)), "-o", str(out)]
    assert main(args) == 0
    return out


def test_targets_prefill_and_lock(catalog: Catalog, tmp_path: Path) -> None:
    rows = read_targets(targets_csv(tmp_path))
    assert rows[0] == TargetRow("015001", "天府科技云", "数量指标", "全员“保姆”数量", "≤35个", 2)
    out = approved_template(catalog, tmp_path)
    wb = openpyxl.load_workbook(out)
    ws = wb["附件2"]
    # 11 approved 数量指标 need 11 rows (the spec has 8); this unit's project only.
    assert [ws.cell(r, 4).value for r in (20, 30)] == ["全员“保姆”数量", "科研承接项目量及金额"]
    assert (ws["E22"].value, ws["E22"].protection.locked, ws["F22"].protection.locked) == ("≥350个", True, False)
    assert ws["E22"].fill.fgColor.rgb == "FFFFF2CC"
    meta = dict(wb["_xlsx_kpi"].iter_rows(values_only=True))
    approved = json.loads(str(meta["approved"]))
    assert len(approved) == 12 and approved[-1] == ["tgt.satisfaction", "服务对象满意度", "≥90%"]
    assert "别的指标" not in str(meta["approved"]) and "别的单位" not in str(meta["approved"])


def approved_filled(catalog: Catalog, tmp_path: Path, changes: dict[str, str | None]) -> Path:
    """The approved template filled with the seed's results, then cells changed as a unit would (sheet unprotected)."""
    out = approved_template(catalog, tmp_path)
    layout = read_workbook(out, catalog).layout
    values: dict[str, object] = {f"tgt.qty.{i}.result": row[2] for i, row in enumerate(TIANFU[:11], 1)}
    values["tgt.satisfaction.1.result"] = "=95%"
    filled = fill(out, layout, values, tmp_path / "filled.xlsx")  # type: ignore[arg-type]
    wb = openpyxl.load_workbook(filled)
    for a1, value in changes.items():
        wb["附件2"][a1].value = value
    wb.save(filled)
    return filled


def test_lowered_target_is_an_error_with_both_values(catalog: Catalog, tmp_path: Path) -> None:
    report = check_file(approved_filled(catalog, tmp_path, {"E22": "≥300个"}), catalog, Options(annotate=False))
    [f] = [f for f in report.findings if f.code == "target-changed"]
    assert (f.severity, f.where, f.expected, f.actual) == (Severity.ERROR, "附件2!E22", "≥350个", "≥300个")
    assert "“服务科研项目个数”的预算指标值填报为“≥300个”，批复值为“≥350个”" in f.message
    assert [x.code for x in report.findings if x.code in ("target-changed", "target-deleted")] == ["target-changed"]


def test_approved_target_unchanged_is_quiet(catalog: Catalog, tmp_path: Path) -> None:
    report = check_file(approved_filled(catalog, tmp_path, {"E22": " ≥350 个"}), catalog, Options(annotate=False))
    assert [f.code for f in report.findings if f.code.startswith("target-")] == ["target-missed"]  # 成果转化量


def test_deleted_approved_indicator_is_an_error(catalog: Catalog, tmp_path: Path) -> None:
    path = approved_filled(catalog, tmp_path, {"D21": None, "E21": None, "F21": None})
    report = check_file(path, catalog, Options(annotate=False))
    [f] = [f for f in report.findings if f.code == "target-deleted"]
    assert (f.severity, f.where, f.expected, f.actual) == (Severity.ERROR, "附件2!D21", "科技供需对接服务量", "（空）")
    assert "批复的绩效指标“科技供需对接服务量”（预算指标值“≥1000单”）在数量指标中找不到" in f.message


def test_approved_targets_are_sealed_by_the_fingerprint(catalog: Catalog, tmp_path: Path) -> None:
    path = approved_filled(catalog, tmp_path, {})
    wb = openpyxl.load_workbook(path)
    meta = wb["_xlsx_kpi"]
    for row in meta.iter_rows():
        if row[0].value == "approved":
            row[1].value = str(row[1].value).replace("≥350个", "≥300个")
    wb.save(path)
    with pytest.raises(XlsxKpiError, match="版式指纹不符"):
        read_workbook(path, catalog)


def test_targets_file_mistakes(tmp_path: Path) -> None:
    bad = tmp_path / "t.csv"
    bad.write_text("预算单位编码,三级指标,预算指标值\n1,a,b\n", encoding="utf-8")
    with pytest.raises(XlsxKpiError, match="须有“预算单位编码”“指标组（或二级指标）”"):
        read_targets(bad)
    bad.write_text("预算单位编码,指标组,三级指标,预算指标值\n1,数量指标,a,\n", encoding="utf-8")
    with pytest.raises(XlsxKpiError, match="第 2 行缺少预算指标值"):
        read_targets(bad)


# -- the national form for any unit -----------------------------------------------------------------------


def all_text(path: Path) -> str:
    with zipfile.ZipFile(path) as z:
        return "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith(".xml"))


def test_national_form_for_another_unit_has_no_yanfeng_text(tmp_path: Path) -> None:
    out = tmp_path / "cn.xlsx"
    args = ["template", "--spec", "cn-department", "-y", "2025", "-u", "蒸湘区教育局", "-c", "430408001"]
    assert main([*args, "-o", str(out)]) == 0
    text = all_text(out)
    assert "蒸湘区教育局" in text
    for seed_text in ("雁峰", "全民科学素质建设", "公用经费控制率", "群众满意度", "开展各项活动"):
        assert seed_text not in text, seed_text
    shipped = Path(__file__).resolve().parents[1] / "templates" / "cn-department.xlsx"
    assert "雁峰" not in all_text(shipped)


def test_national_free_rows_follow_the_rules(catalog: Catalog, tmp_path: Path) -> None:
    layout = build_layout(catalog, catalog.workbook("cn-department"), CN_IDENTITY)
    inputs = cn_inputs()
    inputs.update(
        {
            "fund.total.budget_initial": D("42.09"),
            "fund.fiscal.budget": D("54.41"),
            "fund.fiscal.actual": D("54.41"),
            "fund.total.score": D(10),
            "s.output_kinds.1.score": D(12),  # above the row's 分值 10
            "s.benefit_kinds.2.max": None,  # 分值 left blank on a used row
            "s.service_satisfaction.2.name": "服务对象满意度",  # a spare row half filled
        }
    )
    path = write_template(layout, tmp_path / "cn.xlsx", inputs=inputs)
    report = check_file(path, catalog, Options(annotate=False))
    found = {(f.where, f.code) for f in report.findings if f.severity is Severity.ERROR}
    assert found == {
        ("附件1!H14", "score-above-max"),
        ("附件1!G20", "points-missing"),
        # The half-filled spare row: 年度指标值, 实际完成值, 分值 and 得分 missing.
        ("附件1!E23", "target-incomplete"),
        ("附件1!G23", "points-missing"),
        ("附件1!H23", "score-missing"),
    }
    [above] = [f for f in report.findings if f.code == "score-above-max"]
    assert above.message == "“全民科学素质建设”自评 12 分，超过本项分值 10 分"


def test_national_targets_from_a_file(catalog: Catalog, tmp_path: Path) -> None:
    targets = tmp_path / "targets.csv"
    targets.write_text(
        "预算单位编码,二级指标,三级指标,预算指标值\n430408001,数量指标,培训教师人次,≥500人次\n"
        "430408001,满意度指标,家长满意度,≥90%\n",
        encoding="utf-8",
    )
    out = tmp_path / "cn.xlsx"
    args = ["template", "--spec", "cn-department", "-y", "2025", "-u", "蒸湘区教育局", "-c", "430408001"]
    assert main([*args, "--targets", str(targets), "-o", str(out)]) == 0
    ws = openpyxl.load_workbook(out)["附件1"]
    assert (ws["D14"].value, ws["E14"].value, ws["D22"].value, ws["E22"].value) == (
        "培训教师人次",
        "≥500人次",
        "家长满意度",
        "≥90%",
    )


# -- every warning names where its 说明 goes --------------------------------------------------------------


def test_every_warning_names_its_explanation_cell(catalog: Catalog, tmp_path: Path) -> None:
    layout = build_layout(catalog, catalog.workbook("cn-department"), CN_IDENTITY)
    report = check_file(write_template(layout, tmp_path / "cn.xlsx", inputs=cn_inputs()), catalog, Options(False))
    [w] = [f for f in report.findings if f.severity is Severity.WARNING]
    assert w.where == "附件1!I7"  # 执行率 100 % scored 9 of 10: no place to explain it before
    assert w.message.endswith("（如有理由，请在 附件1!L7“项目资金（万元）·年度资金总额得分说明”中写明说明）")
    inputs = cn_inputs()
    inputs["fund.total.note"] = "扣1分：年中调整预算未及时报备"
    report = check_file(write_template(layout, tmp_path / "cn2.xlsx", inputs=inputs), catalog, Options(False))
    [w] = [f for f in report.findings if f.severity is Severity.WARNING]
    assert (w.explained, w.explained_by) == (True, "L7")
    # The Sichuan project: every warning of the seed's figures names a cell of its own sheet.
    sc = build_layout(catalog, catalog.workbook("sc-project"), Identity(year=2021, unit_name="资阳市科学技术协会"))
    report = check_file(write_template(sc, tmp_path / "sc.xlsx", inputs=kechuang_inputs()), catalog, Options(False))
    warnings = [f for f in report.findings if f.severity is Severity.WARNING]
    assert warnings and all("（如有理由，请在 附件" in f.message for f in warnings)


def test_rows_inserted_in_the_national_form_count_in_the_total(catalog: Catalog) -> None:
    """tests/data/cn_inserted_lo.xlsx: LibreOffice inserted 2 rows inside 产出指标 (5 -> 7) and filled all seven."""
    path = DATA / "cn_inserted_lo.xlsx"
    filing = read_workbook(path, catalog)
    assert filing.inserted == {"s.output_kinds": 2}
    assert [(g.key, g.count) for g in filing.layout.groups] == [
        ("s.output_kinds", 7),
        ("s.benefit_kinds", 3),
        ("s.service_satisfaction", 2),
    ]
    # Calc grew the 总分 range with the rows: the file's formula is the 7-row layout's formula.
    assert filing.cells["s.total"].formula == "SUM(H14:H25,I7)" == filing.layout.excel("s.total")
    report = check_file(path, catalog, Options(annotate=False))
    assert report.total == D("49.3")  # 8 + 7 + 6.3 + 7 + 7 + 7 + 7
    skip = ("text-missing", "score-missing", "indicator-kind-missing")
    assert [(f.where, f.code) for f in report.findings if f.code not in skip] == [
        ("附件1!I16", "target-missed"),  # 新建智慧教室 18 of ≥20 间, typed in an inserted row
        ("附件1!D14", "rows-inserted"),
    ]


@pytest.mark.skipif(
    not Path("/usr/bin/python3").exists() or soffice() is None, reason="needs LibreOffice and /usr/bin/python3"
)
def test_libreoffice_recipe_still_runs(catalog: Catalog, tmp_path: Path) -> None:
    """The recipe that made the fixtures runs, and what it makes reads as the committed fixtures do."""
    probe = subprocess.run(["/usr/bin/python3", "-c", "import uno"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("python3-uno is not installed for /usr/bin/python3")
    project, national = tmp_path / "tianfu.xlsx", tmp_path / "cn.xlsx"
    assert main(["template", "-k", "project", *TIANFU_ARGS, "-o", str(project)]) == 0
    cn_args = ["template", "--spec", "cn-department", "-y", "2025", "-u", "蒸湘区教育局", "-c", "430408001"]
    assert main([*cn_args, "-o", str(national)]) == 0
    recipe = DATA / "recipes" / "insert_rows_lo.py"
    subprocess.run(
        ["/usr/bin/python3", str(recipe), str(project), str(national), str(tmp_path)], check=True, timeout=300
    )
    for name in ("tianfu_12_qty_lo.xlsx", "tianfu_stray_lo.xlsx", "cn_inserted_lo.xlsx"):
        made = check_file(tmp_path / name, catalog, Options(annotate=False))
        committed = check_file(DATA / name, catalog, Options(annotate=False))
        assert made.flatten("where", "code") == committed.flatten("where", "code"), name


def test_every_form_has_a_place_for_every_warning(catalog: Catalog) -> None:
    """Scores with a reference (score-vs-reference, measure-vs-score) and amount rows (over-budget) can be explained."""
    for wb in catalog.workbooks.values():
        layout = build_layout(catalog, wb, Identity(year=2021))
        free = {g.base(i) for g in layout.groups if "score" in g.parts for i in range(1, g.count + 1)}
        for key, cell in layout.cells.items():
            if cell.input_type == "score" and key.endswith(".score"):
                base = key.removesuffix(".score")
                if f"{base}.ref" in layout.refs or base in free:
                    assert any(f"{base}{s}" in layout.refs for s in (".note", ".basis", ".deviation")), key
            if key.endswith(".budget") and key.replace(".budget", ".carry") in layout.refs:
                assert key.replace(".budget", ".note") in layout.refs, key


def test_department_targets_and_unknown_groups(catalog: Catalog, tmp_path: Path) -> None:
    targets = tmp_path / "targets.csv"
    targets.write_text(
        "预算单位编码,项目名称,指标组,三级指标,预算指标值\n"
        "015001,,数量指标,举办科普活动,≥20场\n"
        "015001,天府科技云,数量指标,科技供需对接服务量,≥1000单\n",
        encoding="utf-8",
    )
    out = tmp_path / "dept.xlsx"
    args = ["template", "-k", "department", "-y", "2021", "-u", "资阳市科学技术协会", "-c", "015001"]
    assert main([*args, "--targets", str(targets), "-o", str(out)]) == 0
    meta = dict(openpyxl.load_workbook(out)["_xlsx_kpi"].iter_rows(values_only=True))
    assert json.loads(str(meta["approved"])) == [["tgt.qty", "举办科普活动", "≥20场"]]  # not the project's row
    targets.write_text(
        "预算单位编码,指标组,三级指标,预算指标值\n015001,产出指标,举办科普活动,≥20场\n", encoding="utf-8"
    )
    assert main([*args, "--targets", str(targets), "-o", str(tmp_path / "x.xlsx")]) == 2
    with pytest.raises(XlsxKpiError, match="第 2 行“指标组”：“产出指标”不是本表种的指标组"):
        shaped(
            catalog, catalog.workbook("sc-department"), Identity(2021, unit_code="015001"), [], read_targets(targets)
        )
