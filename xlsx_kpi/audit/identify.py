"""Identify a returned workbook: its hidden identity, the layout it was made from, and sheets renamed since."""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xlsx_kpi.audit.cells import MAX_COL, MAX_ROW, as_text, raw_cell, small_int, split_a1
from xlsx_kpi.audit.filing import (
    LAYOUT_CACHE_SIZE,
    MAX_GROUP_ROWS,
    MAX_META_ROWS,
    MSG_BAD_IDENTITY,
    MSG_FINGERPRINT,
    MSG_IDENTITY_MISSING,
    MSG_IDENTITY_TAMPERED,
    MSG_NEW_VERSION,
    MSG_OLD_VERSION,
    MSG_UNKNOWN_KIND,
    REVIEW_SHEET,
    RawCell,
    fail,
)
from xlsx_kpi.audit.xml_parts import Book, scan_sheet
from xlsx_kpi.formats.catalog import layout_of
from xlsx_kpi.formats.identity import GUIDE_SHEET, META_SHEET, defined_name, fingerprint, identity_digest
from xlsx_kpi.formats.plan import Approved, Identity, WorkbookLayout
from xlsx_kpi.formats.spec import Catalog, IndicatorsBlock, col_index, col_letters
from xlsx_kpi.ooxml.package import Package
from xlsx_kpi.ooxml.parts import text_columns

RENAME_MIN_LABELS = 3  # fixed texts of a sheet compared to recognise it under another name
RENAME_MATCH = 0.6  # share of those texts (or of its cells' defined names) that must agree
_NAME_REF = re.compile(
    r"^=?\s*(?:'((?:[^']|'')+)'|([^'!]+))!\$?([A-Za-z]{1,3})\$?([0-9]{1,7})(?::\$?[A-Za-z]{1,3}\$?[0-9]{1,7})?\s*$"
)


# --- Identity and layout ------------------------------------------------------------------------------

_META_ROWS = set(range(1, MAX_META_ROWS + 1))
_META_CELLS = {f"{c}{r}" for r in _META_ROWS for c in "AB"}


def read_meta_sheet(pkg: Package, book: Book, strings: Sequence[str]) -> dict[str, str]:
    """The identity rows (key in A, value in B) of the very hidden sheet the template writes."""
    member = book.targets.get(book.sheets.get(META_SHEET, ""))
    if member is None or member not in pkg.members:
        return {}
    meta: dict[str, str] = {}
    columns = text_columns(pkg, member, MAX_META_ROWS)
    if columns is not None and all(i is None or i < len(strings) for pair in columns.values() for i in pair):
        for r in sorted(columns):
            key_at, value_at = columns[r]
            key = None if key_at is None else strings[key_at]
            if key and key.strip():
                value = None if value_at is None else strings[value_at]
                meta[key.strip()] = (value or "").strip()
        return meta
    found, _ = scan_sheet(pkg, member, _META_CELLS, _META_ROWS, META_SHEET)
    # Row by row from the top, as found (a key written twice keeps its lower row's value).
    for r in sorted(int(a1[1:]) for a1 in found if a1[0] == "A"):
        a, b = found[f"A{r}"], found.get(f"B{r}")
        key = as_text(raw_cell(a, f"{META_SHEET}!A{r}", (r - 1, 0), strings, frozenset(), {}, pkg.path))
        value = as_text(raw_cell(b, f"{META_SHEET}!B{r}", (r - 1, 1), strings, frozenset(), {}, pkg.path))
        if key and key.strip():
            meta[key.strip()] = (value or "").strip()
    return meta


@dataclass(frozen=True)
class Plan:
    """What reading needs from a layout, computed once per layout."""

    layout: WorkbookLayout
    fingerprint: str
    names: dict[str, str]  # key -> its defined name (K_...)
    expected: dict[str, tuple[str, str]]  # key -> the name's text, quoted and unquoted
    cells: dict[str, tuple[str, int, int, str]]  # key -> (sheet, row, col, "F7")
    blanks: dict[str, RawCell]  # key -> RawCell(None) at its layout address (immutable, so shared)
    wanted: dict[str, tuple[set[str], set[int]]]  # sheet -> (addresses, 1-based rows), labels included
    label_cols: list[tuple[str, int]]  # (score key, column of its 三级指标 label)
    label_texts: list[str]  # the label the spec prints, in label_cols order
    labels: list[tuple[str, int, int, str]]  # where each label sits in the template: (sheet, row, col, "C7")
    titles: list[tuple[str, int, int, str]]  # sheet titles that show the year (never moved: above every table)


