"""Rename a sheet and add one in LibreOffice Calc through UNO, then save as .xlsx (a unit's edit, scripted).

Run with the system Python that has python3-uno (Debian: /usr/bin/python3):
    /usr/bin/python3 tests/lo/rename_sheet.py IN.xlsx OUT.xlsx OLD NEW ADDED PROFILE_DIR
UNO renames the sheet as the Calc UI does: every defined name follows it (K_… names point at NEW!$C$5).
"""

import os
import subprocess
import sys
import time

import uno  # type: ignore[import-not-found]
from com.sun.star.beans import PropertyValue  # type: ignore[import-not-found]


def prop(name, value):  # type: ignore[no-untyped-def]
    p = PropertyValue()
    p.Name, p.Value = name, value
    return p


def main() -> None:
    src, dst, old, new, added, profile = sys.argv[1:7]
    pipe = f"xlsx_kpi_{os.getpid()}"
    office = subprocess.Popen(
        [
            "soffice",
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--invisible",
            f"--accept=pipe,name={pipe};urp;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    desktop = None
    try:
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
        for _ in range(120):
            try:
                ctx = resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
                break
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.5)
        else:
            raise SystemExit("LibreOffice did not start")
        desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
        doc = desktop.loadComponentFromURL(
            uno.systemPathToFileUrl(os.path.abspath(src)), "_blank", 0, (prop("Hidden", True),)
        )
        sheets = doc.Sheets
        sheets.getByName(old).Name = new
        sheets.insertNewByName(added, sheets.Count)
        sheets.getByName(added).getCellRangeByName("A1").String = "单位自己的测算"
        doc.storeToURL(uno.systemPathToFileUrl(os.path.abspath(dst)), (prop("FilterName", "Calc MS Excel 2007 XML"),))
        doc.close(True)
    finally:
        if desktop is not None:
            try:
                desktop.terminate()
            except Exception:  # noqa: BLE001 - the bridge closes as Office exits
                pass
        try:
            office.wait(timeout=30)
        except subprocess.TimeoutExpired:
            office.kill()


if __name__ == "__main__":
    main()
