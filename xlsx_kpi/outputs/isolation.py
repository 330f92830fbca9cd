"""Run the whole-file annotator in a forked child with a memory limit and a timeout (POSIX)."""

from __future__ import annotations

import glob
import os
import pickle
import selectors
import signal
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast

from xlsx_kpi.audit.report import Report
from xlsx_kpi.errors import XlsxKpiError

# openpyxl loads the whole workbook. ooxml.load.check_loadable (run by annotate_openpyxl) bounds what it is given;
# measured just inside each budget (190,000 empty cells; a 99,000-cell merge; 1.9 M characters of shared
# formulas), a whole check with the openpyxl copy took at most 1.9 s and 162 MB. On POSIX the annotator
# also runs in a forked child (~7 ms) with an address-space limit and a timeout, for whatever those
# budgets do not foresee: the child can fail, but never take the batch or the machine down with it.
ANNOTATE_TIMEOUT = 60.0  # seconds; a filled template is annotated in ~0.2 s
ANNOTATE_MEMORY = 1024 * 1024 * 1024  # bytes of address space the child may add to what it inherits

T = TypeVar("T")


def can_isolate() -> bool:
    return hasattr(os, "fork")


def annotate_isolated(
    source: Path, report: Report, out: Path, *, force: bool = False, fills: Mapping[str, str | None] | None = None
) -> Path:
    """annotate_openpyxl() in a child process; a child out of time or memory becomes an XlsxKpiError naming the file."""
    # Imported here, before the fork: the parent keeps openpyxl for the next file, and the child does not
    # spend its memory and time budget importing it.
    from xlsx_kpi.outputs.annotate.fallback import annotate_openpyxl

    try:
        return run_isolated(
            lambda: annotate_openpyxl(source, report, out, force=force, fills=fills), ANNOTATE_TIMEOUT, ANNOTATE_MEMORY
        )
    except TimeoutError:
        # Killed, perhaps while saving: remove annotate_openpyxl()'s temporary file (".<stem>.<id>.tmp.xlsx").
        for tmp in out.parent.glob(f".{glob.escape(out.stem)}.*.tmp.xlsx"):
            tmp.unlink(missing_ok=True)
        raise XlsxKpiError(
            f"生成审核副本超过 {ANNOTATE_TIMEOUT:.0f} 秒仍未完成，已停止，未生成审核副本", file=str(source)
        ) from None
    except MemoryError:
        raise XlsxKpiError(
            f"生成审核副本所需内存超过 {ANNOTATE_MEMORY // (1024 * 1024)} MB，已停止，未生成审核副本", file=str(source)
        ) from None
    except ChildProcessError:
        raise XlsxKpiError("生成审核副本的进程意外退出（可能内存不足），未生成审核副本", file=str(source)) from None


def run_isolated(fn: Callable[[], T], timeout: float, memory: int) -> T:
    """fn() in a forked child limited to `memory` more bytes of address space and `timeout` seconds.

    Returns its result or raises its exception (both pickled back); raises TimeoutError when the child
    was killed for time, ChildProcessError when it died without an answer. POSIX only (os.fork).
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns, never runs the parent's cleanup
        os.close(read_fd)
        _child(fn, write_fd, memory)
    os.close(write_fd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(read_fd, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    os.kill(pid, signal.SIGKILL)
                    raise TimeoutError(f"killed after {timeout} s")
                chunk = os.read(read_fd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(read_fd)
        os.waitpid(pid, 0)
    if not chunks:
        raise ChildProcessError("the child died without an answer")
    ok, value = pickle.loads(b"".join(chunks))
    if ok:
        return cast(T, value)
    raise value


def _child(fn: Callable[[], Any], write_fd: int, memory: int) -> NoReturn:
    """Run fn, send (ok, result or exception) down the pipe, exit. Out of memory, it still answers."""
    data = b""
    try:
        # Nothing may print: a lock on stdout/stderr held by another thread at fork time would hang us.
        warnings.simplefilter("ignore")
        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115
        data = out_of_memory = pickle.dumps((False, MemoryError()))  # made before the limit: costs nothing later
        _limit_address_space(memory)
        outcome: tuple[bool, Any] | None = None
        failure: BaseException | None = None
        try:
            outcome = (True, fn())
        except BaseException as e:  # noqa: BLE001 - every failure goes back to the parent
            # Dropping the tracebacks (no allocation) frees the frames, and with them what fn() built.
            chained: BaseException | None = e
            for _ in range(10):
                if chained is None:
                    break
                chained.__traceback__ = None
                chained = chained.__context__
            failure = e
        if outcome is None:
            outcome = (False, failure)
        try:
            data = pickle.dumps(outcome)
        except MemoryError:
            data = out_of_memory
        except Exception:  # noqa: BLE001 - an exception that does not pickle
            data = pickle.dumps((False, RuntimeError(repr(outcome[1]))))
    finally:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(write_fd, view) :]
        finally:
            os._exit(0)


def _limit_address_space(extra: int) -> None:
    """RLIMIT_AS = what the process maps now + `extra` (Linux; elsewhere only the timeout applies)."""
    try:
        import resource

        with open("/proc/self/statm") as f:
            mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        limit = mapped + extra if hard == resource.RLIM_INFINITY else min(hard, mapped + extra)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, OSError, ValueError):
        pass
