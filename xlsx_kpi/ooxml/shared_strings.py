"""A workbook's shared strings split once from its sharedStrings part, each decoded when a cell first uses it.

Excel, WPS, LibreOffice and XlsxWriter write the part in one plain form: UTF-8, no DTD, comment, CDATA or
processing instruction, no prefixed elements, every string as `<si>` followed by `<t>` runs. read_plain takes
bytes in that form apart with `bytes.split` and a few regular expressions, after expat has checked them
well-formed without a Python call per element; a filing then decodes only the strings its cells use (about a
third of a filled template's: the guide's paragraphs and the 计分标准 texts are never read). For anything else
it returns None, and the reader parses the part with its full parser: the same strings, the same refusals.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import overload
from xml.parsers import expat

__all__ = ["SharedStrings", "read_plain"]

_DECLARATION = re.compile(rb"<\?xml[^>]*?\?>")
_ENCODING = re.compile(rb"encoding\s*=\s*[\"']([^\"']*)[\"']")
_PREFIX = re.compile(rb"xmlns:([A-Za-z_][\w.-]*)\s*=")
_ATTRIBUTES = rb'(?:\s+[A-Za-z_][\w.:-]*\s*=\s*"[^"<>]*")*\s*'
# A text run: <t>, <t xml:space="preserve">, <t/>; its text holds no element (checked by read_plain).
_T = re.compile(rb"<t" + _ATTRIBUTES + rb"(?:/>|>([^<]*)</t>)")
_ODD_T = re.compile(rb"<t(?=[\s/>])(?!" + _ATTRIBUTES + rb"(?:/>|>[^<]*</t>))")  # any other <t>
_SIMPLE = re.compile(rb"<t>([^<]*)</t></si>\s*(?:</sst>\s*)?")  # a string without runs, as most writers put it
_ROOT = re.compile(rb"\s*<sst\b[^>]*>\s*")
# Run properties hold no text: the full parser does not look inside them (not even at a stray <t>).
_RUN_PROPERTIES = re.compile(rb"<rPr\b[^>]*/>|<rPr\b[^>]*>.*?</rPr>", re.S)
_PHONETIC = re.compile(rb"<rPh[\s/>]")  # phonetic runs follow the text runs and are not text
_REFERENCE = re.compile(r"&(?:#([0-9]+)|#x([0-9A-Fa-f]+)|(amp|lt|gt|quot|apos));")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _resolve(m: re.Match[str]) -> str:
    if m.group(3):
        return _NAMED[m.group(3)]
    return chr(int(m.group(1)) if m.group(1) else int(m.group(2), 16))


def _text(raw: bytes) -> str:
    """Text as a parser gives it: UTF-8 with the predefined entities and character references resolved.

    The bytes were checked well-formed with no DTD, so no other reference can occur.
    """
    text = raw.decode("utf-8")
    return _REFERENCE.sub(_resolve, text) if "&" in text else text


class SharedStrings(Sequence[str]):
    """The shared strings of one workbook, each decoded (and `finish`ed) when first asked for."""

    def __init__(self, items: list[bytes], finish: Callable[[str], str]) -> None:
        self._items = items  # what follows each "<si>" in the part
        self._finish = finish
        self._decoded: dict[int, str] = {}

    @property
    def decoded(self) -> int:
        """How many strings were asked for so far."""
        return len(self._decoded)

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self._items)))]
        if index < 0:
            index += len(self._items)
        text = self._decoded.get(index)
        if text is None:
            text = self._decoded[index] = self._finish(_decode(self._items[index]))
        return text


def _decode(item: bytes) -> str:
    """One string: its text runs concatenated, run properties and phonetic runs left out.

    As for the full parser, a string is all the text runs from its <si> to the next one.
    """
    simple = _SIMPLE.fullmatch(item)
    if simple is not None:
        return _text(simple.group(1))
    xml = _RUN_PROPERTIES.sub(b"", item)
    phonetic = _PHONETIC.search(xml)
    if phonetic is not None:
        xml = xml[: phonetic.start()]
    return "".join(_text(run) for run in _T.findall(xml))


def _plain_prolog(data: bytes) -> int | None:
    """Where the content after the XML declaration starts, if the part is UTF-8; None for any other encoding."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4]:
        return None
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    declaration = _DECLARATION.match(data, start)
    if declaration is None:
        return start
    encoding = _ENCODING.search(declaration.group(0))
    if encoding is not None and encoding.group(1).lower() not in (b"utf-8", b"utf8"):
        return None
    return declaration.end()


def _holds(data: bytes, markup: bytes, start: int, end: int | None = None) -> bool:
    """markup ("<!", "<?") in data[start:end]; its rare second byte is looked for first, at memory speed."""
    return data.find(markup[1:], start, end) >= 0 and data.find(markup, start, end) >= 0


def read_plain(data: bytes, limit: int, finish: Callable[[str], str]) -> SharedStrings | None:
    """The strings of a sharedStrings part's bytes; None when the bytes are not in the plain form, not
    well-formed, or hold more than `limit` strings (the full parser then reads or refuses the part).

    `finish` is applied to each string once decoded (OOXML's _xHHHH_ escapes).
    """
    start = _plain_prolog(data)
    # No DTD, comment or CDATA ("<!"), processing instruction ("<?") or CR (which parsers turn into LF). Checked
    # before expat sees the bytes: with no DTD there is no entity to expand.
    if start is None or _holds(data, b"<!", start) or _holds(data, b"<?", start) or b"\r" in data:
        return None
    # Namespace processing makes an undeclared prefix an error, so the prefixes are the declared ones.
    parser = expat.ParserCreate(namespace_separator=" ")
    try:
        parser.Parse(data, True)
    except expat.ExpatError:
        return None
    if b"xmlns:" in data and any(data.find(b"<" + prefix + b":") >= 0 for prefix in set(_PREFIX.findall(data))):
        return None
    items = data.split(b"<si>")
    head = items.pop(0)
    if len(items) > limit or len(items) != data.count(b"<si") or (items and not _ROOT.fullmatch(head, start)):
        return None  # a <si> with attributes, or anything but the root's start tag before the first one
    if _ODD_T.search(data) is not None:
        return None  # a <t> with an attribute in single quotes or holding ">", or holding an element
    return SharedStrings(items, finish)
