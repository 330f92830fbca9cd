"""Each table spec is a faithful copy of the published table in ../shared/seeds."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import SEEDS

from xlsx_kpi.errors import SpecError
from xlsx_kpi.formats.catalog import load_specs
from xlsx_kpi.formats.spec import Catalog, IndicatorsBlock, SheetSpec

# The five project tables of seed 000 (科创会, 科学素质, 社会化工作者, 天府科技云, 院士专家工作站).
PROJECT_TABLES = [(913, 1149), (1502, 1738), (2109, 2345), (2645, 2881), (3251, 3487)]


def squash(text: str) -> str:
    """Whitespace differs between Word, the text conversion and YAML; the characters must not."""
    return re.sub(r"\s+", "", text)


def seed_text(file: str, first: int, last: int) -> str:
    lines = (SEEDS / file).read_text(encoding="utf-8").split("\n")
    return squash("\n".join(lines[first - 1 : last]))


def score_block(spec: SheetSpec) -> IndicatorsBlock:
    [block] = [b for b in spec.blocks if isinstance(b, IndicatorsBlock)]
    return block


@pytest.mark.parametrize("sheet_id", ["sc-dept-score", "sc-proj-score"])
def test_every_indicator_text_is_in_the_seed_in_order(catalog: Catalog, sheet_id: str) -> None:
    spec = catalog.sheets[sheet_id]
    assert spec.source is not None
    ranges = PROJECT_TABLES if sheet_id == "sc-proj-score" else [spec.source.lines]
    for first, last in ranges:
        text = seed_text(spec.source.file, first, last)
        pos = 0
        for l1, l2, ind in score_block(spec).indicators():
            for published in (l1.name, l2.name):
                assert squash(published) in text, published
            for part in (ind.name, ind.explanation, ind.standard):
                found = text.find(squash(part), pos if part == ind.name else 0)
                assert found >= 0, f"{ind.id}: {part[:30]} not in seed lines {first}-{last}"
            pos = text.find(squash(ind.name), pos)


def test_department_indicator_count_and_names(catalog: Catalog) -> None:
    block = score_block(catalog.sheets["sc-dept-score"])
    names = [ind.name for _, _, ind in block.indicators()]
    assert len(names) == 27
    assert names[2] == "在职人员控制率（5分）"
    assert names[-1] == "社会公众或服务对象满意度（5分）"
    assert [l1.name for l1 in block.groups] == ["投入（20分）", "过程（30分）", "产 出（30分）", "效 果（20分）"]


def test_project_indicator_count_and_names(catalog: Catalog) -> None:
    block = score_block(catalog.sheets["sc-proj-score"])
    names = [ind.name for _, _, ind in block.indicators()]
    assert len(names) == 20
    assert names[5] == "管理制度健全性（4分）"
    assert "可持续影响" in names
    assert [l1.points for l1 in block.groups] == [25, 25, 20, 30]


@pytest.mark.parametrize("sheet_id", ["sc-dept-score", "sc-proj-score"])
def test_points_add_up_per_level_and_to_100(catalog: Catalog, sheet_id: str) -> None:
    block = score_block(catalog.sheets[sheet_id])
    total = Decimal(0)
    for l1 in block.groups:
        assert sum((l2.points for l2 in l1.groups), Decimal(0)) == l1.points, l1.name
        for l2 in l1.groups:
            assert sum((i.points for i in l2.indicators), Decimal(0)) == l2.points, l2.name
        total += l1.points
    assert total == 100


@pytest.mark.parametrize("sheet_id", ["sc-dept-score", "sc-proj-score"])
def test_points_match_the_published_labels_or_a_recorded_defect(catalog: Catalog, sheet_id: str) -> None:
    spec = catalog.sheets[sheet_id]
    defects = {d.where for d in spec.defects}
    for l1, l2, ind in score_block(spec).indicators():
        for item in (l1, l2, ind):
            m = re.search(r"（(\d+(?:\.\d+)?)分）$", squash(item.name))
            if m is None:
                assert f"s.{item.id}" in defects, f"{item.name} has no 分值 and no recorded defect"
                continue
            assert Decimal(m.group(1)) == item.points, item.name


def test_recorded_defects_name_real_indicators(catalog: Catalog) -> None:
    for spec in catalog.sheets.values():
        if not any(isinstance(b, IndicatorsBlock) for b in spec.blocks):
            continue
        ids = {f"s.{i.id}" for _, _, i in score_block(spec).indicators()}
        for d in spec.defects:
            assert d.where in ids, d.where
            assert d.decision
    assert {d.where for d in catalog.sheets["sc-dept-score"].defects} == {
        "s.carryover_rate",
        "s.procurement_execution",
        "s.social_benefit",
    }
    assert [d.where for d in catalog.sheets["sc-proj-score"].defects] == ["s.sustainability"]


def test_ambiguous_rule_names_both_readings(catalog: Catalog) -> None:
    ind = {i.id: i for _, _, i in score_block(catalog.sheets["sc-dept-score"]).indicators()}
    rule = ind["staff_control"].rule
    assert rule is not None
    assert rule.default == "proportional"
    assert set(rule.readings) == {"proportional", "excess_deduction", "excess_exact"}
    assert [rule.name_of(k) for k in rule.readings] == [
        "按比例计分",
        "按超编比例扣分",
        "按超编比例扣分（超编率不取整）",
    ]


def test_target_sheet_headers_follow_the_seed(catalog: Catalog) -> None:
    dept = catalog.sheets["sc-dept-target"]
    text = seed_text(dept.source.file, 639, 820) if dept.source else ""
    for word in (
        "部门（单位）名称",
        "预算单位编码",
        "预算执行情况",
        "当年结转结余额（百元）",
        "结转结余变动率%",
        "政策和项目支出",
        "一般公共预算安排",
        "社保基金预算安排",
        "预算总体目标执行结果",
        "预算指标值与预算指标值执行结果偏差情况及原因分析",
    ):
        assert word in text
    proj = catalog.sheets["sc-proj-target"]
    ptext = seed_text(proj.source.file, 1152, 1412) if proj.source else ""
    for word in ("项目名称", "项目类型", "产业发展", "行政运行", "财政拨款结构", "其他资金"):
        assert word in ptext


def test_a_bad_spec_fails_at_load_naming_file_and_key(tmp_path: Path) -> None:
    src = Path(load_specs().sheets["sc-dept-score"].path).parent
    for f in src.glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    bad = tmp_path / "sc-dept-score.yaml"
    bad.write_text(bad.read_text(encoding="utf-8").replace("points: 5\n", "points: -5\n", 1), encoding="utf-8")
    with pytest.raises(SpecError) as e:
        load_specs(tmp_path)
    assert "sc-dept-score.yaml" in e.value.message
    assert "blocks.1.indicators.groups.0.groups.0.points" in e.value.message


def test_an_unknown_formula_name_fails_at_load(tmp_path: Path) -> None:
    src = Path(load_specs().sheets["sc-dept-score"].path).parent
    for f in src.glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    bad = tmp_path / "sc-dept-score.yaml"
    bad.write_text(bad.read_text(encoding="utf-8").replace("b.staff_quota=0", "b.staff_qouta=0", 1), encoding="utf-8")
    with pytest.raises(SpecError, match="b.staff_qouta"):
        load_specs(tmp_path)
