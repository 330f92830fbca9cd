"""The library API: everything the command line and the web app do, as Python calls (README "作为 Python 库使用").

The front ends (`xlsx_kpi.cli`, `xlsx_kpi.web`) import from the package only this module, `xlsx_kpi.errors`,
`xlsx_kpi.safe_text` and the version (tests/test_imports.py). Importing it is cheap: the stages (openpyxl,
xlsxwriter, pandas, pydantic, python-docx) load inside the function that needs them, so `xlsx-kpi --help`
and checking one workbook do not wait for what they do not use (issue 14).

A typical round, in the order the CLI runs it::

    catalog = load_catalog()
    make_template(catalog, workbook_spec(catalog, kind="project"), make_identity(2025, "某单位", "101001",
                  project_name="某项目"), Path("模板.xlsx"))
    report = check_file(Path("回收/某单位.xlsx"))          # a Report: findings, counts, exit_code
    write_summary(collect(Path("回收")), Path("汇总.xlsx"))  # and the history database 回收/xlsx-kpi.sqlite
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from xlsx_kpi.audit.checked import Checked
from xlsx_kpi.audit.figures import FIGURES, Figure
from xlsx_kpi.audit.findings import Finding, Severity, finding_fields
from xlsx_kpi.audit.report import REPLACED_LABEL, Report, replaced_text
from xlsx_kpi.errors import OutputExistsError, XlsxKpiError
from xlsx_kpi.formats.units import (
    PROJECT_TYPES,
    TargetRow,
    UnitRow,
    parse_rows,
    read_targets,
    read_units,
    safe_filename,
)
from xlsx_kpi.store.encoding import decode_value, encode_value
from xlsx_kpi.store.history import DB_NAME, History
from xlsx_kpi.store.records import Record, kind_totals

if TYPE_CHECKING:
    # The types of what the functions below return, for annotations (`from xlsx_kpi.api import Catalog` under
    # TYPE_CHECKING): importing them at run time would load the stages this module keeps lazy.
    from xlsx_kpi.audit.collection import Collection as Collection
    from xlsx_kpi.audit.rules.crossfile import CrossFinding as CrossFinding
    from xlsx_kpi.batch.check import Resubmission as Resubmission
    from xlsx_kpi.formats.plan import Identity as Identity
    from xlsx_kpi.formats.spec import Catalog as Catalog
    from xlsx_kpi.formats.spec import WorkbookSpec as WorkbookSpec

__all__ = [
    "DB_NAME",
    "FIGURES",
    "PROJECT_TYPES",
    "REPLACED_LABEL",
    "CheckInputs",
    "CheckRun",
    "Checked",
    "Draft",
    "Figure",
    "Finding",
    "History",
    "Record",
    "Report",
    "Severity",
    "TargetRow",
    "UnitRow",
    "annotated_name",
    "audit_file",
    "build_templates",
    "can_isolate",
    "check_file",
    "check_inputs",
    "check_loadable",
    "check_paths",
    "check_report",
    "check_template_names",
    "checked_from_figures",
    "collect",
    "cross_check",
    "draft_report",
    "export_history_csv",
    "figures_of",
    "find_inputs",
    "find_workbooks",
    "finding_contexts",
    "finding_fields",
    "history_kinds",
    "kind_label",
    "kind_labels",
    "kind_totals",
    "list_rules",
    "load_catalog",
    "make_identity",
    "make_template",
    "make_templates",
    "open_history",
    "parse_rows",
    "read_targets",
    "read_units",
    "replaced_text",
    "run_isolated",
    "safe_filename",
    "shape_identity",
    "store_submission",
    "template_filename",
    "unit_records",
    "unit_years",
    "update_summary",
    "workbook_spec",
    "write_summary",
    "zip_member_limit",
]

T = TypeVar("T")

KIND_ALIASES = {
    "department": "department",
    "部门": "department",
    "部门整体": "department",
    "project": "project",
    "项目": "project",
    "项目支出": "project",
}


# --- the formats ---------------------------------------------------------------------------------------------


def load_catalog(sheets: Path | None = None) -> Catalog:
    """The validated table specs of a sheets/ folder (default: the built-in one), from the cache when unchanged."""
    from xlsx_kpi.formats.catalog import load_specs

    return load_specs(sheets)


def _catalog(catalog: Catalog | None, sheets: Path | None) -> Catalog:
    return catalog if catalog is not None else load_catalog(sheets)


def workbook_spec(catalog: Catalog, kind: str | None = None, spec: str | None = None) -> WorkbookSpec:
    """The workbook spec chosen by id (`spec`, e.g. "sc-project") or by kind ("department"/"部门", "project"/"项目")."""
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


def kind_labels() -> dict[str, str]:
    """Workbook kind -> its Chinese name ("department" -> "部门整体"), as the summary workbook writes it."""
    from xlsx_kpi.audit.collection import KIND_LABELS

    return dict(KIND_LABELS)


def kind_label(catalog: Catalog, workbook_id: str) -> str:
    """The Chinese kind name of a workbook spec id ("" for an id the catalog does not know)."""
    wb = catalog.workbooks.get(workbook_id)
    return kind_labels().get(wb.kind, wb.kind) if wb is not None else ""


def list_rules() -> str:
    """Every audit rule (code, severity, name, description) as Markdown: the text of docs/RULES.md."""
    from xlsx_kpi.audit.rules.base import catalogue

    return catalogue()


# --- templates -----------------------------------------------------------------------------------------------


def make_identity(
    year: int,
    unit_name: str = "",
    unit_code: str = "",
    *,
    project_name: str = "",
    project_type: str = "",
    contact: str = "",
) -> Identity:
    """Who a template is for (blank names: a blank template); recognised again when the workbook comes back."""
    from xlsx_kpi.formats.plan import Identity

    return Identity(
        year=year,
        unit_name=unit_name,
        unit_code=unit_code,
        project_name=project_name,
        project_type=project_type,
        contact=contact,
    )


def shape_identity(
    catalog: Catalog,
    wb: WorkbookSpec,
    identity: Identity,
    rows: list[tuple[str, int]] | None = None,
    targets: list[TargetRow] | None = None,
    *,
    rows_from: str = "--rows",
    targets_file: str = "",
) -> Identity:
    """The identity with its indicator groups' row counts (parse_rows) and the unit's approved targets
    (read_targets, matched by unit code and project) applied; `rows_from`/`targets_file` name them in messages."""
    from xlsx_kpi.outputs.template import shaped

    return shaped(catalog, wb, identity, rows, targets, rows_from=rows_from, targets_file=targets_file)


def template_filename(wb: WorkbookSpec, identity: Identity) -> str:
    """The file name a unit's template gets: year, code, unit, (project,) table name."""
    from xlsx_kpi.outputs.template import template_filename as name

    return name(wb, identity)


