"""Audits run in worker processes, each inside a forked child with memory and time limits."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils.cell import column_index_from_string, coordinate_from_string, get_column_letter

from xlsx_kpi.audit.checked import Checked
from xlsx_kpi.audit.report import Report
from xlsx_kpi.batch.check import Options, audit_file
from xlsx_kpi.batch.collect import collect, write_summary
from xlsx_kpi.errors import XlsxKpiError
from xlsx_kpi.formats.catalog import load_specs
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.formats.units import safe_filename
from xlsx_kpi.ooxml.load import check_loadable
from xlsx_kpi.outputs.isolation import can_isolate, run_isolated
from xlsx_kpi.store.history import History, encode_value
from xlsx_kpi.web.store import Store

__all__ = ["AuditResult", "Jobs", "build_summary", "cell_contexts"]

AUDIT_TIMEOUT = 120.0  # seconds for reading, checking and annotating one upload; a filled template needs ~0.3 s
AUDIT_MEMORY = 1536 * 1024 * 1024  # bytes of address space the audit may add
CONTEXT_ROWS = 3  # rows shown above and below a finding's cell
CONTEXT_COLS = 8  # columns shown at least (from A), at most 14

_catalog: Catalog | None = None


def _init(sheets: str | None) -> None:
    global _catalog
    _catalog = load_specs(Path(sheets) if sheets else None)


def _ready() -> bool:
    return _catalog is not None


@dataclass
class AuditResult:
    """What the server keeps of one audit: the checked report, the context of each finding, the copy's bytes."""

    checked: Checked
    contexts: list[dict[str, Any]] = field(default_factory=list)
    annotated: bytes | None = None


def _display(value: Any, number_format: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, int | float):
        if "%" in number_format:
            return f"{value * 100:.2f}%"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return f"{value:.10g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d")
    return str(value)


def cell_contexts(path: Path, report: Report) -> list[dict[str, Any]]:
    """Each finding's cell in its sheet: a few rows around it, its row and column labels, its shown value.

    Read with openpyxl (read-only, cached values: what Excel shows) after the reader's load budget passed.
    """
    check_loadable(path)
    wanted: dict[str, list[tuple[int, int]]] = {}
    for f in report.findings:
        try:
            letters, row = coordinate_from_string(f.cell)
            wanted.setdefault(f.sheet, []).append((row, column_index_from_string(letters)))
        except ValueError:
            continue
    grids: dict[str, dict[tuple[int, int], str]] = {}
    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        for sheet, cells in wanted.items():
            if sheet not in wb.sheetnames:
                continue
            ws = wb[sheet]
            ws.reset_dimensions()
            last_row = max(r for r, _ in cells) + CONTEXT_ROWS
            last_col = min(max(max(c for _, c in cells) + 2, CONTEXT_COLS), 16384)
            cells_seen: dict[tuple[int, int], str] = {}
            for row in ws.iter_rows(min_row=1, max_row=last_row, max_col=last_col):
                for cell in row:
                    value = getattr(cell, "value", None)
                    if value is not None and hasattr(cell, "row"):
                        cells_seen[(cell.row, cell.column)] = _display(value, cell.number_format or "")
            grids[sheet] = cells_seen
    finally:
        wb.close()
    out: list[dict[str, Any]] = []
    for f in report.findings:
        grid: dict[tuple[int, int], str] | None = grids.get(f.sheet)
        try:
            letters, r = coordinate_from_string(f.cell)
            c = column_index_from_string(letters)
        except ValueError:
            grid = None
        if grid is None:
            out.append({"sheet": f.sheet, "cell": f.cell, "rows": [], "cols": []})
            continue
        first_col = 1 if c <= 12 else c - 6
        last_col = min(max(c + 1, first_col + CONTEXT_COLS - 1), first_col + 13)
        cols = list(range(first_col, last_col + 1))
        rows = list(range(max(1, r - CONTEXT_ROWS), r + CONTEXT_ROWS + 1))
        row_label = " · ".join(
            t for k in range(1, c) if (t := grid.get((r, k), "")) and not _numeric(t) and len(t) < 60
        )
        if not row_label:
            row_label = next((grid[(k, 1)] for k in range(r, 0, -1) if grid.get((k, 1))), "")
        col_label = next(
            (t for k in range(r - 1, max(0, r - 25), -1) if (t := grid.get((k, c), "")) and not _numeric(t)), ""
        )
        out.append(
            {
                "sheet": f.sheet,
                "cell": f.cell,
                "row": r,
                "col": c,
                "value": grid.get((r, c), ""),
                "row_label": row_label,
                "col_label": col_label,
                "cols": [get_column_letter(k) for k in cols],
                "rows": [[k, [grid.get((k, j), "") for j in cols]] for k in rows],
            }
        )
    return out


