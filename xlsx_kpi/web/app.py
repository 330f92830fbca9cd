"""The web app (`xlsx-kpi serve`): reviewer pages, unit links, uploads audited by the same library as the CLI."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import secrets
import shutil
import struct
import tempfile
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xlsx_kpi.audit.checked import Checked
from xlsx_kpi.audit.report import Report
from xlsx_kpi.audit.rules.crossfile import CrossFinding
from xlsx_kpi.batch.check import cross_check, find_workbooks
from xlsx_kpi.batch.collect import KIND_LABELS
from xlsx_kpi.errors import XlsxKpiError
from xlsx_kpi.formats.catalog import load_specs
from xlsx_kpi.formats.layout import Identity
from xlsx_kpi.formats.spec import Catalog, WorkbookSpec
from xlsx_kpi.formats.units import parse_rows, read_targets, read_units, safe_filename
from xlsx_kpi.ooxml.package import MAX_MEMBERS
from xlsx_kpi.outputs.review import annotated_name
from xlsx_kpi.outputs.template import generate, shaped
from xlsx_kpi.store.history import History, decode_value
from xlsx_kpi.web.jobs import AuditResult, Jobs, build_summary
from xlsx_kpi.web.security import (
    MIN_PASSWORD,
    Throttle,
    hash_password,
    hash_token,
    new_token,
    unit_csrf,
    verify_password,
)
from xlsx_kpi.web.store import Store, SubmissionRow, UnitLink, squash

__all__ = ["Limits", "clear_password", "create_app", "import_folder", "load_unit_list"]

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
REVIEWER = "reviewer"


@dataclass(frozen=True)
class Limits:
    """What one request may bring. A filled template is ~40 KB; a unit's whole round is a few files."""

    request_bytes: int = 100 * 1024 * 1024  # a whole request body
    file_bytes: int = 10 * 1024 * 1024  # one workbook (in a zip too)
    files: int = 300  # file fields in one request
    zip_members: int = 500  # workbooks taken from one zip
    zip_bytes: int = 200 * 1024 * 1024  # declared uncompressed size of one zip
    unit_files: int = 20  # files one unit uploads at once


# --- small helpers -------------------------------------------------------------------------------------


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MB" if n >= 1024 * 1024 else f"{n // 1024} KB"


def _kind_label(catalog: Catalog, workbook_id: str) -> str:
    wb = catalog.workbooks.get(workbook_id)
    return KIND_LABELS.get(wb.kind, wb.kind) if wb is not None else ""


def _decimal(text: str | None) -> Decimal | None:
    try:
        return None if text is None else Decimal(text)
    except InvalidOperation:
        return None


def _zip_name(info: zipfile.ZipInfo) -> str:
    """A member's name as the sender's zip tool meant it: Chinese Windows tools store GBK without the UTF-8 flag."""
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            name = name.encode("cp437").decode("gb18030")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def _is_workbook_zip(z: zipfile.ZipFile) -> bool:
    names = set(z.namelist())
    return "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names)


def _declared_members(data: bytes) -> int | None:
    """Entries a zip's end record declares, read before zipfile builds an entry object for each."""
    tail = data[-(22 + 65535) :]
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or pos + 22 > len(tail):
        return None
    entries: int = struct.unpack_from("<H", tail, pos + 10)[0]
    return entries


def expand_upload(name: str, data: bytes, limits: Limits) -> tuple[list[tuple[str, bytes]], list[str]]:
    """An uploaded file as workbooks to audit, plus refusals ("name：reason").

    A .zip is an archive of workbooks: its .xlsx members are taken (bounded in count, size and compression
    ratio; folders flattened, nested zips not opened). Anything else is taken as a workbook, unopened here:
    the reader then checks it as `check` does and says what it really is (.xls, CSV, encrypted, a zip bomb …).
    """
    if not data:
        return [], [f"{name}：文件是空的"]
    if len(data) > limits.file_bytes:
        return [], [f"{name}：文件超过 {_size(limits.file_bytes)}，未接收"]
    if not name.lower().endswith(".zip"):
        return [(name, data)], []
    declared = _declared_members(data)
    if declared is None or not data.startswith(b"PK\x03\x04"):
        return [], [f"{name}：不是有效的 zip 压缩包，未接收"]
    if declared == 0xFFFF or declared > max(limits.zip_members * 4, MAX_MEMBERS):
        return [], [f"{name}：压缩包中的文件过多，未接收"]
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        infos = z.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return [], [f"{name}：压缩包已损坏，未接收"]
    if _is_workbook_zip(z):
        return [(name, data)], []  # a workbook renamed .zip
    if len(infos) > limits.zip_members * 4:
        return [], [f"{name}：压缩包中的文件过多（{len(infos)} 个），未接收"]
    if sum(i.file_size for i in infos) > limits.zip_bytes:
        return [], [f"{name}：压缩包解压后过大，未接收"]
    taken: list[tuple[str, bytes]] = []
    refused: list[str] = []
    for info in infos:
        member = _zip_name(info)
        # A returned annotated copy (x_审核.xlsx) is a resubmission like any other workbook, as `check` reads it.
        if info.is_dir() or not member.lower().endswith(".xlsx") or member.startswith("~$"):
            continue
        if len(taken) >= limits.zip_members:
            refused.append(f"{name}：压缩包中超过 {limits.zip_members} 个工作簿，其余未接收")
            break
        if info.file_size > limits.file_bytes or info.file_size > 100 * max(info.compress_size, 1) + 65536:
            refused.append(f"{name}/{member}：文件过大或压缩比异常，未接收")
            continue
        try:
            with z.open(info) as fh:
                content = fh.read(limits.file_bytes + 1)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError):
            refused.append(f"{name}/{member}：压缩包中的该文件已损坏或已加密，未接收")
            continue
        if len(content) > limits.file_bytes:
            refused.append(f"{name}/{member}：文件超过 {_size(limits.file_bytes)}，未接收")
            continue
        taken.append((member, content))
    if not taken and not refused:
        refused.append(f"{name}：压缩包中没有 .xlsx 工作簿")
    return taken, refused


