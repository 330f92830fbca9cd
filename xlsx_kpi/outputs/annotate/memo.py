"""What the patcher derives from a part's exact bytes, kept for the next file of the same layout.

Workbooks made from one template and not saved again by Excel (XlsxWriter's, and what tools that keep the parts
return) carry byte-identical workbook.xml, styles.xml, [Content_Types].xml, relationships and docProps/app.xml, and
worksheets that differ only inside <sheetData>. Parsing those parts with expat's callbacks was about half of a copy's
cost, so each parse is kept, keyed by the bytes themselves (never by a digest: a collision would misplace an edit),
and reused by the next file with the same bytes. A file saved by Excel has parts of its own: its keys are new, it is
parsed as before, and the entries used longest ago make room. Nothing kept is mutated by its users.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from xlsx_kpi.ooxml.patch import START_TAG, Element, Row, Unpatchable, parse_sheet, parse_tags, prefix_of, tag_attrs

__all__ = ["KEPT", "Memo", "Sheet", "flagged_sheet", "forget", "tags"]

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
class _Skeleton:
    """A worksheet parsed once, for every file whose sheet has the same bytes outside <sheetData>'s content."""

    root: Element
    length: int  # how long it was in the file parsed
    merges: list[tuple[int, int, int, int]]
    prefix: bytes  # the root's prefix ("x:" or ""), which parse_sheet looks for on rows


_SKELETONS: Memo[_Skeleton] = Memo()
_SHEET_DATA = re.compile(rb"<((?:[^\s/<>:!?]+:)?)sheetData[\s>]")


def _content(data: bytes) -> tuple[int, int] | None:
    """Where <sheetData>'s content is (from the end of its start tag to its end tag); None where not found."""
    m = _SHEET_DATA.search(data)
    if m is None:
        return None
    head = START_TAG.match(data, m.start())
    if head is None or head.group(1):
        return None
    close = re.compile(b"</" + re.escape(m.group(1)) + rb"sheetData\s*>").search(data, head.end())
    return (head.end(), close.start()) if close is not None else None


def flagged_sheet(
    data: bytes, keep: dict[str, str | None], merges_of: Callable[[Element], list[tuple[int, int, int, int]]]
) -> Sheet:
    """parse_sheet(data, keep, True) and merges_of(its root); the part outside <sheetData>'s content parsed once.

    For a sheet whose bytes outside that content are those of a sheet already parsed, expat checks only the new
    content (wrapped in one element: with the same bytes around it the part is then well-formed, as the parsed one
    was), the kept tree is reused with the offsets after the content moved by the difference in length, and the
    rows are found as parse_sheet finds them in a part with no comment, CDATA or processing instruction.
    """
    span = _content(data)
    if span is None:
        root, rows = parse_sheet(data, keep, True)
        return Sheet(root, rows, merges_of(root))
    a, b = span
    content = data[a:b]
    if b"<!" in content or b"<?" in content or b"extLst" in content:
        root, rows = parse_sheet(data, keep, True)  # parse_sheet walks such content with expat's callbacks
        return Sheet(root, rows, merges_of(root))
    key = (data[:a], data[b:], tuple(keep.items()))
    skeleton = _SKELETONS.find(key)
    if skeleton is None:
        root, rows = parse_sheet(data, keep, True)
        merges = merges_of(root)
        sheet_data = root.kid("sheetData")
        if sheet_data is not None and (sheet_data.head_end, sheet_data.inner_end) == (a, b):
            _SKELETONS.put(key, _Skeleton(root, b - a, merges, prefix_of(root.tag).encode()))
        return Sheet(root, rows, merges)
    # expat with no callbacks over the content (parse_tags' skip): Unpatchable unless it is well-formed
    parse_tags(b"<x><y>" + content + b"</y></x>", {}, None, [(6, 6 + len(content))])
    return Sheet(
        _shifted(skeleton.root, a + skeleton.length, len(content) - skeleton.length),
        _rows(data, a, b, skeleton.prefix),
        skeleton.merges,
    )


def _shifted(el: Element, at: int, delta: int) -> Element:
    """The tree with every offset from `at` on moved by `delta` (elements wholly before `at` shared)."""
    if delta == 0 or el.end < at:
        return el

    def move(n: int) -> int:
        return n + delta if n >= at else n

    return Element(
        el.tag,
        el.attrs,
        move(el.start),
        move(el.head_end),
        el.empty,
        move(el.inner_end),
        move(el.end),
        [_shifted(c, at, delta) for c in el.children],
        el.count,
    )


@functools.lru_cache(maxsize=4096)
def _row_attrs(head: bytes) -> dict[str, str]:
    """tag_attrs of a <row> start tag, once per distinct tag (a layout's rows repeat theirs): shared, read only."""
    return tag_attrs(head)


def _rows(data: bytes, a: int, b: int, p: bytes) -> list[Row]:
    """parse_sheet's rows of a part with no comment, CDATA or processing instruction in data[a:b] (<sheetData>)."""
    rows: list[Row] = []
    row_end = re.compile(b"</" + re.escape(p) + rb"row\s*>")
    for m in re.compile(b"<" + re.escape(p) + rb"row[\s/>]").finditer(data, a, b):
        head = START_TAG.match(data, m.start())
        if head is None:
            raise Unpatchable
        el = Element(
            p.decode() + "row", _row_attrs(data[m.start() : head.end()]), m.start(), head.end(), bool(head.group(1))
        )
        if el.empty:
            el.inner_end = el.end = el.head_end
        else:
            close = row_end.search(data, el.head_end, b)
            if close is None:
                raise Unpatchable
            el.inner_end, el.end = close.start(), close.end()
        rows.append(Row(el, None, -1, p))
    return rows
