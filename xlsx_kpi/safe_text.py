"""Text we export: one rule for formula-looking text (CSV, summaries, annotated copies), names made printable.

looks_like_formula is the one rule. A CSV gets the apostrophe as a character (neutralise); an xlsx cell we
write gets it as Excel stores a typed apostrophe, the quotePrefix style (collect, both ways of the annotated copy),
so the text shows as the unit wrote it and stays text when edited. JSON reports keep the text raw.
"""

from __future__ import annotations

import re

__all__ = ["FORMULA_PREFIXES", "looks_like_formula", "neutralise", "printable"]

# What Excel, LibreOffice and WPS treat as the start of a formula (or a DDE call) when a CSV is opened or a
# cell is typed into: = + - @, and a tab or CR that some importers strip before looking at the next character.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_SURROGATE = re.compile("[\ud800-\udfff]")


def looks_like_formula(text: str) -> bool:
    """True when a spreadsheet could run `text` as a formula: it starts with one of FORMULA_PREFIXES.

    Text such as "-79.88%" counts too (OWASP's rule: no exceptions): a figure the unit typed as text
    stays text in what we write, as it was in the unit's file.
    """
    return text.startswith(FORMULA_PREFIXES)


def neutralise(text: str) -> str:
    """Text for a CSV: formula-looking text gets a leading apostrophe (OWASP's advice), lone surrogates
    become printable (a UTF-8 file cannot hold them). In a CSV the apostrophe stays visible: the reader
    sees that the unit's text began with "="."""
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


def without_spaces(text: str) -> str:
    """The text with every space, tab and line break removed: how names and labels are compared."""
    return re.sub(r"\s+", "", text)
