"""The units' pages: everything through the private link's token (/u/<token>/...); anything else is 404."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from xlsx_kpi.web.pages import Pages
from xlsx_kpi.web.security import hash_token, unit_csrf
from xlsx_kpi.web.store import SubmissionRow, UnitLink

__all__ = ["UnitPages"]


class UnitPages(Pages):
    """A unit's home (its uploads and their results), upload, a result, a cell, the annotated copy."""

    def unit_of(self, request: Request) -> UnitLink | None:
        token = request.path_params.get("token", "")
        if not isinstance(token, str) or not 20 <= len(token) <= 64:
            return None
        return self.store.unit_by_token_hash(hash_token(token))

    def unit_row(self, request: Request, unit: UnitLink) -> SubmissionRow | None:
        row = self.requested_row(request)
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
        return self.submission_page(request, row, f"/u/{request.path_params['token']}/s/{row.id}", unit)

    async def unit_cell(self, request: Request) -> Response:
        unit = self.unit_of(request)
        row = self.unit_row(request, unit) if unit is not None else None
        if unit is None or row is None:
            return self.not_found(request)
        base = f"/u/{request.path_params['token']}/s/{row.id}"
        return self.cell_page(request, row, request.path_params["n"], base, unit)

    async def unit_file(self, request: Request) -> Response:
        unit = self.unit_of(request)
        row = self.unit_row(request, unit) if unit is not None else None
        if unit is None or row is None or request.path_params["what"] != "annotated":
            return self.not_found(request)
        return self.download(request, f"单位 {unit.unit_code}", row, "annotated")