def chart_svg(series: dict[str, list[tuple[int, Decimal]]], width: int = 640, height: int = 240) -> Markup:
    """A line chart of totals by year, one line per workbook kind/project (server-drawn, no script)."""
    years = sorted({y for points in series.values() for y, _ in points})
    if not years:
        return Markup("")
    colours = ["#2f6db5", "#c0504d", "#4e9a5b", "#e0a526", "#7a5195", "#555555"]
    left, right, top, bottom = 48, 160, 16, 32
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for points in series.values() for _, v in points]
    low = min(Decimal(60), min(values))
    high = Decimal(100) if max(values) <= 100 else max(values)
    span = (high - low) or Decimal(1)

    def x(year: int) -> float:
        return left + (plot_w / 2 if len(years) == 1 else plot_w * years.index(year) / (len(years) - 1))

    def y(v: Decimal) -> float:
        return top + float((high - v) / span) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="历年自评合计得分">'
    ]
    for k in range(5):
        v = low + span * k / 4
        parts.append(
            f'<line x1="{left}" y1="{y(v):.1f}" x2="{left + plot_w}" y2="{y(v):.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.0f}</text>'
        )
    for year in years:
        parts.append(f'<text x="{x(year):.1f}" y="{height - 10}" text-anchor="middle">{year}</text>')
    for n, (label, points) in enumerate(series.items()):
        colour = colours[n % len(colours)]
        pts = " ".join(f"{x(yr):.1f},{y(v):.1f}" for yr, v in sorted(points))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for yr, v in points:
            # Labels of alternate lines go above and below their points, so equal years do not overprint.
            dy = -8 if n % 2 == 0 else 16
            parts.append(
                f'<circle cx="{x(yr):.1f}" cy="{y(v):.1f}" r="4" fill="{colour}"/>'
                f'<text x="{x(yr):.1f}" y="{y(v) + dy:.1f}" text-anchor="middle" fill="{colour}">{v:.2f}</text>'
            )
        ly = top + 14 + 18 * n
        short = label if len(label) <= 12 else label[:11] + "…"
        parts.append(
            f'<rect x="{left + plot_w + 12}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{left + plot_w + 26}" y="{ly}">{Markup.escape(short)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


# --- loading a unit list or a folder (the 下发 page and `serve --units` / `--import`) --------------------


def load_unit_list(store: Store, data: bytes, name: str, who: str) -> int:
    """Store a unit list (.xlsx or .csv, as `template --units` reads it) and make each unit known."""
    suffix = ".xlsx" if data.startswith(b"PK\x03\x04") else ".csv"
    sha = store.put_bytes(data, suffix)
    try:
        rows = read_units(store.blob_path(sha, suffix), project=False)
    except XlsxKpiError as e:
        raise XlsxKpiError(e.message, file=name, cell=e.cell) from None
    store.set_unit_rows(rows, sha, suffix)
    store.log(who, "上传单位清单", sha256=sha, detail=f"{name}（{len(rows)} 行）")
    return len(rows)


def load_targets(store: Store, data: bytes, name: str, who: str) -> int:
    """Store the approved targets (.xlsx or .csv, as `template --targets` reads them) for the templates."""
    suffix = ".xlsx" if data.startswith(b"PK\x03\x04") else ".csv"
    sha = store.put_bytes(data, suffix)
    try:
        rows = read_targets(store.blob_path(sha, suffix))
    except XlsxKpiError as e:
        raise XlsxKpiError(e.message, file=name, cell=e.cell) from None
    store.set("targets_sha256", sha)
    store.set("targets_suffix", suffix)
    store.set("targets_name", name)
    store.log(who, "上传绩效目标", sha256=sha, detail=f"{name}（{len(rows)} 条）")
    return len(rows)


def import_folder(store: Store, jobs: Jobs | None, folder: Path, who: str = "服务器导入") -> int:
    """Take every workbook under a folder as one reviewer batch (what `serve --import` does).

    A file whose content is already stored is skipped, so a restart with the same --import adds nothing.
    """
    if not folder.is_dir():
        raise XlsxKpiError("请指定存放工作簿的文件夹", file=str(folder))
    files = find_workbooks([folder])
    if not files:
        raise XlsxKpiError("文件夹中没有 .xlsx 工作簿", file=str(folder))
    batch: int | None = None
    taken = 0
    for f in files:
        data = f.read_bytes()
        sha = store.put_bytes(data)
        if store.query("SELECT 1 FROM submission WHERE sha256 = ?", (sha,)):
            continue
        if batch is None:
            batch = store.new_batch(who)
        taken += 1
        sid = store.add_submission(who=who, sha256=sha, name=f.name, size=len(data), batch_id=batch)
        if jobs is not None:
            jobs.submit(sid)
    return taken


def clear_password(data: Path) -> None:
    """Forget the reviewer's password (`serve --reset-password`): the next start asks for a new one."""
    if not (Path(data) / "web.sqlite").exists():
        return
    store = Store(data)
    try:
        store.unset("password")
        store.log("服务器启动", "清除密码")
    finally:
        store.close()


# --- the application ------------------------------------------------------------------------------------


class BodyLimit:
    """Refuse a request body over `limit` bytes (413), by its declared length or as it streams in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", []):
            if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                html = (
                    "<!doctype html><meta charset=utf-8><title>上传内容过大</title>"
                    f"<p>一次上传不能超过 {_size(self.limit)}，请分几次上传。"
                )
                await HTMLResponse(html, 413)(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413)
            return message

        await self.app(scope, limited, send)


STATIC: dict[str, tuple[bytes, str]] = {}


def _static() -> dict[str, tuple[bytes, str]]:
    """The vendored assets, read once into memory: no request path reaches the file system."""
    if not STATIC:
        folder = resources.files("xlsx_kpi.web") / "static"
        types = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
        for entry in folder.iterdir():
            suffix = os.path.splitext(entry.name)[1]
            if suffix in types:
                STATIC[entry.name] = (entry.read_bytes(), types[suffix])
    return STATIC


class Web:
    """The routes, over one Store, one Jobs pool and one spec catalog."""

    def __init__(
        self,
        store: Store,
        *,
        workers: int,
        sheets: Path | None,
        limits: Limits,
        secure_cookies: bool,
        password: str | None,
        public_url: str | None = None,
    ) -> None:
        self.store = store
        self.public_url = public_url.rstrip("/") if public_url else None
        self.sheets = sheets
        self.workers = workers
        self.limits = limits
        self.secure_cookies = secure_cookies
        self.catalog = load_specs(sheets)
        self.jobs: Jobs | None = None
        self.throttle = Throttle()
        if password is not None and store.get("password") is None:
            store.set("password", hash_password(password))
        self.secret = store.get("secret") or ""
        if not self.secret:
            self.secret = secrets.token_hex(32)
            store.set("secret", self.secret)
        self.setup_code: str | None = None if store.get("password") else secrets.token_hex(4)
        self.env = Environment(
            loader=PackageLoader("xlsx_kpi.web", "templates"), autoescape=select_autoescape(["html"]), trim_blocks=True
        )
        self.env.globals["kind_label"] = lambda wid: _kind_label(self.catalog, wid)
        self.env.globals["state_label"] = _state_label

    # --- plumbing --------------------------------------------------------------------------------------

    def start(self) -> None:
        self.jobs = Jobs(self.store, workers=self.workers, sheets=self.sheets, on_done=self.remember)
        self.jobs.resume()

    def stop(self) -> None:
        if self.jobs is not None:
            self.jobs.shutdown()
            self.jobs = None

    def remember(self, submission_id: int, result: AuditResult) -> None:
        """A usable audited upload goes into the history store, as `collect` stores it (once per file content)."""
        row = self.store.submission(submission_id)
        checked = result.checked
        if row is None or not checked.report.usable or not checked.report.year.strip().isdigit():
            return
        try:
            with History(self.store.history_path) as history:
                history.store(checked, sha256=row.sha256, file_mtime=datetime.fromisoformat(row.uploaded_at))
        except XlsxKpiError as e:
            self.store.log(
                "服务器", "历史库写入失败", sha256=row.sha256, submission_id=submission_id, detail=e.render()
            )

    def page(self, request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        session = request.scope.get("session")
        csrf = session.get("csrf", "") if session is not None else ""
        context.setdefault("csrf", csrf)
        context.setdefault("reviewer", bool(session and session.get("user") == REVIEWER))
        html = self.env.get_template(name).render(request=request, **context)
        response = HTMLResponse(html, status_code=status_code)
        response.headers["Cache-Control"] = "no-store"
        return response

    def not_found(self, request: Request) -> HTMLResponse:
        return self.page(request, "error.html", 404, title="页面不存在", message="页面不存在或链接已失效。")

    def who(self, request: Request) -> str:
        client = request.client.host if request.client else "?"
        return f"审核人（{client}）"

    def is_reviewer(self, request: Request) -> bool:
        return bool(request.session.get("user") == REVIEWER)

    def ensure_csrf(self, request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = secrets.token_urlsafe(24)
            request.session["csrf"] = token
        return str(token)

    async def form(self, request: Request, expected: str, *, files: int | None = None) -> FormData:
        """The posted form, parsed within the limits, refused (403) unless its CSRF field matches."""
        form = await request.form(max_files=files or self.limits.files, max_fields=50, max_part_size=64 * 1024)
        got = form.get("csrf")
        if not isinstance(got, str) or not expected or not secrets.compare_digest(got, expected):
            raise HTTPException(403, "表单已过期或来源不明，请刷新页面后重试")
        return form

    async def reviewer_form(self, request: Request, *, files: int | None = None) -> FormData:
        return await self.form(request, str(request.session.get("csrf", "")), files=files)

    def download(self, request: Request, who: str, row: SubmissionRow, what: str) -> Response:
        if what == "annotated":
            if row.annotated_sha256 is None:
                return self.not_found(request)
            sha, name = row.annotated_sha256, annotated_name(Path(safe_filename(Path(row.name).stem) + ".xlsx"))
            label = "下载审核副本"
        else:
            sha, name, label = row.sha256, safe_filename(Path(row.name).stem) + ".xlsx", "下载原文件"
        path = self.store.blob_path(sha)
        if not path.is_file():
            return self.not_found(request)
        self.store.log(who, label, sha256=sha, submission_id=row.id)
        return FileResponse(path, media_type=XLSX, filename=name, headers={"Cache-Control": "no-store"})

    async def take_uploads(
        self, request: Request, files: list[UploadFile], who: str, *, batch_id: int | None, unit_id: int | None
    ) -> tuple[list[int], list[str]]:
        """Store each uploaded workbook by hash, record it, queue its audit; refusals as messages."""
        ids: list[int] = []
        refused: list[str] = []
        for upload in files:
            name = (upload.filename or "未命名.xlsx").replace("\\", "/").rsplit("/", 1)[-1][:200]
            size = upload.size or 0
            if size > self.limits.file_bytes:
                refused.append(f"{name}：文件超过 {_size(self.limits.file_bytes)}，未接收")
                continue
            data = await upload.read(self.limits.file_bytes + 1)
            limits = self.limits if unit_id is None else replace(self.limits, zip_members=self.limits.unit_files)
            taken, bad = await run_in_threadpool(expand_upload, name, data, limits)
            refused.extend(bad)
            for member, content in taken:
                sha = await run_in_threadpool(self.store.put_bytes, content)
                ids.append(
                    self.store.add_submission(
                        who=who, sha256=sha, name=member, size=len(content), batch_id=batch_id, unit_id=unit_id
                    )
                )
        for text in refused:
            self.store.log(who, "拒收", batch_id=batch_id, detail=text)
        if self.jobs is not None:
            for i in ids:
                self.jobs.submit(i)
        return ids, refused

    # --- public pages: setup, login -----------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        if self.store.get("password") is None:
            return RedirectResponse("/setup", 303)
        return RedirectResponse("/review" if self.is_reviewer(request) else "/login", 303)

    async def setup(self, request: Request) -> Response:
        if self.store.get("password") is not None or self.setup_code is None:
            return RedirectResponse("/login", 303)
        csrf = self.ensure_csrf(request)
        error = ""
        if request.method == "POST":
            form = await self.form(request, csrf, files=0)
            code, pw, pw2 = (str(form.get(k, "")) for k in ("code", "password", "password2"))
            client = request.client.host if request.client else "?"
            if self.throttle.blocked(client):
                error = "尝试次数过多，请 10 分钟后再试"
            elif not secrets.compare_digest(code.strip(), self.setup_code):
                self.throttle.fail(client)
                error = "设置码不对：请看启动服务器的窗口中显示的设置码"
            elif len(pw) < MIN_PASSWORD:
                error = f"密码至少 {MIN_PASSWORD} 位"
            elif pw != pw2:
                error = "两次输入的密码不一致"
            else:
                self.store.set("password", await run_in_threadpool(hash_password, pw))
                self.setup_code = None
                request.session.clear()
                request.session.update({"user": REVIEWER, "csrf": secrets.token_urlsafe(24)})
                self.store.log(self.who(request), "设置密码")
                return RedirectResponse("/review", 303)
        return self.page(request, "setup.html", 400 if error else 200, title="首次使用：设置密码", error=error)

    async def login(self, request: Request) -> Response:
        stored = self.store.get("password")
        if stored is None:
            return RedirectResponse("/setup", 303)
        csrf = self.ensure_csrf(request)
        error = ""
        if request.method == "POST":
            form = await self.form(request, csrf, files=0)
            client = request.client.host if request.client else "?"
            if self.throttle.blocked(client):
                error = "登录失败次数过多，请 10 分钟后再试"
            elif await run_in_threadpool(verify_password, str(form.get("password", "")), stored):
                self.throttle.clear(client)
                request.session.clear()  # a new session: nothing from before the login carries over
                request.session.update({"user": REVIEWER, "csrf": secrets.token_urlsafe(24)})
                self.store.log(self.who(request), "登录")
                return RedirectResponse("/review", 303)
            else:
                self.throttle.fail(client)
                self.store.log(self.who(request), "登录失败")
                error = "密码不对"
        return self.page(request, "login.html", 401 if error else 200, title="登录", error=error)

    async def logout(self, request: Request) -> Response:
        await self.reviewer_form(request, files=0)
        self.store.log(self.who(request), "退出")
        request.session.clear()
        return RedirectResponse("/login", 303)

    async def static(self, request: Request) -> Response:
        item = _static().get(request.path_params["name"])
        if item is None:
            return self.not_found(request)
        return Response(item[0], media_type=item[1], headers={"Cache-Control": "max-age=3600"})

    # --- reviewer pages --------------------------------------------------------------------------------------

    def statuses(self, year: str = "") -> dict[str, Any]:
        """未报送 (listed units without a usable submission) and 重复报送 (grouped by unit, kind, project and year
        as collect groups them; the newest upload is the one used)."""
        subs = [s for s in self.store.submissions() if not year or s.year == year]
        done = [s for s in subs if s.state == "done" and s.error is None]
        groups: dict[tuple[str, str, str, str], list[SubmissionRow]] = {}
        for s in done:
            groups.setdefault(s.key, []).append(s)
        duplicates = []
        for g in groups.values():
            g.sort(key=lambda s: (s.uploaded_at, s.id), reverse=True)
            if len({s.sha256 for s in g}) > 1:
                duplicates.append(g)
            else:
                del g[1:]  # the same file uploaded again: one submission, not a duplicate
        filed = {(s.unit_code, squash(s.project_name)) for s in done}
        rows = self.store.unit_rows()
        missing = [r for r in rows if (r.unit_code.strip(), squash(r.project_name)) not in filed]
        used = [g[0] for g in groups.values()]
        return {"missing": missing, "duplicates": duplicates, "rows": rows, "cross": self.cross(used)}

    def cross(self, used: list[SubmissionRow]) -> list[tuple[CrossFinding, dict[str, int]]]:
        """The cross-workbook rules (as check and collect run them) over the submissions used, with a link for
        each file they name (file name -> submission number)."""
        checked: list[Checked] = []
        ids: dict[str, int] = {}
        for s in used:
            figures = self.store.figures(s.id)
            if not figures:
                continue
            report = Report(
                file=Path(s.name),
                workbook_id=s.workbook_id,
                unit_name=s.unit_name,
                unit_code=s.unit_code,
                year=s.year,
                project_name=s.project_name,
            )
            values = {k: decode_value(v) for k, v in figures.get("values", {}).items()}
            places = {k: (p[0], p[1], p[2]) for k, p in figures.get("places", {}).items()}
            checked.append(Checked(report, values=values, places=places))
            ids.setdefault(s.name, s.id)
        return [(c, ids) for c in cross_check(checked, self.catalog)]

    async def dashboard(self, request: Request) -> Response:
        counts = self.store.counts()
        return self.page(
            request,
            "dashboard.html",
            title="概览",
            counts=counts,
            units=len(self.store.units()),
            rows=len(self.store.unit_rows()),
            events=self.store.events(15),
        )

    async def issue(self, request: Request) -> Response:
        error = ""
        if request.method == "POST":
            form = await self.reviewer_form(request, files=1)
            what = "targets" if isinstance(form.get("targets"), UploadFile) else "units"
            upload = form.get(what)
            load = load_targets if what == "targets" else load_unit_list
            if not isinstance(upload, UploadFile) or not upload.filename:
                error = "请选择单位清单文件（.xlsx 或 .csv）"
            else:
                data = await upload.read(self.limits.file_bytes + 1)
                if len(data) > self.limits.file_bytes:
                    error = "单位清单文件过大"
                else:
                    try:
                        await run_in_threadpool(load, self.store, data, upload.filename, self.who(request))
                        return RedirectResponse("/review/issue", 303)
                    except XlsxKpiError as e:
                        error = e.render()  # names the uploaded file, never the stored one
        spec = request.query_params.get("spec") or next(iter(self.catalog.workbooks))
        year = request.query_params.get("year") or str(datetime.now().year - 1)
        rows_text = request.query_params.get("rows", "").strip()
        return self.page(
            request,
            "issue.html",
            400 if error else 200,
            title="下发模板",
            error=error,
            rows=self.store.unit_rows(),
            workbooks=list(self.catalog.workbooks.values()),
            spec=spec,
            year=year,
            rows_text=rows_text,
            targets_name=self.store.get("targets_name") if self.store.targets_file() else None,
            query=urlencode({"spec": spec, "year": year, **({"rows": rows_text} if rows_text else {})}),
        )

    def _identities(self, request: Request) -> tuple[WorkbookSpec, list[tuple[int, Identity]]]:
        spec = request.query_params.get("spec", "")
        if spec not in self.catalog.workbooks:
            raise HTTPException(400, "请选择表种")
        wb = self.catalog.workbooks[spec]
        year_text = request.query_params.get("year", "").strip()
        if not year_text.isdigit() or not 1990 <= int(year_text) <= 2100:
            raise HTTPException(400, "年度应为四位年份，如 2025")
        try:
            rows_text = request.query_params.get("rows", "").strip()
            sizes = parse_rows(rows_text, "指标行数") if rows_text else []
            targets_path = self.store.targets_file()
            approved = read_targets(targets_path) if targets_path is not None else []
        except XlsxKpiError as e:
            raise HTTPException(400, e.message) from None
        targets_name = self.store.get("targets_name") or ""
        rows = self.store.unit_rows()
        idents: list[tuple[int, Identity]] = []
        seen: set[str] = set()
        for r in rows:
            if wb.kind == "project":
                if not r.project_name:
                    continue
            else:
                if r.unit_code in seen:
                    continue
                seen.add(r.unit_code)
            ident = Identity(
                year=int(year_text),
                unit_name=r.unit_name,
                unit_code=r.unit_code,
                project_name=r.project_name if wb.kind == "project" else "",
                project_type=r.project_type if wb.kind == "project" else "",
            )
            try:
                # The same shaping as `template --units --rows --targets`: a row's own 指标行数 wins.
                ident = shaped(
                    self.catalog,
                    wb,
                    ident,
                    parse_rows(r.rows, f"单位清单第 {r.line} 行“指标行数”") if r.rows else sizes,
                    approved,
                    rows_from=f"单位清单第 {r.line} 行“指标行数”" if r.rows else "指标行数",
                    targets_file=targets_name,
                )
            except XlsxKpiError as e:
                raise HTTPException(400, e.message) from None
            idents.append((r.line, ident))
        if not idents:
            raise HTTPException(400, "单位清单中没有可生成该表种的单位（项目支出表需要“项目名称”列）")
        return wb, idents

    async def templates_zip(self, request: Request) -> Response:
        wb, idents = self._identities(request)
        line = request.query_params.get("line")
        if line is not None:
            idents = [(n, i) for n, i in idents if str(n) == line]
            if not idents:
                return self.not_found(request)

        def build() -> tuple[bytes, str]:
            with tempfile.TemporaryDirectory(dir=self.store.work) as tmp:
                paths = generate(self.catalog, wb, [i for _, i in idents], Path(tmp))
                if len(paths) == 1 and line is not None:
                    return paths[0].read_bytes(), paths[0].name
                buf = io.BytesIO()
                with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                    for p in paths:
                        z.write(p, p.name)
                return buf.getvalue(), f"{idents[0][1].year}_{wb.name}_模板.zip"

        try:
            data, name = await run_in_threadpool(build)
        except XlsxKpiError as e:
            raise HTTPException(400, e.message) from None
        digest = hashlib.sha256(data).hexdigest()
        self.store.log(self.who(request), "下载模板", sha256=digest, detail=f"{name}（{len(idents)} 个）")
        media = XLSX if name.endswith(".xlsx") else "application/zip"
        return Response(data, media_type=media, headers=_attachment(name))

    async def links(self, request: Request) -> Response:
        new: list[tuple[UnitLink, str]] = []
        if request.method == "POST":
            form = await self.reviewer_form(request, files=0)
            action = str(form.get("action", ""))
            unit_id = str(form.get("unit", ""))
            units = self.store.units()
            if action == "revoke" and unit_id.isdigit():
                unit = self.store.unit(int(unit_id))
                if unit is not None:
                    self.store.revoke(unit.id)
                    self.store.log(self.who(request), "撤销单位链接", detail=f"{unit.unit_code} {unit.unit_name}")
                return RedirectResponse("/review/links", 303)
            if action == "new":
                chosen = (
                    [u for u in units if str(u.id) == unit_id]
                    if unit_id
                    else [u for u in units if not u.has_token or u.revoked]
                )
                for u in chosen:
                    token = new_token()
                    self.store.set_token(u.id, hash_token(token))
                    new.append((u, token))
                if new:
                    self.store.log(self.who(request), "生成单位链接", detail=f"{len(new)} 个")
        if new:
            base = self.public_url or str(request.base_url).rstrip("/")
            local = (urlsplit(base).hostname or "") in ("127.0.0.1", "localhost", "::1")
            return self.page(
                request, "links_new.html", title="单位报送链接（仅显示这一次）", new=new, base=base, local=local
            )
        units = self.store.units()
        by_code = {u.unit_code: u.id for u in units}
        latest_by_unit: dict[int, SubmissionRow] = {}
        for (
            s
        ) in self.store.submissions():  # by the unit's own link, or a workbook of that unit uploaded by the reviewer
            owner = s.unit_id if s.unit_id is not None else by_code.get(s.unit_code)
            if owner is not None:
                latest_by_unit[owner] = s
        return self.page(request, "links.html", title="单位报送链接", units=units, latest=latest_by_unit)

    async def collect_page(self, request: Request) -> Response:
        q = request.query_params
        year, kind, status, text = q.get("year", ""), q.get("kind", ""), q.get("status", ""), q.get("q", "").strip()
        sort, desc = q.get("sort", "id"), q.get("dir", "desc") == "desc"
        subs = self.store.submissions()
        years = sorted({s.year for s in subs if s.year}, reverse=True)
        stats = self.statuses(year)
        used = {g[0].id for g in stats["duplicates"]}
        unused = {s.id for g in stats["duplicates"] for s in g[1:]}
        rows = [
            s
            for s in subs
            if (not year or s.year == year)
            and (not kind or _kind_label(self.catalog, s.workbook_id) == kind)
            and (not status or _state_label(s) == status)
            and (not text or text in f"{s.unit_name}{s.unit_code}{s.project_name}{s.name}")
        ]
        keys: dict[str, Callable[[SubmissionRow], Any]] = {
            "id": lambda s: s.id,
            "unit": lambda s: (s.unit_code, s.unit_name),
            "kind": lambda s: _kind_label(self.catalog, s.workbook_id),
            "project": lambda s: s.project_name,
            "total": lambda s: _decimal(s.total) if s.total is not None else Decimal(-1),
            "grade": lambda s: "优良中差".find(s.grade) if s.grade else 9,
            "errors": lambda s: s.errors,
            "warnings": lambda s: s.warnings,
            "infos": lambda s: s.infos,
            "status": lambda s: _state_label(s),
        }
        rows.sort(key=keys.get(sort, keys["id"]), reverse=desc)
        pending = any(s.state == "queued" for s in subs)

        def sort_link(col: str) -> str:
            direction = "asc" if sort == col and desc else "desc"
            params = {k: v for k, v in (("year", year), ("kind", kind), ("status", status), ("q", text)) if v}
            return "/review/collect?" + urlencode({**params, "sort": col, "dir": direction})

        return self.page(
            request,
            "collect.html",
            title="回收与审核",
            rows=rows,
            years=years,
            year=year,
            kind=kind,
            status=status,
            text=text,
            sort=sort,
            desc=desc,
            sort_link=sort_link,
            stats=stats,
            used=used,
            unused=unused,
            pending=pending,
            statuses=["审核中", "通过", "有警告", "有错误", "无法读取"],
            kinds=sorted(set(KIND_LABELS.values())),
        )

    async def upload(self, request: Request) -> Response:
        form = await self.reviewer_form(request)
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
        if not files:
            raise HTTPException(400, "请选择要上传的工作簿或压缩包")
        batch = self.store.new_batch(self.who(request))
        await self.take_uploads(request, files, self.who(request), batch_id=batch, unit_id=None)
        return RedirectResponse(f"/review/batch/{batch}", 303)

    async def batch(self, request: Request) -> Response:
        batch_id = request.path_params["batch"]
        if not self.store.query("SELECT 1 FROM batch WHERE id = ?", (batch_id,)):
            return self.not_found(request)
        subs = self.store.submissions(batch_id=batch_id)
        done = sum(1 for s in subs if s.state == "done")
        return self.page(
            request,
            "batch.html",
            title=f"第 {batch_id} 批上传",
            subs=subs,
            done=done,
            batch_id=batch_id,
            refused=self.store.refused(batch_id),
            pending=done < len(subs),
        )

    def _submission_page(
        self, request: Request, row: SubmissionRow, base: str, unit: UnitLink | None = None
    ) -> HTMLResponse:
        findings, contexts = self.store.findings(row.id)
        return self.page(
            request,
            "submission.html",
            title=f"审核结果：{row.name}",
            row=row,
            findings=findings,
            has_context=[bool(c.get("rows")) for c in contexts] + [False] * (len(findings) - len(contexts)),
            base=base,
            unit=unit,
            unit_base=base.rsplit("/s/", 1)[0] if unit is not None else "",
            pending=row.state == "queued",
        )

    def _cell_page(self, request: Request, row: SubmissionRow, n: int, base: str, unit: UnitLink | None) -> Response:
        findings, contexts = self.store.findings(row.id)
        if not 1 <= n <= len(contexts) or not contexts[n - 1].get("rows"):
            return self.not_found(request)
        return self.page(
            request,
            "cell.html",
            title=f"{contexts[n - 1]['sheet']}!{contexts[n - 1]['cell']}",
            row=row,
            finding=findings[n - 1],
            ctx=contexts[n - 1],
            n=n,
            base=base,
            unit=unit,
            unit_base=base.rsplit("/s/", 1)[0] if unit is not None else "",
        )

    def _row(self, request: Request) -> SubmissionRow | None:
        return self.store.submission(request.path_params["sid"])

    async def submission(self, request: Request) -> Response:
        row = self._row(request)
        if row is None:
            return self.not_found(request)
        return self._submission_page(request, row, f"/review/s/{row.id}")

    async def cell(self, request: Request) -> Response:
        row = self._row(request)
        if row is None:
            return self.not_found(request)
        return self._cell_page(request, row, request.path_params["n"], f"/review/s/{row.id}", None)

    async def file(self, request: Request) -> Response:
        row = self._row(request)
        if row is None or request.path_params["what"] not in ("annotated", "original"):
            return self.not_found(request)
        return self.download(request, self.who(request), row, request.path_params["what"])

    async def summary(self, request: Request) -> Response:
        subs = self.store.submissions()
        years = sorted({s.year for s in subs if s.year and s.state == "done"}, reverse=True)
        records = []
        if self.store.history_path.exists():
            with History(self.store.history_path, readonly=True) as history:
                records = history.records()
        units: dict[str, tuple[str, set[int]]] = {}
        for r in records:
            name, yrs = units.get(r.unit_code, (r.unit_name, set()))
            units[r.unit_code] = (r.unit_name, yrs | {r.year})
        return self.page(
            request,
            "summary.html",
            title="汇总与历年对比",
            years=years,
            units=[(code, name, sorted(yrs)) for code, (name, yrs) in sorted(units.items())],
        )

    async def summary_xlsx(self, request: Request) -> Response:
        year = request.query_params.get("year", "")
        subs = [s for s in self.store.submissions() if s.state == "done" and s.error is None]
        if year:
            subs = [s for s in subs if s.year == year]
        if not subs:
            raise HTTPException(400, "还没有可汇总的报送（审核通过读取的工作簿）")
        assert self.jobs is not None
        tmp = Path(tempfile.mkdtemp(dir=self.store.work))
        try:
            folder = tmp / "in"
            folder.mkdir()
            for s in subs:
                # Named by submission number; the upload time as the file time, so the newest upload is the one used.
                target = folder / f"{s.id:06d}_{safe_filename(Path(s.name).stem)[:80]}.xlsx"
                shutil.copyfile(self.store.blob_path(s.sha256), target)
                stamp = datetime.fromisoformat(s.uploaded_at).timestamp()
                os.utime(target, (stamp, stamp))
            out = tmp / "汇总.xlsx"
            units = self.store.units_file()
            fut = self.jobs.run(
                build_summary, str(folder), str(out), str(units) if units else None, str(self.store.history_path)
            )
            try:
                await asyncio.wrap_future(fut)
            except XlsxKpiError as e:
                raise HTTPException(400, e.message) from None
            data = out.read_bytes()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        name = f"{year or '全部'}_汇总.xlsx"
        sha = self.store.put_bytes(data)
        self.store.log(self.who(request), "下载汇总", sha256=sha, detail=f"{name}（{len(subs)} 份）")
        return Response(data, media_type=XLSX, headers=_attachment(name))

    async def history(self, request: Request) -> Response:
        code = request.query_params.get("unit", "")
        records = []
        if code and self.store.history_path.exists():
            with History(self.store.history_path, readonly=True) as history:
                records = history.unit_years(code)
        if not records:
            return self.not_found(request)
        series: dict[str, list[tuple[int, Decimal]]] = {}
        for r in records:
            if r.total is not None:
                label = r.project_name or _kind_label(self.catalog, r.workbook_id) or r.workbook_id
                series.setdefault(label, []).append((r.year, r.total))
        return self.page(
            request,
            "history.html",
            title=f"{records[-1].unit_name} 历年自评",
            records=records,
            chart=chart_svg(series),
            code=code,
        )

    async def log_page(self, request: Request) -> Response:
        return self.page(request, "log.html", title="操作记录", events=self.store.events(500))

    # --- unit pages: everything through the link's token; anything else is 404 ------------------------------

    def unit_of(self, request: Request) -> UnitLink | None:
        token = request.path_params.get("token", "")
        if not isinstance(token, str) or not 20 <= len(token) <= 64:
            return None
        return self.store.unit_by_token_hash(hash_token(token))

    def unit_row(self, request: Request, unit: UnitLink) -> SubmissionRow | None:
        row = self._row(request)
        return row if row is not None and row.unit_id == unit.id else None

    async def unit_home(self, request: Request) -> Response:
        unit = self.unit_of(request)
        if unit is None:
            return self.not_found(request)
        token = request.path_params["token"]
        subs = list(reversed(self.store.submissions(unit_id=unit.id)))
        return self.page(
            request,
            "unit.html",
            title=f"{unit.unit_name} 绩效自评报送",
            unit=unit,
            subs=subs,
            base=f"/u/{token}",
            unit_base=f"/u/{token}",
            csrf=unit_csrf(self.secret, hash_token(token)),
            pending=any(s.state == "queued" for s in subs),
            error="",
        )

    async def unit_upload(self, request: Request) -> Response:
        unit = self.unit_of(request)
        if unit is None:
            return self.not_found(request)
        token = request.path_params["token"]
        form = await self.form(request, unit_csrf(self.secret, hash_token(token)), files=self.limits.unit_files)
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
        if not files:
            raise HTTPException(400, "请选择要上传的工作簿")
        ids, refused = await self.take_uploads(request, files, f"单位 {unit.unit_code}", batch_id=None, unit_id=unit.id)
        if len(ids) == 1 and not refused:
            return RedirectResponse(f"/u/{token}/s/{ids[0]}", 303)
        if refused:
            raise HTTPException(400, "；".join(refused))
        return RedirectResponse(f"/u/{token}", 303)

    async def unit_submission(self, request: Request) -> Response:
        unit = self.unit_of(request)
        row = self.unit_row(request, unit) if unit is not None else None
        if unit is None or row is None:
            return self.not_found(request)
        return self._submission_page(request, row, f"/u/{request.path_params['token']}/s/{row.id}", unit)

    async def unit_cell(self, request: Request) -> Response:
        unit = self.unit_of(request)
        row = self.unit_row(request, unit) if unit is not None else None
        if unit is None or row is None:
            return self.not_found(request)
        base = f"/u/{request.path_params['token']}/s/{row.id}"
        return self._cell_page(request, row, request.path_params["n"], base, unit)

    async def unit_file(self, request: Request) -> Response:
        unit = self.unit_of(request)
        row = self.unit_row(request, unit) if unit is not None else None
        if unit is None or row is None or request.path_params["what"] != "annotated":
            return self.not_found(request)
        return self.download(request, f"单位 {unit.unit_code}", row, "annotated")


def _attachment(name: str) -> dict[str, str]:
    from urllib.parse import quote

    return {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}", "Cache-Control": "no-store"}


def _state_label(s: SubmissionRow) -> str:
    return "审核中" if s.state == "queued" else (s.status or "无法读取")


SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # A unit's link carries its token: never send it to another site as a Referer.
    "Referrer-Policy": "no-referrer",
}


class Headers:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [
                    (k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(
    data: Path,
    *,
    workers: int = 2,
    sheets: Path | None = None,
    limits: Limits = Limits(),
    secure_cookies: bool = False,
    password: str | None = None,
    public_url: str | None = None,
) -> Starlette:
    """The app over a data folder (created if missing). `password` sets the reviewer's password if none is set;
    `public_url` is the address units' links start with (default: the address the reviewer's browser used).

    Without a password, /setup asks for one together with the setup code `app.state.web.setup_code`
    (which `xlsx-kpi serve` prints on its console).
    """
    store = Store(data)
    web = Web(
        store,
        workers=workers,
        sheets=sheets,
        limits=limits,
        secure_cookies=secure_cookies,
        password=password,
        public_url=public_url,
    )

    def reviewer(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            if not web.is_reviewer(request):
                if request.method == "GET":
                    return RedirectResponse("/login", 303)
                raise HTTPException(403, "请先登录")
            return await handler(request)

        return guarded

    async def error_page(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return web.not_found(request)
        titles = {400: "无法处理", 403: "无权操作", 405: "不支持的操作", 413: "上传内容过大"}
        message = exc.detail if exc.status_code in (400, 403) and exc.detail else titles.get(exc.status_code, "出错了")
        if exc.status_code == 400 and message.isascii():
            # The form parser's own words (too many files or fields, a broken form): said in Chinese.
            message = (
                f"上传的表单无法处理：一次最多上传 {limits.files} 个文件（单位链接一次最多 {limits.unit_files} 个）"
            )
        if exc.status_code == 413:
            message = f"一次上传不能超过 {_size(limits.request_bytes)}，请分几次上传"
        return web.page(
            request, "error.html", exc.status_code, title=titles.get(exc.status_code, "出错了"), message=message
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        web.start()
        try:
            yield
        finally:
            web.stop()
            store.close()

    routes = [
        Route("/", web.home),
        Route("/setup", web.setup, methods=["GET", "POST"]),
        Route("/login", web.login, methods=["GET", "POST"]),
        Route("/logout", reviewer(web.logout), methods=["POST"]),
        Route("/static/{name}", web.static),
        Route("/review", reviewer(web.dashboard)),
        Route("/review/issue", reviewer(web.issue), methods=["GET", "POST"]),
        Route("/review/templates", reviewer(web.templates_zip)),
        Route("/review/links", reviewer(web.links), methods=["GET", "POST"]),
        Route("/review/collect", reviewer(web.collect_page)),
        Route("/review/upload", reviewer(web.upload), methods=["POST"]),
        Route("/review/batch/{batch:int}", reviewer(web.batch)),
        Route("/review/s/{sid:int}", reviewer(web.submission)),
        Route("/review/s/{sid:int}/cell/{n:int}", reviewer(web.cell)),
        Route("/review/s/{sid:int}/{what:str}", reviewer(web.file)),
        Route("/review/summary", reviewer(web.summary)),
        Route("/review/summary.xlsx", reviewer(web.summary_xlsx)),
        Route("/review/history", reviewer(web.history)),
        Route("/review/log", reviewer(web.log_page)),
        Route("/u/{token:str}", web.unit_home),
        Route("/u/{token:str}/upload", web.unit_upload, methods=["POST"]),
        Route("/u/{token:str}/s/{sid:int}", web.unit_submission),
        Route("/u/{token:str}/s/{sid:int}/cell/{n:int}", web.unit_cell),
        Route("/u/{token:str}/s/{sid:int}/{what:str}", web.unit_file),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(Headers),
            Middleware(
                SessionMiddleware,
                secret_key=web.secret,
                session_cookie="xlsx_kpi_session",
                max_age=8 * 3600,
                same_site="strict",
                https_only=secure_cookies,
            ),
            Middleware(BodyLimit, limit=limits.request_bytes),
        ],
        exception_handlers={HTTPException: error_page},
        lifespan=lifespan,
    )
    app.state.web = web
    return app
