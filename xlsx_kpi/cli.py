"""The xlsx-kpi command line: parse options, call the library, print, exit (0 ok, 1 findings, 2 bad input)."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO, cast

import typer

from xlsx_kpi.audit.findings import Severity, finding_fields
from xlsx_kpi.audit.report import REPLACED_LABEL, replaced_text
from xlsx_kpi.errors import OutputExistsError, XlsxKpiError, os_reason
from xlsx_kpi.safe_text import printable
from xlsx_kpi.store.history import DB_NAME

if TYPE_CHECKING:
    from rich.console import Console

    from xlsx_kpi.audit.report import Report
    from xlsx_kpi.audit.rules.crossfile import CrossFinding
    from xlsx_kpi.batch.check import Resubmission
    from xlsx_kpi.batch.collect import Collection
    from xlsx_kpi.formats.spec import Catalog, WorkbookSpec
    from xlsx_kpi.store.history import Record

# Each command imports what it uses: `xlsx-kpi --help` and checking one workbook should not wait for pandas,
# openpyxl, xlsxwriter, python-docx or rich's progress bars to load (issue 14).


class _LazyConsole:
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
            self._console = Console(
                stderr=self._stderr, highlight=False, soft_wrap=True, width=None if stream.isatty() else 160
            )
        return self._console


def _real(console: Console) -> Console:
    lazy: object = console
    return lazy.real() if isinstance(lazy, _LazyConsole) else console


app = typer.Typer(
    help="预算绩效自评表工具：生成模板（template）、审核回收的工作簿（check）、起草自评报告（report）、汇总（collect）、"
    "历年对比（history）、列出表种（specs）、重建内置模板（build-templates）、网页版（serve）。",
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
)
out = cast("Console", _LazyConsole(stderr=False))
err = cast("Console", _LazyConsole(stderr=True))

KIND_ALIASES = {
    "department": "department",
    "部门": "department",
    "部门整体": "department",
    "project": "project",
    "项目": "project",
    "项目支出": "project",
}

SpecsDir = Annotated[Path | None, typer.Option("--sheets", help="表种规格目录（默认使用内置 sheets/）")]


def _catalog(sheets: Path | None) -> Catalog:
    from xlsx_kpi.formats.catalog import load_specs

    return load_specs(sheets)


def _workbook(catalog: Catalog, kind: str | None, spec: str | None) -> WorkbookSpec:
    if spec:
        return catalog.workbook(spec)
    if not kind:
        raise XlsxKpiError("请用 --kind 指定表种（department 部门整体 / project 项目支出），或用 --spec 指定规格")
    wanted = KIND_ALIASES.get(kind.strip().lower())
    if wanted is None:
        raise XlsxKpiError(
            f"未知的表种 {kind!r}，应为 department（部门）或 project（项目）；用 xlsx-kpi specs 查看全部"
        )
    for wb in catalog.workbooks.values():
        if wb.kind == wanted:
            return wb
    raise XlsxKpiError(f"没有 {kind} 类的表种规格")


def _year(text: str | None) -> int:
    if text is None:
        return dt.date.today().year - 1
    try:
        year = int(text.strip())
    except ValueError:
        raise XlsxKpiError(f"年度“{text}”不是数字，请填写四位年份，如 2025") from None
    if not 1990 <= year <= 2100:
        raise XlsxKpiError(f"年度 {year} 不合理，请填写四位年份，如 2025")
    return year


@app.command("specs")
def specs_cmd(sheets: SpecsDir = None) -> None:
    """列出已知的表种和表格（地区、来源）。"""
    catalog = _catalog(sheets)
    for wb in catalog.workbooks.values():
        kind = "部门整体" if wb.kind == "department" else "项目支出"
        out.print(f"{wb.id}  [{kind}] {wb.name}（{wb.region}，第 {wb.version} 版）")
        for s in catalog.sheets_of(wb):
            src = f"  来源：{s.source.file} 第 {s.source.lines[0]}–{s.source.lines[1]} 行" if s.source else ""
            out.print(f"    {s.sheet}：{s.name}（{s.id}）{src}")


@app.command("template")
def template_cmd(
    kind: Annotated[
        str | None, typer.Option("--kind", "-k", help="表种：department（部门整体）或 project（项目支出）")
    ] = None,
    spec: Annotated[str | None, typer.Option("--spec", help="按规格 id 选择表种，如 sc-department")] = None,
    year: Annotated[str | None, typer.Option("--year", "-y", help="年度，如 2025（默认上一年）")] = None,
    unit: Annotated[str | None, typer.Option("--unit", "-u", help="单位名称")] = None,
    code: Annotated[str | None, typer.Option("--code", "-c", help="预算单位编码")] = None,
    project: Annotated[str | None, typer.Option("--project", "-p", help="项目名称（项目支出表）")] = None,
    project_type: Annotated[
        str | None, typer.Option("--project-type", help="项目类型：产业发展/民生保障/基础设施/行政运行")
    ] = None,
    units: Annotated[
        Path | None,
        typer.Option(
            "--units", help="单位清单 .xlsx/.csv（单位名称、预算单位编码、项目名称、项目类型），每行生成一个文件"
        ),
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="输出文件（单个单位时）")] = None,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="输出文件夹（默认当前文件夹）")] = Path("."),
    password: Annotated[
        str | None, typer.Option("--password", help="工作表保护密码（可选；只防误改，不防破解）")
    ] = None,
    contact: Annotated[
        str | None, typer.Option("--contact", help="填表说明中的报送要求，如“12月31日前发送至 xx@xx.gov.cn”")
    ] = None,
    blank: Annotated[bool, typer.Option("--blank", help="生成不带单位信息的空白模板")] = False,
    rows: Annotated[
        str | None,
        typer.Option(
            "--rows",
            help="各指标组的行数，如 数量=12,质量=4（单位清单中可用“指标行数”列逐个单位指定）",
        ),
    ] = None,
    targets: Annotated[
        Path | None,
        typer.Option(
            "--targets",
            help="批复的绩效目标 .xlsx/.csv（预算单位编码、项目名称、指标组、三级指标、预算指标值），预填并锁定",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="覆盖已存在的文件")] = False,
    sheets: SpecsDir = None,
) -> None:
    """为一个单位（或 --units 清单中的每个单位）生成自评模板。"""
    from xlsx_kpi.formats.layout import Identity, build_layout
    from xlsx_kpi.formats.units import PROJECT_TYPES, parse_rows, read_targets, read_units
    from xlsx_kpi.outputs.template import check_batch_names, generate, shaped, template_filename, write_template

    catalog = _catalog(sheets)
    wb = _workbook(catalog, kind, spec)
    the_year = _year(year)
    if project_type and project_type not in PROJECT_TYPES:
        raise XlsxKpiError(f"项目类型“{project_type}”无效，应为：{'、'.join(PROJECT_TYPES)}")
    is_project = wb.kind == "project"
    sizes = parse_rows(rows) if rows else []
    approved = read_targets(targets) if targets else []
    where = str(targets or "")
    if units:
        unit_rows = read_units(units, project=is_project)
        # Duplicate names are refused before any layout is built (~20 ms a unit when rows are shaped).
        plain = [
            Identity(year=the_year, unit_name=r.unit_name, unit_code=r.unit_code, project_name=r.project_name)
            for r in unit_rows
        ]
        check_batch_names(wb, plain, out_dir)
        idents = [
            shaped(
                catalog,
                wb,
                Identity(
                    year=the_year,
                    unit_name=r.unit_name,
                    unit_code=r.unit_code,
                    project_name=r.project_name,
                    project_type=r.project_type,
                    contact=contact or "",
                ),
                parse_rows(r.rows) if r.rows else sizes,
                approved,
                rows_from=f"{units.name} 第 {r.line} 行“指标行数”" if r.rows else "--rows",
                targets_file=where,
            )
            for r in unit_rows
        ]
        paths = generate(catalog, wb, idents, out_dir, password=password, force=force)
        out.print(f"已生成 {len(paths)} 个模板，保存在 {out_dir}：")
        for p in paths:
            out.print(f"  {p.name}")
        if targets:
            lacking = [i.project_name or i.unit_name for i in idents if not i.approved]
            if lacking:
                names = "、".join(lacking)
                out.print(f"注意：绩效目标文件中没有以下 {len(lacking)} 个单位（项目）的指标，其模板未预填：{names}")
        return
    if not blank:
        if not unit:
            raise XlsxKpiError("请用 --unit 指定单位名称（或用 --units 指定单位清单，或加 --blank 生成空白模板）")
        if not code:
            raise XlsxKpiError("请用 --code 指定预算单位编码")
        if is_project and not project:
            raise XlsxKpiError("项目支出表请用 --project 指定项目名称")
    if approved and not code:
        raise XlsxKpiError("使用 --targets 时请用 --code 指定预算单位编码（按编码取该单位的批复指标）")
    ident = Identity(
        year=the_year,
        unit_name=unit or "",
        unit_code=code or "",
        project_name=project or "",
        project_type=project_type or "",
        contact=contact or "",
    )
    ident = shaped(catalog, wb, ident, sizes, approved, targets_file=where)
    if targets and not ident.approved:
        raise XlsxKpiError(f"绩效目标文件中没有预算单位编码 {code} 的指标", file=str(targets))
    path = output or out_dir / template_filename(wb, ident)
    if path.suffix.lower() != ".xlsx":
        raise XlsxKpiError("输出文件名须以 .xlsx 结尾", file=str(path))
    write_template(build_layout(catalog, wb, ident), path, password=password, force=force)
    out.print(f"已生成模板：{path}")


@app.command("build-templates")
def build_templates_cmd(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="输出文件夹")] = Path("templates"),
    year: Annotated[str | None, typer.Option("--year", "-y", help="模板年度（默认上一年）")] = None,
    sheets: SpecsDir = None,
) -> None:
    """由 sheets/ 重新生成 templates/ 中的空白模板（每个表种一个，覆盖旧文件）。"""
    from xlsx_kpi.formats.layout import Identity, build_layout
    from xlsx_kpi.outputs.template import write_template

    catalog = _catalog(sheets)
    the_year = _year(year)
    for wb in catalog.workbooks.values():
        path = out_dir / f"{wb.id}.xlsx"
        write_template(build_layout(catalog, wb, Identity(year=the_year)), path, force=True)
        out.print(f"已生成：{path}")


@app.command("check")
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
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from xlsx_kpi.batch.check import Options, audit_paths, check_paths, cross_check, current_submissions, find_workbooks
    from xlsx_kpi.selfreport.check import find_reports, report_alone, report_titles, unmatched_reports
    from xlsx_kpi.store.history import History

    catalog = _catalog(sheets)
    docs = find_reports(paths, report_docs or [])
    workbooks = find_workbooks([p for p in paths if p.suffix.lower() != ".docx"], skip=[out_dir] if out_dir else [])
    files, resubmitted = current_submissions(workbooks)
    if not files and not docs:
        given = "、".join(str(p) for p in paths)
        raise XlsxKpiError(
            f"在 {given} 中没有找到要审核的 .xlsx 文件（Excel 的 ~$ 锁文件和本工具刚生成、未经修改的审核副本不审核）"
        )
    titled, unreadable = report_titles(docs)
    options = Options(
        out_dir=out_dir,
        annotate=not no_annotate,
        force=force,
        reports=tuple(titled),
        match_any=bool(report_docs) and len(files) == 1 and len(titled) == 1,
    )
    history = History(db, readonly=True) if db is not None else None
    if as_json and as_jsonl:
        raise XlsxKpiError("--json 与 --jsonl 只能选一个")
    console = err if as_json or as_jsonl else out
    # With --json each file's report is written as it comes and only its summary row is kept (flat memory);
    # without, up to three files' findings are printed at the end.
    stream = JsonFiles(sys.stdout) if as_json else JsonLines(sys.stdout) if as_jsonl else None
    keep = stream is None and len(files) <= 3

    def done(report: Report) -> None:
        if stream is not None:
            stream.add(report)
        bar.advance(task)

    with Progress(
        TextColumn("审核"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=_real(err),
        transient=True,
        disable=len(files) < 2,
    ) as bar:
        task = bar.add_task("check", total=len(files))
        n_workers = workers or (os.cpu_count() or 1)
        cross: list[CrossFinding] = []
        run: dict[str, Any] = {
            "workers": n_workers,
            "sheets": sheets,
            "progress": done,
            "history": history,
            "keep_findings": keep,
        }
        if any(p.is_dir() for p in paths):
            # A folder holds a unit's workbooks together: check them against each other too (跨表).
            checked = audit_paths(files, catalog, options, **run)
            reports = [c.report for c in checked]
            cross = cross_check(checked, catalog)
        else:
            reports = check_paths(files, catalog, options, **run)
    extra = unreadable + [
        report_alone(p)
        for p in unmatched_reports(titled, reports, lambda w: catalog.workbook(w).kind, options.match_any)
    ]
    if stream is not None:
        for r in extra:
            stream.add(r)
        reports += [r.summary() for r in extra]
        stream.finish(reports, cross, resubmitted)
    else:
        reports += extra
        if len(reports) <= 3:
            for r in reports:
                _print_findings(console, r, verbose=verbose)
    _print_summary(console, reports)
    _print_cross(console, cross)
    _print_resubmitted(console, resubmitted)
    cross_errors = any(c.finding.severity is Severity.ERROR for c in cross)
    raise typer.Exit(max([r.exit_code for r in reports] + [1 if cross_errors else 0]))


def _print_resubmitted(console: Console, groups: list[Resubmission]) -> None:
    for g in groups:
        names = "、".join(p.name for p in g.older)
        console.print(f"重复报送：采用最新保存的 {g.used.name}，未审核较早的 {names}", markup=False)


@app.command("collect")
def collect_cmd(
    folder: Annotated[Path, typer.Argument(help="回收工作簿所在的文件夹（含子文件夹）", show_default=False)],
    units: Annotated[
        Path | None, typer.Option("--units", help="单位清单 .xlsx/.csv（与 template --units 相同），用于列出未报送单位")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="汇总工作簿")] = Path("汇总.xlsx"),
    db: Annotated[Path | None, typer.Option("--db", help=f"历史数据库（默认为文件夹中的 {DB_NAME}）")] = None,
    force: Annotated[bool, typer.Option("--force", help="覆盖已存在的汇总工作簿")] = False,
    workers: Annotated[int, typer.Option("--workers", help="并行进程数（默认为 CPU 核数）")] = 0,
    recheck: Annotated[
        bool,
        typer.Option(
            "--recheck", help="重新审核全部文件（默认：历史数据库中已有、且由同一版本审核过的同一文件不再重读）"
        ),
    ] = False,
    sheets: SpecsDir = None,
) -> None:
    """汇总文件夹中回收的工作簿：逐个审核（同 check），写出汇总工作簿，并存入历史数据库。"""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from xlsx_kpi.batch.collect import collect, write_summary
    from xlsx_kpi.store.history import History

    catalog = _catalog(sheets)
    if not folder.is_dir():
        raise XlsxKpiError("请指定存放回收工作簿的文件夹", file=str(folder))
    if output.exists() and not force:
        raise OutputExistsError("文件已存在；如需覆盖请加 --force", file=str(output))
    db_path = db or folder / DB_NAME
    with (
        History(db_path) as history,
        Progress(
            TextColumn("汇总"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=_real(err),
            transient=True,
        ) as bar,
    ):
        task = bar.add_task("collect", total=None)
        collection = collect(
            [folder],
            catalog,
            units=units,
            history=history,
            exclude=[output],
            workers=workers or (os.cpu_count() or 1),
            sheets=sheets,
            progress=lambda _: bar.advance(task),
            recheck=recheck,
        )
        write_summary(collection, output, force=force)
    _print_collection(collection, output, db_path)
    raise typer.Exit(collection.exit_code)


@app.command("history")
def history_cmd(
    unit: Annotated[str | None, typer.Option("--unit", "-u", help="预算单位编码；不指定时列出库中的全部单位")] = None,
    db: Annotated[Path, typer.Option("--db", help="历史数据库")] = Path(DB_NAME),
    as_json: Annotated[bool, typer.Option("--json", help="在标准输出打印 JSON")] = False,
    csv: Annotated[Path | None, typer.Option("--csv", help="把（该单位或全部）记录导出为 CSV 文件")] = None,
    force: Annotated[bool, typer.Option("--force", help="覆盖已存在的 CSV 文件")] = False,
) -> None:
    """历年对比：一个单位各年度的合计、等级、一级指标得分、预算执行金额和问题数量。"""
    from xlsx_kpi.formats.catalog import load_specs
    from xlsx_kpi.store.history import History, kind_totals, write_csv

    kinds = {wid: wb.kind for wid, wb in load_specs().workbooks.items()}
    if csv is not None:
        n = write_csv(db, csv, unit_code=unit, force=force, kinds=kinds)
        err.print(f"已导出 {n} 条记录：{csv}")
    with History(db, readonly=True) as history:
        if unit is None:
            records = history.records()
            if as_json:
                units = sorted({(r.unit_code, r.unit_name) for r in records})
                payload = [
                    {"unit_code": c, "unit_name": n, "years": sorted({r.year for r in records if r.unit_code == c})}
                    for c, n in units
                ]
                sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
            elif csv is None:
                _print_units(records, db)
            return
        years = history.unit_years(unit.strip())
    if not years:
        raise XlsxKpiError(f"历史数据库中没有编码为 {unit} 的单位", file=str(db))
    if as_json:
        payload_unit = {
            "unit_code": unit.strip(),
            "unit_name": years[-1].unit_name,
            "years": [r.to_json(kinds) for r in years],
            # Amounts per year and kind, never added across kinds (projects are inside the department).
            "totals": kind_totals(years, kinds),
        }
        sys.stdout.write(json.dumps(payload_unit, ensure_ascii=False, indent=2) + "\n")
    else:
        _print_history(years)


@app.command("serve")
def serve_cmd(
    host: Annotated[
        str, typer.Option("--host", help="监听地址（默认只供本机访问；办公室内共用时设为 0.0.0.0）")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="端口")] = 8765,
    data: Annotated[Path, typer.Option("--data", help="数据文件夹（数据库和上传的文件；备份时复制整个文件夹）")] = Path(
        "xlsx-kpi-data"
    ),
    units: Annotated[
        Path | None, typer.Option("--units", help="启动时载入单位清单 .xlsx/.csv（也可在“下发”页上传）")
    ] = None,
    import_dir: Annotated[
        Path | None, typer.Option("--import", help="启动时把文件夹中的工作簿作为一批报送导入并审核（已导入的跳过）")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="审核进程数（默认 2）")] = 2,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url", help="单位报送链接使用的地址，如 http://192.168.1.20:8765（默认为审核人浏览器所用的地址）"
        ),
    ] = None,
    reset_password: Annotated[
        bool, typer.Option("--reset-password", help="忘记密码时使用：清除审核人密码，启动后用新的设置码重新设置")
    ] = False,
    ssl_certfile: Annotated[Path | None, typer.Option("--ssl-certfile", help="HTTPS 证书文件（可选）")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option("--ssl-keyfile", help="HTTPS 私钥文件（可选）")] = None,
    sheets: SpecsDir = None,
) -> None:
    """启动网页版：审核人在浏览器中下发模板、回收审核、汇总；各单位通过私人链接上传并查看审核结果。"""
    import socket

    import uvicorn

    from xlsx_kpi.web import clear_password, create_app, import_folder, load_unit_list

    if not 1 <= port <= 65535:
        raise XlsxKpiError(f"端口 {port} 无效，应在 1–65535 之间")
    if public_url is not None and not public_url.startswith(("http://", "https://")):
        raise XlsxKpiError(f"--public-url 应以 http:// 或 https:// 开头，如 http://192.168.1.20:{port}")
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise XlsxKpiError("使用 HTTPS 时须同时指定 --ssl-certfile 和 --ssl-keyfile")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            raise XlsxKpiError(
                f"无法在 {host}:{port} 上启动（{e.strerror}）；端口可能已被占用，请用 --port 换一个"
            ) from None
    if reset_password:
        clear_password(data)
    try:
        web_app = create_app(
            data,
            workers=max(1, workers),
            sheets=sheets,
            secure_cookies=ssl_certfile is not None,
            public_url=public_url,
        )
    except OSError as e:
        raise XlsxKpiError(f"无法使用数据文件夹：{os_reason(e)}", file=str(data)) from None
    web = web_app.state.web
    if units is not None:
        if not units.is_file():
            raise XlsxKpiError("单位清单文件不存在，请检查路径", file=str(units))
        n = load_unit_list(web.store, units.read_bytes(), units.name, "服务器启动")
        out.print(f"已载入单位清单：{units}（{n} 行）", markup=False)
    if import_dir is not None:
        n = import_folder(web.store, None, import_dir)
        out.print(f"已导入 {n} 个工作簿（{import_dir}），启动后自动审核", markup=False)
    scheme = "https" if ssl_certfile else "http"
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    out.print(f"xlsx-kpi 网页版：{scheme}://{shown}:{port}/    数据文件夹：{data.resolve()}", markup=False)
    if host in ("0.0.0.0", "::"):
        out.print(f"其他电脑用本机的局域网地址访问，如 {scheme}://<本机IP>:{port}/", markup=False)
    if web.setup_code:
        out.print(f"首次使用：在浏览器中打开上面的地址，输入设置码 {web.setup_code} 并设置审核人密码", markup=False)
    out.print("按 Ctrl+C 停止", markup=False)
    uvicorn.run(
        web_app,
        host=host,
        port=port,
        log_level="warning",
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )


@app.command("report")
def report_cmd(
    workbook: Annotated[Path, typer.Argument(help="已审核的部门整体或项目支出工作簿 .xlsx", show_default=False)],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="输出的自评报告 .docx（默认：工作簿名_自评报告.docx）")
    ] = None,
    outline: Annotated[
        Path | None,
        typer.Option("--outline", help="报告提纲 .yaml（默认使用内置的 sheets/reports/report-outline-*.yaml）"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="覆盖已存在的报告文件")] = False,
    sheets: SpecsDir = None,
) -> None:
    """按提纲起草自评报告（.docx）：金额、比率、得分、等级、指标完成情况取自工作簿的重新计算值，其余留出【请填写】。"""
    from xlsx_kpi.batch.check import Options, check_file
    from xlsx_kpi.selfreport.draft import write_draft

    catalog = _catalog(sheets)
    out_path = output or workbook.with_name(f"{workbook.stem}_自评报告.docx")
    checked = check_file(workbook, catalog, Options(annotate=False))
    if checked.error:
        raise XlsxKpiError(checked.error)
    draft = write_draft(workbook, out_path, catalog, outline_path=outline, sheets=sheets, force=force)
    out.print(f"已起草自评报告：{out_path}", markup=False)
    out.print(f"  待填写处 {draft.fill_count} 个（黄色底纹的“【请填写：…】”），请补充后再报送。", markup=False)
    errors = checked.counts["错误"]
    if errors:
        out.print(
            f"  注意：工作簿审核发现 {errors} 个错误，报告中的数字按重新计算值填写；"
            "请先运行 xlsx-kpi check 改正工作簿。",
            markup=False,
        )


@app.command("rules")
def rules_cmd() -> None:
    """列出全部审核规则（代码、级别、名称、说明），即 docs/RULES.md 的内容。"""
    from xlsx_kpi.audit.rules.base import catalogue

    sys.stdout.write(catalogue())


def cross_json(c: CrossFinding) -> dict[str, object]:
    f = c.finding
    return {
        "unit_name": c.unit_name,
        "unit_code": c.unit_code,
        "year": c.year,
        **finding_fields(f),
        "places": [{"file": str(p.file), "sheet": p.sheet, "cell": p.cell, "label": p.label} for p in c.places],
    }


def batch_json(
    reports: list[Report], cross: list[CrossFinding] | None = None, resubmitted: Sequence[Resubmission] = ()
) -> dict[str, object]:
    return {"files": [r.to_json() for r in reports], **_batch_rest(reports, cross, resubmitted)}


class JsonFiles:
    """check --json written as it comes: byte for byte json.dumps(batch_json(...), ensure_ascii=False, indent=2).

    add() writes one file's report (findings and all) into the "files" list; finish() closes it and writes
    the rest from the reports' summaries, so a batch of any size never holds the whole document.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.count = 0

    def add(self, report: Report) -> None:
        # json.dumps escapes newlines inside strings: every "\n" in its output starts a line to indent.
        text = json.dumps(report.to_json(), ensure_ascii=False, indent=2).replace("\n", "\n    ")
        self.stream.write(('{\n  "files": [\n    ' if self.count == 0 else ",\n    ") + text)
        self.count += 1

    def finish(
        self, reports: list[Report], cross: list[CrossFinding], resubmitted: Sequence[Resubmission] = ()
    ) -> None:
        rest = json.dumps(_batch_rest(reports, cross, resubmitted), ensure_ascii=False, indent=2)
        self.stream.write(('{\n  "files": [],\n' if self.count == 0 else "\n  ],\n") + rest[2:] + "\n")
        self.stream.flush()


