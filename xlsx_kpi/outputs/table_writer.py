"""Titled, frozen tables on XlsxWriter sheets: typed cells, formula-safe text, links to files, CJK-aware widths."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from xlsx_kpi.formats.widths import display_width
from xlsx_kpi.safe_text import looks_like_formula, printable

__all__ = ["FONT", "MAX_LINKS", "TableWriter", "row_height", "text_width"]

FONT = "宋体"
MAX_LINKS = 60_000  # Excel allows 65,530 hyperlinks per worksheet; the rest are written as plain text


def text_width(text: str) -> int:
    """Columns a text needs: a CJK (wide) character counts 2 (XlsxWriter's autofit counts 1)."""
    return max(display_width(line) for line in str(text).splitlines() or [""])


def row_height(text: str, width: int, *, line: float = 13.5) -> float:
    """Points a row needs to show `text` wrapped in a column `width` characters wide."""
    lines = 0
    for part in text.splitlines() or [""]:
        lines += max(1, -(-text_width(part) // max(1, width - 1)))
    return max(15.0, line * lines + 2)


@functools.lru_cache(maxsize=4096)
def _relative(file: Path, base: Path) -> str:
    """`file` relative to `base`, both resolved; kept, as a file is linked from every row of its findings."""
    try:
        return os.path.relpath(file.resolve(), base.resolve())
    except ValueError:  # another drive on Windows
        return str(file.resolve())


def _link_target(file: Path, base: Path, sheet: str = "", cell: str = "") -> str | None:
    """An external: hyperlink to `file` relative to the written workbook's folder (the pair can move together)."""
    rel = _relative(file, base)
    if "#" in rel or len(rel) > 1500 or printable(rel) != rel:
        return None  # a name that is not UTF-8 (GBK bytes from a Windows zip) cannot be a link target
    target = "external:" + rel
    if sheet and cell:
        target += "#'" + sheet.replace("'", "''") + "'!" + cell
    return target


class TableWriter:
    """Named formats on one XlsxWriter workbook (self.wb), and cells, links and tables written with them.

    A subclass opens self.wb and defines the formats the helpers use ("title", "info", "header", "text", "link").
    """

    def __init__(self, path: Path) -> None:
        self.path = path  # the workbook's own path: links are relative to its folder
        self.formats: dict[str, Any] = {}
        self.props: dict[str, dict[str, Any]] = {}
        self.links = 0
        self.wb: Workbook

    def fmt(self, name: str, **props: Any) -> Any:
        if name not in self.formats:
            base: dict[str, Any] = {"font_name": FONT, "font_size": 10, "valign": "vcenter"}
            self.props[name] = {**base, **props}
            self.formats[name] = self.wb.add_format(self.props[name])
        return self.formats[name]

    def quoted(self, name: str) -> Any:
        """Format `name` with Excel's leading apostrophe (quotePrefix): text that looks like a formula
        (safe_text.looks_like_formula) shows as typed and stays text when the cell is edited."""
        key = f"{name}/quoted"
        if key not in self.formats:
            self.formats[key] = self.wb.add_format({**self.props[name], "quote_prefix": True})
        return self.formats[key]

    def cell(self, ws: Worksheet, row: int, col: int, value: object, fmt: str) -> None:
        """Text is always written as text, and formula-looking text neutralised (safe_text.neutralise)."""
        f = self.formats[fmt]
        if value is None or value == "":
            ws.write_blank(row, col, None, f)
        elif isinstance(value, bool):
            ws.write_string(row, col, "TRUE" if value else "FALSE", f)
        elif isinstance(value, Decimal | int | float):
            ws.write_number(row, col, float(value), f)
        elif isinstance(value, datetime):
            ws.write_datetime(row, col, value, f)
        else:
            text = printable(str(value))
            ws.write_string(row, col, text, self.quoted(fmt) if looks_like_formula(text) else f)

    def link(self, ws: Worksheet, row: int, col: int, file: Path, text: str, sheet: str = "", a1: str = "") -> None:
        target = _link_target(file, self.path.parent, sheet, a1) if self.links < MAX_LINKS else None
        text = printable(text)
        tip = printable(str(file))
        if looks_like_formula(text):
            target = None  # a link's text cannot carry the apostrophe: written as quoted text
        if target is None or ws.write_url(row, col, target, self.formats["link"], text, tip) < 0:
            ws.write_string(row, col, text, self.quoted("text") if looks_like_formula(text) else self.formats["text"])
        else:
            self.links += 1

    def table(
        self,
        ws: Worksheet,
        title: str,
        info: str,
        headers: list[tuple[str, int]],
        *,
        header_height: float = 30,
    ) -> None:
        """Title (row 1), a line of context (row 2), headers (row 3), frozen; widths in character units."""
        self.links = 0
        ws.hide_gridlines(2)
        ws.write_string(0, 0, title, self.formats["title"])
        ws.write_string(1, 0, info, self.formats["info"])
        ws.set_row(0, 24)
        for col, (text, width) in enumerate(headers):
            ws.write_string(2, col, text, self.formats["header"])
            ws.set_column(col, col, width)
        ws.set_row(2, header_height)
        ws.freeze_panes(3, 1)
        ws.set_landscape()
        ws.set_paper(9)  # A4
        ws.fit_to_pages(1, 0)
        ws.repeat_rows(2)
        ws.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
        ws.set_footer("&C第 &P 页，共 &N 页")

    @staticmethod
    def widths(rows: Iterable[Sequence[object]], headers: list[tuple[str, int]], cap: int = 40) -> None:
        """Widen columns to their longest text (CJK counted double), up to `cap`."""
        for row in rows:
            for col, value in enumerate(row):
                if isinstance(value, str) and col < len(headers):
                    text, width = headers[col]
                    headers[col] = (text, min(cap, max(width, text_width(value) + 2)))
