"""Issue 12, the second corpus: no crash, no silent misread, no unsafe export, and one file never stops a batch.

The corpus cases themselves (tests/bad_inputs/make_corpus.py, "Round 2") run in test_bad_inputs.py; here are
the outcomes that need more than one command or a disk that fills up.
"""

from __future__ import annotations

import csv
import errno
import html
import json
import os
import re
import sqlite3
import sys
import time
import zipfile
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest

sys.path.insert(0, str(Path(__file__).parent / "bad_inputs"))

from make_corpus import NON_UTF8_NAME, expected_json, make_corpus  # noqa: E402
from published import corrected_dept_inputs, dept_published  # noqa: E402

from xlsx_kpi import api
from xlsx_kpi.audit.cells import to_inputs  # noqa: E402
from xlsx_kpi.audit.reader import read_workbook  # noqa: E402
from xlsx_kpi.audit.values import parse_percent  # noqa: E402
from xlsx_kpi.batch import check as audit
from xlsx_kpi.cli import main  # noqa: E402
from xlsx_kpi.formats.identity import NOT_DIGESTED, identity_digest, identity_rows  # noqa: E402
from xlsx_kpi.formats.layout import build_layout  # noqa: E402
from xlsx_kpi.formats.plan import Identity  # noqa: E402
from xlsx_kpi.formats.spec import Catalog  # noqa: E402
from xlsx_kpi.outputs.template import write_template  # noqa: E402
from xlsx_kpi.outputs.template_batch import BatchWriter  # noqa: E402
from xlsx_kpi.safe_text import FORMULA_PREFIXES, looks_like_formula, neutralise  # noqa: E402
from xlsx_kpi.store import history

ROOT = Path(__file__).resolve().parents[1]
HOSTILE_UNIT = '=HYPERLINK("http://example.com","点我")'
HOSTILE_CODE = "@156001"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog) -> Path:
    folder = tmp_path_factory.mktemp("corpus2")
    make_corpus(folder, catalog)
    return folder


@pytest.fixture(autouse=True)
def quick_cli(monkeypatch: pytest.MonkeyPatch, catalog: Catalog) -> None:
    monkeypatch.setattr(api, "load_catalog", lambda sheets=None: catalog)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def formulas(path: Path) -> Counter[str]:
    found: Counter[str] = Counter()
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                xml = zf.read(name).decode("utf-8")
                found.update(html.unescape(f) for f in re.findall(r"<f(?:\s[^>]*)?>(.*?)</f>", xml, re.S))
    return found


def formula_looking_cells(path: Path) -> list[tuple[str, str, bool]]:
    """(sheet!cell, text, quotePrefix) of every text cell that starts like a formula (formulas: see `formulas`)."""
    out = []
    for ws in openpyxl.load_workbook(path).worksheets:
        for row in ws.iter_rows():
            for c in row:
                if c.data_type == "s" and isinstance(c.value, str) and looks_like_formula(c.value):
                    out.append((f"{ws.title}!{c.coordinate}", c.value, bool(c.quotePrefix)))
    return out


# --- 2. formula injection: one rule in every export ------------------------------------------------------


