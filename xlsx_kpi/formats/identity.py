"""What a template says about itself: its sheet names, defined names, layout fingerprint and identity rows."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from xlsx_kpi import __version__
from xlsx_kpi.formats.plan import WorkbookLayout

META_SHEET = "_xlsx_kpi"
GUIDE_SHEET = "填表说明"


def defined_name(key: str) -> str:
    """The Excel defined name of a cell key; stable, so reading back survives moved cells."""
    return "K_" + key.replace(".", "__")


def fingerprint(layout: WorkbookLayout) -> str:
    """A hash of where every named cell sits, what every formula says and the approved targets.

    A layout version check, and a seal on the approved 绩效目标 the identity sheet carries: a file whose
    identity sheet was edited to approve other targets no longer matches.
    """
    h = hashlib.sha256()
    for key in sorted(layout.cells):
        c = layout.cells[key]
        h.update(f"{key}|{layout.refs[key]}|{c.role}|{c.expr or ''}|{c.input_type or ''}\n".encode())
    if layout.identity.approved:
        h.update(approved_json(layout).encode())
    return h.hexdigest()[:16]


def rows_json(layout: WorkbookLayout) -> str:
    """Row counts of the indicator groups that differ from the spec's ("" when none do)."""
    asked = dict(layout.identity.rows)
    return json.dumps(asked, ensure_ascii=False, sort_keys=True) if asked else ""


def approved_json(layout: WorkbookLayout) -> str:
    """The approved targets as [[group, 三级指标, 预算指标值], ...] ("" when none)."""
    rows = [[a.group, a.name, a.target] for a in layout.identity.approved]
    return json.dumps(rows, ensure_ascii=False) if rows else ""


def identity_rows(layout: WorkbookLayout) -> list[tuple[str, str]]:
    ident = layout.identity
    wb = layout.spec
    rows = [
        ("tool", "xlsx-kpi"),
        ("tool_version", __version__),
        ("workbook_id", wb.id),
        ("workbook_version", str(wb.version)),
        ("kind", wb.kind),
        ("sheets", ",".join(f"{s.spec.id}:{s.spec.version}" for s in layout.sheets)),
        ("unit_name", ident.unit_name),
        ("unit_code", ident.unit_code),
        ("year", str(ident.year)),
        ("project_name", ident.project_name),
        ("project_type", ident.project_type),
        ("readings", json.dumps(layout.readings, ensure_ascii=False, sort_keys=True)),
        ("rows", rows_json(layout)),
        ("approved", approved_json(layout)),
        ("fingerprint", fingerprint(layout)),
    ]
    return [*rows, ("identity", identity_digest(dict(rows)))]


# The identity rows the digest leaves out: the tool's own name and version (a newer tool reads an older
# template) and the digest itself. Every other row, present or future, is covered.
NOT_DIGESTED = frozenset(["tool", "tool_version", "identity"])


def identity_digest(meta: Mapping[str, str]) -> str:
    """A hash of every identity field, stored beside them: an edited year or unit no longer matches it.

    Tamper-evident, not tamper-proof: the recipe is public, so a determined forger can recompute it;
    it catches a hand edit of the hidden sheet (2021 -> 2022), which otherwise files under the wrong year.
    """
    h = hashlib.sha256()
    for name in sorted(meta):
        if name not in NOT_DIGESTED:
            h.update(f"{name}={(meta[name] or '').strip()}\n".encode())
    return h.hexdigest()[:16]
