"""Excel's value rules in Decimal: 15 significant digits, ROUND, coercion to number/logical/text, comparison
and arithmetic. Every function takes values and returns a value or an ExcelError; none raises."""

from __future__ import annotations

import re
from decimal import (
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    getcontext,
    localcontext,
)

from xlsx_kpi.formats.expr.excel import format_number
from xlsx_kpi.formats.expr.syntax import ExcelError, Value

DIV0 = ExcelError("#DIV/0!")
VALUE = ExcelError("#VALUE!")
NUM = ExcelError("#NUM!")

NUMERIC_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?%?")
# Excel keeps 15 significant digits; comparing and printing at that precision keeps Decimal
# results such as 1/3*3 equal to 1, as they are in Excel and LibreOffice.
_EXCEL_DIGITS = 15
# Bounds the work ROUND can be asked to do; Excel's own numbers end near 1E+308.
MAX_ROUND_DIGITS = 400

_TRAPS = [InvalidOperation, DivisionByZero, Overflow]
# Every formula runs in this context, spelled out in full so that neither the caller's decimal
# settings nor a changed decimal.DefaultContext can change a score.
CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN, Emin=-999_999, Emax=999_999, capitals=1, clamp=0, traps=_TRAPS)
# Rounding to 15 digits in this context gives the same number as quantizing at the 15th digit, without
# entering a localcontext per comparison; near the exponent limits, where quantizing raises, the slow
# path below keeps that behaviour.
_SIGNIFICANT = Context(prec=_EXCEL_DIGITS, rounding=ROUND_HALF_UP, Emin=-999_999, Emax=999_999, traps=_TRAPS)
SIGNIFICANT_EXPONENTS = 999_000
ZERO = Decimal(0)


def significant(value: Decimal) -> Decimal:
    if not value or not value.is_finite():
        return value
    if -SIGNIFICANT_EXPONENTS < value.adjusted() < SIGNIFICANT_EXPONENTS:
        return _SIGNIFICANT.plus(value)
    quantum = Decimal(1).scaleb(value.adjusted() - _EXCEL_DIGITS + 1)
    with localcontext() as ctx:
        ctx.prec = max(ctx.prec, _EXCEL_DIGITS + 2)
        return value.quantize(quantum, rounding=ROUND_HALF_UP)


def round_digits(value: Decimal, digits: int, rounding: str) -> Decimal:
    if not value.is_finite():
        return value
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent <= digits:
        return value  # already has no more decimals than asked for
    # The current context with enough precision, passed explicitly: cheaper than entering a localcontext.
    context = getcontext().copy()
    context.prec = max(28, abs(value.adjusted()) + abs(digits) + 3)
    result = value.quantize(Decimal(1).scaleb(-digits, context), rounding=rounding, context=context)
    if digits < 0:
        result = result.quantize(Decimal(1), context=context)  # 1200 rather than 1.2E+3
    return result


def excel_round(x: Decimal, digits: int) -> Decimal:
    """Excel's ROUND: half away from zero (ROUND(2.5, 0) = 3, ROUND(-2.5, 0) = -3)."""
    return round_digits(x, digits, ROUND_HALF_UP)


def to_number(value: Value) -> Decimal | ExcelError:
    if isinstance(value, ExcelError | Decimal):
        return value
    if isinstance(value, bool):
        return Decimal(1) if value else Decimal(0)
    if value is None:
        return Decimal(0)
    text = value.strip()
    if not NUMERIC_TEXT.fullmatch(text):
        return VALUE
    if text.endswith("%"):
        return Decimal(text[:-1]) / 100
    return Decimal(text)


def to_logical(value: Value) -> bool | ExcelError:
    if isinstance(value, ExcelError | bool):
        return value
    if isinstance(value, Decimal):
        return value != 0
    if value is None:
        return False
    return VALUE


def to_text(value: Value) -> str | ExcelError:
    if isinstance(value, ExcelError | str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if value is None:
        return ""
    return format_number(significant(value))


def _blank_as(other: Value) -> Value:
    """What a blank cell compares as, given the other side."""
    if isinstance(other, str):
        return ""
    if isinstance(other, bool):
        return False
    return Decimal(0)


# What each comparison yields for an order of -1, 0 and 1.
OUTCOMES = {
    "=": (False, True, False),
    "<>": (True, False, True),
    "<": (True, False, False),
    "<=": (True, True, False),
    ">": (False, False, True),
    ">=": (False, True, True),
}


def compare(op: str, left: Value, right: Value) -> bool | ExcelError:
    if isinstance(left, ExcelError):
        return left
    if isinstance(right, ExcelError):
        return right
    if left is None:
        left = _blank_as(right)
    if right is None:
        right = _blank_as(left)
    return OUTCOMES[op][order(left, right) + 1]


def _rank(value: Value) -> int:
    # Excel sorts numbers < text < booleans across types.
    if isinstance(value, bool):
        return 2
    if isinstance(value, str):
        return 1
    return 0


def order(left: Value, right: Value) -> int:
    """-1, 0 or 1 for two non-blank, non-error values, in Excel's sort order."""
    left_rank, right_rank = _rank(left), _rank(right)
    if left_rank != right_rank:
        return -1 if left_rank < right_rank else 1
    if isinstance(left, Decimal) and isinstance(right, Decimal):
        a, b = significant(left), significant(right)
        return (a > b) - (a < b)
    if isinstance(left, str) and isinstance(right, str):
        x, y = left.casefold(), right.casefold()
        return (x > y) - (x < y)
    return int(bool(left)) - int(bool(right))  # both booleans


def arithmetic(op: str, left: Value, right: Value) -> Value:
    # Coerce left before right so that the first error, reading left to right, wins.
    a = to_number(left)
    if isinstance(a, ExcelError):
        return a
    b = to_number(right)
    if isinstance(b, ExcelError):
        return b
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if b == 0:
            return DIV0
        return a / b
    except ArithmeticError:  # overflow beyond Decimal's exponent range
        return NUM
