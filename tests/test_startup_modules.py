"""What `xlsx-kpi check ONE.xlsx` leaves out once the spec cache is warm (issue 14), and the one-command app the CLI
runs a command in: the same help and the same usage errors as the whole app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xlsx_kpi.cli import COMMANDS, app, app_for
from xlsx_kpi.formats import catalog
from xlsx_kpi.formats.catalog import load_data

SAMPLE = Path(__file__).parent / "data" / "cn_inserted_lo.xlsx"

# Each was on the path of checking one workbook before issue 14's startup work, and none is needed there:
NOT_ON_THE_CHECK_PATH = (
    "pydantic",  # spec validation: only when a spec is not in the cache
    "xlsx_kpi.formats.spec_schema",
    "yaml",  # the specs and the indicator rules' data file, parsed once and cached
    "xml.sax",  # defusedxml.expatreader, for four guard callbacks (and through it urllib, http, email)
    "defusedxml.expatreader",
    "urllib.request",
    "http.client",
    "email.parser",
    "rich._emoji_codes",  # the console prints text as it is: no emoji codes (nor markup) in file names
)


def modules_after_check(tmp_path: Path, out: str) -> tuple[int, list[str]]:
    """(exit code, which NOT_ON_THE_CHECK_PATH modules were imported) of `xlsx-kpi check SAMPLE --out-dir out`
    in a fresh interpreter."""
    code = (
        "import json, sys\n"
        "from xlsx_kpi.cli import main\n"
        f"rc = main(['check', {str(SAMPLE)!r}, '--out-dir', {out!r}])\n"
        f"print(json.dumps([rc, sorted(m for m in {NOT_ON_THE_CHECK_PATH!r} if m in sys.modules)]), file=sys.stderr)\n"
    )
    env = dict(os.environ, XLSX_KPI_CACHE_DIR=str(tmp_path / "cache"))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    rc, loaded = json.loads(run.stderr.strip().splitlines()[-1])
    return rc, loaded


def test_a_warm_check_imports_no_validation_and_no_sax(tmp_path: Path) -> None:
    # A cold cache validates the specs (pydantic, spec_schema); the read path never needs xml.sax.
    cold = modules_after_check(tmp_path, str(tmp_path / "cold"))
    assert cold == (1, ["pydantic", "xlsx_kpi.formats.spec_schema", "yaml"])
    assert modules_after_check(tmp_path, str(tmp_path / "warm")) == (1, [])
    assert [p.name for p in (tmp_path / "warm").iterdir()] == ["cn_inserted_lo_审核.xlsx"]


def test_a_command_name_gets_an_app_of_that_command_alone() -> None:
    one = app_for(["check", "a.xlsx"])
    assert [c.name for c in one.registered_commands] == ["check"]
    assert app_for(["--help"]) is app
    assert app_for([]) is app
    assert app_for(["chek"]) is app  # the whole app suggests the command meant


@pytest.mark.parametrize("name", [name for name, _ in COMMANDS])
def test_help_of_each_command_is_the_same_in_its_own_app(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    for runner in (app, app_for([name])):
        runner(args=[name, "--help"], standalone_mode=False, prog_name="xlsx-kpi")
    whole, alone = capsys.readouterr().out.split(f"Usage: xlsx-kpi {name} ")[1:]
    assert whole == alone
    assert "\nOptions:\n" in whole and "--help" in whole


def test_a_usage_error_is_the_same_in_the_command_s_own_app() -> None:
    messages = []
    for runner in (app, app_for(["check"])):
        with pytest.raises(Exception) as e:
            runner(args=["check", "a.xlsx", "--workers", "two"], standalone_mode=False, prog_name="xlsx-kpi")
        messages.append((type(e.value).__name__, e.value.format_message()))  # type: ignore[attr-defined]
    assert messages[0] == messages[1]
    assert messages[0][0] == "BadParameter" and "two" in messages[0][1]


def test_a_data_file_is_parsed_once_then_read_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    monkeypatch.setenv(catalog.CACHE_ENV, str(tmp_path / "cache"))
    path = tmp_path / "words.yml"
    path.write_text("upper_bound: [满意度, 合格率]\nthreshold: 0.5\n", encoding="utf-8")
    assert load_data(path) == {"upper_bound": ["满意度", "合格率"], "threshold": 0.5}
    assert len(list((tmp_path / "cache").glob("data-*.pickle"))) == 1

    def no_parse(*args: object, **kwargs: object) -> object:
        raise AssertionError("parsed again")

    monkeypatch.setattr(yaml, "load", no_parse)
    assert load_data(path)["upper_bound"] == ["满意度", "合格率"]
    monkeypatch.undo()
    monkeypatch.setenv(catalog.CACHE_ENV, str(tmp_path / "cache"))
    path.write_text("upper_bound: [完成率]\n", encoding="utf-8")
    assert load_data(path) == {"upper_bound": ["完成率"]}  # a changed file is parsed again
    assert len(list((tmp_path / "cache").glob("data-*.pickle"))) == 1


def layout_in_a_fresh_interpreter(tmp_path: Path, rows: int, *, parse: bool) -> list[str]:
    """Lay out cn-department with `rows` output-kind rows in a fresh interpreter; with parse=False, parsing any
    expression fails. The cache files' kinds after it."""
    code = (
        "import sys\n"
        "from xlsx_kpi.formats.catalog import layout_of, load_specs\n"
        "from xlsx_kpi.formats.expr import syntax\n"
        "from xlsx_kpi.formats.plan import Identity\n"
        "catalog = load_specs()\n"
        f"if not {parse}:\n"
        "    def refuse(self):\n"
        "        raise AssertionError('parsed again: ' + self.source)\n"
        "    syntax._Parser.parse = refuse\n"
        f"shape = Identity(2025, rows=(('s.output_kinds', {rows}),))\n"
        "layout = layout_of(catalog, catalog.workbook('cn-department'), shape)\n"
        "assert layout.refs['s.output_kinds.1.score'].sheet == '附件1'\n"
    )
    env = dict(os.environ, XLSX_KPI_CACHE_DIR=str(tmp_path / "cache"))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if run.returncode:
        return [run.stderr.strip().splitlines()[-1].split(":")[0]]
    return sorted(p.name.split("-")[0] for p in (tmp_path / "cache").iterdir())


