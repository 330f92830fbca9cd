"""A tiny Excel-like formula language: one definition, written as an Excel formula and run in Decimal."""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import (
    ROUND_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    getcontext,
    localcontext,
)

__all__ = [
    "CellRef",
    "ExcelError",
    "Expr",
    "ExprError",
    "Value",
    "evaluate",
    "excel_round",
    "parse",
    "to_excel",
]


class ExprError(ValueError):
    """A spec expression that cannot be parsed; the message names the 1-based character position."""

    def __init__(self, source: str, position: int, detail: str) -> None:
        self.source = source
        self.position = position
        self.detail = detail
        super().__init__(f"表达式第 {position} 个字符处语法错误：{detail}（表达式：{source}）")


@dataclass(frozen=True)
class ExcelError:
    """An Excel error value such as #DIV/0!; it is a value, not an exception, so it can propagate."""

    code: str

    def __str__(self) -> str:
        return self.code


Value = Decimal | str | bool | None | ExcelError

_DIV0 = ExcelError("#DIV/0!")
_VALUE = ExcelError("#VALUE!")
_NUM = ExcelError("#NUM!")


@dataclass(frozen=True)
class CellRef:
    """Where a name lives in the workbook; row and col are 0-based."""

    sheet: str
    row: int
    col: int

    def __post_init__(self) -> None:
        if self.row < 0 or self.col < 0:
            raise ValueError(f"单元格行列号不能为负：{self!r}")


# --- syntax tree -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Num:
    value: Decimal


@dataclass(frozen=True)
class _Str:
    value: str


@dataclass(frozen=True)
class _Bool:
    value: bool


@dataclass(frozen=True)
class _Name:
    name: str


@dataclass(frozen=True)
class _Unary:
    op: str
    operand: _Node


@dataclass(frozen=True)
class _Binary:
    op: str
    left: _Node
    right: _Node


@dataclass(frozen=True)
class _Call:
    func: str
    args: tuple[_Node, ...]


_Node = _Num | _Str | _Bool | _Name | _Unary | _Binary | _Call


@dataclass(frozen=True)
class Expr:
    """An immutable parsed expression; `source` is the text it was parsed from."""

    source: str
    root: _Node = field(repr=False)

    def names(self) -> frozenset[str]:
        """Every name the expression references, in any branch (computed once: parse() shares Exprs)."""
        return self._names

    @functools.cached_property
    def _names(self) -> frozenset[str]:
        return frozenset(_walk_names(self.root))

    @functools.cached_property
    def _compiled(self) -> _Compiled:
        """The tree as nested closures, built on first evaluation (once: parse() shares Exprs)."""
        return _compile(self.root)

    def __getstate__(self) -> dict[str, object]:
        # Only the fields: closures do not pickle, and the cached properties are rebuilt when used.
        return {"source": self.source, "root": self.root}

    def __str__(self) -> str:
        return self.source


def _walk_names(node: _Node) -> Iterator[str]:
    if isinstance(node, _Name):
        yield node.name
    elif isinstance(node, _Unary):
        yield from _walk_names(node.operand)
    elif isinstance(node, _Binary):
        yield from _walk_names(node.left)
        yield from _walk_names(node.right)
    elif isinstance(node, _Call):
        for arg in node.args:
            yield from _walk_names(arg)


# --- tokenizer ---------------------------------------------------------------------------------

# (min, max) argument counts; None means "any number", capped by Excel's own 255 limit.
_FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "IF": (2, 3),
    "AND": (1, None),
    "OR": (1, None),
    "NOT": (1, 1),
    "MIN": (1, None),
    "MAX": (1, None),
    "SUM": (1, None),
    "COUNT": (1, None),
    "ROUND": (2, 2),
    "ROUNDUP": (2, 2),
    "ROUNDDOWN": (2, 2),
    "ABS": (1, 1),
    "ISNUMBER": (1, 1),
    "IFERROR": (2, 2),
}
_MAX_ARGS = 255

