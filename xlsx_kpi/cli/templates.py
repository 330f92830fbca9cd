"""The commands that set a round up: specs (the tables known), template (per unit), build-templates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xlsx_kpi import api
from xlsx_kpi.cli.common import SpecsDir, out, parse_year, work_begins
from xlsx_kpi.errors import XlsxKpiError

__all__ = ["build_templates_cmd", "specs_cmd", "template_cmd"]


def specs_cmd(sheets: SpecsDir = None) -> None:
    """列出已知的表种和表格（地区、来源）。"""
    catalog = api.load_catalog(sheets)
    for wb in catalog.workbooks.values():
        kind = "部门整体" if wb.kind == "department" else "项目支出"
        out.print(f"{wb.id}  [{kind}] {wb.name}（{wb.region}，第 {wb.version} 版）")
        for s in catalog.sheets_of(wb):
            src = f"  来源：{s.source.file} 第 {s.source.lines[0]}–{s.source.lines[1]} 行" if s.source else ""
            out.print(f"    {s.sheet}：{s.name}（{s.id}）{src}")


def template_cmd(
    kind: Annotated[
        str | None, typer.Option("--kind", "-k", help="表种：department（部门整体）或 project（项目支出）")
    ] = None,
    spec: Annotated[str | None, typer.Option("--spec", help="按规格 id 选择表种，如 sc-department")] = None,
    year: Annotated[str | None, typer.Option("--year", "-y", help="年度，如 2025（默认上一年）")] = None,
    unit: Annotated[str | None, typer.Option("--unit", "-u", help="单位名称")] = None,
    code: Annotated[str | None, typer.Option("--code", "-c", help="预算单位编码")] = None,
    project: Annotated[str | None, typer.Option("--project", "-p", help="项目名称（项目支出表）")] = None,
    project_type: Annotated[
        str | None, typer.Option("--project-type", help="项目类型：产业发展/民生保障/基础设施/行政运行")
    ] = None,
    units: Annotated[
        Path | None,
        typer.Option(
            "--units", help="单位清单 .xlsx/.csv（单位名称、预算单位编码、项目名称、项目类型），每行生成一个文件"
        ),
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="输出文件（单个单位时）")] = None,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="输出文件夹（默认当前文件夹）")] = Path("."),
    password: Annotated[
        str | None, typer.Option("--password", help="工作表保护密码（可选；只防误改，不防破解）")
    ] = None,
    contact: Annotated[
        str | None, typer.Option("--contact", help="填表说明中的报送要求，如“12月31日前发送至 xx@xx.gov.cn”")
    ] = None,
    blank: Annotated[bool, typer.Option("--blank", help="生成不带单位信息的空白模板")] = False,
    rows: Annotated[
        str | None,
        typer.Option(
            "--rows",
            help="各指标组的行数，如 数量=12,质量=4（单位清单中可用“指标行数”列逐个单位指定）",
        ),
    ] = None,
    targets: Annotated[
        Path | None,
        typer.Option(
            "--targets",
            help="批复的绩效目标 .xlsx/.csv（预算单位编码、项目名称、指标组、三级指标、预算指标值），预填并锁定",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="覆盖已存在的文件")] = False,
    sheets: SpecsDir = None,
) -> None:
    """为一个单位（或 --units 清单中的每个单位）生成自评模板。"""
    catalog = api.load_catalog(sheets)
    work_begins()
    wb = api.workbook_spec(catalog, kind, spec)
    the_year = parse_year(year)
    if project_type and project_type not in api.PROJECT_TYPES:
        raise XlsxKpiError(f"项目类型“{project_type}”无效，应为：{'、'.join(api.PROJECT_TYPES)}")
    is_project = wb.kind == "project"
    sizes = api.parse_rows(rows) if rows else []
    approved = api.read_targets(targets) if targets else []
    where = str(targets or "")
    if units:
        unit_rows = api.read_units(units, project=is_project)
        # Duplicate names are refused before any layout is built (~20 ms a unit when rows are shaped).
        plain = [api.make_identity(the_year, r.unit_name, r.unit_code, project_name=r.project_name) for r in unit_rows]
        api.check_template_names(wb, plain, out_dir)
        idents = [
            api.shape_identity(
                catalog,
                wb,
                api.make_identity(
                    the_year,
                    r.unit_name,
                    r.unit_code,
                    project_name=r.project_name,
                    project_type=r.project_type,
                    contact=contact or "",
                ),
                api.parse_rows(r.rows) if r.rows else sizes,
                approved,
                rows_from=f"{units.name} 第 {r.line} 行“指标行数”" if r.rows else "--rows",
                targets_file=where,
            )
            for r in unit_rows
        ]
        paths = api.make_templates(catalog, wb, idents, out_dir, password=password, force=force)
        out.print(f"已生成 {len(paths)} 个模板，保存在 {out_dir}：")
        for p in paths:
            out.print(f"  {p.name}")
        if targets:
            lacking = [i.project_name or i.unit_name for i in idents if not i.approved]
            if lacking:
                names = "、".join(lacking)
                out.print(f"注意：绩效目标文件中没有以下 {len(lacking)} 个单位（项目）的指标，其模板未预填：{names}")
        return
    if not blank:
        if not unit:
            raise XlsxKpiError("请用 --unit 指定单位名称（或用 --units 指定单位清单，或加 --blank 生成空白模板）")
        if not code:
            raise XlsxKpiError("请用 --code 指定预算单位编码")
        if is_project and not project:
            raise XlsxKpiError("项目支出表请用 --project 指定项目名称")
    if approved and not code:
        raise XlsxKpiError("使用 --targets 时请用 --code 指定预算单位编码（按编码取该单位的批复指标）")
    ident = api.make_identity(
        the_year,
        unit or "",
        code or "",
        project_name=project or "",
        project_type=project_type or "",
        contact=contact or "",
    )
    ident = api.shape_identity(catalog, wb, ident, sizes, approved, targets_file=where)
    if targets and not ident.approved:
        raise XlsxKpiError(f"绩效目标文件中没有预算单位编码 {code} 的指标", file=str(targets))
    path = output or out_dir / api.template_filename(wb, ident)
    if path.suffix.lower() != ".xlsx":
        raise XlsxKpiError("输出文件名须以 .xlsx 结尾", file=str(path))
    api.make_template(catalog, wb, ident, path, password=password, force=force)
    out.print(f"已生成模板：{path}")


def build_templates_cmd(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="输出文件夹")] = Path("templates"),
    year: Annotated[str | None, typer.Option("--year", "-y", help="模板年度（默认上一年）")] = None,
    sheets: SpecsDir = None,
) -> None:
    """由 sheets/ 重新生成 templates/ 中的空白模板（每个表种一个，覆盖旧文件）。"""
    catalog = api.load_catalog(sheets)
    the_year = parse_year(year)
    work_begins()
    for wb in catalog.workbooks.values():
        path = out_dir / f"{wb.id}.xlsx"
        api.make_template(catalog, wb, api.make_identity(the_year), path, force=True)
        out.print(f"已生成：{path}")
