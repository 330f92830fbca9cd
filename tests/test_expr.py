"""Tests for the expression language: parsing, Excel formula output and Decimal evaluation."""

from __future__ import annotations

import decimal
import pickle
from decimal import Decimal

import pytest

from xlsx_kpi.formats.expr import CellRef, ExcelError, ExprError, Value, evaluate, excel_round, parse, to_excel

SHEET = "附件2"

# Names laid out as a small sheet: a/b/c down column A, row r1..r3 across row 10, f.* down column F.
CELLS = {
    "a": CellRef(SHEET, 0, 0),
    "b": CellRef(SHEET, 1, 0),
    "c": CellRef(SHEET, 2, 0),
    "r1": CellRef(SHEET, 9, 1),
    "r2": CellRef(SHEET, 9, 2),
    "r3": CellRef(SHEET, 9, 3),
    "f5": CellRef(SHEET, 4, 5),
    "f6": CellRef(SHEET, 5, 5),
    "f7": CellRef(SHEET, 6, 5),
    "f8": CellRef(SHEET, 7, 5),
    "f9": CellRef(SHEET, 8, 5),
    "f12": CellRef(SHEET, 11, 5),
    "f14": CellRef(SHEET, 13, 5),
    "f15": CellRef(SHEET, 14, 5),
    "basic.staff_quota": CellRef("基础数据", 4, 3),
    "basic.staff_actual": CellRef("基础数据", 5, 3),
    "other.x": CellRef("O'Brien", 1, 1),
    "wide.aa": CellRef(SHEET, 0, 26),
    "wide.zz": CellRef(SHEET, 0, 701),
    "wide.aaa": CellRef(SHEET, 0, 702),
}


def xl(source: str, sheet: str = SHEET) -> str:
    return to_excel(parse(source), CELLS.__getitem__, sheet)


def ev(source: str, values: dict[str, Value] | None = None) -> Value:
    cells = values or {}
    return evaluate(parse(source), cells.__getitem__)


def test_parentheses_only_where_precedence_needs_them() -> None:
    assert xl("(a+b)*c") == "(A1+A2)*A3"
    assert xl("a+b*c") == "A1+A2*A3"
    assert xl("(a*b)+c") == "A1*A2+A3"
    assert xl("a-(b-c)") == "A1-(A2-A3)"
    assert xl("(a-b)-c") == "A1-A2-A3"
    assert xl("a/(b*c)") == "A1/(A2*A3)"
    assert xl("-(a+b)") == "-(A1+A2)"
    assert xl("-a*b") == "-A1*A2"
    assert xl("a*-b") == "A1*-A2"
    assert xl("((a))") == "A1"


def test_concatenation_and_comparison_precedence() -> None:
    assert xl("a&b=c") == "A1&A2=A3"
    assert xl("a&(b=c)") == "A1&(A2=A3)"
    assert xl("(a+b)&c") == "A1+A2&A3"
    assert xl("a=(b=c)") == "A1=(A2=A3)"


def test_equality_aliases_are_written_the_excel_way() -> None:
    assert xl("a==b") == "A1=A2"
    assert xl("a!=b") == "A1<>A2"
    assert xl("a<>b") == "A1<>A2"
    assert xl("a<=b") == "A1<=A2"
    assert xl("a>=b") == "A1>=A2"
    assert ev("1==1") is True
    assert ev("1!=1") is False


def test_cross_sheet_references_are_quoted() -> None:
    assert xl("basic.staff_quota") == "'基础数据'!D5"
    assert xl("basic.staff_quota", sheet="基础数据") == "D5"
    assert xl("other.x+1") == "'O''Brien'!B2+1"


def test_column_letters_past_z() -> None:
    assert xl("wide.aa") == "AA1"
    assert xl("wide.zz") == "ZZ1"
    assert xl("wide.aaa") == "AAA1"


def test_range_merging_vertical_and_single_cell() -> None:
    assert xl("SUM(f5,f6,f7,f8,f9)") == "SUM(F5:F9)"
    assert xl("SUM(f5)") == "SUM(F5)"
    assert xl("COUNT(f5,f6)") == "COUNT(F5:F6)"


def test_range_merging_horizontal() -> None:
    assert xl("MAX(r1,r2,r3)") == "MAX(B10:D10)"


