"""Write a layout as an Excel template (XlsxWriter): styles, validation, protection, live formulas."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
import re
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xlsxwriter.workbook import Workbook
    from xlsxwriter.worksheet import Worksheet


from xlsx_kpi.audit.recalc import prefilled, recalculate
from xlsx_kpi.errors import OutputExistsError, XlsxKpiError, os_reason, write_atomically
from xlsx_kpi.formats import expr
from xlsx_kpi.formats.identity import GUIDE_SHEET, META_SHEET, defined_name, identity_rows
from xlsx_kpi.formats.layout import build_layout
from xlsx_kpi.formats.plan import Approved, Cell, Identity, RowGroup, SheetLayout, WorkbookLayout
from xlsx_kpi.formats.spec import Catalog, WorkbookSpec, col_index, col_letters
from xlsx_kpi.formats.units import TargetRow, safe_filename
from xlsx_kpi.formats.widths import display_width
from xlsx_kpi.outputs.template_batch import write_batch
from xlsx_kpi.safe_text import without_spaces

STAGING_PREFIX = ".xlsx-kpi-batch-"  # the hidden folder a batch of templates is written into first
# Set (to anything) to write every template of a batch with XlsxWriter, as before template_batch (benchmarks).
DIRECT_ENV = "XLSX_KPI_DIRECT_TEMPLATES"
FONT = "宋体"
TITLE_FONT = "黑体"
INPUT_FILL = "#E2EFDA"
FORMULA_FILL = "#EDEDED"
AUX_FILL = "#F2F2F2"
ERROR_FILL = "#FF9999"
APPROVED_FILL = "#FFF2CC"
# A fixed creation time keeps regenerated templates identical to the shipped ones.
CREATED = dt.datetime(2020, 1, 1)

BASE: dict[str, Any] = {"font_name": FONT, "font_size": 10, "valign": "vcenter", "font_charset": 134}
BOX: dict[str, Any] = {**BASE, "border": 1, "text_wrap": True}
STYLES: dict[str, dict[str, Any]] = {
    "attachment": {**BASE, "font_name": TITLE_FONT, "font_size": 12},
    "title": {**BASE, "font_name": TITLE_FONT, "font_size": 16, "align": "center", "text_wrap": True},
    "subtitle": {**BASE, "font_size": 12, "align": "center"},
    "info_left": {**BASE, "align": "left"},
    "info_center": {**BASE, "align": "center"},
    "info_right": {**BASE, "align": "right"},
    "header": {**BOX, "bold": True, "align": "center"},
    "section": {**BOX, "bold": True, "align": "center"},
    "aux_header": {**BOX, "font_size": 9, "bold": True, "align": "center", "bg_color": "#D9D9D9"},
    "label": {**BOX, "align": "left"},
    # Merged labels spanning indicator rows a unit may insert into: unlocked, or LibreOffice unmerges them
    # when rows are inserted on the protected sheet (a locked merged cell cannot grow there).
    "group_label": {**BOX, "align": "center", "locked": False},
    "group_section": {**BOX, "bold": True, "align": "center", "locked": False},
    "label_center": {**BOX, "align": "center"},
    "text": {**BOX, "align": "left"},
    "aux_text": {**BOX, "font_size": 9, "align": "left", "font_color": "#404040", "bg_color": AUX_FILL},
    "aux_number": {**BOX, "font_size": 9, "align": "center", "bg_color": AUX_FILL, "num_format": "0.##"},
    # A printed constant such as a 分值: General shows 10 as "10" and 2.5 as "2.5".
    "number": {**BOX, "align": "center"},
    "aux_score": {**BOX, "font_size": 9, "align": "center", "bg_color": FORMULA_FILL, "num_format": "0.00"},
    "status": {**BASE, "bold": True, "text_wrap": True, "font_color": "#006100", "bg_color": "#C6EFCE", "border": 1},
    "grade": {**BOX, "bold": True, "align": "center", "bg_color": FORMULA_FILL},
    "score_total": {**BOX, "bold": True, "align": "center", "bg_color": FORMULA_FILL, "num_format": "0.00"},
    "f_amount": {**BOX, "align": "right", "bg_color": FORMULA_FILL, "num_format": "#,##0.00"},
    "f_percent": {**BOX, "align": "right", "bg_color": FORMULA_FILL, "num_format": "0.00%"},
    "f_score": {**BOX, "align": "center", "bg_color": FORMULA_FILL, "num_format": "0.00"},
    "in_score": {**BOX, "align": "center", "bg_color": INPUT_FILL, "locked": False, "num_format": "0.00"},
    "in_amount": {**BOX, "align": "right", "bg_color": INPUT_FILL, "locked": False, "num_format": "#,##0.00"},
    "in_count": {**BOX, "align": "center", "bg_color": INPUT_FILL, "locked": False, "num_format": "0"},
    "in_percent": {**BOX, "align": "right", "bg_color": INPUT_FILL, "locked": False, "num_format": "0.00%"},
    # Text inputs are formatted "@" so a code like 015001 keeps its leading zero.
    "in_text": {**BOX, "align": "left", "bg_color": INPUT_FILL, "locked": False, "num_format": "@"},
    "in_longtext": {**BOX, "align": "left", "bg_color": INPUT_FILL, "locked": False, "num_format": "@"},
    "in_choice": {**BOX, "align": "center", "bg_color": INPUT_FILL, "locked": False},
    # An approved 三级指标 or 预算指标值 (template --targets): printed like text, locked.
    "approved": {**BOX, "align": "left", "bg_color": APPROVED_FILL, "num_format": "@"},
    "aux_in_text": {**BOX, "font_size": 9, "align": "left", "bg_color": INPUT_FILL, "locked": False, "num_format": "@"},
    "in_tick": {**BOX, "align": "center", "bg_color": INPUT_FILL, "locked": False, "font_size": 12},
    "guide_title": {**BASE, "font_name": TITLE_FONT, "font_size": 16},
    "guide_text": {**BASE, "text_wrap": True, "valign": "top"},
    "guide_key": {**BOX, "bold": True, "align": "center"},
}
CHECK_FORMAT = {"bg_color": ERROR_FILL, "font_color": "#9C0006"}

PROTECT_OPTIONS = {
    "select_locked_cells": True,
    "select_unlocked_cells": True,
    "format_columns": True,
    "format_rows": True,
    # A unit may insert rows inside an indicator group for more indicators (read as extra rows); deleting
    # rows and columns stays locked.
    "insert_rows": True,
}


def abs_ref(ref: expr.CellRef) -> str:
    sheet = ref.sheet.replace("'", "''")
    return f"='{sheet}'!${col_letters(ref.col)}${ref.row + 1}"


def cached(value: expr.Value) -> object:
    """The value XlsxWriter stores as a formula's cached result, so non-recalculating viewers show it."""
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, expr.ExcelError):
        return value.code
    return "" if value is None else value


