"""What an audit finds: a Finding names a cell, a severity with meaning for the user, and a Chinese message."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    """错误 must be fixed; 警告 is acceptable only with a written 说明; 提示 is for the reviewer's eye."""

    ERROR = "错误"
    WARNING = "警告"
    INFO = "提示"

    @property
    def rank(self) -> int:
        return {"错误": 0, "警告": 1, "提示": 2}[self.value]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem at one cell.

    `cell` is the A1 address of the (top-left) cell on `sheet`; `expected` and `actual` are display texts
    (a recomputed 10.54% vs a written 6.03%); `explanation` holds the unit's written 说明 that makes a
    警告 acceptable, and `explained_by` the A1 address where it was written.
    """

    code: str
    severity: Severity
    sheet: str
    cell: str
    message: str
    expected: str = ""
    actual: str = ""
    indicator: str = ""
    title: str = ""
    explained_by: str = ""
    explanation: str = ""
    # Set for a finding in another file than the workbook (a unit's 自评报告): sheet is then the file's name
    # and cell the paragraph (第12段).
    file: str = ""

    @property
    def explained(self) -> bool:
        return self.severity is Severity.WARNING and bool(self.explanation.strip())

    @property
    def where(self) -> str:
        return f"{self.sheet} {self.cell}" if self.file else f"{self.sheet}!{self.cell}"


def finding_fields(f: Finding) -> dict[str, object]:
    """The fields of a finding as every JSON output writes them (code ... actual, in this order)."""
    return {
        "code": f.code,
        "severity": f.severity.value,
        "title": f.title,
        "indicator": f.indicator,
        "message": f.message,
        "expected": f.expected,
        "actual": f.actual,
    }
