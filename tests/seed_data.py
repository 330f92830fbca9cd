"""Published figures from ../shared/seeds/000 (资阳市科学技术协会, 2021) keyed by template cell name."""

from __future__ import annotations

from decimal import Decimal

from xlsx_kpi.expr import Value
from xlsx_kpi.layout import Identity

D = Decimal

DEPT_IDENTITY = Identity(year=2021, unit_name="资阳市科学技术协会", unit_code="156001")
PROJECT_IDENTITY = Identity(
    year=2021,
    unit_name="资阳市科学技术协会",
    unit_code="156001",
    project_name="“科创会”专项经费",
    project_type="产业发展",
)

# 附件1 自评分数 as published (seed 000 lines 371-635); they add up to 95.35.
DEPT_SCORES = {
    "goal_fit": "2",
    "indicator_clarity": "2",
    "staff_control": "3.35",
    "three_public_change": "4",
    "key_spending": "5",
    "budget_completion": "4",
    "budget_adjustment": "2",
    "payment_progress": "2",
    "carryover_rate": "1",
    "carryover_change": "2",
    "public_expense_control": "2",
    "three_public_control": "2",
    "procurement_execution": "4",
    "budget_rules": "2",
    "fund_compliance": "1",
    "disclosure": "1",
    "basic_info": "1",
    "asset_rules": "2",
    "asset_safety": "2",
    "fixed_asset_use": "1",
    "completion_rate": "8",
    "timeliness": "4",
    "quality_rate": "8",
    "key_work_rate": "10",
    "economic_benefit": "5",
    "social_benefit": "10",
    "satisfaction": "5",
}


def dept_inputs() -> dict[str, Value]:
    """The department workbook filled with the seed's 附件1 scores and 附件2 amounts (百元)."""
    v: dict[str, Value] = {f"s.{k}.score": D(x) for k, x in DEPT_SCORES.items()}
    v["s.staff_control.basis"] = "编制数6人，\n在职人员数8人"
    v["s.three_public_change.basis"] = "2020年“三公经费”预算0万元，2021年预算0.12万元"
    v.update(
        {
            "info.unit_name": "资阳市科学技术协会",
            "info.unit_code": "156001",
            "exec.basic.budget": D(20678),
            "exec.basic.actual": D(20678),
            "exec.basic.carry": D(0),
            "exec.project.budget": D(16130),
            "exec.project.actual": D(27735),
            "exec.project.carry": D(2922),
            "fund.budget.general": D(36808),
            "fund.budget.gov_fund": D(0),
            "fund.budget.soe": D(0),
            "fund.budget.social": D(0),
            "fund.actual.general": D(48413),
            "fund.actual.gov_fund": D(0),
            "fund.actual.soe": D(0),
            "fund.actual.social": D(0),
            "fund.carry.general": D(2922),
            "fund.carry.gov_fund": D(0),
            "fund.carry.soe": D(0),
            "fund.carry.social": D(0),
            # 上年度累计结转结余资金 145.26 万元 = 14526 百元 (narrative, seed line 268).
            "b.prev_carry_basic": D(0),
            "b.prev_carry_project": D(14526),
            "b.prev_carry_f_general": D(14526),
            "b.staff_quota": D(6),
            "b.staff_actual": D(8),
            "goal.target": "深入开展天府科技云服务，科普类宣传及大型活动组织，提升全民科学素质，"
            "做好院士专家工作站各项工作，"
            "招募社会化工作站协助完成相关工作任务。",
            "tgt.qty.1.name": "评选最美科技工作者",
            "tgt.qty.1.target": "≥10个",
            "tgt.qty.1.result": "=10个",
            "tgt.qty.2.name": "助推企业开展创新驱动活动个数",
            "tgt.qty.2.target": "≥3家",
            "tgt.qty.2.result": "=3家",
            "tgt.quality.1.name": "举行全民科学素质大赛",
            "tgt.quality.1.target": "≥5.5万人次",
            "tgt.quality.1.result": "=5.6万人次",
            "tgt.time.1.name": "完成时限",
            "tgt.time.1.target": "2021年12月31日",
            "tgt.time.1.result": "2021年12月31日",
            "tgt.cost.1.name": "预算数",
            "tgt.cost.1.target": "≤484.13万元",
            "tgt.cost.1.result": "=484.13万元",
            "tgt.social.1.name": "公民科学素质逐年提升",
            "tgt.social.1.target": "≥8%",
            "tgt.social.1.result": "=8.5%",
            "tgt.satisfaction.1.name": "企业及群众满意度",
            "tgt.satisfaction.1.target": "≥85%",
            "tgt.satisfaction.1.result": "90%",
        }
    )
    return v


# “科创会”专项经费 附件1 scores (seed 000 lines 913-1148); they add up to 98.5.
KECHUANG_SCORES = {
    "setup_compliance": "4.5",
    "goal_fit": "4",
    "indicator_clarity": "6",
    "funds_in_place": "5",
    "funds_timely": "5",
    "business_rules": "4",
    "rules_execution": "6",
    "quality_control": "3",
    "finance_rules": "3",
    "fund_compliance": "7",
    "finance_monitoring": "2",
    "completion_rate": "4",
    "timeliness": "6",
    "quality_rate": "5",
    "cost_saving": "5",
    "economic_benefit": "5",
    "social_benefit": "5",
    "ecological_benefit": "5",
    "sustainability": "5",
    "satisfaction": "9",
}


def kechuang_inputs() -> dict[str, Value]:
    """The “科创会” project workbook: 106 万元 budget, 76.78 万元 spent, 29.22 万元 carried over."""
    v: dict[str, Value] = {f"s.{k}.score": D(x) for k, x in KECHUANG_SCORES.items()}
    v.update(
        {
            "info.unit_name": "资阳市科学技术协会",
            "info.unit_code": "156001",
            "pinfo.project_name": "“科创会”专项经费",
            "exec.fiscal.budget": D(10600),
            "exec.fiscal.actual": D(7678),
            "exec.fiscal.carry": D(2922),
            "exec.other.budget": D(0),
            "exec.other.actual": D(0),
            "exec.other.carry": D(0),
            "fund.budget.general": D(10600),
            "fund.actual.general": D(7678),
            "fund.carry.general": D(2922),
            "b.satisfaction": D("0.95"),
        }
    )
    return v
