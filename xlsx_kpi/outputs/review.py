"""What the reviewer's copy says and is called, without openpyxl: names, marks, 批注 text, the result table."""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from xlsx_kpi.audit.filing import REVIEW_SHEET
from xlsx_kpi.audit.findings import Finding, Severity
from xlsx_kpi.audit.report import REPLACED_LABEL, Report, replaced_text
from xlsx_kpi.errors import OutputExistsError, XlsxKpiError
from xlsx_kpi.formats.widths import display_width, text_lines
from xlsx_kpi.ooxml.parts import CORE_PART, member_sums, read_core, stamp_core
from xlsx_kpi.safe_text import printable

# The characters openpyxl refuses in a cell (openpyxl.cell.cell.ILLEGAL_CHARACTERS_RE), without importing it.
ILLEGAL_CHARACTERS_RE = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")

RESULT_SHEET = REVIEW_SHEET
SUFFIX = "_审核"
AUTHOR = "xlsx-kpi"
FONT = "宋体"

# Fills (RGB) for flagged cells and the 级别 column. The error red is darker than Excel's "Bad" FFC7CE
# so it stands out on the template's pale-green input cells; an explained 警告 is a paler yellow.
ERROR_FILL = "FF9C9C"
WARNING_FILL = "FFD966"
EXPLAINED_FILL = "FFF2CC"
INFO_FILL = "BDD7EE"
PASS_FILL = "C6EFCE"
HEADER_FILL = "D9D9D9"
LINK_COLOR = "0563C1"

# Separates the unit's own 批注 from ours in the same comment box.
COMMENT_SEPARATOR = "—————— 审核意见 ——————"
# docProps/core.xml contentStatus of a copy we wrote: this text, a space and package_digest of its parts.
# Any save by Excel, WPS or LibreOffice rewrites the parts, so the digest matches only while the copy is
# exactly as we wrote it; a copy the unit edited and returned is a submission like any other.
REVIEW_MARK = "xlsx-kpi 审核副本"
# The fills we give findings, as a review mark is recognised again in a returned copy.
REVIEW_FILLS = frozenset((ERROR_FILL, WARNING_FILL, EXPLAINED_FILL, INFO_FILL))
# "x_审核", "x_审核2", and the copies a mail program or browser makes of them: "x_审核 (1)", "x_审核（修改）".
_ROUND = re.compile(r"^(?P<base>.*?)_审核(?P<n>[0-9]*)(?:\s*[（(][^（）()]{0,20}[）)])?$")
# Excel's limit for the text of a cell (and what it will show of a comment).
MAX_TEXT = 32767

HEADERS = ("序号", "级别", "规则", "工作表", "单元格", "指标", "填报值", "应为", "说明")
# (minimum, maximum) width of each result column, in Excel character units.
WIDTHS = ((5, 6), (10, 10), (14, 36), (8, 12), (9, 16), (10, 30), (9, 20), (9, 20), (24, 56))


def review_round(source: Path) -> tuple[str, int]:
    """(the unit's file name stem, how many review rounds the name shows): "x" 0, "x_审核" 1, "x_审核2" 2."""
    stem = Path(source).stem
    m = _ROUND.match(stem)
    if m is None or not m.group("base"):
        return stem, 0
    n = m.group("n")
    return m.group("base"), int(n) if n and len(n) < 6 else 1


def annotated_name(source: Path) -> str:
    """The reviewer's copy of `source`: "x.xlsx" -> "x_审核.xlsx"; a returned copy "x_审核.xlsx" -> "x_审核2.xlsx"."""
    base, n = review_round(source)
    return f"{base}{SUFFIX}{n + 1 if n else ''}.xlsx"


def package_digest(members: Mapping[str, tuple[int, int]]) -> str:
    """A digest of a package's members (name -> (CRC-32, size)) other than docProps/core.xml.

    Any program that saves the workbook again rewrites its parts, so the digest no longer matches: that,
    not the save time (LibreOffice's converter keeps it), tells our untouched copy from a returned one.
    """
    h = hashlib.sha256()
    for name in sorted(members):
        if name != CORE_PART and not name.endswith("/"):
            crc, size = members[name]
            h.update(f"{name}\0{crc:08x}\0{size}\n".encode())
    return h.hexdigest()[:32]


def mark_core(data: bytes, digest: str) -> bytes:
    """docProps/core.xml as saved now by us, its contentStatus carrying REVIEW_MARK and the digest.

    Raises ValueError when the part is not core properties XML.
    """
    return stamp_core(data, AUTHOR, f"{REVIEW_MARK} {digest}")


def is_untouched_copy(path: Path) -> bool:
    """True for an annotated copy exactly as this tool wrote it (not edited and saved since)."""
    status = read_core(path).content_status
    if not status.startswith(REVIEW_MARK + " "):
        return False
    members = member_sums(path)
    return members is not None and status[len(REVIEW_MARK) + 1 :].strip() == package_digest(members)