def test_range_merging_with_gaps_keeps_argument_order() -> None:
    assert xl("SUM(f5,f6,f7,f8,f9,f12,f14,f15)") == "SUM(F5:F9,F12,F14:F15)"
    # Reversed order is not a run; merging it would still be right for SUM but not "in order".
    assert xl("MIN(f7,f6,f5)") == "MIN(F7,F6,F5)"
    # An expression argument breaks a run.
    assert xl("SUM(f5,f6,1,f7,f8)") == "SUM(F5:F6,1,F7:F8)"
    # A run does not turn a corner: a vertical run cannot continue horizontally.
    assert xl("SUM(a,b,wide.aa)") == "SUM(A1:A2,AA1)"


def test_range_merging_cross_sheet() -> None:
    assert xl("SUM(f5,f6,f7)", sheet="基础数据") == "SUM('附件2'!F5:F7)"
    assert xl("SUM(basic.staff_quota,basic.staff_actual,f5)") == "SUM('基础数据'!D5:D6,F5)"


def test_only_range_functions_merge() -> None:
    assert xl("IF(a,b,c)") == "IF(A1,A2,A3)"


def test_string_literals_escape_quotes() -> None:
    source = '"他说""是"""&a'
    assert xl(source) == '"他说""是"""&A1'
    assert ev(source, {"a": None}) == '他说"是"'
    assert xl('a="是"') == 'A1="是"'


def test_numbers_are_written_plainly() -> None:
    assert xl("a*0.05") == "A1*0.05"
    assert xl("a+100") == "A1+100"
    assert xl("a+1e3") == "A1+1000"
    assert xl("a*1.50") == "A1*1.5"
    assert xl("a+.5") == "A1+0.5"
    assert xl("TRUE") == "TRUE"


def test_full_score_formula_to_excel() -> None:
    source = "ROUND(IF(basic.staff_actual<=basic.staff_quota,5,5*basic.staff_quota/basic.staff_actual),2)"
    assert xl(source) == "ROUND(IF('基础数据'!D6<='基础数据'!D5,5,5*'基础数据'!D5/'基础数据'!D6),2)"


def test_staff_control_score() -> None:
    source = "ROUND(IF(b.staff_actual<=b.staff_quota,5,5*b.staff_quota/b.staff_actual),2)"
    assert ev(source, {"b.staff_quota": Decimal(6), "b.staff_actual": Decimal(8)}) == Decimal("3.75")
    assert ev(source, {"b.staff_quota": Decimal(8), "b.staff_actual": Decimal(6)}) == Decimal("5")
    assert ev(source, {"b.staff_quota": Decimal(7), "b.staff_actual": Decimal(9)}) == Decimal("3.89")


def test_round_half_away_from_zero() -> None:
    assert ev("ROUND(2.675,2)") == Decimal("2.68")
    assert ev("ROUND(-2.5,0)") == Decimal("-3")
    assert ev("ROUND(2.5,0)") == Decimal("3")
    assert ev("ROUND(1234,-2)") == Decimal("1200")
    assert str(ev("ROUND(1250,-2)")) == "1300"  # written out, not 1.3E+3
    assert ev("ROUND(1.255,2.9)") == Decimal("1.26")  # digit count truncated to 2
    assert excel_round(Decimal("0.125"), 2) == Decimal("0.13")
    assert excel_round(Decimal("-0.125"), 2) == Decimal("-0.13")
    assert str(excel_round(Decimal("3.5"), 3)) == "3.5"  # no padding to 3.500


def test_roundup_and_rounddown() -> None:
    assert ev("ROUNDUP(0.208,0)") == Decimal("1")
    assert ev("ROUNDUP(-0.208,1)") == Decimal("-0.3")
    assert ev("ROUNDDOWN(-1.7,0)") == Decimal("-1")
    assert ev("ROUNDDOWN(1.79,1)") == Decimal("1.7")
    assert ev("ROUNDUP(1201,-2)") == Decimal("1300")


def test_division_by_zero_and_guards() -> None:
    values: dict[str, Value] = {"x": Decimal(0), "y": Decimal(5)}
    assert ev("y/x", values) == ExcelError("#DIV/0!")
    assert ev('IF(x=0,"",y/x)', values) == ""
    assert ev("IFERROR(y/x,0)", values) == Decimal(0)
    assert ev("IFERROR(x/y,-1)", values) == Decimal(0)
    assert ev("y/blank", {"y": Decimal(5), "blank": None}) == ExcelError("#DIV/0!")


def test_if_evaluates_only_the_chosen_branch() -> None:
    asked: list[str] = []

    def lookup(name: str) -> Value:
        asked.append(name)
        return Decimal(1)

    assert evaluate(parse("IF(a>0,b,c)"), lookup) == Decimal(1)
    assert asked == ["a", "b"]


