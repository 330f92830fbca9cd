"""Checking one workbook loads only what it uses (issue 14): no spec model is built from a valid cache, and
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
    """(exit code, spec models built, NOT_LOADED modules imported) of `xlsx-kpi check SAMPLE --out-dir out`."""
    code = (
        "import json, sys\n"
        "from xlsx_kpi.cli import main\n"
        f"rc = main(['check', {str(SAMPLE)!r}, '--out-dir', {str(out)!r}])\n"
        "from xlsx_kpi.formats import spec\n"
        "models = ('Catalog', 'WorkbookSpec', 'SheetSpec')\n"
        "built = sorted(n for n in models if getattr(spec, n).__pydantic_complete__)\n"
        f"loaded = sorted(m for m in {NOT_LOADED!r} if m in sys.modules)\n"
        "print(json.dumps([rc, built, loaded]), file=sys.stderr)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    rc, built, loaded = json.loads(run.stderr.strip().splitlines()[-1])
    return rc, built, loaded


def test_checking_one_workbook_builds_no_spec_model_and_loads_no_unused_stage(tmp_path: Path) -> None:
    env = dict(os.environ, XLSX_KPI_CACHE_DIR=str(tmp_path / "cache"))
    # The first run validates the specs (models built) and writes the cache; the second unpickles it.
    first = check_in_a_fresh_interpreter(tmp_path / "first", env)
    assert first[0] == 1 and first[1] == ["Catalog", "SheetSpec", "WorkbookSpec"]
    assert check_in_a_fresh_interpreter(tmp_path / "out", env) == (1, [], [])
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["cn_inserted_lo_审核.xlsx"]


def test_main_gives_the_garbage_collector_back_as_it_was(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # main() turns the collector off during startup and freezes what startup built once the work begins
    # (cli.common.work_begins); a caller in the same process gets it back enabled and unfrozen, whatever happened.
    from xlsx_kpi.cli import main

    assert gc.isenabled()
    assert main(["check", str(SAMPLE), "--out-dir", str(tmp_path)]) == 1
    assert (gc.isenabled(), gc.get_freeze_count()) == (True, 0)
    assert main(["check", "--no-such-option"]) == 2  # a usage error, before any work began
    assert "没有选项 --no-such-option" in capsys.readouterr().err
    assert (gc.isenabled(), gc.get_freeze_count()) == (True, 0)
    gc.disable()
    try:
        assert main(["rules"]) == 0
        assert (gc.isenabled(), gc.get_freeze_count()) == (False, 0)  # a caller's own choice is kept
    finally:
        gc.enable()


def test_serve_runs_the_server_with_the_collector_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    import uvicorn

    from xlsx_kpi.cli import main

    seen: list[tuple[bool, int]] = []
    monkeypatch.setattr(
        uvicorn, "run", lambda *args, **kwargs: seen.append((gc.isenabled(), gc.get_freeze_count() > 0))
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["serve", "--port", str(port), "--data", str(tmp_path / "data")]) == 0
    assert seen == [(True, True)]  # a server runs for days: garbage is collected as usual
    assert (gc.isenabled(), gc.get_freeze_count()) == (True, 0)