def check_template_names(wb: WorkbookSpec, identities: list[Identity], out_dir: Path) -> list[Path]:
    """The paths a batch of templates will take; refuses two units that would get the same file name."""
    from xlsx_kpi.outputs.template import check_batch_names

    return check_batch_names(wb, identities, out_dir)


def make_template(
    catalog: Catalog,
    wb: WorkbookSpec,
    identity: Identity,
    path: Path,
    *,
    password: str | None = None,
    force: bool = False,
) -> Path:
    """Write one template (.xlsx) for `identity`; an existing file is kept unless `force`."""
    from xlsx_kpi.formats.layout import build_layout
    from xlsx_kpi.outputs.template import write_template

    write_template(build_layout(catalog, wb, identity), path, password=password, force=force)
    return path


def make_templates(
    catalog: Catalog,
    wb: WorkbookSpec,
    identities: list[Identity],
    out_dir: Path,
    *,
    password: str | None = None,
    force: bool = False,
) -> list[Path]:
    """One template per identity in `out_dir` (all or none: written to a hidden folder first)."""
    from xlsx_kpi.outputs.template import generate

    return generate(catalog, wb, identities, out_dir, password=password, force=force)


def build_templates(out_dir: Path, year: int, sheets: Path | None = None) -> list[Path]:
    """The blank template of every workbook spec, `<spec id>.xlsx` in `out_dir` (overwritten): templates/."""
    catalog = load_catalog(sheets)
    return [
        make_template(catalog, wb, make_identity(year), out_dir / f"{wb.id}.xlsx", force=True)
        for wb in catalog.workbooks.values()
    ]


