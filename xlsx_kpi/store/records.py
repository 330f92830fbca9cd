"""A stored submission as read back (Record), its kind, and the amounts added up per year and kind."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from xlsx_kpi.audit.figures import AMOUNTS, EXECUTION_RATE, FIGURES, execution_rate, shown_value
from xlsx_kpi.formats.expr import Value
from xlsx_kpi.store.encoding import encode_value

__all__ = ["Record", "kind_totals", "record_kind"]


@dataclass
class Record:
    """One stored submission."""

    id: int
    sha256: str
    unit_code: str
    unit_name: str
    year: int
    workbook_id: str
    project_name: str
    file_name: str
    file_mtime: str
    collected_at: str
    total: Decimal | None
    grade: str
    counts: dict[str, int]
    inputs: dict[str, Value] = field(default_factory=dict)
    values: dict[str, Value] = field(default_factory=dict)
    written: dict[str, Value] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, kinds: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The record's headline figures (FIGURES) as JSON-ready strings."""
        rate = execution_rate(self.values)
        return {
            "year": self.year,
            "workbook": self.workbook_id,
            "kind": record_kind(self, kinds),
            "project_name": self.project_name,
            "unit_name": self.unit_name,
            "grade": self.grade,
            **{f.id: encode_value(shown_value(self.values.get(f.key), f)) for f in FIGURES},
            "execution_rate": encode_value(shown_value(rate, EXECUTION_RATE)),
            "counts": self.counts,
            "file": self.file_name,
            "sha256": self.sha256,
            "collected_at": self.collected_at,
        }


def record_kind(record: Record, kinds: Mapping[str, str] | None = None) -> str:
    """department or project: from the specs' workbook ids when given, else a project name means a project."""
    if kinds and record.workbook_id in kinds:
        return kinds[record.workbook_id]
    return "project" if record.project_name.strip() else "department"


def kind_totals(records: Iterable[Record], kinds: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Amounts added up per year and kind, never across kinds: a project's money is inside its department's.

    Each entry: year, kind, workbooks, then budget/actual/carry (exact Decimal sums as strings; None when
    no workbook of the kind has the figure) and the execution rate of the sums (4 decimals).
    """
    groups: dict[tuple[int, str], list[Record]] = {}
    for r in records:
        groups.setdefault((r.year, record_kind(r, kinds)), []).append(r)
    out: list[dict[str, Any]] = []
    order = {"department": 0, "project": 1}
    for (year, kind), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 9), kv[0][1])):
        entry: dict[str, Any] = {"year": year, "kind": kind, "workbooks": len(rs)}
        sums: dict[str, Decimal | None] = {}
        for f in AMOUNTS:
            figures = [v for r in rs if isinstance(v := r.values.get(f.key), Decimal)]
            sums[f.id] = sum(figures, Decimal(0)) if figures else None
            entry[f.id] = encode_value(sums[f.id])
        budget, actual = sums["budget"], sums["actual"]
        rate = actual / budget if budget and actual is not None else None
        entry["execution_rate"] = encode_value(shown_value(rate, EXECUTION_RATE))
        out.append(entry)
    return out