def severity_fill(finding: Finding) -> str:
    """The fill colour of a finding's cell and 级别 entry."""
    if finding.severity is Severity.ERROR:
        return ERROR_FILL
    if finding.severity is Severity.WARNING:
        return EXPLAINED_FILL if finding.explained else WARNING_FILL
    return INFO_FILL


def weight(finding: Finding) -> tuple[int, int]:
    """Lower is more severe; an unexplained 警告 outranks an explained one."""
    return (finding.severity.rank, 1 if finding.explained else 0)


def comment_text(findings: Iterable[Finding]) -> str:
    """Our 批注 for one cell: one paragraph per finding, the most severe first."""
    parts = []
    for f in sorted(findings, key=weight):
        head = f"【{f.severity.value}】{f.title}（{f.code}）" if f.title else f"【{f.severity.value}】{f.code}"
        lines = [head, f.message]
        if f.actual:
            lines.append(f"填报值：{f.actual}")
        if f.expected:
            lines.append(f"应为：{f.expected}")
        if f.explained:
            lines.append(f"单位说明：{f.explanation}")
        parts.append("\n".join(line for line in lines if line))
    return "\n\n".join(parts)


def comment_size(text: str) -> tuple[int, int]:
    """(width, height) in pixels for a comment box showing `text` in Excel's 9-pt comment font.

    A CJK character is about 12 px wide, a Latin one 6 px; lines longer than 56 units wrap.
    """
    longest = max((display_width(line) for line in text.split("\n")), default=0)
    per_line = max(24, min(56, longest))
    width = per_line * 6 + 24
    lines = sum(max(1, math.ceil(display_width(line) / per_line)) for line in text.split("\n"))
    return width, min(lines * 15 + 16, 1200)


def clean(text: str) -> str:
    """Text as Excel can store it: no control characters, at most 32,767 characters."""
    cleaned: str = ILLEGAL_CHARACTERS_RE.sub("", printable(text))
    return cleaned[:MAX_TEXT]


def _total(value: Decimal | None) -> float | str:
    if value is None:
        return "（未能计算）"
    # float() of the rounded Decimal: openpyxl would write a Decimal as 95.34999999999999. A total past
    # Excel's 15 digits (a score typed as 1.5e28) is written as text: quantize would overflow the context.
    if not value.is_finite() or value.adjusted() > 15:
        return str(value)
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def summary_rows(report: Report) -> list[tuple[str, Any, str | None]]:
    counts = report.counts
    status_fill = {"有错误": ERROR_FILL, "有警告": WARNING_FILL, "通过": PASS_FILL}.get(report.status)
    rows: list[tuple[str, Any, str | None]] = [
        ("单位名称", report.unit_name, None),
        ("预算单位编码", report.unit_code, None),
        ("年度", report.year, None),
        ("表种", report.workbook_id, None),
    ]
    if report.project_name:
        rows.append(("项目", report.project_name, None))
    rows += [
        ("重算合计", _total(report.total), None),
        ("等级", report.grade, None),
        ("错误", counts["错误"], ERROR_FILL if counts["错误"] else None),
        ("警告（未说明）", counts["警告"], WARNING_FILL if counts["警告"] else None),
        ("已说明的警告", counts["已说明"], EXPLAINED_FILL if counts["已说明"] else None),
        ("提示", counts["提示"], INFO_FILL if counts["提示"] else None),
        ("审核结论", report.status, status_fill),
    ]
    if report.replaced:
        rows.append((REPLACED_LABEL, replaced_text(report.replaced), None))
    return rows


def result_rows(report: Report) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for i, f in enumerate(report.findings):
        rule = f"{f.title}（{f.code}）" if f.title else f.code
        note = f.message + (f"（已说明：{f.explanation}）" if f.explained else "")
        rows.append([i + 1, f.severity.value, rule, f.sheet, f.where, f.indicator, f.actual, f.expected, note])
    return rows


def column_widths(table: list[list[Any]]) -> list[float]:
    widths = []
    for j, (lo, hi) in enumerate(WIDTHS):
        texts = [HEADERS[j]] + [str(r[j]) for r in table if r[j] is not None]
        need = max(display_width(line) for t in texts for line in t.split("\n")) + 2
        widths.append(float(max(lo, min(hi, need))))
    return widths


def row_height(texts: Iterable[tuple[str, float]]) -> float:
    lines = max((text_lines(t, w) for t, w in texts if t), default=1)
    return round(lines * 13.5 + 4, 1)


def check_output_paths(source: Path, out: Path, force: bool) -> None:
    if not source.is_file():
        raise XlsxKpiError("文件不存在，请检查路径", file=str(source))
    # The source exists, so `out` names it only if `out` exists too: then samefile decides (links, case, "..").
    try:
        same = out.exists() and os.path.samefile(source, out)
    except OSError:
        same = out.resolve() == source.resolve()
    if same:
        raise XlsxKpiError("批注副本不能写到原文件上；请另选输出文件名", file=str(out))
    if out.is_dir():
        raise XlsxKpiError("输出路径是一个文件夹", file=str(out))
    if out.exists() and not force:
        raise OutputExistsError("文件已存在；如需覆盖请加 --force", file=str(out))
