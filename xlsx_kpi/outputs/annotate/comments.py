"""The reviewer's copy: our 批注 as a comments part and its VML drawing of comment boxes."""

from __future__ import annotations

import re

from xlsx_kpi.ooxml.package import Package
from xlsx_kpi.ooxml.patch import (
    MAIN_NS,
    MAX_PART_BYTES,
    XML_DECL,
    read_part,
    xml_text,
)
from xlsx_kpi.outputs.annotate.sheets import a1
from xlsx_kpi.outputs.review import (
    AUTHOR,
    comment_size,
)


def comments_xml(comments: list[tuple[tuple[int, int], str]]) -> bytes:
    items = "".join(
        f'<comment ref="{a1(r, c)}" authorId="0"><text><t xml:space="preserve">{xml_text(text)}</t></text></comment>'
        for (r, c), text in comments
    )
    body = f'<comments xmlns="{MAIN_NS}"><authors><author>{xml_text(AUTHOR)}</author></authors>'
    return XML_DECL + f"{body}<commentList>{items}</commentList></comments>".encode()


def vml_drawing(comments: list[tuple[tuple[int, int], str]], block: int) -> tuple[bytes, int]:
    """The comment boxes (openpyxl's shapes, with sizes from annotate.comment_size); returns the VML and
    the number of 1024-shape id blocks used from `block` on, so drawings never share shape ids."""
    blocks = len(comments) // 1024 + 1
    data = ",".join(str(block + k) for k in range(blocks))
    shapes = []
    for i, ((r, c), text) in enumerate(comments):
        width, height = comment_size(text)
        style = (
            "position:absolute;margin-left:59.25pt;margin-top:1.5pt;"
            f"width:{width}px;height:{height}px;z-index:{i + 1};visibility:hidden"
        )
        shapes.append(
            f'<v:shape id="_x0000_s{block * 1024 + i + 1}" type="#_x0000_t202" style="{style}" fillcolor="#ffffe1"'
            ' o:insetmode="auto"><v:fill color2="#ffffe1"/><v:shadow on="t" color="black" obscured="t"/>'
            '<v:path o:connecttype="none"/><v:textbox style="mso-direction-alt:auto">'
            '<div style="text-align:left"></div></v:textbox><x:ClientData ObjectType="Note"><x:MoveWithCells/>'
            f"<x:SizeWithCells/><x:AutoFill>False</x:AutoFill><x:Row>{r - 1}</x:Row><x:Column>{c - 1}</x:Column>"
            "</x:ClientData></v:shape>"
        )
    xml = (
        '<xml xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office"'
        ' xmlns:x="urn:schemas-microsoft-com:office:excel">'
        f'<o:shapelayout v:ext="edit"><o:idmap v:ext="edit" data="{data}"/></o:shapelayout>'
        '<v:shapetype id="_x0000_t202" coordsize="21600,21600" o:spt="202" path="m,l,21600r21600,l21600,xe">'
        '<v:stroke joinstyle="miter"/><v:path gradientshapeok="t" o:connecttype="rect"/></v:shapetype>'
        + "".join(shapes)
        + "</xml>"
    )
    return xml.encode(), blocks


_IDMAP = re.compile(rb"idmap\b[^>]*?\bdata\s*=\s*[\"']([0-9,\s]{1,200})[\"']")


def first_vml_block(pkg: Package) -> int:
    """The first shape-id block no existing VML drawing (another sheet's 批注 or buttons) claims."""
    used = [0]
    for name, info in pkg.names.items():
        if name.lower().endswith(".vml") and info.file_size <= MAX_PART_BYTES:
            for m in _IDMAP.finditer(read_part(pkg, name)):
                used += [int(n) for n in m.group(1).replace(b" ", b"").split(b",") if n.isdigit() and len(n) < 7]
    return max(used) + 1