def test_parsed_expressions_come_from_the_cache_per_workbook_kind(tmp_path: Path) -> None:
    load = ["catalog", "exprs"]  # the cache files: the catalog and cn-department's parsed expressions
    assert layout_in_a_fresh_interpreter(tmp_path, 5, parse=True) == load
    assert layout_in_a_fresh_interpreter(tmp_path, 5, parse=False) == load  # nothing parsed again
    # Eight rows change three formulas (the sums over the rows): those are parsed, then kept beside the others.
    assert layout_in_a_fresh_interpreter(tmp_path, 8, parse=False) == ["AssertionError"]
    assert layout_in_a_fresh_interpreter(tmp_path, 8, parse=True) == load
    assert layout_in_a_fresh_interpreter(tmp_path, 8, parse=False) == load
    assert layout_in_a_fresh_interpreter(tmp_path, 5, parse=False) == load


def program_in_a_fresh_interpreter(args: list[str], tmp_path: Path) -> list[object]:
    """[exit code, collector on, startup's objects still frozen] after cli.program() returns."""
    code = (
        "import gc, json, sys\n"
        "from xlsx_kpi.cli import program\n"
        f"sys.argv = ['xlsx-kpi', *{args!r}]\n"
        "rc = program()\n"
        "print(json.dumps([rc, gc.isenabled(), gc.get_freeze_count() > 10000]), file=sys.stderr)\n"
    )
    env = dict(os.environ, XLSX_KPI_CACHE_DIR=str(tmp_path / "cache"))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    result: list[object] = json.loads(run.stderr.strip().splitlines()[-1])
    return result


def test_the_program_ends_with_startup_still_frozen(tmp_path: Path) -> None:
    # The process exits next: unfreezing would only make the final collection scan startup's objects again.
    assert program_in_a_fresh_interpreter(["check", str(SAMPLE), "--out-dir", str(tmp_path / "o")], tmp_path) == [
        1,
        True,
        True,
    ]
    # A usage error ends before the work begins: nothing was frozen, the collector is on again.
    assert program_in_a_fresh_interpreter(["check", "--no-such-option"], tmp_path) == [2, True, False]


def test_the_installed_command_runs_the_program() -> None:
    from importlib.metadata import entry_points

    [script] = [e for e in entry_points(group="console_scripts") if e.name == "xlsx-kpi"]
    assert script.value == "xlsx_kpi.cli:program"


def test_file_names_are_printed_as_they_are(tmp_path: Path) -> None:
    # Rich would read "[red]" as markup (the name loses it) and ":smile:" as an emoji code.
    odd = tmp_path / "[red]科目:smile:表.xlsx"
    odd.write_bytes(SAMPLE.read_bytes())
    env = dict(os.environ, XLSX_KPI_CACHE_DIR=str(tmp_path / "cache"))
    args = [sys.executable, "-m", "xlsx_kpi.cli", "check", str(odd), "--out-dir", str(tmp_path / "o")]
    run = subprocess.run(args, capture_output=True, text=True, env=env)
    assert run.returncode == 1
    assert f"{odd}（蒸湘区教育局）" in run.stdout.splitlines()
    assert "│ [red]科目:smile:表.xlsx │ 蒸湘区教育局 │ 49.30 │" in run.stdout
    assert f"审核文件：{tmp_path / 'o' / '[red]科目:smile:表_审核.xlsx'}" in run.stdout