def test_if_conditions() -> None:
    assert ev("IF(1>2,5)") is False
    assert ev("IF(t,1,2)", {"t": "是"}) == ExcelError("#VALUE!")
    assert ev("IF(t,1,2)", {"t": None}) == Decimal(2)
    assert ev("IF(t,1,2)", {"t": Decimal("-0.5")}) == Decimal(1)
    assert ev("IF(t,1,2)", {"t": ExcelError("#N/A")}) == ExcelError("#N/A")


def test_blank_semantics() -> None:
    blank: dict[str, Value] = {"e": None}
    assert ev("e+1", blank) == Decimal(1)
    assert ev("e=0", blank) is True
    assert ev('e=""', blank) is True
    assert ev("e=e", blank) is True
    assert ev("e=FALSE", blank) is True
    assert ev('e&"元"', blank) == "元"
    assert ev("e", blank) == Decimal(0)  # a formula showing a blank cell shows 0
    assert isinstance(ev("e", blank), Decimal)
    assert ev("-e", blank) == Decimal(0)


def test_text_in_arithmetic() -> None:
    assert ev("t+1", {"t": "是"}) == ExcelError("#VALUE!")
    assert ev('""+1') == ExcelError("#VALUE!")
    assert ev("t+1", {"t": " 3.5 "}) == Decimal("4.5")
    assert ev("t*2", {"t": "5"}) == Decimal(10)
    assert ev("t*2", {"t": "50%"}) == Decimal(1)
    assert ev("TRUE+TRUE") == Decimal(2)


def test_sum_ignores_text_blank_and_bool_in_references() -> None:
    values: dict[str, Value] = {"a": Decimal(2), "b": "说明", "c": None, "d": True, "e": Decimal("0.5")}
    assert ev("SUM(a,b,c,d,e)", values) == Decimal("2.5")
    # Values typed into the argument list are converted, as Excel does.
    assert ev('SUM(a,"3",TRUE)', values) == Decimal(6)
    assert ev('SUM(a,"x")', values) == ExcelError("#VALUE!")
    assert ev("SUM(b,c)", values) == Decimal(0)


def test_count_counts_only_numbers() -> None:
    values: dict[str, Value] = {
        "a": Decimal(2),
        "b": "5",
        "c": None,
        "d": True,
        "e": ExcelError("#N/A"),
        "f": Decimal(0),
    }
    assert ev("COUNT(a,b,c,d,e,f)", values) == Decimal(2)
    assert ev("COUNT(1/0,a)", values) == Decimal(1)


def test_min_and_max() -> None:
    values: dict[str, Value] = {"a": Decimal(-2), "b": "x", "c": Decimal(7), "d": None}
    assert ev("MIN(a,b,c,d)", values) == Decimal(-2)
    assert ev("MAX(a,b,c,d)", values) == Decimal(7)
    assert ev("MAX(b,d)", values) == Decimal(0)
    assert ev("MIN(a,c/0)", values) == ExcelError("#DIV/0!")


def test_error_propagation_first_error_wins() -> None:
    values: dict[str, Value] = {"na": ExcelError("#N/A"), "x": Decimal(1), "t": "文字"}
    assert ev("na+1/0", values) == ExcelError("#N/A")
    assert ev("1/0+na", values) == ExcelError("#DIV/0!")
    assert ev("t+na", values) == ExcelError("#VALUE!")
    assert ev("SUM(x,na,1/0)", values) == ExcelError("#N/A")
    assert ev("na=1", values) == ExcelError("#N/A")
    assert ev('na&"x"', values) == ExcelError("#N/A")
    assert ev("ROUND(na,2)", values) == ExcelError("#N/A")
    assert ev("ABS(na)", values) == ExcelError("#N/A")
    assert ev("ISNUMBER(na)", values) is False
    assert ev("IFERROR(na,7)", values) == Decimal(7)


def test_comparisons_follow_excel_order() -> None:
    assert ev('"ABC"="abc"') is True
    assert ev('"b">"A"') is True
    assert ev('"1"=1') is False  # text never equals a number
    assert ev('"0">9999') is True  # text sorts after every number
    assert ev('TRUE>"z"') is True  # booleans sort after text
    assert ev("TRUE=1") is False
    assert ev("3.50=3.5") is True
    assert ev("1/3*3=1") is True  # compared at Excel's 15 digits, like Excel and LibreOffice
    assert ev("0.1+0.2=0.3") is True


