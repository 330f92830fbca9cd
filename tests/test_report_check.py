"""The 自评报告 checker: the seed's report against its workbook, a draft against itself, the grammar of figures."""

from __future__ import annotations

import hashlib
import json
import sys
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from published import corrected_dept_inputs, dept_published, kechuang_full_inputs, published
from seed_data import cn_inputs

from xlsx_kpi.audit.rules import REGISTRY
from xlsx_kpi.batch.check import Options, check_file
from xlsx_kpi.cli import main
from xlsx_kpi.errors import SpecError
from xlsx_kpi.formats.outline import load_outline, outline_for
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.outputs.review import annotated_name
from xlsx_kpi.selfreport.check import check_report, report_alone
from xlsx_kpi.selfreport.draft import gather, write_draft
from xlsx_kpi.selfreport.statements import evaluate

sys.path.insert(0, str(Path(__file__).parent / "data"))
from make_reports import seed_paragraphs, seed_report, write_report  # noqa: E402

D = Decimal


def seed_inputs() -> dict[str, object]:
    """The corrected seed-000 department workbook, with its “三公经费” figures (seed lines 125, 412: 0.12 万元)."""
    v = corrected_dept_inputs()
    v.update({"b.tp_budget": D(12), "b.tp_budget_prev": D(0), "b.tp_actual": D(12)})
    return v  # type: ignore[return-value]


