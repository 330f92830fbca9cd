"""Startup (issue 14): commands import only what they use, and the validated spec catalog is cached."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xlsx_kpi.formats import catalog as catalog_module
from xlsx_kpi.formats import spec_schema
from xlsx_kpi.formats.catalog import load_specs
from xlsx_kpi.formats.spec import Catalog, default_dir

HEAVY = ("pandas", "openpyxl", "xlsxwriter", "docx", "numpy")
SAMPLE = Path(__file__).parent / "data" / "cn_inserted_lo.xlsx"


def imported_after(args: list[str], tmp_path: Path) -> tuple[int, list[str]]:
    """Run the CLI in a fresh interpreter; (exit code, which heavy modules it imported)."""
    code = (
        "import json, sys\n"
        "from xlsx_kpi.cli import main\n"
        f"rc = main({args!r})\n"
        f"print(json.dumps([rc, sorted(m for m in {HEAVY!r} if m in sys.modules)]), file=sys.stderr)\n"
    )
    env = dict(os.environ, XLSX_KPI_CACHE_DIR=str(tmp_path / "cache"))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    rc, mods = json.loads(run.stderr.strip().splitlines()[-1])
    return rc, mods


def test_help_imports_no_heavy_library(tmp_path: Path) -> None:
    rc, mods = imported_after(["--help"], tmp_path)
    assert (rc, mods) == (0, [])


def test_help_builds_no_console_and_no_spec_models(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from xlsx_kpi.cli import main\n"
        "main(['--help'])\n"
        "heavy = ('rich', 'pydantic', 'yaml', 'xlsx_kpi.formats.spec')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stderr.strip().splitlines()[-1] == "[]"
    assert "check" in run.stdout and "serve" in run.stdout


def test_check_one_workbook_imports_no_heavy_library(tmp_path: Path) -> None:
    out = tmp_path / "out"
    rc, mods = imported_after(["check", str(SAMPLE), "--out-dir", str(out)], tmp_path)
    # The workbook has findings (exit 1) and its copy is written by the zip patcher, not openpyxl.
    assert (rc, mods) == (1, [])
    assert [p.name for p in out.iterdir()] == ["cn_inserted_lo_审核.xlsx"]


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "cache"
    monkeypatch.setenv(catalog_module.CACHE_ENV, str(where))
    return where


def test_second_load_comes_from_the_cache_without_validation(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_specs()
    [stored] = cache.glob("catalog-*.pickle")

    def no_validation(*args: object, **kwargs: object) -> spec_schema.WorkbookSpec:
        raise AssertionError("a spec was validated again")

    monkeypatch.setattr(spec_schema.WorkbookSpec, "model_validate", no_validation)
    second = load_specs()
    assert isinstance(second, Catalog)
    assert second is not first
    assert list(second.workbooks) == list(first.workbooks)
    assert second.workbook("sc-department").name == "部门整体支出绩效自评（四川省·附件1计分表 + 附件2目标完成情况表）"
    assert second == first
    assert [p.name for p in cache.glob("catalog-*.pickle")] == [stored.name]


def test_a_changed_spec_is_validated_again(cache: Path, tmp_path: Path) -> None:
    sheets = tmp_path / "sheets"
    shutil.copytree(default_dir(), sheets, ignore=shutil.ignore_patterns("__pycache__"))
    assert load_specs(sheets).workbook("sc-department").version == load_specs().workbook("sc-department").version
    path = sheets / "sc-department.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("name: 部门整体支出绩效自评（四川省", "name: 改过的表名（四川省", 1), encoding="utf-8")
    assert load_specs(sheets).workbook("sc-department").name.startswith("改过的表名（四川省")


def test_an_unreadable_cache_is_ignored_and_rewritten(cache: Path) -> None:
    load_specs()
    [stored] = cache.glob("catalog-*.pickle")
    stored.write_bytes(b"not a pickle")
    assert load_specs().workbook("sc-project").kind == "project"
    assert stored.read_bytes()[:1] == b"\x80"  # a pickle again


def test_empty_cache_variable_turns_the_cache_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(catalog_module.CACHE_ENV, "")
    monkeypatch.chdir(tmp_path)
    assert catalog_module.cache_dir() is None
    assert load_specs().workbook("sc-project").kind == "project"
    assert list(tmp_path.iterdir()) == []
