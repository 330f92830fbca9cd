"""Errors the user can act on: each carries one Chinese sentence and maps to exit code 2."""

from __future__ import annotations

import errno


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
