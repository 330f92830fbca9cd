"""The reviewer's copy: cell formats, fills, fonts and a border appended to the workbook's styles.xml."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from xlsx_kpi.ooxml.patch import (
    MAIN_NS,
    Element,
    Unpatchable,
    apply_edits,
    check_namespace,
    parse_tags,
    prefix_of,
    set_attrs,
)
from xlsx_kpi.outputs.annotate.memo import Memo
from xlsx_kpi.outputs.review import (
    FONT,
    LINK_COLOR,
)

_FONTS = {
    # key: (bold, size, rgb colour or None, underlined): fallback.py's _BODY/_BOLD/_NOTE/_TITLE/_LINK fonts
    "body": (False, 10, None, False),
    "bold": (True, 10, None, False),
    "note": (False, 9, "595959", False),
    "title": (True, 14, None, False),
    "link": (False, 10, LINK_COLOR, True),
}
_ALIGN = {
    "wrap": 'vertical="center" wrapText="1"',
    "left": 'horizontal="left" vertical="center" wrapText="1"',
    "center": 'horizontal="center" vertical="center" wrapText="1"',
}


@dataclass(frozen=True, slots=True)
class _Parsed:
    """What Styles reads of a styles.xml (shared by every file with the same bytes: read only)."""

    p: str
    lists: dict[str, tuple[Element, int]]
    xfs: list[Element]


def _parse(data: bytes) -> _Parsed:
    root = parse_tags(data, {"cellXfs": None})
    check_namespace(root, MAIN_NS)
    lists: dict[str, tuple[Element, int]] = {}
    for name in ("fonts", "fills", "borders", "cellXfs"):
        el = root.kid(name)
        if el is None or el.empty:
            raise Unpatchable
        lists[name] = (el, el.count)
    style_xfs = root.kid("cellStyleXfs")
    if style_xfs is None or not style_xfs.count:
        raise Unpatchable  # new formats point at xfId 0
    xfs = lists["cellXfs"][0].children
    if len(xfs) != lists["cellXfs"][1] or any(xf.local != "xf" for xf in xfs):
        raise Unpatchable
    return _Parsed(prefix_of(root.tag), lists, xfs)


# styles.xml parsed once per distinct part, and patched once per distinct part and set of additions.
_PARSED: Memo[_Parsed] = Memo()
_PATCHED: Memo[bytes] = Memo()


class Styles:
    """styles.xml with fills, fonts, a border and cell formats appended (nothing existing is renumbered)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        parsed = _PARSED.get(data, lambda: _parse(data))
        self.p, self.lists, self.xfs = parsed.p, parsed.lists, parsed.xfs
        self.added: dict[str, list[str]] = {name: [] for name in self.lists}
        self.fills: dict[str, int] = {}
        self.fonts: dict[str, int] = {}
        self.border: int | None = None
        self.clones: dict[tuple[int, str], int] = {}
        self.formats: dict[tuple[Any, ...], int] = {}
        self.clone_text: list[bytes] = []

    def _add(self, name: str, xml: str) -> int:
        self.added[name].append(xml)
        return self.lists[name][1] + len(self.added[name]) - 1

    def fill(self, rgb: str) -> int:
        if rgb not in self.fills:
            p = self.p
            color = f'rgb="FF{rgb}"'
            self.fills[rgb] = self._add(
                "fills",
                f'<{p}fill><{p}patternFill patternType="solid"><{p}fgColor {color}/><{p}bgColor {color}/>'
                f"</{p}patternFill></{p}fill>",
            )
        return self.fills[rgb]

    def font(self, key: str) -> int:
        if key not in self.fonts:
            bold, size, rgb, underline = _FONTS[key]
            p = self.p
            xml = f"<{p}font>" + (f"<{p}b/>" if bold else "") + (f'<{p}u val="single"/>' if underline else "")
            xml += f'<{p}sz val="{size}"/>' + (f'<{p}color rgb="FF{rgb}"/>' if rgb else "")
            xml += f'<{p}name val="{FONT}"/><{p}charset val="134"/></{p}font>'
            self.fonts[key] = self._add("fonts", xml)
        return self.fonts[key]

    def thin_border(self) -> int:
        if self.border is None:
            p = self.p
            side = "".join(
                f'<{p}{s} style="thin"><{p}color rgb="FF808080"/></{p}{s}>' for s in ("left", "right", "top", "bottom")
            )
            self.border = self._add("borders", f"<{p}border>{side}<{p}diagonal/></{p}border>")
        return self.border

    def marked(self, style: int, rgb: str) -> int:
        """The cell format `style` with a solid `rgb` fill: a clone of its <xf> (font, border, number
        format, alignment and protection kept)."""
        key = (style, rgb)
        if key not in self.clones:
            if not 0 <= style < len(self.xfs):
                raise Unpatchable
            xf = self.xfs[style]
            head = set_attrs(self.data[xf.start : xf.head_end], {"fillId": str(self.fill(rgb)), "applyFill": "1"})
            self.clone_text.append(head + self.data[xf.head_end : xf.end])
            self.clones[key] = len(self.xfs) + len(self.clone_text) - 1
        return self.clones[key]

    def result(self, font: str, align: str | None, fill: str | None, border: bool, numfmt: int, quote: bool) -> int:
        """A cell format of the 审核结果 sheet."""
        key = (font, align, fill, border, numfmt, quote)
        if key not in self.formats:
            p = self.p
            attrs = f'numFmtId="{numfmt}" fontId="{self.font(font)}" fillId="{self.fill(fill) if fill else 0}" '
            attrs += f'borderId="{self.thin_border() if border else 0}" xfId="0" applyFont="1"'
            attrs += ' applyNumberFormat="1"' if numfmt else ""
            attrs += ' applyFill="1"' if fill else ""
            attrs += ' applyBorder="1"' if border else ""
            attrs += ' quotePrefix="1"' if quote else ""
            if align:
                xml = f'<{p}xf {attrs} applyAlignment="1"><{p}alignment {_ALIGN[align]}/></{p}xf>'
            else:
                xml = f"<{p}xf {attrs}/>"
            self.clone_text.append(xml.encode())
            self.formats[key] = len(self.xfs) + len(self.clone_text) - 1
        return self.formats[key]

    def patched(self) -> bytes:
        key = (self.data, tuple(tuple(v) for v in self.added.values()), tuple(self.clone_text))
        return _PATCHED.get(key, self._patch)

    def _patch(self) -> bytes:
        edits: list[tuple[int, int, Any, bytes]] = []
        for name, (el, count) in self.lists.items():
            if name == "cellXfs":
                new = b"".join(self.clone_text)
                added = len(self.clone_text)
            else:
                new = "".join(self.added[name]).encode()
                added = len(self.added[name])
            if not added:
                continue
            edits.append(
                (el.start, el.head_end, 0, set_attrs(self.data[el.start : el.head_end], {"count": str(count + added)}))
            )
            edits.append((el.inner_end, el.inner_end, 0, new))
        return _font_order(apply_edits(self.data, edits))


