"""What the patcher derives from a part's bytes, kept for the next file of the same layout.

Workbooks made from one template and not saved again by Excel (XlsxWriter's, and what tools that keep the parts
return) carry byte-identical [Content_Types].xml, relationships, styles.xml and docProps/app.xml. Parsing those
parts with expat's callbacks was about half of a copy's cost, so each parse is kept, keyed by the bytes themselves
(never by a digest: a collision would misplace an edit), and reused by the next file with the same bytes.

Two parts differ in every return even then, but only at one end: a worksheet's <sheetData> content (the unit's
figures) and what precedes it (the view the unit left: zoom, selection, first visible cell; the dimension), and
workbook.xml's start (<bookViews> with the window's place and the active sheet, the folder it was saved in). For
these the root's children from a cut on (after </sheetData>; at <sheets>) are kept, keyed by the bytes from the
cut to the end, and each file parses only what comes before the cut. A file saved by Excel has parts of its own:
its keys are new, it is parsed as before, and the entries used longest ago make room. Nothing kept is mutated by
its users, and every tree is the one a fresh parse gives (tests/test_annotate_memo.py compares them).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from xlsx_kpi.ooxml.patch import (
    START_TAG,
    Element,
    Row,
    Unpatchable,
    parse_sheet,
    parse_tags,
    prefix_of,
    scan_rows,
    tag_attrs,
)

__all__ = ["KEPT", "Memo", "Sheet", "flagged_sheet", "forget", "sheet_root", "tags", "tags_from"]

KEPT = 64  # entries per kind: a batch mixes a few layouts; each entry holds its part's bytes (at most ~0.2 MB)
T = TypeVar("T")
_ALL: list[Memo[object]] = []


class Memo(Generic[T]):
    """A bounded map from a key to what `make` built for it; the entry used longest ago leaves first."""

    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self.entries: dict[Hashable, T] = {}
        self.lock = threading.Lock()  # the web app's threads share the entries
        _ALL.append(self)  # type: ignore[arg-type]  # forget() empties every memo

    def find(self, key: Hashable) -> T | None:
        """The kept value for `key` (now the most recently used), or None."""
        with self.lock:
            found = self.entries.pop(key, None)
            if found is not None:
                self.entries[key] = found
        return found

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        """The kept value for `key`, else make()'s (kept unless it raised)."""
        found = self.find(key)
        if found is None:
            found = make()
            self.put(key, found)
        return found

    def put(self, key: Hashable, value: T) -> None:
        with self.lock:
            if key not in self.entries and len(self.entries) >= self.kept:
                del self.entries[next(iter(self.entries))]
            self.entries[key] = value

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


def forget() -> None:
    """Empty every memo of the patcher (the next file of each layout is parsed afresh)."""
    for memo in _ALL:
        memo.clear()
    _row_attrs.cache_clear()


_TAGS: Memo[Element] = Memo()


def tags(data: bytes, keep: dict[str, str | None]) -> Element:
    """parse_tags(data, keep), parsed once per distinct part (the tree is shared: read it, never change it)."""
    return _TAGS.get((data, tuple(keep.items())), lambda: parse_tags(data, keep))


@dataclass(frozen=True, slots=True)
class Sheet:
    """A flagged worksheet parsed for patch_sheet: its tree (shared parts read only), rows, and merged ranges."""

    root: Element
    rows: list[Row]
    merges: list[tuple[int, int, int, int]]


@dataclass(frozen=True, slots=True)
class _Tail:
    """The root's children from a cut between two of them to the root's end, as parsed in a part cut at `cut`."""

    cut: int
    children: list[Element]
    inner_end: int  # the root's end tag
    end: int
    merges: list[tuple[int, int, int, int]] | None  # a worksheet's merged ranges, when its <mergeCells> is here
    instructions: int  # how many "<?" it holds (see _sheet)


_TAILS: Memo[_Tail] = Memo()
_BOOKS: Memo[Element] = Memo()
_ROOT = re.compile(rb"<([^\s/>!?]+)")
_SHEET_DATA = re.compile(rb"<((?:[^\s/<>:!?]+:)?)sheetData[\s>]")
Merges = Callable[[Element], list[tuple[int, int, int, int]]]


def _tail_key(data: bytes, cut: int, root_tag: str, keep: dict[str, str | None]) -> Hashable:
    return (data[cut:], root_tag, tuple(keep.items()))


def _joined(
    data: bytes, keep: dict[str, str | None], cut: int, skip: list[tuple[int, int]], root_tag: str, tail: _Tail
) -> Element | None:
    """The tree of a part whose bytes from `cut` are `tail`'s: expat parses the head (closed there by the root's
    end tag, `skip` checked without callbacks) and the tail's elements follow. None when the head does not parse
    as the part's start up to a boundary between two of the root's children: the caller parses the part afresh
    (and refuses it, when that is what a fresh parse does).

    The tail parsed alike in the part it was kept from: at the cut expat was, as here, in the root's content (the
    root's end tag closed the head there), and it resolves no namespace and no entity (a DTD is refused), so
    what it checks in the tail depends only on the open root, whose tag is part of the key.
    """
    try:
        root = parse_tags(data[:cut] + b"</" + root_tag.encode() + b">", keep, None, skip)
    except Unpatchable:
        return None
    if root.tag != root_tag or root.inner_end != cut:
        return None
    return _attach(root, tail, cut)


