"""The reviewer's copy: the 审核结果 sheet written as worksheet XML."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xlsx_kpi import __version__
from xlsx_kpi.audit.report import Report
from xlsx_kpi.ooxml.patch import (
    MAIN_NS,
    REL_NS,
    XML_DECL,
    Unpatchable,
    xml_attr,
    xml_text,
)
from xlsx_kpi.outputs.annotate.sheets import a1, get_column_letter
from xlsx_kpi.outputs.annotate.styles import Styles
from xlsx_kpi.outputs.review import (
    HEADER_FILL,
    HEADERS,
    PASS_FILL,
    clean,
    column_widths,
    result_rows,
    row_height,
    severity_fill,
    summary_rows,
)
from xlsx_kpi.safe_text import looks_like_formula


def _num(x: float) -> str:
    """A number as XML text: 6 rather than 6.0; repr keeps every float exact."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


@dataclass
class ResultSheet:
    """The sheet's XML and where its table sits (for the defined names)."""

    xml: bytes
    header: int
    last: int


def result_sheet(report: Report, source: Path, targets: dict[int, str], styles: Styles) -> ResultSheet:
    """fallback.write_result_sheet, written as XML: same rows, merges, widths, styles, links and print setup."""
    table = result_rows(report)
    widths = column_widths(table)
    cells: dict[int, dict[int, bytes]] = {}
    heights: dict[int, float] = {}
    merges: list[str] = []
    links: list[str] = []

    def put(
        r: int,
        c: int,
        value: Any,
        font: str = "body",
        align: str | None = "wrap",
        fill: str | None = None,
        border: bool = True,
        numfmt: int = 0,
    ) -> None:
        ref = a1(r, c)
        quote = False
        if isinstance(value, str):
            value = clean(value)
            quote = looks_like_formula(value)  # fallback.put_text: Excel's leading apostrophe
        s = styles.result(font, align, fill, border, numfmt, quote)
        if value is None or value == "":
            xml = f'<c r="{ref}" s="{s}"/>'
        elif isinstance(value, str):
            space = ' xml:space="preserve"' if value != value.strip() else ""
            xml = f'<c r="{ref}" s="{s}" t="inlineStr"><is><t{space}>{xml_text(value)}</t></is></c>'
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise Unpatchable  # the fallback writes only text and numbers here
        else:
            xml = f'<c r="{ref}" s="{s}"><v>{value if isinstance(value, int) else _num(value)}</v></c>'
        cells.setdefault(r, {})[c] = xml.encode()

    put(1, 1, f"审核结果 — {report.unit_name or '（单位未识别）'}", "title", None, border=False)
    heights[1] = 24
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    put(2, 1, f"原文件：{source.name}　审核时间：{stamp}　xlsx-kpi {__version__}", "note", None, border=False)

    label_width = widths[0] + widths[1]
    value_width = widths[2] + widths[3] + widths[4]
    r = 3
    for label, value, fill in summary_rows(report):
        merges += [f"A{r}:B{r}", f"C{r}:E{r}"]
        put(r, 1, label, "bold", "wrap", HEADER_FILL)
        put(r, 2, None, "bold", "wrap", HEADER_FILL)
        numfmt = 2 if label == "重算合计" and isinstance(value, float) else 0  # built-in 2 is "0.00"
        put(r, 3, value, "bold" if label == "审核结论" else "body", "left", fill, numfmt=numfmt)
        put(r, 4, None, fill=fill)
        put(r, 5, None, fill=fill)
        heights[r] = row_height([(label, label_width), (str(value), value_width)])
        r += 1

    header = r + 1
    for j, text in enumerate(HEADERS, start=1):
        put(header, j, text, "bold", "center", HEADER_FILL)
    heights[header] = 20
    r = header + 1
    if not table:
        for j in range(1, len(HEADERS) + 1):
            put(r, j, "未发现问题" if j == 3 else None, fill=PASS_FILL if j == 3 else None)
        r += 1
    for i, (row, f) in enumerate(zip(table, report.findings, strict=True)):
        for j, value in enumerate(row, start=1):
            if j == 2:
                put(r, j, value, "bold", "center", severity_fill(f))
            elif j == 5 and i in targets:
                put(r, j, value, "link", "center")
                tip = xml_attr(f"转到 {f.where}")
                shown = xml_attr(clean(f.where))
                links.append(
                    f'<hyperlink ref="E{r}" location="{xml_attr(targets[i])}" tooltip="{tip}" display="{shown}"/>'
                )
            else:
                put(r, j, value, align="center" if j in (1, 4, 5) else "wrap")
        heights[r] = row_height((str(v), w) for v, w in zip(row, widths, strict=True))
        r += 1
    last = r - 1

    rows_xml = []
    for n in sorted(cells):
        height = f' ht="{_num(heights[n])}" customHeight="1"' if n in heights else ""
        rows_xml.append(f'<row r="{n}"{height}>'.encode() + b"".join(cells[n][c] for c in sorted(cells[n])) + b"</row>")
    cols = "".join(f'<col min="{j}" max="{j}" width="{_num(w)}" customWidth="1"/>' for j, w in enumerate(widths, 1))
    top = f"A{header + 1}"
    head = (
        f'<worksheet xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>'
        f'<dimension ref="A1:{get_column_letter(len(HEADERS))}{last}"/>'
        f'<sheetViews><sheetView tabSelected="1" workbookViewId="0"><pane ySplit="{header}" topLeftCell="{top}"'
        ' activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft" activeCell="A1" sqref="A1"/>'
        f'</sheetView></sheetViews><sheetFormatPr defaultRowHeight="15"/><cols>{cols}</cols><sheetData>'
    )
    tail = (
        f'</sheetData><autoFilter ref="A{header}:{get_column_letter(len(HEADERS))}{last}"/>'
        f'<mergeCells count="{len(merges)}">'
        + "".join(f'<mergeCell ref="{m}"/>' for m in merges)
        + "</mergeCells>"
        + (f"<hyperlinks>{''.join(links)}</hyperlinks>" if links else "")
        + '<printOptions horizontalCentered="1"/>'
        '<pageMargins left="0.4" right="0.4" top="0.6" bottom="0.6" header="0.3" footer="0.3"/>'
        '<pageSetup paperSize="9" orientation="landscape" fitToWidth="1" fitToHeight="0"/>'
        "<headerFooter><oddFooter>&amp;C第 &amp;P 页，共 &amp;N 页</oddFooter></headerFooter></worksheet>"
    )
    return ResultSheet(XML_DECL + head.encode() + b"".join(rows_xml) + tail.encode(), header, last)
