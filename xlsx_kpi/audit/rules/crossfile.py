"""Rules across the workbooks of one unit and year: one identity, projects inside the department, same targets."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from xlsx_kpi.audit.findings import Finding, Severity
from xlsx_kpi.audit.recalc import once_per_layout
from xlsx_kpi.audit.rules.base import REGISTRY, Context, Rule, register
from xlsx_kpi.formats.expr import Value
from xlsx_kpi.formats.plan import WorkbookLayout
from xlsx_kpi.safe_text import without_spaces

__all__ = [
    "CrossFinding",
    "Place",
    "UnitFile",
    "UnitGroup",
    "check_units",
    "group_units",
    "place_keys",
]

# The department's 政策和项目支出 row (Sichuan 附件2) and each project's 合计 row, by column.
DEPT_ROW = "exec.project"
PROJECT_ROW = "exec.total"
AMOUNT_COLUMNS = (("budget", "预算额"), ("actual", "执行额"))
IDENTITY_KEYS = (("info.unit_name", "单位名称"), ("info.unit_code", "预算单位编码"))
TOLERANCE = Decimal("0.005")  # amounts are whole 百元 or 2-decimal figures: half a cent of the stated unit
UNIT_FACTORS = {"元": 1, "百元": 100, "千元": 1000, "万元": 10000, "亿元": 100_000_000}
_UNIT_IN_LABEL = re.compile(r"[（(](元|百元|千元|万元|亿元)[）)]")
_TARGET_KEY = re.compile(r"^tgt\.([a-z_]+)\.(\d+)\.name$")
# A 三级指标 named only by its category (满意度指标, 成本) says nothing about which indicator it is.
GENERIC_NAMES = frozenset(
    "数量指标 质量指标 时效指标 成本指标 经济效益指标 社会效益指标 生态效益指标 可持续影响指标 满意度指标 "
    "数量 质量 时效 成本 满意度 指标".split()
)
KIND_LABELS = {"department": "部门整体", "project": "项目支出"}


def place_keys(layout: WorkbookLayout) -> list[str]:
    """The cells the cross-workbook rules point at; audit keeps their addresses (a unit may move rows).

    Worked out once per layout; do not modify the list."""
    return once_per_layout(layout, "place_keys", _place_keys)


def _place_keys(layout: WorkbookLayout) -> list[str]:
    keys = [k for k, _ in IDENTITY_KEYS]
    for row in (DEPT_ROW, PROJECT_ROW):
        keys += [f"{row}.{col}" for col, _ in AMOUNT_COLUMNS]
    for key in layout.cells:
        m = _TARGET_KEY.match(key)
        if m:
            keys += [key, f"tgt.{m.group(1)}.{m.group(2)}.target"]
    return [k for k in keys if k in layout.refs]


@dataclass(frozen=True)
class Place:
    """One workbook a cross-workbook finding involves, and the cell in it to look at."""

    file: Path
    sheet: str
    cell: str
    label: str  # 部门整体, or the project's name


@dataclass(frozen=True)
class CrossFinding:
    """A finding about several workbooks of one unit: `finding` carries the message and both figures."""

    finding: Finding
    places: tuple[Place, ...]
    unit_name: str
    unit_code: str
    year: str

    @property
    def files(self) -> list[Path]:
        return list(dict.fromkeys(p.file for p in self.places))


@dataclass
class UnitFile:
    """One usable workbook as the cross-workbook rules see it.

    `places` maps a key of place_keys to (sheet, A1, label) as read; `values` are the recalculated values.
    """

    file: Path
    kind: str
    workbook_id: str
    unit_name: str
    unit_code: str
    year: str
    project_name: str
    values: Mapping[str, Value]
    places: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.project_name.strip() or KIND_LABELS.get(self.kind, self.workbook_id)

    def place(self, key: str) -> Place | None:
        where = self.places.get(key)
        return None if where is None else Place(self.file, where[0], where[1], self.label)

    def amount(self, key: str) -> Decimal | None:
        """An amount in 元 (the unit its column header states), None when blank or not a number."""
        v = self.values.get(key)
        if not isinstance(v, Decimal) or key not in self.places:
            return None
        m = _UNIT_IN_LABEL.search(self.places[key][2])
        return v * UNIT_FACTORS[m.group(1)] if m else v

    def unit(self, key: str) -> str:
        m = _UNIT_IN_LABEL.search(self.places.get(key, ("", "", ""))[2])
        return m.group(1) if m else ""

    def text(self, key: str) -> str:
        v = self.values.get(key)
        return v.strip() if isinstance(v, str) else ("" if v is None else str(v))


@dataclass
class UnitGroup:
    """The workbooks of one unit and year (same code or same name), department first."""

    year: str
    files: list[UnitFile]

    @property
    def departments(self) -> list[UnitFile]:
        return [f for f in self.files if f.kind == "department"]

    @property
    def projects(self) -> list[UnitFile]:
        return [f for f in self.files if f.kind == "project"]

    @property
    def reference(self) -> UnitFile:
        """The workbook whose identity the others are compared with: the department's, else the first."""
        return (self.departments or self.files)[0]


