"""The command line: messages in Chinese, exit codes, batch generation, never a traceback."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from xlsx_kpi.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    return code, text


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_one_unit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, text = run(
        capsys,
        "template",
        "--kind",
        "department",
        "--year",
        "2021",
        "--unit",
        "资阳市科学技术协会",
        "--code",
        "156001",
        "--out-dir",
        str(tmp_path),
    )
    assert code == 0
    path = tmp_path / "2021_156001_资阳市科学技术协会_部门整体支出绩效自评.xlsx"
    assert f"已生成模板：{path}" in text
    assert openpyxl.load_workbook(path)["附件2"]["C3"].value == "资阳市科学技术协会"


def test_refuses_to_overwrite_without_force(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = ["template", "-k", "部门", "-y", "2021", "-u", "某单位", "-c", "001", "-o", str(tmp_path / "a.xlsx")]
    assert run(capsys, *args)[0] == 0
    before = sha(tmp_path / "a.xlsx")
    code, text = run(capsys, *args)
    assert code == 2
    assert "a.xlsx" in text and "文件已存在；如需覆盖请加 --force" in text
    assert sha(tmp_path / "a.xlsx") == before
    assert run(capsys, *args, "--force")[0] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["template", "--kind", "foo", "--unit", "x", "--code", "1"], "未知的表种 'foo'"),
        (["template", "--unit", "x", "--code", "1"], "请用 --kind 指定表种"),
        (["template", "--kind", "department", "--code", "1"], "请用 --unit 指定单位名称"),
        (["template", "--kind", "department", "--unit", "x"], "请用 --code 指定预算单位编码"),
        (["template", "--kind", "project", "--unit", "x", "--code", "1"], "项目支出表请用 --project 指定项目名称"),
        (
            ["template", "--kind", "project", "--unit", "x", "--code", "1", "-p", "p", "--project-type", "其他"],
            "项目类型“其他”无效",
        ),
        (["template", "--kind", "department", "--year", "二〇二一", "--unit", "x", "--code", "1"], "不是数字"),
        (["template", "--kind", "department", "--year", "21", "--unit", "x", "--code", "1"], "年度 21 不合理"),
        (["template", "--kind", "department", "--units", "没有这个文件.csv"], "单位清单文件不存在"),
        (["template", "--kind", "department", "-u", "x", "-c", "1", "-o", "x.xls"], "输出文件名须以 .xlsx 结尾"),
        (["template", "--bogus"], "没有选项 --bogus"),
        (["specs", "--sheets", "/nonexistent"], "没有表种规格"),
    ],
)
def test_bad_arguments_get_a_chinese_message_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    code, text = run(capsys, *args)
    assert code == 2
    assert message in text


def test_batch_from_a_gbk_csv(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    units = tmp_path / "单位清单.csv"
    units.write_bytes(
        "单位名称,预算单位编码,项目名称,项目类型\n资阳市科学技术协会,156001,“科创会”专项经费,产业发展\n"
        "资阳市科学技术协会,156001,院士专家工作站,民生保障\n".encode("gb18030")
    )
    code, text = run(
        capsys, "template", "-k", "project", "-y", "2021", "--units", str(units), "--out-dir", str(tmp_path / "out")
    )
    assert code == 0
    assert "已生成 2 个模板" in text
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [
        "2021_156001_资阳市科学技术协会_“科创会”专项经费_项目支出绩效自评.xlsx",
        "2021_156001_资阳市科学技术协会_院士专家工作站_项目支出绩效自评.xlsx",
    ]
    ws = openpyxl.load_workbook(tmp_path / "out" / names[1])["附件2"]
    assert ws["C3"].value == "院士专家工作站"
    assert [ws.cell(5, c).value for c in range(3, 7)] == [None, "√", None, None]
    code, text = run(
        capsys, "template", "-k", "project", "-y", "2021", "--units", str(units), "--out-dir", str(tmp_path / "out")
    )
    assert code == 2 and "2 个文件已存在，未生成任何文件" in text


def test_units_file_problems(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    book = tmp_path / "units.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["名称", "代码"])
    wb.active.append(["甲单位", "001"])
    wb.save(book)
    code, text = run(capsys, "template", "-k", "department", "--units", str(book))
    assert code == 2 and "须有“单位名称”和“预算单位编码”两列，现有列：名称、代码" in text
    bad = tmp_path / "units.csv"
    bad.write_text("单位名称,预算单位编码\n甲单位,\n", encoding="utf-8")
    code, text = run(capsys, "template", "-k", "department", "--units", str(bad))
    assert code == 2 and "第 2 行缺少预算单位编码" in text
    notxlsx = tmp_path / "fake.xlsx"
    notxlsx.write_text("not a workbook", encoding="utf-8")
    code, text = run(capsys, "template", "-k", "department", "--units", str(notxlsx))
    assert code == 2 and "无法读取单位清单" in text and "fake.xlsx" in text


def test_leading_zero_codes_survive(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    units = tmp_path / "u.csv"
    units.write_text("单位名称,预算单位编码\n甲单位,015001\n", encoding="utf-8")
    assert (
        run(capsys, "template", "-k", "department", "-y", "2025", "--units", str(units), "--out-dir", str(tmp_path))[0]
        == 0
    )
    ws = openpyxl.load_workbook(tmp_path / "2025_015001_甲单位_部门整体支出绩效自评.xlsx")["附件2"]
    assert ws["F3"].value == "015001"


def test_specs_lists_tables_with_sources(capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run(capsys, "specs")
    assert code == 0
    assert "sc-department" in text and "sc-project" in text
    assert "附件1：部门整体支出绩效自评计分表（sc-dept-score）  来源：000_04c96ce19f25fec9.txt 第 359–636 行" in text


def test_installed_command_runs() -> None:
    exe = Path(sys.executable).with_name("xlsx-kpi")
    result = subprocess.run([str(exe), "template", "--kind", "nope"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "未知的表种" in result.stderr and "Traceback" not in result.stderr
