"""The commands over what a round left: history (历年对比), report (自评报告 draft), rules, and serve (the web app)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from xlsx_kpi import api
from xlsx_kpi.cli.common import SpecsDir, err, out, work_begins
from xlsx_kpi.cli.render import print_history, print_units
from xlsx_kpi.errors import XlsxKpiError, os_reason

__all__ = ["history_cmd", "report_cmd", "rules_cmd", "serve_cmd"]


def history_cmd(
    unit: Annotated[str | None, typer.Option("--unit", "-u", help="预算单位编码；不指定时列出库中的全部单位")] = None,
    db: Annotated[Path, typer.Option("--db", help="历史数据库")] = Path(api.DB_NAME),
    as_json: Annotated[bool, typer.Option("--json", help="在标准输出打印 JSON")] = False,
    csv: Annotated[Path | None, typer.Option("--csv", help="把（该单位或全部）记录导出为 CSV 文件")] = None,
    force: Annotated[bool, typer.Option("--force", help="覆盖已存在的 CSV 文件")] = False,
) -> None:
    """历年对比：一个单位各年度的合计、等级、一级指标得分、预算执行金额和问题数量。"""
    kinds = api.history_kinds()
    work_begins()
    if csv is not None:
        n = api.export_history_csv(db, csv, unit_code=unit, force=force, kinds=kinds)
        err.print(f"已导出 {n} 条记录：{csv}")
    with api.open_history(db, readonly=True) as history:
        if unit is None:
            records = history.records()
            if as_json:
                units = sorted({(r.unit_code, r.unit_name) for r in records})
                payload = [
                    {"unit_code": c, "unit_name": n, "years": sorted({r.year for r in records if r.unit_code == c})}
                    for c, n in units
                ]
                sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
            elif csv is None:
                print_units(records, db)
            return
        years = history.unit_years(unit.strip())
    if not years:
        raise XlsxKpiError(f"历史数据库中没有编码为 {unit} 的单位", file=str(db))
    if as_json:
        payload_unit = {
            "unit_code": unit.strip(),
            "unit_name": years[-1].unit_name,
            "years": [r.to_json(kinds) for r in years],
            # Amounts per year and kind, never added across kinds (projects are inside the department).
            "totals": api.kind_totals(years, kinds),
        }
        sys.stdout.write(json.dumps(payload_unit, ensure_ascii=False, indent=2) + "\n")
    else:
        print_history(years)


def serve_cmd(
    host: Annotated[
        str, typer.Option("--host", help="监听地址（默认只供本机访问；办公室内共用时设为 0.0.0.0）")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="端口")] = 8765,
    data: Annotated[Path, typer.Option("--data", help="数据文件夹（数据库和上传的文件；备份时复制整个文件夹）")] = Path(
        "xlsx-kpi-data"
    ),
    units: Annotated[
        Path | None, typer.Option("--units", help="启动时载入单位清单 .xlsx/.csv（也可在“下发”页上传）")
    ] = None,
    import_dir: Annotated[
        Path | None, typer.Option("--import", help="启动时把文件夹中的工作簿作为一批报送导入并审核（已导入的跳过）")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="审核进程数（默认 2）")] = 2,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url", help="单位报送链接使用的地址，如 http://192.168.1.20:8765（默认为审核人浏览器所用的地址）"
        ),
    ] = None,
    reset_password: Annotated[
        bool, typer.Option("--reset-password", help="忘记密码时使用：清除审核人密码，启动后用新的设置码重新设置")
    ] = False,
    ssl_certfile: Annotated[Path | None, typer.Option("--ssl-certfile", help="HTTPS 证书文件（可选）")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option("--ssl-keyfile", help="HTTPS 私钥文件（可选）")] = None,
    sheets: SpecsDir = None,
) -> None:
    """启动网页版：审核人在浏览器中下发模板、回收审核、汇总；各单位通过私人链接上传并查看审核结果。"""
    import socket

    import uvicorn

    from xlsx_kpi.web import clear_password, create_app, import_folder, load_unit_list

    if not 1 <= port <= 65535:
        raise XlsxKpiError(f"端口 {port} 无效，应在 1–65535 之间")
    if public_url is not None and not public_url.startswith(("http://", "https://")):
        raise XlsxKpiError(f"--public-url 应以 http:// 或 https:// 开头，如 http://192.168.1.20:{port}")
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise XlsxKpiError("使用 HTTPS 时须同时指定 --ssl-certfile 和 --ssl-keyfile")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            raise XlsxKpiError(
                f"无法在 {host}:{port} 上启动（{e.strerror}）；端口可能已被占用，请用 --port 换一个"
            ) from None
    if reset_password:
        clear_password(data)
    try:
        web_app = create_app(
            data,
            workers=max(1, workers),
            sheets=sheets,
            secure_cookies=ssl_certfile is not None,
            public_url=public_url,
        )
    except OSError as e:
        raise XlsxKpiError(f"无法使用数据文件夹：{os_reason(e)}", file=str(data)) from None
    web = web_app.state.web
    if units is not None:
        if not units.is_file():
            raise XlsxKpiError("单位清单文件不存在，请检查路径", file=str(units))
        n = load_unit_list(web.store, units.read_bytes(), units.name, "服务器启动")
        out.print(f"已载入单位清单：{units}（{n} 行）", markup=False)
    if import_dir is not None:
        n = import_folder(web.store, None, import_dir)
        out.print(f"已导入 {n} 个工作簿（{import_dir}），启动后自动审核", markup=False)
    scheme = "https" if ssl_certfile else "http"
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    out.print(f"xlsx-kpi 网页版：{scheme}://{shown}:{port}/    数据文件夹：{data.resolve()}", markup=False)
    if host in ("0.0.0.0", "::"):
        out.print(f"其他电脑用本机的局域网地址访问，如 {scheme}://<本机IP>:{port}/", markup=False)
    if web.setup_code:
        out.print(f"首次使用：在浏览器中打开上面的地址，输入设置码 {web.setup_code} 并设置审核人密码", markup=False)
    out.print("按 Ctrl+C 停止", markup=False)
    work_begins()  # a server runs for days: collect garbage as usual
    uvicorn.run(
        web_app,
        host=host,
        port=port,
        log_level="warning",
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )


def report_cmd(
    workbook: Annotated[Path, typer.Argument(help="已审核的部门整体或项目支出工作簿 .xlsx", show_default=False)],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="输出的自评报告 .docx（默认：工作簿名_自评报告.docx）")
    ] = None,
    outline: Annotated[
        Path | None,
        typer.Option("--outline", help="报告提纲 .yaml（默认使用内置的 sheets/reports/report-outline-*.yaml）"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="覆盖已存在的报告文件")] = False,
    sheets: SpecsDir = None,
) -> None:
    """按提纲起草自评报告（.docx）：金额、比率、得分、等级、指标完成情况取自工作簿的重新计算值，其余留出【请填写】。"""
    catalog = api.load_catalog(sheets)
    work_begins()
    draft = api.draft_report(workbook, output, catalog, outline=outline, sheets=sheets, force=force)
    out.print(f"已起草自评报告：{draft.path}", markup=False)
    out.print(f"  待填写处 {draft.fill_count} 个（黄色底纹的“【请填写：…】”），请补充后再报送。", markup=False)
    if draft.errors:
        out.print(
            f"  注意：工作簿审核发现 {draft.errors} 个错误，报告中的数字按重新计算值填写；"
            "请先运行 xlsx-kpi check 改正工作簿。",
            markup=False,
        )


def rules_cmd() -> None:
    """列出全部审核规则（代码、级别、名称、说明），即 docs/RULES.md 的内容。"""
    sys.stdout.write(api.list_rules())
