"""Checking one workbook loads only what it uses (issue 14): no spec is validated from a valid cache, and
neither the report reader, the progress bar, the process pool nor typer's pydantic coercion is imported."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = Path(__file__).parent / "data" / "cn_inserted_lo.xlsx"

NOT_LOADED = (
    "xlsx_kpi.selfreport.check",  # only with a .docx report to read
    "xlsx_kpi.formats.outline",
    "rich.progress",  # only for two files or more
    "multiprocessing",  # only with --workers and four files or more
    "concurrent.futures.process",
    "typer._adapters",  # typer >= 0.29 builds a pydantic TypeAdapter per option
)


def check_in_a_fresh_interpreter(out: Path, env: dict[str, str]) -> tuple[int, list[str], list[str]]:
    """(exit code, spec validation modules imported, NOT_LOADED modules imported) of `xlsx-kpi check SAMPLE
    --out-dir out`."""
    code = (
        "import json, sys\n"
        "from xlsx_kpi.cli import main\n"
        f"rc = main(['check', {str(SAMPLE)!r}, '--out-dir', {str(out)!r}])\n"
        "validation = ('pydantic', 'xlsx_kpi.formats.spec_schema')\n"
        "built = sorted(m for m in validation if m in sys.modules)\n"
        f"loaded = sorted(m for m in {NOT_LOADED!r} if m in sys.modules)\n"
        "print(json.dumps([rc, built, loaded]), file=sys.stderr)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    rc, built, loaded = json.loads(run.stderr.strip().splitlines()[-1])
    return rc, built, loaded


def test_checking_one_workbook_validates_no_spec_and_loads_no_unused_stage(tmp_path: Path) -> None:
    env = dict(os.environ, XLSX_KPI_CACHE_DIR=str(tmp_path / "cache"))
    # The first run validates the specs (pydantic) and writes the cache; the second unpickles plain records.
    first = check_in_a_fresh_interpreter(tmp_path / "first", env)
    assert first[0] == 1 and first[1] == ["pydantic", "xlsx_kpi.formats.spec_schema"]
    assert check_in_a_fresh_interpreter(tmp_path / "out", env) == (1, [], [])
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["cn_inserted_lo_审核.xlsx"]


def collector_after(args: list[str], tmp_path: Path) -> tuple[int, bool, bool, bool]:
    """Run as the program (main() reads sys.argv) in a fresh interpreter: (exit code, collector on, anything frozen,
    collector on when the command's work began)."""
    code = (
        "import gc, json, sys\n"
        "from xlsx_kpi.cli import common, main\n"
        "seen = []\n"
        "begin = common.work_begins\n"
        "def spy():\n"
        "    begin()\n"
        "    seen.append(gc.isenabled())\n"
        "common.work_begins = spy\n"
        "import xlsx_kpi.cli.check\n"
        "xlsx_kpi.cli.check.work_begins = spy\n"
        f"sys.argv = ['xlsx-kpi', *{args!r}]\n"
        "rc = main()\n"
        "print(json.dumps([rc, gc.isenabled(), gc.get_freeze_count() > 0, seen == [True]]), file=sys.stderr)\n"
    )
    env = dict(os.environ, XLSX_KPI_CACHE_DIR=str(tmp_path / "cache"))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    rc, enabled, frozen, began = json.loads(run.stderr.strip().splitlines()[-1])
    return rc, enabled, frozen, began


def test_the_program_pauses_the_collector_until_the_work_begins(tmp_path: Path) -> None:
    # As xlsx-kpi: off during startup, on (with startup's objects frozen) once the files are checked, and given
    # back as it was when main returns; a usage error, before any work, also gets it back.
    assert collector_after(["check", str(SAMPLE), "--out-dir", str(tmp_path / "out")], tmp_path) == (
        1,
        True,
        False,
        True,
    )
    assert collector_after(["check", "--no-such-option"], tmp_path) == (2, True, False, False)


def test_main_called_with_arguments_leaves_the_collector_alone(tmp_path: Path) -> None:
    from xlsx_kpi.cli import common, main

    assert gc.isenabled()
    assert main(["check", str(SAMPLE), "--out-dir", str(tmp_path)]) == 1
    assert (gc.isenabled(), gc.get_freeze_count(), common.COLLECTOR) == (True, 0, set())
    gc.disable()
    try:
        assert main(["rules"]) == 0
        assert gc.isenabled() is False  # a caller's own choice is kept
    finally:
        gc.enable()


def test_serve_runs_the_server_with_the_collector_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    import uvicorn

    from xlsx_kpi.cli import main

    seen: list[tuple[bool, bool]] = []
    monkeypatch.setattr(
        uvicorn, "run", lambda *args, **kwargs: seen.append((gc.isenabled(), gc.get_freeze_count() > 0))
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # As the program (no arguments to main): startup paused the collector; the server must run with it on.
    monkeypatch.setattr(sys, "argv", ["xlsx-kpi", "serve", "--port", str(port), "--data", str(tmp_path / "data")])
    assert main() == 0
    assert seen == [(True, True)]
    assert (gc.isenabled(), gc.get_freeze_count()) == (True, 0)