def _numeric(text: str) -> bool:
    return text.replace(".", "", 1).replace("%", "").replace("-", "", 1).isdigit()


def _audit(source: Path, out_dir: Path, history_path: Path | None) -> AuditResult:
    assert _catalog is not None
    history = History(history_path, readonly=True) if history_path is not None and history_path.exists() else None
    try:
        checked = audit_file(source, _catalog, Options(out_dir=out_dir, annotate=True, force=True), history=history)
    finally:
        if history is not None:
            history.close()
    result = AuditResult(checked)
    report = checked.report
    if report.usable and report.findings:
        try:
            result.contexts = cell_contexts(source, report)
        except XlsxKpiError:
            result.contexts = []
    if report.annotated is not None:
        result.annotated = report.annotated.read_bytes()
    return result


def audit_upload(blob: str, name: str, work: str, history_path: str | None) -> AuditResult:
    """Audit one stored upload (runs in a pool worker): the same audit_file as `check` and `collect`.

    The file is linked into a private work folder under a cleaned form of its uploaded name, so that the
    审核结果 sheet and the messages name the file as the unit knows it; the folder is removed afterwards.
    """
    folder = Path(work)
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "out").mkdir(parents=True)
    stem = safe_filename(Path(name).stem or "报送")[:80].lstrip(".") or "报送"
    source = folder / f"{stem}.xlsx"
    try:
        try:
            os.link(blob, source)
        except OSError:
            shutil.copyfile(blob, source)
        hist = Path(history_path) if history_path else None
        try:
            if can_isolate():
                return run_isolated(lambda: _audit(source, folder / "out", hist), AUDIT_TIMEOUT, AUDIT_MEMORY)
            return _audit(source, folder / "out", hist)
        except TimeoutError:
            message = f"审核超过 {AUDIT_TIMEOUT:.0f} 秒仍未完成，已停止；请检查该文件"
        except MemoryError:
            message = "审核所需内存过大，已停止；请检查该文件"
        except ChildProcessError:
            message = "审核进程意外退出；请检查该文件或将其发给维护人员"
        report = Report(file=source, error=f"文件 {source.name}：{message}")
        return AuditResult(Checked(report))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def build_summary(folder: str, out: str, units: str | None, history_path: str | None) -> dict[str, int]:
    """collect + write_summary over an exported folder (runs in a pool worker), as `xlsx-kpi collect` does."""
    assert _catalog is not None
    hist = Path(history_path) if history_path and Path(history_path).exists() else None
    history = History(hist, readonly=True) if hist is not None else None
    try:
        c = collect([Path(folder)], _catalog, units=Path(units) if units else None, history=history)
    finally:
        if history is not None:
            history.close()
    write_summary(c, Path(out), force=True)
    return {"submissions": len(c.submissions), "missing": len(c.missing), "duplicates": len(c.duplicates)}


def _clean(text: str | None, folder: str) -> str | None:
    """A message without the server's folders: "文件 /data/work/7/原名.xlsx：…" -> "文件 原名.xlsx：…"."""
    if text is None:
        return None
    return text.replace(folder + os.sep, "").replace(folder, "")