def _attach(root: Element, tail: _Tail, cut: int) -> Element:
    """`root` (new, holding the head's children) with the tail's children after them, moved to a cut at `cut`."""
    delta = cut - tail.cut
    root.children += tail.children if delta == 0 else [_moved(c, delta) for c in tail.children]
    root.count += len(tail.children)
    root.inner_end, root.end = tail.inner_end + delta, tail.end + delta
    return root


def _keep_tail(
    data: bytes, keep: dict[str, str | None], cut: int, root: Element, merges: list[tuple[int, int, int, int]] | None
) -> None:
    """Keep the children of a freshly parsed `root` from `cut` on (a boundary between two of them) for _joined."""
    if not root.head_end <= cut <= root.inner_end or root.count != len(root.children):
        return
    at = next((i for i, c in enumerate(root.children) if c.start >= cut), len(root.children))
    if at and root.children[at - 1].end > cut:
        return
    children = root.children[at:]
    if any(c.local == "mergeCells" for c in root.children[:at]):
        merges = None  # merges_of reads the first <mergeCells>: one in the head is read again for each file
    tail = _Tail(cut, children, root.inner_end, root.end, merges, data.count(b"<?", cut))
    _TAILS.put(_tail_key(data, cut, root.tag, keep), tail)


def tags_from(data: bytes, keep: dict[str, str | None], name: str) -> Element:
    """parse_tags(data, keep), with the root's children from the first <`name`> on parsed once per distinct
    bytes from there: in workbook.xml, <sheets> and <definedNames> are the template's, while what comes
    before (<fileVersion>, <workbookPr>, the saved folder in <x15ac:absPath>, <bookViews> with the window's
    place and the active sheet) is each save's own. The tree is the same as parse_tags', and read only."""
    key = (data, tuple(keep.items()))
    found = _BOOKS.find(key)
    if found is not None:
        return found
    root_tag = _ROOT.search(data)
    m = None
    if root_tag is not None:
        p = prefix_of(root_tag.group(1).decode("utf-8", "replace")).encode()
        m = re.compile(b"<" + re.escape(p + name.encode()) + rb"[\s/>]").search(data)
    if m is None or root_tag is None:
        root = parse_tags(data, keep)
    else:
        cut, tag = m.start(), root_tag.group(1).decode("utf-8", "replace")
        tail = _TAILS.find(_tail_key(data, cut, tag, keep))
        joined = _joined(data, keep, cut, [], tag, tail) if tail is not None else None
        if joined is not None:
            root = joined
        else:
            root = parse_tags(data, keep)
            _keep_tail(data, keep, cut, root, None)
    _BOOKS.put(key, root)
    return root


def _sheet_cut(data: bytes) -> tuple[int, int, int, str, bytes] | None:
    """(start, end of <sheetData>'s content, end of </sheetData>, root tag, prefix) of a worksheet whose content
    has nothing that makes parse_sheet walk it with expat's callbacks (a comment, CDATA, a processing instruction,
    an extension); None for another sheet. What lies before and after the content is checked by the caller."""
    m = _SHEET_DATA.search(data)
    if m is None or data.find(b"sheetData") != m.start() + 1 + len(m.group(1)):
        return None  # another <sheetData> first (an empty one), or the name in an attribute value
    p = m.group(1)
    root = _ROOT.search(data, 0, m.start())
    head = START_TAG.match(data, m.start())
    if (
        root is None
        or head is None
        or head.group(1)
        or p != prefix_of(root.group(1).decode("utf-8", "replace")).encode()
    ):
        return None
    close = re.compile(b"</" + re.escape(p) + rb"sheetData\s*>").search(data, head.end())
    if close is None:
        return None
    a, b = head.end(), close.start()
    content = data[a:b]
    if b"<!" in content or b"<?" in content or b"extLst" in content:
        return None
    if data.find(b"<" + p + b"dataValidations", 0, close.end()) >= 0:
        return None  # parse_sheet would not skip the one after </sheetData>
    return a, b, close.end(), root.group(1).decode("utf-8", "replace"), p


def sheet_root(data: bytes, keep: dict[str, str | None]) -> Element:
    """parse_sheet(data, keep, False)[0], the elements after <sheetData> parsed once per distinct bytes."""
    return _sheet(data, keep, None, False).root


def flagged_sheet(data: bytes, keep: dict[str, str | None], merges_of: Merges) -> Sheet:
    """parse_sheet(data, keep, True) and merges_of(its root); what follows <sheetData> parsed once per distinct bytes.

    A worksheet's bytes after </sheetData> (merges, conditional formats, validations, page set-up: most of a
    template's sheet) are the same in every return of one template; those before it (the view a unit left: zoom,
    selection, first visible cell; the dimension) often are not. For a sheet whose tail is one already parsed,
    expat parses only the head (with callbacks; not even that when the head too is one already parsed) and the
    new <sheetData> content (without: it is checked, its rows found as parse_sheet finds them in a part with no
    comment, CDATA or processing instruction), and the kept tail's elements follow, their offsets moved.
    """
    return _sheet(data, keep, merges_of, True)


