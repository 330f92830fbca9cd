"""Shared strings in the plain form are split once and decoded on demand; every other form goes through the
full parser; both give the same strings, and reading a workbook gives the same filing either way (issue 14)."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seed_data import DEPT_IDENTITY, dept_inputs

from xlsx_kpi.audit import filing, xml_parts
from xlsx_kpi.audit.cells import to_inputs
from xlsx_kpi.audit.reader import read_workbook
from xlsx_kpi.errors import XlsxKpiError
from xlsx_kpi.formats.layout import build_layout
from xlsx_kpi.formats.spec import Catalog
from xlsx_kpi.ooxml.shared_strings import SharedStrings, read_plain
from xlsx_kpi.outputs.template import write_template

DATA = Path(__file__).parent / "data"
NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
HEAD = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="{NS}" count="3" uniqueCount="3">'


def sst(*items: str, head: str = HEAD) -> bytes:
    return (head + "".join(items) + "</sst>").encode("utf-8")


def same(text: str) -> str:
    return text


# --- read_plain on its own ---------------------------------------------------------------------------------


def test_plain_strings_are_decoded_when_first_asked_for() -> None:
    data = sst("<si><t>单位名称</t></si>", "<si><t>A &amp; B &lt;1&gt; &#x4E2D;&#25991;</t></si>", "<si><t/></si>")
    strings = read_plain(data, 100, lambda s: s + "!")
    assert isinstance(strings, SharedStrings)
    assert len(strings) == 3 and strings.decoded == 0
    assert strings[1] == "A & B <1> 中文!"  # entities and character references resolved, then finished
    assert strings.decoded == 1
    assert strings[1] is strings[1] and strings.decoded == 1  # decoded once
    assert strings[-1] == "!" and list(strings) == ["单位名称!", "A & B <1> 中文!", "!"]


def test_rich_text_runs_are_joined_without_run_properties_and_phonetic_runs() -> None:
    # LibreOffice writes a font per script; Excel adds phonetic (furigana) runs after the text runs.
    rich = (
        '<si><r><rPr><sz val="16"/><rFont val="黑体"/><family val="2"/></rPr><t xml:space="preserve">填表说明 </t></r>'
        '<r><rPr><rFont val="WenQuanYi Zen Hei"/></rPr><t xml:space="preserve">（四川省·附件</t></r>'
        "<r><t>1）</t></r>"
        '<rPh sb="0" eb="2"><t>ティアンビャオ</t></rPh><phoneticPr fontId="1"/></si>'
    )
    strings = read_plain(sst(rich, "<si>\n  <t>缩进的</t>\n</si>"), 100, same)
    assert strings is not None
    assert strings[0] == "填表说明 （四川省·附件1）"
    assert strings[1] == "缩进的"  # whitespace between elements is not text


@pytest.mark.parametrize(
    ("what", "data"),
    [
        ("DTD", sst("<si><t>&a;</t></si>", head='<?xml version="1.0"?><!DOCTYPE sst [<!ENTITY a "b">]><sst>')),
        ("comment", sst("<si><t>a<!-- x --></t></si>")),
        ("CDATA", sst("<si><t><![CDATA[a<b]]></t></si>")),
        ("processing instruction", sst("<si><t>a</t><?pi x?></si>")),
        ("CR, which parsers turn into LF", sst("<si><t>a\r\nb</t></si>")),
        (
            "prefixed elements",
            sst("<x:si><x:t>a</x:t></x:si>", head=f'<x:sst xmlns:x="{NS}">').replace(b"</sst>", b"</x:sst>"),
        ),
        ("a <si> with attributes", sst('<si id="1"><t>a</t></si>')),
        ("a <t> holding an element", sst("<si><t>a<b/>c</t></si>")),
        ("single quotes", sst("<si><t xml:space='preserve'>a</t></si>")),
        ("a run before the first string", sst("<t>x</t><si><t>a</t></si>")),
        ("UTF-16", ('<?xml version="1.0" encoding="UTF-16"?><sst><si><t>a</t></si></sst>').encode("utf-16")),
        ("GBK", '<?xml version="1.0" encoding="GBK"?><sst><si><t>甲</t></si></sst>'.encode("gbk")),
        ("not well-formed", sst("<si><t>a</si>")),
        ("an unknown entity", sst("<si><t>&nbsp;</t></si>")),
    ],
)
def test_other_forms_are_left_to_the_full_parser(what: str, data: bytes) -> None:
    assert read_plain(data, 100, same) is None, what


def test_more_strings_than_the_limit_are_left_to_the_full_parser() -> None:
    data = sst(*["<si><t>a</t></si>"] * 11)
    assert read_plain(data, 10, same) is None
    assert len(read_plain(data, 11, same) or ()) == 11


def oracle(data: bytes) -> list[str]:
    """What OOXML says a shared string is: the text of its runs, not of run properties or phonetic runs."""
    root = ElementTree.fromstring(data)
    out = []
    for si in root.iter(f"{{{NS}}}si"):
        texts = []
        for el in si.iter():
            if el.tag == f"{{{NS}}}rPh":
                break
            if el.tag == f"{{{NS}}}t":
                texts.append(el.text or "")
        out.append("".join(texts))
    return out


text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\r\x00\ufffe\uffff"), max_size=12).filter(
    lambda s: all(ch in "\t\n" or ord(ch) >= 0x20 for ch in s)
)


@st.composite
def shared_string(draw: st.DrawFn) -> str:
    runs = draw(st.lists(text, min_size=1, max_size=3))
    if len(runs) == 1 and draw(st.booleans()):
        return f"<si><t>{escape(runs[0])}</t></si>"
    parts = []
    for run in runs:
        props = '<rPr><b/><sz val="11"/></rPr>' if draw(st.booleans()) else ""
        space = ' xml:space="preserve"' if draw(st.booleans()) else ""
        parts.append(f"<r>{props}<t{space}>{escape(run, {chr(34): '&quot;'})}</t></r>")
    if draw(st.booleans()):
        parts.append(f'<rPh sb="0" eb="1"><t>{escape(draw(text))}</t></rPh>')
    return "<si>" + "".join(parts) + "</si>"


@settings(max_examples=200, deadline=None)
@given(st.lists(shared_string(), max_size=8))
def test_plain_strings_are_what_the_runs_say(items: list[str]) -> None:
    data = sst(*items)
    strings = read_plain(data, 100, same)
    assert strings is not None
    assert list(strings) == oracle(data)


# --- the reader: the same filing whichever way the strings are read ---------------------------------------


@pytest.fixture(scope="module")
def filled(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    layout = build_layout(catalog, catalog.workbook("sc-department"), DEPT_IDENTITY)
    return write_template(layout, tmp_path_factory.mktemp("filled") / "filled.xlsx", inputs=dept_inputs())


def rezip(src: Path, dst: Path, name: str, edit: Callable[[str], str]) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info, edit(data.decode("utf-8")).encode("utf-8") if info.filename == name else data)
    return dst


def snapshot(path: Path, catalog: Catalog) -> tuple[Any, ...]:
    filing = read_workbook(path, catalog)
    return (filing.cells, filing.meta, filing.titles, filing.stray, to_inputs(filing))


def full_parser_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xml_parts, "read_plain", lambda data, limit, finish: None)


@pytest.mark.parametrize("name", ["filled", "tianfu_stray_lo.xlsx", "cn_inserted_lo.xlsx"])
def test_a_workbook_reads_the_same_through_either_parser(
    name: str, filled: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our own template and two saved by LibreOffice (rich-text runs with a font per script)."""
    path = filled if name == "filled" else DATA / name
    plain = snapshot(path, catalog)
    full_parser_only(monkeypatch)
    assert snapshot(path, catalog) == plain


