"""Read cell values the way users really type them: numbers, percentages and 绩效指标 targets."""

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
from typing import Literal, assert_never

__all__ = [
    "DEFAULT_UNITS",
    "NUMBER_PATTERN",
    "Op",
    "Parsed",
    "Status",
    "Target",
    "meets",
    "normalise_text",
    "parse_number",
    "parse_percent",
    "parse_target",
    "parse_targets",
    "to_decimal",
]

DEFAULT_UNITS: tuple[str, ...] = ("分", "元", "百元", "万元", "人", "个", "项", "家", "次", "人次")

Op = Literal[">=", "<=", "=", ">", "<", "range"]


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


@dataclass(frozen=True)
class Target:
    """One 指标值 such as ``≥5.5万人次``: value and high are in the base unit (55000 人次; 85% -> 0.85).

    ``scale`` is the multiplier the text used (10000 for 万, 0.01 for %), so that a bare number
    typed against this target can also be read in the target's own units (5.6 -> 5.6万).
    ``text`` is the (normalised) piece of the cell the target was read from.
    """

    op: Op
    value: Decimal
    high: Decimal | None = None
    unit: str = ""
    text: str = ""
    scale: Decimal = Decimal(1)


# ---------------------------------------------------------------------------------------------
# Shared text clean-up

_HUNDREDTH = Decimal("0.01")
_THOUSANDTH = Decimal("0.001")

# Pasted from web pages and Word these are invisible, yet they make a number "text".
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff")
# U+2212 comes from Word/PDF copies, U+FE63 from some IMEs; U+FF0D is handled as a wide form.
_ODD_MINUS = {"\u2212": "-", "\ufe63": "-"}


def _normalise(text: str) -> tuple[str, list[str]]:
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
    return _normalise(text)[0]


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
    text, notes = _normalise(raw)
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
        value *= _HUNDREDTH
        notes.append("百分数")
    elif match["pct"] == "‰":
        value *= _THOUSANDTH
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
    hundredth = value * _HUNDREDTH
    # One rule whatever the cell holds (README 百分数的读法): a bare number over 1 is percentage points.
    # Excel stores a typed 95% as 0.95; a 95 comes from a cell that lost its % format, meaning 95%.
    if abs(value) > 1:
        said = "未写“%”" if isinstance(raw, str) else "数值大于 1"
        note = _join(parsed.note, f"{said}，按 {value}% 读取")
        return replace(parsed, value=hundredth, note=note), (hundredth, value)
    return parsed, (value, hundredth)


# ---------------------------------------------------------------------------------------------
# Targets (指标值) and whether an actual value (实际完成值) meets them

# Comparison symbols in their many spellings, folded to one each before parsing.
_SYMBOLS = re.compile(r">=|=>|≧|⩾|≮|<=|=<|≦|⩽|≯")
_SYMBOL_MAP = {
    ">=": "≥",
    "=>": "≥",
    "≧": "≥",
    "⩾": "≥",
    "≮": "≥",
    "<=": "≤",
    "=<": "≤",
    "≦": "≤",
    "⩽": "≤",
    "≯": "≤",
}

# (prefix, op); None means "no comparison of its own", so a suffix such as 以上 decides.
_PREFIXES: tuple[tuple[str, Op | None], ...] = tuple(
    sorted(
        [
            ("≥", ">="),
            ("≤", "<="),
            (">", ">"),
            ("<", "<"),
            ("=", "="),
            ("大于或等于", ">="),
            ("大于等于", ">="),
            ("不低于", ">="),
            ("不少于", ">="),
            ("不小于", ">="),
            ("至少", ">="),
            ("最少", ">="),
            ("小于或等于", "<="),
            ("小于等于", "<="),
            ("不高于", "<="),
            ("不超过", "<="),
            ("不多于", "<="),
            ("不大于", "<="),
            ("至多", "<="),
            ("最多", "<="),
            ("大于", ">"),
            ("高于", ">"),
            ("超过", ">"),
            ("多于", ">"),
            ("小于", "<"),
            ("低于", "<"),
            ("少于", "<"),
            ("达到", None),
            ("控制在", None),
            ("保持在", None),
            ("约", None),
        ],
        key=lambda item: len(item[0]),
        reverse=True,
    )
)
_SUFFIXES: tuple[tuple[str, Op], ...] = (
    ("及以上", ">="),
    ("或以上", ">="),
    ("以上", ">="),
    ("及以下", "<="),
    ("或以下", "<="),
    ("以下", "<="),
    ("以内", "<="),
    ("之内", "<="),
    ("内", "<="),
)

_MULTIPLIERS = {"百": Decimal(100), "千": Decimal(1000), "万": Decimal(10000), "亿": Decimal(100000000)}
# Measure words seen in 绩效目标表, longest first so "人次" wins over "人".
_KNOWN_UNITS: tuple[str, ...] = tuple(
    sorted(
        (
            "个百分点 百分点 人次 家次 场次 篇次 户次 人天 课时 学时 学分 小时 分钟 平方公里 平方米 "
            "公里 公斤 美元 元 个 人 名 位 次 项 家 场 条 单 份 篇 件 笔 台 套 期 批 所 处 户 部 本 册 "
            "天 日 周 月 年 季度 分 秒 米 亩 吨 克 辆 座 间 张 幅 种 类 门 节 堂 届 轮 组 支 队 村 镇 社区 校"
        ).split(),
        key=len,
        reverse=True,
    )
)
_UNIT_ALIASES = {"个百分点": "百分点"}
# A one-character unit we do not know is still a unit, unless it begins commentary or a suffix.
_NOT_UNITS = frozenset("以及或之内左右上下至到的为居其含共约达完已和与等")

