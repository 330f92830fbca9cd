"""Errors the user can act on: each carries one Chinese sentence and maps to exit code 2."""

from __future__ import annotations


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
