"""A real review round: check, send the 审核 copy back, the unit fixes it in place, check and collect again."""

from __future__ import annotations

import re
import shutil
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from helpers import fill, recalc_with_libreoffice, soffice
from published import corrected_dept_inputs, dept_published
from seed_data import DEPT_IDENTITY

from xlsx_kpi.batch.check import audit_file, current_submissions, find_workbooks
from xlsx_kpi.cli import main
from xlsx_kpi.formats.layout import build_layout
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.outputs.annotate.fallback import (
    ERROR_FILL,
    REVIEW_FILLS,
    annotated_name,
    is_untouched_copy,
    review_round,
)
from xlsx_kpi.outputs.template import write_template

needs_lo = pytest.mark.skipif(soffice() is None, reason="LibreOffice is not installed")

NAME = "资阳_部门.xlsx"
# The unit's mistake in the first round: 绩效目标合理性 (2 分) scored 3.
WRONG = ("附件1", "F5")
OLD_MESSAGE = "“绩效目标合理性（2分）”自评 3 分，超过本项分值 2 分"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def members(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith((".xml", ".vml", ".rels"))}


def comments_text(path: Path) -> str:
    return "".join(text for name, text in members(path).items() if re.search(r"comments\d*\.xml$", name))


def sheet_xml(path: Path, sheet: str) -> str:
    """The XML of the worksheet called `sheet`, found through workbook.xml and its relationships."""
    parts = members(path)
    rid = re.search(rf'<sheet [^>]*name="{sheet}"[^>]*r:id="([^"]+)"', parts["xl/workbook.xml"])
    assert rid is not None, sheet
    for rel in re.findall(r"<Relationship [^>]*>", parts["xl/_rels/workbook.xml.rels"]):
        if f'Id="{rid.group(1)}"' in rel:
            target = re.search(r'Target="([^"]+)"', rel)
            assert target is not None
            name = target.group(1).lstrip("/")
            return parts[name if name.startswith("xl/") else "xl/" + name]
    raise AssertionError(sheet)


def cell_fill(path: Path, sheet: str, a1: str) -> str:
    """The solid fill RGB (6 hex digits) the cell's style gives it, read from the sheet and styles XML."""
    cell = re.search(rf'<c r="{a1}"(?: [^>]*?)?(?: s="(\d+)")?[^>]*?/?>', sheet_xml(path, sheet))
    assert cell is not None, a1
    head = cell.group(0)
    style = re.search(r' s="(\d+)"', head)
    styles = members(path)["xl/styles.xml"]
    xfs = re.findall(r"<xf [^>]*>", styles.split("<cellXfs", 1)[1].split("</cellXfs>", 1)[0])
    fill_id = re.search(r'fillId="(\d+)"', xfs[int(style.group(1)) if style else 0])
    assert fill_id is not None
    fills = re.findall(r"<fill>.*?</fill>|<fill/>", styles.split("<fills", 1)[1].split("</fills>", 1)[0], re.S)
    rgb = re.search(r'fgColor rgb="(?:FF)?([0-9A-Fa-f]{6})"', fills[int(fill_id.group(1))])
    return rgb.group(1).upper() if rgb else ""


