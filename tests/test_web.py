"""The web app through Starlette's TestClient: auth, CSRF, limits, unit links, results from the same audit."""

from __future__ import annotations

import io
import json
import re
import socket
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook
from starlette.testclient import TestClient

from xlsx_kpi.errors import XlsxKpiError
from xlsx_kpi.web import Limits, create_app
from xlsx_kpi.web.security import hash_password, hash_token, verify_password
from xlsx_kpi.web.store import Store
from xlsx_kpi.web.uploads import expand_upload

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.xlsx"))
DEPT = next(p for p in EXAMPLES if "部门整体" in p.name)
PROJECT = next(p for p in EXAMPLES if "项目支出" in p.name)
UNITS = ROOT / "examples" / "单位清单.csv"
PASSWORD = "correct horse"
SMALL = Limits(request_bytes=2 * 1024 * 1024, file_bytes=512 * 1024, files=5, zip_members=3, unit_files=2)


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field on the page"
    return m.group(1)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def wait_done(store: Store, ids: list[int], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = [store.submission(i) for i in ids]
        if all(r is not None and r.state == "done" for r in rows):
            return
        time.sleep(0.2)
    raise AssertionError(f"submissions {ids} not audited in {timeout} s")


def login(client: TestClient) -> str:
    page = client.get("/login")
    r = client.post("/login", data={"csrf": csrf_of(page.text), "password": PASSWORD})
    assert r.status_code == 200 and r.url.path == "/review"
    return csrf_of(r.text)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(tmp_path_factory.mktemp("web") / "data", workers=1, password=PASSWORD, limits=SMALL)
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def store(client: TestClient) -> Store:
    return client.app.state.web.store  # type: ignore[attr-defined,no-any-return]


@pytest.fixture(scope="module")
def uploaded(client: TestClient, store: Store) -> dict[str, int]:
    """The two example workbooks uploaded by the reviewer and audited: file kind -> submission id."""
    csrf = login(client)
    files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in (DEPT, PROJECT)]
    r = client.post("/review/upload", data={"csrf": csrf}, files=files)
    assert r.status_code == 200 and r.url.path.startswith("/review/batch/")
    batch = int(r.url.path.rsplit("/", 1)[1])
    ids = [s.id for s in store.submissions(batch_id=batch)]
    wait_done(store, ids)
    by_name = {store.submission(i).name: i for i in ids}  # type: ignore[union-attr]
    return {"department": by_name[DEPT.name], "project": by_name[PROJECT.name]}


def test_password_is_hashed_with_scrypt() -> None:
    stored = hash_password("abcdefgh")
    assert stored.startswith("scrypt$16384$8$1$") and "abcdefgh" not in stored
    assert verify_password("abcdefgh", stored)
    assert not verify_password("abcdefgx", stored)


def test_reviewer_pages_need_login(tmp_path: Path) -> None:
    app = create_app(tmp_path / "d", workers=1, password=PASSWORD)
    c = TestClient(app)  # no lifespan: no workers needed for this
    for path in ("/review", "/review/collect", "/review/issue", "/review/links", "/review/summary", "/review/s/1"):
        r = c.get(path, follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, "/login"), path
    r = c.post("/review/upload", files=[("files", ("a.xlsx", b"x"))])
    assert r.status_code == 403 and "请先登录" in r.text


def test_wrong_password_and_throttle(tmp_path: Path) -> None:
    c = TestClient(create_app(tmp_path / "d", workers=1, password=PASSWORD))
    csrf = csrf_of(c.get("/login").text)
    for _ in range(5):
        r = c.post("/login", data={"csrf": csrf, "password": "wrong-password"})
        assert r.status_code == 401 and "密码不对" in r.text
    r = c.post("/login", data={"csrf": csrf, "password": PASSWORD})
    assert r.status_code == 401 and "登录失败次数过多" in r.text