def test_only_the_strings_the_cells_use_are_decoded(
    filled: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[SharedStrings] = []

    def spy(data: bytes, limit: int, finish: Callable[[str], str]) -> SharedStrings | None:
        strings = read_plain(data, limit, finish)
        assert strings is not None
        seen.append(strings)
        return strings

    monkeypatch.setattr(xml_parts, "read_plain", spy)
    filing = read_workbook(filled, catalog)
    assert filing.cells["info.unit_name"].value == "资阳市科学技术协会"
    (strings,) = seen
    with zipfile.ZipFile(filled) as zf:
        held = zf.read("xl/sharedStrings.xml").count(b"<si>")
    assert len(strings) == held
    # The 填表说明 guide's paragraphs and the 计分标准 texts are never read by the audit.
    assert 0 < strings.decoded < held / 2


def to_runs(xml: str) -> str:
    """Every <si><t>X</t></si> rewritten as two rich-text runs with properties and a phonetic run."""

    def runs(m: re.Match[str]) -> str:
        body = m.group(1)
        half = len(body) // 2
        amp = body.rfind("&", 0, half)
        if amp >= 0 and body.find(";", amp) >= half:  # not inside an entity
            half = body.find(";", amp) + 1
        return (
            f'<si><r><rPr><b/></rPr><t xml:space="preserve">{body[:half]}</t></r><r><t>{body[half:]}</t></r>'
            '<rPh sb="0" eb="1"><t>ふりがな</t></rPh></si>'
        )

    return re.sub(r"<si><t>([^<]*)</t></si>", runs, xml)


@pytest.mark.parametrize(
    ("form", "edit", "plain"),
    [
        ("rich-text runs", to_runs, True),
        ("a comment", lambda xml: xml.replace("<si>", "<!-- Excel --><si>", 1), False),
        ("a prefix", lambda xml: re.sub(r"<(/?)(sst|si|t)\b", r"<\1x:\2", xml).replace("xmlns=", "xmlns:x="), False),
    ],
)
def test_strings_written_in_other_forms_read_the_same(
    form: str, edit: Callable[[str], str], plain: bool, filled: Path, catalog: Catalog, tmp_path: Path
) -> None:
    changed = rezip(filled, tmp_path / "changed.xlsx", "xl/sharedStrings.xml", edit)
    with zipfile.ZipFile(changed) as zf:
        data = zf.read("xl/sharedStrings.xml")
    assert (read_plain(data, filing.MAX_SHARED_STRINGS, same) is not None) is plain, form
    assert snapshot(changed, catalog) == snapshot(filled, catalog)


def test_malformed_shared_strings_name_the_part(filled: Path, catalog: Catalog, tmp_path: Path) -> None:
    bad = rezip(filled, tmp_path / "bad.xlsx", "xl/sharedStrings.xml", lambda xml: xml.replace("</si>", "</t>", 1))
    with pytest.raises(XlsxKpiError) as info:
        read_workbook(bad, catalog)
    assert info.value.message == "文件已损坏（xl/sharedStrings.xml 无法解析），请在 Excel 或 WPS 中重新保存后报送"