def test_concatenation_text_forms() -> None:
    assert ev('x&""', {"x": Decimal("3.50")}) == "3.5"
    assert ev('x&""', {"x": Decimal("100")}) == "100"
    assert ev('TRUE&"/"&FALSE') == "TRUE/FALSE"
    assert ev('1/3&""') == "0.333333333333333"
    assert ev('"完成率："&ROUND(a/b*100,1)&"%"', {"a": Decimal(2), "b": Decimal(3)}) == "完成率：66.7%"


def test_and_or_not() -> None:
    values: dict[str, Value] = {"t": "文字", "e": None, "one": Decimal(1), "zero": Decimal(0)}
    assert ev("AND(t,e,TRUE)", values) is True
    assert ev("AND(t,e)", values) == ExcelError("#VALUE!")
    assert ev('AND("x",TRUE)', values) == ExcelError("#VALUE!")
    assert ev("AND(one,zero)", values) is False
    assert ev("OR(zero,one)", values) is True
    assert ev("OR(FALSE,zero)", values) is False
    assert ev("AND(FALSE,1/0)", values) == ExcelError("#DIV/0!")
    assert ev("NOT(zero)", values) is True
    assert ev("NOT(e)", values) is True
    assert ev("NOT(t)", values) == ExcelError("#VALUE!")


def test_abs_and_isnumber() -> None:
    assert ev("ABS(-2.5)") == Decimal("2.5")
    assert ev("ABS(t)", {"t": "-3"}) == Decimal(3)
    assert ev("ISNUMBER(x)", {"x": Decimal(0)}) is True
    assert ev("ISNUMBER(x)", {"x": True}) is False
    assert ev("ISNUMBER(x)", {"x": "5"}) is False
    assert ev("ISNUMBER(x)", {"x": None}) is False


def test_result_types() -> None:
    assert ev("1<2") is True
    assert ev('"a"&1') == "a1"
    result = ev("5*6/8")
    assert isinstance(result, Decimal) and result == Decimal("3.75")
    assert ev("+t", {"t": "原样"}) == "原样"  # Excel's unary plus leaves text alone


def test_callers_decimal_context_does_not_leak_in() -> None:
    with decimal.localcontext() as ctx:
        ctx.prec = 3
        ctx.rounding = decimal.ROUND_FLOOR
        assert ev("2/3") == Decimal("0.6666666666666666666666666667")
        assert ev("ROUND(x,2)", {"x": Decimal("12345.678")}) == Decimal("12345.68")
        assert excel_round(Decimal("12345.678"), 2) == Decimal("12345.68")
        assert ctx.prec == 3 and decimal.getcontext() is ctx  # and the caller's context is back


def test_comparisons_with_literals_and_blanks() -> None:
    values: dict[str, Value] = {"e": None, "x": Decimal("2.5"), "t": "文字"}
    assert ev("e<0", values) is False
    assert ev("e>=0", values) is True
    assert ev('e<""', values) is False  # a blank compared with text is ""
    assert ev('x<""', values) is True  # numbers sort before text
    assert ev('x=""', values) is False
    assert ev("t>2", values) is True
    assert ev('t="文字"', values) is True
    assert ev("x>2.49", values) is True
    assert ev("x<=2.50", values) is True


def test_comparisons_round_to_15_significant_digits() -> None:
    assert ev("x=1", {"x": Decimal("1.0000000000000004")}) is True
    assert ev("x>1", {"x": Decimal("1.000000000000005")}) is True  # the 16th digit rounds half up
    assert ev("x=-1", {"x": Decimal("-0.99999999999999995")}) is True
    assert ev("x=y", {"x": Decimal("123456789012345678"), "y": Decimal("123456789012346000")}) is True
    assert ev("x<y", {"x": Decimal("123456789012345678"), "y": Decimal("123456789012347000")}) is True


def test_round_with_a_digit_count_from_a_cell() -> None:
    assert ev("ROUND(x,d)", {"x": Decimal("2.675"), "d": Decimal(2)}) == Decimal("2.68")
    assert ev("ROUND(x,d)", {"x": Decimal("2.675"), "d": "1"}) == Decimal("2.7")
    assert ev("ROUND(x,d)", {"x": Decimal("2.675"), "d": None}) == Decimal("3")
    assert ev("ROUNDDOWN(x,d)", {"x": Decimal("1250"), "d": Decimal("-2.5")}) == Decimal("1200")
    assert ev("ROUND(x,d)", {"x": Decimal("2.675"), "d": ExcelError("#N/A")}) == ExcelError("#N/A")


