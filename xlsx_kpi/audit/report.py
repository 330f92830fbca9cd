"""The result of checking one workbook: findings, counts, exit code, JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

from xlsx_kpi.audit.findings import Finding, Severity, finding_fields


@dataclass
class Report:
    """One file's outcome. `error` is set (and findings empty) when the file could not be used at all."""

    file: Path
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None
    workbook_id: str = ""
    unit_name: str = ""
    unit_code: str = ""
    year: str = ""
    project_name: str = ""
    total: Decimal | None = None
    grade: str = ""
    annotated: Path | None = None
    output_error: str | None = None
    # Formula cells replaced by a typed value that agrees with the recalculation ("附件2!C5"): not a
    # finding, listed once for the reviewer.
    replaced: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return self.error is None

    def count(self, severity: Severity, *, explained: bool | None = None) -> int:
        return sum(
            1 for f in self.findings if f.severity is severity and (explained is None or f.explained == explained)
        )

    @property
    def counts(self) -> dict[str, int]:
        """错误 / 警告 (not yet explained) / 已说明的警告 / 提示."""
        return {
            "错误": self.count(Severity.ERROR),
            "警告": self.count(Severity.WARNING, explained=False),
            "已说明": self.count(Severity.WARNING, explained=True),
            "提示": self.count(Severity.INFO),
        }

    @property
    def status(self) -> str:
        if self.error is not None:
            return "无法读取"
        if self.count(Severity.ERROR):
            return "有错误"
        if self.count(Severity.WARNING, explained=False):
            return "有警告"
        return "通过"

    @property
    def exit_code(self) -> int:
        if self.error is not None or self.output_error is not None:
            return 2
        return 1 if self.count(Severity.ERROR) else 0

    def flatten(self, *fields: str) -> list[tuple[Any, ...]]:
        """Findings as tuples of the named fields, e.g. flatten("where", "code"), in report order."""
        return [tuple(getattr(f, name) for name in fields) for f in self.findings]

    def sort(self) -> None:
        self.findings.sort(key=lambda f: (f.severity.rank, f.sheet, _cell_key(f.cell), f.code))

    def summary(self) -> ReportSummary:
        """This report without its findings, their counts kept: what a batch's table and exit code need."""
        kept = {f.name: getattr(self, f.name) for f in fields(Report) if f.name != "findings"}
        return ReportSummary(**kept, tally=self.counts)

    def to_json(self) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "status": self.status,
            "error": self.error,
            "workbook": self.workbook_id,
            "unit_name": self.unit_name,
            "unit_code": self.unit_code,
            "year": self.year,
            "project_name": self.project_name,
            "total": None if self.total is None else str(self.total),
            "grade": self.grade,
            "counts": self.counts,
            "annotated": None if self.annotated is None else str(self.annotated),
            "output_error": self.output_error,
            "replaced": list(self.replaced),
            "findings": [
                {
                    "file": f.file or str(self.file),
                    "sheet": f.sheet,
                    "cell": f.cell,
                    **finding_fields(f),
                    "explained": f.explained,
                    "explanation": f.explanation,
                }
                for f in self.findings
            ],
        }


@dataclass
class ReportSummary(Report):
    """A report whose findings were dropped once written out (check --json of many files keeps memory flat).

    Its counts, status and exit code are those of the full report; `findings` is empty.
    """

    tally: dict[str, int] = field(default_factory=dict)

    def count(self, severity: Severity, *, explained: bool | None = None) -> int:
        if severity is Severity.ERROR:
            return self.tally.get("错误", 0)
        if severity is Severity.INFO:
            return self.tally.get("提示", 0)
        open_, done = self.tally.get("警告", 0), self.tally.get("已说明", 0)
        return open_ + done if explained is None else (done if explained else open_)


REPLACED_LABEL = "以下公式被数值替换，数值正确"


def replaced_text(cells: list[str]) -> str:
    """附件2!C5, 附件2!D5, 附件1!F32 -> "附件2：C5、D5；附件1：F32（共3处；…）"."""
    by_sheet: dict[str, list[str]] = {}
    for where in cells:
        sheet, _, a1 = where.rpartition("!")
        by_sheet.setdefault(sheet, []).append(a1)
    parts = [f"{sheet}：{'、'.join(a1s)}" for sheet, a1s in by_sheet.items()]
    return f"{'；'.join(parts)}（共{len(cells)}处；与重算一致，但今后不会随分项自动更新，可恢复公式）"


def _cell_key(a1: str) -> tuple[int, str]:
    letters = "".join(ch for ch in a1 if ch.isalpha())
    digits = "".join(ch for ch in a1 if ch.isdigit())
    return (int(digits or 0), letters.rjust(3))
