"""The other four project tables of seed 000 (资阳市科学技术协会, 2021) as published, and the unit's six workbooks.

Together with the department (published.dept_published) and “科创会”专项经费 (published.kechuang_published)
they are the unit's whole filing of the year: 1 部门整体 and 5 项目支出 workbooks. Amounts in 百元 as the
附件2 tables state them; scores are each 附件1 as published.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from published import dept_published, kechuang_full_inputs, kechuang_published, overwrite

from xlsx_kpi.formats.expr import Value
from xlsx_kpi.formats.layout import build_layout
from xlsx_kpi.formats.plan import Identity
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.outputs.template import write_template

D = Decimal
SCORE_KEYS = (
    "setup_compliance",
    "goal_fit",
    "indicator_clarity",
    "funds_in_place",
    "funds_timely",
    "business_rules",
    "rules_execution",
    "quality_control",
    "finance_rules",
    "fund_compliance",
    "finance_monitoring",
    "completion_rate",
    "timeliness",
    "quality_rate",
    "cost_saving",
    "economic_benefit",
    "social_benefit",
    "ecological_benefit",
    "sustainability",
    "satisfaction",
)


@dataclass
class SeedProject:
    """One project's 附件1 scores (in SCORE_KEYS order), 附件2 amounts and indicators, with its seed lines."""

    name: str
    file: str
    lines: tuple[int, int]
    scores: tuple[str, ...]
    total: str  # 合计 as published
    budget: int
    actual: int
    goal: tuple[str, str, str]
    # (category, name, target, result, deviation); the template has 8 数量指标 rows (天府科技云 lists 11).
    targets: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    # Figures the unit typed where our template has a formula (the published 合计 column of 财政拨款结构).
    written: dict[str, float | str] = field(default_factory=dict)
    fund_general: tuple[int, int] | None = None  # 一般公共预算安排 when it differs from the 合计 row

    def identity(self) -> Identity:
        return Identity(
            year=2021,
            unit_name="资阳市科学技术协会",
            unit_code="156001",
            project_name=self.name,
            project_type="产业发展",
        )

    def inputs(self) -> dict[str, Value]:
        general = self.fund_general or (self.budget, self.actual)
        v: dict[str, Value] = {f"s.{k}.score": D(x) for k, x in zip(SCORE_KEYS, self.scores, strict=True)}
        v.update(
            {
                "info.unit_name": "资阳市科学技术协会",
                "info.unit_code": "156001",
                "pinfo.project_name": self.name,
                "exec.fiscal.budget": D(self.budget),
                "exec.fiscal.actual": D(self.actual),
                "exec.fiscal.carry": D(0),
                "exec.other.budget": D(0),
                "exec.other.actual": D(0),
                "exec.other.carry": D(0),
                "fund.budget.general": D(general[0]),
                "fund.actual.general": D(general[1]),
                "fund.carry.general": D(0),
                "goal.target": self.goal[0],
                "goal.result": self.goal[1],
                "goal.deviation": self.goal[2],
            }
        )
        counters: dict[str, int] = {}
        for cat, name, target, result, deviation in self.targets:
            n = counters[cat] = counters.get(cat, 0) + 1
            v[f"tgt.{cat}.{n}.name"] = name
            v[f"tgt.{cat}.{n}.target"] = target
            v[f"tgt.{cat}.{n}.result"] = result
            if deviation:
                v[f"tgt.{cat}.{n}.deviation"] = deviation
        return v


QUANMIN = SeedProject(
    name="全民科学素质行动计划纲要",
    file="资阳_全民科学素质.xlsx",
    lines=(1480, 2016),
    scores=("5", "4", "6", "5", "5", "4", "6", "3", "3", "7", "2", "4", "6", "5", "4", "5", "5", "4", "5", "9"),
    total="97",
    budget=300,
    actual=492,
    goal=(
        "科教赋能走入乡村",
        "承办中国科协科技活动教育乡村行走进资阳，围绕“乡村振兴科教赋能”主题，邀请西北师范大学教育技术学院"
        "杨鸿武教授和西北师范大学网络中心副主任鲁小勇副教授分别就人工智能和科技实践活动课进行专题授课，"
        "受益师生达260余人。",
        "无偏差",
    ),
    targets=[
        ("qty", "邀请专家授课人数", "≥1人", "=1人", "无偏差"),
        ("qty", "参会人数", "≤300人", "=260人", "无偏差"),
        ("qty", "科普云活动直播观看量", "≥100人次", "=125人次", "无偏差"),
        ("qty", "科普游学活动学生参与数", "≥80人", "=90人", "无偏差"),
        ("qty", "“最美科技工作者”校园宣讲场次及参与人数", "=5场\n≤800人", "=5场\n≤800人", "无偏差"),
        ("qty", "科普宣传及健康义诊发放宣传资料份数", "≤5000份", "=5000份", "无偏差"),
        ("qty", "“全民科学素质知识大赛”，活动访问量", "≥60万人次", "=62.2万人次", "无偏差"),
        ("qty", "建立省级科普共享基地", "=16个", "=16个", "无偏差"),
        ("quality", "提升我市各类人群科学素质，公民科学素质比例逐年提升。", "≥8%", "=8.5%", ""),
        ("time", "完成时间", "2021年12月31日", "2021年12月31日", ""),
        ("cost", "成本", "≤4.92万元", "=4.92万元", ""),
        ("satisfaction", "满意度指标", "≥95%", "≥95%", ""),
    ],
)