class JsonLines(JsonFiles):
    """check --jsonl: one line per file (its report as in --json), then one line with cross, resubmitted,
    summary and exit_code (the only line with a "summary" key)."""

    def add(self, report: Report) -> None:
        self.stream.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")
        self.stream.flush()
        self.count += 1

    def finish(
        self, reports: list[Report], cross: list[CrossFinding], resubmitted: Sequence[Resubmission] = ()
    ) -> None:
        self.stream.write(json.dumps(_batch_rest(reports, cross, resubmitted), ensure_ascii=False) + "\n")
        self.stream.flush()


def _batch_rest(
    reports: list[Report], cross: list[CrossFinding] | None, resubmitted: Sequence[Resubmission]
) -> dict[str, object]:
    """Everything of batch_json but the files (their summaries suffice)."""
    cross = cross or []
    return {
        "cross": [cross_json(c) for c in cross],
        "resubmitted": [{"used": str(g.used), "older": [str(p) for p in g.older]} for g in resubmitted],
        "summary": {
            "files": len(reports),
            "unusable": sum(1 for r in reports if not r.usable),
            "错误": sum(r.counts["错误"] for r in reports),
            "警告": sum(r.counts["警告"] for r in reports),
            "提示": sum(r.counts["提示"] for r in reports),
        },
        "exit_code": max(
            [r.exit_code for r in reports] + [1 for c in cross if c.finding.severity is Severity.ERROR], default=0
        ),
    }


