"""Issue 13 module split: the pieces moved out of collect, history and layout behave as before."""

from __future__ import annotations

from decimal import Decimal

from xlsx_kpi import safe_text
from xlsx_kpi.audit import figures
from xlsx_kpi.formats import widths
from xlsx_kpi.store import encoding


def test_the_moved_pieces_behave_as_before() -> None:
    # One value each from the moved helpers: a rate shown to 4 decimals, a stored value's text, a CJK width.
    rate = next(f for f in figures.FIGURES if f.fmt == "rate")
    assert figures.execution_rate({"exec.total.budget": Decimal(0), "exec.total.actual": Decimal(5)}) is None
    values = {"exec.total.budget": Decimal("368.08"), "exec.total.actual": Decimal("330.2")}
    assert figures.shown_value(figures.execution_rate(values), rate) == Decimal("0.8971")
    assert encoding.encode_values({"s.total": Decimal("95.35"), "blank": None}) == '{"s.total":"95.35"}'
    assert encoding.decode_values('{"s.total":"95.35"}') == {"s.total": Decimal("95.35")}
    assert widths.display_width("合计A") == 5 and widths.text_lines("预算执行率", 6) == 3
    assert safe_text.without_spaces(" 资阳市 科协\n") == "资阳市科协"