def _indicator(text: str) -> str:
    """An indicator name compared loosely: no spaces, no trailing punctuation, full-width brackets as typed."""
    return without_spaces(text).rstrip("。；;，,.")


def _root(parent: list[int], i: int) -> int:
    """Union-find: the representative of i's set (with path halving)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def group_units(files: Sequence[UnitFile]) -> list[UnitGroup]:
    """Workbooks of one year joined into units when they share the unit code or the unit name.

    Joining on either lets a typo in one of them surface as a finding instead of a second unit.
    """
    groups: list[UnitGroup] = []
    for year in sorted({f.year.strip() for f in files}):
        members = [f for f in files if f.year.strip() == year]
        parent = list(range(len(members)))
        seen: dict[tuple[str, str], int] = {}
        for i, f in enumerate(members):
            for key in (("code", f.unit_code.strip()), ("name", without_spaces(f.unit_name))):
                if not key[1]:
                    continue
                if key in seen:
                    parent[_root(parent, i)] = _root(parent, seen[key])
                else:
                    seen[key] = i
        by_root: dict[int, list[UnitFile]] = {}
        for i, f in enumerate(members):
            by_root.setdefault(_root(parent, i), []).append(f)
        for group in by_root.values():
            group.sort(key=lambda f: (f.kind != "department", f.project_name, f.file.name))
            groups.append(UnitGroup(year, group))
    groups.sort(key=lambda g: (g.reference.unit_code.strip(), g.year))
    return groups


def _money(value: Decimal, unit: str) -> str:
    """An amount back in the unit the tables state, with thousands separators: 14,900."""
    factor = Decimal(UNIT_FACTORS.get(unit, 1))
    shown = (value / factor).quantize(Decimal("0.01")).normalize()
    return f"{shown:,f}" if shown == shown.to_integral_value() else f"{shown:,.2f}"


class CrossRule(Rule):
    """A rule over the workbooks of one unit and year; it finds nothing in a single workbook."""

    def check(self, ctx: Context) -> Iterator[Finding]:
        return iter(())

    def check_unit(self, group: UnitGroup) -> Iterator[CrossFinding]:
        raise NotImplementedError

    def cross(
        self,
        group: UnitGroup,
        places: Sequence[Place | None],
        message: str,
        *,
        expected: str,
        actual: str,
        indicator: str = "",
        severity: Severity | None = None,
    ) -> CrossFinding:
        found = tuple(p for p in places if p is not None)
        first = found[0]
        ref = group.reference
        return CrossFinding(
            finding=Finding(
                code=self.code,
                severity=severity or self.severity,
                sheet=first.sheet,
                cell=first.cell,
                message=message,
                expected=expected,
                actual=actual,
                indicator=indicator,
                title=self.title,
            ),
            places=found,
            unit_name=ref.unit_name,
            unit_code=ref.unit_code,
            year=group.year,
        )


@register
class UnitIdentityDiffers(CrossRule):
    code = "unit-identity-differs"
    severity = Severity.ERROR
    title = "跨表：同一单位的名称或编码不一致"
    example = (
        "2021_156001_资阳市科学技术协会_部门整体支出绩效自评.xlsx（附件2!F3）的预算单位编码为“156001”，"
        "而 项目.xlsx 为“156002”；同一单位的全部工作簿须填写相同的预算单位编码"
    )
    description = (
        "同一单位同一年度的部门整体表和各项目支出表中，单位名称和预算单位编码须完全一致（汇总按编码归户）。"
        "列出每个工作簿及其填写的内容。"
    )

    def check_unit(self, group: UnitGroup) -> Iterator[CrossFinding]:
        if len(group.files) < 2:
            return
        ref = group.reference
        for key, what in IDENTITY_KEYS:
            wanted = ref.unit_code if key.endswith("code") else ref.unit_name
            differing = [
                f
                for f in group.files
                if without_spaces(f.unit_code if key.endswith("code") else f.unit_name) != without_spaces(wanted)
            ]
            if not differing:
                continue
            written = "；".join(
                f"{f.file.name} 为“{(f.unit_code if key.endswith('code') else f.unit_name).strip() or '（空）'}”"
                for f in differing
            )
            yield self.cross(
                group,
                [f.place(key) for f in [ref, *differing]],
                f"{ref.file.name}（{ref.label}）的{what}为“{wanted.strip()}”，而 {written}；"
                f"同一单位的全部工作簿须填写相同的{what}",
                expected=wanted.strip(),
                actual="、".join(
                    dict.fromkeys((f.unit_code if key.endswith("code") else f.unit_name).strip() for f in differing)
                ),
            )


class _ProjectsVsDepartment(CrossRule):
    """Sum of the projects' 合计 row against the department's 政策和项目支出 row, column by column."""

    exceeds: bool

    def check_unit(self, group: UnitGroup) -> Iterator[CrossFinding]:
        if len(group.departments) != 1 or not group.projects:
            return
        dept = group.departments[0]
        for col, what in AMOUNT_COLUMNS:
            dkey, pkey = f"{DEPT_ROW}.{col}", f"{PROJECT_ROW}.{col}"
            department = dept.amount(dkey)
            amounts = [(p, p.amount(pkey)) for p in group.projects]
            known = [(p, a) for p, a in amounts if a is not None]
            if department is None or not known:
                continue
            total = sum((a for _, a in known), Decimal(0))
            unit = dept.unit(dkey)
            factor = Decimal(UNIT_FACTORS.get(unit, 1))
            diff = total - department
            if abs(diff) <= TOLERANCE * factor or (diff > 0) != self.exceeds:
                continue
            listed = "、".join(f"{p.file.name}（{p.label}）{_money(a, unit)}" for p, a in known)
            blank = [p.file.name for p, a in amounts if a is None]
            note = f"；{'、'.join(blank)} 的{what}为空，未计入" if blank else ""
            head = (
                f"{len(known)} 个项目支出表的{what}合计 {_money(total, unit)} {unit}"
                f"{'超过' if self.exceeds else '少于'}部门整体表 {dept.file.name} “政策和项目支出”行的{what} "
                f"{_money(department, unit)} {unit}，相差 {_money(abs(diff), unit)} {unit}（{listed}{note}）"
            )
            tail = (
                "；项目支出应包含在部门的政策和项目支出之内，请核对项目表或部门表的金额"
                if self.exceeds
                else "；并非每个项目都须报送自评表，请核对是否有项目未报送"
            )
            yield self.cross(
                group,
                [dept.place(dkey), *(p.place(pkey) for p, _ in amounts)],
                head + tail,
                expected=("≤" if self.exceeds else "") + _money(department, unit),
                actual=_money(total, unit),
                indicator=f"政策和项目支出·{what}",
            )


@register
class ProjectsExceedDepartment(_ProjectsVsDepartment):
    code = "projects-exceed-department"
    severity = Severity.WARNING
    title = "跨表：项目支出合计超过部门的政策和项目支出"
    example = (
        "5 个项目支出表的执行额合计 31,200 百元超过部门整体表 部门.xlsx “政策和项目支出”行的执行额 "
        "27,735 百元，相差 3,465 百元（…）"
    )
    description = (
        "同一单位同一年度各项目支出表“合计”行的预算额（执行额）之和，超过部门整体表“政策和项目支出”行的"
        "预算额（执行额）。列出部门表和每个项目表及两个合计。"
    )
    exceeds = True


@register
class ProjectsBelowDepartment(_ProjectsVsDepartment):
    code = "projects-below-department"
    severity = Severity.INFO
    title = "跨表：项目支出合计少于部门的政策和项目支出"
    example = (
        "2 个项目支出表的预算额合计 12,000 百元少于部门整体表 部门.xlsx “政策和项目支出”行的预算额 "
        "16,130 百元，相差 4,130 百元（…）"
    )
    description = (
        "各项目支出表的预算额（执行额）之和少于部门整体表“政策和项目支出”行的金额，列出差额"
        "（并非每个项目都须报送自评表，供审核人核对是否漏报）。"
    )
    exceeds = False


@register
class TargetContradictsDepartment(CrossRule):
    code = "target-contradicts-department"
    severity = Severity.WARNING
    title = "跨表：项目与部门的同一绩效指标目标值不同"
    example = (
        "绩效指标“推介成果-洽谈企业数”在部门整体表 部门.xlsx 的预算指标值为“≥30家”，"
        "在项目支出表 科创会.xlsx（附件2!E18）为“≥20家”；同一指标的目标值应一致"
    )
    description = (
        "部门整体表与本单位项目支出表的年度绩效指标中，三级指标名称相同而预算指标值不同"
        "（只写类别名的指标如“满意度指标”不比较）。"
    )

    def check_unit(self, group: UnitGroup) -> Iterator[CrossFinding]:
        if len(group.departments) != 1:
            return
        dept = group.departments[0]
        for dname_key, dname in _targets(dept):
            dtarget_key = dname_key.removesuffix(".name") + ".target"
            dtarget = dept.text(dtarget_key)
            for p in group.projects:
                for pname_key, pname in _targets(p):
                    if _indicator(pname) != _indicator(dname):
                        continue
                    ptarget_key = pname_key.removesuffix(".name") + ".target"
                    ptarget = p.text(ptarget_key)
                    if not dtarget or not ptarget or without_spaces(ptarget) == without_spaces(dtarget):
                        continue
                    yield self.cross(
                        group,
                        [dept.place(dtarget_key), p.place(ptarget_key)],
                        f"绩效指标“{dname}”在部门整体表 {dept.file.name} 的预算指标值为“{dtarget}”，"
                        f"在项目支出表 {p.file.name}（{p.label}）为“{ptarget}”；同一指标的目标值应一致，"
                        "或改用能区分两者的指标名称",
                        expected=dtarget,
                        actual=ptarget,
                        indicator=dname,
                    )


def _targets(f: UnitFile) -> list[tuple[str, str]]:
    """(name key, name) of the 年度绩效指标 rows that carry a specific indicator name."""
    out = []
    for key in f.places:
        if _TARGET_KEY.match(key):
            name = f.text(key)
            if name and _indicator(name) not in GENERIC_NAMES:
                out.append((key, name))
    return out


def check_units(files: Sequence[UnitFile]) -> list[CrossFinding]:
    """Every cross-workbook rule over every unit and year among `files`; a broken rule becomes a 提示."""
    out: list[CrossFinding] = []
    for group in group_units(files):
        for code, cls in REGISTRY.items():
            if not issubclass(cls, CrossRule):
                continue
            try:
                out.extend(cls().check_unit(group))
            except Exception as e:  # noqa: BLE001 - one faulty rule must not lose the other findings
                ref = group.reference
                out.append(
                    CrossFinding(
                        Finding(
                            code="rule-failed",
                            severity=Severity.INFO,
                            sheet="",
                            cell="",
                            message=f"规则 {code} 未能完成（{type(e).__name__}），请人工核对",
                            title="规则未完成",
                        ),
                        tuple(Place(f.file, "", "", f.label) for f in group.files),
                        ref.unit_name,
                        ref.unit_code,
                        group.year,
                    )
                )
    out.sort(key=lambda c: (c.unit_code, c.year, c.finding.severity.rank, c.finding.code))
    return out