def _print_cross(console: Console, cross: list[CrossFinding]) -> None:
    """Findings across the workbooks of one unit, each with every file and cell it involves."""
    if not cross:
        return
    console.print("\n跨表检查（同一单位、同一年度的多个工作簿之间）：")
    for n, c in enumerate(cross, start=1):
        f = c.finding
        console.print(
            f"  {n}. [{f.severity.value}] {c.unit_name}（{c.unit_code}）{f.title}（{f.code}）：{f.message}",
            markup=False,
        )
        console.print(f"     填报值 {f.actual}；应为 {f.expected}", markup=False)
        for p in c.places:
            console.print(f"     {p.file.name} {p.sheet}!{p.cell}（{p.label}）", markup=False)


def _print_findings(console: Console, report: Report, *, verbose: bool = False) -> None:
    """错误 and 警告 one per line (every finding with --verbose); 提示 counted, and the typed-over formulas."""
    if not report.usable:
        return
    console.print(f"\n{report.file}（{report.unit_name}）")
    shown = [f for f in report.findings if verbose or f.severity is not Severity.INFO]
    for n, f in enumerate(shown, start=1):
        mark = "（已说明）" if f.explained else ""
        figures = f"〔填报 {f.actual}；应为 {f.expected}〕" if f.actual or f.expected else ""
        console.print(
            f"  {n}. [{f.severity.value}{mark}] {f.where} {f.title}（{f.code}）：{f.message}{figures}", markup=False
        )
    hidden = len(report.findings) - len(shown)
    if hidden:
        console.print(
            f"  另有 {hidden} 条提示（供审核人参考），加 --verbose 逐条列出，或见“_审核.xlsx”的审核结果表", markup=False
        )
    if report.replaced:
        console.print(f"  {REPLACED_LABEL}：{replaced_text(report.replaced)}", markup=False)
    if not report.findings:
        console.print("  未发现问题")


