"""What the commands print: the JSON of check (streamed), findings, the summary tables (rich, loaded on use)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from xlsx_kpi import api
from xlsx_kpi.cli.common import out
from xlsx_kpi.safe_text import printable

if TYPE_CHECKING:
    from rich.console import Console

    from xlsx_kpi.api import Collection, CrossFinding, Record, Report, Resubmission

__all__ = [
    "JsonFiles",
    "JsonLines",
    "batch_json",
    "cross_json",
    "print_collection",
    "print_cross",
    "print_findings",
    "print_history",
    "print_resubmitted",
    "print_summary",
    "print_units",
]


def cross_json(c: CrossFinding) -> dict[str, object]:
    f = c.finding
    return {
        "unit_name": c.unit_name,
        "unit_code": c.unit_code,
        "year": c.year,
        **api.finding_fields(f),
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
            [r.exit_code for r in reports] + [1 for c in cross if c.finding.severity is api.Severity.ERROR], default=0
        ),
    }


def print_cross(console: Console, cross: list[CrossFinding]) -> None:
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


def print_findings(console: Console, report: Report, *, verbose: bool = False) -> None:
    """错误 and 警告 one per line (every finding with --verbose); 提示 counted, and the typed-over formulas."""
    if not report.usable:
        return
    console.print(f"\n{report.file}（{report.unit_name}）")
    shown = [f for f in report.findings if verbose or f.severity is not api.Severity.INFO]
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
        console.print(f"  {api.REPLACED_LABEL}：{api.replaced_text(report.replaced)}", markup=False)
    if not report.findings:
        console.print("  未发现问题")


# A batch of more files than this is not printed as a table a reviewer would have to read row by row: the files that
# need attention (错误, 警告, unreadable, new in collect) are listed one per line, the others counted in one line.
LONG_BATCH = 50


def _passed(reports: Sequence[Report]) -> str:
    """The grades of files that passed, counted: 优 12 份、良 3 份、未评级 1 份."""
    grades = Counter(r.grade or "未评级" for r in reports)
    order = ["优", "良", "中", "差", *sorted(set(grades) - {"优", "良", "中", "差", "未评级"}), "未评级"]
    return "、".join(f"{g} {grades[g]} 份" for g in order if grades[g])


def _figures(r: Report) -> str:
    c = r.counts
    total = "" if r.total is None else f"合计 {r.total:.2f}{' ' + r.grade if r.grade else ''}，"
    return f"{total}错误 {c['错误']}、警告 {c['警告']}、已说明 {c['已说明']}、提示 {c['提示']}"


def _print_long(console: Console, lines: list[str]) -> None:
    """Many plain lines at once (a rich Table of 1,000 rows takes about a second to lay out)."""
    console.print("\n".join(lines), markup=False, highlight=False, overflow="ignore", crop=False)


def print_summary(console: Console, reports: list[Report]) -> None:
    if len(reports) > LONG_BATCH:
        shown = [r for r in reports if r.status != "通过" or r.output_error]
        rest = [r for r in reports if r.status == "通过" and not r.output_error]
        lines = [f"审核汇总：共 {len(reports)} 份，需要注意的 {len(shown)} 份（有错误、警告或无法读取）逐份列出："]
        for r in shown:
            who = f"{printable(r.file.name)}（{r.unit_name}）" if r.unit_name else printable(r.file.name)
            lines.append(f"  {who}：{r.status}，{_figures(r)}" if r.usable else f"  {who}：{r.status}")
        if rest:
            lines.append(
                f"其余 {len(rest)} 份通过（无错误、无警告；{_passed(rest)}），未逐行列出；加 --json 可得每份的结果"
            )
        copies = [r.annotated for r in reports if r.annotated and not r.output_error]
        folders = {p.parent for p in copies}
        if len(folders) == 1:
            lines.append(f"审核文件 {len(copies)} 份在 {printable(str(next(iter(folders))))}")
        elif folders:
            lines.append(f"审核文件 {len(copies)} 份在各原文件旁（原文件名后加“_审核”）")
        _print_long(console, lines)
        _print_problems(console, reports)
        return
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
    _print_files(console, reports)


def _print_problems(console: Console, reports: Sequence[Report]) -> None:
    """The files that could not be read and the copies that could not be written, one line each."""
    for r in reports:
        if r.error:
            console.print(f"无法读取：{printable(r.error)}", markup=False)
        if r.output_error:
            console.print(f"未生成审核文件：{printable(r.output_error)}", markup=False)


def _print_files(console: Console, reports: Sequence[Report]) -> None:
    for r in reports:
        _print_problems(console, [r])
        if r.annotated and not r.output_error:
            console.print(f"审核文件：{printable(str(r.annotated))}", markup=False)


def print_collection(c: Collection, output: Path, db: Path, *, written: bool = True) -> None:
    """The collected submissions (a table; more than LONG_BATCH: those needing attention, the rest counted), what
    is missing, duplicated or unreadable, the cross-workbook findings, and where the summary is."""
    if len(c.submissions) > LONG_BATCH:
        _print_long_collection(c, output)
    else:
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
    print_cross(out, c.cross)
    out.print(
        f"采用 {len(c.submissions)} 份，错误 {c.errors} 条；历史数据库 {db}：新存入 {c.stored} 份，"
        f"已有 {c.already_stored} 份",
        markup=False,
    )
    out.print(f"汇总工作簿：{output}" if written else f"汇总表未变，未重写：{output}", markup=False)


def _print_long_collection(c: Collection, output: Path) -> None:
    new = set(c.new_files)  # the submissions' own paths

    def attention(r: Report, file: Path) -> bool:
        return bool(r.counts["错误"] or r.counts["警告"] or file in new)

    shown = [s for s in c.submissions if attention(s.report, s.file)]
    rest = [s for s in c.submissions if not attention(s.report, s.file)]
    lines = [f"汇总：采用 {len(c.submissions)} 份，需要注意的 {len(shown)} 份（有错误、警告或本次新存入）逐份列出："]
    for s in shown:
        r = s.report
        what = "，".join(x for x in (r.year, r.project_name) if x)
        mark = "；本次新存入" if s.file in new else ""
        lines.append(f"  {r.unit_code} {r.unit_name}（{what}）：{_figures(r)}{mark}")
    if rest:
        lines.append(
            f"其余 {len(rest)} 份无错误、无警告、此前已存入（{_passed([s.report for s in rest])}），"
            f"未逐行列出，见汇总工作簿：{output}"
        )
    _print_long(out, lines)


def print_units(records: list[Record], db: Path) -> None:
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


def print_history(records: list[Record]) -> None:
    """Years side by side: one column per year (and kind/project), one row per figure."""
    from rich.table import Table

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

    for f in api.FIGURES:
        if all(r.values.get(f.key) is None for r in records):
            continue
        table.add_row(f.label, *[show(r, f.key, f.fmt) for r in records])
        if f.id == "total":
            table.add_row("等级", *[r.grade for r in records])
    for name in ("错误", "警告", "已说明", "提示"):
        table.add_row(name, *[str(r.counts[name]) for r in records])
    table.add_row("文件", *[r.file_name for r in records])
    out.print(table)


def print_resubmitted(console: Console, groups: list[Resubmission]) -> None:
    for g in groups:
        names = "、".join(p.name for p in g.older)
        console.print(f"重复报送：采用最新保存的 {g.used.name}，未审核较早的 {names}", markup=False)