def test_an_evaluated_expression_pickles_and_evaluates_again() -> None:
    expr = parse("ROUND(5*q/a,2)")
    assert evaluate(expr, {"q": Decimal(6), "a": Decimal(8)}.get) == Decimal("3.75")
    copy = pickle.loads(pickle.dumps(expr))
    assert copy == expr and copy.names() == frozenset({"q", "a"})
    assert evaluate(copy, {"q": Decimal(7), "a": Decimal(9)}.get) == Decimal("3.89")


def test_names_of_nested_expression() -> None:
    expr = parse('IF(AND(tgt.qty.1.result>=tgt.qty.1.target,x<>""),ROUND(-ind.staff_control.score*2,1),SUM(a,b))')
    assert expr.names() == frozenset({"tgt.qty.1.result", "tgt.qty.1.target", "x", "ind.staff_control.score", "a", "b"})
    assert parse("1+2").names() == frozenset()
    assert expr.source.startswith("IF(AND(")


def test_parse_is_cached_and_immutable() -> None:
    assert parse("a+b") is parse("a+b")
    with pytest.raises(AttributeError):
        parse("a+b").source = "x"  # type: ignore[misc]


def test_error_unknown_function() -> None:
    with pytest.raises(ExprError) as info:
        parse("a+FOO(1)")
    message = str(info.value)
    assert message.startswith("表达式第 3 个字符处语法错误：未知函数 FOO")
    assert message.endswith("（表达式：a+FOO(1)）")
    assert info.value.position == 3


def test_error_lower_case_function() -> None:
    with pytest.raises(ExprError, match="函数名须大写，应写作 ROUND"):
        parse("round(a,2)")


def test_error_bad_name() -> None:
    with pytest.raises(ExprError) as info:
        parse("Exec.Total*2")
    assert "名称 'Exec.Total' 不合法" in str(info.value)
    assert info.value.position == 1
    with pytest.raises(ExprError, match="第 3 个字符.*名称 'a.' 不合法"):
        parse("1+a.")
    with pytest.raises(ExprError, match="名称 '预算' 不合法"):
        parse("预算+1")


def test_error_unbalanced_parentheses() -> None:
    with pytest.raises(ExprError, match=r"第 9 个字符处语法错误：缺少右括号 '\)'，与第 7 个字符处"):
        parse("(a+b)*(c")
    with pytest.raises(ExprError, match=r"第 6 个字符处语法错误：缺少右括号.*SUM"):
        parse("SUM(a")
    with pytest.raises(ExprError, match=r"第 4 个字符处语法错误：多余的右括号"):
        parse("a+b)")


def test_error_trailing_garbage() -> None:
    with pytest.raises(ExprError, match="第 5 个字符处语法错误：多余的内容 'c d'"):
        parse("a+b c d")
    with pytest.raises(ExprError, match="第 2 个字符处语法错误：多余的内容 'x'"):
        parse("5x")


def test_error_argument_count() -> None:
    with pytest.raises(ExprError, match="函数 ROUND 需要 2 个参数，实际为 1 个"):
        parse("ROUND(a)")
    with pytest.raises(ExprError, match="函数 IF 需要 2 到 3 个参数，实际为 4 个"):
        parse("IF(a,1,2,3)")
    with pytest.raises(ExprError, match="函数 SUM 需要 1 到 255 个参数，实际为 0 个"):
        parse("SUM()")


def test_error_other_syntax() -> None:
    with pytest.raises(ExprError, match="表达式为空"):
        parse("   ")
    with pytest.raises(ExprError, match="第 3 个字符处语法错误：表达式不完整"):
        parse("a+")
    with pytest.raises(ExprError, match="第 1 个字符处语法错误：字符串缺少结尾的双引号"):
        parse('"abc')
    with pytest.raises(ExprError, match="第 6 个字符处语法错误：无法识别的字符 '（'，是否误用了全角符号"):
        parse("ROUND（a,2)")
    with pytest.raises(ExprError, match="第 6 个字符处语法错误：无法识别的字符 '，'"):
        parse("MAX(a，b)")
    with pytest.raises(
        ExprError, match=r"第 3 个字符处语法错误：此处应为数值、字符串、名称、函数或左括号，却遇到 '\*'"
    ):
        parse("a+*b")
    with pytest.raises(ExprError, match="布尔值须大写"):
        parse("true")


def test_expr_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse("a+")
