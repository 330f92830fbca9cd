"""Roll up many returned workbooks: check each, keep one per unit, store the history, cross-check each unit."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from xlsx_kpi import __version__
from xlsx_kpi.audit.checked import Checked
from xlsx_kpi.audit.collection import Collection, Submission
from xlsx_kpi.audit.figures import AMOUNTS
from xlsx_kpi.audit.report import Report
from xlsx_kpi.batch.check import Options, audit_file, audit_paths, cross_check, find_workbooks, saved_at
from xlsx_kpi.errors import XlsxKpiError, os_reason
from xlsx_kpi.formats.layout import build_layout
from xlsx_kpi.formats.plan import Identity
from xlsx_kpi.formats.spec import Catalog, default_dir
from xlsx_kpi.formats.units import UnitRow, read_units
from xlsx_kpi.outputs.summary import is_summary
from xlsx_kpi.safe_text import without_spaces
from xlsx_kpi.store.encoding import from_snapshot
from xlsx_kpi.store.history import History

UNIT_FACTORS = {"元": 1, "百元": 100, "千元": 1000, "万元": 10000, "亿元": 100_000_000}
_UNIT_IN_LABEL = re.compile(r"[（(](元|百元|千元|万元|亿元)[）)]")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _amount_unit(catalog: Catalog, workbook_id: str, submissions: Sequence[Submission] = ()) -> str:
    """The unit of the 预算额 column as its header says (百元 for the Sichuan 附件2); "" when unknown.

    The header is the label a checked file of the kind recorded for the cell (its places), else the layout's:
    building a layout (~50 ms) is left for kinds no file recorded it for.
    """
    key = AMOUNTS[0].key
    # A file's places hold every place key its layout has, so a file with places but not this key has no such cell.
    label = next(
        (
            s.checked.places.get(key, ("", "", ""))[2]
            for s in submissions
            if s.report.workbook_id == workbook_id and s.checked.places
        ),
        None,
    )
    if label is None:
        try:
            layout = build_layout(catalog, catalog.workbook(workbook_id), Identity(year=2000))
        except XlsxKpiError:
            return ""
        cell = layout.cells.get(key)
        label = cell.label if cell else ""
    m = _UNIT_IN_LABEL.search(label)
    return m.group(1) if m else ""


def _inputs_of(paths: Sequence[Path], exclude: Iterable[Path]) -> list[Path]:
    """The workbooks under `paths` but `exclude` and our own temp files (summaries are left out later)."""
    skip = {p.resolve() for p in exclude}
    names = {p.name for p in skip}
    return [
        f
        for f in find_workbooks(paths)
        # Resolved (a system call per folder level) only when the name is one to leave out.
        if not (f.name in names and f.resolve() in skip)
        and not f.name.startswith(".xlsx-kpi-")  # our own half-written temp files
    ]


def specs_digest(sheets: Path | None) -> str:
    """The SHA-256 of what the audits read besides the files: the specs folder's *.yaml and the built-in *.yml
    (the indicator-quality word lists), names and contents; "" when one cannot be read."""
    h = hashlib.sha256()
    try:
        for spec in [*sorted((sheets or default_dir()).glob("*.yaml")), *sorted(default_dir().glob("*.yml"))]:
            h.update(f"{spec.name}\0{sha256_of(spec)}\0".encode())
    except OSError:
        return ""
    return h.hexdigest()


def fingerprint(files: Sequence[Path], shas: dict[Path, str], units: Path | None, specs: str) -> str:
    """What a summary workbook is made from: tool version, specs (digest), unit list, each file's path, content
    and time.

    Two collections with one fingerprint whose files all came from the history (nothing stored anew, no
    --recheck) make the same workbook: collect then keeps the summary it wrote (issue 14).
    """
    if not specs:
        return ""  # no claim: the summary is written
    h = hashlib.sha256(f"xlsx-kpi {__version__}\0{specs}\0".encode())
    try:
        if units is not None:
            h.update(f"{units.resolve()}\0{sha256_of(units)}\0".encode())
    except OSError:
        return ""  # no claim: the summary is written
    for f in files:
        try:
            st = f.stat()
        except OSError:
            st = None
        stamp = f"{st.st_mtime_ns}:{st.st_size}" if st is not None else "-"
        h.update(f"{f.absolute()}\0{shas.get(f, '-')}\0{stamp}\0".encode("utf-8", "backslashreplace"))
    return h.hexdigest()


def collect(
    paths: Sequence[Path],
    catalog: Catalog,
    *,
    units: Path | None = None,
    history: History | None = None,
    exclude: Iterable[Path] = (),
    workers: int = 1,
    sheets: Path | None = None,
    progress: Callable[[Report], None] | None = None,
    recheck: bool = False,
) -> Collection:
    """Check every workbook under `paths` exactly as `check` does and roll the results up.

    Of two or more files for one unit, kind, project and year (an original and its returned 审核 copy too),
    the newest is used: by the workbook's own save time, then the file's modification time.
    With a writable `history`, last year's stored figures feed this year's checks and every submission used
    is stored (once per file content); a later year in the same batch is checked after its predecessor is
    stored, so the order of the files does not matter. Input files are never modified.
    A file whose content this version of the tool already stored in `history` is not read again: its stored
    audit is used (`recheck=True` checks every file again).
    """
    unit_rows = read_units(units, project=False) if units is not None else None
    files = _inputs_of(paths, exclude)
    shas: dict[Path, str] = {}
    for f in files:
        try:
            shas[f] = sha256_of(f)
        except OSError:
            pass  # unreadable: the audit reports it
    specs = specs_digest(sheets)
    known: dict[Path, Checked] = {}
    if history is not None and not recheck:
        for f in files:
            data = history.snapshot(shas[f], specs) if f in shas else None
            again = from_snapshot(f, data) if data is not None else None
            if again is not None:
                known[f] = again
    # A file stored as a submission is no summary: only the others are opened to look for the summary's mark.
    files = [f for f in files if f in known or not is_summary(f)]
    if not files:
        raise XlsxKpiError("没有找到要汇总的 .xlsx 文件", file=", ".join(str(p) for p in paths))
    if progress:
        for f in files:
            if f in known:
                progress(known[f].report)
    fresh = iter(
        audit_paths(
            [f for f in files if f not in known],
            catalog,
            Options(annotate=False),
            workers=workers,
            sheets=sheets,
            progress=progress,
            history=history,
        )
    )
    checked = [known[f] if f in known else next(fresh) for f in files]
    out = Collection(
        submissions=[],
        sources=list(paths),
        files=len(files),
        units_file=units,
        fingerprint=fingerprint(files, shas, units, specs),
        rechecked=recheck,
    )
    groups: dict[tuple[str, str, str, str], list[Submission]] = {}
    for c in checked:
        if not c.report.usable:
            out.unusable.append(c.report)
            continue
        try:
            stat = c.report.file.stat()
            sha256 = shas.get(c.report.file) or sha256_of(c.report.file)
        except OSError as e:  # gone or locked since it was checked: this file only is left out
            out.unusable.append(Report(file=c.report.file, error=f"文件 {c.report.file}：无法读取（{os_reason(e)}）"))
            continue
        wid = c.report.workbook_id
        kind = catalog.workbooks[wid].kind if wid in catalog.workbooks else ""
        sub = Submission(c, sha256, datetime.fromtimestamp(stat.st_mtime), kind)
        groups.setdefault(sub.key, []).append(sub)
    used: list[Submission] = []
    for group in groups.values():
        # Newest by the workbook's own save time (a returned 审核 copy is the unit's latest), then file time. The
        # save time is read (from the file) only where it decides: in a group of two or more.
        if len(group) > 1:
            for sub in group:
                sub.saved = saved_at(sub.file)
        group.sort(key=lambda s: (s.saved, s.mtime, s.file.name), reverse=True)
        used.append(group[0])
        if len(group) > 1:
            out.duplicates.append(group)

    if history is not None and not history.readonly:
        _store(used, catalog, history, out, specs, set(known))
        rechecked = {s.file: s for s in used}
        out.duplicates = [[rechecked[g[0].file], *g[1:]] for g in out.duplicates]

    used.sort(key=lambda s: s.sort_key)
    out.submissions = used
    out.duplicates.sort(key=lambda g: g[0].sort_key)
    out.unusable.sort(key=lambda r: r.file.name)
    _units_and_amounts(out, catalog, unit_rows)
    out.cross = cross_check([s.checked for s in used], catalog)
    return out


def _store(
    used: list[Submission], catalog: Catalog, history: History, out: Collection, specs: str, known: set[Path]
) -> None:
    """Store oldest year first; a submission whose previous year was stored just now is checked again.

    A file already stored that was read again (its snapshot from another version or other specs, or --recheck)
    gets this audit as its snapshot, so that the next run need not read it again.
    """
    stored_now: set[tuple[str, str, str, str]] = set()
    stale: list[tuple[Checked, str]] = []
    for i in sorted(range(len(used)), key=lambda i: used[i].report.year):
        sub = used[i]
        code, wid, project, year = sub.key
        reused = sub.file in known
        if year.isdigit() and (code, wid, project, str(int(year) - 1)) in stored_now:
            rechecked = audit_file(sub.file, catalog, Options(annotate=False), history=history)
            if rechecked.report.usable:
                sub = used[i] = Submission(rechecked, sub.sha256, sub.mtime, sub.kind, sub.saved)
                reused = False
        if reused:  # its audit came from the history: stored already
            out.already_stored += 1
        elif history.store(sub.checked, sha256=sub.sha256, file_mtime=sub.mtime, specs=specs):
            out.stored += 1
            out.new_files.append(sub.file)
            stored_now.add(sub.key)
        else:  # stored, but read again: another version, other specs, or --recheck
            out.already_stored += 1
            stale.append((sub.checked, sub.sha256))
    history.refresh_snapshots(stale, specs=specs)


def _units_and_amounts(out: Collection, catalog: Catalog, unit_rows: list[UnitRow] | None) -> None:
    if unit_rows is not None:
        out.expected = len(unit_rows)
        filed = {(s.report.unit_code.strip(), without_spaces(s.report.project_name)) for s in out.submissions}
        listed = {(r.unit_code.strip(), without_spaces(r.project_name)) for r in unit_rows}
        out.missing = [r for r in unit_rows if (r.unit_code.strip(), without_spaces(r.project_name)) not in filed]
        # Only kinds the list covers: a department-only list says nothing about project workbooks.
        has_projects = any(r.project_name for r in unit_rows)
        has_departments = any(not r.project_name for r in unit_rows)
        out.unlisted = [
            s
            for s in out.submissions
            if (s.report.unit_code.strip(), without_spaces(s.report.project_name)) not in listed
            and (has_projects if s.report.project_name else has_departments)
        ]
    units = {
        wid: _amount_unit(catalog, wid, out.submissions) for wid in {s.report.workbook_id for s in out.submissions}
    }
    present = {
        u
        for wid, u in units.items()
        if any(s.report.workbook_id == wid and s.value(AMOUNTS[0].key) is not None for s in out.submissions)
    }
    present.discard("")
    if len(present) <= 1:
        out.amount_unit = next(iter(present), "")
    else:
        # Specs in different units: everything in 元 rather than adding 百元 to 万元.
        out.amount_unit = "元"
        out.amount_factors = {wid: Decimal(UNIT_FACTORS.get(u, 1)) for wid, u in units.items()}


def summary_is_current(collection: Collection, path: Path, history: History) -> bool:
    """Whether the summary workbook at `path` is the one `history` noted writing from these very inputs.

    True only when nothing was stored anew and not every file was read again (--recheck), the collection's
    fingerprint is the one noted, and the file is still there with the bytes written (not deleted, edited in
    Excel or replaced). Then writing it again would give the same workbook.
    """
    if not collection.fingerprint or collection.rechecked or collection.stored:
        return False
    recorded = history.summary_record(path)
    if recorded is None or recorded[0] != collection.fingerprint:
        return False
    try:
        return sha256_of(path) == recorded[1]
    except OSError:
        return False  # deleted (or unreadable): written again


def note_summary(collection: Collection, path: Path, history: History) -> None:
    """Note the summary workbook just written at `path` in `history` (its fingerprint and SHA-256)."""
    if collection.fingerprint:
        history.record_summary(path, collection.fingerprint, sha256_of(path))
