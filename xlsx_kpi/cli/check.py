"""The commands of a round's returns: check (one file, many, a folder; JSON) and collect (汇总 + history)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from xlsx_kpi import api
from xlsx_kpi.cli.common import SpecsDir, err, out, real, work_begins
from xlsx_kpi.cli.render import (
    JsonFiles,
    JsonLines,
    print_collection,
    print_cross,
    print_findings,
    print_resubmitted,
    print_summary,
)
from xlsx_kpi.errors import OutputExistsError, XlsxKpiError

__all__ = ["check_cmd", "collect_cmd", "progress"]


@contextmanager
def progress(label: str, total: int | None, *, shown: bool = True) -> Iterator[Callable[[], None]]:
    """A transient progress bar on stderr; yields the step function. Not shown: rich.progress is not even imported
    (checking one workbook, issue 14)."""
    if not shown:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=real(err),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)


def check_cmd(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="要审核的 .xlsx 文件或文件夹（文件夹中的 .xlsx 全部审核，其中的 .docx 自评报告"
            "按单位、项目名称对应到工作簿）；只给 .docx 时只做报告内部核对",
            show_default=False,
        ),
    ],
    report_docs: Annotated[
        list[Path] | None,
        typer.Option("--report", metavar="报告.docx", help="单位的自评报告 .docx：与工作簿逐项核对数字（可多次给出）"),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out-dir", help="审核批注文件的输出文件夹（默认与原文件同一文件夹）")
    ] = None,
    no_annotate: Annotated[bool, typer.Option("--no-annotate", help="只审核，不生成“_审核.xlsx”批注文件")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="在标准输出打印机器可读的 JSON 报告")] = False,
    as_jsonl: Annotated[
        bool,
        typer.Option("--jsonl", help="同 --json，但每个文件一行（JSON Lines），审核完一个写一行；最后一行是汇总"),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="覆盖已存在的审核批注文件")] = False,
    workers: Annotated[int, typer.Option("--workers", help="并行进程数（默认为 CPU 核数）")] = 0,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="历史数据库（collect 生成）：用上年报送数核对、补足上年结转结余额（只读，不写入）"),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="逐条列出全部问题，包括“提示”（默认只列错误和警告，提示只计数）")
    ] = False,
    sheets: SpecsDir = None,
) -> None:
    """审核回收的工作簿：重新计算、逐条检查，生成带批注的“_审核.xlsx”（原文件不改动）。"""
    catalog = api.load_catalog(sheets)
    inputs = api.find_inputs(paths, report_docs or [], skip=[out_dir] if out_dir else [])
    if as_json and as_jsonl:
        raise XlsxKpiError("--json 与 --jsonl 只能选一个")
    console = err if as_json or as_jsonl else out
    # With --json each file's report is written as it comes and only its summary row is kept (flat memory);
    # without, up to three files' findings are printed at the end.
    stream = JsonFiles(sys.stdout) if as_json else JsonLines(sys.stdout) if as_jsonl else None
    files = inputs.workbooks
    work_begins()
    with progress("审核", len(files), shown=len(files) >= 2) as advance:

        def done(report: api.Report) -> None:
            if stream is not None:
                stream.add(report)
            advance()

        run = api.check_inputs(
            inputs,
            catalog,
            out_dir=out_dir,
            annotate=not no_annotate,
            force=force,
            workers=workers or (os.cpu_count() or 1),
            db=db,
            sheets=sheets,
            progress=done,
            keep_findings=stream is None and len(files) <= 3,
        )
    reports, cross, extra = run.reports, run.cross, run.documents
    if stream is not None:
        for r in extra:
            stream.add(r)
        reports += [r.summary() for r in extra]
        stream.finish(reports, cross, run.resubmitted)
    else:
        reports += extra
        if len(reports) <= 3:
            for r in reports:
                print_findings(console, r, verbose=verbose)
    print_summary(console, reports)
    print_cross(console, cross)
    print_resubmitted(console, run.resubmitted)
    cross_errors = any(c.finding.severity is api.Severity.ERROR for c in cross)
    raise typer.Exit(max([r.exit_code for r in reports] + [1 if cross_errors else 0]))


def collect_cmd(
    folder: Annotated[Path, typer.Argument(help="回收工作簿所在的文件夹（含子文件夹）", show_default=False)],
    units: Annotated[
        Path | None, typer.Option("--units", help="单位清单 .xlsx/.csv（与 template --units 相同），用于列出未报送单位")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="汇总工作簿")] = Path("汇总.xlsx"),
    db: Annotated[Path | None, typer.Option("--db", help=f"历史数据库（默认为文件夹中的 {api.DB_NAME}）")] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="覆盖已存在的汇总工作簿（输入与上次相同、汇总工作簿也未改动时不重写）"),
    ] = False,
    workers: Annotated[int, typer.Option("--workers", help="并行进程数（默认为 CPU 核数）")] = 0,
    recheck: Annotated[
        bool,
        typer.Option(
            "--recheck",
            help="重新审核全部文件并重写汇总工作簿（默认：历史数据库中已有、且由同一版本和同样的规格审核过的同一文件"
            "不再重读）",
        ),
    ] = False,
    sheets: SpecsDir = None,
) -> None:
    """汇总文件夹中回收的工作簿：逐个审核（同 check），写出汇总工作簿，并存入历史数据库。"""
    catalog = api.load_catalog(sheets)
    if not folder.is_dir():
        raise XlsxKpiError("请指定存放回收工作簿的文件夹", file=str(folder))
    if output.exists() and not force:
        raise OutputExistsError("文件已存在；如需覆盖请加 --force", file=str(output))
    db_path = db or folder / api.DB_NAME
    work_begins()
    with progress("汇总", None) as advance:
        collection = api.collect(
            folder,
            catalog,
            units=units,
            db=db_path,
            exclude=[output],
            workers=workers or (os.cpu_count() or 1),
            sheets=sheets,
            progress=lambda _: advance(),
            recheck=recheck,
        )
        written = api.update_summary(collection, output, db_path, force=force)
    print_collection(collection, output, db_path, written=written)
    raise typer.Exit(collection.exit_code)