def test_first_start_needs_the_setup_code(tmp_path: Path) -> None:
    app = create_app(tmp_path / "d", workers=1)
    c = TestClient(app)
    assert c.get("/", follow_redirects=False).headers["location"] == "/setup"
    code = app.state.web.setup_code
    assert re.fullmatch(r"[0-9a-f]{8}", code)
    csrf = csrf_of(c.get("/setup").text)
    r = c.post("/setup", data={"csrf": csrf, "code": "00000000", "password": "abcdefgh", "password2": "abcdefgh"})
    assert r.status_code == 400 and "设置码不对" in r.text
    r = c.post("/setup", data={"csrf": csrf, "code": code, "password": "short", "password2": "short"})
    assert r.status_code == 400 and "密码至少 8 位" in r.text
    r = c.post("/setup", data={"csrf": csrf, "code": code, "password": "abcdefgh", "password2": "abcdefgh"})
    assert r.url.path == "/review"
    assert app.state.web.store.get("password").startswith("scrypt$")
    # Set once: the setup page is gone, and the password logs in from a new browser.
    assert TestClient(app).get("/setup", follow_redirects=False).headers["location"] == "/login"


def test_session_cookie_flags(tmp_path: Path) -> None:
    c = TestClient(create_app(tmp_path / "d", workers=1, password=PASSWORD, secure_cookies=True))
    r = c.get("/login")
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self'" in r.headers["content-security-policy"]


def test_posts_without_csrf_are_refused(client: TestClient, store: Store) -> None:
    login(client)
    before = len(store.submissions())
    r = client.post("/review/upload", files=[("files", (DEPT.name, DEPT.read_bytes()))])
    assert r.status_code == 403 and "表单已过期" in r.text
    r = client.post("/review/upload", data={"csrf": "forged"}, files=[("files", (DEPT.name, DEPT.read_bytes()))])
    assert r.status_code == 403
    r = client.post("/logout", data={"csrf": "forged"})
    assert r.status_code == 403
    assert len(store.submissions()) == before


def test_examples_audited_as_check_does(client: TestClient, store: Store, uploaded: dict[str, int]) -> None:
    dept = store.submission(uploaded["department"])
    assert dept is not None
    assert (dept.unit_code, dept.workbook_id, dept.year, dept.total, dept.grade) == (
        "156001",
        "sc-department",
        "2021",
        "95.35",
        "优",
    )
    assert (dept.errors, dept.warnings, dept.status, dept.audits) == (4, 3, "有错误", 1)
    findings, contexts = store.findings(dept.id)
    assert [(f["sheet"] + "!" + f["cell"], f["code"]) for f in findings[:2]] == [
        ("附件2!F5", "rate-mismatch"),
        ("附件2!F7", "rate-mismatch"),
    ]
    assert (findings[1]["actual"], findings[1]["expected"]) == ("6.03%", "10.54%")
    assert (contexts[1]["value"], contexts[1]["row_label"], contexts[1]["col_label"]) == (
        "6.03%",
        "政策和项目支出",
        "结转结余率%",
    )
    page = text_of(client.get(f"/review/s/{dept.id}").text)
    assert "附件2!F7" in page and "应为 10.54%，填报为 6.03%" in page


def test_cell_context_page_of_the_project(client: TestClient, store: Store, uploaded: dict[str, int]) -> None:
    sid = uploaded["project"]
    findings, _ = store.findings(sid)
    n = [f["sheet"] + "!" + f["cell"] for f in findings].index("附件2!E15") + 1
    r = client.get(f"/review/s/{sid}/cell/{n}")
    assert r.status_code == 200
    page = text_of(r.text)
    assert "工作表 附件2" in page and "单元格 E15" in page and "文件中的值 38.06%" in page
    assert re.search(r'class="target sev-错误">38.06%</td>', r.text)


