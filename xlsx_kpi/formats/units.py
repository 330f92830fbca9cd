"""Read the list of units (and projects) a batch of templates is sent to: .xlsx or .csv."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from xlsx_kpi.errors import XlsxKpiError

NAME_COLS = ("单位名称", "部门名称", "部门（单位）名称", "预算单位名称")
CODE_COLS = ("预算单位编码", "单位编码", "编码")
PROJECT_COLS = ("项目名称",)
TYPE_COLS = ("项目类型",)
PROJECT_TYPES = ("产业发展", "民生保障", "基础设施", "行政运行")
ROWS_COLS = ("指标行数", "行数")
GROUP_COLS = ("指标组", "二级指标")
INDICATOR_COLS = ("三级指标", "指标名称")
TARGET_COLS = ("预算指标值", "指标值", "年度指标值")
ROWS_ITEM = re.compile(r"^\s*([^=＝:：\s]+)\s*[=＝:：]\s*(\d{1,3})\s*$")
# Characters Windows forbids in file names, plus control characters.
UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


@dataclass(frozen=True)
class UnitRow:
    unit_name: str
    unit_code: str
    project_name: str = ""
    project_type: str = ""
    line: int = 0
    rows: str = ""


@dataclass(frozen=True)
class TargetRow:
    """One approved 绩效目标: a row of a 绩效目标申报表 export."""

    unit_code: str
    project_name: str
    group: str
    name: str
    target: str
    line: int


def parse_rows(text: str, where: str = "--rows") -> list[tuple[str, int]]:
    """`数量=12,质量=4` to [("数量", 12), ("质量", 4)]; a bad item raises naming `where`."""
    out: list[tuple[str, int]] = []
    for item in re.split(r"[,，;；、]", text):
        if not item.strip():
            continue
        m = ROWS_ITEM.match(item)
        if not m or not 1 <= int(m.group(2)) <= 200:
            raise XlsxKpiError(f"{where}：无法识别“{item.strip()}”，应写成 指标组=行数（1至200），如 数量=12,质量=4")
        out.append((m.group(1), int(m.group(2))))
    return out


def read_targets(path: Path) -> list[TargetRow]:
    """Approved targets: 预算单位编码, (项目名称,) 指标组/二级指标, 三级指标, 预算指标值 — header names in Chinese."""
    df = _read_table(path, "绩效目标文件")
    df.columns = [str(c).strip() for c in df.columns]
    cols = list(df.columns)
    code_col, proj_col = _pick(cols, CODE_COLS), _pick(cols, PROJECT_COLS)
    group_col, name_col, target_col = _pick(cols, GROUP_COLS), _pick(cols, INDICATOR_COLS), _pick(cols, TARGET_COLS)
    if not code_col or not group_col or not name_col or not target_col:
        raise XlsxKpiError(
            "绩效目标文件须有“预算单位编码”“指标组（或二级指标）”“三级指标”“预算指标值”四列（项目支出另有“项目名称”），"
            f"现有列：{'、'.join(cols) or '（无）'}",
            file=str(path),
        )
    rows: list[TargetRow] = []
    for i, rec in enumerate(df.to_dict("records"), start=2):
        values = [str(rec[c]).strip() for c in (code_col, group_col, name_col, target_col)]
        if not any(values):
            continue
        code, group, name, target = values
        for label, v in (("预算单位编码", code), ("指标组", group), ("三级指标", name), ("预算指标值", target)):
            if not v:
                raise XlsxKpiError(f"第 {i} 行缺少{label}", file=str(path))
        project = str(rec[proj_col]).strip() if proj_col else ""
        rows.append(TargetRow(code, project, group, name, target, i))
    if not rows:
        raise XlsxKpiError("绩效目标文件中没有任何指标", file=str(path))
    return rows


def _pick(columns: list[str], wanted: tuple[str, ...]) -> str | None:
    for w in wanted:
        if w in columns:
            return w
    return None


def _read_table(path: Path, what: str = "单位清单") -> pd.DataFrame:
    if not path.exists():
        raise XlsxKpiError(f"{what}文件不存在，请检查路径", file=str(path))
    if path.is_dir():
        raise XlsxKpiError(f"{what}应是 .xlsx 或 .csv 文件，而不是文件夹", file=str(path))
    suffix = path.suffix.lower()
    import pandas as pd  # ~0.3-0.7 s to import: only when a list is read

    try:
        if suffix in (".xlsx", ".xlsm"):
            return pd.read_excel(path, dtype=str, engine="openpyxl").fillna("")
        if suffix == ".csv":
            # Excel on Chinese Windows saves CSV as GBK; UTF-8 (with or without BOM) is tried first.
            for encoding in ("utf-8-sig", "gb18030"):
                try:
                    return pd.read_csv(path, dtype=str, encoding=encoding).fillna("")
                except UnicodeDecodeError:
                    continue
            raise XlsxKpiError(f"无法识别{what}的文字编码，请另存为 UTF-8 或 GBK 编码的 CSV", file=str(path))
    except XlsxKpiError:
        raise
    except Exception as e:  # noqa: BLE001 - pandas/openpyxl raise many types for a bad file
        raise XlsxKpiError(
            f"无法读取{what}（{type(e).__name__}），请确认它是有效的 .xlsx 或 .csv 文件", file=str(path)
        ) from None
    raise XlsxKpiError(f"{what}须为 .xlsx 或 .csv 文件", file=str(path))


def read_units(path: Path, *, project: bool) -> list[UnitRow]:
    """Rows of 单位名称, 预算单位编码 (and 项目名称, 项目类型 for projects); header names in Chinese."""
    df = _read_table(path)
    df.columns = [str(c).strip() for c in df.columns]
    cols = list(df.columns)
    name_col, code_col = _pick(cols, NAME_COLS), _pick(cols, CODE_COLS)
    if not name_col or not code_col:
        raise XlsxKpiError(
            f"单位清单须有“单位名称”和“预算单位编码”两列，现有列：{'、'.join(cols) or '（无）'}", file=str(path)
        )
    proj_col, type_col = _pick(cols, PROJECT_COLS), _pick(cols, TYPE_COLS)
    rows_col = _pick(cols, ROWS_COLS)
    if project and not proj_col:
        raise XlsxKpiError("项目支出表需要单位清单中有“项目名称”列（可选“项目类型”列）", file=str(path))
    rows: list[UnitRow] = []
    for i, rec in enumerate(df.to_dict("records"), start=2):
        name, code = str(rec[name_col]).strip(), str(rec[code_col]).strip()
        if not name and not code:
            continue
        if not name or not code:
            raise XlsxKpiError(f"第 {i} 行缺少{'单位名称' if not name else '预算单位编码'}", file=str(path))
        pname = str(rec[proj_col]).strip() if proj_col else ""
        ptype = str(rec[type_col]).strip() if type_col else ""
        if project and not pname:
            raise XlsxKpiError(f"第 {i} 行缺少项目名称", file=str(path))
        if ptype and ptype not in PROJECT_TYPES:
            raise XlsxKpiError(f"第 {i} 行项目类型“{ptype}”无效，应为：{'、'.join(PROJECT_TYPES)}", file=str(path))
        shape = str(rec[rows_col]).strip() if rows_col else ""
        if shape:
            parse_rows(shape, f"{path.name} 第 {i} 行“指标行数”")
        rows.append(UnitRow(name, code, pname, ptype, i, shape))
    if not rows:
        raise XlsxKpiError("单位清单中没有任何单位", file=str(path))
    return rows


def safe_filename(name: str) -> str:
    """A file name an accountant can email: no characters Windows forbids, at most 150 characters."""
    cleaned = UNSAFE.sub("_", name).strip(" .")
    stem, dot, ext = cleaned.rpartition(".")
    if dot and len(cleaned) > 150:
        cleaned = stem[: 150 - len(ext) - 1] + "." + ext
    return cleaned or "未命名.xlsx"