def _print_summary(console: Console, reports: list[Report]) -> None:
    from rich.table import Table

    table = Table(title="审核汇总", show_lines=False)
    for col in ("文件", "单位", "合计", "等级", "错误", "警告", "已说明", "提示", "结论"):
        table.add_column(col, overflow="fold")
    for r in reports:
        c = r.counts
        table.add_row(
            printable(r.file.name),
            r.unit_name,
            "" if r.total is None else f"{r.total:.2f}",
            r.grade,
            str(c["错误"]),
            str(c["警告"]),
            str(c["已说明"]),
            str(c["提示"]),
            r.status,
        )
    console.print(table)
    for r in reports:
        if r.error:
            console.print(f"无法读取：{printable(r.error)}", markup=False)
        if r.output_error:
            console.print(f"未生成审核文件：{printable(r.output_error)}", markup=False)
        elif r.annotated:
            console.print(f"审核文件：{printable(str(r.annotated))}", markup=False)


def _print_collection(c: Collection, output: Path, db: Path) -> None:
    from rich.table import Table

    table = Table(title="汇总", show_lines=False)
    for col in ("单位", "编码", "年度", "项目", "合计", "等级", "错误", "警告", "提示"):
        table.add_column(col, overflow="fold")
    for s in c.submissions:
        r = s.report
        counts = r.counts
        table.add_row(
            r.unit_name,
            r.unit_code,
            r.year,
            r.project_name,
            "" if r.total is None else f"{r.total:.2f}",
            r.grade,
            str(counts["错误"]),
            str(counts["警告"]),
            str(counts["提示"]),
        )
    out.print(table)
    for row in c.missing:
        out.print(f"未报送：{row.unit_code} {row.unit_name} {row.project_name}".rstrip(), markup=False)
    for group in c.duplicates:
        names = "、".join(s.file.name for s in group[1:])
        out.print(f"重复报送：采用 {group[0].file.name}，未采用 {names}", markup=False)
    for r in c.unusable:
        out.print(f"无法读取：{printable(r.error or '')}", markup=False)
    _print_cross(out, c.cross)
    out.print(
        f"采用 {len(c.submissions)} 份，错误 {c.errors} 条；历史数据库 {db}：新存入 {c.stored} 份，"
        f"已有 {c.already_stored} 份",
        markup=False,
    )
    out.print(f"汇总工作簿：{output}", markup=False)