# --- checking ------------------------------------------------------------------------------------------------


@dataclass
class CheckInputs:
    """What `find_inputs` found to check: the workbooks, the 自评报告 .docx files and what it set aside."""

    workbooks: list[Path]
    resubmitted: list[Resubmission]  # a unit's original and returned copies: which was used
    titled: list[tuple[Path, str]]  # readable .docx reports and their titles
    unreadable: list[Report]  # .docx reports that could not be read
    match_any: bool  # one workbook and one --report: they belong together whatever the title
    folder: bool  # a folder was given: its workbooks are also checked against each other (跨表)


@dataclass
class CheckRun:
    """The outcome of `check_inputs`: a report per workbook (in input order), the cross-workbook findings,
    the resubmissions set aside and the reports on .docx files that no workbook took."""

    reports: list[Report]
    cross: list[CrossFinding] = field(default_factory=list)
    resubmitted: list[Resubmission] = field(default_factory=list)
    documents: list[Report] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 no 错误, 1 错误 found (in a file or across files), 2 a file could not be read at all."""
        cross = [1 for c in self.cross if c.finding.severity is Severity.ERROR]
        return max([r.exit_code for r in self.reports + self.documents] + cross, default=0)


def find_workbooks(paths: Iterable[Path], *, skip: Iterable[Path] = ()) -> list[Path]:
    """Files as given and every .xlsx under a folder, without Excel lock files and this tool's own outputs."""
    from xlsx_kpi.batch.check import find_workbooks as find

    return find(paths, skip=skip)


def find_inputs(paths: Sequence[Path], reports: Sequence[Path] = (), *, skip: Iterable[Path] = ()) -> CheckInputs:
    """The workbooks and 自评报告 (.docx) to check among `paths` (files or folders) and the explicit `reports`.

    Of a unit's original and its returned annotated copies in one folder only the newest is checked. Raises
    XlsxKpiError when there is nothing to check.
    """
    from xlsx_kpi.batch.check import current_submissions

    paths = list(paths)
    docs: list[Path] = []
    if reports or any(p.is_dir() or p.suffix.lower() == ".docx" for p in paths):
        # Only then can there be a report: checking workbooks alone does not load the report reader (issue 14).
        from xlsx_kpi.selfreport.check import find_reports

        docs = find_reports(paths, list(reports))
    workbooks = find_workbooks([p for p in paths if p.suffix.lower() != ".docx"], skip=skip)
    files, resubmitted = current_submissions(workbooks)
    if not files and not docs:
        given = "、".join(str(p) for p in paths)
        raise XlsxKpiError(
            f"在 {given} 中没有找到要审核的 .xlsx 文件（Excel 的 ~$ 锁文件和本工具刚生成、未经修改的审核副本不审核）"
        )
    titled: list[tuple[Path, str]] = []
    unreadable: list[Report] = []
    if docs:
        from xlsx_kpi.selfreport.check import report_titles

        titled, unreadable = report_titles(docs)
    return CheckInputs(
        workbooks=files,
        resubmitted=resubmitted,
        titled=titled,
        unreadable=unreadable,
        match_any=bool(reports) and len(files) == 1 and len(titled) == 1,
        folder=any(p.is_dir() for p in paths),
    )