def test_downloads_are_recorded(client: TestClient, store: Store, uploaded: dict[str, int]) -> None:
    sid = uploaded["department"]
    r = client.get(f"/review/s/{sid}/annotated")
    assert r.status_code == 200
    assert "_%E5%AE%A1%E6%A0%B8.xlsx" in r.headers["content-disposition"]  # …_审核.xlsx
    wb = load_workbook(io.BytesIO(r.content))
    assert "审核结果" in wb.sheetnames
    row = store.submission(sid)
    assert row is not None and row.annotated_sha256 is not None
    events = [(e["action"], e["sha256"], e["submission_id"]) for e in store.events()]
    assert ("下载审核副本", row.annotated_sha256, sid) in events
    assert ("上传", row.sha256, sid) in events
    # Stored by content hash, never by the uploaded name.
    stored = store.blob_path(row.sha256)
    assert stored.name == f"{row.sha256}.xlsx" and stored.read_bytes() == DEPT.read_bytes()
    assert not list(store.folder.rglob("*资阳*"))


def test_history_and_summary(client: TestClient, uploaded: dict[str, int]) -> None:
    r = client.get("/review/history", params={"unit": "156001"})
    assert r.status_code == 200 and "<svg" in r.text and "95.35" in r.text
    assert client.get("/review/history", params={"unit": "999999"}).status_code == 404
    r = client.get("/review/summary.xlsx", params={"year": "2021"})
    assert r.status_code == 200
    wb = load_workbook(io.BytesIO(r.content))
    ws = wb["汇总"]
    values = [c.value for row in ws.iter_rows() for c in row]
    assert "资阳市科学技术协会" in values and 95.35 in values


