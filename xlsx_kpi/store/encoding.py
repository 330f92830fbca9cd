"""Stored values: a figure as text or as exact JSON, and the audit snapshot that lets collect skip a stored file."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from xlsx_kpi.audit.checked import Checked
from xlsx_kpi.audit.findings import Finding, Severity
from xlsx_kpi.audit.report import Report
from xlsx_kpi.formats.expr import ExcelError, Value

__all__ = [
    "FINDING_FIELDS",
    "decode_value",
    "decode_values",
    "encode_value",
    "encode_values",
    "finding_json",
    "from_snapshot",
    "snapshot",
    "tag_value",
    "untag_value",
]

_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_ERRORS = frozenset(["#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#NULL!", "#SPILL!", "#CALC!"])


def encode_value(value: Value) -> str | None:
    """The string form of a value: 95.35, text as written, TRUE/FALSE, #DIV/0!; None for blank."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, ExcelError):
        return value.code
    return value


def decode_value(text: str | None) -> Value:
    """Back from encode_value: plain decimal numbers become Decimal (a text "10" too), error codes ExcelError."""
    if text is None:
        return None
    if _NUMBER.match(text):
        return Decimal(text)
    if text in _ERRORS:
        return ExcelError(text)
    return text


def encode_values(values: Mapping[str, Value]) -> str:
    return json.dumps(
        {k: e for k, v in sorted(values.items()) if (e := encode_value(v)) is not None},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def decode_values(text: str) -> dict[str, Value]:
    return {k: decode_value(v) for k, v in json.loads(text).items()}


def tag_value(value: Value) -> Any:
    """A value as exact JSON: Decimal as {"d": str} (its exponent kept), an error as {"e": code}, else as is."""
    if isinstance(value, Decimal):
        return {"d": str(value)}
    if isinstance(value, ExcelError):
        return {"e": value.code}
    return value


def untag_value(data: Any) -> Value:
    if isinstance(data, dict):
        return Decimal(data["d"]) if "d" in data else ExcelError(data["e"])
    if data is None or isinstance(data, (str, bool)):
        return data
    raise ValueError("not a stored value")


def snapshot(checked: Checked) -> dict[str, Any]:
    """Everything of an audit that collect needs to use it again without reading the file (exact, as JSON)."""
    r = checked.report
    return {
        "report": {
            "workbook_id": r.workbook_id,
            "unit_name": r.unit_name,
            "unit_code": r.unit_code,
            "year": r.year,
            "project_name": r.project_name,
            "total": tag_value(r.total),
            "grade": r.grade,
            "replaced": list(r.replaced),
        },
        "findings": [{k: getattr(f, k) for k in FINDING_FIELDS} | {"severity": f.severity.value} for f in r.findings],
        "inputs": _tag_map(checked.inputs),
        "values": _tag_map(checked.values),
        "written": _tag_map(checked.written),
        "places": {k: list(v) for k, v in checked.places.items()},
        "v": 2,
    }


def _tag_map(values: Mapping[str, Value]) -> dict[str, dict[str, Any]]:
    """A map of values as three flat maps: "d" numbers (Decimal as text, its exponent kept), "e" error codes, "s" the
    rest as JSON (text, TRUE/FALSE, blank). Read back several times faster than one JSON object per number, which
    matters when collect reads a thousand stored audits (issue 14)."""
    out: dict[str, dict[str, Any]] = {"d": {}, "e": {}, "s": {}}
    for k, v in values.items():
        if isinstance(v, Decimal):
            out["d"][k] = str(v)
        elif isinstance(v, ExcelError):
            out["e"][k] = v.code
        else:
            out["s"][k] = v
    return out


_PLAIN = {str, bool, type(None)}


def _untag_map(data: dict[str, Any], version: int) -> dict[str, Value]:
    if version < 2:  # one tagged value per key, as stored before
        return {k: untag_value(v) for k, v in data.items()}
    numbers, errors, plain = data["d"], data["e"], data["s"]
    # Types checked over whole maps at once (map runs in C): anything but what _tag_map writes is not ours.
    if not (set(map(type, numbers.values())) | set(map(type, errors.values()))) <= {str}:
        raise ValueError("not a stored value")
    if not set(map(type, plain.values())) <= _PLAIN:
        raise ValueError("not a stored value")
    out: dict[str, Value] = dict(plain)
    out.update(zip(numbers, map(Decimal, numbers.values()), strict=True))
    out.update(zip(errors, map(ExcelError, errors.values()), strict=True))
    return out


FINDING_FIELDS = (
    "code",
    "severity",
    "sheet",
    "cell",
    "message",
    "expected",
    "actual",
    "indicator",
    "title",
    "explained_by",
    "explanation",
    "file",
)


def finding_json(f: Finding) -> dict[str, Any]:
    return {
        "code": f.code,
        "severity": f.severity.value,
        "sheet": f.sheet,
        "cell": f.cell,
        "title": f.title,
        "indicator": f.indicator,
        "message": f.message,
        "expected": f.expected,
        "actual": f.actual,
        "explained": f.explained,
        "explanation": f.explanation,
    }


def from_snapshot(file: Path, data: dict[str, Any]) -> Checked | None:
    """The audit of `file` as History.snapshot stored it; None when the stored form is not one we wrote."""
    try:
        r = data["report"]
        report = Report(
            file=file,
            findings=[
                Finding(**{k: v for k, v in f.items() if k != "severity"}, severity=Severity(f["severity"]))
                for f in data["findings"]
            ],
            workbook_id=r["workbook_id"],
            unit_name=r["unit_name"],
            unit_code=r["unit_code"],
            year=r["year"],
            project_name=r["project_name"],
            total=_decimal_or_none(untag_value(r["total"])),
            grade=r["grade"],
            replaced=list(r["replaced"]),
        )
        version = data.get("v", 1)
        return Checked(
            report=report,
            inputs=_untag_map(data["inputs"], version),
            values=_untag_map(data["values"], version),
            written=_untag_map(data["written"], version),
            places={k: (s, a1, label) for k, (s, a1, label) in data["places"].items()},
        )
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None


def _decimal_or_none(value: Value) -> Decimal | None:
    if value is None or isinstance(value, Decimal):
        return value
    raise ValueError("total")
