"""Read cell values the way users really type them: numbers and percentages (targets: audit/targets.py)."""

from __future__ import annotations

import enum
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache

__all__ = [
    "DEFAULT_UNITS",
    "HUNDREDTH",
    "NUMBER_PATTERN",
    "Parsed",
    "Status",
    "THOUSANDTH",
    "normalise_text",
    "normalise_with_notes",
    "parse_number",
    "parse_percent",
    "to_decimal",
]

DEFAULT_UNITS: tuple[str, ...] = ("分", "元", "百元", "万元", "人", "个", "项", "家", "次", "人次")


class Status(enum.Enum):
    """What kind of value a cell held once parsed."""

    OK = "ok"
    BLANK = "blank"
    TEXT = "text"
    ERROR = "error"
    DATE = "date"


@dataclass(frozen=True)
class Parsed:
    """One cell read as a number: its kind, the number when status is OK, and a remark for the reviewer."""

    status: Status
    value: Decimal | None
    raw: object
    note: str = ""


# ---------------------------------------------------------------------------------------------
# Shared text clean-up

HUNDREDTH = Decimal("0.01")
THOUSANDTH = Decimal("0.001")

# Pasted from web pages and Word these are invisible, yet they make a number "text".
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff")
# U+2212 comes from Word/PDF copies, U+FE63 from some IMEs; U+FF0D is handled as a wide form.
_ODD_MINUS = {"\u2212": "-", "\ufe63": "-"}


def normalise_with_notes(text: str) -> tuple[str, list[str]]:
    """Apply NFKC to width and no-break forms only, unify minus signs, drop invisible characters.

    Full NFKC is not used because it rewrites ``10²`` as ``102`` and ``①`` as ``1``, turning text
    that is not a number into a wrong one.
    """
    out: list[str] = []
    wide = odd_minus = False
    for ch in text:
        if ch in _INVISIBLE:
            continue
        if ch in _ODD_MINUS:
            out.append(_ODD_MINUS[ch])
            odd_minus = True
            continue
        tag = unicodedata.decomposition(ch)
        if tag.startswith(("<wide>", "<narrow>", "<noBreak>")):
            folded = unicodedata.normalize("NFKC", ch)
            # An ideographic space is whitespace either way; only visible characters deserve a remark.
            wide = wide or (tag.startswith(("<wide>", "<narrow>")) and not folded.isspace())
            out.append(folded)
        else:
            out.append(ch)
    notes: list[str] = []
    if wide:
        notes.append("全角字符")
    if odd_minus:
        notes.append("非标准负号“−”")
    return "".join(out), notes


def _join(*notes: str) -> str:
    return "；".join(n for n in notes if n)


# ---------------------------------------------------------------------------------------------
# Numbers


def to_decimal(x: float | int) -> Decimal:
    """Return a cell number as Excel shows it: floats rounded to 15 significant digits, ints exact.

    ``to_decimal(0.1 + 0.2) == Decimal("0.3")`` and ``to_decimal(6.0299999999999994) == Decimal("6.03")``,
    because Excel itself never displays more than 15 significant digits. Raises ValueError for
    NaN and infinities, which no cell can hold.
    """
    if isinstance(x, int):
        return Decimal(x)
    if not math.isfinite(x):
        raise ValueError(f"not a finite number: {x!r}")
    value = Decimal(f"{x:.15g}")
    return value if value else Decimal(0)  # -0.0 is not something a reviewer should see


_EXCEL_ERRORS: dict[str, str] = {
    "#NULL!": "区域没有交集",
    "#DIV/0!": "除数为零",
    "#VALUE!": "值的类型不对",
    "#REF!": "引用的单元格已失效",
    "#NAME?": "公式中有无法识别的名称",
    "#NUM!": "数值无效",
    "#N/A": "值不可用",
    "#SPILL!": "溢出区域被占用",
    "#CALC!": "计算出错",
    "#GETTING_DATA": "数据尚未取回",
    "#FIELD!": "字段无效",
    "#BLOCKED!": "功能被阻止",
    "#CONNECT!": "连接失败",
    "#BUSY!": "仍在计算",
    "#UNKNOWN!": "未知错误",
}
# LibreOffice keeps its own codes (Err:502 ...) when an error has no Excel equivalent.
_LIBREOFFICE_ERROR = re.compile(r"Err:\d{3}")


def _excel_error(text: str) -> str | None:
    """Return the reviewer's note when ``text`` is an Excel or LibreOffice error value."""
    code = text.upper()
    if code in _EXCEL_ERRORS:
        return f"公式错误 {code}：{_EXCEL_ERRORS[code]}"
    if _LIBREOFFICE_ERROR.fullmatch(text):
        return f"公式错误 {text}（LibreOffice 错误代码）"
    return None


# Thousands separators are accepted only in valid groups, so "1,2" (a decimal comma?) stays text.
_NUM = r"(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)"


# The same grammar for other modules' patterns (the report checker reads numbers in prose with it).
NUMBER_PATTERN = _NUM


def normalise_text(text: str) -> str:
    """Text with full-width digits and punctuation folded, minus signs unified, invisible characters dropped."""
    return normalise_with_notes(text)[0]


@lru_cache(maxsize=32)
def _number_pattern(units: tuple[str, ...]) -> re.Pattern[str]:
    # Longest first, so "人次" wins over "人" and "万元" over "元".
    alternatives = "|".join(re.escape(u) for u in sorted(set(units), key=len, reverse=True) if u)
    unit = f"|(?P<unit>{alternatives})" if alternatives else ""
    return re.compile(rf"(?P<sign>[+-]?)\s*(?P<num>{_NUM})(?P<exp>[eE][+-]?\d+)?\s*(?:(?P<pct>[%‰]){unit})?")


