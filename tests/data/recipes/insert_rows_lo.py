"""Recipe for the LibreOffice fixtures of inserted indicator rows: a unit's Calc inserts rows and types in them.

Run with Debian's python3-uno (only /usr/bin/python3 has it), from the repository root:

    .venv/bin/xlsx-kpi template --kind project --year 2021 --unit 资阳市科学技术协会 --code 015001 \
        --project 天府科技云 --project-type 民生保障 -o /tmp/tianfu.xlsx --force
    .venv/bin/xlsx-kpi template --spec cn-department --year 2025 --unit 蒸湘区教育局 --code 430408001 \
        -o /tmp/cn.xlsx --force
    /usr/bin/python3 tests/data/recipes/insert_rows_lo.py /tmp/tianfu.xlsx /tmp/cn.xlsx tests/data

It starts its own headless soffice (private profile, named pipe), opens the template, and like a person:
1. tianfu_12_qty_lo.xlsx: selects the 4th 数量指标 row of 附件2 and inserts 4 rows above it (Insert Rows
   Before), then types the 12 数量指标 of tests/data/tianfu_qty.json (三级指标, 预算指标值, 执行结果) into
   the 12 rows of the group, through .uno:EnterString so input is parsed as typed;
2. tianfu_stray_lo.xlsx: the same template, one row inserted above the first 质量指标 row (between two
   groups) and an indicator typed into it: the tool cannot attribute it to a group.
3. cn_inserted_lo.xlsx: the national form (any unit), 2 rows inserted inside 产出指标 (above its 3rd row), and
   the 7 rows of the group filled (三级指标, 年度指标值, 实际完成值, 分值, 得分): the 总分 range grows with them.
All are saved as .xlsx ("Calc MS Excel 2007 XML"). soffice is terminated at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uno  # type: ignore[import-not-found]
from com.sun.star.beans import PropertyValue  # type: ignore[import-not-found]

PIPE = "xlsxkpi_recipe"
NATIONAL = [
    ("培训教师人次", "≥500人次", "=520人次", "8", "8"),
    ("送教下乡次数", "≥12次", "=12次", "7", "7"),
    ("新建智慧教室", "≥20间", "=18间", "7", "6.3"),
    ("教师培训合格率", "≥95%", "=97%", "7", "7"),
    ("校舍安全隐患整改率", "=100%", "=100%", "7", "7"),
    ("项目按期完成率", "=100%", "=100%", "7", "7"),
    ("生均公用经费控制", "≤800元", "=780元", "7", "7"),
]


def prop(name: str, value: object) -> PropertyValue:
    p = PropertyValue()
    p.Name = name
    p.Value = value
    return p


def connect(profile: str) -> tuple[subprocess.Popen[bytes], object]:
    proc = subprocess.Popen(
        [
            "soffice",
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--invisible",
            "--norestore",
            "--nologo",
            f"--accept=pipe,name={PIPE};urp;StarOffice.ComponentContext",
        ]
    )
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    for _ in range(120):
        try:
            ctx = resolver.resolve(f"uno:pipe,name={PIPE};urp;StarOffice.ComponentContext")
            return proc, ctx
        except Exception:  # noqa: BLE001 - soffice is still starting
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("soffice did not start")


class Calc:
    """One open document, driven through the dispatcher as a person would (select, insert, type)."""

    def __init__(self, ctx: object, path: Path, sheet: str = "附件2") -> None:
        smgr = ctx.ServiceManager  # type: ignore[attr-defined]
        self.desktop = smgr.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
        self.doc = self.desktop.loadComponentFromURL(uno.systemPathToFileUrl(str(path)), "_blank", 0, ())
        self.frame = self.doc.getCurrentController().getFrame()
        self.dispatcher = smgr.createInstanceWithContext("com.sun.star.frame.DispatchHelper", ctx)
        self.sheet = self.doc.Sheets.getByName(sheet)
        self.doc.getCurrentController().setActiveSheet(self.sheet)

    def run(self, command: str, *props: PropertyValue) -> None:
        self.dispatcher.executeDispatch(self.frame, command, "", 0, tuple(props))

    def go(self, a1: str) -> None:
        self.run(".uno:GoToCell", prop("ToPoint", a1))

    def type(self, a1: str, text: str) -> None:
        self.go(a1)
        self.run(".uno:EnterString", prop("StringName", text))

    def find_row(self, col: int, text: str) -> int:
        """0-based row of the first cell in column `col` showing `text` (a group's merged 二级指标 label)."""
        for row in range(200):
            if self.sheet.getCellByPosition(col, row).getString().strip() == text:
                return row
        raise SystemExit(f"{text} not found in column {col}")

    def save(self, out: Path) -> None:
        self.doc.storeToURL(uno.systemPathToFileUrl(str(out)), (prop("FilterName", "Calc MS Excel 2007 XML"),))
        self.doc.close(True)


def main() -> None:
    template, national, out_dir = (Path(a).resolve() for a in sys.argv[1:4])
    rows = json.loads((Path(__file__).resolve().parents[1] / "tianfu_qty.json").read_text(encoding="utf-8"))["rows"]
    with tempfile.TemporaryDirectory() as profile:
        proc, ctx = connect(profile)
        try:
            calc = Calc(ctx, template)
            first = calc.find_row(2, "数量指标")  # column C holds the merged 二级指标 name
            calc.go(f"D{first + 4}")  # the group's 4th row
            for _ in range(4):
                calc.run(".uno:InsertRowsBefore")
            for i, (name, target, result) in enumerate(rows):
                r = first + 1 + i
                calc.type(f"D{r}", name)
                calc.type(f"E{r}", target)
                calc.type(f"F{r}", result)
            calc.save(out_dir / "tianfu_12_qty_lo.xlsx")

            calc = Calc(ctx, template)
            quality = calc.find_row(2, "质量指标")
            calc.go(f"D{quality + 1}")
            calc.run(".uno:InsertRowsBefore")
            calc.type(f"D{quality + 1}", "科技志愿服务活动场次")
            calc.type(f"E{quality + 1}", "≥12场")
            calc.save(out_dir / "tianfu_stray_lo.xlsx")

            calc = Calc(ctx, national, "附件1")
            first = calc.find_row(2, "数量指标\n质量指标\n时效指标\n成本指标")  # the merged 二级指标 cell
            calc.go(f"D{first + 3}")  # the group's 3rd row
            for _ in range(2):
                calc.run(".uno:InsertRowsBefore")
            for i, row in enumerate(NATIONAL):
                for col, text in zip("DEFGH", row, strict=True):
                    calc.type(f"{col}{first + 1 + i}", text)
            calc.save(out_dir / "cn_inserted_lo.xlsx")
            calc.desktop.terminate()
        finally:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