SHEHUIHUA = SeedProject(
    name="社会化工作者",
    file="资阳_社会化工作者.xlsx",
    lines=(2087, 2547),
    scores=("5", "4", "6", "5", "5", "4", "6", "3", "3", "7", "2", "4", "6", "5", "5", "5", "5", "5", "5", "8"),
    total="98",
    budget=1000,
    actual=1000,
    goal=(
        "保障社会化工作者工资保险等",
        "加强科普工作，促进全民科学素质提升，助力资阳市科学技术协会机关高效运转，解决人手紧缺的问题。",
        "无偏差",
    ),
    targets=[
        ("qty", "社会化工作者人数", "≤2人", "=2人", "无偏差"),
        ("quality", "工资发放准确率", "=100%", "=100%", "无偏差"),
        ("time", "工资发放及时率", "=100%", "=100%", "无偏差"),
        ("cost", "工资保险及公积金费用", "<=10万元", "10万元", "无偏差"),
        ("social", "工作正常开展天数", "<=365天", "=365天", "无偏差"),
        ("satisfaction", "科协机关满意度", ">95%", "=98%", "无偏差"),
    ],
)

TIANFU = SeedProject(
    name="天府科技云",
    file="资阳_天府科技云.xlsx",
    lines=(2623, 3161),
    scores=("5", "4", "6", "5", "5", "4", "6", "3", "3", "7", "2", "4", "6", "4.8", "5", "5", "5", "5", "5", "9.5"),
    total="99.3",
    budget=2000,
    actual=3180,
    goal=(
        "以“天府科技云”为平台，扎实推进全员“保姆式”服务；依托“天府科技云”平台，线上服务与线下服务结合，"
        "不断引入新人才、新技术及新应用，不断促成我市企业与高校专家（团队）科技供需对接，扎实推进校企合作；"
        "积极协调指导雁江区、高新区建立县（区）、园（区）天府科技云服务中心。",
        "截至目前，全市35个全员保姆，对接服务1028单，服务科研项目374个，已完成服务191单。",
        "无偏差",
    ),
    targets=[
        ("qty", "全员“保姆”数量", "≤35个", "=35个", ""),
        ("qty", "科技供需对接服务量", "≥1000单", "=1028单", ""),
        ("qty", "服务科研项目个数", "≥350个", "=374个", ""),
        ("qty", "推进校企合作量", "=2个", "=2个", ""),
        ("qty", "云上服务-发布服务量", "≥5000条，3664条，达成订单1099笔金额7.9亿元；", "=5324条", ""),
        ("qty", "云上服务-需求量", "≥3600条", "=3664条", ""),
        ("qty", "云上服务-达成订单量机金额", "≥1000单\n≥7亿", "=1099笔\n=7.9亿", ""),
        ("qty", "发布科技成果量", "≥250项", "=269项", ""),
        ("quality", "绩效目标考核排在全省第一方阵前7名", "≤7", "=5", ""),
        ("time", "工作完成及时率", "=100%", "=100%", ""),
        ("cost", "成本控制", "预算20万元，支出20万元", "控制率100%", ""),
    ],
    # 财政拨款结构 as published (lines 2953-2977): 合计 2000 but 一般公共预算安排 3180, in both rows.
    written={"fund.budget.total": 2000, "fund.actual.total": 2000},
    fund_general=(3180, 3180),
)

YUANSHI = SeedProject(
    name="院士专家工作站",
    file="资阳_院士专家工作站.xlsx",
    lines=(3229, 3699),
    scores=("5", "4", "6", "5", "4", "4", "6", "3", "3", "7", "2", "4", "6", "5", "5", "5", "5", "5", "5", "9"),
    total="98",
    budget=1000,
    actual=1000,
    goal=(
        "院士专家助力科创",
        "不断深化院士（专家）工作站建设，会同市委组织部到高新区、乐至县调研第四批、第五批市级院士（专家）"
        "工作站运行情况，举行授牌仪式。修改《院士（专家）工作站实施办法》。",
        "无偏差",
    ),
    targets=[
        ("qty", "调研次数", "≥3次", "=3次", ""),
        ("qty", "推荐第六批专家工作站个数", "≥3个", "=2个", ""),
        ("qty", "建立省、市级院士（专家）工作站个数", "≥10个", "=12个", ""),
        ("time", "工作完成时间", "2021年12月31日", "2021年12月31日", "无偏差"),
        ("cost", "运营管理资金", "<=10万元", "=10万元", "无偏差"),
        ("satisfaction", "服务对象满意度", "≥95%", "=98%", ""),
    ],
)

OTHER_PROJECTS = (QUANMIN, SHEHUIHUA, TIANFU, YUANSHI)


def project_published(catalog: Catalog, folder: Path, project: SeedProject) -> Path:
    """One of the four projects as published: inputs typed, then 合计 typed over formulas where it was."""
    layout = build_layout(catalog, catalog.workbook("sc-project"), project.identity())
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, float | str] = {"s.total": float(project.total), **project.written}
    clean = write_template(layout, folder / f"clean_{project.file}", inputs=project.inputs(), force=True)
    out = overwrite(clean, catalog, "sc-project", written, folder / project.file)
    clean.unlink()
    return out


def unit_published(catalog: Catalog, folder: Path) -> list[Path]:
    """The unit's six workbooks of 2021: the department first, then its five projects in seed order."""
    return [
        dept_published(catalog, folder),
        kechuang_published(catalog, folder, inputs=kechuang_full_inputs()),
        *(project_published(catalog, folder, p) for p in OTHER_PROJECTS),
    ]
