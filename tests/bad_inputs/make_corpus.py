"""Generate the corpus of broken and hostile workbooks, and what `xlsx-kpi check` must answer for each.

    python tests/bad_inputs/make_corpus.py OUT_DIR    # writes the files and OUT_DIR/expected.json

tests/test_bad_inputs.py builds it into a temporary folder (~3 s) and checks every case end to end.
Each case states the exit code of `xlsx-kpi check FILE` and a Chinese substring of its answer: the
report's error (the file is unusable), its output_error (the findings stand, no annotated copy), the
command's own message on stderr, or, for files that read fine, the codes of findings it must contain.
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import re
import shutil
import struct
import sys
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import openpyxl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from published import corrected_dept_inputs, dept_published  # noqa: E402

from xlsx_kpi.audit import filing  # noqa: E402
from xlsx_kpi.audit.xml_parts import STRICT_NS  # noqa: E402
from xlsx_kpi.formats.catalog import load_specs  # noqa: E402
from xlsx_kpi.formats.plan import WorkbookLayout  # noqa: E402
from xlsx_kpi.formats.spec import Catalog, col_letters  # noqa: E402
from xlsx_kpi.ooxml import (
    package,  # noqa: E402
    parts,  # noqa: E402
)

MiB = 1024 * 1024
# A file name in GBK bytes, as unzipping a Windows zip on Linux leaves it: Python holds it with surrogates.
NON_UTF8_NAME = os.fsdecode("资阳市科协自评表".encode("gbk") + b".xlsx")
# Every start of text a spreadsheet may run as a formula (safe_text.FORMULA_PREFIXES), one per text cell.
INJECTION_TEXTS = ("=1+2", "+1+1", "-2+3", "@SUM(1,2)", "\t=1+2", "\r=1+2")
# Text that a spreadsheet would evaluate if it were ever written as a formula (CSV/formula injection).
FORMULA_TEXTS = ('=HYPERLINK("http://example.com","点我")', "+1+1", "-2+3", "@SUM(1,2)", "=1+2")


@dataclass
class Case:
    """One file (or folder) of the corpus and the answer `xlsx-kpi check` must give."""

    name: str  # file or folder name inside the corpus folder
    what: str  # what the file is, in a few words
    exit_code: int
    where: str  # "error" (unusable) | "stderr" (the command's own message) | "findings" (a report)
    message: str = ""  # substring of the error text (or of stderr)
    cell: str | None = None  # sheet!cell the error must name
    codes: tuple[str, ...] = ()  # finding codes that must be present ("findings")
    bomb: bool = False  # measured for memory and time
    formula_texts: tuple[str, ...] = ()  # texts that must stay text in the annotated copy
    # Too heavy for openpyxl: the fast annotator patches the copy (exit 0), and if it declines, the openpyxl
    # annotator's guard must refuse with this message (exit 2); both are checked.
    heavy: str = ""


# --- small builders ----------------------------------------------------------------------------------------


def rezip(src: Path, dst: Path, edit: dict[str, Callable[[str], str] | bytes | None]) -> Path:
    """Copy an xlsx, replacing members (text edit function, new bytes, or None to delete); adds new ones."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            change = edit.get(info.filename, ...)
            if change is ...:
                zout.writestr(info, zin.read(info))
            elif callable(change):
                zout.writestr(info.filename, change(zin.read(info).decode("utf-8")).encode("utf-8"))
            elif change is not None:
                zout.writestr(info.filename, change)
        for name, data in edit.items():
            if name not in zin.namelist() and isinstance(data, bytes):
                zout.writestr(name, data)
    return dst


def sheet_member(path: Path, sheet: str) -> str:
    """The zip member of a sheet, through workbook.xml and its relationships."""
    with zipfile.ZipFile(path) as zf:
        book = zf.read("xl/workbook.xml").decode()
        rels = zf.read("xl/_rels/workbook.xml.rels").decode()
    m = re.search(rf'<sheet [^>]*name="{re.escape(sheet)}"[^>]*r:id="([^"]+)"', book)
    assert m, sheet
    target = re.search(rf'Id="{m.group(1)}"[^>]*Target="([^"]+)"', rels) or re.search(
        rf'Target="([^"]+)"[^>]*Id="{m.group(1)}"', rels
    )
    assert target, sheet
    return "xl/" + target.group(1).removeprefix("/xl/")


