"""The summary workbook 汇总.xlsx (XlsxWriter): 汇总, 未报送, 重复报送, 问题清单 and 图表 of a Collection."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from itertools import zip_longest
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from xlsx_kpi.audit.collection import KIND_LABELS, KIND_ORDER, Collection
from xlsx_kpi.audit.figures import AMOUNTS, LEVELS, TOTAL, execution_rate
from xlsx_kpi.audit.findings import Severity
from xlsx_kpi.audit.values import Status, parse_number
from xlsx_kpi.errors import OutputExistsError, XlsxKpiError, write_atomically
from xlsx_kpi.formats.expr import ExcelError, Value
from xlsx_kpi.outputs.table_writer import FONT, TableWriter, row_height, text_width
from xlsx_kpi.safe_text import printable

__all__ = ["SUMMARY_MARK", "SummaryWriter", "is_summary", "write_summary"]

GRADES = ("优", "良", "中", "差")
# Fill / font colours of Excel's built-in "good / neutral / bad" styles, and a blue for 良.
GRADE_COLOURS = {
    "优": ("#C6EFCE", "#006100"),
    "良": ("#DDEBF7", "#1F4E78"),
    "中": ("#FFEB9C", "#9C5700"),
    "差": ("#FFC7CE", "#9C0006"),
}
KIND_COLOURS = {"department": "#4A7EBB", "project": "#E0A526"}
CHART_COLOURS = {"优": "#4E9A5B", "良": "#4A7EBB", "中": "#E0A526", "差": "#C0504D", "": "#A6A6A6"}
SUMMARY_MARK = "xlsx_kpi_summary"
VISIBLE = "可见"  # header of the hidden helper column: 1 while a filter shows the row


def is_summary(path: Path) -> bool:
    """A 汇总.xlsx written by write_summary (marked by a custom document property), so a rerun skips it."""
    try:
        with zipfile.ZipFile(path) as z:
            info = z.getinfo("docProps/custom.xml")
            return info.file_size < 65536 and SUMMARY_MARK.encode() in z.read(info)
    except (OSError, KeyError, zipfile.BadZipFile, ValueError, EOFError):
        return False


def _number(value: Value) -> Decimal | str | None:
    """A figure as shown: a number, or the text the unit typed when it is no number."""
    if value is None or isinstance(value, Decimal):
        return value
    if isinstance(value, ExcelError):
        return value.code
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    parsed = parse_number(value)
    if parsed.status is Status.OK:
        return parsed.value
    return value if value.strip() else None


def _distinct(rows: list[list[object]]) -> Iterator[tuple[object, ...]]:
    """Rows whose columns hold each column's distinct values once: TableWriter.widths measures each text once
    (a unit's name is on every row of its findings; a thousand rows share a few kinds and grades)."""
    width = max((len(row) for row in rows), default=0)
    columns = [list(dict.fromkeys(row[j] for row in rows if j < len(row))) for j in range(width)]
    return zip_longest(*columns, fillvalue=None)  # None: not measured


def _col(n: int) -> str:
    letters = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        letters = chr(65 + r) + letters
    return letters


class SummaryWriter(TableWriter):
    """Writes 汇总.xlsx with XlsxWriter: 汇总, 未报送, 重复报送, 问题清单 and 图表."""

    def __init__(self, collection: Collection, path: Path) -> None:
        super().__init__(path)
        self.c = collection

    def write(self, target: Path) -> None:
        self.wb = xlsxwriter.Workbook(
            str(target), {"strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False}
        )
        self.wb.set_properties(
            {"title": "预算绩效自评汇总", "comments": "由 xlsx-kpi collect 生成", "company": "", "author": "xlsx-kpi"}
        )
        self.wb.set_custom_property(SUMMARY_MARK, "collect")
        self.styles()
        summary = self.wb.add_worksheet("汇总")
        missing = self.wb.add_worksheet("未报送")
        dupes = self.wb.add_worksheet("重复报送")
        problems = self.wb.add_worksheet("问题清单")
        charts = self.wb.add_worksheet("图表")
        first, last = self.write_summary(summary)
        self.write_missing(missing)
        self.write_duplicates(dupes)
        self.write_problems(problems)
        self.write_charts(charts, first, last)
        summary.activate()
        self.wb.close()

    def styles(self) -> None:
        border = {"border": 1, "border_color": "#A6A6A6"}
        self.fmt("title", bold=True, font_size=14)
        self.fmt("info", font_color="#595959", font_size=9)
        self.fmt("info_wrap", font_color="#595959", font_size=9, text_wrap=True, valign="top")
        self.fmt("header", bold=True, bg_color="#D9E1F2", align="center", text_wrap=True, **border)
        self.fmt("text", **border)
        self.fmt("wrap", text_wrap=True, **border)
        self.fmt("code", num_format="@", **border)
        self.fmt("int", num_format="0", align="center", **border)
        self.fmt("score", num_format="0.00", **border)
        self.fmt("amount", num_format="#,##0.00", **border)
        self.fmt("rate", num_format="0.00%", **border)
        self.fmt("date", num_format="yyyy-mm-dd hh:mm", **border)
        self.fmt("center", align="center", **border)
        self.fmt("link", font_color="#0563C1", underline=1, **border)
        self.fmt("total_label", bold=True, bg_color="#F2F2F2", align="center", **border)
        self.fmt("total_int", bold=True, bg_color="#F2F2F2", num_format="0", align="center", **border)
        self.fmt("total_amount", bold=True, bg_color="#F2F2F2", num_format="#,##0.00", **border)
        self.fmt("total_rate", bold=True, bg_color="#F2F2F2", num_format="0.00%", **border)
        self.fmt("total_blank", bg_color="#F2F2F2", **border)
        for grade, (bg, fg) in GRADE_COLOURS.items():
            self.fmt(f"grade_{grade}", bg_color=bg, font_color=fg)
        self.fmt("bad", bg_color="#FFC7CE", font_color="#9C0006")
        self.fmt("warn", bg_color="#FFEB9C", font_color="#9C5700")
        self.fmt("note", bg_color="#DDEBF7", font_color="#1F4E78")
        self.fmt("differs", bg_color="#F8CBAD", font_color="#843C0C", bold=True)

    # --- 汇总 ---

    def summary_headers(self) -> list[tuple[str, str, int]]:
        unit = f"（{self.c.amount_unit}）" if self.c.amount_unit else ""
        heads: list[tuple[str, str, int]] = [
            ("单位", "text", 16),
            ("编码", "code", 10),
            ("年度", "int", 6),
            ("表种", "center", 9),
            ("项目", "text", 12),
        ]
        for f in (*LEVELS, TOTAL):
            heads += [(f"{f.label}\n填报", "score", 7), (f"{f.label}\n重算", "score", 7)]
        heads += [
            ("等级", "center", 5),
            ("错误", "int", 5),
            ("警告", "int", 5),
            ("已说明", "int", 6),
            ("提示", "int", 5),
        ]
        heads += [(f"{f.label}{unit}", "amount", 13) for f in AMOUNTS]
        heads += [("执行率", "rate", 8), ("文件", "text", 24), (VISIBLE, "int", 6)]
        return heads

    def kinds_statement(self) -> str:
        """Which units were collected with which kinds: each unit when few, else grouped by kinds."""
        units = self.c.units_by_kind()
        if not units:
            return ""

        def kinds(counts: dict[str, int]) -> str:
            order = sorted(counts, key=lambda k: (KIND_ORDER.get(k, 9), k))
            return "、".join(f"{KIND_LABELS.get(k, k or '未知表种')} {counts[k]} 份" for k in order)

        if len(units) <= 10:
            listed = "；".join(f"{name}（{code}）：{kinds(counts)}" for name, code, counts in units)
            return f"报送单位及表种：{listed}。"
        combos: dict[tuple[str, ...], list[str]] = {}
        for name, _, counts in units:
            key = tuple(sorted(counts, key=lambda k: (KIND_ORDER.get(k, 9), k)))
            combos.setdefault(key, []).append(name)
        parts = []
        for key, names in sorted(combos.items(), key=lambda kv: (-len(kv[0]), kv[0])):
            label = "和".join(KIND_LABELS.get(k, k or "未知表种") for k in key)
            shown = "、".join(names[:5]) + ("等" if len(names) > 5 else "")
            parts.append(f"报送{label}的 {len(names)} 个单位（{shown}）")
        return f"报送单位 {len(units)} 个：" + "；".join(parts) + "。"

    def write_summary(self, ws: Worksheet) -> tuple[int, int]:
        c = self.c
        heads = self.summary_headers()
        rows: list[list[object]] = []
        for s in c.submissions:
            r = s.report
            row: list[object] = [
                r.unit_name,
                r.unit_code,
                int(r.year) if r.year.isdigit() else r.year,
                KIND_LABELS.get(s.kind, r.workbook_id),
                r.project_name,
            ]
            for f in (*LEVELS, TOTAL):
                row += [_number(s.filled(f.key)), _number(s.value(f.key))]
            counts = r.counts
            row += [r.grade, counts["错误"], counts["警告"], counts["已说明"], counts["提示"]]
            row += [c.amount(s, f.key) for f in AMOUNTS]
            row += [None, s.file.name, 1]  # 执行率 and 可见 are formulas, written below
            rows.append(row)

        info = (
            f"共 {c.files} 个文件：采用 {len(c.submissions)} 份"
            f"（部门整体 {sum(1 for s in c.submissions if s.kind == 'department')}、"
            f"项目支出 {sum(1 for s in c.submissions if s.kind == 'project')}）"
            f"；重复报送未采用 {sum(len(g) - 1 for g in c.duplicates)} 份；无法读取 {len(c.unusable)} 个"
            + (f"；单位清单应报 {c.expected} 份，未报送 {len(c.missing)} 份" if c.units_file else "")
            + f"。“填报”为文件中显示的数，“重算”为按输入重新计算的数，两者不一致时标橙色。"
            "合计按表种分列（项目资金已含在部门的政策和项目支出中，两类不相加），随筛选变化。生成于 "
            f"{datetime.now():%Y-%m-%d %H:%M}"
        )
        statement = self.kinds_statement()
        if statement:
            info += "\n" + statement
        years = "、".join(c.years)
        headers = [(name, width) for name, _, width in heads]
        self.widths(_distinct(rows), headers, cap=60)
        self.table(ws, f"{years}年度预算绩效自评汇总" if years else "预算绩效自评汇总", info, headers, header_height=32)
        i_file = len(heads) - 2
        # Row 2 states the counts and which units sent which kinds: wrapped across the printed columns.
        ws.merge_range(1, 0, 1, i_file - 1, info, self.formats["info_wrap"])
        ws.set_row(1, row_height(info, sum(w for _, w in headers[:i_file]), line=12))
        first = 3
        last = first + len(rows) - 1
        i_budget, i_actual, i_rate = (len(heads) - 6, len(heads) - 5, len(heads) - 3)
        i_kind, i_visible = 3, len(heads) - 1
        for n, (row, s) in enumerate(zip(rows, c.submissions, strict=True)):
            at = first + n
            for j, value in enumerate(row):
                if j == i_rate:
                    b, a = f"{_col(i_budget)}{at + 1}", f"{_col(i_actual)}{at + 1}"
                    rate = execution_rate(s.checked.values)
                    ws.write_formula(
                        at, j, f'=IF(N({b})=0,"",{a}/{b})', self.formats["rate"], "" if rate is None else float(rate)
                    )
                elif j == i_file:
                    self.link(ws, at, j, s.file, s.file.name)
                elif j == i_visible:
                    # 1 while a filter shows the row, 0 once it hides it: the per-kind totals count on it.
                    ws.write_formula(at, j, f"=SUBTOTAL(103,{_col(i_kind)}{at + 1})", self.formats["int"], 1)
                else:
                    self.cell(ws, at, j, value, heads[j][1])
        total_row = last + 1 if rows else first
        for n, kind in enumerate(c.kinds):
            self.write_total_row(ws, heads, rows, first, last, total_row + n, kind)
        last_total = total_row + max(0, len(c.kinds) - 1)
        if rows:
            ws.autofilter(2, 0, last, len(heads) - 2)
            self.summary_formats(ws, heads, first, last)
        ws.set_column(i_visible, i_visible, None, None, {"hidden": True})
        # The file names are for the screen (they link to the files); printing them would shrink the page.
        ws.print_area(0, 0, last_total, i_file - 1)
        return first, last

    def write_total_row(
        self,
        ws: Worksheet,
        heads: list[tuple[str, str, int]],
        rows: list[list[object]],
        first: int,
        last: int,
        at: int,
        kind: str,
    ) -> None:
        """One 合计 row per kind: SUMIFS over the rows of that kind that a filter leaves visible.

        Project money is already inside the department's 政策和项目支出, so the kinds are never added up.
        The hidden 可见 column (SUBTOTAL(103, …) per row) is 0 for a row a filter hides; SUMIFS keeps working
        when the table is sorted. Cached values are the full sums of the kind.
        """
        label = KIND_LABELS.get(kind, kind)
        mine = [row for row in rows if row[3] == label]
        i_visible = len(heads) - 1
        kinds = f"${_col(3)}${first + 1}:${_col(3)}${last + 1}"
        visible = f"${_col(i_visible)}${first + 1}:${_col(i_visible)}${last + 1}"
        ws.write_string(at, 0, f"合计（{label}）", self.formats["total_label"])
        ws.write_string(at, 3, label, self.formats["total_label"])
        for j, (name, kind_of, _) in enumerate(heads):
            if j in (0, 3):
                continue
            if kind_of in ("int", "amount") and name not in ("年度", VISIBLE):
                cached = sum((Decimal(str(row[j])) for row in mine if isinstance(row[j], Decimal | int)), Decimal(0))
                ref = f"{_col(j)}${first + 1}:{_col(j)}${last + 1}"
                fmt = "total_int" if kind_of == "int" else "total_amount"
                ws.write_formula(
                    at, j, f"=SUMIFS({ref},{kinds},${_col(3)}{at + 1},{visible},1)", self.formats[fmt], float(cached)
                )
            elif name == "执行率":
                b, a = f"{_col(j - 3)}{at + 1}", f"{_col(j - 2)}{at + 1}"
                budget = sum((x for row in mine if isinstance(x := row[j - 3], Decimal)), Decimal(0))
                actual = sum((x for row in mine if isinstance(x := row[j - 2], Decimal)), Decimal(0))
                rate: object = float(actual / budget) if budget else ""
                ws.write_formula(at, j, f'=IF(N({b})=0,"",{a}/{b})', self.formats["total_rate"], rate)
            elif name != VISIBLE:
                ws.write_blank(at, j, None, self.formats["total_blank"])

    def summary_formats(self, ws: Worksheet, heads: list[tuple[str, str, int]], first: int, last: int) -> None:
        names = [h[0] for h in heads]
        g = names.index("等级")
        rng = (first, g, last, g)
        for grade in GRADES:
            ws.conditional_format(
                *rng,
                {"type": "cell", "criteria": "==", "value": f'"{grade}"', "format": self.formats[f"grade_{grade}"]},
            )
        for name, style in (("错误", "bad"), ("警告", "warn")):
            j = names.index(name)
            ws.conditional_format(
                first, j, last, j, {"type": "cell", "criteria": ">", "value": 0, "format": self.formats[style]}
            )
        # A subtotal typed over its formula, or differing from the recalculation: the 填报 cell turns orange.
        for f in (*LEVELS, TOTAL):
            j = names.index(f"{f.label}\n填报")
            a, b = f"{_col(j)}{first + 1}", f"{_col(j + 1)}{first + 1}"
            ws.conditional_format(
                first,
                j,
                last,
                j,
                {
                    "type": "formula",
                    "criteria": f'=OR(AND({a}<>"",ISNUMBER({a})<>ISNUMBER({b})),'
                    f"AND(ISNUMBER({a}),ISNUMBER({b}),ABS({a}-{b})>0.005))",
                    "format": self.formats["differs"],
                },
            )

    # --- 未报送 ---

    def write_missing(self, ws: Worksheet) -> None:
        c = self.c
        headers = [("单位名称", 24), ("预算单位编码", 14), ("项目名称", 24), ("清单行号", 9)]
        if c.units_file is None:
            self.table(ws, "未报送单位", "未提供单位清单（--units），无法列出未报送的单位。", headers)
            return
        rows = [[r.unit_name, r.unit_code, r.project_name, r.line] for r in c.missing]
        info = (
            f"单位清单 {printable(c.units_file.name)}：应报 {c.expected} 份，"
            f"已报 {c.expected - len(c.missing)} 份，未报送 {len(c.missing)} 份"
        )
        if c.unusable:
            info += f"；另有 {len(c.unusable)} 个文件无法读取（见“问题清单”），可能属于下列单位"
        self.widths(rows, headers)
        self.table(ws, "未报送单位", info + "。", headers)
        for n, row in enumerate(rows):
            for j, v in enumerate(row):
                self.cell(ws, 3 + n, j, v, ("text", "code", "text", "int")[j])
        at = 3 + len(rows)
        if rows:
            ws.autofilter(2, 0, at - 1, len(headers) - 1)
        if c.unlisted:
            at += 1
            ws.write_string(at, 0, "已报送但不在单位清单中：", self.formats["info"])
            for n, s in enumerate(c.unlisted, start=1):
                r = s.report
                self.cell(ws, at + n, 0, r.unit_name, "text")
                self.cell(ws, at + n, 1, r.unit_code, "code")
                self.cell(ws, at + n, 2, r.project_name, "text")
                self.link(ws, at + n, 3, s.file, s.file.name)

    # --- 重复报送 ---

    def write_duplicates(self, ws: Worksheet) -> None:
        headers = [
            ("单位", 20),
            ("编码", 10),
            ("年度", 6),
            ("表种", 9),
            ("项目", 14),
            ("文件", 30),
            ("修改时间", 17),
            ("是否采用", 9),
            ("合计", 8),
            ("错误", 6),
        ]
        rows: list[list[object]] = []
        for group in self.c.duplicates:
            for n, s in enumerate(group):
                r = s.report
                rows.append(
                    [
                        r.unit_name,
                        r.unit_code,
                        int(r.year) if r.year.isdigit() else r.year,
                        KIND_LABELS.get(s.kind, r.workbook_id),
                        r.project_name,
                        s.file.name,
                        s.mtime,
                        "采用" if n == 0 else "未采用（有更新的文件）",
                        r.total,
                        r.counts["错误"],
                    ]
                )
        self.widths(rows, headers)
        info = (
            f"同一单位、表种、项目和年度收到两个或以上文件的共 {len(self.c.duplicates)} 组；"
            "汇总采用修改时间最新的文件。"
            if self.c.duplicates
            else "没有重复报送。"
        )
        self.table(ws, "重复报送", info, headers)
        files = [s for group in self.c.duplicates for s in group]
        kinds = ("text", "code", "int", "center", "text", "text", "date", "center", "score", "int")
        for n, (row, s) in enumerate(zip(rows, files, strict=True)):
            for j, v in enumerate(row):
                if j == 5:
                    self.link(ws, 3 + n, j, s.file, s.file.name)
                else:
                    self.cell(ws, 3 + n, j, v, kinds[j])
        if rows:
            ws.autofilter(2, 0, 2 + len(rows), len(headers) - 1)
            ws.conditional_format(
                3,
                7,
                2 + len(rows),
                7,
                {"type": "cell", "criteria": "==", "value": '"采用"', "format": self.formats["grade_优"]},
            )

    # --- 问题清单 ---

    def write_problems(self, ws: Worksheet) -> None:
        headers = [
            ("单位", 18),
            ("编码", 10),
            ("文件", 24),
            ("级别", 8),
            ("规则", 18),
            ("工作表", 8),
            ("单元格", 7),
            ("说明", 70),
            ("填报值", 10),
            ("应为", 10),
        ]
        rows: list[tuple[list[object], Path, str, str]] = []
        # Across the workbooks of a unit: one row per workbook involved, each linking to its own cell.
        for cf in self.c.cross:
            f = cf.finding
            for place in cf.places:
                rows.append(
                    (
                        [
                            cf.unit_name,
                            cf.unit_code,
                            place.file.name,
                            f.severity.value,
                            f.code,
                            place.sheet,
                            place.cell,
                            f.message,
                            f.actual,
                            f.expected,
                        ],
                        place.file,
                        place.sheet,
                        place.cell,
                    )
                )
        for s in self.c.submissions:
            r = s.report
            for f in r.findings:
                level = f"{f.severity.value}（已说明）" if f.explained else f.severity.value
                message = f.message + (f"（说明：{f.explanation}）" if f.explained else "")
                rows.append(
                    (
                        [
                            r.unit_name,
                            r.unit_code,
                            s.file.name,
                            level,
                            f.code,
                            f.sheet,
                            f.cell,
                            message,
                            f.actual,
                            f.expected,
                        ],
                        s.file,
                        f.sheet,
                        f.cell,
                    )
                )
        for r in self.c.unusable:
            rows.append((["", "", r.file.name, "无法读取", "", "", "", r.error or "", "", ""], r.file, "", ""))
        counts = {sev.value: 0 for sev in Severity}
        for s in self.c.submissions:
            for f in s.report.findings:
                counts[f.severity.value] += 1
        cross = {sev.value: sum(1 for c in self.c.cross if c.finding.severity is sev) for sev in Severity}
        info = (
            f"错误 {counts['错误']} 条、警告 {counts['警告']} 条、提示 {counts['提示']} 条，"
            f"无法读取的文件 {len(self.c.unusable)} 个；"
            + (
                f"跨表检查（同一单位的多个工作簿之间）错误 {cross['错误']} 条、警告 {cross['警告']} 条、"
                f"提示 {cross['提示']} 条，列在最前，涉及的每个文件各占一行；"
                if self.c.cross
                else ""
            )
            + "点击文件名打开原文件并定位到该单元格。"
        )
        # 说明 wraps in a fixed width.
        self.widths(_distinct([[*row[:7], "", *row[8:]] for row, *_ in rows]), headers, cap=60)
        self.table(ws, "问题清单", info, headers)
        kinds = ("text", "code", "text", "center", "text", "center", "center", "wrap", "text", "text")
        message_width = headers[7][1]
        heights: dict[str, float] = {}  # many units get the same message
        for n, (row, file, sheet, a1) in enumerate(rows):
            # Neither Excel nor LibreOffice fits a row to wrapped text on opening: size it here.
            message = str(row[7])
            if message not in heights:
                heights[message] = row_height(message, message_width)
            ws.set_row(3 + n, heights[message])
            for j, v in enumerate(row):
                if j == 2:
                    self.link(ws, 3 + n, j, file, str(v), sheet, a1)
                else:
                    self.cell(ws, 3 + n, j, v, kinds[j])
        if rows:
            last = 2 + len(rows)
            ws.autofilter(2, 0, last, len(headers) - 1)
            for value, style in (("错误", "bad"), ("无法读取", "bad"), ("警告", "warn"), ("提示", "note")):
                ws.conditional_format(
                    3,
                    3,
                    last,
                    3,
                    {"type": "cell", "criteria": "==", "value": f'"{value}"', "format": self.formats[style]},
                )

    # --- 图表 ---

    def write_charts(self, ws: Worksheet, first: int, last: int) -> None:
        """Grade counts and ranked totals per kind: a department table and a project table are not pooled."""
        subs = self.c.submissions
        kinds = self.c.kinds or [""]
        nk = len(kinds)
        ws.hide_gridlines(2)
        ws.write_string(0, 0, "图表", self.formats["title"])
        ws.write_string(
            1,
            0,
            "等级分布按“汇总”表的等级列和表种列实时统计，部门整体与项目支出分列；合计得分为汇总时的重算结果。",
            self.formats["info"],
        )
        ws.set_column(0, 0, 9)
        ws.set_column(1, nk, 9)
        ws.set_column(nk + 1, nk + 1, 2)
        lc = nk + 2  # first column of the ranked lists
        labels = [s.label for s in subs]
        ws.set_column(lc, lc, min(36, max([text_width(x) for x in labels] + [12]) + 2))
        ws.set_column(lc + 1, lc + 2, 8)
        ws.write_string(2, 0, "等级", self.formats["header"])
        heads = self.summary_headers()
        grade_col = next(j for j, h in enumerate(heads) if h[0] == "等级")
        end = max(last, first) + 1
        ref = f"汇总!${_col(grade_col)}${first + 1}:${_col(grade_col)}${end}"
        kind_ref = f"汇总!${_col(3)}${first + 1}:${_col(3)}${end}"
        grades = [*GRADES, ""]
        for n, grade in enumerate(grades):
            ws.write_string(3 + n, 0, grade or "未评级", self.formats["center"])
        for k, kind in enumerate(kinds):
            label = KIND_LABELS.get(kind, kind) if kind else "份数"
            ws.write_string(2, 1 + k, label, self.formats["header"])
            for n, grade in enumerate(grades):
                count = sum(1 for s in subs if s.report.grade == grade and (not kind or s.kind == kind))
                criteria = f'"{grade}"' if grade else '""'
                formula = f'=COUNTIFS({ref},{criteria},{kind_ref},"{label}")' if kind else f"=COUNTIF({ref},{criteria})"
                ws.write_formula(3 + n, 1 + k, formula, self.formats["int"], count)

        col_chart = self.wb.add_chart({"type": "column"})
        for k, kind in enumerate(kinds):
            series: dict[str, Any] = {
                "name": ["图表", 2, 1 + k],
                "categories": ["图表", 3, 0, 3 + len(grades) - 1, 0],
                "values": ["图表", 3, 1 + k, 3 + len(grades) - 1, 1 + k],
                "data_labels": {"value": True},
                "gap": 60,
            }
            if nk == 1:
                series["points"] = [{"fill": {"color": CHART_COLOURS[g]}} for g in grades]
            else:
                series["fill"] = {"color": KIND_COLOURS.get(kind, "#A6A6A6")}
            col_chart.add_series(series)
        col_chart.set_title({"name": "自评等级分布（按表种）", "name_font": {"name": FONT, "size": 12}})
        if nk == 1:
            col_chart.set_legend({"none": True})
        else:
            col_chart.set_legend({"position": "top", "font": {"name": FONT}})
        col_chart.set_x_axis({"num_font": {"name": FONT}})
        col_chart.set_y_axis(
            {"name": "份数", "name_font": {"name": FONT}, "min": 0, "major_gridlines": {"visible": True}}
        )
        col_chart.set_size({"width": 520, "height": 300})
        chart_col = lc + 4
        ws.insert_chart(2, chart_col, col_chart, {"x_offset": 10, "y_offset": 0})

        # Ranked copies of the totals per kind (values, not references: sorting 汇总 must not relabel the bars).
        row, chart_row = 2, 19
        for kind in kinds:
            label = KIND_LABELS.get(kind, kind) if kind else ""
            ranked = sorted(
                (s for s in subs if s.report.total is not None and (not kind or s.kind == kind)),
                key=lambda s: (-(s.report.total or 0), s.label),
            )
            if not ranked:
                continue
            name = f"{label}：单位（项目）" if label else "单位（项目）"
            for j, h in enumerate((name, "合计", "等级")):
                ws.write_string(row, lc + j, h, self.formats["header"])
            for n, s in enumerate(ranked):
                self.cell(ws, row + 1 + n, lc, s.label, "text")
                self.cell(ws, row + 1 + n, lc + 1, s.report.total, "score")
                self.cell(ws, row + 1 + n, lc + 2, s.report.grade, "center")
            bar = self.wb.add_chart({"type": "bar"})
            bar.add_series(
                {
                    "name": "合计得分",
                    "categories": ["图表", row + 1, lc, row + len(ranked), lc],
                    "values": ["图表", row + 1, lc + 1, row + len(ranked), lc + 1],
                    "points": [{"fill": {"color": CHART_COLOURS.get(s.report.grade, "#A6A6A6")}} for s in ranked],
                    "data_labels": {"value": True, "num_format": "0.00", "font": {"name": FONT, "size": 8}},
                    "gap": 40,
                }
            )
            title = f"{label}自评合计得分" if label else "各单位自评合计得分"
            bar.set_title({"name": title, "name_font": {"name": FONT, "size": 12}})
            bar.set_legend({"none": True})
            # In a bar chart the categories run bottom-up: reverse them so the ranking reads top-down.
            bar.set_y_axis({"reverse": True, "num_font": {"name": FONT, "size": 9}})
            bar.set_x_axis({"min": 0, "max": 100, "major_unit": 10, "num_font": {"name": FONT}})
            height = max(260, 22 * len(ranked) + 90)
            bar.set_size({"width": 620, "height": height})
            ws.insert_chart(chart_row, chart_col, bar, {"x_offset": 10, "y_offset": 0})
            row += len(ranked) + 2
            chart_row += int(height / 20) + 2  # default row height is 20 pixels
        ws.set_landscape()
        ws.set_paper(9)
        ws.fit_to_pages(1, 0)


def write_summary(collection: Collection, path: Path, *, force: bool = False) -> Path:
    """Write 汇总.xlsx atomically (temp file + rename); never overwrite without `force`, never an input."""
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise XlsxKpiError("汇总文件名须以 .xlsx 结尾", file=str(path))
    if path.is_dir():
        raise XlsxKpiError("输出路径是一个文件夹", file=str(path))
    resolved = path.resolve()
    inputs = [s.file for group in (collection.submissions, *collection.duplicates) for s in group]
    if any(f.resolve() == resolved for f in [*inputs, *(r.file for r in collection.unusable)]):
        raise XlsxKpiError("汇总文件不能覆盖报送的工作簿，请换一个文件名", file=str(path))
    if path.exists() and not force:
        raise OutputExistsError("文件已存在；如需覆盖请加 --force", file=str(path))
    return write_atomically(path, SummaryWriter(collection, path).write)
