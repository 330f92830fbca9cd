"""The formula language's values, syntax tree and parser: `parse` turns a spec expression into an `Expr`."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal


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
class Num:
    value: Decimal


@dataclass(frozen=True)
class Str:
    value: str


@dataclass(frozen=True)
class Bool:
    value: bool


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Node, ...]


Node = Num | Str | Bool | Name | Unary | Binary | Call


@dataclass(frozen=True, eq=False)
class Expr:
    """An immutable parsed expression; `source` is the text it was parsed from.

    Two expressions are equal when their sources are: parsing is deterministic, so the same text always gives
    the same tree, and hashing the text (cached by Python) is cheaper than hashing the tree.
    """

    source: str
    root: Node = field(repr=False)

    def names(self) -> frozenset[str]:
        """Every name the expression references, in any branch (computed once: parse() shares Exprs)."""
        return self._names

    @functools.cached_property
    def _names(self) -> frozenset[str]:
        return frozenset(_walk_names(self.root))

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, Expr) and self.source == other.source)

    def __hash__(self) -> int:
        return hash(self.source)

    def __getstate__(self) -> dict[str, object]:
        # Only the fields: the cached names are rebuilt when used.
        return {"source": self.source, "root": self.root}

    def __str__(self) -> str:
        return self.source


def _walk_names(node: Node) -> Iterator[str]:
    if isinstance(node, Name):
        yield node.name
    elif isinstance(node, Unary):
        yield from _walk_names(node.operand)
    elif isinstance(node, Binary):
        yield from _walk_names(node.left)
        yield from _walk_names(node.right)
    elif isinstance(node, Call):
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
BINARY_POWER = {"=": 10, "<>": 10, "<": 10, "<=": 10, ">": 10, ">=": 10, "&": 20, "+": 30, "-": 30}
BINARY_POWER.update({"*": 40, "/": 40})
UNARY_POWER = 50
ATOM_POWER = 100


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

    def parse(self) -> Node:
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

    def expression(self, min_power: int) -> Node:
        left = self.unary()
        while True:
            token = self.peek()
            if token.kind != "op" or token.text not in BINARY_POWER:
                return left
            power = BINARY_POWER[token.text]
            if power <= min_power:
                return left
            self.advance()
            # Parsing the right side with the operator's own power makes equal operators left-associative.
            right = self.expression(power)
            left = Binary(token.text, left, right)

    def unary(self) -> Node:
        token = self.peek()
        if token.kind == "op" and token.text in ("+", "-"):
            self.advance()
            return Unary(token.text, self.unary())
        return self.primary()

    def primary(self) -> Node:
        token = self.advance()
        if token.kind == "num":
            return Num(Decimal(token.text))
        if token.kind == "str":
            return Str(token.text)
        if token.kind == "bool":
            return Bool(token.text == "TRUE")
        if token.kind == "name":
            return Name(token.text)
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

    def call(self, func: _Token) -> Node:
        opening = self.advance()  # the tokenizer only makes a func token when "(" follows
        args: list[Node] = []
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
        return Call(func.text, tuple(args))


# Expressions an earlier run parsed (formats.catalog keeps them with the spec cache): unpickling a tree takes a
# sixth of parsing its text again (~12 ms of a `check`, issue 14).
_KNOWN: dict[str, Expr] = {}


def remember(exprs: Iterable[Expr]) -> None:
    """Let parse() return these trees for their sources instead of parsing them again."""
    for e in exprs:
        _KNOWN.setdefault(e.source, e)


@functools.lru_cache(maxsize=4096)
def parse(source: str) -> Expr:
    """Parse an expression; raise ExprError naming the character position of the first mistake."""
    known = _KNOWN.get(source)
    return known if known is not None else Expr(source, _Parser(source).parse())