def ole_file(streams: dict[str, bytes]) -> bytes:
    """A minimal compound file (MS-CFB version 3, 512-byte sectors) whose root storage holds `streams`.

    Streams under 4,096 bytes live in the mini stream, as the format requires; the directory is a
    balanced binary tree ordered as CFB orders names (length first, then upper case).
    """
    sector, mini_sector, cutoff = 512, 64, 4096
    free, end, fat_mark, no_stream = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
    names = sorted(streams, key=lambda n: (len(n), n.upper()))
    mini = bytearray()
    minifat: list[int] = []
    start: dict[str, int] = {}
    sectors: list[bytes] = []
    fat: list[int] = []

    def chain(data: bytes) -> int:
        if not data:
            return end
        first = len(sectors)
        count = -(-len(data) // sector)
        for i in range(count):
            sectors.append(data[i * sector : (i + 1) * sector].ljust(sector, b"\0"))
            fat.append(first + i + 1 if i < count - 1 else end)
        return first

    for n in names:
        data = streams[n]
        if len(data) < cutoff:
            start[n] = len(mini) // mini_sector
            count = max(1, -(-len(data) // mini_sector))
            minifat += [start[n] + i + 1 for i in range(count - 1)] + [end]
            mini += data.ljust(count * mini_sector, b"\0")
    for n in names:
        if len(streams[n]) >= cutoff:
            start[n] = chain(streams[n])
    minifat_start = chain(struct.pack(f"<{len(minifat)}I", *minifat)) if minifat else end
    minifat_sectors = -(-len(minifat) * 4 // sector)
    mini_start = chain(bytes(mini))

    # Directory: 0 = root, then the streams; children as a balanced tree.
    index = {n: i + 1 for i, n in enumerate(names)}
    left: dict[int, int] = {}
    right: dict[int, int] = {}

    def tree(items: list[str]) -> int:
        if not items:
            return no_stream
        mid = len(items) // 2
        node = index[items[mid]]
        left[node], right[node] = tree(items[:mid]), tree(items[mid + 1 :])
        return node

    root_child = tree(names)

    def entry(name: str, kind: int, first: int, size: int, child: int, lt: int, rt: int) -> bytes:
        raw = name.encode("utf-16-le") + b"\0\0" if name else b""
        return struct.pack(
            "<64sHBBIII16sIQQIQ",
            raw.ljust(64, b"\0"),
            len(raw),
            kind,
            1,
            lt,
            rt,
            child,
            bytes(16),
            0,
            0,
            0,
            first,
            size,
        )

    directory = entry("Root Entry", 5, mini_start if mini else end, len(mini), root_child, no_stream, no_stream)
    for n in names:
        i = index[n]
        directory += entry(n, 2, start[n], len(streams[n]), no_stream, left[i], right[i])
    while len(directory) % sector:
        directory += entry("", 0, 0, 0, no_stream, no_stream, no_stream)
    directory_start = chain(directory)

    # The FAT covers every sector, its own included.
    fat_sectors = 1
    while len(sectors) + fat_sectors > fat_sectors * (sector // 4):
        fat_sectors += 1
    fat_start = len(sectors)
    fat += [fat_mark] * fat_sectors
    fat += [free] * (fat_sectors * (sector // 4) - len(fat))
    table = struct.pack(f"<{len(fat)}I", *fat)
    sectors += [table[i * sector : (i + 1) * sector] for i in range(fat_sectors)]
    assert fat_sectors <= 109
    difat = [fat_start + i for i in range(fat_sectors)] + [free] * (109 - fat_sectors)
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII109I",
        package.OLE_MAGIC,
        bytes(16),
        0x3E,
        3,
        0xFFFE,
        9,
        6,
        bytes(6),
        0,
        fat_sectors,
        directory_start,
        0,
        cutoff,
        minifat_start,
        minifat_sectors,
        end,
        0,
        *difat,
    )
    assert len(header) == sector
    return header + b"".join(sectors)


def encrypted_workbook() -> bytes:
    """What Excel writes for a workbook with an opening password: an OLE file, not a zip (agile AES)."""
    rng = random.Random(1)

    def b64(n: int) -> str:
        return base64.b64encode(rng.randbytes(n)).decode()

    descriptor = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
        '<encryption xmlns="http://schemas.microsoft.com/office/2006/encryption" '
        'xmlns:p="http://schemas.microsoft.com/office/2006/keyEncryptor/password">'
        f'<keyData saltSize="16" blockSize="16" keyBits="256" hashSize="64" cipherAlgorithm="AES" '
        f'cipherChaining="ChainingModeCBC" hashAlgorithm="SHA512" saltValue="{b64(16)}"/>'
        f'<dataIntegrity encryptedHmacKey="{b64(64)}" encryptedHmacValue="{b64(64)}"/>'
        '<keyEncryptors><keyEncryptor uri="http://schemas.microsoft.com/office/2006/keyEncryptor/password">'
        f'<p:encryptedKey spinCount="100000" saltSize="16" blockSize="16" keyBits="256" hashSize="64" '
        f'cipherAlgorithm="AES" cipherChaining="ChainingModeCBC" hashAlgorithm="SHA512" saltValue="{b64(16)}" '
        f'encryptedVerifierHashInput="{b64(16)}" encryptedVerifierHashValue="{b64(64)}" '
        f'encryptedKeyValue="{b64(32)}"/></keyEncryptor></keyEncryptors></encryption>'
    ).encode()
    package = struct.pack("<Q", 41_000) + rng.randbytes(41_000 + 8)
    return ole_file({"EncryptionInfo": struct.pack("<HHI", 4, 4, 0x40) + descriptor, "EncryptedPackage": package})


def old_xls() -> bytes:
    """An Excel 97-2003 workbook: an OLE file with a BIFF8 "Workbook" stream (BOF, one sheet, EOF)."""
    bof = struct.pack("<HHHHHHII", 0x0809, 16, 0x0600, 0x0005, 0x0DBB, 0x07CC, 0, 0x06)
    eof = struct.pack("<HH", 0x000A, 0)
    stream = (bof + eof).ljust(4608, b"\0")
    summary = struct.pack("<HH", 0xFFFE, 0).ljust(200, b"\0")
    return ole_file({"Workbook": stream, "\x05SummaryInformation": summary})


def minimal_docx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        zf.writestr(
            "_rels/.rels",
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
            '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>',
        )
        zf.writestr(
            "word/document.xml",
            '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
            'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>2021年度部门整体支出绩效自评报告</w:t></w:r>'
            "</w:p></w:body></w:document>",
        )
    return buf.getvalue()


@dataclass
class Member:
    name: str
    data: bytes  # as stored (raw deflate for method 8)
    crc: int
    size: int
    method: int = zipfile.ZIP_DEFLATED


def raw_members(path: Path) -> list[Member]:
    """A zip's members exactly as stored (compressed bytes, CRC, sizes)."""
    out = []
    blob = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            n, e = struct.unpack_from("<HH", blob, info.header_offset + 26)
            start = info.header_offset + 30 + n + e
            out.append(
                Member(
                    info.filename,
                    blob[start : start + info.compress_size],
                    info.CRC,
                    info.file_size,
                    info.compress_type,
                )
            )
    return out


def write_zip(path: Path, members: Iterable[Member]) -> Path:
    """A plain zip of members already compressed: how a bomb's honest sizes get written without inflating it."""
    out = bytearray()
    directory = bytearray()
    count = 0
    for m in members:
        name = m.name.encode()
        offset = len(out)
        out += struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 0x800, m.method, 0, 0x21, m.crc, len(m.data), m.size, len(name), 0
        )
        out += name + m.data
        directory += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0x800,
            m.method,
            0,
            0x21,
            m.crc,
            len(m.data),
            m.size,
            len(name),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        directory += name
        count += 1
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(directory), len(out), 0)
    path.write_bytes(bytes(out + directory + end))
    return path


def repeated_deflate(parts: list[tuple[bytes, int]]) -> Member:
    """Raw deflate of each (block, times) in turn, made by repeating one fully flushed segment per block.

    After Z_FULL_FLUSH a segment is byte-aligned and refers to nothing before it, so copies of it can be
    concatenated: 150 MB of XML costs one 1 MB compression, and the member's sizes and CRC are honest.
    """
    data = bytearray()
    crc = size = 0
    for block, times in parts:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        segment = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
        data += segment * times
        for _ in range(times):
            crc = zlib.crc32(block, crc)
        size += len(block) * times
    data += zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
    return Member("", bytes(data), crc, size)


def set_declared(data: bytes, name: str, *, size: int | None = None, count: int | None = None) -> bytes:
    """Patch a member's declared size in the central directory, or the entry count in the end record."""
    out = bytearray(data)
    if count is not None:
        pos = out.rfind(b"PK\x05\x06")
        struct.pack_into("<HH", out, pos + 8, count, count)
    if size is not None:
        pos = out.find(b"PK\x01\x02")
        while pos >= 0:
            n = struct.unpack_from("<H", out, pos + 28)[0]
            if out[pos + 46 : pos + 46 + n].decode() == name:
                struct.pack_into("<I", out, pos + 24, size)
                break
            pos = out.find(b"PK\x01\x02", pos + 4)
        else:
            raise AssertionError(name)
    return bytes(out)


# --- Excel-like row edits (openpyxl moves cells; Excel also moves names, formulas and merges) -----------

_REF = re.compile(
    r"(?<![A-Za-z0-9_.$])((?:'(?:[^']|'')+'|[^\s'!(),:=+\-*/&<>^\"]+)!)?(\$?[A-Z]{1,3}\$?)(\d+)(?![\d(A-Za-z_])"
)


def shift_refs(text: str, sheet: str, here: str | None, at: int, by: int) -> str:
    """References to `sheet` at row >= `at` moved by `by` rows; `here`: the sheet the text is on (None: names).

    Excel turns a reference into a deleted row into #REF!: done here for lone cells; a range end in
    the deleted row just moves, as Excel shrinks the range.
    """
    parts = re.split(r'("(?:[^"]|"")*")', text)

    def move(m: re.Match[str]) -> str:
        prefix, col, row = m.group(1), m.group(2), int(m.group(3))
        target = (prefix[:-1].strip("'").replace("''", "'")) if prefix else here
        if target != sheet or row < at:
            return m.group(0)
        if by < 0 and row < at - by:
            lone = m.string[m.end() : m.end() + 1] != ":" and m.string[max(0, m.start() - 1) : m.start()] != ":"
            if lone:
                return f"{prefix or ''}#REF!"
            return f"{prefix or ''}{col}{at}"
        return f"{prefix or ''}{col}{row + by}"

    return "".join(p if p.startswith('"') else _REF.sub(move, p) for p in parts)


def edit_rows(src: Path, dst: Path, sheet: str, at: int, by: int, fill: dict[str, object] | None = None) -> Path:
    """Insert (by > 0) or delete (by < 0) rows at 1-based row `at` of `sheet` as Excel does, then save."""
    wb = openpyxl.load_workbook(src)
    ws = wb[sheet]
    merges = [r.coord for r in ws.merged_cells.ranges]
    for coord in merges:
        ws.unmerge_cells(coord)
    if by > 0:
        ws.insert_rows(at, by)
    else:
        ws.delete_rows(at, -by)
    for coord in merges:
        top, bottom = (int(x) for x in re.findall(r"\d+", coord))
        if by < 0 and at <= top and bottom < at - by:
            continue  # the whole merge was deleted
        moved = shift_refs(coord.replace(":", ",") + "", sheet, sheet, at, by).replace(",", ":")
        if "#REF!" not in moved:
            ws.merge_cells(moved)
    for other in wb.worksheets:
        for row in other.iter_rows():
            for cell in row:
                if cell.data_type == "f" and isinstance(cell.value, str):
                    cell.value = shift_refs(cell.value, sheet, other.title, at, by)
    for dn in wb.defined_names.values():
        dn.attr_text = shift_refs(dn.attr_text, sheet, None, at, by)
    for cell_ref, value in (fill or {}).items():
        ws[cell_ref] = value
    wb.save(dst)
    return dst


def edit_cells(src: Path, dst: Path, layout: WorkbookLayout, values: dict[str, object], *, text: bool = False) -> Path:
    """Type values into keyed cells (text=True: strings stay text, as Excel stores typed text)."""
    wb = openpyxl.load_workbook(src)
    for key, value in values.items():
        ref = layout.refs[key]
        cell = wb[ref.sheet].cell(ref.row + 1, ref.col + 1)
        cell.value = value
        if text and isinstance(value, str):
            cell.data_type = "s"
    wb.save(dst)
    return dst


def a1(layout: WorkbookLayout, key: str) -> str:
    ref = layout.refs[key]
    return f"{ref.sheet}!{col_letters(ref.col)}{ref.row + 1}"


# --- the corpus: what each file must get -------------------------------------------------------------------

E, STDERR, F = "error", "stderr", "findings"
CASES: list[Case] = [
    Case("good.xlsx", "按原报告填写的部门工作簿（4 个错误）", 1, F, codes=("rate-mismatch",)),
    Case("资阳 部门 自评 📊.xlsx", "文件名含空格、中文和 emoji", 0, F),
    # Not a workbook at all.
    Case("empty.xlsx", "空文件（0 字节）", 2, E, package.MSG_EMPTY),
    Case("photo.xlsx", "不是 zip：改了扩展名的图片", 2, E, package.MSG_UNKNOWN_FORMAT),
    Case("truncated.xlsx", "只下载了一半的 .xlsx", 2, E, package.MSG_CORRUPT),
    Case("old_format.xls", "Excel 97-2003 的 .xls", 2, E, package.MSG_XLS),
    Case("renamed_xls.xlsx", "改名为 .xlsx 的 .xls", 2, E, package.MSG_XLS),
    Case("table.csv.xlsx", "改名为 .xlsx 的 CSV（GBK 编码）", 2, E, package.MSG_TEXT),
    Case("report.docx.xlsx", "改名为 .xlsx 的 Word 文档", 2, E, parts.MSG_DOCX),
    Case("encrypted.xlsx", "设置了打开密码的工作簿（OLE 文件，含 EncryptedPackage）", 2, E, package.MSG_ENCRYPTED),
    # Workbooks we will not open.
    Case("macros.xlsm", "含宏（VBA）的 .xlsm", 2, E, parts.MSG_MACRO),
    Case("strict.xlsx", "“严格 Open XML”格式", 2, E, filing.MSG_STRICT),
    Case("bad_string_index.xlsx", "单元格指向不存在的共享文字", 2, E, package.MSG_CORRUPT, cell="附件1!G5"),
    Case("not_ours.xlsx", "不是本工具生成的模板", 2, E, filing.MSG_NOT_OURS),
    Case("old_version.xlsx", "旧版模板（第 0 版）", 2, E, "模板版本 0 已过期（当前为第 1 版）"),
    Case("sheet_renamed.xlsx", "附件2 被改名为 表2：按标题和表头文字认出并读取", 0, F, codes=("sheet-renamed",)),
    Case("sheet_deleted.xlsx", "基础数据 表被删除", 2, E, "缺少工作表“基础数据”（可能被删除或改名）"),
    Case(
        "row_deleted.xlsx",
        "删除了 附件1 第 7 行（名称变为 #REF!）",
        2,
        E,
        "模板中的这个单元格已被删除",
        cell="附件1!F7",
    ),
    # Zip bombs and XML attacks: refused before anything big is built (test_bomb_cost measures them).
    Case("bomb_declared.xlsx", "部件声明解压后 3.75 GB", 2, E, package.MSG_BOMB, bomb=True),
    Case("bomb_ratio.xlsx", "真实的高压缩比部件：150 MB 压成 0.5 MB", 2, E, package.MSG_BOMB, bomb=True),
    Case("bomb_members.xlsx", "6,000 个部件", 2, E, package.MSG_TOO_MANY, bomb=True),
    Case("bomb_hidden_members.xlsx", "结尾记录谎称 3 个部件，目录里有 6,000 个", 2, E, package.MSG_TOO_MANY, bomb=True),
    Case(
        "bomb_parse.xlsx", "压缩比正常（76 倍）：共享文字中 20 MB 的空元素", 2, E, package.MSG_TOO_MUCH_XML, bomb=True
    ),
    Case("billion_laughs.xlsx", "XML 实体膨胀（billion laughs）", 2, E, package.MSG_UNSAFE_XML, bomb=True),
    Case("external_entity.xlsx", "XML 外部实体（读取 /etc/passwd）", 2, E, package.MSG_UNSAFE_XML),
    # Read fine, but openpyxl (which loads the whole file) could not: 2.9 GB and 30 s for the merge bomb.
    Case("merge_bomb.xlsx", "一个合并区域覆盖 170 亿个单元格", 0, F, bomb=True, heavy="合并或超链接区域超过"),
    Case("cells_bomb.xlsx", "40 张附加工作表，共 1,000 万个空单元格", 0, F, bomb=True, heavy="XML 元素超过"),
    Case("formula_bomb.xlsx", "8,000 字符的共享公式由 1,000 个单元格共用", 0, F, bomb=True, heavy="共享公式展开超过"),
    # Content problems: a report with findings.
    Case("far_cell.xlsx", "XFD1048576 处有单元格，声明范围 A1:XFD1048576", 0, F),
    Case(
        "title_row_deleted.xlsx",
        "删除了 附件1 的标题行（其下单元格上移）",
        0,
        F,
        codes=("cell-moved", "formula-altered"),
    ),
    Case("rows_inserted.xlsx", "在 附件1 指标表中间插入两行", 0, F, codes=("cell-moved", "formula-altered")),
    Case("merges_changed.xlsx", "取消标题合并；分数与依据合并（依据被清空）", 1, F, codes=("basis-missing",)),
    Case("formulas_as_values.xlsx", "公式被数值覆盖", 1, F, codes=("sum-mismatch", "rate-mismatch")),
    Case("formulas_as_errors.xlsx", "公式被 #REF!、#DIV/0! 覆盖", 1, F, codes=("sum-mismatch", "rate-mismatch")),
    Case("text_in_numbers.xlsx", "数字格中填了文字", 1, F, codes=("score-not-number", "input-not-number")),
    Case(
        "absurd_numbers.xlsx",
        "负数和极大的数（-5、1e308、1e20）",
        1,
        F,
        codes=("score-above-max", "input-out-of-range"),
    ),
    Case("dates_in_numbers.xlsx", "数字格中填了日期", 1, F, codes=("score-not-number", "input-not-number")),
    Case("long_text.xlsx", "32,767 个字符的文字", 0, F),
    Case("formula_text.xlsx", "以 = + - @ 开头的文字", 1, F, codes=("identity-mismatch",), formula_texts=FORMULA_TEXTS),
    # Round 2 (issue 12): crashes, silent misreads and unsafe exports.
    Case(
        "lone_surrogate.xlsx",
        "单位名称中有孤立的代理字符转义 _xD800_，依据中有 _xDFFF_（读作 U+FFFD）",
        1,
        F,
        codes=("identity-mismatch",),
    ),
    Case(
        "injection_prefixes.xlsx",
        "文字以 = + - @ 制表符 回车 开头",
        1,
        F,
        codes=("identity-mismatch",),
        formula_texts=INJECTION_TEXTS,
    ),
    Case(NON_UTF8_NAME, "文件名是 GBK 字节（Windows 压缩包在 Linux 上解压）", 0, F),
    Case(
        "rows_sorted.xlsx",
        "附件1 的两行指标被排序对调（名称不随之移动）",
        2,
        E,
        "三级指标应为“绩效目标合理性（2分）”，此处却是“绩效指标明确性（3分）”",
        cell="附件1!C5",
    ),
    Case("duplicate_part.xlsx", "压缩包内有两个 xl/sharedStrings.xml", 2, E, "压缩包内有两个同名部件"),
    Case("duplicate_part_case.xlsx", "压缩包内有 xl/styles.xml 和 xl/Styles.xml", 2, E, "压缩包内有两个同名部件"),
    Case(
        "duplicate_cell.xlsx",
        "附件1!F5 在工作表中出现两次（值不同）",
        2,
        E,
        filing.MSG_DUPLICATE_CELL,
        cell="附件1!F5",
    ),
    Case("identity_year_edited.xlsx", "隐藏标识的年度 2021 被改成 2022", 2, E, filing.MSG_IDENTITY_TAMPERED),
    Case(
        "identity_digest_missing.xlsx",
        "隐藏标识没有校验值（旧版工具生成的模板）",
        2,
        E,
        filing.MSG_IDENTITY_MISSING,
    ),
    Case(
        "identity_year_forged.xlsx", "年度改成 2022 且重算了校验值：标题仍是 2021 年度", 1, F, codes=("year-mismatch",)
    ),
    Case("part_name_case.xlsx", "部件名大小写不同（xl/SharedStrings.xml）", 0, F),
    Case("main_part_moved.xlsx", "主部件是 xl/book.xml（由 _rels/.rels 指向）", 0, F),
    Case("url_encoded_target.xlsx", "关系目标用 URL 编码（worksheets/sheet%31.xml）", 0, F),
    Case("macros_renamed.xlsx", "宏部件改名为 xl/code.dat，只有内容类型和关系类型说明它是 VBA", 2, E, parts.MSG_MACRO),
    Case("percent_typed_95.xlsx", "百分数格中填了数字 95 和文字“95”：都读作 95%", 0, F),
    Case("row_out_of_order.xlsx", "第 1048576 行排在数据行之前", 2, E, "行的顺序错乱"),
    # Paths.
    Case("folder.xlsx", "名为 x.xlsx 的空文件夹", 2, STDERR, "没有找到要审核的 .xlsx 文件"),
    Case("~$good.xlsx", "Excel 打开文件时留下的 ~$ 锁文件（不审核）", 2, STDERR, "没有找到要审核的 .xlsx 文件"),
]


def make_corpus(folder: Path, catalog: Catalog | None = None) -> list[Case]:
    """Write every case of CASES into `folder` (created) and return CASES."""
    from seed_data import DEPT_IDENTITY  # noqa: PLC0415 - after sys.path is set

    from xlsx_kpi.formats.layout import build_layout  # noqa: PLC0415

    catalog = catalog or load_specs()
    folder.mkdir(parents=True, exist_ok=True)
    work = folder / ".work"
    clean = dept_published(catalog, work, inputs=corrected_dept_inputs(), written={}, name="clean.xlsx")
    dept_published(catalog, folder, name="good.xlsx")  # the seed's own figures: 4 errors
    layout = build_layout(catalog, catalog.workbook("sc-department"), DEPT_IDENTITY)
    s1, s3 = sheet_member(clean, "附件1"), sheet_member(clean, "基础数据")
    data = clean.read_bytes()

    def put(name: str, content: bytes) -> None:
        (folder / name).write_bytes(content)

    put("资阳 部门 自评 📊.xlsx", data)

    # Not a workbook at all.
    put("empty.xlsx", b"")
    put("photo.xlsx", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + random.Random(2).randbytes(3000))
    put("truncated.xlsx", data[: len(data) // 2])
    put("old_format.xls", old_xls())
    put("renamed_xls.xlsx", old_xls())
    put("table.csv.xlsx", "单位名称,预算单位编码,自评得分\r\n资阳市科学技术协会,156001,95.35\r\n".encode("gbk"))
    put("report.docx.xlsx", minimal_docx())
    put("encrypted.xlsx", encrypted_workbook())

    # Workbooks we will not open.
    def macro_types(xml: str) -> str:
        xml = xml.replace(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
            "application/vnd.ms-excel.sheet.macroEnabled.main+xml",
        )
        return xml.replace(
            "</Types>", '<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/></Types>'
        )

    vba = ole_file({"dir": bytes(600), "Module1": b'Attribute VB_Name = "Module1"\r\nSub Auto_Open()\r\nEnd Sub\r\n'})
    rezip(clean, folder / "macros.xlsm", {"[Content_Types].xml": macro_types, "xl/vbaProject.bin": vba})

    def strict(xml: str) -> str:
        xml = xml.replace("http://schemas.openxmlformats.org/spreadsheetml/2006/main", STRICT_NS)
        xml = xml.replace(
            "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
            "http://purl.oclc.org/ooxml/officeDocument/relationships",
        )
        return xml.replace("<workbook ", '<workbook conformance="strict" ', 1)

    with zipfile.ZipFile(clean) as zf:
        xml_parts = [n for n in zf.namelist() if n.endswith((".xml", ".rels")) and not n.startswith("[")]
    rezip(clean, folder / "strict.xlsx", {n: strict for n in xml_parts})

    basis = a1(layout, "s.goal_fit.basis").split("!")[1]
    rezip(
        clean,
        folder / "bad_string_index.xlsx",
        {s1: lambda x: re.sub(rf'(<c r="{basis}"[^>]*t="s"[^>]*><v>)\d+', r"\g<1>99999", x, count=1)},
    )
    wb = openpyxl.Workbook()
    wb.active["A1"] = "资阳市科学技术协会 2021 年度部门整体支出绩效自评表"
    wb.save(folder / "not_ours.xlsx")
    wb = openpyxl.load_workbook(clean)
    for row in wb["_xlsx_kpi"].iter_rows(min_col=1, max_col=2):
        if row[0].value == "workbook_version":
            row[1].value = "0"
    wb.save(folder / "old_version.xlsx")
    rezip(clean, folder / "sheet_renamed.xlsx", {"xl/workbook.xml": lambda x: x.replace('name="附件2"', 'name="表2"')})
    wb = openpyxl.load_workbook(clean)
    del wb["基础数据"]
    wb.save(folder / "sheet_deleted.xlsx")
    edit_rows(clean, folder / "row_deleted.xlsx", "附件1", 7, -1)

    # Zip bombs and XML attacks.
    put("bomb_declared.xlsx", set_declared(data, s1, size=0xF0000000))
    members = raw_members(clean)
    ns = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rows = (b'<row r="1"><c r="A1"><v>1</v></c></row>' * 30000)[:MiB]
    bomb = repeated_deflate([(b"<worksheet " + ns + b"><sheetData>", 1), (rows, 150), (b"</sheetData></worksheet>", 1)])
    write_zip(folder / "bomb_ratio.xlsx", [replace(m, bomb) if m.name == s1 else m for m in members])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(package.MAX_MEMBERS + 1000):
            zf.writestr(f"xl/media/i{i}.bin", b"")
    put("bomb_members.xlsx", buf.getvalue())
    put("bomb_hidden_members.xlsx", set_declared(buf.getvalue(), "", count=3))
    # Honest sizes and a ratio of ~76: 20 MB of empty elements with some noise, the slowest XML to parse.
    noise = random.Random(3).randbytes(600).hex().encode()
    junk = b"<x/>" * 16000 + b"<t>" + noise + b"</t>"
    sst = repeated_deflate([(b"<sst " + ns + b">", 1), (junk, 320), (b"</sst>", 1)])
    write_zip(folder / "bomb_parse.xlsx", [replace(m, sst) if m.name == "xl/sharedStrings.xml" else m for m in members])
    entities = "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    laughs = f'<!DOCTYPE lolz [<!ENTITY lol0 "lol">{entities}]>'
    rezip(clean, folder / "billion_laughs.xlsx", {"xl/sharedStrings.xml": add_doctype(laughs, "&lol9;")})
    xxe = '<!DOCTYPE w [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    rezip(clean, folder / "external_entity.xlsx", {"xl/workbook.xml": add_doctype(xxe, None)})

    # Read fine, but too heavy for openpyxl.
    rezip(clean, folder / "merge_bomb.xlsx", {s3: add_merge('<mergeCell ref="A2000:XFD1048576"/>')})
    rezip(clean, folder / "cells_bomb.xlsx", extra_sheets(40))
    master = "+".join(f"A{i}" for i in range(1, 1500))  # ~8,000 characters
    shared = f'<row r="3000"><c r="B3000"><f t="shared" ref="B3000:B4000" si="90">{master}</f></c></row>' + "".join(
        f'<row r="{r}"><c r="B{r}"><f t="shared" si="90"/></c></row>' for r in range(3001, 4001)
    )
    rezip(clean, folder / "formula_bomb.xlsx", {s3: lambda x: x.replace("</sheetData>", shared + "</sheetData>")})

    # Content problems.
    far = '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData>'

    def far_cell(xml: str) -> str:
        return re.sub(r'<dimension ref="[^"]*"/>', '<dimension ref="A1:XFD1048576"/>', xml).replace("</sheetData>", far)

    rezip(clean, folder / "far_cell.xlsx", {s1: far_cell})
    edit_rows(clean, folder / "title_row_deleted.xlsx", "附件1", 2, -1)
    edit_rows(clean, folder / "rows_inserted.xlsx", "附件1", 12, 2, {"C12": "自加指标", "F12": 5})
    wb = openpyxl.load_workbook(clean)
    ws = wb["附件1"]
    for rng in [r for r in ws.merged_cells.ranges if r.min_row == 2]:
        ws.unmerge_cells(rng.coord)
    score, basis = (a1(layout, f"s.staff_control.{k}").split("!")[1] for k in ("score", "basis"))
    ws.merge_cells(f"{score}:{basis}")
    wb.save(folder / "merges_changed.xlsx")
    edit_cells(clean, folder / "formulas_as_values.xlsx", layout, {"s.total": 99, "exec.total.carry_rate": 0.5})
    edit_cells(
        clean, folder / "formulas_as_errors.xlsx", layout, {"s.total": "#REF!", "exec.total.carry_rate": "#DIV/0!"}
    )
    text_numbers = {"s.key_spending.score": "满分", "exec.basic.budget": "两万", "b.staff_quota": "六人"}
    edit_cells(clean, folder / "text_in_numbers.xlsx", layout, text_numbers, text=True)
    absurd = {"s.goal_fit.score": -5, "exec.basic.budget": 1e308, "exec.basic.actual": 1e20, "b.staff_actual": -3}
    edit_cells(clean, folder / "absurd_numbers.xlsx", layout, absurd)
    dates = {"exec.basic.budget": datetime(2021, 12, 31), "s.goal_fit.score": datetime(2021, 1, 2, 12, 0)}
    edit_cells(clean, folder / "dates_in_numbers.xlsx", layout, dates)
    long_text = ("自评依据" * 8192)[:32767]
    edit_cells(clean, folder / "long_text.xlsx", layout, {"s.goal_fit.basis": long_text, "s.goal_fit.note": long_text})
    texts = dict(zip(FORMULA_TEXT_KEYS, FORMULA_TEXTS, strict=True))
    edit_cells(clean, folder / "formula_text.xlsx", layout, texts, text=True)

    make_round_two(folder, clean, layout, s1)

    # Paths: a folder named like a workbook; an Excel lock file (165 bytes: the user's name, twice).
    (folder / "folder.xlsx").mkdir()
    put("~$good.xlsx", bytes([6]) + b"zhang3".ljust(53, b" ") + "zhang3".encode("utf-16-le").ljust(111, b"\0"))

    shutil.rmtree(work)
    missing = [c.name for c in CASES if not (folder / c.name).exists()]
    assert not missing, missing
    return CASES


# The text inputs that get FORMULA_TEXTS; info.unit_name also differs from the template (identity-mismatch).
FORMULA_TEXT_KEYS = (
    "s.goal_fit.basis",
    "s.indicator_clarity.basis",
    "s.staff_control.note",
    "exec.basic.note",
    "info.unit_name",
)


def make_round_two(folder: Path, clean: Path, layout: WorkbookLayout, s1: str) -> None:
    """The files of issue 12 (the second corpus), from the clean department workbook."""
    from xlsx_kpi.formats.identity import identity_digest  # noqa: PLC0415

    texts = {"info.unit_name": "测试单位_xD800_", "s.goal_fit.basis": "依据充分_xDFFF_"}
    edit_cells(clean, folder / "lone_surrogate.xlsx", layout, texts, text=True)
    keys = (*FORMULA_TEXT_KEYS, "s.staff_control.basis")
    edit_cells(
        clean, folder / "injection_prefixes.xlsx", layout, dict(zip(keys, INJECTION_TEXTS, strict=True)), text=True
    )
    shutil.copyfile(clean, folder / NON_UTF8_NAME)

    # Data -> Sort moves the values of whole rows; the defined names stay where they were.
    wb = openpyxl.load_workbook(clean)
    ws = wb["附件1"]
    for col in "CDEFG":
        ws[f"{col}5"].value, ws[f"{col}6"].value = ws[f"{col}6"].value, ws[f"{col}5"].value
    wb.save(folder / "rows_sorted.xlsx")

    with zipfile.ZipFile(clean) as zin, zipfile.ZipFile(folder / "duplicate_part.xlsx", "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns of the duplicate name: that is the point
            zout.writestr(
                "xl/sharedStrings.xml", b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"/>'
            )
    with zipfile.ZipFile(clean) as zin, zipfile.ZipFile(folder / "duplicate_part_case.xlsx", "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info))
        zout.writestr("xl/Styles.xml", zin.read("xl/styles.xml"))

    def duplicate_f5(xml: str) -> str:
        m = re.search(r'<c r="F5"[^>]*?(?:/>|>.*?</c>)', xml, re.S)
        assert m, "F5"
        return xml[: m.end()] + '<c r="F5"><v>0</v></c>' + xml[m.end() :]

    rezip(clean, folder / "duplicate_cell.xlsx", {s1: duplicate_f5})

    wb = openpyxl.load_workbook(clean)  # a template written before the identity carried its digest
    meta_sheet = wb["_xlsx_kpi"]
    for row in meta_sheet.iter_rows(min_col=1, max_col=2):
        if row[0].value == "identity":
            meta_sheet.delete_rows(row[0].row)
            break
    wb.save(folder / "identity_digest_missing.xlsx")

    def meta_year(forge: bool) -> Callable[[openpyxl.Workbook], None]:
        def edit(wb: openpyxl.Workbook) -> None:
            rows = {row[0].value: row[1] for row in wb["_xlsx_kpi"].iter_rows(min_col=1, max_col=2)}
            rows["year"].value = "2022"
            if forge:
                rows["identity"].value = identity_digest({k: str(c.value or "") for k, c in rows.items()})

        return edit

    for name, forge in (("identity_year_edited.xlsx", False), ("identity_year_forged.xlsx", True)):
        wb = openpyxl.load_workbook(clean)
        meta_year(forge)(wb)
        wb.save(folder / name)

    with zipfile.ZipFile(clean) as zin, zipfile.ZipFile(folder / "part_name_case.xlsx", "w") as zout:
        for info in zin.infolist():
            name = "xl/SharedStrings.xml" if info.filename == "xl/sharedStrings.xml" else info.filename
            zout.writestr(name, zin.read(info), zipfile.ZIP_DEFLATED)
    moved = {"xl/workbook.xml": "xl/book.xml", "xl/_rels/workbook.xml.rels": "xl/_rels/book.xml.rels"}
    with zipfile.ZipFile(clean) as zin, zipfile.ZipFile(folder / "main_part_moved.xlsx", "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename in ("_rels/.rels", "[Content_Types].xml"):
                data = data.replace(b"xl/workbook.xml", b"xl/book.xml")
            zout.writestr(moved.get(info.filename, info.filename), data, zipfile.ZIP_DEFLATED)
    rels = "xl/_rels/workbook.xml.rels"
    rezip(
        clean,
        folder / "url_encoded_target.xlsx",
        {rels: lambda x: x.replace("worksheets/sheet1.xml", "worksheets/sheet%31.xml")},
    )

    vba = ole_file({"dir": bytes(600), "Module1": b'Attribute VB_Name = "Module1"\r\nSub Auto_Open()\r\nEnd Sub\r\n'})
    vba_type = "http://schemas.microsoft.com/office/2006/relationships/vbaProject"
    rezip(
        clean,
        folder / "macros_renamed.xlsx",
        {
            "[Content_Types].xml": lambda x: x.replace(
                "</Types>", '<Default Extension="dat" ContentType="application/vnd.ms-office.vbaProject"/></Types>'
            ),
            rels: lambda x: x.replace(
                "</Relationships>", f'<Relationship Id="rIdVba" Type="{vba_type}" Target="code.dat"/></Relationships>'
            ),
            "xl/code.dat": vba,
        },
    )
    edit_cells(
        clean, folder / "percent_typed_95.xlsx", layout, {"b.econ_degree": 95, "b.social_degree": "95"}, text=True
    )

    far_first = '<sheetData><row r="1048576"><c r="A1048576"><v>1</v></c></row>'
    rezip(clean, folder / "row_out_of_order.xlsx", {s1: lambda x: x.replace("<sheetData>", far_first, 1)})


def replace(member: Member, content: Member) -> Member:
    return Member(member.name, content.data, content.crc, content.size)


def add_doctype(doctype: str, text: str | None) -> Callable[[str], str]:
    """Put a DOCTYPE after the XML declaration (and an entity reference into the first <t>)."""

    def edit(xml: str) -> str:
        head, sep, rest = xml.partition("?>")
        if text:
            rest = rest.replace("<t>", f"<t>{text}", 1)
        return head + sep + doctype + rest

    return edit


def add_merge(merge: str) -> Callable[[str], str]:
    def edit(xml: str) -> str:
        if "<mergeCells" in xml:
            return re.sub(
                r'<mergeCells count="(\d+)">', lambda m: f'<mergeCells count="{int(m.group(1)) + 1}">{merge}', xml
            )
        return xml.replace("</sheetData>", f'</sheetData><mergeCells count="1">{merge}</mergeCells>')

    return edit


def extra_sheets(count: int) -> dict[str, Callable[[str], str] | bytes | None]:
    """`count` more worksheets of 250,000 empty cells each (1 MB apiece, so no member looks like a bomb)."""
    cells = (
        b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b"<sheetData>" + (b"<row>" + b"<c/>" * 1000 + b"</row>") * 250 + b"</sheetData></worksheet>"
    )
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"
    ctype = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
    edit: dict[str, Callable[[str], str] | bytes | None] = {
        "xl/workbook.xml": lambda x: x.replace(
            "</sheets>",
            "".join(f'<sheet name="x{i}" sheetId="{100 + i}" r:id="rIdX{i}"/>' for i in range(count)) + "</sheets>",
        ),
        "xl/_rels/workbook.xml.rels": lambda x: x.replace(
            "</Relationships>",
            "".join(f'<Relationship Id="rIdX{i}" Type="{rel}" Target="worksheets/x{i}.xml"/>' for i in range(count))
            + "</Relationships>",
        ),
        "[Content_Types].xml": lambda x: x.replace(
            "</Types>",
            "".join(f'<Override PartName="/xl/worksheets/x{i}.xml" ContentType="{ctype}"/>' for i in range(count))
            + "</Types>",
        ),
    }
    edit.update({f"xl/worksheets/x{i}.xml": cells for i in range(count)})
    return edit


def expected_json() -> str:
    """CASES as JSON: each file's expected exit code and message (tests/bad_inputs/expected.json)."""
    return json.dumps([asdict(c) for c in CASES], ensure_ascii=False, indent=2) + "\n"


def write_expected(path: Path) -> None:
    # A GBK file name holds lone surrogates: written as \udcxx escapes, which JSON reads back as the same name.
    path.write_bytes(expected_json().encode("utf-8", "backslashreplace"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/bad_inputs/make_corpus.py OUT_DIR")
    out = Path(sys.argv[1])
    corpus = make_corpus(out)
    write_expected(out / "expected.json")
    print(f"{len(corpus)} cases in {out}")
