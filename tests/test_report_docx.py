"""Drafting the 自评报告: outline order, figures from the recalculation, fill-in places, A4 PDF in LibreOffice."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from docx import Document
from docx.enum.text import WD_COLOR_INDEX
from docx.oxml.ns import qn
from helpers import soffice
from published import corrected_dept_inputs, dept_published, kechuang_full_inputs, published

from xlsx_kpi.cli import main
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.selfreport.draft import write_draft

D = Decimal
WRITER = Path("/usr/lib/libreoffice/program/libswlo.so")
needs_writer = pytest.mark.skipif(
    soffice() is None
    or shutil.which("pdftotext") is None
    or (Path("/usr/lib/libreoffice").exists() and not WRITER.exists()),
    reason="LibreOffice Writer and poppler are needed; .ci/run installs them",
)


@pytest.fixture(scope="module")
def workbook(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    v = corrected_dept_inputs()
    v.update({"b.tp_budget": D(12), "b.tp_budget_prev": D(0), "b.tp_actual": D(12)})
    return dept_published(catalog, tmp_path_factory.mktemp("draft_wb"), v, written={}, name="资阳_部门.xlsx")


def texts(path: Path) -> list[str]:
    doc = Document(str(path))
    return [p.text for p in doc.paragraphs if p.text.strip()]


def test_draft_follows_the_outline_with_recalculated_figures(workbook: Path, catalog: Catalog, tmp_path: Path) -> None:
    out = tmp_path / "自评报告.docx"
    before = hashlib.sha256(workbook.read_bytes()).hexdigest()
    d = write_draft(workbook, out, catalog)
    assert hashlib.sha256(workbook.read_bytes()).hexdigest() == before
    lines = texts(out)
    assert lines[0] == "资阳市科学技术协会2021年度部门整体支出绩效自评报告"
    headings = [t for t in lines if t[:2] in ("一、", "二、", "三、", "四、")]
    assert headings == ["一、部门基本情况", "二、部门财政资金收支情况", "三、部门整体绩效情况", "四、评价结论及建议"]
    assert "2021年，本部门预算数368.08万元，执行数484.13万元，预算执行率131.53%。" in lines
    assert "当年结转结余额29.22万元，结转结余率6.04%。" in lines
    assert "上年度结转结余额145.26万元，结转结余变动率-79.88%。" in lines
    assert (
        "投入指标（20分）自评得分16.35分；过程指标（30分）自评得分29分；产出指标（30分）自评得分30分；效果指标（20分）自评得分20分。"
        in lines
    )
    assert "经自评，本部门2021年度部门整体支出绩效自评得分合计95.35分，自评等级为优。" in lines
    assert d.fill_count == 9
    doc = Document(str(out))
    budget = doc.tables[0]
    assert [c.text for c in budget.rows[1].cells] == ["合计", "368.08", "484.13", "131.53%", "29.22", "6.04%"]
    indicators = doc.tables[1]
    assert [c.text for c in indicators.rows[3].cells] == [
        "举行全民科学素质大赛",
        "质量指标",
        "≥5.5万人次",
        "=5.6万人次",
        "无偏差",
    ]
    # Fill-in places are highlighted; Chinese glyphs come from the eastAsia font; the page is A4.
    fills = [r for p in doc.paragraphs for r in p.runs if r.text.startswith("【请填写：")]
    assert len(fills) == 9 and all(r.font.highlight_color == WD_COLOR_INDEX.YELLOW for r in fills)
    assert fills[0].text == "【请填写：机构性质、内设机构和下属单位】"
    rfonts = doc.paragraphs[0].runs[0]._element.rPr.find(qn("w:rFonts"))
    assert rfonts.get(qn("w:eastAsia")) == "黑体"
    section = doc.sections[0]
    assert (round(section.page_width.cm, 1), round(section.page_height.cm, 1)) == (21.0, 29.7)


def test_project_draft_lists_deviations_as_problems(catalog: Catalog, tmp_path: Path) -> None:
    wb = published(catalog, tmp_path, "sc-project", kechuang_full_inputs(), {}, "科创会.xlsx")
    out = tmp_path / "项目报告.docx"
    write_draft(wb, out, catalog)
    lines = texts(out)
    assert lines[0] == "资阳市科学技术协会2021年度“科创会”专项经费项目支出绩效自评报告"
    assert "2021年，本项目预算数106.00万元，执行数76.78万元，预算执行率72.43%。" in lines
    assert "1. “首届科创中国-天府科技云服务大会专项经费”指标值≤80万元，执行结果=76.78万元。结余3.22万元" in lines
    assert "1. 针对“首届科创中国-天府科技云服务大会专项经费”：【请填写：改进措施】" in lines


def test_cli_report_refuses_to_overwrite(capsys: pytest.CaptureFixture[str], workbook: Path, tmp_path: Path) -> None:
    out = tmp_path / "自评报告.docx"
    assert main(["report", str(workbook), "-o", str(out)]) == 0
    assert "已起草自评报告" in capsys.readouterr().out
    assert main(["report", str(workbook), "-o", str(out)]) == 2
    captured = capsys.readouterr()
    assert "文件已存在；如需覆盖请加 --force" in captured.out + captured.err
    assert main(["report", str(workbook), "-o", str(out), "--force"]) == 0


@pytest.mark.libreoffice
@needs_writer
def test_draft_renders_to_a_readable_a4_pdf(workbook: Path, catalog: Catalog, tmp_path: Path) -> None:
    out = tmp_path / "自评报告.docx"
    write_draft(workbook, out, catalog)
    profile = tmp_path / "lo_profile"
    subprocess.run(
        [
            soffice() or "soffice",
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path),
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    pdf = tmp_path / "自评报告.pdf"
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    assert 3 <= pages <= 5
    assert "595.3" in info and "841.89" in info  # A4 in points
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    squashed = "".join(text.split())
    assert "自评得分合计95.35分，自评等级为优" in squashed
    assert "预算数368.08万元" in squashed
    assert "【请填写：" in squashed


def test_python_docx_does_not_switch_openpyxl_to_lxml() -> None:
    # python-docx needs lxml; openpyxl would then parse untrusted workbooks with lxml instead of defusedxml.
    import openpyxl.xml

    assert openpyxl.xml.LXML is False
    assert openpyxl.xml.DEFUSEDXML is True


def test_cli_report_bad_input_is_one_chinese_sentence(
    capsys: pytest.CaptureFixture[str], workbook: Path, tmp_path: Path
) -> None:
    assert main(["report", str(tmp_path / "没有.xlsx"), "-o", str(tmp_path / "r.docx")]) == 2
    captured = capsys.readouterr()
    assert "没有.xlsx" in captured.out + captured.err and "Traceback" not in captured.out + captured.err
    assert main(["report", str(workbook), "-o", str(tmp_path / "r.txt")]) == 2
    captured = capsys.readouterr()
    assert "报告文件名须以 .docx 结尾" in captured.out + captured.err
    assert not (tmp_path / "r.docx").exists() and not (tmp_path / "r.txt").exists()