class TemplateWriter:
    """Writes one WorkbookLayout to an .xlsx file."""

    def __init__(self, layout: WorkbookLayout, values: Mapping[str, expr.Value], password: str | None) -> None:
        self.layout = layout
        self.values = values
        self.password = password
        self.formats: dict[str, Any] = {}

    def fmt(self, wb: Workbook, name: str) -> Any:
        if name not in self.formats:
            self.formats[name] = wb.add_format(STYLES[name])
        return self.formats[name]

    def write(self, path: Path) -> None:
        options = {"strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False}
        import xlsxwriter  # only where a template is written: reading and checking never need it

        wb = xlsxwriter.Workbook(str(path), options)
        wb.set_properties(
            {
                "title": self.layout.spec.name,
                "subject": f"{self.layout.identity.year} {self.layout.identity.unit_name}",
                "author": "xlsx-kpi",
                "comments": "由 xlsx-kpi 生成的预算绩效自评模板",
                "created": CREATED,
            }
        )
        for k, v in identity_rows(self.layout):
            if len(v) <= 255:  # Excel's limit for a custom property; the identity sheet holds everything
                wb.set_custom_property(f"xlsx_kpi_{k}", v or "-")
        guide = wb.add_worksheet(GUIDE_SHEET)
        sheets = [(sl, wb.add_worksheet(sl.name)) for sl in self.layout.sheets]
        meta = wb.add_worksheet(META_SHEET)
        self.write_guide(wb, guide)
        for sl, ws in sheets:
            self.write_sheet(wb, sl, ws)
        self.write_meta(meta)
        for key, ref in self.layout.refs.items():
            wb.define_name(defined_name(key), abs_ref(ref))
        guide.activate()
        wb.close()

    # -- sheets -----------------------------------------------------------------------------------
    def write_sheet(self, wb: Workbook, sl: SheetLayout, ws: Worksheet) -> None:
        for c in sl.spec.columns:
            i = col_index(c.col)
            ws.set_column(i, i, c.width)
        for row, h in sl.row_heights.items():
            ws.set_row(row, h)
        for cell in sl.cells:
            self.write_cell(wb, sl, ws, cell)
        self.write_checks(wb, sl, ws)
        self.page_setup(sl, ws)
        ws.protect(self.password or "", PROTECT_OPTIONS)

    def write_cell(self, wb: Workbook, sl: SheetLayout, ws: Worksheet, cell: Cell) -> None:
        fmt = self.fmt(wb, cell.style)
        if cell.merged:
            ws.merge_range(cell.row, cell.col, cell.bottom, cell.right, "", fmt)
        if cell.role == "formula":
            assert cell.expr is not None and cell.key is not None
            formula = "=" + expr.to_excel(expr.parse(cell.expr), self.layout.ref, sl.name)
            ws.write_formula(cell.row, cell.col, formula, fmt, cached(self.values.get(cell.key)))
        elif cell.role == "constant":
            if cell.value is not None:
                ws.write_number(cell.row, cell.col, float(cell.value), fmt)
            elif cell.text:
                ws.write_string(cell.row, cell.col, cell.text, fmt)
            else:
                ws.write_blank(cell.row, cell.col, None, fmt)
        elif cell.role == "input":
            self.write_value(ws, cell, self.values.get(cell.key or ""), fmt)
            self.validate(ws, cell)
        elif cell.text:
            ws.write_string(cell.row, cell.col, cell.text, fmt)
        else:
            ws.write_blank(cell.row, cell.col, None, fmt)

    @staticmethod
    def write_value(ws: Worksheet, cell: Cell, value: expr.Value, fmt: Any) -> None:
        """An input's value; text is always written as text, so "=1+1" never becomes a formula."""
        if isinstance(value, Decimal):
            ws.write_number(cell.row, cell.col, float(value), fmt)
        elif isinstance(value, str) and value:
            ws.write_string(cell.row, cell.col, value, fmt)
        else:
            ws.write_blank(cell.row, cell.col, None, fmt)

    def validate(self, ws: Worksheet, cell: Cell) -> None:
        """Data validation with a Chinese prompt and error on every input cell (top-left of a merge)."""
        kind = cell.input_type
        label = cell.label[:120]
        opts: dict[str, Any]
        if kind == "score":
            mx = cell.max or Decimal(0)
            mn = cell.min or Decimal(0)
            maximum: float | int = int(mx) if mx == mx.to_integral_value() else float(mx)
            minimum: float | int = int(mn) if mn == mn.to_integral_value() else float(mn)
            hint = "加分填正数，扣分填负数；" if mn < 0 else ""
            opts = {
                "validate": "decimal",
                "criteria": "between",
                "minimum": minimum,
                "maximum": maximum,
                "input_message": f"请填写{minimum}至{cell.max}之间的分数（{hint}本项分值{cell.max}分）。",
                "error_message": f"自评分数须在{minimum}至{cell.max}分之间，请重新填写。",
            }
        elif kind == "amount":
            opts = {
                "validate": "decimal",
                "criteria": ">=",
                "value": 0,
                "input_message": "请填写金额（单位见表头或单位列），不带单位，不小于0。",
                "error_message": "金额须为不小于0的数字，请重新填写。",
            }
        elif kind == "count":
            maximum = int(cell.max) if cell.max is not None else 1_000_000_000
            opts = {
                "validate": "integer",
                "criteria": "between",
                "minimum": 0,
                "maximum": maximum,
                "input_message": f"请填写0至{maximum}之间的整数。" if cell.max is not None else "请填写不小于0的整数。",
                "error_message": "须为不小于0的整数，请重新填写。",
            }
        elif kind == "percent":
            opts = {
                "validate": "decimal",
                "criteria": "between",
                "minimum": 0,
                "maximum": 1,
                "input_message": "请填写百分数，如 95%（0%～100%）。",
                "error_message": "须为0%至100%之间的百分数，如 95%。",
            }
        elif kind in ("choice", "tick"):
            options = cell.options or []
            opts = {
                "validate": "list",
                "source": options,
                "input_message": f"请从下拉列表中选择：{'、'.join(options)}。"
                if kind == "choice"
                else "属于该类型请选择“√”，否则留空；只能勾选一项。",
                "error_message": f"只能填写：{'、'.join(options)}。",
            }
        else:
            limit = 2000 if kind == "longtext" else 500
            opts = {
                "validate": "length",
                "criteria": "<=",
                "value": limit,
                "input_message": f"请填写文字，不超过{limit}字。",
                "error_message": f"内容过长，请控制在{limit}字以内。",
            }
        opts["input_title"] = label[:32]
        opts["error_title"] = "填写有误"
        opts["error_type"] = "stop"
        opts["input_message"] = opts["input_message"][:255]
        opts["error_message"] = opts["error_message"][:255]
        rc = ws.data_validation(cell.row, cell.col, cell.row, cell.col, opts)
        if rc != 0:
            raise XlsxKpiError(f"无法为 {cell.a1} 写入数据验证（XlsxWriter 返回 {rc}）")

    def write_checks(self, wb: Workbook, sl: SheetLayout, ws: Worksheet) -> None:
        """Conditional formats: the same self-check expressions the status counter sums."""
        red = wb.add_format(CHECK_FORMAT)
        for chk in sl.checks:
            ref = self.layout.ref(chk.key)
            formula = "=" + expr.to_excel(expr.parse(chk.expr), self.layout.ref, ref.sheet)
            ws.conditional_format(
                ref.row, ref.col, ref.row, ref.col, {"type": "formula", "criteria": formula, "format": red}
            )
        status = self.layout.refs.get(f"{sl.spec.key}.status")
        if status:
            ws.conditional_format(
                status.row,
                status.col,
                status.row,
                status.col,
                {"type": "text", "criteria": "not containing", "value": "自检通过", "format": red},
            )

    def page_setup(self, sl: SheetLayout, ws: Worksheet) -> None:
        if sl.spec.orientation == "portrait":
            ws.set_portrait()
        else:
            ws.set_landscape()
        ws.set_paper(9)
        ws.fit_to_pages(1, 0)
        ws.center_horizontally()
        ws.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
        ws.set_footer("&C第 &P 页，共 &N 页")
        ws.print_area(0, 0, sl.last_row, sl.print_last_col)
        ws.print_black_and_white()
        if sl.repeat_rows:
            ws.repeat_rows(*sl.repeat_rows)
            ws.freeze_panes(sl.repeat_rows[1] + 1, 0)

    # -- guide and identity -----------------------------------------------------------------------
    def write_guide(self, wb: Workbook, ws: Worksheet) -> None:
        ident = self.layout.identity
        spec = self.layout.spec
        ws.set_column(0, 0, 16)
        ws.set_column(1, 1, 90)
        ws.write_string(0, 0, f"填表说明 — {spec.name}", self.fmt(wb, "guide_title"))
        ws.set_row(0, 28)
        rows = [
            ("单位名称", ident.unit_name or "（未指定）"),
            ("预算单位编码", ident.unit_code or "（未指定）"),
            ("年度", str(ident.year)),
        ]
        if spec.kind == "project":
            rows += [("项目名称", ident.project_name or "（未指定）"), ("项目类型", ident.project_type or "（未指定）")]
        rows += [("表种", f"{spec.id}（第 {spec.version} 版，{spec.region}）")]
        r = 2
        for k, v in rows:
            ws.write_string(r, 0, k, self.fmt(wb, "guide_key"))
            ws.write_string(r, 1, v, self.fmt(wb, "label"))
            r += 1
        r += 1
        ws.write_string(r, 0, "填写要求", self.fmt(wb, "guide_key"))
        r += 1
        contact = ident.contact or spec.contact
        for n, line in enumerate(spec.instructions, start=1):
            text = f"{n}. {line.format(contact=contact)}"
            ws.write_string(r, 1, text, self.fmt(wb, "guide_text"))
            ws.set_row(r, 15 * max(1, -(-display_width(text) // 160)) + 4)
            r += 1
        r += 1
        ws.write_string(r, 0, "颜色含义", self.fmt(wb, "guide_key"))
        r += 1
        legend = [
            ("in_text", "可填写：浅绿色单元格，请在此填写"),
            ("f_amount", "自动计算：浅灰色单元格，已锁定，请勿修改"),
            ("label", "表格文字：已锁定"),
        ]
        if self.layout.identity.approved:
            legend.append(("approved", "已批复的绩效目标（三级指标、预算指标值）：浅黄色，已锁定，不得修改"))
        for style, text in legend:
            ws.write_blank(r, 0, None, self.fmt(wb, style))
            ws.write_string(r, 1, text, self.fmt(wb, "guide_text"))
            r += 1
        ws.write_blank(r, 0, None, wb.add_format({**STYLES["label"], "bg_color": ERROR_FILL}))
        ws.write_string(r, 1, "自检发现问题：红色，请按该单元格所在行、列的要求改正", self.fmt(wb, "guide_text"))
        ws.protect(self.password or "", PROTECT_OPTIONS)
        ws.set_landscape()
        ws.set_paper(9)
        ws.fit_to_pages(1, 0)

    def write_meta(self, ws: Worksheet) -> None:
        for r, (k, v) in enumerate(identity_rows(self.layout)):
            ws.write_string(r, 0, k)
            ws.write_string(r, 1, v)
        ws.very_hidden()
        ws.protect(self.password or "", PROTECT_OPTIONS)


def legacy_password_hash(password: str) -> str:
    """The 16-bit legacy hash Excel stores for sheet and workbook protection (ECMA-376 Part 4)."""
    h = 0
    for i, ch in enumerate(password, start=1):
        v = ord(ch) << i
        h ^= (v & 0x7FFF) | (v >> 15)
    h ^= len(password)
    h ^= 0xCE4B
    return f"{h:04X}"


def lock_structure(path: Path, password: str | None) -> None:
    """Add <workbookProtection lockStructure="1"/>: XlsxWriter cannot, so patch workbook.xml in the zip."""
    tmp = path.with_name(path.name + ".lock.tmp")
    attrs = 'lockStructure="1"'
    if password:
        attrs = f'workbookPassword="{legacy_password_hash(password)}" ' + attrs
    try:
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                data = src.read(info.filename)
                if info.filename == "xl/workbook.xml":
                    text = data.decode("utf-8")
                    text, n = re.subn(r"(<bookViews>)", f"<workbookProtection {attrs}/>\\1", text, count=1)
                    if n != 1:
                        raise XlsxKpiError("无法锁定工作簿结构：workbook.xml 中没有 bookViews")
                    data = text.encode("utf-8")
                dst.writestr(info, data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # a disk that fills up mid-write leaves no partial file behind


def write_template(
    layout: WorkbookLayout,
    path: Path,
    *,
    password: str | None = None,
    force: bool = False,
    inputs: Mapping[str, expr.Value] | None = None,
) -> Path:
    """Write the template for one unit to `path` atomically; never overwrite without `force`.

    `inputs` pre-fills input cells (used to make filled fixtures and benchmarks); every formula's
    cached value is computed by our own recalculation, so viewers that do not recalculate show it.
    """
    if path.exists() and not force:
        raise OutputExistsError("文件已存在；如需覆盖请加 --force", file=str(path))
    if path.is_dir():
        raise XlsxKpiError("输出路径是一个文件夹", file=str(path))
    values_in = prefilled(layout)
    for key, value in (inputs or {}).items():
        cell = layout.cells.get(key)
        if cell is None or cell.role != "input":
            raise XlsxKpiError(f"{key!r} 不是可填写的单元格")
        values_in[key] = value
    values = recalculate(layout, values_in)

    def write(tmp: Path) -> None:
        TemplateWriter(layout, values, password).write(tmp)
        lock_structure(tmp, password)

    return write_atomically(path, write)


def template_filename(wb: WorkbookSpec, identity: Identity) -> str:
    """The file name an accountant emails: year, code, unit, (project,) kind."""
    name = wb.filename.format(
        year=identity.year,
        code=identity.unit_code or "编码",
        unit=identity.unit_name or "单位",
        project=identity.project_name or "项目",
    )
    return safe_filename(name)


def check_batch_names(wb: WorkbookSpec, identities: list[Identity], out_dir: Path) -> list[Path]:
    """The file of each identity, refused up front when two share a name: one pass, no layout built
    (100,000 rows in well under a second), so a batch is refused before any costly work."""
    paths = [out_dir / template_filename(wb, ident) for ident in identities]
    # Windows (and macOS) file names ignore case: two names equal but for case would overwrite each other.
    seen = Counter(p.name.casefold() for p in paths)
    dupes = sorted({p.name for p in paths if seen[p.name.casefold()] > 1})
    if dupes:
        raise XlsxKpiError(f"单位清单中有重复的单位/项目，会生成同名文件：{'、'.join(dupes[:5])}")
    return paths


def generate(
    catalog: Catalog,
    wb: WorkbookSpec,
    identities: list[Identity],
    out_dir: Path,
    *,
    password: str | None = None,
    force: bool = False,
) -> list[Path]:
    """One template per identity into `out_dir`, all or nothing; refuses up front if any file exists (without force).

    Every file is written into a hidden staging folder inside `out_dir` first and moved into place only
    when all are written: a full disk or an interrupted run leaves no file of the batch behind, so a
    rerun needs no --force. Duplicate names are found in one pass (100,000 rows in well under a second).

    Each shape of template (kind, year, rows, targets, ...) is written once by XlsxWriter and every unit's
    file patched from it, in a pool of processes for a large batch (outputs/template_batch.py).
    """
    paths = check_batch_names(wb, identities, out_dir)
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        names = "、".join(p.name for p in existing[:5]) + ("等" if len(existing) > 5 else "")
        raise OutputExistsError(
            f"以下 {len(existing)} 个文件已存在，未生成任何文件：{names}；如需覆盖请加 --force", file=str(out_dir)
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out_dir))
    except OSError as e:
        raise XlsxKpiError(f"无法写入：{os_reason(e)}", file=str(out_dir)) from None
    try:
        if os.environ.get(DIRECT_ENV):
            for ident, path in zip(identities, paths, strict=True):
                write_template(build_layout(catalog, wb, ident), staging / path.name, password=password, force=True)
        else:
            jobs = [(ident, staging / path.name, str(path)) for ident, path in zip(identities, paths, strict=True)]
            write_batch(catalog, wb, jobs, functools.partial(write_template, password=password, force=True))
        for path in paths:
            try:
                os.replace(staging / path.name, path)
            except OSError as e:
                raise XlsxKpiError(f"无法写入：{os_reason(e)}", file=str(path)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths


# The groups of the last few (catalog, workbook, year): a --units batch shapes every unit with the same ones.
_GROUPS: dict[tuple[int, str, int], tuple[Catalog, list[RowGroup]]] = {}


def spec_groups(catalog: Catalog, wb: WorkbookSpec, year: int) -> list[RowGroup]:
    """The indicator groups of a workbook kind with the spec's row counts (one layout built, then reused)."""
    key = (id(catalog), wb.id, year)
    hit = _GROUPS.get(key)
    if hit is not None and hit[0] is catalog:  # the catalog itself is kept, so its id cannot be reused meanwhile
        return hit[1]
    if len(_GROUPS) >= 8:
        _GROUPS.clear()
    groups = build_layout(catalog, wb, Identity(year=year)).groups
    _GROUPS[key] = (catalog, groups)
    return groups


def shaped(
    catalog: Catalog,
    wb: WorkbookSpec,
    identity: Identity,
    rows: list[tuple[str, int]] | None = None,
    targets: list[TargetRow] | None = None,
    *,
    rows_from: str = "--rows",
    targets_file: str = "",
) -> Identity:
    """The identity with its indicator groups sized (`rows`: group name -> count) and its approved targets.

    Groups are named as printed (数量指标), without 指标 (数量) or by id (qty). The targets are the rows
    of `targets` for this unit's 预算单位编码 (and, for a project, its 项目名称). A group never gets fewer
    rows than it has approved targets.
    """
    groups = spec_groups(catalog, wb, identity.year)
    names: dict[str, set[str]] = {}
    for g in groups:
        for alias in g.aliases:
            names.setdefault(alias, set()).add(g.key)

    def find(name: str, where: str) -> str:
        keys = names.get(name.strip(), set())
        if len(keys) == 1:
            return next(iter(keys))
        known = "、".join(g.aliases[1] if len(g.aliases) > 1 else g.key for g in groups)
        why = "对应多个指标组" if keys else "不是本表种的指标组"
        raise XlsxKpiError(f"{where}：“{name}”{why}；可用：{known}")

    counts: dict[str, int] = {}
    for name, n in rows or []:
        counts[find(name, rows_from)] = n
    approved: list[Approved] = []
    for t in targets or []:
        if t.unit_code != identity.unit_code:
            continue
        if wb.kind == "project" and without_spaces(t.project_name) != without_spaces(identity.project_name):
            continue
        # A department's own targets: rows without a project (or naming the unit itself, or 部门整体).
        if (
            wb.kind != "project"
            and t.project_name
            and without_spaces(t.project_name) not in (without_spaces(identity.unit_name), "部门整体")
        ):
            continue
        approved.append(Approved(find(t.group, f"文件 {targets_file} 第 {t.line} 行“指标组”"), t.name, t.target))
    order = {g.key: i for i, g in enumerate(groups)}
    approved.sort(key=lambda a: order[a.group])
    for key, n in counts.items():
        have = sum(1 for a in approved if a.group == key)
        if n < have:
            name = next(g.name for g in groups if g.key == key)
            raise XlsxKpiError(f"{rows_from}：{name}有 {have} 个批复的绩效指标，行数不能少于 {have}")
    return dataclasses.replace(identity, rows=tuple(sorted(counts.items())), approved=tuple(approved))
