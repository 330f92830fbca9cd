"""What reaches the server as files: uploads and zips (bounded), unit lists, approved targets, a folder import."""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from xlsx_kpi import api
from xlsx_kpi.errors import XlsxKpiError
from xlsx_kpi.web.store import Store

if TYPE_CHECKING:
    from xlsx_kpi.web.jobs import Jobs

__all__ = [
    "Limits",
    "clear_password",
    "expand_upload",
    "import_folder",
    "load_targets",
    "load_unit_list",
    "size_text",
]


@dataclass(frozen=True)
class Limits:
    """What one request may bring. A filled template is ~40 KB; a unit's whole round is a few files."""

    request_bytes: int = 100 * 1024 * 1024  # a whole request body
    file_bytes: int = 10 * 1024 * 1024  # one workbook (in a zip too)
    files: int = 300  # file fields in one request
    zip_members: int = 500  # workbooks taken from one zip
    zip_bytes: int = 200 * 1024 * 1024  # declared uncompressed size of one zip
    unit_files: int = 20  # files one unit uploads at once


def size_text(n: int) -> str:
    """A byte count as the pages say it: "10 MB", "64 KB"."""
    return f"{n // (1024 * 1024)} MB" if n >= 1024 * 1024 else f"{n // 1024} KB"


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
        return [], [f"{name}：文件超过 {size_text(limits.file_bytes)}，未接收"]
    if not name.lower().endswith(".zip"):
        return [(name, data)], []
    declared = _declared_members(data)
    if declared is None or not data.startswith(b"PK\x03\x04"):
        return [], [f"{name}：不是有效的 zip 压缩包，未接收"]
    if declared == 0xFFFF or declared > max(limits.zip_members * 4, api.zip_member_limit()):
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
            refused.append(f"{name}/{member}：文件超过 {size_text(limits.file_bytes)}，未接收")
            continue
        taken.append((member, content))
    if not taken and not refused:
        refused.append(f"{name}：压缩包中没有 .xlsx 工作簿")
    return taken, refused


def load_unit_list(store: Store, data: bytes, name: str, who: str) -> int:
    """Store a unit list (.xlsx or .csv, as `template --units` reads it) and make each unit known."""
    suffix = ".xlsx" if data.startswith(b"PK\x03\x04") else ".csv"
    sha = store.put_bytes(data, suffix)
    try:
        rows = api.read_units(store.blob_path(sha, suffix), project=False)
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
        rows = api.read_targets(store.blob_path(sha, suffix))
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
    files = api.find_workbooks([folder])
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
