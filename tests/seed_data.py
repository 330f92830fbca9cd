"""Published figures from ../shared/seeds/000 (资阳市科学技术协会, 2021) keyed by template cell name."""

from __future__ import annotations

from decimal import Decimal

from xlsx_kpi.formats.expr import Value
from xlsx_kpi.formats.plan import Approved, Identity

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


# 自评依据及说明 as published (seed 000, last column of each 附件1).
DEPT_BASIS = {
    "goal_fit": "设立的整体绩效目标依据充分,符合客观事实,符合”三定”方案确定的职责,符合我单位中长期实施规划。",
    "indicator_clarity": "将部门整体的绩效目标细化分解为具体的工作任务，清晰、可衡量，与年度任务数相对应，与本年度预算资金相匹配。",
    "staff_control": "编制数6人，\n在职人员数8人",
    "three_public_change": "2020年“三公经费”预算0万元，2021年预算0.12万元",
    "key_spending": "重点支出安排率100%",
    "budget_completion": "完成预算完成数。",
    "budget_adjustment": "预算调整符合要求。",
    "payment_progress": "按季度完成预算进度，完成年终进度。",
    "carryover_rate": "结转结余率符合要求。",
    "carryover_change": "结转结余变动率符合要求。",
    "public_expense_control": "公用经费控制率符合要求。",
    "three_public_control": "预算数与决算数一致，符合“三公经费”控制率要求。",
    "procurement_execution": "2021年无政府采购",
    "budget_rules": "制定的管理制度健全，完善并严格执行机关制度机制。",
    "fund_compliance": "资金使用符合国家财经法规和财务管理制度规定以及有关专项资金管理办法的规定；符合部门预算批复用途；不存在截留、挤占、挪用、虚列支出等情况。",
    "disclosure": "2020年决算公开网址http://sczj.ziyang.gov.cn/index.php?m=content&c=index&a=show&catid=161&id=4866\n2021年预算公开网址http://sczj.ziyang.gov.cn/index.php?m=content&c=index&a=show&catid=157&id=3952",
    "basic_info": "基础数据信息和会计信息资料真、完整、准确。",
    "asset_rules": "已制定或具有资产管理制度；相关资金管理制度合法、合规、完整；相关资产管理制度得到有效执行。",
    "asset_safety": "资产保存完整、合理、规范；资产账务管理合规，帐实相符；资产处置收入及时足额上缴。",
    "fixed_asset_use": "固定资产利用率符合要求。",
    "completion_rate": "实际完成率符合要求。",
    "timeliness": "完成及时率符合要求。",
    "quality_rate": "质量达标率符合要求。",
    "key_work_rate": "重点工作办结率符合要求。",
    "economic_benefit": "经济效益实现程度达到标准。",
    "social_benefit": "社会效益实现程度达到标准。",
    "satisfaction": "群众满意度达95%。",
}


def dept_inputs() -> dict[str, Value]:
    """The department workbook filled with the seed's 附件1 scores and 附件2 amounts (百元)."""
    v: dict[str, Value] = {f"s.{k}.score": D(x) for k, x in DEPT_SCORES.items()}
    v.update({f"s.{k}.basis": text for k, text in DEPT_BASIS.items()})
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
            "goal.result": "建成1个市本级云服中心，2个县级云服务中心，在全省的目标绩效考核迈入第一方阵。开展媒体科普宣传活动，"
            "与5家省、市级媒体合作。通过面向社会招募2-3名社会化工作者，助力机关正常运转和科普工作的开展。"
            "加强对已建院士专家工作站的绩效管理，对运行优秀的市级站进行奖补。",
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


KECHUANG_BASIS = {
    "setup_compliance": "根据省科协下达的工作方案执行。",
    "goal_fit": "按上级要求组织参与活动。通过招投标方式引进具备资质的第三方进行筹备和组织。",
    "indicator_clarity": "指标明确，在预算额度内执行。",
    "funds_timely": "资金按要求及时拨付到位",
    "business_rules": "在财务制度和财经纪律约束下规范执行。",
    "rules_execution": "涉及项目相关资料及时归档，项目实施方保障到位。",
    "quality_control": "采购公告和活动合同中进行了明确。",
    "finance_rules": "与财政部门联合下发了符合财务会计制度的项目资金管理办法。",
    "fund_compliance": "资金使用合规，手续完整，重大开支按照三重一大规定执行，不存在其他不合规情况。",
    "satisfaction": "取得良好的社会效益，群众满意度达95%以上。",
}


