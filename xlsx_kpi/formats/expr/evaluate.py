"""Evaluating an `Expr` with Excel semantics: each tree is compiled once into nested closures."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal, localcontext

from xlsx_kpi.formats.expr.coerce import (
    CONTEXT,
    DIV0,
    MAX_ROUND_DIGITS,
    NUM,
    NUMERIC_TEXT,
    OUTCOMES,
    SIGNIFICANT_EXPONENTS,
    VALUE,
    ZERO,
    arithmetic,
    compare,
    order,
    round_digits,
    significant,
    to_logical,
    to_number,
    to_text,
)
from xlsx_kpi.formats.expr.syntax import Binary, Bool, ExcelError, Expr, Name, Node, Num, Str, Unary, Value

# A tree is compiled once into nested closures, each taking the lookup, so that evaluating does no
# dispatch on node types (several times faster than walking the tree). Every closure evaluates its
# operands left to right, as the walk did, and takes a fast path only where the general code would
# give the same result for the same values.

_Lookup = Callable[[str], Value]
_Compiled = Callable[[_Lookup], Value]


def _compile(node: Node) -> _Compiled:
    if isinstance(node, Num | Str | Bool):
        return _constant(node.value)
    if isinstance(node, Name):
        return _reference(node.name)
    if isinstance(node, Unary):
        operand = _compile(node.operand)
        # Excel's unary plus changes nothing, not even text.
        return operand if node.op == "+" else _negation(operand)
    if isinstance(node, Binary):
        if node.op == "&":
            return _concatenation(_compile(node.left), _compile(node.right))
        if node.op in _OPERATIONS:
            return _operation(node.op, node.left, node.right)
        if isinstance(node.right, Str):
            return _comparison_with_text(node.op, node.left, node.right.value)
        if isinstance(node.right, Num) and _significant_is_exact(node.right.value):
            return _comparison_with_number(node.op, node.left, node.right.value)
        return _comparison(node.op, _compile(node.left), _compile(node.right))
    return _CALLS[node.func](node.args)


def _operand(node: Node) -> tuple[str | None, _Compiled]:
    """(the name, if the operand is a plain cell, and its closure): a closure that looks a name up directly
    saves a call per operand, and most operands are plain cells."""
    return (node.name if isinstance(node, Name) else None), _compile(node)


def _constant(value: Value) -> _Compiled:
    return lambda lookup: value


def _reference(name: str) -> _Compiled:
    return lambda lookup: lookup(name)


def _negation(operand: _Compiled) -> _Compiled:
    def run(lookup: _Lookup) -> Value:
        number = to_number(operand(lookup))
        if isinstance(number, ExcelError):
            return number
        return ZERO - number  # not -number, which can yield -0

    return run


def _concatenation(left: _Compiled, right: _Compiled) -> _Compiled:
    def run(lookup: _Lookup) -> Value:
        a_value = left(lookup)
        b_value = right(lookup)
        a = to_text(a_value)
        if isinstance(a, ExcelError):
            return a
        b = to_text(b_value)
        if isinstance(b, ExcelError):
            return b
        return a + b

    return run


def _divide(a: Decimal, b: Decimal) -> Value:
    return DIV0 if b == 0 else a / b


_OPERATIONS: dict[str, Callable[[Decimal, Decimal], Value]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
}


def _operation(op: str, left_node: Node, right_node: Node) -> _Compiled:
    apply = _OPERATIONS[op]
    left_name, left = _operand(left_node)
    right_name, right = _operand(right_node)

    def run(lookup: _Lookup) -> Value:
        a = left(lookup) if left_name is None else lookup(left_name)
        b = right(lookup) if right_name is None else lookup(right_name)
        if not (isinstance(a, Decimal) and isinstance(b, Decimal)):
            return arithmetic(op, a, b)
        try:
            return apply(a, b)
        except ArithmeticError:
            return NUM

    return run


def _comparison(op: str, left: _Compiled, right: _Compiled) -> _Compiled:
    outcome = OUTCOMES[op]

    def run(lookup: _Lookup) -> Value:
        a = left(lookup)
        b = right(lookup)
        if not (isinstance(a, Decimal) and isinstance(b, Decimal)):
            return compare(op, a, b)
        x, y = significant(a), significant(b)
        return outcome[(x > y) - (x < y) + 1]

    return run


# Most comparisons are with a literal (x="", x=0, x>2): the literal's side is worked out once.


def _comparison_with_text(op: str, left_node: Node, text: str) -> _Compiled:
    outcome = OUTCOMES[op]
    below = outcome[0]  # a number sorts before any text
    blank = outcome[order("", text) + 1]  # a blank cell compares as ""
    name, left = _operand(left_node)

    def run(lookup: _Lookup) -> Value:
        a = left(lookup) if name is None else lookup(name)
        if isinstance(a, Decimal):
            return below
        if a is None:
            return blank
        return compare(op, a, text)

    return run


def _significant_is_exact(number: Decimal) -> bool:
    """Whether significant(number) is the same in any decimal context, so it can be worked out once."""
    return not number or (number.is_finite() and -SIGNIFICANT_EXPONENTS < number.adjusted() < SIGNIFICANT_EXPONENTS)


def _comparison_with_number(op: str, left_node: Node, number: Decimal) -> _Compiled:
    outcome = OUTCOMES[op]
    y = significant(number)
    blank = outcome[(ZERO > y) - (ZERO < y) + 1]  # a blank cell compares as 0
    name, left = _operand(left_node)

    def run(lookup: _Lookup) -> Value:
        a = left(lookup) if name is None else lookup(name)
        if isinstance(a, Decimal):
            x = significant(a)
            return outcome[(x > y) - (x < y) + 1]
        if a is None:
            return blank
        return compare(op, a, number)

    return run


def _if(args: tuple[Node, ...]) -> _Compiled:
    condition, chosen = _compile(args[0]), _compile(args[1])
    otherwise = _compile(args[2]) if len(args) == 3 else _constant(False)

    def run(lookup: _Lookup) -> Value:
        # Only the chosen branch is evaluated: IF(x=0,"",y/x) must not produce #DIV/0!.
        value = condition(lookup)
        if value is True:
            return chosen(lookup)
        if value is False:
            return otherwise(lookup)
        logical = to_logical(value)
        if isinstance(logical, ExcelError):
            return logical
        return chosen(lookup) if logical else otherwise(lookup)

    return run


def _iferror(args: tuple[Node, ...]) -> _Compiled:
    first, fallback = _compile(args[0]), _compile(args[1])

    def run(lookup: _Lookup) -> Value:
        value = first(lookup)
        return fallback(lookup) if isinstance(value, ExcelError) else value

    return run


def _logical(decisive: bool) -> Callable[[tuple[Node, ...]], _Compiled]:
    """AND (one FALSE decides) or OR (one TRUE decides)."""

    def compile_call(args: tuple[Node, ...]) -> _Compiled:
        parts = tuple((isinstance(arg, Name), _compile(arg)) for arg in args)

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
                    converted = to_logical(value)
                    if isinstance(converted, ExcelError):
                        return converted
                    logical = converted
                seen = True
                if logical is decisive:
                    decided = True
            if not seen:
                return VALUE
            return decided is decisive

        return run

    return compile_call


def _not(args: tuple[Node, ...]) -> _Compiled:
    operand = _compile(args[0])

    def run(lookup: _Lookup) -> Value:
        value = operand(lookup)
        if value is True or value is False:
            return not value
        logical = to_logical(value)
        return logical if isinstance(logical, ExcelError) else not logical

    return run


def _numbers(args: tuple[Node, ...]) -> Callable[[_Lookup], list[Decimal] | ExcelError]:
    """Numeric arguments as SUM, MIN and MAX see them; errors propagate."""
    names = tuple(arg.name for arg in args if isinstance(arg, Name))
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

    parts = tuple((isinstance(arg, Name), _compile(arg)) for arg in args)

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
            number = to_number(value)
            if isinstance(number, ExcelError):
                return number
            numbers.append(number)
        return numbers

    return mixed


def _sum(args: tuple[Node, ...]) -> _Compiled:
    numbers_of = _numbers(args)

    def run(lookup: _Lookup) -> Value:
        numbers = numbers_of(lookup)
        if isinstance(numbers, ExcelError):
            return numbers
        return sum(numbers, Decimal(0))

    return run


def _extreme(pick: Callable[[list[Decimal]], Decimal]) -> Callable[[tuple[Node, ...]], _Compiled]:
    def compile_call(args: tuple[Node, ...]) -> _Compiled:
        numbers_of = _numbers(args)

        def run(lookup: _Lookup) -> Value:
            numbers = numbers_of(lookup)
            if isinstance(numbers, ExcelError):
                return numbers
            return pick(numbers) if numbers else Decimal(0)

        return run

    return compile_call


def _count(args: tuple[Node, ...]) -> _Compiled:
    parts = tuple((isinstance(arg, Name), _compile(arg)) for arg in args)

    def run(lookup: _Lookup) -> Value:
        count = 0
        # COUNT never propagates errors.
        for is_name, part in parts:
            value = part(lookup)
            if is_name or isinstance(value, Decimal | ExcelError) or value is None:
                counted = isinstance(value, Decimal)
            else:
                # Typed-in booleans and numeric text count, as in Excel.
                counted = isinstance(value, bool) or NUMERIC_TEXT.fullmatch(value.strip()) is not None
            if counted:
                count += 1
        return Decimal(count)

    return run


def _isnumber(args: tuple[Node, ...]) -> _Compiled:
    name, operand = _operand(args[0])
    if name is not None:
        return lambda lookup: isinstance(lookup(name), Decimal)
    return lambda lookup: isinstance(operand(lookup), Decimal)


def _abs(args: tuple[Node, ...]) -> _Compiled:
    operand = _compile(args[0])

    def run(lookup: _Lookup) -> Value:
        number = to_number(operand(lookup))
        return number if isinstance(number, ExcelError) else abs(number)

    return run


def _places(digits: Decimal) -> int:
    # Excel truncates a fractional digit count toward zero.
    return max(-MAX_ROUND_DIGITS, min(MAX_ROUND_DIGITS, int(digits)))


def _rounding(mode: str) -> Callable[[tuple[Node, ...]], _Compiled]:
    def round_to(number: Decimal, places: int) -> Value:
        try:
            return round_digits(number, places, mode)
        except ArithmeticError:
            return NUM

    def compile_call(args: tuple[Node, ...]) -> _Compiled:
        number_of, digits = _compile(args[0]), args[1]
        if isinstance(digits, Num) and digits.value.adjusted() < 6:
            places = _places(digits.value)  # the usual ROUND(x,2): the digit count is known now

            def fixed(lookup: _Lookup) -> Value:
                number = to_number(number_of(lookup))
                return number if isinstance(number, ExcelError) else round_to(number, places)

            return fixed

        digits_of = _compile(digits)

        def run(lookup: _Lookup) -> Value:
            number = to_number(number_of(lookup))
            if isinstance(number, ExcelError):
                return number
            count = to_number(digits_of(lookup))
            if isinstance(count, ExcelError):
                return count
            return round_to(number, _places(count))

        return run

    return compile_call


_CALLS: dict[str, Callable[[tuple[Node, ...]], _Compiled]] = {
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


@functools.lru_cache(maxsize=4096)
def _compiled(expr: Expr) -> _Compiled:
    """The tree as nested closures, built on first evaluation (once per source text: Exprs hash by it)."""
    return _compile(expr.root)


def evaluate(expr: Expr, lookup: Callable[[str], Value]) -> Value:
    """Evaluate `expr` with Excel semantics; `lookup(name)` gives a cell's value (None for blank)."""
    with localcontext(CONTEXT):  # a copy: the caller's context is restored on the way out
        result = _compiled(expr)(lookup)
    # Excel shows a formula that just references a blank cell as 0.
    return ZERO if result is None else result


class Program:
    """Named expressions compiled once, to be evaluated for many sets of values (a layout's formulas).

    Each result is what `evaluate` gives for the same expression and values; one decimal context is entered
    per run rather than per expression, and nothing is looked up per expression but its closure.
    """

    __slots__ = ("keys", "_steps")

    def __init__(self, steps: Iterable[tuple[str, Expr]]) -> None:
        pairs = [(key, _compiled(expr)) for key, expr in steps]
        self.keys: tuple[str, ...] = tuple(key for key, _ in pairs)
        self._steps: tuple[tuple[str, _Compiled], ...] = tuple(pairs)

    def run(self, values: dict[str, Value]) -> None:
        """Evaluate in order, storing each result under its key in `values` before the next one reads it."""
        lookup = values.get
        with localcontext(CONTEXT):
            for key, run in self._steps:
                result = run(lookup)
                values[key] = ZERO if result is None else result

    def each(self, lookup: Callable[[str], Value]) -> list[Value]:
        """Every expression's value for the same `lookup`, in order; nothing is stored."""
        with localcontext(CONTEXT):
            results = [run(lookup) for _, run in self._steps]
        return [ZERO if result is None else result for result in results]