_CACHE: OrderedDict[tuple[int, str, Identity], tuple[Catalog, Plan]] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def label_cells(
    label_cols: list[tuple[str, int]], cells: dict[str, tuple[str, int, int, str]]
) -> list[tuple[str, int, int, str]]:
    """Where each 三级指标 label should be: its column, on the row its score is read from."""
    out: list[tuple[str, int, int, str]] = []
    for key, col in label_cols:
        sheet, row, _, _ = cells[key]
        out.append((sheet, row, col, f"{col_letters(col)}{row + 1}"))
    return out


def _fixed_labels(layout: WorkbookLayout) -> tuple[list[tuple[str, int]], list[str]]:
    """(score key, label column) and label text of every indicator row whose 三级指标 the spec prints."""
    cols: list[tuple[str, int]] = []
    texts: list[str] = []
    for sl in layout.sheets:
        # Only cells the template prints as a locked label: a 三级指标 the unit types is not checked.
        printed = {(c.row, c.col): c.text for c in sl.cells if c.role == "label"}
        for block in sl.spec.blocks:
            if not isinstance(block, IndicatorsBlock):
                continue
            for l1 in block.groups:
                level3 = block.columns_of(l1).get("level3")
                if level3 is None:
                    continue
                for l2 in l1.groups:
                    for ind in l2.indicators:
                        key = f"{block.id}.{ind.id}.score"
                        ref = layout.refs.get(key)
                        if ref is not None and ind.name.strip() and printed.get((ref.row, level3[0])) == ind.name:
                            cols.append((key, level3[0]))
                            texts.append(ind.name)
    return cols, texts


def wanted_cells(cells: Iterator[tuple[str, int, int, str]]) -> dict[str, tuple[set[str], set[int]]]:
    out: dict[str, tuple[set[str], set[int]]] = {}
    for sheet, row, _, a1 in cells:
        addresses, rows = out.setdefault(sheet, (set(), set()))
        addresses.add(a1)
        rows.add(row + 1)
    return out


def plan_for(catalog: Catalog, wid: str, identity: Identity) -> Plan:
    """build_layout and fingerprint take ~7 ms, so each unit's layout is built once and kept (read-only)."""
    key = (id(catalog), wid, identity)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None and hit[0] is catalog:
            _CACHE.move_to_end(key)
            return hit[1]
    layout = layout_of(catalog, catalog.workbook(wid), identity)  # parsed formulas from the cache (issue 14)
    cells: dict[str, tuple[str, int, int, str]] = {}
    expected: dict[str, tuple[str, str]] = {}
    for k, ref in layout.refs.items():
        a1 = f"{col_letters(ref.col)}{ref.row + 1}"
        cells[k] = (ref.sheet, ref.row, ref.col, a1)
        absolute = f"${col_letters(ref.col)}${ref.row + 1}"
        expected[k] = (f"'{ref.sheet.replace(chr(39), chr(39) * 2)}'!{absolute}", f"{ref.sheet}!{absolute}")
    label_cols, label_texts = _fixed_labels(layout)
    labels = label_cells(label_cols, cells)
    titles = [
        (sl.name, c.row, c.col, c.a1)
        for sl in layout.sheets
        for c in sl.cells
        if c.style in ("title", "subtitle") and c.text and f"{identity.year}" in c.text
    ]
    plan = Plan(
        layout=layout,
        fingerprint=fingerprint(layout),
        names={k: defined_name(k) for k in layout.refs},
        expected=expected,
        cells=cells,
        blanks={k: RawCell(None, address=f"{sheet}!{a1}") for k, (sheet, _, _, a1) in cells.items()},
        wanted=wanted_cells(itertools.chain(cells.values(), labels, titles)),
        label_cols=label_cols,
        label_texts=label_texts,
        labels=labels,
        titles=titles,
    )
    with _CACHE_LOCK:
        _CACHE[key] = (catalog, plan)  # holding the catalog keeps its id from being reused
        while len(_CACHE) > LAYOUT_CACHE_SIZE:
            _CACHE.popitem(last=False)
    return plan


def identify(meta: dict[str, str], catalog: Catalog, path: Path) -> Plan:
    wid = meta.get("workbook_id", "")
    if wid not in catalog.workbooks:
        raise fail(MSG_UNKNOWN_KIND.format(wid=wid), path)
    current = catalog.workbooks[wid].version
    found = meta.get("workbook_version", "")
    if found != str(current):
        newer = small_int(found)
        if newer is not None and newer > current:
            raise fail(MSG_NEW_VERSION.format(found=found, current=current), path)
        raise fail(MSG_OLD_VERSION.format(found=found or "（未知）", current=current), path)
    year = meta.get("year", "")
    year_number = small_int(year)
    if year_number is None or len(year) != 4:
        raise fail(MSG_BAD_IDENTITY.format(field="year"), path)
    # Positions, formulas and the fingerprint do not depend on the unit, so one layout per kind and year
    # serves every unit's file (the unit's identity is in `meta`); 1,000 units cost one build, not 1,000.
    rows, approved = _shape(meta, path)
    plan = plan_for(catalog, wid, Identity(year=year_number, rows=rows, approved=approved))
    if meta.get("fingerprint") != plan.fingerprint:
        raise fail(MSG_FINGERPRINT, path)
    if not meta.get("identity"):
        raise fail(MSG_IDENTITY_MISSING, path)
    if meta.get("identity") != identity_digest(meta):
        raise fail(MSG_IDENTITY_TAMPERED, path)
    return plan