def test_every_injection_prefix_is_neutralised_in_every_export(
    catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real submission whose identity and every text cell start with = + - @ tab or CR."""
    wb = catalog.workbook("sc-department")
    layout = build_layout(catalog, wb, Identity(year=2021, unit_name=HOSTILE_UNIT, unit_code=HOSTILE_CODE))
    inputs = corrected_dept_inputs()
    texts = sorted(k for k, c in layout.cells.items() if c.role == "input" and c.input_type in ("text", "longtext"))
    typed = {k: f"{FORMULA_PREFIXES[i % len(FORMULA_PREFIXES)]}1+1 {k}" for i, k in enumerate(texts)}
    typed["info.unit_name"] = "+资阳市科学技术协会"  # differs from the template: a finding that quotes it
    typed["info.unit_code"] = HOSTILE_CODE
    folder = tmp_path / "回收"
    source = write_template(layout, folder / "hostile.xlsx", inputs={**inputs, **typed})
    assert len(texts) == 158

    # check --json: the JSON keeps the text raw.
    code, out, _ = run(["check", str(source), "--json", "--out-dir", str(tmp_path / "审核"), "--workers", "1"], capsys)
    assert code == 1
    [report] = json.loads(out)["files"]
    assert (report["unit_name"], report["unit_code"]) == (HOSTILE_UNIT, HOSTILE_CODE)
    mismatch = [f for f in report["findings"] if f["code"] == "identity-mismatch"]
    assert [(f["cell"], f["actual"], f["expected"]) for f in mismatch] == [("C3", "+资阳市科学技术协会", HOSTILE_UNIT)]

    # The annotated copy: the unit's cells as they were, our cells with Excel's apostrophe, no new formula.
    copy = Path(report["annotated"])
    assert formulas(copy) == formulas(source)
    ours = [c for c in formula_looking_cells(copy) if c[0].startswith("审核结果!")]
    assert ("审核结果!C3", HOSTILE_UNIT, True) in ours
    assert ("审核结果!C4", HOSTILE_CODE, True) in ours
    assert any(text == "+资阳市科学技术协会" for _, text, _ in ours)
    assert all(quoted for _, _, quoted in ours)

    # collect: the summary quotes every formula-looking text it writes; no formula of ours carries it.
    summary, db = tmp_path / "汇总.xlsx", tmp_path / "h.sqlite"
    code, _, _ = run(["collect", str(folder), "-o", str(summary), "--db", str(db)], capsys)
    assert code == 1
    cells = formula_looking_cells(summary)
    assert ("汇总!A4", HOSTILE_UNIT, True) in cells and ("汇总!B4", HOSTILE_CODE, True) in cells
    assert any(c[0].startswith("问题清单!") and c[1] == "+资阳市科学技术协会" for c in cells)
    assert all(quoted for _, _, quoted in cells)
    assert not any("example.com" in f for f in formulas(summary))

    # history --csv: the apostrophe as a character, in every column.
    export = tmp_path / "历史.csv"
    assert run(["history", "--db", str(db), "--csv", str(export)], capsys)[0] == 0
    with export.open(encoding="utf-8-sig", newline="") as fh:
        [header, row] = list(csv.reader(fh))
    record = dict(zip(header, row, strict=True))
    assert (record["unit_name"], record["unit_code"]) == ("'" + HOSTILE_UNIT, "'" + HOSTILE_CODE)
    for key, text in typed.items():
        assert record[key] == "'" + text, key
    # Only numbers (Decimal figures such as -0.7988) may start with "-": Excel reads them as numbers.
    assert [f for f in row if f.startswith(FORMULA_PREFIXES) and not re.fullmatch(r"-[0-9.]+", f)] == []
    assert sum(1 for f in row if f.startswith("'")) == len(typed) + 2

    # history --json stays raw.
    code, out, _ = run(["history", "--unit", HOSTILE_CODE, "--db", str(db), "--json"], capsys)
    assert (code, json.loads(out)["unit_name"]) == (0, HOSTILE_UNIT)


def test_neutralise_is_the_one_rule() -> None:
    assert [neutralise(p + "1+1") for p in FORMULA_PREFIXES] == ["'=1+1", "'+1+1", "'-1+1", "'@1+1", "'\t1+1", "'\r1+1"]
    assert neutralise("资阳市科学技术协会") == "资阳市科学技术协会"
    assert neutralise(NON_UTF8_NAME) == "资阳市科协自评表.xlsx"


# --- 1. lone surrogates, 3. file names that are not UTF-8 ------------------------------------------------


def test_a_lone_surrogate_is_read_as_a_replacement_character_and_collected(
    corpus: Path, catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    filing = read_workbook(corpus / "lone_surrogate.xlsx", catalog)
    values = to_inputs(filing)
    assert (values["info.unit_name"], values["s.goal_fit.basis"]) == ("测试单位\ufffd", "依据充分\ufffd")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.xlsx").write_bytes((corpus / "lone_surrogate.xlsx").read_bytes())
    summary, db = tmp_path / "汇总.xlsx", tmp_path / "h.sqlite"
    code, _, _ = run(["collect", str(folder), "-o", str(summary), "--db", str(db)], capsys)
    assert code == 1 and summary.is_file()
    with sqlite3.connect(db) as conn:
        [(stored,)] = conn.execute("SELECT inputs FROM submission").fetchall()
    assert json.loads(stored)["info.unit_name"] == "测试单位\ufffd"


def test_a_gbk_file_name_is_collected_and_shown_decoded(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / NON_UTF8_NAME).write_bytes((corpus / NON_UTF8_NAME).read_bytes())
    summary, db = tmp_path / "汇总.xlsx", tmp_path / "h.sqlite"
    code, out, _ = run(["collect", str(folder), "-o", str(summary), "--db", str(db)], capsys)
    assert code == 0
    ws = openpyxl.load_workbook(summary)["汇总"]
    names = [c for c in ws[4] if c.value == "资阳市科协自评表.xlsx"]
    assert len(names) == 1 and names[0].hyperlink is None  # no link can name the GBK bytes
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT file_name FROM submission").fetchall() == [("资阳市科协自评表.xlsx",)]
    # check --json: the name as \udcxx escapes, which JSON reads back as the very path on disk.
    code, out, _ = run(["check", str(folder), "--json", "--no-annotate"], capsys)
    assert code == 0
    assert json.loads(out)["files"][0]["file"] == str(folder / NON_UTF8_NAME)


# --- 4. a full disk --------------------------------------------------------------------------------------


class _Disk:
    """Files opened for writing anywhere under `folder` share `free` bytes; the write that crosses it fails."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, folder: Path, free: int) -> None:
        self.free = free
        real_open = open
        disk = self

        class Filling:
            def __init__(self, f: Any) -> None:
                self._f = f

            def write(self, data: Any) -> int:
                if len(data) > disk.free:
                    self._f.write(bytes(data)[: disk.free] if isinstance(data, bytes | bytearray) else data[:0])
                    disk.free = 0
                    raise OSError(errno.ENOSPC, "No space left on device")
                disk.free -= len(data)
                return int(self._f.write(data))

            def __getattr__(self, name: str) -> Any:
                return getattr(self._f, name)

            def __enter__(self) -> Filling:
                return self

            def __exit__(self, *exc: object) -> None:
                self._f.close()

        def filling_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            f = real_open(file, mode, *args, **kwargs)
            if isinstance(file, str | os.PathLike) and set(mode) & set("wax+") and folder in Path(file).parents:
                return Filling(f)
            return f

        monkeypatch.setattr("builtins.open", filling_open)
        monkeypatch.setattr("io.open", filling_open)


def test_full_disk_while_writing_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "汇总"
    out.mkdir()
    _Disk(monkeypatch, out, 10_000)
    code, _, err = run(
        ["collect", str(ROOT / "examples"), "-o", str(out / "汇总.xlsx"), "--db", str(tmp_path / "h.db")], capsys
    )
    assert code == 2
    assert f"错误：文件 {out / '汇总.xlsx'}：无法写入：磁盘空间不足（No space left on device）" in err.replace("\n", "")
    assert list(out.iterdir()) == []


# XlsxWriter's abandoned zip retries its end record when collected, on the same full disk.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_full_disk_while_writing_one_template(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real XlsxWriter (its FileCreateError wraps the OSError), not a stand-in."""
    _Disk(monkeypatch, tmp_path, 10_000)
    target = tmp_path / "模板.xlsx"
    args = ["template", "-k", "department", "-y", "2021", "-u", "资阳市科学技术协会", "-c", "156001", "-o", str(target)]
    code, _, err = run(args, capsys)
    assert code == 2 and "无法写入：磁盘空间不足（No space left on device）" in err.replace("\n", "")
    assert list(tmp_path.iterdir()) == []


def _units(path: Path, rows: int) -> Path:
    lines = ["单位名称,预算单位编码", *(f"单位{i},{100000 + i}" for i in range(rows))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# XlsxWriter's abandoned zip retries its end record when collected, on the same full disk.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_full_disk_during_a_units_batch_leaves_nothing_and_the_rerun_needs_no_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    units = _units(tmp_path / "单位.csv", 3)
    out = tmp_path / "模板"
    out.mkdir()
    args = ["template", "-k", "department", "-y", "2021", "--units", str(units), "--out-dir", str(out)]
    with monkeypatch.context() as m:
        _Disk(m, out, 45_000)  # room for one template and a half
        code, _, err = run(args, capsys)
    assert code == 2 and "磁盘空间不足" in err
    # The file named is the unit's, not the staging folder's copy or the probe written in it.
    assert str(out / "2021_100000_单位0_部门整体支出绩效自评.xlsx") in err.replace("\n", "")
    assert list(out.iterdir()) == []  # neither templates nor the staging folder
    assert run(args, capsys)[0] == 0
    assert len(list(out.glob("*.xlsx"))) == 3


def test_an_interrupted_units_batch_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    units = _units(tmp_path / "单位.csv", 3)
    out = tmp_path / "模板"
    args = ["template", "-k", "department", "-y", "2021", "--units", str(units), "--out-dir", str(out)]
    real = BatchWriter.write  # one unit's template (patched from its shape's, or written directly)
    calls: list[Path] = []

    def interrupted(self: BatchWriter, ident: Any, path: Path) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(self, ident, path)

    monkeypatch.setattr(BatchWriter, "write", interrupted)
    assert run(args, capsys)[0] == 130
    assert list(out.iterdir()) == []
    monkeypatch.setattr(BatchWriter, "write", real)
    assert run(args, capsys)[0] == 0


def test_the_units_duplicate_check_is_linear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    units = _units(tmp_path / "单位.csv", 100_000)
    with units.open("a", encoding="utf-8") as fh:
        fh.write("单位99999,199999\n")
    start = time.monotonic()
    code, _, err = run(
        ["template", "-k", "department", "--units", str(units), "--out-dir", str(tmp_path / "o")], capsys
    )
    assert time.monotonic() - start < 15  # ~5 s on a loaded 2-core VM; the quadratic check gave no answer after 90 s
    assert code == 2 and "单位清单中有重复的单位/项目，会生成同名文件：" in err and "199999_单位99999" in err
    assert not (tmp_path / "o").exists()


def test_full_disk_when_the_history_database_is_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's own "database or disk is full" (a page limit of 1): a clear message and no 0-byte database."""
    real = sqlite3.connect

    def full(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real(*args, **kwargs)
        conn.execute("PRAGMA max_page_count = 1")
        return conn

    monkeypatch.setattr(history.sqlite3, "connect", full)
    db, summary = tmp_path / "历史.sqlite", tmp_path / "汇总.xlsx"
    code, _, err = run(["collect", str(ROOT / "examples"), "-o", str(summary), "--db", str(db)], capsys)
    assert code == 2
    assert f"错误：文件 {db}：无法创建或打开历史数据库：磁盘空间不足（database or disk is full）" in err.replace(
        "\n", ""
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# --- 7. identity, 11. percentages ---------------------------------------------------------------------


def test_the_identity_digest_covers_every_identity_field(catalog: Catalog) -> None:
    layout = build_layout(catalog, catalog.workbook("sc-project"), Identity(year=2021, unit_name="甲", unit_code="1"))
    meta = dict(identity_rows(layout))
    digest = meta.pop("identity")
    assert identity_digest(meta) == digest
    covered = [name for name in meta if name not in NOT_DIGESTED]
    assert {"workbook_id", "year", "unit_name", "unit_code", "project_name", "rows", "fingerprint"} <= set(covered)
    for name in covered:
        assert identity_digest({**meta, name: meta[name] + "x"}) != digest, name
    assert identity_digest({**meta, "tool_version": "9.9"}) == digest  # a newer tool reads an older template


def test_a_typed_95_and_the_text_95_read_the_same(corpus: Path, catalog: Catalog) -> None:
    values = to_inputs(read_workbook(corpus / "percent_typed_95.xlsx", catalog))
    assert values["b.econ_degree"] == values["b.social_degree"] == Decimal("0.95")
    assert parse_percent(95)[0].value == parse_percent("95")[0].value == Decimal("0.95")
    assert parse_percent(0.95)[0].value == parse_percent("95%")[0].value == Decimal("0.95")


# --- the generic guard ------------------------------------------------------------------------------------


def test_an_unexpected_error_fails_only_its_file(
    catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "in"
    good = dept_published(catalog, folder, name="good.xlsx")
    (folder / "bad.xlsx").write_bytes(good.read_bytes())
    real = audit.run_rules

    def breaks(ctx: Any) -> Any:
        if ctx.filing.path.name == "bad.xlsx":
            raise RuntimeError("a bug")
        return real(ctx)

    monkeypatch.setattr(audit, "run_rules", breaks)
    code, out, _ = run(["check", str(folder), "--json", "--no-annotate", "--workers", "1"], capsys)
    assert code == 2
    batch = json.loads(out)
    reports = {Path(r["file"]).name: r for r in batch["files"]}
    assert reports["bad.xlsx"]["error"] == (
        f"文件 {folder / 'bad.xlsx'}：审核时发生意外错误（RuntimeError），已跳过此文件；请检查该文件或将其发给维护人员"
    )
    assert reports["bad.xlsx"]["findings"] == [] and reports["bad.xlsx"]["unit_name"] == ""
    assert reports["good.xlsx"]["counts"]["错误"] == 4
    assert batch["summary"]["files"] == 2 and batch["summary"]["unusable"] == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the workers inherit the patched function through fork")
def test_a_failing_worker_fails_only_its_file(
    catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "in"
    good = dept_published(catalog, folder, name="a.xlsx")
    for name in ("b.xlsx", "c.xlsx", "bad.xlsx"):
        (folder / name).write_bytes(good.read_bytes())
    real = audit.audit_file  # what every worker runs (check_file calls it too)

    def breaks(path: Path, *args: Any, **kwargs: Any) -> Any:
        if path.name == "bad.xlsx":
            raise MemoryError
        return real(path, *args, **kwargs)

    monkeypatch.setattr(audit, "audit_file", breaks)
    code, out, _ = run(["check", str(folder), "--json", "--no-annotate", "--workers", "2"], capsys)
    assert code == 2
    reports = {Path(r["file"]).name: r for r in json.loads(out)["files"]}
    assert sorted(reports) == ["a.xlsx", "b.xlsx", "bad.xlsx", "c.xlsx"]
    assert "审核时发生意外错误（MemoryError）" in reports["bad.xlsx"]["error"]
    assert [reports[n]["counts"]["错误"] for n in ("a.xlsx", "b.xlsx", "c.xlsx")] == [4, 4, 4]


# --- the corpus recipe and its expectations ---------------------------------------------------------------


def test_expected_json_is_current() -> None:
    """tests/bad_inputs/expected.json is CASES as JSON; regenerate: python tests/bad_inputs/make_corpus.py OUT."""
    shipped = (ROOT / "tests" / "bad_inputs" / "expected.json").read_bytes()
    assert shipped == expected_json().encode("utf-8", "backslashreplace")
    cases = json.loads(shipped)
    assert {c["name"]: (c["exit_code"], c["message"]) for c in cases}["row_out_of_order.xlsx"] == (2, "行的顺序错乱")