def check_inputs(
    inputs: CheckInputs,
    catalog: Catalog | None = None,
    *,
    out_dir: Path | None = None,
    annotate: bool = True,
    force: bool = False,
    workers: int = 1,
    db: Path | None = None,
    sheets: Path | None = None,
    progress: Callable[[Report], None] | None = None,
    keep_findings: bool = True,
) -> CheckRun:
    """Check what find_inputs found, as `xlsx-kpi check` does: recalculate, run every rule and (with `annotate`)
    write each `<name>_审核.xlsx` into `out_dir` (default: beside the input; never over a file unless `force`).

    `workers` > 1 checks in that many processes; `db` is a history database read for last year's figures
    (never written); `progress` sees each file's full report as it is done. With keep_findings=False the
    returned reports are summaries (counts, no findings): memory stays flat over any number of files.
    """
    from xlsx_kpi.batch.check import Options, audit_paths, check_paths
    from xlsx_kpi.batch.check import cross_check as cross_files

    catalog = _catalog(catalog, sheets)
    options = Options(
        out_dir=out_dir,
        annotate=annotate,
        force=force,
        reports=tuple(inputs.titled),
        match_any=inputs.match_any,
    )
    history = History(db, readonly=True) if db is not None else None
    run: dict[str, Any] = {
        "workers": workers,
        "sheets": sheets,
        "progress": progress,
        "history": history,
        "keep_findings": keep_findings,
    }
    cross: list[CrossFinding] = []
    try:
        if inputs.folder:
            # A folder holds a unit's workbooks together: check them against each other too (跨表).
            checked = audit_paths(inputs.workbooks, catalog, options, **run)
            reports = [c.report for c in checked]
            cross = cross_files(checked, catalog)
        else:
            reports = check_paths(inputs.workbooks, catalog, options, **run)
    finally:
        if history is not None:
            history.close()
    documents = list(inputs.unreadable)
    if inputs.titled:
        from xlsx_kpi.selfreport.check import report_alone, unmatched_reports

        alone = unmatched_reports(inputs.titled, reports, lambda w: catalog.workbook(w).kind, options.match_any)
        documents += [report_alone(p) for p in alone]
    return CheckRun(reports, cross, list(inputs.resubmitted), documents)


def check_paths(
    paths: Sequence[Path],
    catalog: Catalog | None = None,
    *,
    reports: Sequence[Path] = (),
    out_dir: Path | None = None,
    annotate: bool = True,
    force: bool = False,
    workers: int = 1,
    db: Path | None = None,
    sheets: Path | None = None,
) -> CheckRun:
    """find_inputs then check_inputs: check files and folders (and 自评报告 .docx) in one call."""
    skip = [out_dir] if out_dir else []
    return check_inputs(
        find_inputs(paths, reports, skip=skip),
        catalog,
        out_dir=out_dir,
        annotate=annotate,
        force=force,
        workers=workers,
        db=db,
        sheets=sheets,
    )


def check_file(
    path: Path,
    catalog: Catalog | None = None,
    *,
    out_dir: Path | None = None,
    annotate: bool = True,
    force: bool = False,
    history: History | None = None,
) -> Report:
    """Check one workbook; never raises: an unusable file gives a report with `error` set (exit_code 2).

    With `annotate`, `<name>_审核.xlsx` is written into `out_dir` (default: beside the input) and named by
    `report.annotated`. With a `history` (open_history), last year's stored figures are compared.
    """
    return audit_file(path, catalog, out_dir=out_dir, annotate=annotate, force=force, history=history).report


def audit_file(
    path: Path,
    catalog: Catalog | None = None,
    *,
    out_dir: Path | None = None,
    annotate: bool = False,
    force: bool = False,
    history: History | None = None,
) -> Checked:
    """check_file keeping the workbook's inputs and recalculated figures (for cross_check and the history)."""
    from xlsx_kpi.batch.check import Options
    from xlsx_kpi.batch.check import audit_file as audit

    options = Options(out_dir=out_dir, annotate=annotate, force=force)
    return audit(path, _catalog(catalog, None), options, history=history)


