"""Check returned workbooks: read, recalculate, run the rules, report, and write the reviewer's copy."""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from xlsx_kpi.audit.cells import to_inputs
from xlsx_kpi.audit.checked import Checked
from xlsx_kpi.audit.filing import Filing
from xlsx_kpi.audit.reader import read_workbook
from xlsx_kpi.audit.recalc import reading_values, recalculate
from xlsx_kpi.audit.report import Report
from xlsx_kpi.audit.rules import Context, run_rules
from xlsx_kpi.audit.rules.crossfile import CrossFinding, UnitFile, check_units, place_keys
from xlsx_kpi.audit.rules.formulas import replaced_cells
from xlsx_kpi.audit.rules.printed import printed_mismatches
from xlsx_kpi.errors import XlsxKpiError, os_reason
from xlsx_kpi.formats.carry import fill_prior_year
from xlsx_kpi.formats.catalog import load_specs
from xlsx_kpi.formats.expr import Value
from xlsx_kpi.formats.spec import Catalog, IndicatorsBlock, col_index, col_letters
from xlsx_kpi.ooxml.parts import read_core
from xlsx_kpi.outputs.annotate import annotate
from xlsx_kpi.outputs.review import annotated_name, is_untouched_copy, review_round
from xlsx_kpi.outputs.template import STYLES
from xlsx_kpi.store.history import History

T = TypeVar("T")


@dataclass(frozen=True)
class Options:
    """How to check: where annotated copies go (None: beside each input), whether to write them at all."""

    out_dir: Path | None = None
    annotate: bool = True
    force: bool = False
    isolate: bool = True  # annotate in a child process with memory and time limits (where os.fork exists)
    # Units' 自评报告 (.docx path, name + title) to read beside the workbook they belong to (report_check);
    # match_any: the one report given with --report belongs to the one workbook, whatever its title.
    reports: tuple[tuple[Path, str], ...] = ()
    match_any: bool = False


def find_workbooks(paths: Iterable[Path], *, skip: Iterable[Path] = ()) -> list[Path]:
    """Files as given, and every .xlsx under a folder: Excel lock files (~$) and our own outputs skipped.

    A lock file is skipped even when named: a shell's 回收/*.xlsx lists them while Excel has a file open.
    In a folder, an annotated copy "x_审核.xlsx" the unit edited and returned is a submission like any
    other; one exactly as this tool wrote it (is_untouched_copy) is our output, and so is everything
    under a folder in `skip` (the --out-dir of the copies).
    """
    skipped = [p.resolve() for p in skip]
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if (
                    f.suffix.lower() == ".xlsx"
                    and f.is_file()
                    and not f.name.startswith("~$")
                    and not f.name.startswith(".xlsx-kpi-")  # our half-written temporary files
                    and not _inside(f, skipped)
                    and not (review_round(f)[1] and is_untouched_copy(f))
                ):
                    found.append(f)
        elif not p.name.startswith("~$"):
            found.append(p)
    return found


