"""Read a returned workbook straight from its xlsx zip: refuse unusable files, identify it, locate every cell."""

from __future__ import annotations

import itertools
from pathlib import Path

from xlsx_kpi.audit.cells import FoundCell, Masters, as_text, raw_cell
from xlsx_kpi.audit.filing import (
    MSG_CELL_DELETED,
    MSG_LABEL_MOVED,
    MSG_MISSING_SHEET,
    MSG_NOT_OURS,
    REVIEW_SHEET,
    Filing,
    RawCell,
    fail,
)
from xlsx_kpi.audit.identify import (
    identify,
    label_cells,
    name_target,
    read_meta_sheet,
    renamed_sheets,
    wanted_cells,
)
from xlsx_kpi.audit.rows import discover_rows, printed_texts, stray_candidates
from xlsx_kpi.audit.xml_parts import (
    read_book,
    read_custom_properties,
    read_date_styles,
    read_once,
    read_shared_strings,
    scan_sheet,
)
from xlsx_kpi.formats.identity import GUIDE_SHEET, META_SHEET
from xlsx_kpi.formats.spec import Catalog, col_letters
from xlsx_kpi.ooxml.package import MSG_BAD_PART, Package, open_package
from xlsx_kpi.ooxml.parts import check_kind, rels_of
from xlsx_kpi.safe_text import without_spaces

__all__ = ["read_workbook"]


# --- Public API -----------------------------------------------------------------------------------------


def read_workbook(path: Path, catalog: Catalog) -> Filing:
    """Read a returned workbook: refuse what cannot be read, identify it, and read every layout cell.

    Raises XlsxKpiError (exit code 2) with one Chinese sentence naming the file. Never writes.
    """
    path = Path(path)
    with open_package(path) as pkg:
        return _read_package(pkg, path, catalog)