@pytest.fixture(scope="module")
def first_round(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The unit's first submission: corrected seed figures with one score above its maximum."""
    inputs = corrected_dept_inputs()
    inputs["s.goal_fit.score"] = Decimal(3)
    folder = tmp_path_factory.mktemp("round") / "回收"
    path = dept_published(catalog, folder, inputs=inputs, written={}, name=NAME)
    return path.rename(path.with_name(NAME))  # formulas intact: published() names it clean_...


def test_names_of_the_rounds() -> None:
    assert annotated_name(Path("x.xlsx")) == "x_审核.xlsx"
    assert annotated_name(Path("x_审核.xlsx")) == "x_审核2.xlsx"
    assert annotated_name(Path("x_审核2.xlsx")) == "x_审核3.xlsx"
    assert review_round(Path("a_审核_审核.xlsx")) == ("a_审核", 1)
    assert review_round(Path("资阳_部门_审核 (1).xlsx")) == ("资阳_部门", 1)
    assert review_round(Path("资阳_部门_审核2（已改）.xlsx")) == ("资阳_部门", 2)
    assert annotated_name(Path("资阳_部门_审核 (1).xlsx")) == "资阳_部门_审核2.xlsx"
    assert review_round(Path("资阳_部门.xlsx")) == ("资阳_部门", 0)
    assert review_round(Path("_审核.xlsx")) == ("_审核", 0)


@needs_lo
def test_round_trip(first_round: Path, catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "回收"
    shutil.copytree(first_round.parent, folder)
    original = folder / NAME

    # Round 1: check marks the score, and its copy is recognised as our own untouched output.
    code, out = run(capsys, "check", str(folder))
    assert code == 1, out
    copy = folder / "资阳_部门_审核.xlsx"
    assert is_untouched_copy(copy) and not is_untouched_copy(original)
    assert cell_fill(copy, *WRONG) == ERROR_FILL
    assert OLD_MESSAGE in comments_text(copy)
    assert find_workbooks([folder]) == [original]  # our fresh copy is never input

    # The unit fixes the red cell in the copy itself and saves it (here: openpyxl, then LibreOffice,
    # which recalculates and saves as the unit's Calc would), and e-mails it back under the same name.
    wb = openpyxl.load_workbook(copy)
    wb[WRONG[0]][WRONG[1]] = 2
    edited = tmp_path / "unit" / copy.name
    edited.parent.mkdir()
    wb.save(edited)
    [saved] = recalc_with_libreoffice([edited], tmp_path / "lo")
    shutil.copy(saved, copy)
    assert not is_untouched_copy(copy)

    # Round 2: the returned copy is the unit's newest submission and is audited; the original is not.
    assert current_submissions(find_workbooks([folder]))[0] == [copy]
    code, out = run(capsys, "check", str(folder))
    assert code == 0, out
    assert "重复报送：采用最新保存的 资阳_部门_审核.xlsx，未审核较早的 资阳_部门.xlsx" in out
    again = folder / "资阳_部门_审核2.xlsx"
    assert is_untouched_copy(again)
    # No stale marks: the old 批注 and the red fill are gone from the fixed cell; one 审核结果 sheet.
    assert OLD_MESSAGE not in comments_text(again)
    assert "超过本项分值" not in comments_text(again)
    assert cell_fill(again, *WRONG) == "E2EFDA"  # the template's input green
    fills = {cell_fill(again, "附件1", f"F{r}") for r in range(5, 32)}
    assert ERROR_FILL not in fills
    wb2 = openpyxl.load_workbook(again)
    assert wb2.sheetnames.count("审核结果") == 1 and wb2.sheetnames[0] == "审核结果"
    assert wb2["附件1"]["F5"].value == 2 and wb2["附件1"]["F5"].comment is None
    assert not any(
        c.fill.fgColor.rgb[-6:] in REVIEW_FILLS and c.comment is None
        for ws in wb2.worksheets[1:]
        for row in ws.iter_rows()
        for c in row
        if c.fill.fill_type == "solid" and isinstance(c.fill.fgColor.rgb, str)
    )

    # The returned copy named alone is checked too (it used to exit 2: "工作簿中已有“审核结果”工作表").
    code, out = run(capsys, "check", str(copy), "--out-dir", str(tmp_path / "alone"))
    assert code == 0, out
    assert (tmp_path / "alone" / "资阳_部门_审核2.xlsx").is_file()

    # A third run finds the unit's two files and our two fresh copies: still only the return is used.
    code, out = run(capsys, "check", str(folder), "--force")
    assert code == 0 and "资阳_部门_审核3.xlsx" not in out
    assert sorted(p.name for p in folder.iterdir()) == [
        "资阳_部门.xlsx",
        "资阳_部门_审核.xlsx",
        "资阳_部门_审核2.xlsx",
    ]

    # collect: the unit has submitted; the return is its current submission, the original listed as older.
    units = tmp_path / "units.csv"
    units.write_text("单位名称,预算单位编码\n资阳市科学技术协会,156001\n", encoding="utf-8")
    summary = tmp_path / "汇总.xlsx"
    code, out = run(capsys, "collect", str(folder), "--units", str(units), "-o", str(summary))
    assert code == 0, out
    assert "未报送" not in out
    assert "重复报送：采用 资阳_部门_审核.xlsx，未采用 资阳_部门.xlsx" in out
    ws = openpyxl.load_workbook(summary)["未报送"]
    assert [c.value for c in ws["A"] if c.value == "资阳市科学技术协会"] == []


def test_an_edited_copy_is_never_overwritten(
    first_round: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The original saved after the return: it is audited, and its copy's name is taken by the unit's file."""
    folder = tmp_path / "回收"
    shutil.copytree(first_round.parent, folder)
    run(capsys, "check", str(folder))
    copy = folder / "资阳_部门_审核.xlsx"
    wb = openpyxl.load_workbook(copy)
    wb.save(copy)  # the unit saved it: no longer our untouched copy
    unit_bytes = copy.read_bytes()
    wb = openpyxl.load_workbook(folder / NAME)
    wb.save(folder / NAME)  # ... and then saved the original again, later
    code, out = run(capsys, "check", str(folder), "--force")
    assert code == 2, out  # the copy could not be written
    assert "重复报送：采用最新保存的 资阳_部门.xlsx，未审核较早的 资阳_部门_审核.xlsx" in out
    assert "已有同名文件且不是本工具生成的审核副本" in out
    assert copy.read_bytes() == unit_bytes


def test_out_dir_inside_the_folder_is_not_input(
    first_round: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "回收"
    shutil.copytree(first_round.parent, folder)
    out_dir = folder / "审核"
    run(capsys, "check", str(folder), "--out-dir", str(out_dir))
    wb = openpyxl.load_workbook(out_dir / "资阳_部门_审核.xlsx")
    wb.save(out_dir / "资阳_部门_审核.xlsx")  # edited, but inside --out-dir: still our output folder
    assert find_workbooks([folder], skip=[out_dir]) == [folder / NAME]
    assert len(find_workbooks([folder])) == 2


# -- what the unit printed --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def text_score(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A score typed as text ("1分") in Calc, which recalculates: its SUM leaves the 1 out of the total."""
    if soffice() is None:
        pytest.skip("LibreOffice is not installed")
    folder = tmp_path_factory.mktemp("printed")
    layout = build_layout(catalog, catalog.workbook("sc-department"), DEPT_IDENTITY)
    template = write_template(layout, folder / "template.xlsx")
    inputs = corrected_dept_inputs()
    inputs["s.budget_adjustment.score"] = "1分"
    (folder / "in").mkdir()
    filled = fill(template, layout, inputs, folder / "in" / "资阳_文字分数.xlsx")
    [saved] = recalc_with_libreoffice([filled], folder / "lo")
    return saved


def test_printed_total_differs_from_recalculation(text_score: Path, catalog: Catalog, tmp_path: Path) -> None:
    checked = audit_file(text_score, catalog)
    found = {(f.where, f.code): f for f in checked.report.findings}
    total = found[("附件1!F32", "printed-mismatch")]
    assert total.severity.value == "错误"
    # Calc printed 93.35 (the “1分” left out), the tool recalculates 94.35.
    assert (total.actual, total.expected) == ("93.35", "94.35")
    assert "工作簿显示（打印）为 93.35，按填写内容重算为 94.35" in total.message
    assert ("附件1!F11", "score-as-text") in found
    # The summary's 填报 column shows what the unit printed.
    assert checked.written["s.total"] == Decimal("93.35")
    assert checked.values["s.total"] == Decimal("94.35")


def test_review_marks_win_over_the_self_check(text_score: Path, catalog: Catalog, tmp_path: Path) -> None:
    """The text score is self-checked red by the template; our 提示 there must print blue, so the
    self-check's conditional format on that cell is dropped in the copy (the others stay)."""
    out = tmp_path / "copy.xlsx"
    shutil.copy(text_score, tmp_path / text_score.name)
    checked = audit_file(tmp_path / text_score.name, catalog)
    assert checked.report.annotated is not None
    shutil.copy(checked.report.annotated, out)
    sqrefs = re.findall(r'<conditionalFormatting sqref="([^"]+)"', sheet_xml(out, "附件1"))
    marked = {f.cell for f in checked.report.findings if f.sheet == "附件1"}
    assert {"F11", "F32"} <= marked  # score-as-text (提示) and printed-mismatch (错误)
    # Cells we mark lose the template's self-check format; unmarked cells (F5 绩效目标合理性) keep theirs.
    assert not marked & set(sqrefs) and "F5" in sqrefs and "F6" in sqrefs