_SUFFIX_WORDS = tuple(word for word, _ in _SUFFIXES)


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


_SIGNED_NUM = re.compile(rf"(?P<sign>[+-]?)(?P<num>{_NUM})")
_RANGE_SEP = re.compile(r"-|~|至|到|—{1,2}|–")
# Years are 19xx/20xx so that "1000.5万元" or "2-3名" never look like dates.
_DATE = re.compile(
    r"(?:19|20)\d{2}([-/.])\d{1,2}\1\d{1,2}"
    r"|(?:19|20)\d{2}[-/](?:0?[1-9]|1[0-2])(?!\d)"
    r"|\d{1,4}年\d{1,2}月"
    r"|\d{1,2}月\d{1,2}[日号]"
    r"|\d{1,2}月(?:底|末|初|前|上旬|中旬|下旬)"
)
# Split a cell into pieces on newlines and list punctuation; a comma splits unless it is a
# valid thousands separator (digit before, exactly three digits after).
_PIECES = re.compile(r"[\n\r;；、。]|(?<!\d),|,(?!\d{3}(?!\d))")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class _Quantity:
    value: Decimal  # in the base unit
    scale: Decimal
    unit: str
    end: int


def _unit_at(text: str, pos: int) -> tuple[Decimal, str, int]:
    """Read ``万人次`` / ``%`` / ``亿`` / ``个`` at ``pos``: (multiplier, base unit, end)."""
    if text.startswith("%", pos):
        return _HUNDREDTH, "%", pos + 1
    if text.startswith("‰", pos):
        return _THOUSANDTH, "%", pos + 1
    if text.startswith("百分点", pos):  # 百 here is not a multiplier
        return Decimal(1), "百分点", pos + 3
    scale = Decimal(1)
    while pos < len(text) and text[pos] in _MULTIPLIERS:
        scale *= _MULTIPLIERS[text[pos]]
        pos += 1
    for unit in _KNOWN_UNITS:
        if text.startswith(unit, pos):
            return scale, _UNIT_ALIASES.get(unit, unit), pos + len(unit)
    if pos < len(text) and _is_cjk(text[pos]) and text[pos] not in _NOT_UNITS:
        # Only when it stands alone ("≥5艘", "5艘以上"): in "1.资阳市" the character starts prose.
        after = pos + 1
        if after == len(text) or not _is_cjk(text[after]) or text.startswith(_SUFFIX_WORDS, after):
            return scale, text[pos], after
    return scale, "", pos


def _quantity_at(text: str, pos: int) -> _Quantity | None:
    match = _SIGNED_NUM.match(text, pos)
    if match is None:
        return None
    number = Decimal(match["num"].replace(",", ""))
    if match["sign"] == "-":
        number = -number
    scale, unit, end = _unit_at(text, match.end())
    return _Quantity(number * scale, scale, unit, end)


def _looks_like_year(unit: str, *values: Decimal | None) -> bool:
    return unit == "年" and any(v is not None and v == v.to_integral() and 1900 <= v <= 2100 for v in values)


def _parse_piece(piece: str) -> Target | None:
    """Parse one piece such as ``达到95%以上`` or ``2-3名``; trailing commentary is ignored."""
    pos = 0
    op: Op | None = None
    default: Op = "="
    for _ in range(3):  # "达到≥95%" has two prefixes; more would be nonsense
        for prefix, prefix_op in _PREFIXES:
            if piece.startswith(prefix, pos):
                pos += len(prefix)
                if prefix == "达到":
                    default = ">="  # "达到95%" is a floor, not an exact value
                elif prefix_op is not None:
                    op = prefix_op
                break
        else:
            break
    if _DATE.match(piece, pos):
        return None
    low = _quantity_at(piece, pos)
    if low is None:
        return None
    high: _Quantity | None = None
    end = low.end
    sep = _RANGE_SEP.match(piece, end)
    if sep is not None:
        high = _quantity_at(piece, sep.end())
    if high is not None:
        if not low.unit and low.scale == 1:
            # "80-90%" and "2-3万元": the unit written once applies to both ends.
            low = _Quantity(low.value * high.scale, high.scale, high.unit, low.end)
        elif not high.unit and high.scale == 1:
            high = _Quantity(high.value * low.scale, low.scale, low.unit, high.end)
        elif (low.unit, low.scale) != (high.unit, high.scale):
            return None
        if _looks_like_year(low.unit, low.value, high.value):
            return None
        return Target("range", low.value, high.value, low.unit, piece, low.scale)
    if _looks_like_year(low.unit, low.value):
        return None
    if op is None:
        for suffix, suffix_op in _SUFFIXES:
            if piece.startswith(suffix, end):
                op = suffix_op
                break
    return Target(op or default, low.value, None, low.unit, piece, low.scale)


