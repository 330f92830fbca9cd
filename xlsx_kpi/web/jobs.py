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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xlsx_kpi import api
from xlsx_kpi.api import Checked, History, Report
from xlsx_kpi.errors import XlsxKpiError
from xlsx_kpi.web.store import Store

if TYPE_CHECKING:
    from xlsx_kpi.api import Catalog

__all__ = ["AuditResult", "Jobs", "build_summary"]

AUDIT_TIMEOUT = 120.0  # seconds for reading, checking and annotating one upload; a filled template needs ~0.3 s
AUDIT_MEMORY = 1536 * 1024 * 1024  # bytes of address space the audit may add

_catalog: Catalog | None = None


def _init(sheets: str | None) -> None:
    global _catalog
    _catalog = api.load_catalog(Path(sheets) if sheets else None)


def _ready() -> bool:
    return _catalog is not None


@dataclass
class AuditResult:
    """What the server keeps of one audit: the checked report, the context of each finding, the copy's bytes."""

    checked: Checked
    contexts: list[dict[str, Any]] = field(default_factory=list)
    annotated: bytes | None = None


def _audit(source: Path, out_dir: Path, history_path: Path | None) -> AuditResult:
    assert _catalog is not None
    history = History(history_path, readonly=True) if history_path is not None and history_path.exists() else None
    try:
        checked = api.audit_file(source, _catalog, out_dir=out_dir, annotate=True, force=True, history=history)
    finally:
        if history is not None:
            history.close()
    result = AuditResult(checked)
    report = checked.report
    if report.usable and report.findings:
        try:
            result.contexts = api.finding_contexts(source, report)
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
    stem = api.safe_filename(Path(name).stem or "报送")[:80].lstrip(".") or "报送"
    source = folder / f"{stem}.xlsx"
    try:
        try:
            os.link(blob, source)
        except OSError:
            shutil.copyfile(blob, source)
        hist = Path(history_path) if history_path else None
        try:
            if api.can_isolate():
                return api.run_isolated(lambda: _audit(source, folder / "out", hist), AUDIT_TIMEOUT, AUDIT_MEMORY)
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
    c = api.collect(
        Path(folder),
        _catalog,
        units=Path(units) if units else None,
        db=Path(history_path) if history_path else None,
        store=False,  # read for last year's figures, when it exists; the server stores each upload itself
    )
    api.write_summary(c, Path(out), force=True)
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
                "figures": json.dumps(api.figures_of(result.checked), ensure_ascii=False),
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
