"""Test helpers: fill a template as a user would (openpyxl), and let LibreOffice recalculate it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl

from xlsx_kpi.formats.expr import Value
from xlsx_kpi.formats.plan import WorkbookLayout

PROFILE_XCU = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse">
<value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="ODFRecalcMode" oor:op="fuse">
<value>0</value></prop></item>
</oor:items>
"""


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def fill(template: Path, layout: WorkbookLayout, values: dict[str, Value], out: Path) -> Path:
    """Type values into a template's input cells with openpyxl, the way a user's Excel would save them."""
    wb = openpyxl.load_workbook(template)
    for key, value in values.items():
        ref = layout.refs[key]
        cell = wb[ref.sheet].cell(ref.row + 1, ref.col + 1)
        cell.value = float(value) if isinstance(value, Decimal) else value
        if isinstance(value, str):
            cell.data_type = "s"  # openpyxl would store "=10个" as a formula; a user's typed text is text
    wb.save(out)
    return out


def recalc_with_libreoffice(files: list[Path], out_dir: Path) -> list[Path]:
    """Open each file in LibreOffice with 'always recalculate' and save it again as .xlsx."""
    exe = soffice()
    assert exe, "LibreOffice (soffice) is not installed"
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        user = Path(profile) / "user"
        user.mkdir()
        (user / "registrymodifications.xcu").write_text(PROFILE_XCU, encoding="utf-8")
        subprocess.run(
            [
                exe,
                f"-env:UserInstallation=file://{profile}",
                "--headless",
                "--convert-to",
                "xlsx",
                "--outdir",
                str(out_dir),
                *map(str, files),
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
    return [out_dir / f.name for f in files]


def read_values(path: Path, layout: WorkbookLayout) -> dict[str, Any]:
    """Cached values of every named cell, as openpyxl data_only sees them."""
    wb = openpyxl.load_workbook(path, data_only=True)
    return {key: wb[ref.sheet].cell(ref.row + 1, ref.col + 1).value for key, ref in layout.refs.items()}
