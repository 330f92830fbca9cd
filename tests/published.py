"""Workbooks as the seed's units actually filled them: rates and totals typed over the formulas."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import openpyxl
from seed_data import DEPT_IDENTITY, PROJECT_IDENTITY, dept_inputs, kechuang_inputs

from xlsx_kpi.formats.expr import Value
from xlsx_kpi.formats.layout import build_layout
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.outputs.template import write_template

# What seed 000 wrote into the cells that are formulas in our template (附件2, lines 654-730).
DEPT_WRITTEN: dict[str, float] = {
    "exec.total.budget": 36808,
    "exec.total.actual": 48413,
    "exec.total.carry": 2922,
    "exec.total.carry_rate": 0.0603,
    "exec.total.carry_change": -0.7988,
    "exec.basic.carry_rate": 0,
    "exec.basic.carry_change": 0,
    "exec.project.carry_rate": 0.0603,
    "exec.project.carry_change": -0.7988,
    "fund.budget.total": 36808,
    "fund.actual.total": 48413,
    "fund.carry.total": 2922,
    "fund.carry_rate.total": 0.0603,
    "fund.carry_rate.general": 0.0603,
    "fund.carry_rate.gov_fund": 0,
    "fund.carry_rate.soe": 0,
    "fund.carry_rate.social": 0,
    "fund.carry_change.total": -0.7988,
    "fund.carry_change.general": -0.7988,
    "fund.carry_change.gov_fund": 0,
    "fund.carry_change.soe": 0,
    "fund.carry_change.social": 0,
    "s.total": 95.35,
}
# The “科创会” project (lines 1193-1267): 38.06 % even in the fund columns with no 预算额.
KECHUANG_WRITTEN: dict[str, float] = {
    "exec.total.carry_rate": 0.3806,
    "exec.fiscal.carry_rate": 0.3806,
    "exec.total.carry_change": 0,
    "fund.carry_rate.total": 0.3806,
    "fund.carry_rate.general": 0.3806,
    "fund.carry_rate.gov_fund": 0.3806,
    "fund.carry_rate.soe": 0.3806,
    "fund.carry_rate.social": 0.3806,
    "s.total": 98.5,
}


def overwrite(path: Path, catalog: Catalog, workbook_id: str, written: dict[str, float | str], out: Path) -> Path:
    """Type values over formula cells with openpyxl, as a unit pasting numbers from its Word report."""
    identity = PROJECT_IDENTITY if workbook_id == "sc-project" else DEPT_IDENTITY
    layout = build_layout(catalog, catalog.workbook(workbook_id), identity)
    wb = openpyxl.load_workbook(path)
    for key, value in written.items():
        ref = layout.refs[key]
        wb[ref.sheet].cell(ref.row + 1, ref.col + 1).value = value
    wb.save(out)
    return out


def published(
    catalog: Catalog,
    folder: Path,
    workbook_id: str,
    inputs: dict[str, Value],
    written: dict[str, float | str],
    name: str,
) -> Path:
    """A filled workbook; `written` values typed over its formula cells afterwards (empty: formulas intact)."""
    identity = PROJECT_IDENTITY if workbook_id == "sc-project" else DEPT_IDENTITY
    layout = build_layout(catalog, catalog.workbook(workbook_id), identity)
    folder.mkdir(parents=True, exist_ok=True)
    clean = write_template(layout, folder / f"clean_{name}", inputs=inputs, force=True)
    if not written:
        return clean
    out = overwrite(clean, catalog, workbook_id, written, folder / name)
    clean.unlink()
    return out


def dept_published(
    catalog: Catalog,
    folder: Path,
    inputs: dict[str, Value] | None = None,
    written: dict[str, float | str] | None = None,
    name: str = "资阳_部门.xlsx",
) -> Path:
    written = dict(DEPT_WRITTEN) if written is None else written
    return published(catalog, folder, "sc-department", inputs or dept_inputs(), written, name)


def kechuang_published(
    catalog: Catalog,
    folder: Path,
    inputs: dict[str, Value] | None = None,
    written: dict[str, float | str] | None = None,
    name: str = "资阳_科创会.xlsx",
) -> Path:
    written = dict(KECHUANG_WRITTEN) if written is None else written
    return published(catalog, folder, "sc-project", inputs or kechuang_inputs(), written, name)


def kechuang_full_inputs() -> dict[str, Value]:
    """The project inputs plus its 年度总体目标 and first 绩效指标 rows (seed lines 1274-1311)."""
    v = kechuang_inputs()
    v.update(
        {
            "goal.target": "完成省科协下达的各项目标任务",
            "goal.result": "已完成",
            "goal.deviation": "无偏差",
            "tgt.qty.1.name": "重点项目专场推介会邀请专家人数",
            "tgt.qty.1.target": "=10人",
            "tgt.qty.1.result": "=10人",
            "tgt.qty.1.deviation": "无偏差",
            "tgt.qty.2.name": "推介成果-洽谈企业数",
            "tgt.qty.2.target": "≥30家",
            "tgt.qty.2.result": "=35家",
            "tgt.qty.2.deviation": "无偏差",
            "tgt.qty.3.name": "宣传成果-在线观看量",
            "tgt.qty.3.target": "≥80万人次",
            "tgt.qty.3.result": "=83.52万人次，居全省第一",
            "tgt.qty.3.deviation": "无偏差",
            "tgt.quality.1.name": "推荐我市重点企业入选全省重点项目发布",
            "tgt.quality.1.target": "1个项目入选开幕式重大科研难题攻关项目发布，"
            "1个项目入选入选重大科技成果转化项目专场发布，2个项目入选重大高新技术推广项目专场发布。",
            "tgt.quality.1.result": "已完成",
            "tgt.quality.1.deviation": "无偏差，保质保量超额完成",
            "tgt.time.1.name": "完成时间",
            "tgt.time.1.target": "2021年12月31日",
            "tgt.time.1.result": "2021年12月31日",
            "tgt.time.1.deviation": "无偏差",
            "tgt.cost.1.name": "首届科创中国-天府科技云服务大会专项经费",
            "tgt.cost.1.target": "≤80万元",
            "tgt.cost.1.result": "=76.78万元",
            "tgt.cost.1.deviation": "结余3.22万元",
            # The seed's table ends at a page break: 社会效益指标 has no row, 满意度指标 only “超过95%”.
            "tgt.satisfaction.1.name": "满意度指标",
            "tgt.satisfaction.1.target": "超过95%",
        }
    )
    return v


def corrected_kechuang_inputs() -> dict[str, Value]:
    """The project with its table completed: a 社会效益 row, the 满意度 result, the quality target split."""
    v = kechuang_full_inputs()
    v.update(
        {
            "s.satisfaction.score": Decimal("9.5"),
            "tgt.quality.1.target": "≥4个",
            "tgt.quality.1.result": "=4个",
            "tgt.social.1.name": "推介成果转化项目数",
            "tgt.social.1.target": "≥10项",
            "tgt.social.1.result": "=12项",
            "tgt.social.1.deviation": "无偏差",
            "tgt.satisfaction.1.name": "参会企业满意度",
            "tgt.satisfaction.1.target": "≥95%",
            "tgt.satisfaction.1.result": "=95%",
        }
    )
    return v


def corrected_dept_inputs() -> dict[str, Value]:
    """The seed's figures with its mistakes fixed and its warnings explained."""
    v = dept_inputs()
    v["exec.total.note"] = "执行额含使用上年结转资金 11605 百元"
    v["exec.project.note"] = "政策和项目支出使用上年结转资金 11605 百元"
    v["s.staff_control.note"] = "按超编率扣减计分（5×(1−33%)=3.35），与市财政局口径一致"
    return v


D = Decimal