def _sheet(data: bytes, keep: dict[str, str | None], merges_of: Merges | None, with_rows: bool) -> Sheet:
    """The sheet (its merges only with `merges_of`, its rows only `with_rows`), the tail joined where one is kept.

    Heads and tails are kept only from sheets that parse_sheet parses on its path without callbacks (no "<!",
    at most one "<?"), and joined only where the sheet they make is one too: the tree is then the one it gives.
    """
    found = _sheet_cut(data)
    if found is not None:
        a, b, cut, root_tag, p = found
        tail = _TAILS.find(_tail_key(data, cut, root_tag, keep))
        if tail is not None:
            head_key = (data[:a], tuple(keep.items()))
            head = _HEADS.find(head_key)
            root = None
            if head is not None:
                if head.instructions + tail.instructions <= 1:
                    root = _from_head(head, data, a, b, cut, tail)
            elif b"<!" not in data[:a] and (pis := data.count(b"<?", 0, a)) + tail.instructions <= 1:
                root = _joined(data, keep, cut, [(a, b)], root_tag, tail)
                if root is not None:
                    _keep_head(head_key, root, a, pis)
            if root is not None:
                merges = tail.merges if tail.merges is not None or merges_of is None else merges_of(root)
                return Sheet(root, _rows(data, a, b, p) if with_rows else [], merges or [])
    root, rows = parse_sheet(data, keep, with_rows)
    merges = merges_of(root) if merges_of is not None else None
    if found is not None and b"<!" not in data and data.count(b"<?") <= 1:
        sheet_data = root.kid("sheetData")
        if sheet_data is not None and (sheet_data.head_end, sheet_data.inner_end, sheet_data.end) == found[:3]:
            _keep_tail(data, keep, found[2], root, merges)
            _keep_head((data[: found[0]], tuple(keep.items())), root, found[0], data.count(b"<?", 0, found[0]))
    return Sheet(root, rows, merges or [])


@dataclass(frozen=True, slots=True)
class _Head:
    """A worksheet's root start tag, its children before <sheetData> and <sheetData>'s start tag, as parsed."""

    root: Element  # its start tag's fields; children: those before <sheetData>, all closed there
    sheet_data: Element  # its start tag's fields
    instructions: int  # how many "<?" it holds (its XML declaration)


_HEADS: Memo[_Head] = Memo()


def _keep_head(key: Hashable, root: Element, a: int, instructions: int) -> None:
    """Keep what precedes <sheetData>'s content (at `a`) in a tree just parsed, for the next sheet with those bytes."""
    at = next((i for i, c in enumerate(root.children) if c.local == "sheetData"), -1)
    if at < 0 or root.children[at].head_end != a or (at and root.children[at - 1].end > root.children[at].start):
        return
    sd = root.children[at]
    _HEADS.put(
        key,
        _Head(
            Element(root.tag, root.attrs, root.start, root.head_end, False, children=root.children[:at]),
            Element(sd.tag, sd.attrs, sd.start, sd.head_end, False),
            instructions,
        ),
    )


def _from_head(head: _Head, data: bytes, a: int, b: int, cut: int, tail: _Tail) -> Element | None:
    """The tree of a sheet whose bytes before <sheetData>'s content (data[a:b]) are a kept head's and whose bytes
    from `cut` (after </sheetData>) are `tail`'s: expat checks only the content, wrapped in one element (with the
    same bytes around it the part is then well-formed, as the parsed ones were). None where it is not: the
    caller parses the part afresh."""
    content = data[a:b]
    try:
        parse_tags(b"<x><y>" + content + b"</y></x>", {}, None, [(6, 6 + len(content))])
    except Unpatchable:
        return None
    r, sd = head.root, head.sheet_data
    children = [*r.children, Element(sd.tag, sd.attrs, sd.start, sd.head_end, False, b, cut)]
    return _attach(
        Element(r.tag, r.attrs, r.start, r.head_end, False, children=children, count=len(children)), tail, cut
    )


def _moved(el: Element, delta: int) -> Element:
    """A copy of the tree with every offset moved by `delta`."""
    return Element(
        el.tag,
        el.attrs,
        el.start + delta,
        el.head_end + delta,
        el.empty,
        el.inner_end + delta,
        el.end + delta,
        [_moved(c, delta) for c in el.children],
        el.count,
    )


@functools.lru_cache(maxsize=4096)
def _row_attrs(head: bytes) -> dict[str, str]:
    """tag_attrs of a <row> start tag, once per distinct tag (a layout's rows repeat theirs): shared, read only."""
    return tag_attrs(head)


def _rows(data: bytes, a: int, b: int, p: bytes) -> list[Row]:
    """parse_sheet's rows of a part with no comment, CDATA or processing instruction in data[a:b] (<sheetData>)."""
    return scan_rows(data, a, b, p, _row_attrs)