def cross_check(checked: Iterable[Checked], catalog: Catalog) -> list[CrossFinding]:
    """The cross-workbook rules (one unit's department and project workbooks of one year) over `checked`."""
    from xlsx_kpi.batch.check import cross_check as cross

    return cross(checked, catalog)


def figures_of(checked: Checked) -> dict[str, Any]:
    """A checked workbook's figures as JSON-ready data (the web app stores them); checked_from_figures reads it."""
    return {
        "values": {k: e for k, v in checked.values.items() if (e := encode_value(v)) is not None},
        "places": checked.places,
    }


def checked_from_figures(report: Report, figures: Mapping[str, Any]) -> Checked:
    """A Checked rebuilt from figures_of's data, enough for cross_check without reading the file again."""
    values = {k: decode_value(v) for k, v in figures.get("values", {}).items()}
    places = {k: (p[0], p[1], p[2]) for k, p in figures.get("places", {}).items()}
    return Checked(report, values=values, places=places)


def check_report(document: Path) -> Report:
    """Check a 自评报告 .docx on its own (its internal arithmetic); with its workbook, check_inputs does more."""
    from xlsx_kpi.selfreport.check import report_alone

    return report_alone(document)


def check_loadable(path: Path) -> None:
    """Raise XlsxKpiError unless `path` is an .xlsx within the reader's bounds (type, zip members, sizes)."""
    from xlsx_kpi.ooxml.load import check_loadable as check

    check(path)


def zip_member_limit() -> int:
    """The most zip members a workbook may have before the reader refuses it."""
    from xlsx_kpi.ooxml.package import MAX_MEMBERS

    return MAX_MEMBERS


def annotated_name(source: Path) -> str:
    """The name of the annotated copy of `source`: "x.xlsx" -> "x_审核.xlsx" (the next round: "x_审核2.xlsx")."""
    from xlsx_kpi.outputs.review import annotated_name as name

    return name(source)


def finding_contexts(path: Path, report: Report) -> list[dict[str, Any]]:
    """Each finding's cell as the sheet shows it: a few rows around it, its row and column labels, its value."""
    from xlsx_kpi.audit.contexts import cell_contexts

    return cell_contexts(path, report)


def can_isolate() -> bool:
    """Whether run_isolated can run work in a forked child with limits (POSIX with fork)."""
    from xlsx_kpi.outputs.isolation import can_isolate as can

    return can()


def run_isolated(fn: Callable[[], T], timeout: float, memory: int) -> T:
    """fn() in a forked child with a time limit (TimeoutError) and an address-space limit (MemoryError)."""
    from xlsx_kpi.outputs.isolation import run_isolated as run

    return run(fn, timeout, memory)


# --- collecting and the history ------------------------------------------------------------------------------


def collect(
    folders: Path | Sequence[Path],
    catalog: Catalog | None = None,
    *,
    units: Path | None = None,
    db: Path | None = None,
    store: bool = True,
    exclude: Iterable[Path] = (),
    workers: int = 1,
    sheets: Path | None = None,
    progress: Callable[[Report], None] | None = None,
    recheck: bool = False,
) -> Collection:
    """Check every workbook under `folders` as `check` does and roll the results up (`xlsx-kpi collect`).

    `units` (a unit list) names the units that did not file. The history database `db` (default: DB_NAME in
    the first folder) gets every submission used when `store` (once per file content); with store=False it
    is only read, when it exists. Files this version already stored are not read again unless `recheck`.
    Write the summary workbook with write_summary.
    """
    from xlsx_kpi.batch.collect import collect as roll_up

    catalog = _catalog(catalog, sheets)
    paths = [folders] if isinstance(folders, Path) else list(folders)
    for p in paths:
        if not p.is_dir():
            raise XlsxKpiError("请指定存放回收工作簿的文件夹", file=str(p))
    db_path = db or paths[0] / DB_NAME
    history = History(db_path) if store else History(db_path, readonly=True) if db_path.exists() else None
    try:
        return roll_up(
            paths,
            catalog,
            units=units,
            history=history,
            exclude=exclude,
            workers=workers,
            sheets=sheets,
            progress=progress,
            recheck=recheck,
        )
    finally:
        if history is not None:
            history.close()


