"""The web app's pages: what they share (rendering, forms and CSRF, downloads, uploads) and the public ones."""

from __future__ import annotations

import os
import secrets
from dataclasses import replace
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from xlsx_kpi import api
from xlsx_kpi.errors import XlsxKpiError
from xlsx_kpi.web.jobs import AuditResult, Jobs
from xlsx_kpi.web.security import MIN_PASSWORD, Throttle, hash_password, verify_password
from xlsx_kpi.web.store import Store, SubmissionRow, UnitLink
from xlsx_kpi.web.uploads import Limits, expand_upload, size_text

__all__ = ["REVIEWER", "XLSX", "Pages", "attachment", "state_label", "static_files"]

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
REVIEWER = "reviewer"


STATIC: dict[str, tuple[bytes, str]] = {}


def static_files() -> dict[str, tuple[bytes, str]]:
    """The vendored assets, read once into memory: no request path reaches the file system."""
    if not STATIC:
        folder = resources.files("xlsx_kpi.web") / "static"
        types = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
        for entry in folder.iterdir():
            suffix = os.path.splitext(entry.name)[1]
            if suffix in types:
                STATIC[entry.name] = (entry.read_bytes(), types[suffix])
    return STATIC


def attachment(name: str) -> dict[str, str]:
    """Headers of a download named `name` (any characters: RFC 5987)."""
    from urllib.parse import quote

    return {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}", "Cache-Control": "no-store"}


def state_label(s: SubmissionRow) -> str:
    """A submission's state as the pages show it: 审核中, 通过, 有警告, 有错误, 无法读取."""
    return "审核中" if s.state == "queued" else (s.status or "无法读取")


class Pages:
    """What every page needs, over one Store, one Jobs pool and one spec catalog; the public pages (setup,
    login). The reviewer's pages and the units' pages build on it (web/reviewer.py, web/unit.py)."""

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
        self.catalog = api.load_catalog(sheets)
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
        self.env.globals["kind_label"] = lambda wid: api.kind_label(self.catalog, wid)
        self.env.globals["state_label"] = state_label

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
            api.store_submission(
                self.store.history_path, checked, sha256=row.sha256, file_mtime=datetime.fromisoformat(row.uploaded_at)
            )
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
            sha, name = row.annotated_sha256, api.annotated_name(Path(api.safe_filename(Path(row.name).stem) + ".xlsx"))
            label = "下载审核副本"
        else:
            sha, name, label = row.sha256, api.safe_filename(Path(row.name).stem) + ".xlsx", "下载原文件"
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
                refused.append(f"{name}：文件超过 {size_text(self.limits.file_bytes)}，未接收")
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
        item = static_files().get(request.path_params["name"])
        if item is None:
            return self.not_found(request)
        return Response(item[0], media_type=item[1], headers={"Cache-Control": "max-age=3600"})

    def submission_page(
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

    def cell_page(self, request: Request, row: SubmissionRow, n: int, base: str, unit: UnitLink | None) -> Response:
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

    def requested_row(self, request: Request) -> SubmissionRow | None:
        return self.store.submission(request.path_params["sid"])