# The order of a <font>'s children in the schema (CT_Font, as the Open XML SDK and openxml-audit check it).
# openpyxl writes name, charset, family, b, …, color, sz: Excel opens that, a schema validator does not, and
# an annotated copy of an openpyxl-saved input would inherit it; the copy gets the schema's order.
_FONT_ORDER = {
    name.encode(): i
    for i, name in enumerate(
        "b i strike condense extend outline shadow u vertAlign sz color name family charset scheme".split()
    )
}
_FONT_ELEMENT = re.compile(rb"(<(?:\w+:)?font>)((?:\s*<(?:\w+:)?\w+(?:\s[^<>]*)?/>)*)(\s*</(?:\w+:)?font>)")
_EMPTY_CHILD = re.compile(rb"<(?:\w+:)?(\w+)(?:\s[^<>]*)?/>")


def _font_order(data: bytes) -> bytes:
    """styles.xml with the children of every <font> (all empty elements) in the schema's order."""

    def fix(m: re.Match[bytes]) -> bytes:
        kids = list(_EMPTY_CHILD.finditer(m.group(2)))
        if any(k.group(1) not in _FONT_ORDER for k in kids):
            return m.group(0)
        ordered = sorted(kids, key=lambda k: _FONT_ORDER[k.group(1)])
        return m.group(1) + b"".join(k.group(0) for k in ordered) + m.group(3)

    return _FONT_ELEMENT.sub(fix, data)
