"""Issue 13 module split: the names the front ends import from the old modules are the moved objects themselves."""

from __future__ import annotations

from decimal import Decimal
from types import ModuleType

import pytest

from xlsx_kpi.audit import collection, figures
from xlsx_kpi.batch import collect
from xlsx_kpi.formats import layout, plan, widths
from xlsx_kpi.outputs import summary
from xlsx_kpi.store import encoding, history, records

MOVED = [
    (collect, "Collection", collection),
    (collect, "Submission", collection),
    (collect, "KIND_LABELS", collection),
    (collect, "write_summary", summary),
    (history, "FIGURES", figures),
    (history, "Figure", figures),
    (history, "Record", records),
    (history, "kind_totals", records),
    (history, "record_kind", records),
    (history, "encode_value", encoding),
    (history, "decode_value", encoding),
    (layout, "Identity", plan),
    (layout, "Cell", plan),
    (layout, "WorkbookLayout", plan),
    (layout, "display_width", widths),
    (layout, "text_lines", widths),
]


@pytest.mark.parametrize(("old", "name", "new"), MOVED, ids=[f"{o.__name__}.{n}" for o, n, _ in MOVED])
def test_an_old_name_is_the_moved_object(old: ModuleType, name: str, new: ModuleType) -> None:
    assert name in old.__all__
    assert getattr(old, name) is getattr(new, name)


def test_the_moved_pieces_behave_as_before() -> None:
    # One value each from the moved helpers: a rate shown to 4 decimals, a stored value's text, a CJK width.
    rate = next(f for f in figures.FIGURES if f.fmt == "rate")
    assert figures.execution_rate({"exec.total.budget": Decimal(0), "exec.total.actual": Decimal(5)}) is None
    values = {"exec.total.budget": Decimal("368.08"), "exec.total.actual": Decimal("330.2")}
    assert figures.shown_value(figures.execution_rate(values), rate) == Decimal("0.8971")
    assert encoding.encode_values({"s.total": Decimal("95.35"), "blank": None}) == '{"s.total":"95.35"}'
    assert encoding.decode_values('{"s.total":"95.35"}') == {"s.total": Decimal("95.35")}
    assert widths.display_width("合计A") == 5 and widths.text_lines("预算执行率", 6) == 3
    assert collection.without_spaces(" 资阳市 科协\n") == "资阳市科协"