def kechuang_inputs() -> dict[str, Value]:
    """The “科创会” project workbook: 106 万元 budget, 76.78 万元 spent, 29.22 万元 carried over."""
    v: dict[str, Value] = {f"s.{k}.score": D(x) for k, x in KECHUANG_SCORES.items()}
    v.update({f"s.{k}.basis": text for k, text in KECHUANG_BASIS.items()})
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


# ---------------------------------------------------------------------------------------------
# Other regions (tests/test_other_regions.py): seed 002 (雁峰区, national layout) and seed 004 (广州).

# The seeds give no 预算单位编码; these are placeholders for the file names.
GZ_IDENTITY = Identity(year=2021, unit_name="广州市科学技术协会", unit_code="440100001")

# The nine 绩效指标 rows of seed 002 (lines 85-183): on the national form they are free rows, so the
# fixture prefills them as approved targets (group, 三级指标, 年度指标值), in the published order.
CN_ROWS = [
    ("s.output_kinds", "全民科学素质建设", "开展各项活动"),
    ("s.output_kinds", "开展好青少年科技创新活动", "开展各项活动"),
    ("s.output_kinds", "开展好科普进社区活动", "开展各项活动"),
    ("s.output_kinds", "资金使用合规性", "合规"),
    ("s.output_kinds", "公用经费控制率", "≤100%"),
    ("s.benefit_kinds", "学习党史", "积极开展"),
    ("s.benefit_kinds", "落实廉政建设", "按要求完成"),
    ("s.benefit_kinds", "预决算信息公开", "按要求公开"),
    ("s.service_satisfaction", "群众满意度", "90%"),
]
CN_APPROVED = tuple(Approved(g, n, t) for g, n, t in CN_ROWS)
CN_IDENTITY = Identity(year=2021, unit_name="雁峰区科学技术协会", unit_code="430406001", approved=CN_APPROVED)

# 实际完成值, 分值 and 得分 of the nine rows as published.
CN_RESULTS = [
    ("已完成", "10", "10"),
    ("完成", "10", "10"),
    ("荣获市级二等奖", "10", "10"),
    ("合规", "10", "10"),
    ("100%", "10", "10"),
    ("积极开展", "10", "10"),
    ("按要求完成", "10", "10"),
    ("已公开", "10", "10"),
    ("90%", "10", "10"),
]


def cn_row_bases() -> list[str]:
    """Key bases of the nine fixture rows: s.output_kinds.1 … s.service_satisfaction.1."""
    seen: dict[str, int] = {}
    bases = []
    for group, _, _ in CN_ROWS:
        seen[group] = seen.get(group, 0) + 1
        bases.append(f"{group}.{seen[group]}")
    return bases


def cn_inputs() -> dict[str, Value]:
    """Seed 002 as published: 54.41 万元 in every 年度资金总额 column, 42.09 for 财政拨款, 得分 9 + 90."""
    v: dict[str, Value] = {}
    for base, (actual, points, score) in zip(cn_row_bases(), CN_RESULTS, strict=True):
        v[f"{base}.result"] = actual
        v[f"{base}.max"] = D(points)
        v[f"{base}.score"] = D(score)
    for col in ("budget_initial", "budget", "actual"):
        v[f"fund.total.{col}"] = D("54.41")
        v[f"fund.fiscal.{col}"] = D("42.09")
    v.update(
        {
            "info.unit_name": "雁峰区科学技术协会",
            "fund.total.score": D(9),
            "goal.target": "以“提高科学素质，提升生活品质”为抓手，大力开展社区科普活动，参与全区开展的文化科技卫生"
            "“三下乡”活动，通过丰富多彩的科普宣传，充分调动群众参与科普工作的积极性。",
            "goal.result": "高站位、高标准、高质量完成了各项工作",
        }
    )
    return v


def _seed_row(file: str, line: int) -> list[str]:
    """The non-empty cells of one table row of a seed (one line, cells separated by tabs)."""
    from pathlib import Path  # here, not at the top: this part of the module is appended

    seeds = Path(__file__).resolve().parents[2] / "shared" / "seeds"
    text = (seeds / file).read_text(encoding="utf-8").split("\n")[line - 1]
    return [c.strip() for c in text.split("\t") if c.strip()]


