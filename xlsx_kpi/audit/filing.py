"""The filing as read (RawCell, Filing), the reader's limits and its refusals (one Chinese sentence each)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from xlsx_kpi.errors import XlsxKpiError
from xlsx_kpi.formats.expr import ExcelError
from xlsx_kpi.formats.plan import WorkbookLayout
from xlsx_kpi.formats.spec import col_letters

# --- Limits (the zip and XML guards are in ooxml.package) -----------------------------------------------
MAX_SHARED_STRINGS = 1_000_000  # ~60 MB of str objects; a filled template has ~300
MAX_NAMES = 100_000  # K_ defined names kept (a template has one per keyed cell, ~330); more are ignored
MAX_SHEETS = 10_000  # sheet entries kept from workbook.xml
MAX_META_ROWS = 200  # rows of the identity sheet read; it has ~15
MAX_GROUP_ROWS = 500  # rows one indicator group may have (as generated or after the unit inserted rows)
STRAY_WINDOW = 30  # rows below the last indicator row of a sheet searched for indicators typed outside it
LAYOUT_CACHE_SIZE = 64  # laid-out workbooks kept per (catalog, kind, year); build_layout costs ~6 ms
# workbook.xml (~330 defined names) and styles.xml cost ~25% of a read and are the same in every workbook made
# from one template: their parsed form is kept per distinct compressed content (see read_once).
PART_MEMO_SIZE = 32

# --- The refusals: one Chinese sentence each, saying what to do -------------------------------------
MSG_TOO_MANY_STRINGS = f"文件异常（超过 {MAX_SHARED_STRINGS} 个文字单元格内容），已拒绝读取"
MSG_STRICT = "这是“严格 Open XML”格式，请在 Excel 中另存为“Excel 工作簿(.xlsx)”"
MSG_NOT_OURS = "不是由 xlsx-kpi 生成的模板（找不到模板标识），请使用下发的模板填写"
MSG_BAD_IDENTITY = "模板标识不完整（{field} 缺失或无法识别），请使用下发的模板重新填写"
MSG_UNKNOWN_KIND = "模板表种“{wid}”不在本工具的规格中，请使用下发的模板或升级 xlsx-kpi"
MSG_OLD_VERSION = "模板版本 {found} 已过期（当前为第 {current} 版），无法读取，请用新模板重新填写"
MSG_NEW_VERSION = "模板版本 {found} 比本工具的规格（第 {current} 版）新，请升级 xlsx-kpi 后再读取"
MSG_FINGERPRINT = "模板结构与当前规格不一致（版式指纹不符），请用新模板重新填写"
MSG_MISSING_SHEET = "缺少工作表“{sheet}”（可能被删除或改名），请用原模板重新填写"
MSG_DUPLICATE_CELL = (
    "文件已损坏（同一个单元格在文件中出现了两次，不同软件会读出不同的值），请在 Excel 或 WPS 中重新保存后报送"
)
MSG_ROW_ORDER = (
    "文件已损坏（工作表 {part} 中第 {row} 行排在第 {previous} 行之后，行的顺序错乱，Excel 也会报告它已损坏），"
    "请在 Excel 或 WPS 中修复并重新保存后报送"
)
MSG_IDENTITY_MISSING = (
    "模板的隐藏标识没有校验值（由旧版 xlsx-kpi 生成的模板，或校验值被删除），无法确认这份报送属于哪个单位和年度；"
    "请用新版下发的模板重新填写"
)
MSG_IDENTITY_TAMPERED = (
    "模板的隐藏标识（年度、单位、表种等）与其校验值不符，可能被改动过，无法确认这份报送属于哪个单位和年度；"
    "请使用下发的模板重新填写"
)
MSG_LABEL_MOVED = (
    "三级指标应为“{expected}”，此处却是“{found}”（指标行可能被排序、调换或改写），按位置读取会把分数记到别的指标下，"
    "无法可靠读取；请用原模板重新填写，不要对指标表排序或调换行"
)
MSG_CELL_DELETED = (
    "模板中的这个单元格已被删除（Excel 名称 {name} 显示 #REF!，可能删除了行或列），"
    "无法可靠读取；请用原模板重新填写，不要删除行或列"
)

# The first sheet of an annotated copy (annotate.RESULT_SHEET); a returned copy still has it.
REVIEW_SHEET = "审核结果"


@dataclass(frozen=True)
class RawCell:
    """What one cell of the file holds, before any interpretation.

    value: text (shared, inline or a formula's text result), a number as Decimal (to_decimal, so
    6.0299999999999994 reads 6.03), a bool, an ExcelError, or None for a blank cell and for a formula
    whose cached result is missing or empty text. formula: the formula text without "=", if any.
    is_date: a number shown with a date or time format, or an ISO date cell (t="d", kept as text).
    address: "附件1!F7", where the value was read.
    """

    value: str | Decimal | bool | ExcelError | None
    formula: str | None = None
    is_date: bool = False
    address: str = ""


@dataclass
class Filing:
    """A returned workbook as read: its identity, its layout and the raw content of every keyed cell.

    The layout is shared by every filing of the same unit and kind (building one costs ~7 ms), so treat
    it as read-only.
    """

    path: Path
    layout: WorkbookLayout
    meta: dict[str, str]
    cells: dict[str, RawCell]
    moved: dict[str, str] = field(default_factory=dict)
    # Text of the sheet titles that show the year ("2021年度…"), by address ("附件1!A2"): the visible
    # year, which rules compare with the hidden identity's year.
    titles: dict[str, str] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)  # template sheet name -> the name in this file
    added: list[str] = field(default_factory=list)  # sheets the unit added (not ours, not 审核结果)
    # Filled cells inside an indicator table that belong to no indicator row (e.g. a row inserted between
    # two groups): each is a whole row's first filled cell, with the row's text.
    stray: list[tuple[RawCell, str]] = field(default_factory=list)
    # Rows the unit inserted into (positive) or deleted from (negative) each indicator group, by group key.
    inserted: dict[str, int] = field(default_factory=dict)

    def sheet_name(self, template_name: str) -> str:
        """Where a sheet of the template is in this file (a renamed sheet under its new name)."""
        return self.renamed.get(template_name, template_name)

    def a1(self, key: str) -> tuple[str, str]:
        """(sheet, "F7") where `key` was read, after following moved defined names."""
        cell = self.cells.get(key)
        if cell is not None and cell.address:
            sheet, _, a1 = cell.address.rpartition("!")
            return sheet, a1
        ref = self.layout.ref(key)
        return ref.sheet, f"{col_letters(ref.col)}{ref.row + 1}"


def fail(message: str, path: Path, cell: str | None = None) -> XlsxKpiError:
    return XlsxKpiError(message, file=str(path), cell=cell)
