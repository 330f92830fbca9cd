"""Errors the user can act on (one Chinese sentence each, exit code 2), and writing outputs safely."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


class XlsxKpiError(Exception):
    """Bad input or arguments: a Chinese message naming the file (and sheet!cell when known)."""

    exit_code = 2

    def __init__(self, message: str, file: str | None = None, cell: str | None = None) -> None:
        self.message = message
        self.file = file
        self.cell = cell
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.file:
            where = f"文件 {self.file}"
            if self.cell:
                where += f" 的 {self.cell}"
            where += "："
        return where + self.message


class SpecError(XlsxKpiError):
    """A sheets/*.yaml spec is malformed; raised when it loads, never halfway through a run."""


class OutputExistsError(XlsxKpiError):
    """An output file exists and --force was not given."""


_OS_REASONS = {
    errno.ENOSPC: "磁盘空间不足",
    errno.EACCES: "没有权限",
    errno.EPERM: "没有权限",
    errno.EROFS: "磁盘或文件夹是只读的",
    errno.ENOTDIR: "路径中有一段是文件而不是文件夹",
    errno.EEXIST: "已有同名的文件",
    errno.EISDIR: "这是一个文件夹",
    errno.ENOENT: "文件或文件夹不存在",
    errno.ENAMETOOLONG: "文件名过长",
    getattr(errno, "EDQUOT", -1): "磁盘配额已用完",
}


def os_reason(e: OSError) -> str:
    """Why a file operation failed, in Chinese, the system's words kept: 磁盘空间不足（No space left on device）."""
    detail = e.strerror or type(e).__name__
    reason = _OS_REASONS.get(e.errno or 0)
    return f"{reason}（{detail}）" if reason else detail


def write_atomically(
    path: Path, write: Callable[[Path], None], *, failure: str = "无法写入", suffix: str = ".tmp.xlsx"
) -> Path:
    """Have `write` fill a temporary file beside `path`, then rename it into place.

    A crash or a full disk leaves neither a half-written `path` nor a temporary file; an existing `path`
    is replaced whole or not at all. The file gets the permissions of any saved file (mkstemp's are 0600).
    An OSError becomes "文件 <path>：<failure>：<reason in Chinese>".
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise XlsxKpiError(f"{failure}：{os_reason(e)}", file=str(path)) from None
    tmp = Path(tmp_name)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as e:
        raise XlsxKpiError(f"{failure}：{os_reason(e)}", file=str(path)) from None
    except Exception as e:
        # XlsxWriter wraps the OSError of a full disk in its own FileCreateError(OSError).
        cause = e.args[0] if e.args and isinstance(e.args[0], OSError) else None
        if cause is None:
            raise
        raise XlsxKpiError(f"{failure}：{os_reason(cause)}", file=str(path)) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return path