def _shape(meta: dict[str, str], path: Path) -> tuple[tuple[tuple[str, int], ...], tuple[Approved, ...]]:
    """The row counts and approved targets the template was generated with (identity rows `rows`, `approved`)."""
    try:
        rows_data = json.loads(meta["rows"]) if meta.get("rows") else {}
        approved_data = json.loads(meta["approved"]) if meta.get("approved") else []
        rows = tuple(sorted((str(k), int(v)) for k, v in rows_data.items()))
        approved = tuple(Approved(str(g), str(n), str(t)) for g, n, t in approved_data)
    except (ValueError, TypeError, AttributeError):
        raise fail(MSG_BAD_IDENTITY.format(field="rows/approved"), path) from None
    if any(not 1 <= n <= MAX_GROUP_ROWS for _, n in rows) or len(approved) > MAX_GROUP_ROWS * 20:
        raise fail(MSG_BAD_IDENTITY.format(field="rows/approved"), path)
    return rows, approved


def name_target(text: str, sheets: dict[str, str]) -> tuple[str, int, int, str] | None:
    """Parse a defined name's text ('附件1'!$F$7 or 附件1!$F$7); None if #REF!, a range elsewhere or unknown."""
    m = _NAME_REF.match(text)
    if not m:
        return None
    sheet = m.group(1).replace("''", "'") if m.group(1) is not None else m.group(2).strip()
    if sheet not in sheets:
        return None
    letters, row = m.group(3).upper(), int(m.group(4)) - 1
    col = col_index(letters)
    if not (0 <= row < MAX_ROW and 0 <= col < MAX_COL):
        return None
    return sheet, row, col, f"{letters}{row + 1}"


def renamed_sheets(pkg: Package, book: Book, plan: Plan, strings: Sequence[str]) -> dict[str, str]:
    """Template sheets missing under their own name but found under another (LibreOffice and WPS drop the
    structure lock): template name -> name in the file.

    A sheet is recognised first by where its cells' defined names point (Excel, WPS and LibreOffice
    rename the sheet in every name), else by its fixed texts (titles, labels) at their template places.
    """
    missing = [sl for sl in plan.layout.sheets if sl.name not in book.sheets]
    if not missing:
        return {}
    template = {sl.name for sl in plan.layout.sheets}
    candidates = [n for n in book.sheets if n not in template and n not in (META_SHEET, GUIDE_SHEET, REVIEW_SHEET)]
    found: dict[str, str] = {}
    for sl in missing:
        free = [c for c in candidates if c not in found.values()]
        if not free:
            break
        votes: dict[str, int] = {}
        keys = [k for k, (sheet, *_) in plan.cells.items() if sheet == sl.name]
        for key in keys:
            target = name_target(book.names.get(plan.names[key], ""), book.sheets)
            if target is not None and target[0] in free:
                votes[target[0]] = votes.get(target[0], 0) + 1
        best = max(votes, key=lambda n: votes[n], default=None)
        if best is not None and votes[best] >= RENAME_MATCH * len(keys):
            found[sl.name] = best
            continue
        by_text = _same_texts(pkg, book, sl.cells, free, strings)
        if by_text is not None:
            found[sl.name] = by_text
    return found


def _same_texts(
    pkg: Package, book: Book, cells: list[Any], candidates: list[str], strings: Sequence[str]
) -> str | None:
    """The one candidate sheet showing the layout's fixed texts at their places, if any."""
    fixed = [c for c in cells if c.role in ("title", "label", "header") and c.text and c.text.strip()]
    texts = {c.a1: c.text.strip() for c in fixed}
    if len(texts) < RENAME_MIN_LABELS:
        return None
    rows = {int(a1.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")) for a1 in texts}
    matches: list[str] = []
    for name in candidates:
        member = book.targets.get(book.sheets[name])
        if member is None or member not in pkg.members:
            continue
        found, _ = scan_sheet(pkg, member, set(texts), rows)
        same = 0
        for a1, want in texts.items():
            at = split_a1(a1) or (0, 0)
            got = as_text(raw_cell(found.get(a1), f"{name}!{a1}", at, strings, frozenset(), {}, pkg.path))
            same += (got or "").strip() == want
        if same >= RENAME_MATCH * len(texts):
            matches.append(name)
    return matches[0] if len(matches) == 1 else None