_LEADING_NUMBER = re.compile(rf"[+-]?\s*{_NUM}")


def _text_hint(text: str, units: tuple[str, ...]) -> str:
    """Say why a text that looks numeric is not read as a number."""
    if "," in text and _number_pattern(units).fullmatch(text.replace(",", "")):
        return "逗号位置不符合千分位写法"
    lead = _LEADING_NUMBER.match(text)
    if lead is not None:
        return f"数字后含“{text[lead.end() :][:12]}”"
    return ""


def _parse_text(raw: str, units: tuple[str, ...]) -> tuple[Parsed, bool]:
    """Parse a string cell; the flag says whether the text carried its own % or ‰ sign."""
    text, notes = normalise_with_notes(raw)
    text = text.strip()
    if not text:
        return Parsed(Status.BLANK, None, raw, "仅含空格" if raw else ""), False
    error = _excel_error(text)
    if error is not None:
        return Parsed(Status.ERROR, None, raw, error), False
    match = _number_pattern(units).fullmatch(text)
    if match is None:
        return Parsed(Status.TEXT, None, raw, _join(*notes, _text_hint(text, units))), False
    value = Decimal(match["num"].replace(",", "") + (match["exp"] or ""))
    if match["sign"] == "-":
        value = -value
    notes.insert(0, "以文本形式存储的数字")
    if "," in match["num"]:
        notes.append("千分位")
    if match["pct"] == "%":
        value *= HUNDREDTH
        notes.append("百分数")
    elif match["pct"] == "‰":
        value *= THOUSANDTH
        notes.append("千分数")
    unit = match.groupdict().get("unit")
    if unit:
        notes.append(f"含单位“{unit}”")
    return Parsed(Status.OK, value if value else Decimal(0), raw, _join(*notes)), match["pct"] is not None


def parse_number(raw: object, units: Sequence[str] = DEFAULT_UNITS) -> Parsed:
    """Read one cell as a number, accepting what users type in Excel, WPS and LibreOffice.

    None and whitespace -> BLANK; TRUE/FALSE -> TEXT (a checkbox is not a number); dates and times
    -> DATE; Excel/LibreOffice error values -> ERROR; numbers -> OK via :func:`to_decimal`.
    Strings are read after folding full-width characters, unifying minus signs and stripping
    spaces: valid thousands separators, a leading sign, a trailing ``%``/``‰`` (``95%`` -> 0.95)
    or ONE trailing unit from ``units`` (``3.35分`` -> 3.35) are accepted; anything else is TEXT.
    The note tells the reviewer what was tolerated, e.g. "以文本形式存储的数字；含单位“分”".
    """
    if raw is None:
        return Parsed(Status.BLANK, None, raw)
    if isinstance(raw, bool):  # before int: bool is an int subclass
        return Parsed(Status.TEXT, None, raw, "逻辑值（TRUE/FALSE），不是数字")
    if isinstance(raw, datetime | date | time | timedelta):
        return Parsed(Status.DATE, None, raw, "日期或时间；若应填数字，请检查单元格格式")
    if isinstance(raw, Decimal):
        if not raw.is_finite():
            return Parsed(Status.ERROR, None, raw, "不是有限数值")
        return Parsed(Status.OK, raw, raw)
    if isinstance(raw, int | float):
        try:
            return Parsed(Status.OK, to_decimal(raw), raw)
        except ValueError:
            return Parsed(Status.ERROR, None, raw, "不是有限数值")
    if isinstance(raw, str):
        return _parse_text(raw, tuple(units))[0]
    return Parsed(Status.TEXT, None, raw, f"无法识别的单元格内容（{type(raw).__name__}）")


def parse_percent(raw: object) -> tuple[Parsed, tuple[Decimal, ...]]:
    """Read a rate cell; return the Parsed (value = fraction under the primary reading) and ALL readings.

    A percent cell is ambiguous, so every plausible fraction is returned, primary reading first;
    an audit rule should accept a written rate when ANY candidate matches its own result.

    - Text with ``%`` (or ``‰``) means exactly what it says: ``"95%"`` -> (0.95,).
    - A number from a cell or text without ``%`` (``95``, ``"95"``, ``0.95``, ``"0.95"``): one rule for
      both: primary = v/100 when |v| > 1 (95 means 95%), else v (Excel stores 95% as 0.95);
      candidates hold both readings, the primary first.
    - Zero -> (0,). Anything that is not a number -> no candidates.
    """
    if isinstance(raw, str):
        parsed, has_sign = _parse_text(raw, ())
    else:
        parsed, has_sign = parse_number(raw, ()), False
    value = parsed.value
    if parsed.status is not Status.OK or value is None:
        return parsed, ()
    if has_sign or value == 0:
        return parsed, (value,)
    hundredth = value * HUNDREDTH
    # One rule whatever the cell holds (README 百分数的读法): a bare number over 1 is percentage points.
    # Excel stores a typed 95% as 0.95; a 95 comes from a cell that lost its % format, meaning 95%.
    if abs(value) > 1:
        said = "未写“%”" if isinstance(raw, str) else "数值大于 1"
        note = _join(parsed.note, f"{said}，按 {value}% 读取")
        return replace(parsed, value=hundredth, note=note), (hundredth, value)
    return parsed, (value, hundredth)
