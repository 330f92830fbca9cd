"""Text we export (CSV, summaries, annotated copies): formula-looking text neutralised, names made printable."""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["FORMULA_PREFIXES", "display_name", "json_safe", "looks_like_formula", "neutralise", "printable"]

# What Excel, LibreOffice and WPS treat as the start of a formula (or a DDE call) when a CSV is opened or a
# cell is typed into: = + - @, and a tab or CR that some importers strip before looking at the next character.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Plain numbers such as -5, +86 or -12.5% are no formula: they are left as they are.
_PLAIN_NUMBER = re.compile(r"^[+-]?(?:\d+(?:[.,]\d+)*|\.\d+)(?:[eE][+-]?\d+)?%?$")
_SURROGATE = re.compile("[\ud800-\udfff]")


def looks_like_formula(text: str) -> bool:
    """True when a spreadsheet could run `text` as a formula: it starts with one of FORMULA_PREFIXES."""
    return text.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.match(text)


def neutralise(text: str) -> str:
    """The one rule for every export: formula-looking text gets a leading apostrophe (OWASP's advice).

    The apostrophe is what a user types in Excel to keep `=1+2` as text; in a CSV and in a cell we write
    it stays visible, so the reader sees that the unit's text began with "=". Lone surrogates (from a
    file name that is not UTF-8) become printable too, as XML and UTF-8 files cannot hold them.
    """
    text = printable(text)
    return "'" + text if looks_like_formula(text) else text


def printable(text: str) -> str:
    """`text` without lone surrogates: os.fsdecode's escapes of non-UTF-8 bytes are decoded as GB18030.

    A zip made on Chinese Windows and unpacked on Linux leaves file names in GBK bytes, which Python
    holds as surrogate escapes; decoding those bytes as GB18030 gives back the Chinese name. Anything
    else that cannot be shown becomes U+FFFD.
    """
    if not _SURROGATE.search(text):
        return text
    raw = text.encode("utf-8", "surrogateescape") if _only_escapes(text) else None
    if raw is not None:
        try:
            return raw.decode("gb18030")
        except UnicodeDecodeError:
            return raw.decode("utf-8", "replace")
    return _SURROGATE.sub("\ufffd", text)


def _only_escapes(text: str) -> bool:
    """True when every surrogate is a surrogateescape byte (U+DC80..U+DCFF), i.e. came from os.fsdecode."""
    return all("\udc80" <= ch <= "\udcff" for ch in _SURROGATE.findall(text))


def display_name(path: Path | str) -> str:
    """A file's name as a person should read it (see printable)."""
    return printable(os.fspath(path) if isinstance(path, Path) else path)


def json_safe(obj: object) -> object:
    """`obj` with every string made printable, so json.dumps(ensure_ascii=False) encodes as UTF-8.

    JSON reports keep their text raw (no apostrophes): only unencodable surrogates are replaced.
    """
    if isinstance(obj, str):
        return printable(obj)
    if isinstance(obj, dict):
        return {json_safe(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj
