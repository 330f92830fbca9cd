"""The spec records (formats/spec.py) and the pydantic models that validate into them (formats/spec_schema.py) stay
in step, and a record behaves as the frozen model it replaced: compared by value, not assignable, picklable."""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest

from xlsx_kpi.formats import spec
from xlsx_kpi.formats.catalog import load_specs
from xlsx_kpi.formats.spec_schema import MODELS, Strict


def test_every_model_has_a_record_with_the_same_fields_in_the_same_order() -> None:
    assert len(MODELS) == 32
    for model, record in MODELS.items():
        assert record.__name__ == model.__name__
        assert record.field_names() == tuple(model.model_fields), model.__name__
    records = {c for c in vars(spec).values() if isinstance(c, type) and issubclass(c, spec.Record)}
    assert records - set(MODELS.values()) == {spec.Record, spec.Catalog}
    assert issubclass(next(iter(MODELS)), Strict)


def test_the_catalog_is_made_of_records_with_the_validated_values() -> None:
    catalog = load_specs()
    wb = catalog.workbook("sc-department")
    assert type(wb) is spec.WorkbookSpec
    assert [g.min for g in wb.grades][:2] == [Decimal("90"), Decimal("80")]
    sheet = catalog.sheets_of(wb)[0]
    assert type(sheet.blocks[0]).__module__ == "xlsx_kpi.formats.spec"
    block = next(b for b in sheet.blocks if isinstance(b, spec.IndicatorsBlock))
    assert (block.columns.score, block.columns_of(block.groups[0])["score"]) == ("F", (5, 5))
    assert block.repeat_header is True  # a default filled in by the model


def test_a_record_is_frozen_compared_by_value_and_pickles() -> None:
    m = spec.Measure(direction="at_least", value=Decimal("0.9"))
    assert m.unit == ""  # the record's own default
    assert m == spec.Measure(direction="at_least", value=Decimal("0.90"), unit="")
    assert m != spec.Measure(direction="at_most", value=Decimal("0.9"))
    assert hash(m) == hash(spec.Measure(direction="at_least", value=Decimal("0.9")))
    assert repr(m) == "Measure(direction='at_least', value=Decimal('0.9'), unit='')"
    with pytest.raises(AttributeError, match="Measure is frozen: cannot set unit"):
        m.unit = "%"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(m)) == m
    with pytest.raises(TypeError, match=r"Measure: unknown fields \['units'\], missing fields \['value'\]"):
        spec.Measure(direction="at_least", units="%")  # type: ignore[call-arg]


def test_the_whole_catalog_survives_the_cache_round_trip() -> None:
    catalog = load_specs()
    again = pickle.loads(pickle.dumps(catalog, protocol=pickle.HIGHEST_PROTOCOL))
    assert again == catalog
    assert again.workbook("gz-department").as_dict().keys() == catalog.workbook("gz-department").as_dict().keys()
