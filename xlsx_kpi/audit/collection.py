"""The outcome of collecting many filings: each Submission used, duplicates, missing units (data only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from xlsx_kpi.audit.checked import Checked
from xlsx_kpi.audit.findings import Severity
from xlsx_kpi.audit.report import Report
from xlsx_kpi.audit.rules.crossfile import CrossFinding
from xlsx_kpi.formats.expr import Value
from xlsx_kpi.formats.units import UnitRow
from xlsx_kpi.safe_text import without_spaces

__all__ = ["KIND_LABELS", "KIND_ORDER", "Collection", "Submission", "without_spaces"]

KIND_LABELS = {"department": "部门整体", "project": "项目支出"}
KIND_ORDER = {"department": 0, "project": 1}


@dataclass
class Submission:
    """One usable returned workbook as checked, with the file's hash and modification time."""

    checked: Checked
    sha256: str
    mtime: datetime
    kind: str = ""
    saved: datetime = datetime.min.replace(tzinfo=UTC)  # the workbook's own save time (audit.saved_at)

    @property
    def report(self) -> Report:
        return self.checked.report

    @property
    def file(self) -> Path:
        return self.checked.report.file

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Who filed what: (unit code, workbook kind, project, year); two files with one key are duplicates."""
        r = self.report
        return (r.unit_code.strip(), r.workbook_id, without_spaces(r.project_name), r.year.strip())

    @property
    def sort_key(self) -> tuple[Any, ...]:
        r = self.report
        return (r.unit_code.strip(), KIND_ORDER.get(self.kind, 9), r.project_name, r.year, self.file.name)

    def value(self, key: str) -> Value:
        """The recalculated value."""
        return self.checked.values.get(key)

    def filled(self, key: str) -> Value:
        """What the file shows: a value typed over the formula, or the displayed result where it differs from the
        recalculation (audit.Checked.written), else the recalculated value."""
        if key in self.checked.written:
            return self.checked.written[key]
        return self.value(key)

    @property
    def label(self) -> str:
        r = self.report
        return f"{r.unit_name}·{r.project_name}" if r.project_name else r.unit_name


@dataclass
class Collection:
    """The outcome of collecting a folder: the submissions used, duplicates, missing units, unusable files."""

    submissions: list[Submission]
    duplicates: list[list[Submission]] = field(default_factory=list)
    unusable: list[Report] = field(default_factory=list)
    missing: list[UnitRow] = field(default_factory=list)
    unlisted: list[Submission] = field(default_factory=list)
    units_file: Path | None = None
    expected: int = 0
    sources: list[Path] = field(default_factory=list)
    files: int = 0
    stored: int = 0
    already_stored: int = 0
    amount_unit: str = ""
    amount_factors: dict[str, Decimal] = field(default_factory=dict)
    cross: list[CrossFinding] = field(default_factory=list)
    # What the summary workbook is made from (tool version, specs, unit list, every file's path, content and time):
    # collect run again with the same fingerprint and nothing newly stored need not write it again.
    fingerprint: str = ""
    rechecked: bool = False  # every file read again (--recheck): the summary is written whatever the fingerprint
    new_files: list[Path] = field(default_factory=list)  # stored by this run: new or changed since the last

    @property
    def errors(self) -> int:
        """错误 in the submissions used and across the workbooks of a unit."""
        return sum(s.report.counts["错误"] for s in self.submissions) + sum(
            1 for c in self.cross if c.finding.severity is Severity.ERROR
        )

    @property
    def kinds(self) -> list[str]:
        """The kinds of workbook collected, departments first."""
        return sorted({s.kind for s in self.submissions}, key=lambda k: (KIND_ORDER.get(k, 9), k))

    def units_by_kind(self) -> list[tuple[str, str, dict[str, int]]]:
        """(unit name, unit code, {kind: number of workbooks}) per unit code, in code order."""
        units: dict[str, tuple[str, dict[str, int]]] = {}
        for s in self.submissions:
            code = s.report.unit_code.strip()
            name, counts = units.setdefault(code, (s.report.unit_name.strip(), {}))
            counts[s.kind] = counts.get(s.kind, 0) + 1
        return [(name, code, counts) for code, (name, counts) in sorted(units.items())]

    @property
    def exit_code(self) -> int:
        """2: a file could not be used; 1: 错误 in a submission used; 0: neither."""
        if self.unusable:
            return 2
        return 1 if self.errors else 0

    @property
    def years(self) -> list[str]:
        return sorted({s.report.year for s in self.submissions})

    def amount(self, sub: Submission, key: str) -> Decimal | None:
        """An amount of the 合计 row in the summary's unit (amount_unit)."""
        v = sub.value(key)
        if not isinstance(v, Decimal):
            return None
        return v * self.amount_factors.get(sub.report.workbook_id, Decimal(1))
