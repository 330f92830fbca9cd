"""Two more published forms: the national 整体支出绩效自评表 (seed 002) and 广州's 部门整体支出绩效自评表 (seed 004)."""

from __future__ import annotations

import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from helpers import soffice
from seed_data import CN_IDENTITY, CN_ROWS, GZ_IDENTITY, cn_inputs, gz_inputs
from test_seed_recalc import _check
from test_specs import seed_text, squash

from xlsx_kpi.audit.recalc import failing_checks, recalculate
from xlsx_kpi.cli import main
from xlsx_kpi.errors import SpecError
from xlsx_kpi.formats.catalog import load_specs
from xlsx_kpi.formats.layout import build_layout
from xlsx_kpi.formats.plan import Identity, WorkbookLayout
from xlsx_kpi.formats.spec import Catalog, GridBlock, IndicatorsBlock, SheetSpec
from xlsx_kpi.outputs.dump import dump_workbook
from xlsx_kpi.outputs.template import write_template

D = Decimal
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
needs_soffice = pytest.mark.skipif(soffice() is None, reason="LibreOffice (soffice) not installed; .ci/run installs it")


def indicators(spec: SheetSpec) -> IndicatorsBlock:
    [block] = [b for b in spec.blocks if isinstance(b, IndicatorsBlock)]
    return block


def grid(spec: SheetSpec, block_id: str) -> GridBlock:
    [block] = [b for b in spec.blocks if isinstance(b, GridBlock) and b.id == block_id]
    return block


def assert_levels_add_up(block: IndicatorsBlock) -> None:
    for l1 in block.groups:
        assert sum((l2.points for l2 in l1.groups), D(0)) == l1.points, l1.name
        for l2 in l1.groups:
            if l2.rows is None:  # free rows: the unit types the 分值, a self-check adds them up
                assert sum((i.points for i in l2.indicators), D(0)) == l2.points, l2.name


@pytest.fixture(scope="module")
def cn_layout(catalog: Catalog) -> WorkbookLayout:
    return build_layout(catalog, catalog.workbook("cn-department"), CN_IDENTITY)


@pytest.fixture(scope="module")
def gz_layout(catalog: Catalog) -> WorkbookLayout:
    return build_layout(catalog, catalog.workbook("gz-department"), GZ_IDENTITY)


