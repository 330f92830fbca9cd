"""Check returned workbooks: read, recalculate, run the rules, report, and write the reviewer's copy."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from xlsx_kpi.annotate import annotate, annotated_name
from xlsx_kpi.errors import XlsxKpiError
from xlsx_kpi.reader import read_workbook, to_inputs
from xlsx_kpi.recalc import reading_values, recalculate
from xlsx_kpi.report import Report
from xlsx_kpi.rules import Context, run_rules
from xlsx_kpi.spec import Catalog, IndicatorsBlock, load_specs

ANNOTATED_SUFFIX = "_审核.xlsx"


@dataclass(frozen=True)
class Options:
    """How to check: where annotated copies go (None: beside each input), whether to write them at all."""

    out_dir: Path | None = None
    annotate: bool = True
    force: bool = False


def find_workbooks(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and every .xlsx under a folder: Excel lock files (~$) and our own outputs skipped."""
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
        else:
            found.append(p)
    return found


def check_file(path: Path, catalog: Catalog, options: Options = Options()) -> Report:
    """One workbook's report; never raises: an unusable file becomes a report with `error` set."""
    report = Report(file=path)
    try:
        filing = read_workbook(path, catalog)
        inputs = to_inputs(filing)
        values = recalculate(filing.layout, inputs)
        ctx = Context(filing=filing, inputs=inputs, values=values, readings=reading_values(filing.layout, values))
        report.findings = run_rules(ctx)
    except XlsxKpiError as e:
        report.error = e.render()
        return report
    except Exception as e:  # noqa: BLE001 - a batch goes on past a file that breaks us
        report.error = f"文件 {path}：读取时发生意外错误（{type(e).__name__}），请检查该文件或将其发给维护人员"
        return report
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
        out_dir = options.out_dir or path.parent
        try:
            report.annotated = annotate(path, report, out_dir / annotated_name(path), force=options.force)
        except XlsxKpiError as e:
            report.output_error = e.render()
        except OSError as e:
            report.output_error = f"无法写入审核文件到 {out_dir}：{e.strerror or e}"
    return report


_worker_catalog: Catalog | None = None


def _init_worker(sheets: Path | None) -> None:
    global _worker_catalog
    _worker_catalog = load_specs(sheets)


def _check_in_worker(args: tuple[Path, Options]) -> Report:
    assert _worker_catalog is not None
    return check_file(args[0], _worker_catalog, args[1])


def check_paths(
    files: list[Path],
    catalog: Catalog,
    options: Options = Options(),
    *,
    workers: int = 1,
    sheets: Path | None = None,
    progress: Callable[[Report], None] | None = None,
) -> list[Report]:
    """Check many files, in parallel processes when asked; reports come back in input order."""
    reports: list[Report] = []
    if workers <= 1 or len(files) < 4:
        for f in files:
            reports.append(check_file(f, catalog, options))
            if progress:
                progress(reports[-1])
        return reports
    workers = min(workers, os.cpu_count() or 1, len(files))
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(sheets,)) as pool:
        for report in pool.map(_check_in_worker, [(f, options) for f in files], chunksize=8):
            reports.append(report)
            if progress:
                progress(report)
    return reports
