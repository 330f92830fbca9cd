"""The audit: registered rules (one small class each) over a recalculated filing."""

from xlsx_kpi.audit.rules import (
    amounts,
    crossfile,
    formulas,
    history,
    identity,
    printed,
    quality,
    report_rules,
    rows,
    scores,
    targets,
    year,
)
from xlsx_kpi.audit.rules.base import REGISTRY, Context, Rule, register, run_rules, show

__all__ = [
    "REGISTRY",
    "Context",
    "Rule",
    "amounts",
    "crossfile",
    "formulas",
    "history",
    "identity",
    "printed",
    "quality",
    "register",
    "report_rules",
    "rows",
    "run_rules",
    "scores",
    "show",
    "targets",
    "year",
]
