"""The reviewer's pages: 下发 (unit list, targets, templates, links), 回收 and 审核, 汇总 and 历年对比, the log."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from xlsx_kpi import api
from xlsx_kpi.errors import XlsxKpiError
from xlsx_kpi.safe_text import without_spaces
from xlsx_kpi.web.chart import chart_svg
from xlsx_kpi.web.jobs import build_summary
from xlsx_kpi.web.pages import XLSX, Pages, attachment, state_label
from xlsx_kpi.web.security import hash_token, new_token
from xlsx_kpi.web.store import SubmissionRow, UnitLink
from xlsx_kpi.web.uploads import load_targets, load_unit_list

if TYPE_CHECKING:
    from xlsx_kpi.api import CrossFinding, Identity, WorkbookSpec

__all__ = ["ReviewerPages"]


def decimal_or_none(text: str | None) -> Decimal | None:
    try:
        return None if text is None else Decimal(text)
    except InvalidOperation:
        return None


class ReviewerPages(Pages):
    """The pages behind the reviewer's login (/review/...)."""

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
        filed = {(s.unit_code, without_spaces(s.project_name)) for s in done}
        rows = self.store.unit_rows()
        missing = [r for r in rows if (r.unit_code.strip(), without_spaces(r.project_name)) not in filed]
        used = [g[0] for g in groups.values()]
        return {"missing": missing, "duplicates": duplicates, "rows": rows, "cross": self.cross(used)}

    def cross(self, used: list[SubmissionRow]) -> list[tuple[CrossFinding, dict[str, int]]]:
        """The cross-workbook rules (as check and collect run them) over the submissions used, with a link for
        each file they name (file name -> submission number)."""
        checked: list[api.Checked] = []
        ids: dict[str, int] = {}
        for s in used:
            figures = self.store.figures(s.id)
            if not figures:
                continue
            report = api.Report(
                file=Path(s.name),
                workbook_id=s.workbook_id,
                unit_name=s.unit_name,
                unit_code=s.unit_code,
                year=s.year,
                project_name=s.project_name,
            )
            checked.append(api.checked_from_figures(report, figures))
            ids.setdefault(s.name, s.id)
        return [(c, ids) for c in api.cross_check(checked, self.catalog)]

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
            sizes = api.parse_rows(rows_text, "指标行数") if rows_text else []
            targets_path = self.store.targets_file()
            approved = api.read_targets(targets_path) if targets_path is not None else []
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
            ident = api.make_identity(
                int(year_text),
                r.unit_name,
                r.unit_code,
                project_name=r.project_name if wb.kind == "project" else "",
                project_type=r.project_type if wb.kind == "project" else "",
            )
            try:
                # The same shaping as `template --units --rows --targets`: a row's own 指标行数 wins.
                ident = api.shape_identity(
                    self.catalog,
                    wb,
                    ident,
                    api.parse_rows(r.rows, f"单位清单第 {r.line} 行“指标行数”") if r.rows else sizes,
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
                paths = api.make_templates(self.catalog, wb, [i for _, i in idents], Path(tmp))
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
        return Response(data, media_type=media, headers=attachment(name))

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
            and (not kind or api.kind_label(self.catalog, s.workbook_id) == kind)
            and (not status or state_label(s) == status)
            and (not text or text in f"{s.unit_name}{s.unit_code}{s.project_name}{s.name}")
        ]
        keys: dict[str, Callable[[SubmissionRow], Any]] = {
            "id": lambda s: s.id,
            "unit": lambda s: (s.unit_code, s.unit_name),
            "kind": lambda s: api.kind_label(self.catalog, s.workbook_id),
            "project": lambda s: s.project_name,
            "total": lambda s: decimal_or_none(s.total) if s.total is not None else Decimal(-1),
            "grade": lambda s: "优良中差".find(s.grade) if s.grade else 9,
            "errors": lambda s: s.errors,
            "warnings": lambda s: s.warnings,
            "infos": lambda s: s.infos,
            "status": lambda s: state_label(s),
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
            kinds=sorted(set(api.kind_labels().values())),
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

    async def submission(self, request: Request) -> Response:
        row = self.requested_row(request)
        if row is None:
            return self.not_found(request)
        return self.submission_page(request, row, f"/review/s/{row.id}")

    async def cell(self, request: Request) -> Response:
        row = self.requested_row(request)
        if row is None:
            return self.not_found(request)
        return self.cell_page(request, row, request.path_params["n"], f"/review/s/{row.id}", None)

    async def file(self, request: Request) -> Response:
        row = self.requested_row(request)
        if row is None or request.path_params["what"] not in ("annotated", "original"):
            return self.not_found(request)
        return self.download(request, self.who(request), row, request.path_params["what"])

    async def summary(self, request: Request) -> Response:
        subs = self.store.submissions()
        years = sorted({s.year for s in subs if s.year and s.state == "done"}, reverse=True)
        records = []
        if self.store.history_path.exists():
            records = api.unit_records(self.store.history_path)
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
                target = folder / f"{s.id:06d}_{api.safe_filename(Path(s.name).stem)[:80]}.xlsx"
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
        return Response(data, media_type=XLSX, headers=attachment(name))

    async def history(self, request: Request) -> Response:
        code = request.query_params.get("unit", "")
        records = []
        if code and self.store.history_path.exists():
            records = api.unit_years(self.store.history_path, code)
        if not records:
            return self.not_found(request)
        series: dict[str, list[tuple[int, Decimal]]] = {}
        for r in records:
            if r.total is not None:
                label = r.project_name or api.kind_label(self.catalog, r.workbook_id) or r.workbook_id
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
