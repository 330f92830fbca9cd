"""`xlsx-kpi serve`: the Starlette app, its routes (web/reviewer.py, web/unit.py), sessions and limits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xlsx_kpi.web.reviewer import ReviewerPages
from xlsx_kpi.web.store import Store
from xlsx_kpi.web.unit import UnitPages
from xlsx_kpi.web.uploads import Limits, clear_password, import_folder, load_unit_list, size_text

__all__ = ["Limits", "Web", "clear_password", "create_app", "import_folder", "load_unit_list"]


DEFAULT_LIMITS = Limits()


class Web(ReviewerPages, UnitPages):
    """The routes, over one Store, one Jobs pool and one spec catalog."""


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
                    f"<p>一次上传不能超过 {size_text(self.limit)}，请分几次上传。"
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
    limits: Limits = DEFAULT_LIMITS,
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
            message = f"一次上传不能超过 {size_text(limits.request_bytes)}，请分几次上传"
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