def write_summary(collection: Collection, path: Path, *, force: bool = False) -> Path:
    """The summary workbook (汇总.xlsx) of a collection; an existing file is kept unless `force`."""
    from xlsx_kpi.outputs.summary import write_summary as write

    if path.exists() and not force:
        raise OutputExistsError("文件已存在；如需覆盖请加 --force", file=str(path))
    return write(collection, path, force=force)


def update_summary(collection: Collection, path: Path, db: Path, *, force: bool = False) -> bool:
    """write_summary unless the summary at `path` is still the one written last time from the same inputs.

    The history database `db` notes each summary workbook collect writes (the inputs' fingerprint and the file's
    SHA-256): run again on an unchanged folder (same files by content, same tool version, specs, unit list, nothing
    newly stored, no --recheck) with the workbook untouched, nothing is written. True when the summary was written.
    """
    from xlsx_kpi.batch.collect import note_summary, summary_is_current

    if path.is_file() and db.is_file():
        with History(db) as history:
            if summary_is_current(collection, path, history):
                return False
    written = write_summary(collection, path, force=force)
    try:
        with History(db) as history:
            note_summary(collection, written, history)
    except (XlsxKpiError, OSError):
        pass  # not noted: the next run writes the summary again
    return True


def open_history(db: Path, *, readonly: bool = False) -> History:
    """The history database (SQLite); use it in a `with` block. Read-only refuses a missing file."""
    return History(db, readonly=readonly)


def unit_records(db: Path) -> list[Record]:
    """Every stored submission of the history database `db`, oldest year first."""
    with History(db, readonly=True) as history:
        return history.records()


def unit_years(db: Path, unit_code: str) -> list[Record]:
    """One unit's stored submissions, year by year ([] when the database has no such unit code)."""
    with History(db, readonly=True) as history:
        return history.unit_years(unit_code)


def history_kinds(sheets: Path | None = None) -> dict[str, str]:
    """Workbook spec id -> kind ("department"/"project"), which kind_totals and the CSV export need."""
    return {wid: wb.kind for wid, wb in load_catalog(sheets).workbooks.items()}


def export_history_csv(
    db: Path, csv: Path, *, unit_code: str | None = None, force: bool = False, kinds: Mapping[str, str] | None = None
) -> int:
    """The history (one unit's or all) as a CSV file Excel opens; returns the number of rows written."""
    from xlsx_kpi.store.history import write_csv

    return write_csv(db, csv, unit_code=unit_code, force=force, kinds=kinds)


# --- 自评报告 ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """A drafted 自评报告: where it was written, its places still to fill, and the workbook's 错误 count."""

    path: Path
    fill_count: int
    errors: int


def draft_report(
    workbook: Path,
    output: Path | None = None,
    catalog: Catalog | None = None,
    *,
    outline: Path | None = None,
    sheets: Path | None = None,
    force: bool = False,
) -> Draft:
    """Draft the 自评报告 (.docx) of a checked workbook from its recalculated figures (`xlsx-kpi report`).

    `output` defaults to `<workbook>_自评报告.docx`. An unreadable workbook raises XlsxKpiError.
    """
    from xlsx_kpi.selfreport.draft import write_draft

    catalog = _catalog(catalog, sheets)
    out_path = output or workbook.with_name(f"{workbook.stem}_自评报告.docx")
    report = check_file(workbook, catalog, annotate=False)
    if report.error:
        raise XlsxKpiError(report.error)
    draft = write_draft(workbook, out_path, catalog, outline_path=outline, sheets=sheets, force=force)
    return Draft(out_path, draft.fill_count, report.counts["错误"])


def store_submission(db: Path, checked: Checked, *, sha256: str, file_mtime: datetime) -> bool:
    """Store one usable checked workbook in the history database; False when this exact file is already in."""
    with History(db) as history:
        return history.store(checked, sha256=sha256, file_mtime=file_mtime)
