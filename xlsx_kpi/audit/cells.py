"""One cell of a returned workbook: its XML as found, its raw value, shared formulas and typed inputs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from xlsx_kpi.audit.filing import Filing, RawCell, fail
from xlsx_kpi.audit.values import Status, parse_number, parse_percent, to_decimal
from xlsx_kpi.formats.expr import ExcelError, Value
from xlsx_kpi.formats.spec import col_index, col_letters
from xlsx_kpi.ooxml.package import MSG_CORRUPT

# Built-in number formats that show a date or time: 14-22 and 45-47 everywhere, and in Chinese
# (and other East Asian) Excel also 27-36 and 50-58, e.g. 31 = yyyy"年"m"月"d"日".
DATE_FORMAT_IDS = frozenset([*range(14, 23), *range(27, 37), *range(45, 48), *range(50, 59)])
_FORMAT_NOISE = re.compile(r'"[^"]*"|\\.|_.|\*.|\[[^\]]*\]')
_ELAPSED = re.compile(r"\[(?:h+|m+|s+)\]", re.IGNORECASE)
_ESCAPED_CHAR = re.compile(r"_x([0-9A-Fa-f]{4})_")
_A1 = re.compile(r"^\$?([A-Z]{1,3})\$?([0-9]{1,7})$")
# Shared formulas: cell references to shift, and the text that must not be touched (strings, sheet names).
_FORMULA_TOKEN = re.compile(
    r'"(?:[^"]|"")*"|\'(?:[^\']|\'\')*\'|(?<![A-Za-z0-9_.$])(\$?)([A-Z]{1,3})(\$?)([0-9]{1,7})(?![A-Za-z0-9_(!])'
)
_WHOLE_LINES = re.compile(r"(?<![A-Za-z0-9_.])\$?(?:[A-Z]{1,3}:\$?[A-Z]{1,3}|[0-9]+:\$?[0-9]+)(?![A-Za-z0-9_(])")
MAX_ROW = 1_048_576
MAX_COL = 16_384  # XFD


def small_int(text: str | None) -> int | None:
    """A small non-negative ASCII integer, or None ("²".isdigit() is True, and int() of 5,000 digits raises)."""
    return int(text) if text and len(text) <= 9 and text.isascii() and text.isdigit() else None


_ESCAPED_PAIR = re.compile(r"_x([dD][89abAB][0-9A-Fa-f]{2})__x([dD][c-fC-F][0-9A-Fa-f]{2})_")


def unescape(text: str) -> str:
    """OOXML writes control characters as _xHHHH_ (Excel: a CR is _x000D_).

    A UTF-16 surrogate pair written as two escapes becomes its one character; a lone surrogate
    (_xD800_), which no text can hold, becomes U+FFFD: kept, it breaks every UTF-8 output later.
    """
    if "_x" not in text:
        return text
    text = _ESCAPED_PAIR.sub(_pair, text)
    return _ESCAPED_CHAR.sub(lambda m: _char(int(m.group(1), 16)), text)


def _pair(m: re.Match[str]) -> str:
    high, low = int(m.group(1), 16), int(m.group(2), 16)
    return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))


def _char(code: int) -> str:
    return "\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code)


def is_date_format(code: str) -> bool:
    """True for a number format that shows a date or time (yyyy-mm-dd, h:mm, [h]:mm, 上午/下午)."""
    if _ELAPSED.search(code):
        return True
    text = _FORMAT_NOISE.sub("", code).lower().replace("general", "")
    return any(ch in text for ch in "ymdhs") or "am/pm" in text or "上午/下午" in text


@dataclass(slots=True)
class FoundCell:
    """A cell as found in the sheet XML, before its value is typed."""

    t: str | None
    s: str | None
    v: str | None = None
    f: str | None = None  # formula text; "" when the <f> element had none (shared-formula child)
    f_type: str | None = None  # <f t="...">: shared, array, dataTable
    shared: str | None = None  # si of the shared formula this cell belongs to
    inline: list[str] | None = None  # text runs of an inline string


def split_a1(a1: str) -> tuple[int, int] | None:
    m = _A1.match(a1)
    if not m:
        return None
    row, col = int(m.group(2)) - 1, col_index(m.group(1))
    if not (0 <= row < MAX_ROW and 0 <= col < MAX_COL):
        return None
    return row, col


Masters = dict[str, tuple[int, int, str]]


def shift_formula(formula: str, rows: int, cols: int) -> str | None:
    """A shared formula's text moved by (rows, cols) as Excel fills it; None when not simple enough."""
    if _WHOLE_LINES.search(_FORMULA_TOKEN.sub(lambda m: "" if m.group(2) is None else m.group(0), formula)):
        return None
    failed = False

    def move(m: re.Match[str]) -> str:
        nonlocal failed
        if m.group(2) is None:  # a string literal or a quoted sheet name
            return m.group(0)
        col_abs, letters, row_abs, digits = m.groups()
        col = col_index(letters) + (0 if col_abs else cols)
        row = int(digits) + (0 if row_abs else rows)
        if not (0 <= col < MAX_COL and 1 <= row <= MAX_ROW):
            failed = True
            return m.group(0)
        return f"{col_abs}{col_letters(col)}{row_abs}{row}"

    out = _FORMULA_TOKEN.sub(move, formula)
    return None if failed else out


