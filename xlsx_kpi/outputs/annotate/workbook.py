"""The reviewer's copy: workbook.xml, relationships and docProps/app.xml patched for the new first sheet."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from xlsx_kpi.ooxml.patch import (
    AFTER_DEFINED_NAMES,
    PKG_REL_NS,
    REL_NS,
    XML_DECL,
    Element,
    Unpatchable,
    apply_edits,
    check_namespace,
    int_attr,
    open_tag,
    parse_tags,
    prefix_of,
    set_attrs,
    xml_attr,
    xml_text,
)
from xlsx_kpi.outputs.annotate.result import ResultSheet
from xlsx_kpi.outputs.annotate.sheets import get_column_letter
from xlsx_kpi.outputs.review import (
    HEADERS,
    RESULT_SHEET,
)


def patch_workbook(data: bytes, book: Element, sheet_xml_id: str, rel_prefix: str | None, result: ResultSheet) -> bytes:
    """审核结果 first and active, sheet-scoped names (print titles and areas) moved to their sheets' new
    positions, and the new sheet's filter range and print titles."""
    p = prefix_of(book.tag)
    sheets = book.kid("sheets")
    if sheets is None or sheets.empty:
        raise Unpatchable
    ids = [int_attr(s.attrs.get("sheetId")) for s in sheets.kids("sheet")]
    rid = f"{rel_prefix}:id" if rel_prefix else f'xmlns:r="{REL_NS}" r:id'
    new_sheet = (
        f'<{p}sheet name="{xml_attr(RESULT_SHEET)}" sheetId="{max(ids, default=0) + 1}" {rid}="{sheet_xml_id}"/>'
    )
    edits: list[tuple[int, int, Any, bytes]] = [(sheets.head_end, sheets.head_end, 0, new_sheet.encode())]

    quoted = "'" + RESULT_SHEET.replace("'", "''") + "'"
    names = (
        f'<{p}definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">'
        f"{xml_text(quoted)}!$A${result.header}:${get_column_letter(len(HEADERS))}${result.last}</{p}definedName>"
        f'<{p}definedName name="_xlnm.Print_Titles" localSheetId="0">'
        f"{xml_text(quoted)}!${result.header}:${result.header}</{p}definedName>"
    ).encode()
    defined = book.kid("definedNames")
    if defined is None:
        after = next((c for c in book.children if c.local in AFTER_DEFINED_NAMES), None)
        pos = after.start if after is not None else book.inner_end
        edits.append((pos, pos, 0, f"<{p}definedNames>".encode() + names + f"</{p}definedNames>".encode()))
    elif defined.empty:
        edits.append(
            (
                defined.start,
                defined.end,
                0,
                open_tag(data[defined.start : defined.head_end]) + names + f"</{defined.tag}>".encode(),
            )
        )
    else:
        edits.append((defined.head_end, defined.head_end, 0, names))
        for name in defined.kids("definedName"):
            local = name.attrs.get("localSheetId")
            if local is not None:
                head = data[name.start : name.head_end]
                edits.append(
                    (name.start, name.head_end, 0, set_attrs(head, {"localSheetId": str(int_attr(local) + 1)}))
                )
    views = book.kid("bookViews")
    for view in views.kids("workbookView") if views is not None else []:
        changes: dict[str, str | None] = {"activeTab": "0"}
        if "firstSheet" in view.attrs:
            changes["firstSheet"] = "0"
        edits.append((view.start, view.head_end, 0, set_attrs(data[view.start : view.head_end], changes)))
    return apply_edits(data, edits)


def relationship_prefix(book: Element) -> str | None:
    """The prefix the workbook declares for the relationships namespace (usually "r")."""
    for key, value in book.attrs.items():
        if key.startswith("xmlns:") and value == REL_NS:
            return key[6:]
    return None


def free_id(ids: Iterable[str]) -> str:
    taken = set(ids)
    numbers = [int(i[3:]) for i in taken if i.startswith("rId") and i[3:].isdigit() and len(i) < 12]
    n = max(numbers, default=0) + 1
    while f"rId{n}" in taken:
        n += 1
    return f"rId{n}"


def _relationship(rid: str, kind: str, target: str) -> str:
    return f'<Relationship Id="{rid}" Type="{kind}" Target="{xml_attr(target)}"/>'


def add_relationships(data: bytes | None, new: list[tuple[str, str]]) -> tuple[bytes, list[str]]:
    """A .rels part (existing or new) with relationships (type, absolute target) added; returns their ids."""
    if data is None:
        ids = [f"rId{i}" for i in range(1, len(new) + 1)]
        body = "".join(_relationship(i, kind, target) for i, (kind, target) in zip(ids, new, strict=True))
        return XML_DECL + f'<Relationships xmlns="{PKG_REL_NS}">{body}</Relationships>'.encode(), ids
    root = parse_tags(data, {})
    check_namespace(root, PKG_REL_NS)
    if root.empty:
        raise Unpatchable
    taken = [el.attrs.get("Id", "") for el in root.children]
    ids = []
    for _ in new:
        ids.append(free_id(taken + ids))
    p = prefix_of(root.tag)
    body = "".join(_relationship(i, kind, target) for i, (kind, target) in zip(ids, new, strict=True))
    body = body.replace("<Relationship ", f"<{p}Relationship ") if p else body
    return apply_edits(data, [(root.inner_end, root.inner_end, 0, body.encode())]), ids


def drop_app_titles(data: bytes) -> bytes:
    """docProps/app.xml without HeadingPairs/TitlesOfParts: the sheet list there would miss 审核结果.

    Both are optional; Excel rewrites them on save, and openpyxl's copy has neither. Their contents (a vector
    item per sheet and per defined name: hundreds in a template) are checked by expat without callbacks, so a
    part that differs from the last one seen (another unit's Company, another AppVersion) costs little.
    """
    try:
        try:
            root = parse_tags(data, {}, None, _title_contents(data))
        except Unpatchable:
            root = parse_tags(data, {})  # the contents were not where the scan put them: every element walked
    except Unpatchable:
        return data  # metadata only, and nothing reads it on open: leave it as the unit sent it
    cuts = [(c.start, c.end, 0, b"") for c in root.children if c.local in _TITLES]
    return apply_edits(data, cuts) if cuts else data


_TITLES = ("HeadingPairs", "TitlesOfParts")
_ROOT = re.compile(rb"<([^\s/>!?]+)")


def _title_contents(data: bytes) -> list[tuple[int, int]]:
    """Where HeadingPairs' and TitlesOfParts' contents are (parse_tags checks that they are exactly that), in a
    part where every "<" starts a tag; [] for another part."""
    root = _ROOT.search(data)
    if b"<!" in data or data.count(b"<?") > 1 or root is None:
        return []
    p = re.escape(prefix_of(root.group(1).decode("utf-8", "replace")).encode())
    spans = []
    for name in _TITLES:
        start = re.compile(b"<" + p + name.encode() + rb"\s*>").search(data)
        if start is None:
            continue
        end = re.compile(b"</" + p + name.encode() + rb"\s*>").search(data, start.end())
        if end is None:
            return []
        spans.append((start.end(), end.start()))
    spans.sort()
    return [] if len(spans) == 2 and spans[0][1] > spans[1][0] else spans
