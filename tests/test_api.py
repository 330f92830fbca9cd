"""The library API (issue 13): the README's example runs as printed, and the calls the front ends rely on."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xlsx_kpi import api
from xlsx_kpi.errors import XlsxKpiError

ROOT = Path(__file__).resolve().parents[1]
DEPT = "2021_156001_资阳市科学技术协会_部门整体支出绩效自评.xlsx"
PROJECT = "2021_156001_资阳市科学技术协会_“科创会”专项经费_项目支出绩效自评.xlsx"


@pytest.fixture()
def examples(tmp_path: Path) -> Path:
    """A working folder with the two example workbooks under examples/, as in the project folder."""
    folder = tmp_path / "examples"
    folder.mkdir()
    for name in (DEPT, PROJECT):
        shutil.copyfile(ROOT / "examples" / name, folder / name)
    return folder


def readme_example() -> tuple[str, list[str]]:
    """The code of README "作为 Python 库使用" and the output printed under it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## 作为 Python 库使用\n", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    shown = re.search(r"输出.*?\n\n```\n(.*?)```", section, re.S)
    assert code is not None and shown is not None
    return code.group(1), shown.group(1).splitlines()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_readme_library_example_prints_what_the_readme_shows(examples: Path) -> None:
    code, expected = readme_example()
    before = {p.name: digest(p) for p in examples.iterdir()}
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=examples.parent, capture_output=True, text=True, env=dict(os.environ)
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == expected
    assert expected[1] == "资阳市科学技术协会 95.35 优 4 1"
    out = examples.parent / "输出"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "2025_101001_某某局_部门整体支出绩效自评.xlsx",
            "2021_156001_资阳市科学技术协会_部门整体支出绩效自评_审核.xlsx",
            "历史.sqlite",
            "汇总.xlsx",
        ]
    )
    assert {p.name: digest(p) for p in examples.iterdir()} == before  # inputs are never modified


def test_importing_the_api_loads_none_of_the_stages() -> None:
    heavy = ("pydantic", "yaml", "rich", "openpyxl", "pandas", "xlsxwriter", "docx", "xlsx_kpi.formats.spec")
    code = f"import sys, xlsx_kpi.api\nprint(sorted(m for m in {heavy!r} if m in sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def test_every_public_name_is_documented() -> None:
    undocumented = [
        name for name in api.__all__ if callable(getattr(api, name)) and not (getattr(api, name).__doc__ or "").strip()
    ]
    assert undocumented == []
    assert api.check_file.__doc__ is not None and "never raises" in api.check_file.__doc__


def test_workbook_spec_by_kind_alias_or_id() -> None:
    catalog = api.load_catalog()
    assert api.workbook_spec(catalog, kind="项目").id == "sc-project"
    assert api.workbook_spec(catalog, kind=" Department ").id == "sc-department"
    assert api.workbook_spec(catalog, spec="cn-department").id == "cn-department"
    assert api.kind_label(catalog, "sc-project") == "项目支出"
    assert api.kind_label(catalog, "no-such-spec") == ""
    with pytest.raises(XlsxKpiError, match="未知的表种 '县级'"):
        api.workbook_spec(catalog, kind="县级")


def test_check_paths_on_a_folder_checks_the_workbooks_against_each_other(examples: Path) -> None:
    run = api.check_paths([examples], annotate=False)
    assert [r.file.name for r in run.reports] == sorted([DEPT, PROJECT])
    assert [r.counts["错误"] for r in run.reports] == [5, 4]
    assert run.exit_code == 1
    # The project's budget figures are set against the department's (附件2 C7/C8, D7/D8): two 提示, no 错误.
    assert [(c.finding.code, c.finding.severity.value, [p.cell for p in c.places]) for c in run.cross] == [
        ("projects-below-department", "提示", ["C7", "C8"]),
        ("projects-below-department", "提示", ["D7", "D8"]),
    ]
    assert run.documents == [] and run.resubmitted == []
    assert sorted(p.name for p in examples.iterdir()) == sorted([DEPT, PROJECT])  # annotate=False wrote nothing


def test_find_inputs_names_the_folder_when_there_is_nothing_to_check(tmp_path: Path) -> None:
    with pytest.raises(XlsxKpiError, match=f"在 {re.escape(str(tmp_path))} 中没有找到要审核的 .xlsx 文件"):
        api.find_inputs([tmp_path])


def test_stored_figures_give_the_same_cross_findings(examples: Path) -> None:
    catalog = api.load_catalog()
    checked = [api.audit_file(p, catalog) for p in sorted(examples.glob("*.xlsx"))]
    # What the web app keeps in its database (JSON text), read back without opening the files again.
    stored = [api.checked_from_figures(c.report, json.loads(json.dumps(api.figures_of(c)))) for c in checked]
    direct = api.cross_check(checked, catalog)
    assert len(direct) == 2
    assert api.cross_check(stored, catalog) == direct


def test_draft_report_counts_its_blanks_and_the_workbooks_errors(examples: Path, tmp_path: Path) -> None:
    draft = api.draft_report(examples / DEPT, tmp_path / "报告.docx")
    assert (draft.path, draft.fill_count, draft.errors) == (tmp_path / "报告.docx", 9, 4)
    with pytest.raises(XlsxKpiError, match="文件已存在"):
        api.draft_report(examples / DEPT, tmp_path / "报告.docx")


def test_list_rules_is_the_rule_catalogue() -> None:
    assert api.list_rules() == (ROOT / "docs" / "RULES.md").read_text(encoding="utf-8")


def test_build_templates_writes_one_blank_template_per_spec(tmp_path: Path) -> None:
    paths = api.build_templates(tmp_path, 2025)
    assert sorted(p.name for p in paths) == [
        "cn-department.xlsx",
        "gz-department.xlsx",
        "sc-department.xlsx",
        "sc-project.xlsx",
    ]
    assert all(p.stat().st_size > 10_000 for p in paths)


def test_help_lists_the_commands_in_the_order_of_a_round(capsys: pytest.CaptureFixture[str]) -> None:
    from xlsx_kpi.cli import main

    assert main(["--help"]) == 0
    commands = capsys.readouterr().out.split("Commands:\n", 1)[1]
    listed = [line.split()[0] for line in commands.splitlines() if line.strip()]
    assert listed == [
        "specs",
        "template",
        "build-templates",
        "check",
        "collect",
        "history",
        "serve",
        "report",
        "rules",
    ]


def test_pyproject_lists_every_package_folder() -> None:
    # setuptools' explicit `packages`: a folder missing from it is left out of a non-editable install (pip install .),
    # while the editable install the tests run on still finds it.
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "xlsx_kpi").rglob("__init__.py")}
    assert folders - listed == set()
    assert {"xlsx_kpi.cli", "xlsx_kpi.formats.expr", "xlsx_kpi.sheets"} <= listed