def raw_cell(
    found: FoundCell | None,
    address: str,
    pos: tuple[int, int],
    strings: Sequence[str],
    dates: frozenset[int],
    masters: Masters,
    path: Path,
) -> RawCell:
    if found is None:
        return RawCell(None, address=address)
    formula = found.f
    if formula:
        formula = formula.removeprefix("=")
    elif formula is not None:
        # A shared-formula child holds only the group id: rebuild its text from the group's first cell.
        master = masters.get(found.shared or "") if found.f_type == "shared" else None
        shifted = shift_formula(master[2], pos[0] - master[0], pos[1] - master[1]) if master else None
        formula = shifted or f"({found.f_type or 'formula'})"
    t, v = found.t, found.v
    value: str | Decimal | bool | ExcelError | None
    is_date = False
    if t is None or t == "n":
        if not v or not v.strip():
            value = None
        elif len(v) < 16 and v.isascii() and v.isdigit():
            value = Decimal(v)  # an integer as written is exact; skip the float round trip
        else:
            try:
                value = to_decimal(float(v))
            except ValueError:  # not a number, or NaN/inf: keep what the file says
                value = v
        if value is not None and found.s is not None and found.s != "0":
            is_date = small_int(found.s) in dates
    elif t == "s":
        index = small_int(v)
        if index is None or index >= len(strings):
            raise fail(MSG_CORRUPT, path, cell=address)
        value = strings[index]
    elif t == "inlineStr":
        value = unescape("".join(found.inline) if found.inline is not None else (v or ""))
    elif t == "str":
        # An empty text result reads as blank: XlsxWriter caches "" untyped and openpyxl keeps no
        # cache at all, so only this makes LibreOffice's t="str" agree with them.
        value = unescape(v) if v else None
    elif t == "b":
        value = (v or "").strip().upper() in ("1", "TRUE")
    elif t == "e":
        value = ExcelError((v or "").strip() or "#N/A")
    elif t == "d":
        value, is_date = (v, True) if v else (None, False)
    else:  # an unknown type: keep the text
        value = v or None
    return RawCell(value, formula, is_date, address)


# --- Typed inputs ---------------------------------------------------------------------------------------

_EXCEL_EPOCH = datetime(1899, 12, 30)


def _render_number(value: Decimal) -> str:
    """156001 rather than 156001.0 or 1.56001E+5."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def _render_date(serial: Decimal) -> str:
    """A date-formatted number as ISO text (Excel's fictitious 1900-02-29 is serial 60)."""
    days = float(serial)
    try:
        moment = (_EXCEL_EPOCH if days >= 61 else _EXCEL_EPOCH + timedelta(days=1)) + timedelta(days=days)
    except OverflowError:
        return _render_number(serial)
    moment = moment.replace(microsecond=0) + timedelta(seconds=round(moment.microsecond / 1e6))
    return moment.strftime("%Y-%m-%d") if moment.time() == datetime.min.time() else moment.isoformat(" ")


def _iso_serial(text: str) -> Decimal | None:
    """An ISO date cell (t="d") as the serial number the same date typed into Excel would have."""
    try:
        moment = datetime.fromisoformat(text.strip().removesuffix("Z"))
    except ValueError:
        return None
    delta = moment.replace(tzinfo=None) - _EXCEL_EPOCH
    days = delta.days if delta.days >= 61 else delta.days - 1
    return to_decimal(days + delta.seconds / 86400) if delta.seconds else Decimal(days)


def as_text(raw: RawCell) -> str | None:
    value = raw.value
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, Decimal):
        return _render_date(value) if raw.is_date else _render_number(value)
    if isinstance(value, ExcelError):
        return value.code
    return value if value.strip() else None


def _typed(raw: RawCell, kind: str | None) -> Value:
    value = raw.value
    if isinstance(value, ExcelError):
        return value
    if kind not in ("score", "amount", "count", "percent"):
        return as_text(raw)
    if raw.is_date and isinstance(value, str):
        serial = _iso_serial(value)
        return serial if serial is not None else value
    parsed = parse_percent(value)[0] if kind == "percent" else parse_number(value)
    if parsed.status is Status.OK:
        return parsed.value
    if parsed.status is Status.BLANK:
        return None
    if parsed.status is Status.ERROR and isinstance(value, str):
        return ExcelError(value.strip().upper() if value.strip().startswith("#") else value.strip())
    return value


def to_inputs(filing: Filing) -> dict[str, Value]:
    """Typed values of every input cell, for recalc.recalculate(); formula cells are not inputs.

    score/amount/count: the number (text such as "3.35分" is read as 3.35), the text itself when it is
    no number, TRUE/FALSE as bool, None when blank; a date keeps its serial number. percent: the
    primary reading of values.parse_percent. text/longtext/choice/tick: the text, numbers written
    without exponent or ".0" (156001), dates as ISO text, TRUE/FALSE, None when blank or only spaces.
    An error value (#DIV/0!) stays an ExcelError whatever the type.
    """
    out: dict[str, Value] = {}
    for key, cell in filing.layout.cells.items():
        if cell.role == "input":
            out[key] = _typed(filing.cells.get(key) or RawCell(None), cell.input_type)
    return out