@pytest.fixture(scope="module")
def workbook(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report_wb")
    return dept_published(catalog, folder, seed_inputs(), written={}, name="资阳_部门.xlsx")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def seed_doc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed_report(tmp_path_factory.mktemp("seed_doc"))


def with_report(workbook: Path, catalog: Catalog, doc: Path) -> list[tuple[str, str, str, str]]:
    options = Options(annotate=False, reports=((doc, doc.stem),), match_any=True)
    report = check_file(workbook, catalog, options)
    return [(f.code, f.cell, f.expected, f.actual) for f in report.findings if f.code.startswith("report-")]


def test_seed_report_contradicts_its_tables(workbook: Path, catalog: Catalog, seed_doc: Path) -> None:
    found = with_report(workbook, catalog, seed_doc)
    # 财政拨款总收入 360.08 万元 (第23段) against the 368.08 万元 budget of 附件2 and of the report's own formulas.
    assert ("report-figure-mismatch", "第23段", "368.08万元", "360.08万元") in found
    assert ("report-contradiction", "第38段", "360.08万元", "368.08") in found
    # The “三公经费” budget: 1195/2000 in the report, 0.12 万元 (12 百元) in the workbook; the rate 59.75 % vs 100 %.
    assert ("report-figure-mismatch", "第44段", "0.12万元", "2000") in found
    assert ("report-figure-mismatch", "第44段", "100.00%", "59.75%") in found
    # 1195 (元) is the 0.12 万元 actually spent: not a finding.
    assert not [f for f in found if f[3] == "1195"]
    assert len(found) == 6


def test_draft_from_the_same_workbook_has_no_report_finding(workbook: Path, catalog: Catalog, tmp_path: Path) -> None:
    doc = tmp_path / "草稿.docx"
    write_draft(workbook, doc, catalog)
    assert with_report(workbook, catalog, doc) == []
    # Quiet because the figures agree, not because nothing was read.
    d = gather(workbook, catalog)
    check = check_report(doc, outline=outline_for(d.workbook_id), draftable=d)
    assert check.stated("budget") == [D("368.08"), D("368.08")]
    assert check.stated("total") == [D("95.35"), D("95.35"), D("95.35")]
    assert check.stated("grade") == ["优", "优"]
    assert check.stated("carry_rate") == [D("6.04"), D("6.04")]


def test_a_report_alone_gets_its_internal_checks(seed_doc: Path) -> None:
    report = report_alone(seed_doc)
    assert report.flatten("code", "cell", "actual") == [
        ("report-contradiction", "第38段", "368.08"),
        ("report-contradiction", "第41段", "484.13"),
    ]
    assert report.findings[0].file == str(seed_doc)
    assert report.findings[0].where == f"{seed_doc.name} 第38段"


def paragraphs(tmp_path: Path, *texts: str) -> Path:
    return write_report(list(texts), tmp_path / "报告.docx")


def codes(path: Path) -> list[tuple[str, str, str]]:
    return [(f.code, f.expected, f.actual) for f in check_report(path).findings]


def test_stated_computations_are_recomputed(tmp_path: Path) -> None:
    doc = paragraphs(
        tmp_path,
        "结转结余率=结转结余总额/执行数×100%=29.22/484.13×100%=6.14%，得1分；",
        "“三公经费”支出决算为1.10万元，比上年增加0.10万元，增长12.0%。",
        "区科协年初收入预算163.68万元，其中：上年结转0.84万元，占0%；一般公共预算拨款收入163.68万元，占100%。",
        "得分=5*(1-33%)=3.35分；预算完成率=(484.13/368.08)×100%=131.53%。",
    )
    assert codes(doc) == [
        ("report-calc-mismatch", "6.04%", "6.14%"),
        ("report-calc-mismatch", "10.0%", "12.0%"),
        ("report-calc-mismatch", "164.52万元", "163.68万元"),
    ]


def test_units_decimals_and_full_width_digits_are_tolerated(tmp_path: Path) -> None:
    doc = paragraphs(
        tmp_path,
        "本部门预算数368.08万元。",
        "预算数为３６８.１万元，预算数3,680,800元，预算数36808百元。",
        "执行数484.13万元。执行数485万元。",
    )
    # 368.1 万元 rounds like 368.08 at one decimal; 485 万元 is not 484.13 at any precision.
    assert codes(doc) == [("report-contradiction", "484.13万元", "485万元")]


def test_arithmetic_as_written() -> None:
    assert evaluate("(484.13/ 368.08)×100%").quantize(D("0.0001")) == D("1.3153")
    assert evaluate("[(29.22-145.26)/145.26]×100%").quantize(D("0.0001")) == D("-0.7988")
    assert evaluate("5*(1-33%)") == D("3.35")
    with pytest.raises(ArithmeticError):
        evaluate("1/0")


def test_cli_check_with_report_json_and_annotated_copy(
    capsys: pytest.CaptureFixture[str], workbook: Path, seed_doc: Path, tmp_path: Path
) -> None:
    before = hashlib.sha256(seed_doc.read_bytes()).hexdigest()
    code = main(["check", str(workbook), "--report", str(seed_doc), "--json", "--out-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    files = json.loads(out)["files"]
    assert len(files) == 1
    mine = [f for f in files[0]["findings"] if f["code"].startswith("report-")]
    assert {f["file"] for f in mine} == {str(seed_doc)}
    assert hashlib.sha256(seed_doc.read_bytes()).hexdigest() == before
    ws = openpyxl.load_workbook(tmp_path / annotated_name(workbook))["审核结果"]
    cells = [str(c.value) for row in ws.iter_rows() for c in row if c.value is not None]
    assert f"{seed_doc.name} 第23段" in cells
    assert any("“2021年，市科协财政拨款总收入360.08万元。”" in c for c in cells)


def test_cli_a_broken_report_is_named_and_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "报告.docx"
    bad.write_text("not a word file", encoding="utf-8")
    code = main(["check", str(bad)])
    text = capsys.readouterr().out
    assert code == 2
    assert "不是有效的 .docx 文件" in text and "报告.docx" in text


def test_folder_matches_report_to_workbook(
    capsys: pytest.CaptureFixture[str], workbook: Path, seed_doc: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "回收"
    folder.mkdir()
    (folder / workbook.name).write_bytes(workbook.read_bytes())
    (folder / seed_doc.name).write_bytes(seed_doc.read_bytes())
    code = main(["check", str(folder), "--json", "--no-annotate"])
    files = json.loads(capsys.readouterr().out)["files"]
    assert code == 1
    assert [Path(f["file"]).name for f in files] == [workbook.name]
    assert sum(1 for f in files[0]["findings"] if f["code"].startswith("report-")) == 6


def test_a_bad_outline_fails_when_loaded(tmp_path: Path) -> None:
    shipped = outline_for("sc-department").path
    text = Path(shipped).read_text(encoding="utf-8").replace("{carry_rate}", "{carry_ratio}", 1)
    bad = tmp_path / "report-outline-x.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError, match="(?s)report-outline-x.yaml.*carry_ratio"):
        load_outline(bad)


def test_readme_documents_the_report_commands_and_rules() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    for text in ("xlsx-kpi report", "xlsx-kpi check 回收/资阳_部门.xlsx --report", "report-patterns.yaml"):
        assert text in readme, text
    for code in REGISTRY:
        if code.startswith("report-"):
            assert f"`{code}`" in readme, code


def test_a_workbook_kind_without_outline_gets_a_clear_message(
    capsys: pytest.CaptureFixture[str], catalog: Catalog, tmp_path: Path
) -> None:
    wb = published(catalog, tmp_path, "cn-department", cn_inputs(), {}, "雁峰.xlsx")
    code = main(["report", str(wb), "-o", str(tmp_path / "r.docx")])
    captured = capsys.readouterr()
    assert code == 2
    assert "没有适用于表种 cn-department 的自评报告提纲" in captured.out + captured.err
    assert not (tmp_path / "r.docx").exists()


def test_project_draft_is_quiet_and_its_fund_rows_are_told_apart(catalog: Catalog, tmp_path: Path) -> None:
    wb = published(catalog, tmp_path, "sc-project", kechuang_full_inputs(), {}, "科创会.xlsx")
    doc = tmp_path / "项目报告.docx"
    write_draft(wb, doc, catalog)
    d = gather(wb, catalog)
    check = check_report(doc, outline=outline_for(d.workbook_id), draftable=d)
    assert check.findings == []
    # 其他资金 0.00 万元 in 表1 is not the project's 106.00 万元 budget; 财政拨款 is its own figure.
    assert check.stated("budget") == [D("106.00"), D("106.00")]
    assert check.stated("fiscal_budget") == [D("106.00")]
    assert check.stated("total") == [D("98.5"), D("98.5"), D("98.5")]


def test_satisfaction_is_checked_against_the_satisfaction_indicator(
    workbook: Path, catalog: Catalog, tmp_path: Path
) -> None:
    # 基础数据 has no 满意率; 附件2 has one 满意度指标, 企业及群众满意度 = 90%.
    doc = paragraphs(
        tmp_path,
        "经问卷调查，群众满意度达95%。",
        "企业及群众满意度实际完成90%。",
        "举行全民科学素质大赛，实际完成5.8万人次。",
    )
    assert sorted(with_report(workbook, catalog, doc)) == [
        ("report-contradiction", "第2段", "95%", "90%"),
        ("report-figure-mismatch", "第1段", "90.00%", "95%"),
        ("report-indicator-mismatch", "第3段", "=5.6万人次", "5.8万人次"),
    ]


@pytest.mark.parametrize(
    ("seed", "lines", "expected"),
    [
        # 攀枝花 2022: 56.26 万元 after a fall of 14.38 万元 is a fall of 20.36 % (of 70.64), not 25.56 % (of 56.26).
        ("001_0d19dafe2b241ba3.txt", (1, 280), [("report-calc-mismatch", "第68段", "20.36%", "25.56%")]),
        # The 范本: 收入预算 163.68 万元, 其中 0.84 + 163.68 + 0 + 0 万元 = 164.52 万元.
        ("003_6691143b3720193a.txt", (1, 72), [("report-calc-mismatch", "第13段", "164.52万元", "163.68万元")]),
        # 雁峰区 2021 (narrative after its table): nothing the checker can fault.
        ("002_3dc9b7e5bd2009d6.txt", (188, 400), []),
    ],
)
def test_other_seed_reports_alone(
    seed: str, lines: tuple[int, int], expected: list[tuple[str, ...]], tmp_path: Path
) -> None:
    doc = write_report(seed_paragraphs(lines=lines, file=seed), tmp_path / f"{seed}.docx")
    assert report_alone(doc).flatten("code", "cell", "expected", "actual") == expected


def test_an_indicator_score_after_its_rate_is_checked(workbook: Path, catalog: Catalog, tmp_path: Path) -> None:
    doc = paragraphs(
        tmp_path,
        "预算完成率=（预算完成数/预算数）×100%=(484.13/368.08）×100%=131.53%，得3分；三公经费较上年增加，得4分；",
        "结转结余率6.04%，得1分。",
    )
    # 附件1 gives 预算完成率 4 分; “得4分” after 三公经费 (no rate of its own there) binds to nothing.
    assert with_report(workbook, catalog, doc) == [("report-score-mismatch", "第1段", "4分", "3分")]
    d = gather(workbook, catalog)
    check = check_report(doc, outline=outline_for(d.workbook_id), draftable=d)
    assert check.stated("score:exec_rate") == [D(3)]
    assert check.stated("score:carry_rate") == [D(1)]


def test_folder_report_of_another_unit_is_checked_alone(
    capsys: pytest.CaptureFixture[str], workbook: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "回收"
    folder.mkdir()
    (folder / workbook.name).write_bytes(workbook.read_bytes())
    write_report(
        ["雁峰区科学技术协会2021年度部门整体支出绩效自评报告", "本部门预算数100.00万元。", "预算数为120.00万元。"],
        folder / "雁峰区科协报告.docx",
    )
    code = main(["check", str(folder), "--json", "--no-annotate"])
    files = json.loads(capsys.readouterr().out)["files"]
    assert code == 1
    assert [(Path(f["file"]).name, f["workbook"]) for f in files] == [
        (workbook.name, "sc-department"),
        ("雁峰区科协报告.docx", "自评报告"),
    ]
    assert not [x for x in files[0]["findings"] if x["code"].startswith("report-")]
    assert [(x["code"], x["cell"], x["actual"]) for x in files[1]["findings"]] == [
        ("report-contradiction", "第3段", "120.00万元")
    ]