def test_unit_list_and_templates_zip(client: TestClient) -> None:
    csrf = login(client)
    r = client.post("/review/issue", data={"csrf": csrf}, files={"units": (UNITS.name, UNITS.read_bytes())})
    assert r.status_code == 200 and "资阳市示例单位" in r.text
    r = client.get("/review/templates", params={"spec": "sc-department", "year": "2025"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    names = sorted(zipfile.ZipFile(io.BytesIO(r.content)).namelist())
    assert names == [
        "2025_156001_资阳市科学技术协会_部门整体支出绩效自评.xlsx",
        "2025_156002_资阳市示例单位_部门整体支出绩效自评.xlsx",
    ]
    r = client.get("/review/templates", params={"spec": "sc-project", "year": "2025", "line": "3"})
    assert r.status_code == 200
    assert load_workbook(io.BytesIO(r.content))["附件1"] is not None
    r = client.get("/review/templates", params={"spec": "sc-project", "year": "20x5"})
    assert r.status_code == 400 and "四位年份" in r.text
    bad = "名称,备注\n甲,乙\n".encode()
    r = client.post("/review/issue", data={"csrf": csrf}, files={"units": ("清单.csv", bad)})
    assert r.status_code == 400 and "文件 清单.csv：单位清单须有“单位名称”和“预算单位编码”两列" in r.text


def make_links(client: TestClient, store: Store) -> dict[str, str]:
    csrf = login(client)
    r = client.post("/review/issue", data={"csrf": csrf}, files={"units": (UNITS.name, UNITS.read_bytes())})
    assert r.status_code == 200
    r = client.post("/review/links", data={"csrf": csrf, "action": "new"})
    found = re.findall(r"<td>(\d+)</td><td>[^<]*</td><td class=\"url\">http://testserver/u/([\w-]+)</td>", r.text)
    return dict(found)


def test_unit_links(client: TestClient, store: Store) -> None:
    links = make_links(client, store)
    assert sorted(links) == ["156001", "156002"]
    mine, other = links["156001"], links["156002"]
    # Only hashes are stored.
    assert store.query("SELECT 1 FROM unit WHERE token_hash = ?", (hash_token(mine),))
    assert not store.query("SELECT 1 FROM unit WHERE token_hash = ?", (mine,))
    unit = TestClient(client.app)  # a unit's browser: no reviewer session
    page = unit.get(f"/u/{mine}")
    assert page.status_code == 200 and "资阳市科学技术协会" in page.text and "资阳市示例单位" not in page.text
    r = unit.post(
        f"/u/{mine}/upload", data={"csrf": csrf_of(page.text)}, files=[("files", (PROJECT.name, PROJECT.read_bytes()))]
    )
    assert r.status_code == 200
    sid = int(r.url.path.rsplit("/", 1)[1])
    wait_done(store, [sid])
    r = unit.get(f"/u/{mine}/s/{sid}")
    assert "附件2!E15" in text_of(r.text) and "下载审核副本" in r.text
    assert unit.get(f"/u/{mine}/s/{sid}/annotated").status_code == 200
    # The other unit's link, a wrong token, and no token see nothing of it.
    paths = [f"/s/{sid}", f"/s/{sid}/cell/1", f"/s/{sid}/annotated", f"/s/{sid}/original"]
    for token, pages in ((other, paths), ("A" * 32, ["", *paths]), ("short", ["", *paths])):
        for path in pages:
            assert unit.get(f"/u/{token}{path}").status_code == 404, (token, path)
    for path in paths:
        assert unit.get(f"/u{path}").status_code == 404
    others = unit.get(f"/u/{other}").text
    assert "资阳市科学技术协会" not in others and PROJECT.name not in others and "还没有报送" in others
    # A unit's form posted with another unit's CSRF value is refused.
    other_csrf = csrf_of(unit.get(f"/u/{other}").text)
    r = unit.post(f"/u/{mine}/upload", data={"csrf": other_csrf}, files=[("files", (DEPT.name, DEPT.read_bytes()))])
    assert r.status_code == 403
    # The unit cannot reach reviewer pages.
    assert unit.get(f"/review/s/{sid}", follow_redirects=False).status_code == 303
    # Revoked: every page is gone.
    csrf = login(client)
    unit_id = store.unit_by_token_hash(hash_token(mine)).id  # type: ignore[union-attr]
    client.post("/review/links", data={"csrf": csrf, "action": "revoke", "unit": str(unit_id)})
    assert unit.get(f"/u/{mine}").status_code == 404
    assert unit.get(f"/u/{mine}/s/{sid}/annotated").status_code == 404


def test_upload_limits(client: TestClient, store: Store) -> None:
    csrf = login(client)
    before = len(store.submissions())
    # A request over the body limit: 413 before anything is stored.
    big = b"PK\x03\x04" + b"0" * (3 * 1024 * 1024)
    r = client.post("/review/upload", data={"csrf": csrf}, files=[("files", ("big.xlsx", big))])
    assert r.status_code == 413 and "一次上传不能超过 2 MB" in r.text
    # The same without a declared length (chunked): cut off as it streams in.
    boundary = "xlsxkpiboundary"

    def chunks() -> Iterator[bytes]:
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{csrf}\r\n'.encode()
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.xlsx"\r\n\r\n'.encode()
        for _ in range(48):
            yield b"0" * 65536

    r = client.post(
        "/review/upload", content=chunks(), headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    assert r.status_code == 413 and "一次上传不能超过 2 MB" in r.text
    # One file over the file limit is refused by name; the batch goes on with the rest.
    r = client.post(
        "/review/upload",
        data={"csrf": csrf},
        files=[("files", ("大.xlsx", b"0" * (600 * 1024))), ("files", (DEPT.name, DEPT.read_bytes()))],
    )
    assert r.status_code == 200 and "大.xlsx：文件超过 512 KB，未接收" in r.text
    # More files than allowed in one request.
    many = [("files", (f"{i}.xlsx", b"x")) for i in range(6)]
    r = client.post("/review/upload", data={"csrf": csrf}, files=many)
    assert r.status_code == 400 and "一次最多上传 5 个文件" in r.text
    assert len(store.submissions()) == before + 1
    sid = store.submissions()[-1].id
    assert client.get(f"/review/s/{sid}/other").status_code == 404


def test_expand_upload_guards() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(5):
            z.writestr(f"回收/{i}.xlsx", DEPT.read_bytes())
        z.writestr("说明.txt", "x")
        z.writestr("~$0.xlsx", "lock")
    taken, refused = expand_upload("回收.zip", buf.getvalue(), SMALL)
    assert [n for n, _ in taken] == ["0.xlsx", "1.xlsx", "2.xlsx"]
    returned = io.BytesIO()
    with zipfile.ZipFile(returned, "w") as z:
        z.writestr("单位_审核.xlsx", DEPT.read_bytes())  # an annotated copy the unit fixed and sent back
    assert [n for n, _ in expand_upload("r.zip", returned.getvalue(), SMALL)[0]] == ["单位_审核.xlsx"]
    assert refused == ["回收.zip：压缩包中超过 3 个工作簿，其余未接收"]
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("炸弹.xlsx", b"\0" * (400 * 1024))
    taken, refused = expand_upload("b.zip", bomb.getvalue(), SMALL)
    assert taken == [] and refused == ["b.zip/炸弹.xlsx：文件过大或压缩比异常，未接收"]
    # A workbook is a zip too: taken whole, not opened as an archive (the reader checks it).
    taken, refused = expand_upload(DEPT.name, DEPT.read_bytes(), SMALL)
    assert [n for n, _ in taken] == [DEPT.name] and refused == []
    taken, refused = expand_upload("改名.zip", DEPT.read_bytes(), SMALL)
    assert [n for n, _ in taken] == ["改名.zip"] and refused == []
    # Not a zip at all: taken, and the reader's sniffing names it at audit time.
    assert expand_upload("a.xlsx", b"name,code\n", SMALL) == ([("a.xlsx", b"name,code\n")], [])
    assert expand_upload("a.zip", b"name,code\n", SMALL) == ([], ["a.zip：不是有效的 zip 压缩包，未接收"])
    # Too many entries: refused (past the reader's member limit, before zipfile reads the directory).
    many = io.BytesIO()
    with zipfile.ZipFile(many, "w") as z:
        for i in range(13):
            z.writestr(f"{i}.txt", "")
    assert expand_upload("多.zip", many.getvalue(), SMALL) == ([], ["多.zip：压缩包中的文件过多（13 个），未接收"])


def test_gbk_names_in_zip() -> None:
    """Chinese Windows zip tools write GBK names without the UTF-8 flag (zipfile itself always sets it)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("XXXX.xlsx", DEPT.read_bytes())
    gbk = buf.getvalue().replace(b"XXXX.xlsx", "单位.xlsx".encode("gbk"))
    taken, _ = expand_upload("a.zip", gbk, SMALL)
    assert [n for n, _ in taken] == ["单位.xlsx"]


def test_not_a_workbook_gets_the_readers_message(client: TestClient, store: Store) -> None:
    csrf = login(client)
    r = client.post("/review/upload", data={"csrf": csrf}, files=[("files", ("清单.xlsx", "单位,编码\n".encode()))])
    batch = int(r.url.path.rsplit("/", 1)[1])
    ids = [s.id for s in store.submissions(batch_id=batch)]
    wait_done(store, ids)
    row = store.submission(ids[0])
    assert row is not None and row.status == "无法读取"
    assert row.error is not None and row.error.startswith("文件 清单.xlsx：") and "文本" in row.error
    assert str(store.folder) not in row.error


def test_static_assets_are_in_memory(client: TestClient) -> None:
    r = client.get("/static/app.css")
    assert r.status_code == 200 and "table.grid" in r.text
    assert client.get("/static/..%2fapp.py").status_code == 404
    assert client.get("/static/../store.py").status_code == 404


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    from xlsx_kpi.cli import main

    code = main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out + captured.err


def test_serve_refuses_bad_options(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, text = run_cli(capsys, "serve", "--port", "70000", "--data", str(tmp_path / "d"))
    assert code == 2 and "端口 70000 无效" in text
    code, text = run_cli(capsys, "serve", "--public-url", "192.168.1.20", "--data", str(tmp_path / "d"))
    assert code == 2 and "--public-url 应以 http:// 或 https:// 开头" in text
    code, text = run_cli(capsys, "serve", "--ssl-certfile", "cert.pem", "--data", str(tmp_path / "d"))
    assert code == 2 and "须同时指定 --ssl-certfile 和 --ssl-keyfile" in text
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, text = run_cli(capsys, "serve", "--port", str(port), "--data", str(tmp_path / "d"))
    assert code == 2 and f"无法在 127.0.0.1:{port} 上启动" in text and "--port" in text
    code, text = run_cli(capsys, "serve", "--port", str(port), "--data", str(tmp_path / "d"), "--units", "无.csv")
    assert code == 2 and "单位清单文件不存在" in text


def test_import_folder_skips_what_is_stored(tmp_path: Path) -> None:
    from xlsx_kpi.web import import_folder, load_unit_list

    store = Store(tmp_path / "d")
    assert import_folder(store, None, ROOT / "examples") == 2
    assert import_folder(store, None, ROOT / "examples") == 0  # a restart with the same --import adds nothing
    assert [s.state for s in store.submissions()] == ["queued", "queued"]
    assert load_unit_list(store, UNITS.read_bytes(), UNITS.name, "测试") == 3
    assert [(u.unit_code, u.unit_name) for u in store.units()] == [
        ("156001", "资阳市科学技术协会"),
        ("156002", "资阳市示例单位"),
    ]
    with pytest.raises(XlsxKpiError, match="文件 坏.csv：单位清单须有"):
        load_unit_list(store, "名称\n甲\n".encode(), "坏.csv", "测试")


def test_hostile_uploads_get_checks_answers(tmp_path: Path) -> None:
    """The bad-input corpus through the web: each file gets the reader's own answer; the good one is audited."""
    sys.path.insert(0, str(ROOT / "tests" / "bad_inputs"))
    from make_corpus import make_corpus

    corpus = tmp_path / "corpus"
    cases = {c.name: c for c in make_corpus(corpus)}
    chosen = [
        name
        for name in ("encrypted.xlsx", "renamed_xls.xlsx", "table.csv.xlsx", "truncated.xlsx", "photo.xlsx")
        if name in cases and cases[name].where == "error"
    ]
    chosen += [c.name for c in cases.values() if c.bomb and c.where == "error" and (corpus / c.name).is_file()][:3]
    assert len(chosen) >= 6
    app = create_app(tmp_path / "d", workers=1, password=PASSWORD)
    with TestClient(app) as c:
        csrf = login(c)
        files = [("files", (n, (corpus / n).read_bytes())) for n in [*chosen, "good.xlsx"]]
        r = c.post("/review/upload", data={"csrf": csrf}, files=files)
        assert r.status_code == 200
        store = app.state.web.store
        batch = int(r.url.path.rsplit("/", 1)[1])
        subs = store.submissions(batch_id=batch)
        wait_done(store, [s.id for s in subs], timeout=180)
        by_name = {s.name: store.submission(s.id) for s in subs}
    for name in chosen:
        row = by_name[name]
        assert row.status == "无法读取" and row.error is not None, name
        assert cases[name].message in row.error, (name, row.error)
        assert str(store.folder) not in row.error
    good = by_name["good.xlsx"]
    assert (good.status, good.errors, good.audits) == ("有错误", 4, 1)


def test_reset_password(tmp_path: Path) -> None:
    from xlsx_kpi.web import clear_password

    app = create_app(tmp_path / "d", workers=1, password=PASSWORD)
    assert app.state.web.setup_code is None
    app.state.web.store.close()
    clear_password(tmp_path / "d")
    again = create_app(tmp_path / "d", workers=1)
    assert again.state.web.setup_code is not None
    c = TestClient(again)
    assert c.get("/login", follow_redirects=False).headers["location"] == "/setup"
    assert ("清除密码", "服务器启动") in [(e["action"], e["who"]) for e in again.state.web.store.events()]


def test_batch_table_sorts_and_filters(client: TestClient, uploaded: dict[str, int]) -> None:
    login(client)
    r = client.get("/review/collect", params={"sort": "errors", "dir": "asc", "year": "2021"})
    rows = re.findall(r'<a href="/review/s/(\d+)">', r.text.split('id="missing"')[0])
    order = [int(x) for x in rows]
    assert order.index(uploaded["department"]) < order.index(uploaded["project"])  # 4 错误 before 7
    r = client.get("/review/collect", params={"sort": "errors", "dir": "desc", "year": "2021"})
    order = [int(x) for x in re.findall(r'<a href="/review/s/(\d+)">', r.text.split('id="missing"')[0])]
    assert order.index(uploaded["project"]) < order.index(uploaded["department"])
    r = client.get("/review/collect", params={"kind": "项目支出", "q": "科创会"})
    table = r.text.split('id="batch-table"')[1].split("</table>")[0]
    assert PROJECT.name in table and DEPT.name not in table
    r = client.get("/review/collect", params={"status": "通过"})
    assert "没有符合条件的报送" in r.text


def test_cross_workbook_findings_on_the_collect_page(
    client: TestClient, store: Store, uploaded: dict[str, int]
) -> None:
    """The department and its project of one unit and year: the cross rules run as `check` runs them on a folder."""
    login(client)
    r = client.get("/review/collect", params={"year": "2021"})
    cross = r.text.split('id="cross"')[1].split("</table>")[0]
    assert cross.count("projects-below-department") == 2
    assert "预算额合计 10,600 百元少于部门整体表" in cross and "相差 5,530 百元" in cross
    # Each file it names links to the submission used (the newest upload of that workbook).
    links = re.findall(r'<a href="/review/s/(\d+)">([^<]+)</a> (附件2![A-Z]+\d+)', cross)
    assert [(label, where) for _, label, where in links] == [
        ("部门整体", "附件2!C7"),
        ("“科创会”专项经费", "附件2!C8"),
        ("部门整体", "附件2!D7"),
        ("“科创会”专项经费", "附件2!D8"),
    ]
    names = {store.submission(int(sid)).name for sid, _, _ in links}  # type: ignore[union-attr]
    assert names == {DEPT.name, PROJECT.name}


def test_links_use_the_public_url(tmp_path: Path) -> None:
    app = create_app(tmp_path / "d", workers=1, password=PASSWORD, public_url="http://192.168.1.20:8765/")
    c = TestClient(app)  # no audits here: no lifespan, no workers
    csrf = login(c)
    c.post("/review/issue", data={"csrf": csrf}, files={"units": (UNITS.name, UNITS.read_bytes())})
    r = c.post("/review/links", data={"csrf": csrf, "action": "new"})
    urls = re.findall(r'<td class="url">([^<]+)</td>', r.text)
    assert len(urls) == 2 and all(re.fullmatch(r"http://192\.168\.1\.20:8765/u/[\w-]{32}", u) for u in urls)
    assert "只能在本机打开" not in r.text


def test_templates_with_rows_and_approved_targets(tmp_path: Path) -> None:
    """The 下发 page shapes templates as `template --units --rows --targets` does (the same shaped())."""
    app = create_app(tmp_path / "d", workers=1, password=PASSWORD)
    c = TestClient(app)  # templates are written in the request: no workers needed
    csrf = login(c)
    c.post("/review/issue", data={"csrf": csrf}, files={"units": (UNITS.name, UNITS.read_bytes())})
    targets = (
        "预算单位编码,项目名称,指标组,三级指标,预算指标值\n156001,“科创会”专项经费,数量指标,举办科创大会场次,≥1场\n"
    )
    r = c.post("/review/issue", data={"csrf": csrf}, files={"targets": ("目标.csv", targets.encode())})
    assert r.status_code == 200 and "已载入：目标.csv" in r.text
    params = {"spec": "sc-project", "year": "2021", "rows": "数量=12,质量=4", "line": "3"}
    r = c.get("/review/templates", params=params)
    assert r.status_code == 200
    wb = load_workbook(io.BytesIO(r.content))
    meta = dict(wb["_xlsx_kpi"].iter_rows(values_only=True))
    assert json.loads(str(meta["rows"])) == {"tgt.qty": 12, "tgt.quality": 4}
    assert wb.defined_names["K_tgt__qty__12__name"].attr_text == "'附件2'!$D$31"
    texts = {c.value for row in wb["附件2"].iter_rows() for c in row}
    assert "举办科创大会场次" in texts and "≥1场" in texts
    r = c.get("/review/templates", params={**params, "rows": "数量=0"})
    assert r.status_code == 400 and "指标行数：无法识别“数量=0”" in r.text
