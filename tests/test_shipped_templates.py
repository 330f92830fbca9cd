"""templates/ holds build outputs of sheets/: a test fails, naming the fix, when they drift apart."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from xlsx_kpi.formats.layout import build_layout
from xlsx_kpi.formats.plan import Identity
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.outputs.dump import dump_workbook
from xlsx_kpi.outputs.template import write_template

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
FIX = "templates/ 与 sheets/ 不一致：运行 `xlsx-kpi build-templates --year {year}` 重新生成并提交"


@pytest.mark.parametrize("workbook_id", ["sc-department", "sc-project"])
def test_shipped_template_matches_the_specs(catalog: Catalog, tmp_path: Path, workbook_id: str) -> None:
    shipped = TEMPLATES / f"{workbook_id}.xlsx"
    assert shipped.exists(), FIX.format(year="YYYY")
    meta = dict(openpyxl.load_workbook(shipped)["_xlsx_kpi"].iter_rows(values_only=True))
    year = int(meta["year"])
    fresh = write_template(
        build_layout(catalog, catalog.workbook(workbook_id), Identity(year=year)), tmp_path / shipped.name
    )
    assert dump_workbook(fresh) == dump_workbook(shipped), FIX.format(year=year)