def _print_units(records: list[Record], db: Path) -> None:
    from rich.table import Table

    table = Table(title=f"历史数据库 {db}", show_lines=False)
    for col in ("编码", "单位", "年度", "份数"):
        table.add_column(col, overflow="fold")
    by_unit: dict[str, list[Record]] = {}
    for r in records:
        by_unit.setdefault(r.unit_code, []).append(r)
    for code, rs in by_unit.items():
        table.add_row(code, rs[-1].unit_name, "、".join(str(y) for y in sorted({r.year for r in rs})), str(len(rs)))
    out.print(table)


def _print_history(records: list[Record]) -> None:
    """Years side by side: one column per year (and kind/project), one row per figure."""
    from rich.table import Table

    from xlsx_kpi.store.history import FIGURES

    first = records[-1]
    table = Table(title=f"{first.unit_code} {first.unit_name} 历年自评", show_lines=False)
    table.add_column("")
    for r in records:
        kind = "项目" if r.project_name else ("部门" if "department" in r.workbook_id else r.workbook_id)
        table.add_column(f"{r.year}\n{r.project_name or kind}", justify="right", overflow="fold")

    def show(r: Record, key: str, fmt: str) -> str:
        v = r.values.get(key)
        if v is None or v == "":
            return ""
        if not isinstance(v, Decimal):
            return str(v)
        if fmt == "rate":
            return f"{v * 100:.2f}%"
        return f"{v:,.2f}" if fmt == "amount" else f"{v:.2f}"

    for f in FIGURES:
        if all(r.values.get(f.key) is None for r in records):
            continue
        table.add_row(f.label, *[show(r, f.key, f.fmt) for r in records])
        if f.id == "total":
            table.add_row("等级", *[r.grade for r in records])
    for name in ("错误", "警告", "已说明", "提示"):
        table.add_row(name, *[str(r.counts[name]) for r in records])
    table.add_row("文件", *[r.file_name for r in records])
    out.print(table)