@pytest.fixture(scope="module")
def cn_template(cn_layout: WorkbookLayout, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_template(cn_layout, tmp_path_factory.mktemp("cn") / "cn.xlsx")


@pytest.fixture(scope="module")
def gz_template(gz_layout: WorkbookLayout, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_template(gz_layout, tmp_path_factory.mktemp("gz") / "gz.xlsx")


# -- the specs against their seeds ------------------------------------------------------------------


def test_national_spec_is_the_published_table(catalog: Catalog) -> None:
    spec = catalog.sheets["cn-dept-self"]
    assert spec.source is not None and spec.source.lines == (2, 188)
    assert catalog.workbook("cn-department").kind == "department"
    text = seed_text(spec.source.file, *spec.source.lines)
    fund = grid(spec, "fund")
    labels = [fund.section, *(c.header for c in fund.columns if c.id != "ref"), *(r.label for r in fund.rows)]
    labels += ["项目名称", "主管部门", "实施单位", "年度总体目标", "预期目标", "实际完成情况", "绩效指标", "总分"]
    block = indicators(spec)
    labels += [block.headers[p] for p in ("level1", "level2", "level3", "target", "actual", "max", "score", "basis")]
    for label in labels:
        assert squash(label) in text, label
    for l1 in block.groups:
        for l2 in l1.groups:
            assert squash(l1.name) in text and squash(l2.name) in text, l2.name
    # The form has free rows; the seed's nine rows are the test fixture, each name and 年度指标值 on one row.
    assert list(block.indicators()) == []
    pos = 0
    for _, name, target in CN_ROWS:
        found = text.find(squash(f"{name}{target}"), pos)
        assert found >= 0, name
        pos = found


def test_national_points_add_up_to_100(catalog: Catalog) -> None:
    spec = catalog.sheets["cn-dept-self"]
    block = indicators(spec)
    assert_levels_add_up(block)
    assert [(l1.id, l1.points) for l1 in block.groups] == [("output", 50), ("benefit", 30), ("satisfaction", 10)]
    [points] = [c for c in grid(spec, "fund").columns if c.id == "points"]
    budget_execution = points.values["total"]  # 预算执行率 分值
    assert budget_execution == 10
    assert sum(l1.points for l1 in block.groups) + budget_execution == 100
    assert block.total_includes == ["fund.total.score"]


def test_national_rows_are_free_rows(catalog: Catalog, cn_layout: WorkbookLayout) -> None:
    block = indicators(catalog.sheets["cn-dept-self"])
    assert [(l2.id, l2.rows) for l1 in block.groups for l2 in l1.groups] == [
        ("output_kinds", 5),
        ("benefit_kinds", 3),
        ("service_satisfaction", 2),
    ]
    # Every part of a row is a named input; the fixture's approved 三级指标 and 年度指标值 are prefilled.
    cells = cn_layout.cells
    assert cells["s.output_kinds.5.name"].text == "公用经费控制率"
    assert cells["s.output_kinds.5.target"].text == "≤100%"
    assert cells["s.output_kinds.5.target"].style == "approved"
    assert {cells[f"s.output_kinds.5.{p}"].role for p in ("name", "target", "result", "max", "score")} == {"input"}
    assert cells["s.service_satisfaction.2.name"].style == "in_text"  # a spare row
    assert cells["s.output_kinds.1.score"].max == 50  # bounded by the group; the row's 分值 is a self-check


def test_guangzhou_spec_is_the_published_table(catalog: Catalog) -> None:
    spec = catalog.sheets["gz-dept-self"]
    assert spec.source is not None and spec.source.lines == (3, 67)
    text = seed_text(spec.source.file, *spec.source.lines)
    scale = grid(spec, "scale")
    labels = [scale.section, *(c.header for c in scale.columns), *(c.group or "" for c in scale.columns)]
    labels += [r.label for r in scale.rows] + ["单位基本情况", "单位名称", "单位数", "年度整体绩效目标"]
    labels += ["整体绩效目标完成情况", "未能完成原因", "总分"]
    block = indicators(spec)
    labels += [h for p, h in block.headers.items() if p not in ("ref", "reading", "l2_total", "l1_total", "note")]
    for label in labels:
        assert squash(label) in text, label
    pos = 0
    for l1, l2, ind in block.indicators():
        assert squash(l1.name) in text and squash(l2.name) in text, l2.name
        found = text.find(squash(ind.name), pos)
        assert found >= 0, ind.id
        pos = found
        for part in (ind.explanation, ind.target, ind.standard):
            assert squash(part) in text, f"{ind.id}: {part[:20]}"
    names = [i.name for _, _, i in block.indicators()]
    assert len(names) == 21 + 20 + 1
    assert names[0] == "预算完成率" and names[-1] == "工作受表彰或批评"


def test_guangzhou_points(catalog: Catalog) -> None:
    block = indicators(catalog.sheets["gz-dept-self"])
    assert_levels_add_up(block)
    # 管理效能 45 + 履职效能 50 + 加减分项 5 = 100, the published 总分 分值.
    assert [(l1.name, l1.points) for l1 in block.groups] == [("管理效能", 45), ("履职效能", 50), ("加减分项", 5)]
    assert [(l2.name, l2.points) for l2 in block.groups[0].groups] == [
        ("资金管理", 16),
        ("采购管理", 2),
        ("信息公开管理", 4),
        ("资产管理", 4),
        ("成本管理", 4),
        ("绩效管理", 15),
    ]
    assert [l2.points for l2 in block.groups[1].groups] == [6, 12, 12, 5, 15]
    [bonus] = block.groups[2].groups[0].indicators
    assert (bonus.min_score, bonus.points) == (D(-5), D(5))
    ruled = [i.id for _, _, i in block.indicators() if i.rule]
    assert ruled == [
        "budget_completion",
        "income_variance",
        "general_execution",
        "carryover_rate",
        "procurement_execution",
        "public_expense_control",
        "three_public_control",
    ]


def test_inferences_and_published_mistakes_are_recorded(catalog: Catalog) -> None:
    cn = {n.where for n in catalog.sheets["cn-dept-self"].notes}
    assert {"fund", "fund.total.score", "fund.carry.rate", "s.output_kinds.5.result", "s.benefit_kinds.3.max"} <= cn
    gz = {n.where for n in catalog.sheets["gz-dept-self"].notes}
    assert {"scale.budget.city", "s.carryover_rate", "s.income_variance.basis", "s.commendation"} <= gz
    assert "一级指标" in Path(catalog.sheets["gz-dept-self"].path).read_text(encoding="utf-8")


# -- generated templates ----------------------------------------------------------------------------


def test_national_template_cells(cn_layout: WorkbookLayout, cn_template: Path) -> None:
    ws = openpyxl.load_workbook(cn_template)["附件1"]
    assert ws["B2"].value is None and ws["A2"].value == "雁峰区科学技术协会整体支出绩效自评表"
    assert ws["A3"].value == "（  2021  年度）"
    assert [ws.cell(6, c).value for c in range(4, 10)] == [
        "年初预算数",
        "全年预算数",
        "全年执行数",
        "分值",
        "执行率",
        "得分",
    ]
    assert ws["B7"].value == "年度资金总额" and ws["G7"].value == 10 and ws["G8"].value == "—"
    assert ws["H7"].value == '=IF(E7=0,"",F7/E7)'  # 执行率 = 全年执行数 / 全年预算数
    assert ws["H9"].value == '=IF(E9=0,"",F9/E9)'
    assert ws["J7"].value == '=IF(H7="","",MIN(G7,ROUND(H7*G7,2)))'  # 预算执行率 reference, not printed
    assert ws["I8"].value == "—"
    assert ws["H24"].value == "=SUM(H14:H23,I7)"  # 总分 = indicator scores + 预算执行率 得分
    assert ws["G24"].value == 100 and ws["A24"].value == "总分"
    assert [ws.cell(13, c).value for c in range(2, 10)] == [
        "一级指标",
        "二级指标",
        "三级指标",
        "年度指标值",
        "实际完成值",
        "分值",
        "得分",
        "偏差原因分析及改进措施",
    ]
    assert (ws["D18"].value, ws["E18"].value, ws["G18"].value) == ("公用经费控制率", "≤100%", None)
    merges = {str(m) for m in ws.merged_cells.ranges}
    assert {"A6:A10", "A13:A23", "C14:C18", "A24:F24", "B6:C6"} <= merges
    assert ws.print_area == "'附件1'!$A$1:$I$24"
    assert ws.page_setup.orientation == "portrait"
    # Inputs: the amounts, the 预算执行率 得分 (0-10) and its 说明, and every part of an indicator row
    # except the approved 三级指标 and 年度指标值 (locked).
    assert ws["I7"].protection.locked is False and ws["L7"].protection.locked is False
    assert ws["F18"].protection.locked is False and ws["G18"].protection.locked is False
    assert ws["D18"].protection.locked is True and ws["E18"].protection.locked is True
    assert ws["D23"].protection.locked is False  # the spare 满意度 row
    [dv] = [d for d in ws.data_validations.dataValidation if str(d.sqref) == "I7"]
    assert (dv.type, dv.formula1, dv.formula2) == ("decimal", "0", "10")
    assert cn_layout.refs["s.total"].row == 23


def test_guangzhou_template_cells(gz_template: Path) -> None:
    wb = openpyxl.load_workbook(gz_template)
    assert wb.sheetnames == ["填表说明", "自评表", "基础数据", "_xlsx_kpi"]
    ws = wb["自评表"]
    assert ws["A4"].value == "单位基本情况" and ws["C5"].value == "广州市科学技术协会"
    assert [ws.cell(8, c).value for c in (1, 5, 8, 10)] == [
        "年度部门整体支出规模(万元)",
        "按资金来源",
        "按资金结构",
        "按预算级次",
    ]
    assert [ws.cell(9, c).value for c in (5, 7, 8, 9, 10, 11)] == [
        "财政拨款",
        "其他资金",
        "基本支出",
        "项目支出",
        "市本级支出",
        "转移支付区",
    ]
    assert ws["C12"].value == "完成率" and ws["E12"].value == '=IF(E10=0,"",E11/E10)'
    assert ws["J12"].value == '=IF(J10=0,"",J11/J10)'
    assert [ws.cell(13, c).value for c in range(1, 10)] == [
        "一级指标",
        "分值",
        "二级指标",
        "分值",
        "三级指标",
        "分值",
        "指标解释",
        None,  # 指标解释 spans G:H
        "得分/自评分",
    ]
    assert (ws["A14"].value, ws["B14"].value, ws["C14"].value, ws["D14"].value) == ("管理效能", 45, "资金管理", 16)
    assert (ws["E14"].value, ws["F14"].value) == ("预算完成率", 2)
    # 履职效能 has its own header row (年度指标值 | 实际完成指标值 … 备注) above its rows.
    assert [ws.cell(35, c).value for c in range(7, 12)] == [
        "年度指标值",
        "实际完成指标值",
        "得分/自评分",
        "评分依据、未达标原因、改进措施",
        "备注",
    ]
    assert ws["A36"].value == "履职效能" and ws["E36"].value.startswith("1.1搭建育才引智平台")
    assert ws["A56"].value == "加减分项" and ws["J56"].value.startswith("1.加分项")
    assert (ws["A57"].value, ws["B57"].value, ws["I57"].value) == ("总分", 100, "=SUM(I14:I34,I36:I56)")
    assert ws["L21"].value == (
        "=IF(OR('基础数据'!C11=\"\",'基础数据'!C12=\"\",'基础数据'!C11=0),\"\","
        "ROUND(F21*MIN(1,'基础数据'!C12/'基础数据'!C11),2))"
    )  # 政府采购执行率 = 分值 × 实际采购 ÷ 采购预算
    assert wb["基础数据"]["C10"].value == (
        "=IF(OR(C9=\"\",'自评表'!E11=\"\"),\"\",IF(C9+'自评表'!E11=0,0,ROUND(C9/(C9+'自评表'!E11),4)))"
    )  # 结转结余率 = 结转结余 ÷ (结转结余 + 财政拨款全年执行数)
    merges = {str(m) for m in ws.merged_cells.ranges}
    assert {"A14:A34", "B14:B34", "A36:A55", "E8:G8", "G14:H14", "J14:K14", "C57:H57"} <= merges
    # 加减分项: -5 to 5.
    [dv] = [d for d in ws.data_validations.dataValidation if str(d.sqref) == "I56"]
    assert (dv.type, dv.formula1, dv.formula2) == ("decimal", "-5", "5")
    assert "扣分填负数" in (dv.prompt or "")


def test_bonus_points_may_be_negative_and_count_in_the_total(gz_layout: WorkbookLayout) -> None:
    inputs = gz_inputs()
    inputs["s.commendation.score"] = D("-2.5")
    values = recalculate(gz_layout, inputs)
    assert values["s.total"] == D("91.39")
    assert "s.commendation.score" not in {c.key for c in failing_checks(gz_layout, values)}
    inputs["s.commendation.score"] = D(-6)
    failing = {c.key for c in failing_checks(gz_layout, recalculate(gz_layout, inputs))}
    assert "s.commendation.score" in failing


def test_new_forms_are_listed_and_generated(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["specs"]) == 0
    listing = capsys.readouterr().out
    assert (
        "cn-department" in listing and "cn-dept-self" in listing and "002_3dc9b7e5bd2009d6.txt 第 2–188 行" in listing
    )
    assert (
        "gz-department" in listing and "gz-dept-basic" in listing and "004_2ee29628f258657d.txt 第 3–67 行" in listing
    )
    args = ["template", "--spec", "gz-department", "-y", "2021", "-u", "广州市科学技术协会", "-c", "001"]
    assert main([*args, "--out-dir", str(tmp_path)]) == 0
    assert (tmp_path / "2021_001_广州市科学技术协会_部门整体支出绩效自评表.xlsx").exists()
    # `--kind department` still means the Sichuan table: the new kinds sort after it (order: 10, 20).
    assert (
        main(["template", "-k", "department", "-y", "2021", "-u", "某单位", "-c", "9", "--out-dir", str(tmp_path)]) == 0
    )
    assert (tmp_path / "2021_9_某单位_部门整体支出绩效自评.xlsx").exists()


@pytest.mark.parametrize("workbook_id", ["cn-department", "gz-department"])
def test_shipped_templates_match(catalog: Catalog, tmp_path: Path, workbook_id: str) -> None:
    shipped = TEMPLATES / f"{workbook_id}.xlsx"
    assert shipped.exists(), "运行 `xlsx-kpi build-templates --year 2025`"
    meta = dict(openpyxl.load_workbook(shipped)["_xlsx_kpi"].iter_rows(values_only=True))
    layout = build_layout(catalog, catalog.workbook(workbook_id), Identity(year=int(meta["year"])))
    fresh = write_template(layout, tmp_path / shipped.name)
    assert dump_workbook(fresh) == dump_workbook(shipped), "运行 `xlsx-kpi build-templates --year 2025`"


def test_spec_mistakes_fail_at_load(tmp_path: Path) -> None:
    src = Path(load_specs().sheets["gz-dept-self"].path).parent
    for f in src.glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    bad = tmp_path / "gz-dept-self.yaml"
    good = bad.read_text(encoding="utf-8")
    bad.write_text(good.replace("ref: L, ", "", 1), encoding="utf-8")
    with pytest.raises(SpecError, match="budget_completion 有计分规则，但指标表没有 ref"):
        load_specs(tmp_path)
    bad.write_text(good.replace("columns: {standard: J, basis: K}", "columns: {standrd: J}"), encoding="utf-8")
    with pytest.raises(SpecError, match="standrd"):
        load_specs(tmp_path)
    bad.write_text(good.replace("min_score: -5", "min_score: 5"), encoding="utf-8")
    with pytest.raises(SpecError, match="min_score"):
        load_specs(tmp_path)


# -- LibreOffice: recalculation and rendering ---------------------------------------------------------


@needs_soffice
def test_national_seed_figures_recalculated(cn_layout: WorkbookLayout, cn_template: Path, tmp_path: Path) -> None:
    expected = {
        "fund.total.rate": D(1),  # 54.41 / 54.41
        "fund.fiscal.rate": D(1),  # 42.09 / 42.09
        "fund.carry.rate": "",  # no amounts, no rate (the seed printed 100 %)
        "fund.other.rate": "",
        "fund.total.ref": D(10),  # the seed's 得分 is 9
        "s.l1.output": D(50),
        "s.l1.benefit": D(30),
        "s.l1.satisfaction": D(10),
        "s.total": D(99),  # 9 + 50 + 30 + 10, as published
        # 54.41 is not 42.09 + the blank rows, in all three amount columns.
        "a1.problems": D(3),
        "a1.status": "✘ 自检发现3处问题，请修改标红单元格",
    }
    _check(cn_layout, cn_template, cn_inputs(), expected, tmp_path)
    failing = {c.key for c in failing_checks(cn_layout, recalculate(cn_layout, cn_inputs()))}
    assert failing == {"fund.total.budget_initial", "fund.total.budget", "fund.total.actual"}


@needs_soffice
def test_guangzhou_seed_figures_recalculated(gz_layout: WorkbookLayout, gz_template: Path, tmp_path: Path) -> None:
    expected = {
        "scale.rate.fiscal": D("31133.57") / D("31570.33"),  # 98.62 %, as published
        "scale.rate.project": D("16819.55") / D("16660.1"),  # 100.96 %
        "scale.rate.city": D("39398.33") / D("40959.93"),  # 96.19 %
        "b.budget_rate": D("0.9619"),
        "s.budget_completion.ref": D("1.24"),  # 2 × (96.19 % − 90 %) ÷ 10 % = 1.238
        "b.income_diff_rate": D("-0.0138"),  # the seed wrote −1.37 %
        "s.income_variance.ref": D("1.97"),
        "s.general_execution.ref": D("1.72"),  # 2 × (98.62 % − 90 %) ÷ 10 % = 1.724
        "b.carry_rate": D("0.0051"),  # 159.43 / (159.43 + 31133.57) = 0.51 %
        "s.carryover_rate.ref": D("1.99"),  # the seed gave 2
        "b.proc_rate": D("0.98"),
        "s.procurement_execution.ref": D("1.96"),  # 2 × 7927.72 ÷ 8089.48
        "b.public_rate": D("0.8925"),
        "s.public_expense_control.ref": D(2),
        "b.tp_rate": D("0.5289"),
        "s.three_public_control.ref": D(2),
        "s.l2.fund_mgmt": D("14.93"),
        "s.l1.mgmt": D("43.89"),
        "s.l1.duty": D(50),
        "s.l1.bonus": D(0),
        "s.total": D("93.89"),
        # 市本级支出 + 转移支付区 is not the total of the other two breakdowns (budget and actual rows).
        "a1.problems": D(2),
        "basic.status": "✔ 自检通过",
    }
    _check(gz_layout, gz_template, gz_inputs(), expected, tmp_path)
    failing = {c.key for c in failing_checks(gz_layout, recalculate(gz_layout, gz_inputs()))}
    assert failing == {"scale.budget.city", "scale.actual.city"}


@needs_soffice
@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler (pdftoppm) not installed")
def test_templates_render_to_pages(cn_template: Path, gz_template: Path, tmp_path: Path) -> None:
    """Print both templates as LibreOffice would; the national table fits one portrait page."""
    exe = soffice()
    assert exe
    pages = {}
    for template in (cn_template, gz_template):
        subprocess.run(
            [exe, f"-env:UserInstallation=file://{tmp_path}/profile", "--headless", "--convert-to", "pdf",
             "--outdir", str(tmp_path), str(template)],
            check=True, capture_output=True, timeout=180,
        )  # fmt: skip
        pdf = tmp_path / f"{template.stem}.pdf"
        subprocess.run(["pdftoppm", "-png", "-r", "60", str(pdf), str(tmp_path / template.stem)], check=True)
        pages[template.stem] = sorted(tmp_path.glob(f"{template.stem}-*.png"))
    # 填表说明 + the table on one A4 page.
    assert len(pages["cn"]) == 2
    # 填表说明 + five pages of 自评表 + 基础数据.
    assert len(pages["gz"]) == 7