def _read_package(pkg: Package, path: Path, catalog: Catalog) -> Filing:
    check_kind(pkg, read_once)
    book = read_once(pkg, "book", (pkg.main, rels_of(pkg.main)), read_book)
    strings = read_shared_strings(pkg, book.shared_strings)
    meta = read_meta_sheet(pkg, book, strings)
    if not meta.get("workbook_id"):
        meta = read_custom_properties(pkg) or meta
    if not meta.get("workbook_id"):
        raise fail(MSG_NOT_OURS, path)
    plan = identify(meta, catalog, path)
    renamed = renamed_sheets(pkg, book, plan, strings)
    for sl in plan.layout.sheets:
        if sl.name not in book.sheets and sl.name not in renamed:
            raise fail(MSG_MISSING_SHEET.format(sheet=sl.name), path)
    ours = {sl.name for sl in plan.layout.sheets} | set(renamed.values()) | {META_SHEET, GUIDE_SHEET, REVIEW_SHEET}
    added = [name for name in book.sheets if name not in ours]

    # Indicator groups are found from their named first and last rows: rows the unit inserted inside a
    # group (or deleted from it) change the layout to one with that many rows, read at the file's rows.
    counts = {g.key: g.count for g in plan.layout.groups}
    plan, placed = discover_rows(plan, catalog, book, renamed)
    inserted = {g.key: g.count - counts[g.key] for g in plan.layout.groups if g.count != counts.get(g.key, g.count)}
    # Each key is read where its defined name points (rows may have been inserted), else where the
    # layout put it: a missing or unparseable name falls back to the layout position; #REF! is refused.
    cells = plan.cells
    if renamed:
        cells = {k: (renamed.get(v[0], v[0]), *v[1:]) for k, v in plan.cells.items()}
    if placed:
        cells = {**cells, **placed}
    moved: dict[str, str] = {}
    names = book.names
    for key, dn in plan.names.items():
        if key in placed:
            continue
        text = names.get(dn)
        if text is None or text in plan.expected[key]:
            continue
        if "#REF!" in text.upper():
            # Excel, WPS and LibreOffice turn the name of a deleted cell into #REF! and move the names
            # below it: reading the template position would read a neighbouring row's data as this one.
            sheet, _, _, a1 = plan.cells[key]
            raise fail(MSG_CELL_DELETED.format(name=dn), path, cell=f"{sheet}!{a1}")
        target = name_target(text, book.sheets)
        if target is not None and target != cells[key]:
            if cells is plan.cells:
                cells = dict(plan.cells)
            cells[key] = target
            moved[key] = f"{target[0]}!{target[3]}"
    # The 三级指标 labels the spec prints, read on the row where each score is read: a sorted or swapped
    # table keeps its defined names, so only the labels show that a score now sits under another name.
    where_labels = plan.labels if cells is plan.cells else label_cells(plan.label_cols, cells)
    titles_at = plan.titles if not renamed else [(renamed.get(t[0], t[0]), *t[1:]) for t in plan.titles]
    wanted = (
        plan.wanted if cells is plan.cells else wanted_cells(itertools.chain(cells.values(), where_labels, titles_at))
    )
    suspects = stray_candidates(plan, cells, renamed)
    if suspects:
        wanted = {sheet: (set(a), set(r)) for sheet, (a, r) in wanted.items()}
        for sheet, by_row in suspects.items():
            addresses, rows = wanted.setdefault(sheet, (set(), set()))
            for row, cols in by_row.items():
                addresses.update(f"{col_letters(c)}{row + 1}" for c in cols)
                rows.add(row + 1)

    found: dict[str, dict[str, FoundCell]] = {}
    masters: dict[str, Masters] = {}
    for sheet, (addresses, rows) in wanted.items():
        member = book.targets.get(book.sheets[sheet])
        if member is None or member not in pkg.members:
            raise fail(MSG_BAD_PART.format(part=member or f"工作表“{sheet}”"), path)
        found[sheet], masters[sheet] = scan_sheet(pkg, member, addresses, rows, sheet)

    needs_styles = any(
        f.s is not None and f.s != "0" and (f.t is None or f.t == "n") for by in found.values() for f in by.values()
    )
    styles = book.styles
    dates: frozenset[int] = frozenset()
    if needs_styles and styles:
        dates = read_once(pkg, "dates", (styles,), lambda p: read_date_styles(p, styles))

    for (sheet, row, _, a1), expected in zip(where_labels, plan.label_texts, strict=True):
        label = found[sheet].get(a1)
        text = as_text(raw_cell(label, f"{sheet}!{a1}", (row, 0), strings, frozenset(), {}, path)) or ""
        if text != expected and without_spaces(text) != without_spaces(expected):
            shown = text.strip() or "（空）"
            raise fail(MSG_LABEL_MOVED.format(expected=expected, found=shown), path, cell=f"{sheet}!{a1}")

    titles: dict[str, str] = {}
    for sheet, row, col, a1 in titles_at:
        found_title = found[sheet].get(a1)
        text = as_text(raw_cell(found_title, f"{sheet}!{a1}", (row, col), strings, frozenset(), {}, path))
        titles[f"{sheet}!{a1}"] = text or ""

    raw: dict[str, RawCell] = {}
    blanks = plan.blanks
    for key, (sheet, row, col, a1) in cells.items():
        cell = found[sheet].get(a1)
        if (cell is None or (cell.v is None and cell.f is None and cell.inline is None)) and key not in moved:
            same = not renamed and key not in placed
            raw[key] = blanks[key] if same else RawCell(None, address=f"{sheet}!{a1}")
        else:
            raw[key] = raw_cell(cell, f"{sheet}!{a1}", (row, col), strings, dates, masters[sheet], path)
    stray: list[tuple[RawCell, str]] = []
    template_names = {v: k for k, v in renamed.items()}
    labels = {sheet: printed_texts(plan.layout, template_names.get(sheet, sheet)) for sheet in suspects}
    for sheet, by_row in sorted(suspects.items()):
        for row, cols in sorted(by_row.items()):
            filled: list[RawCell] = []
            for c in cols:
                a1 = f"{col_letters(c)}{row + 1}"
                cell = found[sheet].get(a1)
                if cell is None:
                    continue
                rc = raw_cell(cell, f"{sheet}!{a1}", (row, c), strings, dates, masters[sheet], path)
                text = as_text(rc)
                if text is not None and text.strip() not in labels[sheet]:
                    filled.append(rc)
            if filled:
                stray.append((filled[0], "｜".join(as_text(f) or "" for f in filled)))
    return Filing(
        path=path,
        layout=plan.layout,
        meta=meta,
        cells=raw,
        moved=moved,
        titles=titles,
        renamed=renamed,
        added=added,
        stray=stray,
        inserted=inserted,
    )
