"""What every command shares: the typer app, the two consoles (made on first use), --sheets and --year."""

from __future__ import annotations

import datetime as dt
import gc
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from xlsx_kpi.errors import XlsxKpiError

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "APP_SETTINGS",
    "LazyConsole",
    "SpecsDir",
    "app",
    "err",
    "out",
    "parse_year",
    "pause_collector",
    "program_ends",
    "real",
    "resume_collector",
    "work_begins",
]

# Each command imports what it uses: `xlsx-kpi --help` and checking one workbook should not wait for pandas,
# openpyxl, xlsxwriter, python-docx or rich's progress bars to load (issue 14).


class LazyConsole:
    """A rich Console made on first use (rich takes ~0.1 s to import)."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real(), name)

    def real(self) -> Console:
        """The Console itself (rich's Progress enters it as a context manager, which a proxy cannot be)."""
        if self._console is None:
            from rich.console import Console

            stream = sys.stderr if self._stderr else sys.stdout
            # Not a terminal (a log, a pipe): wide enough that file names in the summary table do not fold.
            # No markup and no emoji codes: a file name such as "[red]a.xlsx" or "a:smile:.xlsx" is printed as it is
            # (and rich's table of emoji codes is not loaded).
            self._console = Console(
                stderr=self._stderr,
                highlight=False,
                markup=False,
                emoji=False,
                soft_wrap=True,
                width=None if stream.isatty() else 160,
            )
        return self._console


def real(console: Console) -> Console:
    """The rich Console behind `out`/`err` (for rich's Progress)."""
    lazy: object = console
    return lazy.real() if isinstance(lazy, LazyConsole) else console


# The app's settings, also those of the one-command apps cli.app_for makes.
APP_SETTINGS: dict[str, Any] = dict(
    help="预算绩效自评表工具：生成模板（template）、审核回收的工作簿（check）、起草自评报告（report）、汇总（collect）、"
    "历年对比（history）、列出表种（specs）、重建内置模板（build-templates）、网页版（serve）。",
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
)
app = typer.Typer(**APP_SETTINGS)
out = cast("Console", LazyConsole(stderr=False))
err = cast("Console", LazyConsole(stderr=True))

SpecsDir = Annotated[Path | None, typer.Option("--sheets", help="表种规格目录（默认使用内置 sheets/）")]


def parse_year(text: str | None) -> int:
    """--year as a four-digit year (default: last year)."""
    if text is None:
        return dt.date.today().year - 1
    try:
        year = int(text.strip())
    except ValueError:
        raise XlsxKpiError(f"年度“{text}”不是数字，请填写四位年份，如 2025") from None
    if not 1990 <= year <= 2100:
        raise XlsxKpiError(f"年度 {year} 不合理，请填写四位年份，如 2025")
    return year


# What pause_collector changed, so that work_begins and resume_collector undo only that: "paused", "frozen".
COLLECTOR: set[str] = set()


def pause_collector() -> None:
    """Turn the cyclic garbage collector off for the program's startup (main, run as xlsx-kpi); work_begins
    turns it on again.

    Startup builds some 10^5 long-lived objects (modules, classes, the unpickled spec catalog) that the collector
    would otherwise scan again and again: checking one workbook makes ~60 collections and 25-30 ms fewer (measured
    with gc.callbacks; issue 14).
    """
    if gc.isenabled() and not COLLECTOR:
        gc.disable()
        COLLECTOR.add("paused")


def work_begins() -> None:
    """Startup is over: the collector runs again, leaving out (frozen) what startup built.

    Each command that works through many files or units calls this before it starts, so a batch of any size is
    collected as usual; the frozen objects are not scanned again (nor touched in the processes a batch forks).
    Nothing happens when the collector was not paused (main called in-process with arguments).
    """
    if "paused" in COLLECTOR:
        COLLECTOR.discard("paused")
        COLLECTOR.add("frozen")
        gc.freeze()
        gc.enable()


def program_ends() -> None:
    """The program's end (cli.program): the collector on again, but what work_begins froze stays frozen.

    The process exits next; unfreezing would only hand startup's objects to the interpreter's final collection to
    scan once more (~25 ms of every `check`, issue 14).
    """
    if "paused" in COLLECTOR:
        gc.enable()
    COLLECTOR.clear()


def resume_collector() -> None:
    """Undo pause_collector and work_begins (main's end): for a caller that goes on in the same process."""
    if "frozen" in COLLECTOR:
        gc.unfreeze()
    if "paused" in COLLECTOR:
        gc.enable()
    COLLECTOR.clear()
