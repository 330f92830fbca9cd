"""What a whole-file loader (openpyxl) would build from a package, measured before it is given one."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xlsx_kpi.errors import XlsxKpiError
from xlsx_kpi.ooxml.package import Package, fail, new_parser, open_package, parse_part
from xlsx_kpi.ooxml.parts import check_kind

__all__ = ["LOAD_MAX_ELEMENTS", "LOAD_MAX_EXPANDED", "LOAD_MAX_FORMULA_WORK", "check_loadable"]

# What a whole-file loader (openpyxl, which writes the annotated copy) may be given; see check_loadable.
# openpyxl keeps ~350 bytes per cell element, creates a cell for every cell of a merged or hyperlinked
# range (one <mergeCell ref="A2000:XFD1048576"/> in a 32 KB file took 2.9 GB and 30 s), and re-tokenises
# a shared formula's text for every cell that shares it. A filled template has ~4,000 elements (~9,000
# once LibreOffice saved it) and a few hundred merged cells.
LOAD_MAX_ELEMENTS = 200_000  # XML elements in all parts, plus the ranges listed in sqref attributes
LOAD_MAX_EXPANDED = 100_000  # cells of merged and hyperlinked ranges
LOAD_MAX_FORMULA_WORK = 2_000_000  # characters of shared-formula text re-tokenised (text x cells sharing it)
MSG_TOO_HEAVY = "工作簿内容异常庞大（{what}），为安全起见不整体打开，不生成审核副本"


def check_loadable(path: Path) -> None:
    """Refuse a workbook that a whole-file loader (openpyxl) could not open in bounded memory and time.

    read_workbook reads only what it needs; openpyxl, which writes the annotated copy, builds every
    part. Every XML part is parsed here with the same zip and XML guards, counting what openpyxl
    would build (LOAD_MAX_*), and the scan stops at the first budget exceeded: ~10 ms for a filled
    template, under a second at the limits. Raises XlsxKpiError (exit code 2) naming the file.
    """
    with open_package(Path(path)) as pkg:
        check_kind(pkg)
        cost = _LoadCost()
        for name in pkg.members:
            _measure_part(pkg, name, cost)


@dataclass
class _LoadCost:
    elements: int = 0
    expanded: int = 0
    formula_work: int = 0


_XML_START = (b"<", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_A1 = re.compile(r"^\$?([A-Z]{1,3})\$?([0-9]{1,7})$")
MAX_ROW = 1_048_576
MAX_COL = 16_384  # XFD


def _split_a1(a1: str) -> tuple[int, int] | None:
    """(row, col), both 0-based, of "F7" or "$F$7"; None when not a cell of a sheet."""
    m = _A1.match(a1)
    if not m:
        return None
    col = 0
    for ch in m.group(1):
        col = col * 26 + ord(ch) - 64
    row, col = int(m.group(2)) - 1, col - 1
    if not (0 <= row < MAX_ROW and 0 <= col < MAX_COL):
        return None
    return row, col


def _area(ref: str) -> int:
    first, _, last = ref.partition(":")
    a, b = _split_a1(first.strip()), _split_a1(last.strip())
    if a is None or b is None:
        return 0
    return (abs(b[0] - a[0]) + 1) * (abs(b[1] - a[1]) + 1)


def _measure_part(pkg: Package, name: str, cost: _LoadCost) -> None:
    """Add one part's cost; parts that are not XML (images, binary parts) are never parsed by a loader."""
    if name.endswith("/"):
        return
    chunks = pkg.chunks(name)
    first = next(chunks, b"")
    if not first.lstrip(b" \t\r\n").startswith(_XML_START):
        return
    parser = new_parser()
    masters: dict[str, int] = {}  # shared formula id -> length of its text, in this part
    formula: list[Any] = [False, "", 0]  # the <f> being read: shared?, its si, text length so far

    def heavy(what: str) -> XlsxKpiError:
        return fail(MSG_TOO_HEAVY.format(what=f"{name} 中{what}"), pkg.path)

    def start(tag: str, attrs: dict[str, str]) -> None:
        cost.elements += 1
        sqref = attrs.get("sqref")
        if sqref:
            cost.elements += sqref.count(" ")
        if cost.elements > LOAD_MAX_ELEMENTS:
            raise heavy(f"单元格等 XML 元素超过 {LOAD_MAX_ELEMENTS} 个")
        local = tag.rpartition(":")[2]
        if local == "mergeCell" or local == "hyperlink":
            ref = attrs.get("ref", "")
            if ":" in ref:
                cost.expanded += _area(ref)
                if cost.expanded > LOAD_MAX_EXPANDED:
                    raise heavy(f"合并或超链接区域超过 {LOAD_MAX_EXPANDED} 个单元格")
        elif local == "f":
            formula[:] = [attrs.get("t") == "shared", attrs.get("si", ""), 0]
            parser.CharacterDataHandler = text
            parser.EndElementHandler = end

    def text(data: str) -> None:
        formula[2] += len(data)

    def end(tag: str) -> None:
        parser.CharacterDataHandler = None
        parser.EndElementHandler = None
        shared, si, length = formula
        if not shared:
            return
        # openpyxl re-tokenises the first text of a shared formula for every other cell sharing it.
        if si in masters:
            cost.formula_work += masters[si]
            if cost.formula_work > LOAD_MAX_FORMULA_WORK:
                raise heavy(f"共享公式展开超过 {LOAD_MAX_FORMULA_WORK} 个字符")
        elif length:
            masters[si] = length

    parser.StartElementHandler = start
    parse_part(pkg, name, parser, itertools.chain((first,), chunks))
