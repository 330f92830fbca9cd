"""Checked: one audited workbook's report with the figures behind it (shared by the audit, collect and the history)."""

from __future__ import annotations

from dataclasses import dataclass, field

from xlsx_kpi.audit.report import Report
from xlsx_kpi.formats.expr import Value

__all__ = ["Checked"]


@dataclass
class Checked:
    """A report with the figures behind it (all empty when the file could not be used).

    inputs: the input cells as read from the file; values: every value as recalculated (inputs included,
    blank previous-year figures filled from the history); written: formula cells the unit typed a value
    over, with that value (what the file shows instead of the formula), and formula cells whose displayed
    value differs from the recalculation, with the displayed value (rules.printed.printed_mismatches).
    """

    report: Report
    inputs: dict[str, Value] = field(default_factory=dict)
    values: dict[str, Value] = field(default_factory=dict)
    written: dict[str, Value] = field(default_factory=dict)
    # (sheet, A1, label) of the cells the cross-workbook rules point at (rules.crossfile.place_keys).
    places: dict[str, tuple[str, str, str]] = field(default_factory=dict)