def _inside(path: Path, folders: list[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(folder) for folder in folders)


def saved_at(path: Path) -> datetime:
    """When the unit last saved the workbook: its own save time (docProps/core.xml), else the file time."""
    modified = read_core(path).modified
    if modified is not None:
        return modified
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Resubmission:
    """One unit's file and its returned annotated copies in one folder ("x.xlsx", "x_审核.xlsx", ...)."""

    used: Path
    older: list[Path]


def current_submissions(files: list[Path]) -> tuple[list[Path], list[Resubmission]]:
    """The files to audit: of a unit's original and its returned annotated copies in one folder, only the
    newest (by the workbook's own save time, then the file time, then the later review round).

    Returns the files in their order and, for each such group, which file was used and which were not.
    """
    groups: dict[tuple[Path, str], list[Path]] = {}
    for f in files:
        groups.setdefault((f.parent, review_round(f)[0]), []).append(f)
    superseded: set[Path] = set()
    out: list[Resubmission] = []
    for group in groups.values():
        if len(group) < 2:
            continue

        def newest(f: Path) -> tuple[datetime, float, int]:
            try:
                mtime = f.stat().st_mtime
            except OSError:
                mtime = 0.0
            return saved_at(f), mtime, review_round(f)[1]

        ordered = sorted(group, key=newest, reverse=True)
        out.append(Resubmission(ordered[0], ordered[1:]))
        superseded.update(ordered[1:])
    return [f for f in files if f not in superseded], out


def template_fills(filing: Filing) -> dict[str, str | None]:
    """The fill each cell of the layout has in the template ("附件1!F7" -> "E2EFDA", None for none), where
    the cell is in this file (moved cells followed): an earlier review's fill is replaced by it."""
    out: dict[str, str | None] = {}
    for sl in filing.layout.sheets:
        sheet = filing.sheet_name(sl.name)
        for cell in sl.cells:
            color = STYLES.get(cell.style, {}).get("bg_color")
            rgb = color.lstrip("#").upper() if isinstance(color, str) else None
            at_sheet, row, col = sheet, cell.row, cell.col
            raw = filing.cells.get(cell.key) if cell.key else None
            if raw is not None and raw.address:
                at_sheet, _, a1 = raw.address.rpartition("!")
                row, col = _row_col(a1, row, col)
            for r in range(cell.bottom - cell.row + 1):
                for c in range(cell.right - cell.col + 1):
                    out[f"{at_sheet}!{col_letters(col + c)}{row + r + 1}"] = rgb
    return out


def _row_col(a1: str, row: int, col: int) -> tuple[int, int]:
    """0-based (row, col) of "F7"; the given position when the address does not parse."""
    letters = a1.rstrip("0123456789")
    digits = a1[len(letters) :]
    if not letters or not letters.isascii() or not letters.isalpha() or not digits.isdigit():
        return row, col
    return int(digits) - 1, col_index(letters.upper())


def written_values(filing: Filing) -> dict[str, Value]:
    """Formula cells whose formula was replaced by a typed value (blank ones do not count): key -> value."""
    out: dict[str, Value] = {}
    for cell in filing.layout.formulas():
        raw = filing.cells.get(cell.key or "")
        if cell.key and raw is not None and raw.formula is None and raw.value not in (None, ""):
            out[cell.key] = raw.value
    return out


def check_file(path: Path, catalog: Catalog, options: Options = Options(), *, history: History | None = None) -> Report:
    """One workbook's report; never raises: an unusable file becomes a report with `error` set.

    With a `history`, last year's stored record of the same unit fills blank previous-year inputs and
    is compared with the previous-year figures the unit wrote (rule prior-year-mismatch).
    """
    return audit_file(path, catalog, options, history=history).report


def audit_file(
    path: Path, catalog: Catalog, options: Options = Options(), *, history: History | None = None
) -> Checked:
    """check_file, keeping the inputs and recalculated values (for collect and the history)."""
    try:
        return _audit(path, catalog, options, history, Report(file=path))
    except XlsxKpiError as e:
        return Checked(Report(file=path, error=e.render()))
    except Exception as e:  # noqa: BLE001 - a batch goes on past a file that breaks us, whatever breaks
        return Checked(Report(file=path, error=unexpected(path, e)))


def unexpected(path: Path, e: BaseException) -> str:
    """The message for a file whose check failed in a way nobody foresaw: the batch goes on without it."""
    return f"文件 {path}：审核时发生意外错误（{type(e).__name__}），已跳过此文件；请检查该文件或将其发给维护人员"


def _audit(path: Path, catalog: Catalog, options: Options, history: History | None, report: Report) -> Checked:
    """audit_file's work; any exception it raises becomes the file's error in audit_file."""
    filing = read_workbook(path, catalog)
    read = to_inputs(filing)
    previous = history.previous(filing.meta) if history is not None else None
    inputs = fill_prior_year(filing.layout, read, previous) if previous else read
    values = recalculate(filing.layout, inputs)
    ctx = Context(
        filing=filing,
        inputs=inputs,
        values=values,
        readings=reading_values(filing.layout, values),
        previous=previous,
    )
    report.findings = run_rules(ctx)
    # What the file shows: values typed over formulas, and totals whose displayed figure differs from
    # the recalculation (the summary's 填报 column shows what the unit printed).
    own = values if previous is None else recalculate(filing.layout, read)
    shown = {**printed_mismatches(filing, dict(own)), **written_values(filing)}
    if options.reports:
        from xlsx_kpi.selfreport.check import pick_report, workbook_report_findings  # only with reports (startup)

        meta = filing.meta
        doc = pick_report(
            options.reports,
            meta.get("unit_name", ""),
            meta.get("project_name", ""),
            filing.layout.spec.kind,
            match_any=options.match_any,
        )
        if doc is not None:
            report.findings += workbook_report_findings(doc, filing, values)
    report.replaced = replaced_cells(ctx)
    places = {k: (*filing.a1(k), filing.layout.cells[k].label) for k in place_keys(filing.layout)}
    checked = Checked(report, read, values, shown, places)
    report.sort()
    meta = filing.meta
    report.workbook_id = meta.get("workbook_id", "")
    report.unit_name, report.unit_code = meta.get("unit_name", ""), meta.get("unit_code", "")
    report.year, report.project_name = meta.get("year", ""), meta.get("project_name", "")
    score_block = next(
        (b.id for s in filing.layout.sheets for b in s.spec.blocks if isinstance(b, IndicatorsBlock)), ""
    )
    total, grade = values.get(f"{score_block}.total"), values.get(f"{score_block}.grade")
    report.total = total if isinstance(total, Decimal) else None
    report.grade = grade if isinstance(grade, str) else ""
    if options.annotate:
        out = (options.out_dir or path.parent) / annotated_name(path)
        try:
            if options.out_dir is None and out.exists() and not is_untouched_copy(out):
                # Beside the inputs, a file under the copy's name that we did not write (or that was edited
                # since) is a unit's returned copy: never overwritten. An --out-dir holds only our copies.
                raise XlsxKpiError(
                    "已有同名文件且不是本工具生成的审核副本（可能是单位重新报送的文件），不覆盖；"
                    "请用 --out-dir 指定另一个输出文件夹",
                    file=str(out),
                )
            # The zip patcher (~20 ms), or for the structures it does not handle the openpyxl fallback
            # (~200 ms, in a child process with memory and time limits): see outputs/annotate/__init__.py.
            report.annotated = annotate(
                path, report, out, force=options.force, fills=lambda: template_fills(filing), isolate=options.isolate
            )
        except XlsxKpiError as e:
            report.output_error = e.render()
        except OSError as e:
            report.output_error = f"文件 {out}：无法写入批注副本：{os_reason(e)}"  # as annotate() words it
        except Exception as e:  # noqa: BLE001 - the findings stand; only the copy is missing
            report.output_error = f"文件 {path}：生成审核副本时发生意外错误（{type(e).__name__}），未生成审核副本"
    return checked


# Files of one layout record the same places unless the unit moved cells: each distinct set is held once (a few KB
# per file otherwise). Bounded, for a long-running process (the web app) that sees many batches.
_PLACES: dict[tuple[tuple[str, str, str, str], ...], dict[str, tuple[str, str, str]]] = {}
_PLACES_KEPT = 4096


def _shared_places(places: Mapping[str, tuple[str, str, str]]) -> dict[str, tuple[str, str, str]]:
    """One shared dict per distinct set of places (read only); its strings interned."""
    key = tuple((k, *where) for k, where in places.items())
    found = _PLACES.get(key)
    if found is None:
        if len(_PLACES) >= _PLACES_KEPT:
            _PLACES.clear()
        found = _PLACES[key] = {
            sys.intern(k): (sys.intern(sheet), sys.intern(a1), sys.intern(label))
            for k, (sheet, a1, label) in places.items()
        }
    return found


def slim(checked: Checked) -> Checked:
    """What cross_check needs of a file once it is reported: the report's summary and the values at its places.

    A batch of any size then holds a few hundred bytes per file (check DIR --json, issue 14).
    """
    places = _shared_places(checked.places)
    return Checked(
        report=checked.report.summary(),
        values={k: checked.values[k] for k in places if k in checked.values},
        places=places,
    )


def cross_check(checked: Iterable[Checked], catalog: Catalog) -> list[CrossFinding]:
    """The cross-workbook rules over the usable files among `checked`, grouped by unit and year."""
    files = [
        UnitFile(
            file=c.report.file,
            kind=catalog.workbooks[c.report.workbook_id].kind if c.report.workbook_id in catalog.workbooks else "",
            workbook_id=c.report.workbook_id,
            unit_name=c.report.unit_name,
            unit_code=c.report.unit_code,
            year=c.report.year,
            project_name=c.report.project_name,
            values=c.values,
            places=c.places,
        )
        for c in checked
        if c.report.usable
    ]
    return check_units(files)


_worker_catalog: Catalog | None = None


def _init_worker(sheets: Path | None) -> None:
    global _worker_catalog
    _worker_catalog = load_specs(sheets)


def _check_in_worker(args: tuple[Path, Options, History | None]) -> Report:
    assert _worker_catalog is not None
    return check_file(args[0], _worker_catalog, args[1], history=args[2])


def _audit_in_worker(args: tuple[Path, Options, History | None]) -> Checked:
    assert _worker_catalog is not None
    return audit_file(args[0], _worker_catalog, args[1], history=args[2])


def check_paths(
    files: list[Path],
    catalog: Catalog,
    options: Options = Options(),
    *,
    workers: int = 1,
    sheets: Path | None = None,
    progress: Callable[[Report], None] | None = None,
    history: History | None = None,
    keep_findings: bool = True,
) -> list[Report]:
    """Check many files, in parallel processes when asked; reports come back in input order.

    keep_findings=False: `progress` sees each full report, the list keeps only its summary (Report.summary).
    """
    return _map(
        files,
        lambda f: check_file(f, catalog, options, history=history),
        _check_in_worker,
        lambda r: r,
        lambda f, e: Report(file=f, error=unexpected(f, e)),
        options,
        workers,
        sheets,
        progress,
        history,
        None if keep_findings else Report.summary,
    )


def audit_paths(
    files: list[Path],
    catalog: Catalog,
    options: Options = Options(annotate=False),
    *,
    workers: int = 1,
    sheets: Path | None = None,
    progress: Callable[[Report], None] | None = None,
    history: History | None = None,
    keep_findings: bool = True,
) -> list[Checked]:
    """check_paths keeping each file's figures (audit_file); results come back in input order.

    keep_findings=False: `progress` sees each full result, the list keeps it slim (see slim()).
    """
    return _map(
        files,
        lambda f: audit_file(f, catalog, options, history=history),
        _audit_in_worker,
        lambda c: c.report,
        lambda f, e: Checked(Report(file=f, error=unexpected(f, e))),
        options,
        workers,
        sheets,
        progress,
        history,
        None if keep_findings else slim,
    )


def _map(
    files: list[Path],
    here: Callable[[Path], T],
    in_worker: Callable[[tuple[Path, Options, History | None]], T],
    report_of: Callable[[T], Report],
    failed: Callable[[Path, BaseException], T],
    options: Options,
    workers: int,
    sheets: Path | None,
    progress: Callable[[Report], None] | None,
    history: History | None,
    shrink: Callable[[T], T] | None = None,
) -> list[T]:
    out: list[T] = []
    if workers <= 1 or len(files) < 4:
        for f in files:
            result = here(f)
            if progress:
                progress(report_of(result))
            out.append(shrink(result) if shrink else result)
        return out
    workers = min(workers, os.cpu_count() or 1, len(files))
    from concurrent.futures import ProcessPoolExecutor  # here: one file's check need not load multiprocessing

    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(sheets,)) as pool:
        # Submitted up front (a crashed worker fails its own file only); each future is dropped once read, so
        # only the results still to come are held, not every full report (check --json stays flat, issue 14).
        pending = deque((f, pool.submit(in_worker, (f, options, history))) for f in files)
        while pending:
            f, future = pending.popleft()
            try:
                result = future.result()
            except Exception as e:  # noqa: BLE001 - a worker that died (out of memory, a crash) fails its file only
                result = failed(f, e)
            del future
            if progress:
                progress(report_of(result))
            out.append(shrink(result) if shrink else result)
    return out
