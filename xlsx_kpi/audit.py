"""Check returned workbooks: read, recalculate, run the rules, report, and write the reviewer's copy."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from xlsx_kpi.annotate import annotate, annotated_name
from xlsx_kpi.annotate_fast import annotate_fast
from xlsx_kpi.errors import XlsxKpiError, os_reason
from xlsx_kpi.expr import Value
from xlsx_kpi.history import History, fill_prior_year
from xlsx_kpi.isolation import annotate_isolated, can_isolate
from xlsx_kpi.reader import Filing, read_workbook, to_inputs
from xlsx_kpi.recalc import reading_values, recalculate
from xlsx_kpi.report import Report
from xlsx_kpi.rules import Context, run_rules
from xlsx_kpi.rules.crossfile import CrossFinding, UnitFile, check_units, place_keys
from xlsx_kpi.spec import Catalog, IndicatorsBlock, load_specs

ANNOTATED_SUFFIX = "_审核.xlsx"
T = TypeVar("T")


@dataclass(frozen=True)
class Options:
    """How to check: where annotated copies go (None: beside each input), whether to write them at all."""

    out_dir: Path | None = None
    annotate: bool = True
    force: bool = False
    isolate: bool = True  # annotate in a child process with memory and time limits (where os.fork exists)


def find_workbooks(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and every .xlsx under a folder: Excel lock files (~$) and our own outputs skipped.

    A lock file is skipped even when named: a shell's 回收/*.xlsx lists them while Excel has a file open.
    """
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if (
                    f.suffix.lower() == ".xlsx"
                    and f.is_file()
                    and not f.name.startswith("~$")
                    and not f.name.endswith(ANNOTATED_SUFFIX)
                ):
                    found.append(f)
        elif not p.name.startswith("~$"):
            found.append(p)
    return found


@dataclass
class Checked:
    """A report with the figures behind it (all empty when the file could not be used).

    inputs: the input cells as read from the file; values: every value as recalculated (inputs included,
    blank previous-year figures filled from the history); written: formula cells the unit typed a value
    over, with that value (what the file shows instead of the formula).
    """

    report: Report
    inputs: dict[str, Value] = field(default_factory=dict)
    values: dict[str, Value] = field(default_factory=dict)
    written: dict[str, Value] = field(default_factory=dict)
    # (sheet, A1, label) of the cells the cross-workbook rules point at (rules.crossfile.place_keys).
    places: dict[str, tuple[str, str, str]] = field(default_factory=dict)


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
    places = {k: (*filing.a1(k), filing.layout.cells[k].label) for k in place_keys(filing.layout)}
    checked = Checked(report, read, values, written_values(filing), places)
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
            # The fast path patches only the parts it changes (~20 ms); it returns None for structures it
            # does not handle, and then openpyxl (~200 ms) writes the copy, on POSIX in a child process
            # with memory and time limits because it loads the whole file.
            report.annotated = annotate_fast(path, report, out, force=options.force)
            if report.annotated is None:
                write = annotate_isolated if options.isolate and can_isolate() else annotate
                report.annotated = write(path, report, out, force=options.force)
        except XlsxKpiError as e:
            report.output_error = e.render()
        except OSError as e:
            report.output_error = f"文件 {out}：无法写入批注副本：{os_reason(e)}"  # as annotate() words it
        except Exception as e:  # noqa: BLE001 - the findings stand; only the copy is missing
            report.output_error = f"文件 {path}：生成审核副本时发生意外错误（{type(e).__name__}），未生成审核副本"
    return checked


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
) -> list[Report]:
    """Check many files, in parallel processes when asked; reports come back in input order."""
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
) -> list[Checked]:
    """check_paths keeping each file's figures (audit_file); results come back in input order."""
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
) -> list[T]:
    out: list[T] = []
    if workers <= 1 or len(files) < 4:
        for f in files:
            out.append(here(f))
            if progress:
                progress(report_of(out[-1]))
        return out
    workers = min(workers, os.cpu_count() or 1, len(files))
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(sheets,)) as pool:
        futures = [pool.submit(in_worker, (f, options, history)) for f in files]
        for f, future in zip(files, futures, strict=True):
            try:
                result = future.result()
            except Exception as e:  # noqa: BLE001 - a worker that died (out of memory, a crash) fails its file only
                result = failed(f, e)
            out.append(result)
            if progress:
                progress(report_of(result))
    return out
