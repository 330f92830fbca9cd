"""How wide a text shows in a cell and how many lines it wraps to: a CJK character counts 2."""

from __future__ import annotations

import math
import unicodedata

__all__ = ["display_width", "text_lines"]


class _CharWidths(dict[str, int]):
    """Columns per character (a CJK wide or full-width one counts 2), looked up once per distinct character."""

    def __missing__(self, ch: str) -> int:
        width = self[ch] = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        return width


_CHAR_WIDTHS = _CharWidths()


def display_width(text: str) -> int:
    """Width in Latin character cells: a CJK character counts 2 (XlsxWriter's autofit counts 1)."""
    return len(text) if text.isascii() else sum(map(_CHAR_WIDTHS.__getitem__, text))


def text_lines(text: str, width: float) -> int:
    """Lines a wrapped text needs in a column of `width` Excel units."""
    usable = max(2.0, width - 1.5)
    return sum(max(1, math.ceil(display_width(p) / usable)) for p in text.split("\n"))
