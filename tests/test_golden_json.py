"""`check --json` on the shipped examples and the LibreOffice-saved fixtures, byte for byte.

The golden file is the contract a re-layout of the package must keep (issue 13: no behaviour change). When a
change of behaviour is intended, regenerate it and read the diff:
    python tests/test_golden_json.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from xlsx_kpi.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "check.json"
# Relative paths, so the JSON names the files the same way on every machine.
INPUTS = [
    "examples",
    "tests/data/cn_inserted_lo.xlsx",
    "tests/data/tianfu_12_qty_lo.xlsx",
    "tests/data/tianfu_stray_lo.xlsx",
]
ARGS = ["check", *INPUTS, "--json", "--no-annotate", "--workers", "1"]


def test_check_json_is_unchanged(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    code = main(ARGS)
    out = capsys.readouterr().out
    assert code == 1  # the examples carry the seed's mistakes
    assert '"cell": "E15"' in out and '"code": "rate-without-base"' in out
    assert out == GOLDEN.read_text(encoding="utf-8"), "check --json changed: python tests/test_golden_json.py"


if __name__ == "__main__":
    os.chdir(ROOT)
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        main(ARGS)
    GOLDEN.write_text(buffer.getvalue(), encoding="utf-8")
    print(f"wrote {GOLDEN}", file=sys.stderr)
