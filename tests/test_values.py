"""Tests for xlsx_kpi.audit.values: numbers, percentages and targets as users really type them."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest

from xlsx_kpi.audit.values import (
    Parsed,
    Status,
    Target,
    meets,
    parse_number,
    parse_percent,
    parse_target,
    parse_targets,
    to_decimal,
)

D = Decimal


# --- to_decimal ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (0.1 + 0.2, D("0.3")),
        (6.0299999999999994, D("6.03")),
        (1 - 0.9, D("0.1")),
        (484.13 * 100, D("48413")),
        (95.35, D("95.35")),
        (-79.88, D("-79.88")),
        (-0.0, D("0")),
        (12345678901234567890, D("12345678901234567890")),  # ints stay exact
        (7, D("7")),
    ],
)
def test_to_decimal_reads_floats_as_excel_shows_them(x: float, expected: Decimal) -> None:
    result = to_decimal(x)
    assert result == expected
    assert str(result) == str(expected)


@pytest.mark.parametrize("x", [float("nan"), float("inf"), float("-inf")])
def test_to_decimal_rejects_non_finite(x: float) -> None:
    with pytest.raises(ValueError, match="not a finite number"):
        to_decimal(x)


# --- parse_number -------------------------------------------------------------------------------

TEXT_NUMBER = "以文本形式存储的数字"


@pytest.mark.parametrize(
    ("raw", "status", "value", "note"),
    [
        # real numbers from numeric cells
        (95, Status.OK, D("95"), ""),
        (0.95, Status.OK, D("0.95"), ""),
        (0, Status.OK, D("0"), ""),
        (0.1 + 0.2, Status.OK, D("0.3"), ""),
        (6.0299999999999994, Status.OK, D("6.03"), ""),
        (D("3.35"), Status.OK, D("3.35"), ""),
        # numbers stored as text
        ("95", Status.OK, D("95"), TEXT_NUMBER),
        ("0.95", Status.OK, D("0.95"), TEXT_NUMBER),
        (" 12 ", Status.OK, D("12"), TEXT_NUMBER),
        ("+5", Status.OK, D("5"), TEXT_NUMBER),
        (".5", Status.OK, D("0.5"), TEXT_NUMBER),
        ("1e3", Status.OK, D("1000"), TEXT_NUMBER),
        ("0", Status.OK, D("0"), TEXT_NUMBER),
        ("\u200b42", Status.OK, D("42"), TEXT_NUMBER),  # zero-width space pasted from the web
        ("\xa012\xa0", Status.OK, D("12"), TEXT_NUMBER),  # no-break spaces
        # percent
        ("95%", Status.OK, D("0.95"), "百分数"),
        ("-79.88%", Status.OK, D("-0.7988"), "百分数"),
        ("９５％", Status.OK, D("0.95"), "全角字符"),
        ("5‰", Status.OK, D("0.005"), "千分数"),
        # full-width and odd minus signs
        ("３.３５", Status.OK, D("3.35"), "全角字符"),
        ("３．３５", Status.OK, D("3.35"), "全角字符"),
        ("\u221279.88", Status.OK, D("-79.88"), "非标准负号"),
        ("－5", Status.OK, D("-5"), "全角字符"),
        ("\u3000１２\u3000", Status.OK, D("12"), "全角字符"),
        # thousands separators, valid groups only
        ("1,234.5", Status.OK, D("1234.5"), "千分位"),
        ("１，２３４．５", Status.OK, D("1234.5"), "千分位"),
        ("12,345,678", Status.OK, D("12345678"), "千分位"),
        ("1,2", Status.TEXT, None, "逗号位置不符合千分位写法"),
        ("1,23", Status.TEXT, None, "逗号位置不符合千分位写法"),
        ("1234,567", Status.TEXT, None, "逗号位置不符合千分位写法"),
        # one trailing unit
        ("3.35分", Status.OK, D("3.35"), "含单位“分”"),
        ("6人", Status.OK, D("6"), "含单位“人”"),
        ("12人次", Status.OK, D("12"), "含单位“人次”"),
        ("484.13万元", Status.OK, D("484.13"), "含单位“万元”"),
        ("5 分", Status.OK, D("5"), "含单位“分”"),
        ("5分分", Status.TEXT, None, "数字后含“分分”"),
        ("5单", Status.TEXT, None, "数字后含“单”"),
        ("10²", Status.TEXT, None, "数字后含“²”"),  # full NFKC would have read 102
        ("①", Status.TEXT, None, ""),
        # blanks
        (None, Status.BLANK, None, ""),
        ("", Status.BLANK, None, ""),
        ("   ", Status.BLANK, None, "仅含空格"),
        ("\u3000", Status.BLANK, None, "仅含空格"),
        # text
        ("已完成", Status.TEXT, None, ""),
        ("=10个", Status.TEXT, None, ""),
        (True, Status.TEXT, None, "逻辑值"),
        (False, Status.TEXT, None, "逻辑值"),
        (object(), Status.TEXT, None, "无法识别的单元格内容"),
        # Excel / LibreOffice errors
        ("#DIV/0!", Status.ERROR, None, "除数为零"),
        ("#REF!", Status.ERROR, None, "#REF!"),
        ("#VALUE!", Status.ERROR, None, "#VALUE!"),
        ("#N/A", Status.ERROR, None, "#N/A"),
        ("#NAME?", Status.ERROR, None, "#NAME?"),
        ("#NUM!", Status.ERROR, None, "#NUM!"),
        ("#NULL!", Status.ERROR, None, "#NULL!"),
        ("#n/a", Status.ERROR, None, "#N/A"),
        ("Err:502", Status.ERROR, None, "LibreOffice"),
        ("#不是错误", Status.TEXT, None, ""),
        (float("nan"), Status.ERROR, None, "不是有限数值"),
        (D("NaN"), Status.ERROR, None, "不是有限数值"),
        # dates and times
        (datetime(2021, 12, 31), Status.DATE, None, "日期"),
        (date(2021, 12, 31), Status.DATE, None, "日期"),
        (time(8, 30), Status.DATE, None, "日期或时间"),
        (timedelta(hours=3), Status.DATE, None, "日期或时间"),
    ],
)
def test_parse_number(raw: object, status: Status, value: Decimal | None, note: str) -> None:
    parsed = parse_number(raw)
    assert parsed.status is status
    assert parsed.value == value
    assert note in parsed.note
    assert parsed.raw is raw


@pytest.mark.parametrize(
    ("raw", "note"),
    [
        ("95", "以文本形式存储的数字"),
        ("１，２３４．５", "以文本形式存储的数字；全角字符；千分位"),
        ("3.35分", "以文本形式存储的数字；含单位“分”"),
        ("95%", "以文本形式存储的数字；百分数"),
        (95, ""),
    ],
)
def test_parse_number_full_notes(raw: object, note: str) -> None:
    assert parse_number(raw).note == note


def test_parse_number_units_are_the_callers() -> None:
    assert parse_number("5单", units=("单",)) == Parsed(Status.OK, D("5"), "5单", "以文本形式存储的数字；含单位“单”")
    assert parse_number("3.35分", units=()).status is Status.TEXT


def test_parse_number_strips_only_one_unit() -> None:
    assert parse_number("5元元").status is Status.TEXT


# --- parse_percent ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "primary", "candidates"),
    [
        ("95%", D("0.95"), (D("0.95"),)),
        ("９５％", D("0.95"), (D("0.95"),)),
        ("100.96%", D("1.0096"), (D("1.0096"),)),
        ("-79.88%", D("-0.7988"), (D("-0.7988"),)),
        ("0%", D("0"), (D("0"),)),
        # numbers from cells: Excel stores 95% as 0.95; over 1, the same rule as text (95 means 95%)
        (0.95, D("0.95"), (D("0.95"), D("0.0095"))),
        (0.5, D("0.5"), (D("0.5"), D("0.005"))),
        (1.0096, D("0.010096"), (D("0.010096"), D("1.0096"))),
        (95, D("0.95"), (D("0.95"), D("95"))),
        (0, D("0"), (D("0"),)),
        # text without %: over 1 it is percentage points
        ("95", D("0.95"), (D("0.95"), D("95"))),
        ("95.35", D("0.9535"), (D("0.9535"), D("95.35"))),
        ("0.95", D("0.95"), (D("0.95"), D("0.0095"))),
        ("0", D("0"), (D("0"),)),
    ],
)
def test_parse_percent_candidates(raw: object, primary: Decimal, candidates: tuple[Decimal, ...]) -> None:
    parsed, found = parse_percent(raw)
    assert parsed.status is Status.OK
    assert parsed.value == primary
    assert found == candidates
    assert found[0] == parsed.value


@pytest.mark.parametrize(
    ("raw", "note"),
    [
        ("95", "未写“%”，按 95% 读取"),
        (95, "数值大于 1，按 95% 读取"),
    ],
)
def test_parse_percent_explains_its_reading(raw: object, note: str) -> None:
    assert note in parse_percent(raw)[0].note


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (None, Status.BLANK),
        ("", Status.BLANK),
        ("#DIV/0!", Status.ERROR),
        ("95分", Status.TEXT),
        (True, Status.TEXT),
    ],
)
def test_parse_percent_without_a_number(raw: object, status: Status) -> None:
    parsed, found = parse_percent(raw)
    assert parsed.status is status
    assert parsed.value is None
    assert found == ()


# --- parse_target -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "op", "value", "high", "unit"),
    [
        ("≥10个", ">=", D("10"), None, "个"),
        (">=10个", ">=", D("10"), None, "个"),
        ("＞＝10个", ">=", D("10"), None, "个"),
        ("≧10", ">=", D("10"), None, ""),
        ("=10个", "=", D("10"), None, "个"),
        ("＝10个", "=", D("10"), None, "个"),
        ("10个", "=", D("10"), None, "个"),
        ("≤484.13万元", "<=", D("4841300"), None, "元"),
        ("<=10万元", "<=", D("100000"), None, "元"),
        ("≥85%", ">=", D("0.85"), None, "%"),
        ("≥5.5万人次", ">=", D("55000"), None, "人次"),
        ("=2.4亿元", "=", D("240000000"), None, "元"),
        ("≥7亿", ">=", D("700000000"), None, ""),
        ("≥8%", ">=", D("0.08"), None, "%"),
        (">95%", ">", D("0.95"), None, "%"),
        ("≤7", "<=", D("7"), None, ""),
        ("≥3千元", ">=", D("3000"), None, "元"),
        ("1,000万元", "=", D("10000000"), None, "元"),
        ("≥ 10 个", ">=", D("10"), None, "个"),
        ("≥-5%", ">=", D("-0.05"), None, "%"),
        ("不低于90%", ">=", D("0.9"), None, "%"),
        ("不少于35人", ">=", D("35"), None, "人"),
        ("不高于5%", "<=", D("0.05"), None, "%"),
        ("不超过26万元", "<=", D("260000"), None, "元"),
        ("5%以内", "<=", D("0.05"), None, "%"),
        ("控制在5%以内", "<=", D("0.05"), None, "%"),
        ("达到95%以上", ">=", D("0.95"), None, "%"),
        ("95%以上", ">=", D("0.95"), None, "%"),
        ("达到95%", ">=", D("0.95"), None, "%"),
        ("大于90%", ">", D("0.9"), None, "%"),
        ("低于5%", "<", D("0.05"), None, "%"),
        ("80%-90%", "range", D("0.8"), D("0.9"), "%"),
        ("80-90%", "range", D("0.8"), D("0.9"), "%"),
        ("2-3名", "range", D("2"), D("3"), "名"),
        ("10至15件", "range", D("10"), D("15"), "件"),
        ("2～3万元", "range", D("20000"), D("30000"), "元"),
        ("≥5艘", ">=", D("5"), None, "艘"),  # a measure word we do not list
        ("≥5个百分点", ">=", D("5"), None, "百分点"),
        ("=365天", "=", D("365"), None, "天"),
        ("=83.52万人次，居全省第一", "=", D("835200"), None, "人次"),
        ("26万元（该项目由于疫情原因延期到2022年适时举行)", "=", D("260000"), None, "元"),
        (12, "=", D("12"), None, ""),
        (0.95, "=", D("0.95"), None, ""),
    ],
)
def test_parse_target(text: object, op: str, value: Decimal, high: Decimal | None, unit: str) -> None:
    target = parse_target(text)
    assert target is not None
    assert (target.op, target.value, target.high, target.unit) == (op, value, high, unit)


def test_parse_target_keeps_text_and_scale() -> None:
    assert parse_target("≥5.5万人次") == Target(">=", D("55000"), None, "人次", "≥5.5万人次", D("10000"))
    assert parse_target("≥85%") == Target(">=", D("0.85"), None, "%", "≥85%", D("0.01"))


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        True,
        "已完成",
        "2021年12月31日",
        "2021-12-31",
        "2021/12/31",
        "12月底前",
        "2021-2035年",
        "2021年",
        "≥30份\n≥2亿元",
        "≥55项；5000万元",
        "≥5000条，3664条，达成订单1099笔金额7.9亿元；",
        "80%-90个",  # two different units
        datetime(2021, 12, 31),
        "#DIV/0!",
    ],
)
def test_parse_target_none(text: object) -> None:
    assert parse_target(text) is None


def test_parse_targets_two_line_cell() -> None:
    assert parse_targets("≥30份\n≥2亿元") == [
        Target(">=", D("30"), None, "份", "≥30份", D("1")),
        Target(">=", D("200000000"), None, "元", "≥2亿元", D("100000000")),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("≥10单；≥1000万元", [(">=", D("10"), "单"), (">=", D("10000000"), "元")]),
        ("=60项；=5620万元", [("=", D("60"), "项"), ("=", D("56200000"), "元")]),
        ("≥3个，≥5家", [(">=", D("3"), "个"), (">=", D("5"), "家")]),
        ("≥3个、≥5家", [(">=", D("3"), "个"), (">=", D("5"), "家")]),
        ("≥5000条，3664条，达成订单1099笔", [(">=", D("5000"), "条"), ("=", D("3664"), "条")]),
        ("=1,234个，居全省第一", [("=", D("1234"), "个")]),  # a thousands comma does not split
        ("已完成", []),
        (None, []),
    ],
)
def test_parse_targets(text: object, expected: list[tuple[str, Decimal, str]]) -> None:
    assert [(t.op, t.value, t.unit) for t in parse_targets(text)] == expected


# --- meets --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "actual", "expected"),
    [
        # the examples from the 附件2 tables
        ("≥10个", "=10个", True),
        ("≥5.5万人次", "=5.6万人次", True),
        ("≤484.13万元", "=484.13万元", True),
        ("≥85%", "90%", True),
        ("≥85%", 0.9, True),
        ("≥85%", 90, True),
        ("≥90项", "=97项", True),
        ("=10人", "=9人", False),
        ("≥8%", "=8.5%", True),
        ("≥30份", "=31份", True),
        ("≥2亿元", "=2.4亿元", True),
        ("≥80万人次", "=83.52万人次，居全省第一", True),
        ("≤80万元", "=76.78万元", True),
        ("≤26万元", 0, True),
        ("≥10个", None, None),
        ("≥10个", "已完成", None),
        ("≥10个", "5万元", None),
        # more forms
        ("≥10个", "10个", True),
        ("≥10个", "9个", False),
        ("≥10个", 10, True),
        ("≥10个", "１０个", True),
        ("=10人", "=10人", True),
        ("=10人", 10.0, True),
        ("≥85%", "84%", False),
        ("≥85%", 0.84, False),
        ("≥85%", "90", True),
        ("≥85%", "0.9", True),
        ("≥85%", "#DIV/0!", None),
        ("≥85%", True, None),
        ("≥85%", datetime(2021, 12, 31), None),
        ("≥85%", "", None),
        ("≥100%", 1.05, True),  # a percent-formatted 105%, not 1.05%
        ("≤5%", 2, True),  # 2 against ≤5% is 2%
        ("≤5%", 0.5, False),  # a fraction, as Excel stores it: 50%
        (">95%", "95%", False),
        ("<5%", "4%", True),
        ("≥5.5万人次", 5.6, True),  # typed in the target's own 万
        ("≥5.5万人次", 56000, True),
        ("≥5.5万人次", 54000, False),
        ("≥7亿", "=7.9亿", True),
        ("≥7亿", "=7.9亿元", True),  # one side unitless
        ("≤7", "=5个", True),
        ("≥55项", "=60项；=5620万元", True),  # the piece in the target's unit
        ("≥5000条", "=5000条，3664条", None),  # two readings in the same unit
        ("80%-90%", "85%", True),
        ("80%-90%", 0.95, False),
        ("2-3名", "3名", True),
        ("2-3名", "4名", False),
        ("≥10个", "2-3个", None),  # a range is not an achieved value
        ("≥10个", "2021年12月31日", None),
        ("≥10个", "100%", None),
        ("≥200人", "=205人次", None),  # 人 and 人次 are different things
    ],
)
def test_meets(target: str, actual: object, expected: bool | None) -> None:
    parsed = parse_target(target)
    assert parsed is not None
    assert meets(parsed, actual) is expected


def test_meets_tolerance_widens_bounds() -> None:
    target = parse_target("=10人")
    assert target is not None
    assert meets(target, "=9.99人") is False
    assert meets(target, "=9.99人", tolerance=D("0.01")) is True
