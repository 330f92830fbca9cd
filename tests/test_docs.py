"""Docs are tested: the rule catalogue is generated from the registry, every command is in the README."""

from __future__ import annotations

from pathlib import Path

from xlsx_kpi.audit.rules import REGISTRY
from xlsx_kpi.audit.rules.base import catalogue

ROOT = Path(__file__).resolve().parents[1]


def test_rule_catalogue_is_current() -> None:
    text = (ROOT / "docs" / "RULES.md").read_text(encoding="utf-8")
    assert text == catalogue(), "docs/RULES.md 已过期：运行 `xlsx-kpi rules > docs/RULES.md`"
    for code in REGISTRY:
        assert f"`{code}`" in text


def test_rule_codes_are_stable_kebab_case_with_chinese_titles() -> None:
    assert {
        "score-above-max",
        "sum-mismatch",
        "rate-mismatch",
        "score-vs-reference",
        "over-budget",
        "rate-without-base",
        "target-missed",
        "identity-mismatch",
    } <= set(REGISTRY)
    for code, rule in REGISTRY.items():
        assert code == code.lower() and " " not in code and "_" not in code
        assert any("\u4e00" <= ch <= "\u9fff" for ch in rule.title), code
        assert rule.description, code
        assert any("\u4e00" <= ch <= "\u9fff" for ch in rule.example), code  # docs/RULES.md shows it


def test_every_command_has_a_readme_example() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in (
        "xlsx-kpi specs",
        "xlsx-kpi template",
        "xlsx-kpi check",
        "xlsx-kpi rules",
        "xlsx-kpi build-templates",
    ):
        assert command in readme, command