_NAME_RE = re.compile(r"[a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*")
# A word is scanned generously (any letters, digits, dots) so that a bad name is reported whole
# ("Exec.Total") rather than as a confusing stray character in the middle.
_WORD_RE = re.compile(r"[^\W\d][\w.]*")
_NUMBER_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TWO_CHAR_OPS = {"<=": "<=", ">=": ">=", "<>": "<>", "==": "=", "!=": "<>"}
_ONE_CHAR_OPS = set("+-*/&=<>")
# Finance staff type on Chinese IMEs; say so instead of just "unknown character".
_FULL_WIDTH = set("（），＋－＊／＝＜＞＆“”＂。．")


@dataclass(frozen=True)
class _Token:
    kind: str  # num, str, name, func, bool, op, (, ), ",", end
    text: str  # normalised: operator aliases resolved, string literals unescaped
    pos: int  # 0-based offset into the source
    raw: str  # the source text, for error messages


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    n = len(source)

    def fail(pos: int, detail: str) -> ExprError:
        return ExprError(source, pos + 1, detail)

    while i < n:
        ch = source[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "(),":
            tokens.append(_Token(ch, ch, i, ch))
            i += 1
            continue
        if ch == '"':
            j = i + 1
            chars: list[str] = []
            while True:
                if j >= n:
                    raise fail(i, "字符串缺少结尾的双引号")
                if source[j] == '"':
                    if j + 1 < n and source[j + 1] == '"':
                        chars.append('"')
                        j += 2
                        continue
                    break
                chars.append(source[j])
                j += 1
            tokens.append(_Token("str", "".join(chars), i, source[i : j + 1]))
            i = j + 1
            continue
        number = _NUMBER_RE.match(source, i)
        if number:
            tokens.append(_Token("num", number.group(), i, number.group()))
            i = number.end()
            continue
        pair = source[i : i + 2]
        if pair in _TWO_CHAR_OPS:
            tokens.append(_Token("op", _TWO_CHAR_OPS[pair], i, pair))
            i += 2
            continue
        if ch in _ONE_CHAR_OPS:
            tokens.append(_Token("op", ch, i, ch))
            i += 1
            continue
        word = _WORD_RE.match(source, i)
        if word:
            tokens.append(_classify_word(source, word.group(), i))
            i = word.end()
            continue
        if ch in _FULL_WIDTH:
            raise fail(i, f"无法识别的字符 '{ch}'，是否误用了全角符号？请改用半角（英文）符号")
        raise fail(i, f"无法识别的字符 '{ch}'")
    tokens.append(_Token("end", "", n, ""))
    return tokens


def _classify_word(source: str, word: str, pos: int) -> _Token:
    after = pos + len(word)
    rest = source[after:].lstrip()
    if rest.startswith("（"):
        # Point at the full-width parenthesis rather than call the function name a bad name.
        at = len(source) - len(rest)
        raise ExprError(source, at + 1, "无法识别的字符 '（'，是否误用了全角符号？请改用半角（英文）符号")
    if rest.startswith("("):
        if word in _FUNCTIONS:
            return _Token("func", word, pos, word)
        if word.upper() in _FUNCTIONS:
            raise ExprError(source, pos + 1, f"函数名须大写，应写作 {word.upper()}")
        known = "、".join(_FUNCTIONS)
        raise ExprError(source, pos + 1, f"未知函数 {word}，可用的函数有：{known}")
    if word in ("TRUE", "FALSE"):
        return _Token("bool", word, pos, word)
    if word in ("true", "false"):
        # Excel reads these as booleans; a name spelled this way would only confuse readers.
        raise ExprError(source, pos + 1, f"布尔值须大写，应写作 {word.upper()}")
    if _NAME_RE.fullmatch(word):
        return _Token("name", word, pos, word)
    raise ExprError(
        source,
        pos + 1,
        f"名称 '{word}' 不合法：名称只能由小写英文字母、数字、下划线组成，各段用点分隔，"
        "首字符不能是数字，如 exec.total.budget",
    )


# --- parser ------------------------------------------------------------------------------------

# Binding powers follow Excel: comparisons < & < + - < * / < unary minus.
_BINARY_POWER = {"=": 10, "<>": 10, "<": 10, "<=": 10, ">": 10, ">=": 10, "&": 20, "+": 30, "-": 30}
_BINARY_POWER.update({"*": 40, "/": 40})
_UNARY_POWER = 50
_ATOM_POWER = 100


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.index = 0

    def fail(self, token: _Token, detail: str) -> ExprError:
        return ExprError(self.source, token.pos + 1, detail)

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def parse(self) -> _Node:
        if self.peek().kind == "end":
            raise self.fail(self.peek(), "表达式为空")
        node = self.expression(0)
        token = self.peek()
        if token.kind == ")":
            raise self.fail(token, "多余的右括号 ')'，括号不配对")
        if token.kind != "end":
            rest = self.source[token.pos :].strip()
            raise self.fail(token, f"多余的内容 '{rest}'，此处应为运算符或表达式结尾")
        return node

    def expression(self, min_power: int) -> _Node:
        left = self.unary()
        while True:
            token = self.peek()
            if token.kind != "op" or token.text not in _BINARY_POWER:
                return left
            power = _BINARY_POWER[token.text]
            if power <= min_power:
                return left
            self.advance()
            # Parsing the right side with the operator's own power makes equal operators left-associative.
            right = self.expression(power)
            left = _Binary(token.text, left, right)

    def unary(self) -> _Node:
        token = self.peek()
        if token.kind == "op" and token.text in ("+", "-"):
            self.advance()
            return _Unary(token.text, self.unary())
        return self.primary()

    def primary(self) -> _Node:
        token = self.advance()
        if token.kind == "num":
            return _Num(Decimal(token.text))
        if token.kind == "str":
            return _Str(token.text)
        if token.kind == "bool":
            return _Bool(token.text == "TRUE")
        if token.kind == "name":
            return _Name(token.text)
        if token.kind == "func":
            return self.call(token)
        if token.kind == "(":
            node = self.expression(0)
            self.expect_close(token)
            return node
        if token.kind == "end":
            raise self.fail(token, "表达式不完整，结尾缺少运算对象")
        raise self.fail(token, f"此处应为数值、字符串、名称、函数或左括号，却遇到 '{token.raw}'")

    def expect_close(self, opening: _Token) -> None:
        token = self.peek()
        if token.kind == ")":
            self.advance()
            return
        if token.kind == "end":
            raise self.fail(token, f"缺少右括号 ')'，与第 {opening.pos + 1} 个字符处的 '(' 配对")
        raise self.fail(token, f"此处应为右括号 ')'，却遇到 '{token.raw}'")

    def call(self, func: _Token) -> _Node:
        opening = self.advance()  # the tokenizer only makes a func token when "(" follows
        args: list[_Node] = []
        if self.peek().kind == ")":
            self.advance()
        else:
            while True:
                args.append(self.expression(0))
                token = self.peek()
                if token.kind == ",":
                    self.advance()
                    continue
                if token.kind == ")":
                    self.advance()
                    break
                if token.kind == "end":
                    raise self.fail(token, f"缺少右括号 ')'，与第 {opening.pos + 1} 个字符处 {func.text} 的 '(' 配对")
                raise self.fail(token, f"此处应为 ',' 或 ')'，却遇到 '{token.raw}'")
        low, high = _FUNCTIONS[func.text]
        count = len(args)
        limit = _MAX_ARGS if high is None else high
        if not low <= count <= limit:
            if high is None:
                wanted = f"{low} 到 {_MAX_ARGS} 个"
            elif low == high:
                wanted = f"{low} 个"
            else:
                wanted = f"{low} 到 {high} 个"
            raise self.fail(func, f"函数 {func.text} 需要 {wanted}参数，实际为 {count} 个")
        return _Call(func.text, tuple(args))


@functools.lru_cache(maxsize=4096)
def parse(source: str) -> Expr:
    """Parse an expression; raise ExprError naming the character position of the first mistake."""
    return Expr(source, _Parser(source).parse())


# --- Excel formula writer ----------------------------------------------------------------------

# Arguments that are plain cells may be merged into ranges only where a range means the same as
# the list of cells: these functions treat both as references.
_RANGE_FUNCTIONS = frozenset({"SUM", "COUNT", "MIN", "MAX"})


def _col_letters(col: int) -> str:
    letters = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _sheet_prefix(cell: CellRef, sheet: str) -> str:
    if cell.sheet == sheet:
        return ""
    return "'" + cell.sheet.replace("'", "''") + "'!"


def _a1(cell: CellRef) -> str:
    return f"{_col_letters(cell.col)}{cell.row + 1}"


def _format_number(value: Decimal) -> str:
    if value == 0:
        return "0"  # also drops the sign of -0, which Excel does not have
    return format(value.normalize(), "f")


def _quote_text(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _merge_cells(cells: list[CellRef]) -> list[tuple[CellRef, CellRef]]:
    """Group consecutive cells into vertical or horizontal runs, keeping their order."""
    runs: list[tuple[CellRef, CellRef]] = []
    for cell in cells:
        if runs:
            start, end = runs[-1]
            same_sheet = cell.sheet == start.sheet
            # A single cell may start either direction; a longer run only continues its own.
            down = cell.col == start.col == end.col and cell.row == end.row + 1
            across = cell.row == start.row == end.row and cell.col == end.col + 1
            if same_sheet and (down or across):
                runs[-1] = (start, cell)
                continue
        runs.append((cell, cell))
    return runs


def to_excel(expr: Expr, ref: Callable[[str], CellRef], sheet: str) -> str:
    """The Excel formula for `expr` (without the leading '='), written on `sheet`."""

    def cell_text(cell: CellRef) -> str:
        return _sheet_prefix(cell, sheet) + _a1(cell)

    def write(node: _Node) -> tuple[str, int]:
        """Return the formula text and its binding power, so the parent knows whether to wrap it."""
        if isinstance(node, _Num):
            return _format_number(node.value), _ATOM_POWER
        if isinstance(node, _Str):
            return _quote_text(node.value), _ATOM_POWER
        if isinstance(node, _Bool):
            return ("TRUE" if node.value else "FALSE"), _ATOM_POWER
        if isinstance(node, _Name):
            return cell_text(ref(node.name)), _ATOM_POWER
        if isinstance(node, _Unary):
            text, power = write(node.operand)
            if power < _UNARY_POWER:
                text = f"({text})"
            return node.op + text, _UNARY_POWER
        if isinstance(node, _Binary):
            power = _BINARY_POWER[node.op]
            left, left_power = write(node.left)
            right, right_power = write(node.right)
            if left_power < power:
                left = f"({left})"
            # Operators are left-associative, so an equal-power right side needs its parentheses:
            # a-(b-c) differs from a-b-c, and even a+(b+c) may round differently.
            if right_power <= power:
                right = f"({right})"
            return f"{left}{node.op}{right}", power
        return f"{node.func}({','.join(write_args(node))})", _ATOM_POWER

    def write_args(call: _Call) -> list[str]:
        if call.func not in _RANGE_FUNCTIONS:
            return [write(arg)[0] for arg in call.args]
        parts: list[str] = []
        pending: list[CellRef] = []

        def flush() -> None:
            for start, end in _merge_cells(pending):
                text = cell_text(start)
                if end != start:
                    text += ":" + _a1(end)
                parts.append(text)
            pending.clear()

        for arg in call.args:
            if isinstance(arg, _Name):
                pending.append(ref(arg.name))
            else:
                flush()
                parts.append(write(arg)[0])
        flush()
        return parts

    return write(expr.root)[0]


# --- evaluation --------------------------------------------------------------------------------

_NUMERIC_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?%?")
# Excel keeps 15 significant digits; comparing and printing at that precision keeps Decimal
# results such as 1/3*3 equal to 1, as they are in Excel and LibreOffice.
_EXCEL_DIGITS = 15
# Bounds the work ROUND can be asked to do; Excel's own numbers end near 1E+308.
_MAX_ROUND_DIGITS = 400

_TRAPS = [InvalidOperation, DivisionByZero, Overflow]
# Every formula runs in this context, spelled out in full so that neither the caller's decimal
# settings nor a changed decimal.DefaultContext can change a score.
_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN, Emin=-999_999, Emax=999_999, capitals=1, clamp=0, traps=_TRAPS)
# Rounding to 15 digits in this context gives the same number as quantizing at the 15th digit, without
# entering a localcontext per comparison; near the exponent limits, where quantizing raises, the slow
# path below keeps that behaviour.
_SIGNIFICANT = Context(prec=_EXCEL_DIGITS, rounding=ROUND_HALF_UP, Emin=-999_999, Emax=999_999, traps=_TRAPS)
_SIGNIFICANT_EXPONENTS = 999_000
_ZERO = Decimal(0)


def _significant(value: Decimal) -> Decimal:
    if not value or not value.is_finite():
        return value
    if -_SIGNIFICANT_EXPONENTS < value.adjusted() < _SIGNIFICANT_EXPONENTS:
        return _SIGNIFICANT.plus(value)
    quantum = Decimal(1).scaleb(value.adjusted() - _EXCEL_DIGITS + 1)
    with localcontext() as ctx:
        ctx.prec = max(ctx.prec, _EXCEL_DIGITS + 2)
        return value.quantize(quantum, rounding=ROUND_HALF_UP)


def _round(value: Decimal, digits: int, rounding: str) -> Decimal:
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
    return _round(x, digits, ROUND_HALF_UP)


def _to_number(value: Value) -> Decimal | ExcelError:
    if isinstance(value, ExcelError | Decimal):
        return value
    if isinstance(value, bool):
        return Decimal(1) if value else Decimal(0)
    if value is None:
        return Decimal(0)
    text = value.strip()
    if not _NUMERIC_TEXT.fullmatch(text):
        return _VALUE
    if text.endswith("%"):
        return Decimal(text[:-1]) / 100
    return Decimal(text)


def _to_logical(value: Value) -> bool | ExcelError:
    if isinstance(value, ExcelError | bool):
        return value
    if isinstance(value, Decimal):
        return value != 0
    if value is None:
        return False
    return _VALUE


def _to_text(value: Value) -> str | ExcelError:
    if isinstance(value, ExcelError | str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if value is None:
        return ""
    return _format_number(_significant(value))


def _blank_as(other: Value) -> Value:
    """What a blank cell compares as, given the other side."""
    if isinstance(other, str):
        return ""
    if isinstance(other, bool):
        return False
    return Decimal(0)


# What each comparison yields for an order of -1, 0 and 1.
_OUTCOMES = {
    "=": (False, True, False),
    "<>": (True, False, True),
    "<": (True, False, False),
    "<=": (True, True, False),
    ">": (False, False, True),
    ">=": (False, True, True),
}


def _compare(op: str, left: Value, right: Value) -> bool | ExcelError:
    if isinstance(left, ExcelError):
        return left
    if isinstance(right, ExcelError):
        return right
    if left is None:
        left = _blank_as(right)
    if right is None:
        right = _blank_as(left)
    return _OUTCOMES[op][_order(left, right) + 1]


def _rank(value: Value) -> int:
    # Excel sorts numbers < text < booleans across types.
    if isinstance(value, bool):
        return 2
    if isinstance(value, str):
        return 1
    return 0


def _order(left: Value, right: Value) -> int:
    """-1, 0 or 1 for two non-blank, non-error values, in Excel's sort order."""
    left_rank, right_rank = _rank(left), _rank(right)
    if left_rank != right_rank:
        return -1 if left_rank < right_rank else 1
    if isinstance(left, Decimal) and isinstance(right, Decimal):
        a, b = _significant(left), _significant(right)
        return (a > b) - (a < b)
    if isinstance(left, str) and isinstance(right, str):
        x, y = left.casefold(), right.casefold()
        return (x > y) - (x < y)
    return int(bool(left)) - int(bool(right))  # both booleans


def _arithmetic(op: str, left: Value, right: Value) -> Value:
    # Coerce left before right so that the first error, reading left to right, wins.
    a = _to_number(left)
    if isinstance(a, ExcelError):
        return a
    b = _to_number(right)
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
            return _DIV0
        return a / b
    except ArithmeticError:  # overflow beyond Decimal's exponent range
        return _NUM


# A tree is compiled once into nested closures, each taking the lookup, so that evaluating does no
# dispatch on node types (several times faster than walking the tree). Every closure evaluates its
# operands left to right, as the walk did, and takes a fast path only where the general code would
# give the same result for the same values.

_Lookup = Callable[[str], Value]
_Compiled = Callable[[_Lookup], Value]


def _compile(node: _Node) -> _Compiled:
    if isinstance(node, _Num | _Str | _Bool):
        return _constant(node.value)
    if isinstance(node, _Name):
        return _reference(node.name)
    if isinstance(node, _Unary):
        operand = _compile(node.operand)
        # Excel's unary plus changes nothing, not even text.
        return operand if node.op == "+" else _negation(operand)
    if isinstance(node, _Binary):
        left, right = _compile(node.left), _compile(node.right)
        if node.op == "&":
            return _concatenation(left, right)
        if node.op in _OPERATIONS:
            return _operation(node.op, left, right)
        if isinstance(node.right, _Str):
            return _comparison_with_text(node.op, left, node.right.value)
        if isinstance(node.right, _Num) and _significant_is_exact(node.right.value):
            return _comparison_with_number(node.op, left, node.right.value)
        return _comparison(node.op, left, right)
    return _CALLS[node.func](node.args)


def _constant(value: Value) -> _Compiled:
    return lambda lookup: value


def _reference(name: str) -> _Compiled:
    return lambda lookup: lookup(name)


def _negation(operand: _Compiled) -> _Compiled:
    def run(lookup: _Lookup) -> Value:
        number = _to_number(operand(lookup))
        if isinstance(number, ExcelError):
            return number
        return _ZERO - number  # not -number, which can yield -0

    return run


def _concatenation(left: _Compiled, right: _Compiled) -> _Compiled:
    def run(lookup: _Lookup) -> Value:
        a_value = left(lookup)
        b_value = right(lookup)
        a = _to_text(a_value)
        if isinstance(a, ExcelError):
            return a
        b = _to_text(b_value)
        if isinstance(b, ExcelError):
            return b
        return a + b

    return run


def _divide(a: Decimal, b: Decimal) -> Value:
    return _DIV0 if b == 0 else a / b


_OPERATIONS: dict[str, Callable[[Decimal, Decimal], Value]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
}


def _operation(op: str, left: _Compiled, right: _Compiled) -> _Compiled:
    apply = _OPERATIONS[op]

    def run(lookup: _Lookup) -> Value:
        a = left(lookup)
        b = right(lookup)
        if not (isinstance(a, Decimal) and isinstance(b, Decimal)):
            return _arithmetic(op, a, b)
        try:
            return apply(a, b)
        except ArithmeticError:
            return _NUM

    return run


def _comparison(op: str, left: _Compiled, right: _Compiled) -> _Compiled:
    outcome = _OUTCOMES[op]

    def run(lookup: _Lookup) -> Value:
        a = left(lookup)
        b = right(lookup)
        if not (isinstance(a, Decimal) and isinstance(b, Decimal)):
            return _compare(op, a, b)
        x, y = _significant(a), _significant(b)
        return outcome[(x > y) - (x < y) + 1]

    return run


# Most comparisons are with a literal (x="", x=0, x>2): the literal's side is worked out once.


def _comparison_with_text(op: str, left: _Compiled, text: str) -> _Compiled:
    outcome = _OUTCOMES[op]
    below = outcome[0]  # a number sorts before any text
    blank = outcome[_order("", text) + 1]  # a blank cell compares as ""

    def run(lookup: _Lookup) -> Value:
        a = left(lookup)
        if isinstance(a, Decimal):
            return below
        if a is None:
            return blank
        return _compare(op, a, text)

    return run


def _significant_is_exact(number: Decimal) -> bool:
    """Whether _significant(number) is the same in any decimal context, so it can be worked out once."""
    return not number or (number.is_finite() and -_SIGNIFICANT_EXPONENTS < number.adjusted() < _SIGNIFICANT_EXPONENTS)


def _comparison_with_number(op: str, left: _Compiled, number: Decimal) -> _Compiled:
    outcome = _OUTCOMES[op]
    y = _significant(number)
    blank = outcome[(_ZERO > y) - (_ZERO < y) + 1]  # a blank cell compares as 0

    def run(lookup: _Lookup) -> Value:
        a = left(lookup)
        if isinstance(a, Decimal):
            x = _significant(a)
            return outcome[(x > y) - (x < y) + 1]
        if a is None:
            return blank
        return _compare(op, a, number)

    return run


def _if(args: tuple[_Node, ...]) -> _Compiled:
    condition, chosen = _compile(args[0]), _compile(args[1])
    otherwise = _compile(args[2]) if len(args) == 3 else _constant(False)

    def run(lookup: _Lookup) -> Value:
        # Only the chosen branch is evaluated: IF(x=0,"",y/x) must not produce #DIV/0!.
        value = condition(lookup)
        if value is True:
            return chosen(lookup)
        if value is False:
            return otherwise(lookup)
        logical = _to_logical(value)
        if isinstance(logical, ExcelError):
            return logical
        return chosen(lookup) if logical else otherwise(lookup)

    return run


def _iferror(args: tuple[_Node, ...]) -> _Compiled:
    first, fallback = _compile(args[0]), _compile(args[1])

    def run(lookup: _Lookup) -> Value:
        value = first(lookup)
        return fallback(lookup) if isinstance(value, ExcelError) else value

    return run


def _logical(decisive: bool) -> Callable[[tuple[_Node, ...]], _Compiled]:
    """AND (one FALSE decides) or OR (one TRUE decides)."""

    def compile_call(args: tuple[_Node, ...]) -> _Compiled:
        parts = tuple((isinstance(arg, _Name), _compile(arg)) for arg in args)

        def run(lookup: _Lookup) -> Value:
            seen = decided = False
            # Every argument is evaluated (no short circuit) because Excel reports an error in any of them.
            for is_name, part in parts:
                value = part(lookup)
                if value is True or value is False:
                    logical = value
                else:
                    if isinstance(value, ExcelError):
                        return value
                    if value is None or (is_name and isinstance(value, str)):
                        continue
                    converted = _to_logical(value)
                    if isinstance(converted, ExcelError):
                        return converted
                    logical = converted
                seen = True
                if logical is decisive:
                    decided = True
            if not seen:
                return _VALUE
            return decided is decisive

        return run

    return compile_call


def _not(args: tuple[_Node, ...]) -> _Compiled:
    operand = _compile(args[0])

    def run(lookup: _Lookup) -> Value:
        value = operand(lookup)
        if value is True or value is False:
            return not value
        logical = _to_logical(value)
        return logical if isinstance(logical, ExcelError) else not logical

    return run


def _numbers(args: tuple[_Node, ...]) -> Callable[[_Lookup], list[Decimal] | ExcelError]:
    """Numeric arguments as SUM, MIN and MAX see them; errors propagate."""
    names = tuple(arg.name for arg in args if isinstance(arg, _Name))
    if len(names) == len(args):

        def referenced(lookup: _Lookup) -> list[Decimal] | ExcelError:
            numbers: list[Decimal] = []
            for name in names:
                value = lookup(name)
                # Excel skips text, blanks and booleans held in referenced cells.
                if isinstance(value, Decimal):
                    numbers.append(value)
                elif isinstance(value, ExcelError):
                    return value
            return numbers

        return referenced

    parts = tuple((isinstance(arg, _Name), _compile(arg)) for arg in args)

    def mixed(lookup: _Lookup) -> list[Decimal] | ExcelError:
        numbers: list[Decimal] = []
        for is_name, part in parts:
            value = part(lookup)
            if isinstance(value, ExcelError):
                return value
            if is_name:
                if isinstance(value, Decimal):
                    numbers.append(value)
                continue
            if value is None:
                continue
            # A value typed into the argument list is converted: TRUE -> 1, "5" -> 5, "x" -> #VALUE!.
            number = _to_number(value)
            if isinstance(number, ExcelError):
                return number
            numbers.append(number)
        return numbers

    return mixed


def _sum(args: tuple[_Node, ...]) -> _Compiled:
    numbers_of = _numbers(args)

    def run(lookup: _Lookup) -> Value:
        numbers = numbers_of(lookup)
        if isinstance(numbers, ExcelError):
            return numbers
        return sum(numbers, Decimal(0))

    return run


def _extreme(pick: Callable[[list[Decimal]], Decimal]) -> Callable[[tuple[_Node, ...]], _Compiled]:
    def compile_call(args: tuple[_Node, ...]) -> _Compiled:
        numbers_of = _numbers(args)

        def run(lookup: _Lookup) -> Value:
            numbers = numbers_of(lookup)
            if isinstance(numbers, ExcelError):
                return numbers
            return pick(numbers) if numbers else Decimal(0)

        return run

    return compile_call


def _count(args: tuple[_Node, ...]) -> _Compiled:
    parts = tuple((isinstance(arg, _Name), _compile(arg)) for arg in args)

    def run(lookup: _Lookup) -> Value:
        count = 0
        # COUNT never propagates errors.
        for is_name, part in parts:
            value = part(lookup)
            if is_name or isinstance(value, Decimal | ExcelError) or value is None:
                counted = isinstance(value, Decimal)
            else:
                # Typed-in booleans and numeric text count, as in Excel.
                counted = isinstance(value, bool) or _NUMERIC_TEXT.fullmatch(value.strip()) is not None
            if counted:
                count += 1
        return Decimal(count)

    return run


def _isnumber(args: tuple[_Node, ...]) -> _Compiled:
    operand = _compile(args[0])
    return lambda lookup: isinstance(operand(lookup), Decimal)


def _abs(args: tuple[_Node, ...]) -> _Compiled:
    operand = _compile(args[0])

    def run(lookup: _Lookup) -> Value:
        number = _to_number(operand(lookup))
        return number if isinstance(number, ExcelError) else abs(number)

    return run


def _places(digits: Decimal) -> int:
    # Excel truncates a fractional digit count toward zero.
    return max(-_MAX_ROUND_DIGITS, min(_MAX_ROUND_DIGITS, int(digits)))


def _rounding(mode: str) -> Callable[[tuple[_Node, ...]], _Compiled]:
    def round_to(number: Decimal, places: int) -> Value:
        try:
            return _round(number, places, mode)
        except ArithmeticError:
            return _NUM

    def compile_call(args: tuple[_Node, ...]) -> _Compiled:
        number_of, digits = _compile(args[0]), args[1]
        if isinstance(digits, _Num) and digits.value.adjusted() < 6:
            places = _places(digits.value)  # the usual ROUND(x,2): the digit count is known now

            def fixed(lookup: _Lookup) -> Value:
                number = _to_number(number_of(lookup))
                return number if isinstance(number, ExcelError) else round_to(number, places)

            return fixed

        digits_of = _compile(digits)

        def run(lookup: _Lookup) -> Value:
            number = _to_number(number_of(lookup))
            if isinstance(number, ExcelError):
                return number
            count = _to_number(digits_of(lookup))
            if isinstance(count, ExcelError):
                return count
            return round_to(number, _places(count))

        return run

    return compile_call


_CALLS: dict[str, Callable[[tuple[_Node, ...]], _Compiled]] = {
    "IF": _if,
    "AND": _logical(False),
    "OR": _logical(True),
    "NOT": _not,
    "MIN": _extreme(min),
    "MAX": _extreme(max),
    "SUM": _sum,
    "COUNT": _count,
    "ROUND": _rounding(ROUND_HALF_UP),
    "ROUNDUP": _rounding(ROUND_UP),
    "ROUNDDOWN": _rounding(ROUND_DOWN),
    "ABS": _abs,
    "ISNUMBER": _isnumber,
    "IFERROR": _iferror,
}


def evaluate(expr: Expr, lookup: Callable[[str], Value]) -> Value:
    """Evaluate `expr` with Excel semantics; `lookup(name)` gives a cell's value (None for blank)."""
    with localcontext(_CONTEXT):  # a copy: the caller's context is restored on the way out
        result = expr._compiled(lookup)
    # Excel shows a formula that just references a blank cell as 0.
    return Decimal(0) if result is None else result