def parse_targets(text: object) -> list[Target]:
    """Read every target in a cell, e.g. ``"≥30份\\n≥2亿元"`` -> two Targets.

    The cell is split on newlines, ``，`` ``,`` ``；`` ``;`` ``、`` and ``。``; pieces that do not
    begin with a target (commentary such as "居全省第一", dates) are skipped. A number from a
    numeric cell is one ``=`` target without unit.
    """
    if text is None or isinstance(text, bool):
        return []
    if isinstance(text, int | float | Decimal):
        parsed = parse_number(text)
        if parsed.value is None:
            return []
        return [Target("=", parsed.value, text=str(text))]
    if not isinstance(text, str):
        return []
    normal, _ = _normalise(text)
    normal = _SYMBOLS.sub(lambda m: _SYMBOL_MAP[m.group()], normal)
    targets: list[Target] = []
    for piece in _PIECES.split(normal):
        piece = _SPACES.sub("", piece)
        if piece and (target := _parse_piece(piece)) is not None:
            targets.append(target)
    return targets


def parse_target(text: object) -> Target | None:
    """Read a cell holding ONE target (``≥10个``, ``不低于90%``, ``80%-90%``, ``=5.6万人次，居全省第一``).

    Understood: ``≥ >= ≧ ≤ <= ≦ > < = ＝``, a bare number (``=``), 不低于/不少于/至少 (>=),
    不高于/不超过/不多于 (<=), 大于/高于/超过 (>), 小于/低于/少于 (<), 达到 (>= unless a suffix
    says otherwise), suffixes 以上 (>=) and 以下/以内 (<=), ranges ``80%-90%`` ``2-3名`` ``10至15件``.
    Multipliers 百/千/万/亿 are applied (``484.13万元`` -> 4841300 元); ``%`` gives the fraction
    (85% -> 0.85, unit "%"). Returns None for dates, text without a number, and cells holding
    several targets (use :func:`parse_targets` for those).
    """
    targets = parse_targets(text)
    return targets[0] if len(targets) == 1 else None


def _compatible(a: str, b: str) -> bool:
    return a == b or not a or not b


def _bare_reading(target: Target, value: Decimal) -> Decimal:
    """Read a number typed without unit against ``target``: 90 vs ≥85% is 0.90, 5.6 vs ≥5.5万人次 is 56000.

    Both the plain reading and the one in the target's scale are possible; the one nearer the
    target wins. That keeps 90 -> 0.90 against ≥85%, yet reads a percent-formatted 1.05 as 105%
    against ≥100% and 2 as 2% against ≤5%. Numbers within ±1 against a % target are fractions,
    as Excel stores them.
    """
    if value == 0 or target.scale == 1 or (target.unit == "%" and abs(value) <= 1):
        return value
    scaled = value * target.scale
    reference = abs(target.value)
    if reference == 0:
        return scaled

    def spread(reading: Decimal) -> Decimal:
        size = abs(reading)
        return max(size, reference) / min(size, reference)

    return min((scaled, value), key=spread)  # a tie keeps the target's own scale


def _actual_value(target: Target, actual: object) -> Decimal | None:
    if isinstance(actual, int | float | Decimal) and not isinstance(actual, bool):
        parsed = parse_number(actual)
        return None if parsed.value is None else _bare_reading(target, parsed.value)
    if not isinstance(actual, str):
        return None
    usable = [t for t in parse_targets(actual) if t.op != "range" and _compatible(target.unit, t.unit)]
    same_unit = [t for t in usable if t.unit == target.unit]
    # "=60项；=5620万元" against ≥55项: the piece in the target's unit is the answer.
    chosen = same_unit if len(same_unit) == 1 else usable
    if len(chosen) != 1:
        return None
    reading = chosen[0]
    if not reading.unit and reading.scale == 1:
        return _bare_reading(target, reading.value)
    return reading.value


def meets(target: Target, actual: object, *, tolerance: Decimal = Decimal(0)) -> bool | None:
    """Say whether ``actual`` (a cell value) meets ``target``; None when it cannot be decided.

    Text is read with :func:`parse_targets` (``=10个``, ``90%``, ``=83.52万人次，居全省第一``; the
    actual's own sign is ignored, its number is what was achieved); numbers and unitless text are
    read by :func:`_bare_reading`. Units must match or one side be unitless. None for blanks,
    dates, errors, text without a number, incompatible units, ranges or several candidate
    numbers. ``tolerance`` (default exact) widens every bound.
    """
    value = _actual_value(target, actual)
    if value is None:
        return None
    match target.op:
        case ">=":
            return value >= target.value - tolerance
        case "<=":
            return value <= target.value + tolerance
        case ">":
            return value > target.value - tolerance
        case "<":
            return value < target.value + tolerance
        case "=":
            return abs(value - target.value) <= tolerance
        case "range":
            high = target.value if target.high is None else target.high
            return target.value - tolerance <= value <= high + tolerance
        case _:
            assert_never(target.op)