GZ_SEED = "004_2ee29628f258657d.txt"
# 管理效能 of seed 004: indicator -> (line, 得分); the 评分依据 is the last cell of the line.
GZ_MGMT = {
    "budget_completion": (16, "1.24"),
    "budget_preparation": (17, "3"),
    "special_funds": (18, "2"),
    "income_variance": (19, "1.97"),
    "general_execution": (20, "1.72"),
    "carryover_rate": (21, "2"),
    "finance_rules": (22, "3"),
    "procurement_execution": (23, "1.96"),
    "budget_disclosure": (24, "2"),
    "performance_disclosure": (25, "2"),
    "asset_rules": (28, "1"),
    "asset_reconciliation": (29, "1"),
    "fixed_asset_use": (30, "2"),
    "public_expense_control": (31, "2"),
    "three_public_control": (32, "2"),
    "perf_rules": (33, "3"),
    "goal_fit": (34, "2"),
    "indicator_clarity": (35, "2"),
    "goal_completion": (36, "2"),
    "monitoring": (37, "4"),
    "result_use": (38, "2"),
}
# 履职效能: indicator -> (line, 分值 = 得分, full marks as the 总分 93.89 implies); 实际完成指标值 is the last
# text cell before “已完成”, as published (lines 63-65 carry it one row off; see the spec's notes).
GZ_DUTY = {
    "talent_platform": (40, "2"),
    "publicity": (41, "2"),
    "academician": (42, "2"),
    "tech_transfer": (45, "4"),
    "enterprise_service": (46, "4"),
    "gba": (47, "4"),
    "seven_projects": (48, "4"),
    "sci_tours": (49, "4"),
    "science_museum": (50, "4"),
    "think_tank": (51, "3"),
    "advice": (52, "2"),
    "connotation": (53, "2"),
    "major_groups": (56, "2"),
    "innovation_workshop": (57, "2"),
    "student_aid": (58, "2"),
    "culture_base": (59, "2"),
    "training_centers": (60, "2"),
    "smart_campus": (63, "1"),
    "research": (64, "1"),
    "faculty": (65, "1"),
}


def gz_inputs() -> dict[str, Value]:
    """Seed 004 as published (万元): 支出规模, every 得分 (total 93.89) and the figures of the 评分依据."""
    v: dict[str, Value] = {}
    for ind, (line, score) in GZ_MGMT.items():
        v[f"s.{ind}.score"] = D(score)
        v[f"s.{ind}.basis"] = _seed_row(GZ_SEED, line)[-1]
    for ind, (line, score) in GZ_DUTY.items():
        cells = _seed_row(GZ_SEED, line)
        assert cells[-1] == "已完成", line
        v[f"s.{ind}.actual"] = next(c for c in reversed(cells[:-1]) if not c.replace(".", "").isdigit())
        v[f"s.{ind}.score"] = D(score)
        v[f"s.{ind}.basis"] = "已完成"
    goal_row = _seed_row(GZ_SEED, 9)
    v.update(
        {
            "info.unit_name": "广州市科学技术协会",
            "info.unit_count": D(4),
            "info.goal": goal_row[1],
            "info.result": goal_row[3],
            "s.commendation.score": D(0),
            "s.commendation.basis": "预算编制和决算工作未收到表扬，不存在违规行为。 部门自行提供佐证材料。",
            "scale.budget.fiscal": D("31570.33"),
            "scale.budget.other": D("9389.6"),
            "scale.budget.basic": D("24299.83"),
            "scale.budget.project": D("16660.1"),
            "scale.budget.city": D("40959.93"),
            "scale.budget.transfer": D(6481),
            "scale.actual.fiscal": D("31133.57"),
            "scale.actual.other": D("8264.76"),
            "scale.actual.basic": D("22578.78"),
            "scale.actual.project": D("16819.55"),
            "scale.actual.city": D("39398.33"),
            "scale.actual.transfer": D(5951),
            # The figures the 评分依据 quote (lines 19-32).
            "b.income_budget": D("31570.33"),
            "b.income_final": D("31133.57"),
            "b.gp_exec_rate": D("0.9862"),
            "b.carry": D("159.43"),
            "b.proc_budget": D("8089.48"),
            "b.proc_actual": D("7927.72"),
            "b.public_budget": D("6304.21"),
            "b.public_actual": D("5626.54"),
            "b.tp_budget": D("71.9"),
            "b.tp_actual": D("38.03"),
        }
    )
    return v
