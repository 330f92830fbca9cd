"""Shared fixtures: the shipped specs, layouts for the seed's unit, generated templates."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

# The test extras bring lxml (openxml-audit needs it), and openpyxl switches to lxml whenever it is installed,
# which changes how it serialises XML. A plain `pip install xlsx-kpi` has no lxml: test what users run.
# Set before openpyxl is first imported (it reads the variable once); subprocesses inherit it.
os.environ.setdefault("OPENPYXL_LXML", "False")

import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

# The validated spec catalog is cached between runs (catalog.cache_dir): the tests, and the commands they start,
# keep theirs in a folder of their own rather than the user's cache.
os.environ.setdefault("XLSX_KPI_CACHE_DIR", tempfile.mkdtemp(prefix="xlsx-kpi-test-cache-"))

from seed_data import DEPT_IDENTITY, PROJECT_IDENTITY  # noqa: E402

from xlsx_kpi.formats.catalog import load_specs  # noqa: E402
from xlsx_kpi.formats.layout import build_layout  # noqa: E402
from xlsx_kpi.formats.plan import WorkbookLayout  # noqa: E402
from xlsx_kpi.formats.spec import Catalog  # noqa: E402
from xlsx_kpi.outputs.template import write_template  # noqa: E402

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_specs()


@pytest.fixture()
def dept_layout(catalog: Catalog) -> WorkbookLayout:
    return build_layout(catalog, catalog.workbook("sc-department"), DEPT_IDENTITY)


@pytest.fixture()
def project_layout(catalog: Catalog) -> WorkbookLayout:
    return build_layout(catalog, catalog.workbook("sc-project"), PROJECT_IDENTITY)


@pytest.fixture(scope="session")
def dept_template(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    layout = build_layout(catalog, catalog.workbook("sc-department"), DEPT_IDENTITY)
    return write_template(layout, tmp_path_factory.mktemp("tpl") / "dept.xlsx")


@pytest.fixture(scope="session")
def project_template(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    layout = build_layout(catalog, catalog.workbook("sc-project"), PROJECT_IDENTITY)
    return write_template(layout, tmp_path_factory.mktemp("tpl") / "project.xlsx")
