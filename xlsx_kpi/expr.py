"""A tiny Excel-like formula language: one definition, written as an Excel formula and run in Decimal."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Context, Decimal, localcontext

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
        return _names(self.root)

    def __str__(self) -> str:
        return self.source


@functools.lru_cache(maxsize=8192)
def _names(root: _Node) -> frozenset[str]:
    return frozenset(_walk_names(root))


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


def _significant(value: Decimal) -> Decimal:
    if not value or not value.is_finite():
        return value
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
    with localcontext() as ctx:
        ctx.prec = max(28, abs(value.adjusted()) + abs(digits) + 3)
        result = value.quantize(Decimal(1).scaleb(-digits), rounding=rounding)
        if digits < 0:
            result = result.quantize(Decimal(1))  # 1200 rather than 1.2E+3
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


def _compare(op: str, left: Value, right: Value) -> bool | ExcelError:
    if isinstance(left, ExcelError):
        return left
    if isinstance(right, ExcelError):
        return right
    if left is None:
        left = _blank_as(right)
    if right is None:
        right = _blank_as(left)
    order = _order(left, right)
    if op == "=":
        return order == 0
    if op == "<>":
        return order != 0
    if op == "<":
        return order < 0
    if op == "<=":
        return order <= 0
    if op == ">":
        return order > 0
    return order >= 0


def _rank(value: Value) -> int:
    # Excel sorts numbers < text < booleans across types.
    if isinstance(value, bool):
        return 2
    if isinstance(value, str):
        return 1
    return 0


def _order(left: Value, right: Value) -> int:
    """-1, 0 or 1 for two non-blank, non-error values, in Excel's sort order."""
    if _rank(left) != _rank(right):
        return -1 if _rank(left) < _rank(right) else 1
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


class _Evaluator:
    def __init__(self, lookup: Callable[[str], Value]) -> None:
        self.lookup = lookup

    def eval(self, node: _Node) -> Value:
        if isinstance(node, _Num):
            return node.value
        if isinstance(node, _Str):
            return node.value
        if isinstance(node, _Bool):
            return node.value
        if isinstance(node, _Name):
            return self.lookup(node.name)
        if isinstance(node, _Unary):
            operand = self.eval(node.operand)
            if node.op == "+":
                return operand  # Excel's unary plus changes nothing, not even text
            number = _to_number(operand)
            if isinstance(number, ExcelError):
                return number
            return Decimal(0) - number  # not -number, which can yield -0
        if isinstance(node, _Binary):
            left = self.eval(node.left)
            right = self.eval(node.right)
            if node.op == "&":
                a = _to_text(left)
                if isinstance(a, ExcelError):
                    return a
                b = _to_text(right)
                if isinstance(b, ExcelError):
                    return b
                return a + b
            if node.op in ("+", "-", "*", "/"):
                return _arithmetic(node.op, left, right)
            return _compare(node.op, left, right)
        return self.call(node)

    def call(self, node: _Call) -> Value:
        func, args = node.func, node.args
        if func == "IF":
            condition = _to_logical(self.eval(args[0]))
            if isinstance(condition, ExcelError):
                return condition
            # Only the chosen branch is evaluated: IF(x=0,"",y/x) must not produce #DIV/0!.
            if condition:
                return self.eval(args[1])
            return self.eval(args[2]) if len(args) == 3 else False
        if func == "IFERROR":
            value = self.eval(args[0])
            return self.eval(args[1]) if isinstance(value, ExcelError) else value
        if func in ("AND", "OR"):
            return self.logical(func, args)
        if func == "NOT":
            logical = _to_logical(self.eval(args[0]))
            return logical if isinstance(logical, ExcelError) else not logical
        if func in ("SUM", "MIN", "MAX"):
            numbers = self.numbers(args)
            if isinstance(numbers, ExcelError):
                return numbers
            if func == "SUM":
                return sum(numbers, Decimal(0))
            if not numbers:
                return Decimal(0)
            return min(numbers) if func == "MIN" else max(numbers)
        if func == "COUNT":
            return Decimal(sum(1 for arg in args if self.counts(arg)))
        if func == "ISNUMBER":
            return isinstance(self.eval(args[0]), Decimal)
        if func == "ABS":
            number = _to_number(self.eval(args[0]))
            return number if isinstance(number, ExcelError) else abs(number)
        return self.rounding(func, args)

    def numbers(self, args: tuple[_Node, ...]) -> list[Decimal] | ExcelError:
        """Numeric arguments as SUM, MIN and MAX see them; errors propagate."""
        numbers: list[Decimal] = []
        for arg in args:
            value = self.eval(arg)
            if isinstance(value, ExcelError):
                return value
            if isinstance(arg, _Name):
                # Excel skips text, blanks and booleans held in referenced cells.
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

    def counts(self, arg: _Node) -> bool:
        """Whether COUNT counts this argument; COUNT never propagates errors."""
        value = self.eval(arg)
        if isinstance(arg, _Name) or isinstance(value, Decimal | ExcelError) or value is None:
            return isinstance(value, Decimal)
        # Typed-in booleans and numeric text count, as in Excel.
        return isinstance(value, bool) or _NUMERIC_TEXT.fullmatch(value.strip()) is not None

    def logical(self, func: str, args: tuple[_Node, ...]) -> Value:
        results: list[bool] = []
        # Every argument is evaluated (no short circuit) because Excel reports an error in any of them.
        for arg in args:
            value = self.eval(arg)
            if isinstance(value, ExcelError):
                return value
            if value is None or (isinstance(arg, _Name) and isinstance(value, str)):
                continue
            logical = _to_logical(value)
            if isinstance(logical, ExcelError):
                return logical
            results.append(logical)
        if not results:
            return _VALUE
        return all(results) if func == "AND" else any(results)

    def rounding(self, func: str, args: tuple[_Node, ...]) -> Value:
        number = _to_number(self.eval(args[0]))
        if isinstance(number, ExcelError):
            return number
        digits = _to_number(self.eval(args[1]))
        if isinstance(digits, ExcelError):
            return digits
        # Excel truncates a fractional digit count toward zero.
        places = max(-_MAX_ROUND_DIGITS, min(_MAX_ROUND_DIGITS, int(digits)))
        mode = {"ROUND": ROUND_HALF_UP, "ROUNDUP": ROUND_UP, "ROUNDDOWN": ROUND_DOWN}[func]
        try:
            return _round(number, places, mode)
        except ArithmeticError:
            return _NUM


def evaluate(expr: Expr, lookup: Callable[[str], Value]) -> Value:
    """Evaluate `expr` with Excel semantics; `lookup(name)` gives a cell's value (None for blank)."""
    # A fixed context so that the caller's decimal settings cannot change a score.
    with localcontext(Context(prec=28, rounding=ROUND_HALF_EVEN)):
        result = _Evaluator(lookup).eval(expr.root)
    # Excel shows a formula that just references a blank cell as 0.
    return Decimal(0) if result is None else result
