"""The whole round in a real browser (Debian's chromium, driven by Playwright), with screenshots at 1366x768."""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook

playwright_api = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")

from xlsx_kpi.web import create_app  # noqa: E402

expect = playwright_api.expect

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
DEPT = next(p for p in (ROOT / "examples").glob("*.xlsx") if "部门整体" in p.name)
PROJECT = next(p for p in (ROOT / "examples").glob("*.xlsx") if "项目支出" in p.name)
UNITS = ROOT / "examples" / "单位清单.csv"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDTH, HEIGHT = 1366, 768

if not Path(CHROMIUM).exists():
    pytest.skip("chromium is not installed (.ci/run installs it)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    app = create_app(tmp_path_factory.mktemp("web") / "data", workers=1)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app
    srv.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $XLSX_KPI_SCREENSHOTS if set (to keep them), else a temporary folder."""
    folder = Path(os.environ.get("XLSX_KPI_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def snap(page: object, shots: Path, name: str) -> None:
    """A screenshot of the first screen; the page must fit 1366 px wide (no sideways scrolling)."""
    page.wait_for_load_state("load")  # type: ignore[attr-defined]
    for attempt in range(3):
        try:
            page.screenshot(path=str(shots / f"{name}.png"))  # type: ignore[attr-defined]
            break
        except playwright_api.Error:
            # Headless chromium now and then answers "Unable to capture screenshot" right after a navigation.
            if attempt == 2:
                raise
            time.sleep(0.5)
    width = page.evaluate("document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    assert width <= WIDTH, f"{name}: page is {width} px wide"


def test_round_in_the_browser(server: tuple[str, object], browser: object, shots: Path, tmp_path: Path) -> None:
    base, app = server
    web = app.state.web  # type: ignore[attr-defined]
    ctx = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}, accept_downloads=True)  # type: ignore[attr-defined]
    page = ctx.new_page()

    # First start: the setup code from the console, then the password.
    page.goto(base + "/")
    assert page.url == base + "/setup"
    snap(page, shots, "00-setup")
    page.fill("input[name=code]", web.setup_code)
    page.fill("input[name=password]", "office-password")
    page.fill("input[name=password2]", "office-password")
    page.click("button[type=submit]")
    assert page.url == base + "/review"

    # Log out and in again with the password.
    page.click("header .logout button")
    assert page.url == base + "/login"
    snap(page, shots, "01-login")
    page.fill("input[name=password]", "office-password")
    page.click("button[type=submit]")
    assert page.url == base + "/review"
    snap(page, shots, "02-dashboard")

    # 下发: the unit list, then all templates as one zip.
    page.click("nav >> text=下发")
    page.set_input_files("input[name=units]", str(UNITS))
    page.click("button:has-text('上传单位清单')")
    expect(page.locator("table.grid tbody tr")).to_have_count(3)
    page.select_option("select[name=spec]", "sc-department")
    page.fill("input[name=year]", "2022")
    page.click("button:has-text('确定')")
    snap(page, shots, "03-issue")
    with page.expect_download() as dl:
        page.click("#download-all")
    zipped = tmp_path / "templates.zip"
    dl.value.save_as(zipped)
    with zipfile.ZipFile(zipped) as z:
        names = sorted(z.namelist())
        assert names == [
            "2022_156001_资阳市科学技术协会_部门整体支出绩效自评.xlsx",
            "2022_156002_资阳市示例单位_部门整体支出绩效自评.xlsx",
        ]
        wb = load_workbook(io.BytesIO(z.read(names[1])))
        assert "附件1" in wb.sheetnames

    # 回收: the two example workbooks, a progress page that refreshes itself until done.
    page.click("nav >> text=回收")
    page.set_input_files("input[name=files]", [str(DEPT), str(PROJECT)])
    page.click("button:has-text('上传并审核')")
    assert re.search(r"/review/batch/\d+$", page.url)
    page.wait_for_selector("text=全部审核完成：2 / 2", timeout=90_000)
    snap(page, shots, "04-batch")

    page.click("nav >> text=回收")
    expect(page.locator("#batch-table tbody tr")).to_have_count(2)
    page.click("#batch-table th >> text=合计")  # sorted by total, descending
    expect(page.locator("#batch-table th >> text=合计")).to_contain_text("▼")
    totals = page.locator("#batch-table tbody tr td:nth-child(6)").all_inner_texts()
    assert totals == ["98.5", "95.35"]
    assert "156002" in page.locator("#missing").inner_text()  # 资阳市示例单位 has not filed
    snap(page, shots, "05-collect")

    # One submission: the seed's known errors at their cells, each linked to its sheet context.
    page.click(f"#batch-table >> text={PROJECT.name}")
    findings = page.locator("#findings").inner_text()
    assert "附件2!E15" in findings and "rate-without-base" in findings and "附件1!F25" in findings
    snap(page, shots, "06-submission")
    page.click("#findings >> text=附件2!E15")
    expect(page.locator("#cell-value")).to_have_text("38.06%")
    assert page.inner_text("#cell-context td.target") == "38.06%"
    snap(page, shots, "07-cell")
    page.go_back()
    with page.expect_download() as dl:
        page.click("#download-annotated")
    annotated = tmp_path / dl.value.suggested_filename
    dl.value.save_as(annotated)
    assert annotated.name.endswith("_审核.xlsx")
    wb = load_workbook(annotated)
    assert "审核结果" in wb.sheetnames
    assert wb["附件2"]["E15"].comment is not None and "基数为0" in wb["附件2"]["E15"].comment.text

    # 汇总: the summary workbook, and the unit's years with a chart.
    page.click("nav >> text=汇总")
    page.select_option("select[name=year]", "2021")
    with page.expect_download() as dl:
        page.click("#download-summary")
    summary = tmp_path / "汇总.xlsx"
    dl.value.save_as(summary)
    ws = load_workbook(summary)["汇总"]
    cells = [c.value for row in ws.iter_rows() for c in row]
    assert "资阳市科学技术协会" in cells and 95.35 in cells and 98.5 in cells
    snap(page, shots, "08-summary")
    page.click("a:has-text('历年对比')")
    expect(page.locator("svg.chart polyline")).to_have_count(2)
    snap(page, shots, "09-history")

    # Unit links: generated, shown once as a printable list.
    page.click("nav >> text=单位链接")
    snap(page, shots, "10-links")
    page.click("button:has-text('为尚无有效链接的单位生成链接')")
    expect(page.locator("#new-links tbody tr")).to_have_count(2)
    links = dict(
        zip(
            page.locator("#new-links tbody td:nth-child(1)").all_inner_texts(),
            page.locator("#new-links tbody td.url").all_inner_texts(),
            strict=True,
        )
    )
    assert sorted(links) == ["156001", "156002"]
    assert "只能在本机打开" in page.inner_text("main")  # opened as 127.0.0.1: the reviewer is warned
    snap(page, shots, "11-new-links")

    # A unit's browser: no reviewer session, only its link.
    unit_ctx = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}, accept_downloads=True)  # type: ignore[attr-defined]
    unit = unit_ctx.new_page()
    unit.goto(links["156002"])
    assert "资阳市示例单位" in unit.inner_text("h1")
    unit.set_input_files("input[name=files]", str(DEPT))
    unit.click("button:has-text('上传并审核')")
    unit.wait_for_selector("#findings", timeout=90_000)
    assert "附件2!F7" in unit.inner_text("#findings")
    # The workbook is 156001's: the unit is told, without being shown any other unit's name.
    assert "与本链接的单位（156002）不符" in unit.inner_text("main")
    unit_submission = unit.url
    sid = unit_submission.rsplit("/", 1)[1]
    with unit.expect_download() as dl:
        unit.click("#download-annotated")
    own = tmp_path / "unit" / dl.value.suggested_filename
    own.parent.mkdir()
    dl.value.save_as(own)
    assert own.name == DEPT.name.replace(".xlsx", "_审核.xlsx")
    assert load_workbook(own)["审核结果"] is not None
    unit.goto(links["156002"])
    listed = unit.inner_text("#unit-submissions")
    assert DEPT.name in listed and PROJECT.name not in listed
    body = unit.inner_text("body")
    assert "资阳市科学技术协会" in body  # the name written in its own workbook
    assert "98.5" not in body  # nothing of the reviewer's uploads
    snap(unit, shots, "12-unit")

    # Another unit's token, a wrong token: 404 on every unit page and download.
    other = links["156001"].rsplit("/", 1)[1]
    for token in (other, "x" * 32):
        for path in (f"/s/{sid}", f"/s/{sid}/cell/1", f"/s/{sid}/annotated", f"/s/{sid}/original"):
            assert unit_ctx.request.get(f"{base}/u/{token}{path}").status == 404, (token, path)
    assert unit_ctx.request.get(f"{base}/u/{'x' * 32}").status == 404
    assert unit_ctx.request.get(f"{base}/review/s/{sid}/annotated", max_redirects=0).status == 303
    unit.goto(f"{base}/u/{other}/s/{sid}")
    assert "页面不存在" in unit.inner_text("h1")
    unit_ctx.close()
    ctx.close()