def main(argv: list[str] | None = None) -> int:
    """Entry point: Chinese messages and exit code 2 for every usage or input error, never a traceback."""
    args = sys.argv[1:] if argv is None else argv
    for stream in (sys.stdout, sys.stderr):
        # A file name that is not UTF-8 (GBK bytes from a Windows zip) is held as lone surrogates: printed
        # as \udcxx escapes, which inside a JSON string are valid escapes that decode to the same name.
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    try:
        # Without standalone mode, an Exit(code) raised by a command comes back as the return value.
        result = app(args=args or ["--help"], standalone_mode=False, prog_name="xlsx-kpi")
        if isinstance(result, int):
            return result
    except XlsxKpiError as e:
        err.print(f"错误：{e.render()}")
        return e.exit_code
    except typer.Abort:
        err.print("已取消")
        return 2
    except typer.Exit as e:
        return int(e.exit_code)
    except Exception as e:
        # Usage errors come from the click layer (vendored in newer typer): recognise them by shape.
        if getattr(e, "exit_code", None) == 2 and hasattr(e, "format_message"):
            name = getattr(e, "option_name", None)
            text = f"没有选项 {name}" if type(e).__name__ == "NoSuchOption" and name else e.format_message()
            err.print(f"参数错误：{text}；运行 xlsx-kpi --help 查看用法")
            return 2
        if type(e).__name__ in ("Exit",) and hasattr(e, "exit_code"):
            return int(e.exit_code)
        raise
    except KeyboardInterrupt:
        err.print("已中断")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