class Jobs:
    """A pool of worker processes auditing uploads; one dispatcher thread per worker saves each result once."""

    def __init__(
        self,
        store: Store,
        *,
        workers: int = 2,
        sheets: Path | None = None,
        on_done: Callable[[int, AuditResult], None] | None = None,
    ) -> None:
        self.store = store
        self.workers = max(1, workers)
        self.sheets = str(sheets) if sheets else None
        self.on_done = on_done
        self._lock = threading.Lock()
        self._inflight: set[int] = set()
        self._pool = self._new_pool()
        self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="xlsx-kpi-audit")

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the server has threads, and a forked copy of a held lock would hang a worker.
        pool = ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init, initargs=(self.sheets,)
        )
        # Start the workers now (they load the specs once), so that the first upload waits for no one.
        for _ in range(self.workers):
            pool.submit(_ready)
        return pool

    def submit(self, submission_id: int) -> None:
        with self._lock:
            if submission_id in self._inflight:
                return
            self._inflight.add(submission_id)
        self._threads.submit(self._run, submission_id)

    def resume(self) -> int:
        """Queue what a previous run left unaudited (the server stopped mid-batch)."""
        ids = self.store.queued()
        for i in ids:
            self.submit(i)
        return len(ids)

    def run(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        with self._lock:
            return self._pool.submit(fn, *args)

    def _run(self, submission_id: int) -> None:
        try:
            row = self.store.submission(submission_id)
            if row is None or row.state != "queued":
                return
            work = self.store.work / str(submission_id)
            blob = self.store.blob_path(row.sha256)
            history = str(self.store.history_path)
            try:
                result: AuditResult = self.run(audit_upload, str(blob), row.name, str(work), history).result()
            except (CancelledError, RuntimeError):
                return  # shutting down: the submission stays queued and is audited at the next start
            except BrokenProcessPool:
                with self._lock:
                    self._pool = self._new_pool()
                result = AuditResult(Checked(Report(file=Path(row.name), error=f"文件 {row.name}：审核进程意外退出")))
            self.save(submission_id, row.name, result, str(work))
        except Exception:  # noqa: BLE001 - a dispatcher must never die; the submission stays queued
            import traceback

            traceback.print_exc()
        finally:
            with self._lock:
                self._inflight.discard(submission_id)

    def save(self, submission_id: int, name: str, result: AuditResult, work: str) -> None:
        report = result.checked.report
        report.error = _clean(report.error, work)
        report.output_error = _clean(report.output_error, work)
        report.file = Path(name)
        annotated = self.store.put_bytes(result.annotated) if result.annotated is not None else None
        data = report.to_json()
        data["annotated"] = None
        counts = report.counts
        saved = self.store.finish(
            submission_id,
            {
                "unit_code": report.unit_code.strip(),
                "unit_name": report.unit_name.strip(),
                "workbook_id": report.workbook_id,
                "year": report.year.strip(),
                "project_name": report.project_name.strip(),
                "total": None if report.total is None else str(report.total),
                "grade": report.grade,
                "errors": counts["错误"],
                "warnings": counts["警告"],
                "explained": counts["已说明"],
                "infos": counts["提示"],
                "status": report.status,
                "error": report.error,
                "annotated_sha256": annotated,
                "report": json.dumps(data, ensure_ascii=False),
                "contexts": json.dumps(result.contexts, ensure_ascii=False),
                # What the cross-workbook rules need, so the 回收 page can run them without reading files again.
                "figures": json.dumps(
                    {
                        "values": {
                            k: e for k, v in result.checked.values.items() if (e := encode_value(v)) is not None
                        },
                        "places": result.checked.places,
                    },
                    ensure_ascii=False,
                ),
            },
        )
        if saved and self.on_done is not None:
            self.on_done(submission_id, result)

    def shutdown(self) -> None:
        """Stop taking work, let running audits finish (their results are saved), leave the rest queued."""
        self._threads.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            pool = self._pool
        pool.shutdown(wait=True, cancel_futures=True)
        self._threads.shutdown(wait=True)
