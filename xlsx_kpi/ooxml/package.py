"""The xlsx package on disk: safe opening (type sniffing, zip guards) and guarded parsing of its XML parts.

The only place (with parts.py, load.py and patch.py beside it) that touches zip members and XML bytes.
"""

from __future__ import annotations

import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from xml.parsers import expat

from defusedxml.common import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

from xlsx_kpi.errors import XlsxKpiError

__all__ = [
    "BOMB_MIN_BYTES",
    "BOMB_RATIO",
    "MAX_DIRECTORY_BYTES",
    "MAX_FILE_BYTES",
    "MAX_MEMBERS",
    "MAX_PARSED_BYTES",
    "MAX_TOTAL_BYTES",
    "Members",
    "Package",
    "Stop",
    "Tags",
    "fail",
    "new_parser",
    "open_package",
    "parse_part",
    "zip_directory",
]

# --- Limits for untrusted zips (checked before any XML is parsed) ------------------------------------
# Our filled department template has 15 members and ~270 KB uncompressed; Excel files with images stay
# far below these. A real zip bomb (1 MB -> 1 GB) trips the ratio test long before the total cap.
MAX_MEMBERS = 5_000
MAX_TOTAL_BYTES = 200 * 1024 * 1024  # sum of declared uncompressed sizes (images included)
# XML actually inflated and parsed. A filled template needs ~0.4 MB; hostile XML that passes the ratio test
# (empty elements mixed with noise, ratio 76) parses at ~13 MB/s, so this also bounds the time a file can
# cost: ~1.6 s (at 200 MB, the previous bound, it was ~20 s).
MAX_PARSED_BYTES = 16 * 1024 * 1024
BOMB_MIN_BYTES = 1024 * 1024  # members smaller than this are never suspicious, whatever their ratio
BOMB_RATIO = 100  # declared size / compressed size above which a large member is a suspected bomb
CHUNK = 32 * 1024  # bytes inflated (and fed to the XML parser) at a time
MAX_FILE_BYTES = MAX_TOTAL_BYTES  # a larger file is refused before it is opened as a zip
# zipfile builds a ZipInfo (~0.5 KB) for every entry the central directory holds, whatever count the end
# record declares: its size is checked first (a real entry takes ~100 bytes).
MAX_DIRECTORY_BYTES = MAX_MEMBERS * 1024
MAX_OLE_SCAN = 64 * 1024 * 1024  # bytes of an OLE file searched for the encryption stream's name
# Package.raw hands out a member's compressed bytes as an identity of its content up to this size.
RAW_MAX_BYTES = 256 * 1024

# --- The refusals: one Chinese sentence each, saying what to do ---------------------------------------
MSG_NOT_FOUND = "文件不存在，请检查文件名和路径"
MSG_IS_DIR = "这是一个文件夹，不是 Excel 文件，请指定其中的 .xlsx 文件"
MSG_NO_PERMISSION = "没有读取权限，请关闭正在使用它的程序或检查文件权限后重试"
MSG_EMPTY = "文件是空的（0 字节），请重新保存或重新索取后报送"
MSG_UNREADABLE = "无法读取文件（{detail}），请检查文件后重试"
MSG_ENCRYPTED = "工作簿设置了打开密码（已加密），请取消密码后另存为 .xlsx 再报送"
MSG_XLS = "这是旧版 Excel 97-2003（.xls）文件，请在 Excel 或 WPS 中另存为 .xlsx"
MSG_TEXT = "这不是 Excel 工作簿（看起来是文本、CSV 或网页文件），请使用下发的 .xlsx 模板"
MSG_UNKNOWN_FORMAT = "文件格式无法识别，不是 Excel 工作簿，请使用下发的 .xlsx 模板"
MSG_BOMB = "文件异常（压缩比过高，疑似压缩炸弹），已拒绝读取"
MSG_TOO_MANY = f"文件异常（压缩包内超过 {MAX_MEMBERS} 个部件），已拒绝读取"
MSG_TOO_BIG = f"文件异常（解压后超过 {MAX_TOTAL_BYTES // (1024 * 1024)} MB），已拒绝读取"
MSG_TOO_MUCH_XML = (
    f"文件异常（表格内容解压后超过 {MAX_PARSED_BYTES // (1024 * 1024)} MB，远大于填报的模板），已拒绝读取"
)
MSG_FILE_TOO_BIG = f"文件过大（超过 {MAX_FILE_BYTES // (1024 * 1024)} MB），不是填报的模板，已拒绝读取"
MSG_SIZE_LIE = "文件异常（压缩包部件解压后超过其声明的大小），已拒绝读取"
MSG_CORRUPT = "文件已损坏（不是完整的 .xlsx），请重新保存或重新索取"
MSG_BAD_PART = "文件已损坏（{part} 无法解析），请在 Excel 或 WPS 中重新保存后报送"
MSG_UNSAFE_XML = "文件包含不安全的 XML 内容（DTD/实体声明），已拒绝读取，请用 Excel 或 WPS 重新保存后报送"
MSG_DUPLICATE_PART = (
    "文件已损坏（压缩包内有两个同名部件 {part}，不同软件会读出不同的内容），请在 Excel 或 WPS 中重新保存后报送"
)

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")


class Stop(Exception):
    """Raised from a parser callback once everything needed from a part has been seen (parse_part ends quietly)."""


def fail(message: str, path: Path, cell: str | None = None) -> XlsxKpiError:
    return XlsxKpiError(message, file=str(path), cell=cell)


# --- Opening the file ---------------------------------------------------------------------------------


def _open(path: Path) -> IO[bytes]:
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise fail(MSG_NOT_FOUND, path) from None
    except PermissionError:
        raise fail(MSG_NO_PERMISSION, path) from None
    except OSError as e:
        raise fail(MSG_UNREADABLE.format(detail=e.strerror or e), path) from None
    if stat.S_ISDIR(st.st_mode):
        raise fail(MSG_IS_DIR, path)
    if st.st_size == 0:
        raise fail(MSG_EMPTY, path)
    if st.st_size > MAX_FILE_BYTES:
        raise fail(MSG_FILE_TOO_BIG, path)
    try:
        return path.open("rb")
    except PermissionError:
        raise fail(MSG_NO_PERMISSION, path) from None
    except OSError as e:
        raise fail(MSG_UNREADABLE.format(detail=e.strerror or e), path) from None


def _looks_like_text(head: bytes) -> bool:
    """CSV, TSV, HTML, MHT and XML-2003 files saved as .xlsx: no NUL bytes and decodable text."""
    if head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return True
    if b"\x00" in head:
        return False
    sample = head[:4096]
    for encoding in ("utf-8", "gb18030"):
        try:
            text = sample.decode(encoding)
        except UnicodeDecodeError:
            # The sample may end inside a multi-byte character.
            try:
                text = sample[:-3].decode(encoding)
            except UnicodeDecodeError:
                continue
        return all(ch.isprintable() or ch in "\r\n\t\f" for ch in text)
    return False


def _sniff(fh: IO[bytes], path: Path) -> None:
    """Say what a file really is when it is not a zip, before zipfile gives a useless message."""
    head = fh.read(8192)
    fh.seek(0)
    if head.startswith(ZIP_MAGIC):
        return
    if head.startswith(OLE_MAGIC):
        # Encrypted OOXML is an OLE container with an "EncryptedPackage" stream; search for its
        # directory entry (the name in UTF-16LE) rather than parse the FAT chain.
        tail = b""
        scanned = 0
        while scanned < MAX_OLE_SCAN:
            block = fh.read(1024 * 1024)
            if not block:
                break
            if ENCRYPTED_STREAM in tail + block:
                raise fail(MSG_ENCRYPTED, path)
            tail = block[-len(ENCRYPTED_STREAM) :]
            scanned += len(block)
        raise fail(MSG_XLS, path)
    if _looks_like_text(head):
        raise fail(MSG_TEXT, path)
    raise fail(MSG_UNKNOWN_FORMAT, path)


def zip_directory(fh: IO[bytes]) -> tuple[int, int] | None:
    """(members, central directory bytes) declared by the end-of-central-directory record (zip64 too).

    None if the record is not found. Read before zipfile builds a ZipInfo per entry, because a small
    file can declare millions, and zipfile parses as many entries as the directory's size holds.
    """
    size = fh.seek(0, 2)
    fh.seek(max(0, size - 22 - 65535))
    tail = fh.read()
    fh.seek(0)
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or pos + 22 > len(tail):
        return None
    entries: int
    directory: int
    entries, directory = struct.unpack_from("<HI", tail, pos + 10)
    if (entries == 0xFFFF or directory == 0xFFFFFFFF) and pos >= 20 and tail[pos - 20 : pos - 16] == b"PK\x06\x07":
        fh.seek(struct.unpack_from("<Q", tail, pos - 12)[0])
        record = fh.read(56)
        fh.seek(0)
        if len(record) == 56 and record[:4] == b"PK\x06\x06":
            entries, directory = struct.unpack_from("<QQ", record, 32)
    return entries, directory


def _open_zip(fh: IO[bytes], path: Path) -> zipfile.ZipFile:
    """The zip's directory, refused up front when it declares (or holds) too many members."""
    declared = zip_directory(fh)
    if declared is not None and (declared[0] > MAX_MEMBERS or declared[1] > MAX_DIRECTORY_BYTES):
        raise fail(MSG_TOO_MANY, path)
    try:
        return zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise fail(MSG_CORRUPT, path) from None


class Members(dict[str, zipfile.ZipInfo]):
    """Zip items by part name, matched without regard to case (OPC: xl/SharedStrings.xml is xl/sharedStrings.xml)."""

    def __setitem__(self, name: str, info: zipfile.ZipInfo) -> None:
        super().__setitem__(name.lower(), info)

    def __getitem__(self, name: str) -> zipfile.ZipInfo:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class Package:
    """The zip, checked against bombs up front; members are inflated here, only when read, with a byte budget.

    zipfile reads the central directory; the member data is inflated directly with zlib (zipfile's
    per-member reader costs ~0.3 ms per workbook), so output is capped at each member's declared
    size and the total budget as it is produced, and the CRC is checked when a member is read whole.
    `budget` bounds the bytes inflated over all members (None: only each member's declared size and
    the limit given to read()); the reader keeps MAX_PARSED_BYTES, the annotator reads whole parts.
    """

    def __init__(self, zf: zipfile.ZipFile, fh: IO[bytes], path: Path, budget: int | None = MAX_PARSED_BYTES) -> None:
        self.fh = fh
        self.path = path
        self.budget = budget
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise fail(MSG_TOO_MANY, path)
        total = 0
        for info in infos:
            if info.file_size > BOMB_MIN_BYTES and info.file_size > BOMB_RATIO * max(info.compress_size, 1):
                raise fail(MSG_BOMB, path)
            total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise fail(MSG_TOO_BIG, path)
        self.members = Members()
        for info in infos:
            # OPC part names compare without regard to case: two items equal but for case are duplicates too.
            if info.filename in self.members:
                raise fail(MSG_DUPLICATE_PART.format(part=info.filename), path)
            self.members[info.filename] = info
        self.infos = infos  # in the order of the zip's directory
        self.names = {info.filename: info for info in infos}  # by exact item name (members: regardless of case)
        self.inflated = 0
        self.main = "xl/workbook.xml"  # the main (workbook) part, found through _rels/.rels by parts.check_kind

    def chunks(self, name: str) -> Iterator[bytes]:
        """A member's bytes, CHUNK at a time; a member that inflates past its declared size is refused."""
        info = self.members[name]
        corrupt = fail(MSG_CORRUPT, self.path)
        if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise corrupt  # an encrypted member, or a compression Excel never uses
        fh = self.fh
        try:
            pos = self._data_offset(info)
            raw_left = info.compress_size
            inflater = zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
            pending = b""
            produced = crc = 0
            while True:
                if not pending and raw_left:
                    fh.seek(pos)
                    pending = fh.read(min(CHUNK, raw_left))
                    if not pending:
                        raise corrupt  # the file ends inside the member
                    pos += len(pending)
                    raw_left -= len(pending)
                if inflater is None:
                    out, pending = pending, b""
                else:
                    out = inflater.decompress(pending, CHUNK)
                    pending = inflater.unconsumed_tail
                if not out:
                    if (inflater is not None and inflater.eof) or (not pending and not raw_left):
                        break
                    continue
                produced += len(out)
                self.inflated += len(out)
                if produced > info.file_size:
                    raise fail(MSG_SIZE_LIE, self.path)
                if self.budget is not None and self.inflated > self.budget:
                    raise fail(MSG_TOO_MUCH_XML, self.path)
                crc = zlib.crc32(out, crc)
                yield out
        except (zlib.error, OSError):
            raise corrupt from None
        if produced != info.file_size or crc != info.CRC:
            raise corrupt

    def _data_offset(self, info: zipfile.ZipInfo) -> int:
        """Where a member's compressed bytes start (after its local header); OSError or corrupt if unreadable."""
        self.fh.seek(info.header_offset)
        header = self.fh.read(30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise fail(MSG_CORRUPT, self.path)
        name_len, extra_len = struct.unpack_from("<HH", header, 26)
        return int(info.header_offset + 30 + name_len + extra_len)

    def read(self, name: str, limit: int | None = None) -> bytes:
        """A whole member, CRC checked; one declared larger than `limit` bytes is refused (MSG_TOO_MUCH_XML)."""
        if limit is not None and self.members[name].file_size > limit:
            raise fail(MSG_TOO_MUCH_XML, self.path)
        return b"".join(self.chunks(name))

    def compressed(self, info: zipfile.ZipInfo) -> bytes:
        """A member's compressed bytes as stored, to copy it into another zip without inflating it."""
        try:
            self.fh.seek(self._data_offset(info))
            data = self.fh.read(info.compress_size)
        except OSError:
            raise fail(MSG_CORRUPT, self.path) from None
        if len(data) != info.compress_size:
            raise fail(MSG_CORRUPT, self.path)
        return data

    def raw(self, name: str) -> bytes | None:
        """A small member's compressed bytes, as an identity of its content; None when not worth it."""
        info = self.members.get(name)
        if info is None or info.compress_size > RAW_MAX_BYTES:
            return None
        try:
            self.fh.seek(self._data_offset(info))
            data = self.fh.read(info.compress_size)
        except OSError:
            return None  # the real read reports it
        return data if len(data) == info.compress_size else None


@contextmanager
def open_package(path: Path, budget: int | None = MAX_PARSED_BYTES) -> Iterator[Package]:
    """The file at `path` opened as a checked zip package (closed on exit).

    Refused with one Chinese sentence naming the file (XlsxKpiError, exit code 2): a missing, empty,
    unreadable or oversized file, anything that is not a zip (said what it is: .xls, encrypted, text,
    ...), a damaged zip, too many members, a suspected zip bomb, two members of the same name.
    """
    path = Path(path)
    with _open(path) as fh:
        _sniff(fh, path)
        with _open_zip(fh, path) as zf:
            yield Package(zf, fh, path, budget)


# --- XML parts ------------------------------------------------------------------------------------------
# Every part is parsed by expat with defusedxml's guards installed (the four callbacks its own parsers install: a
# DOCTYPE, an entity declaration or an external entity raises defusedxml's exception). They are the handlers of
# defusedxml.expatreader.DefusedExpatParser, written out here because importing that module pulls in xml.sax and
# through it urllib, http and email (~20 ms of every `check`, issue 14). The element
# callbacks are lean closures rather than an ElementTree builder, because building elements for every
# cell costs several times the whole read budget; namespace processing is left off for the same
# reason, and tags are matched by local name. A callback raises Stop once a part has given all we need.


def _refuse_doctype(name: str, sysid: str | None, pubid: str | None, has_internal_subset: bool) -> None:
    raise DTDForbidden(name, sysid, pubid)


def _refuse_entity(
    name: str,
    is_parameter_entity: bool,
    value: str | None,
    base: str | None,
    sysid: str | None,
    pubid: str | None,
    notation_name: str | None,
) -> None:
    raise EntitiesForbidden(name, value, base, sysid, pubid, notation_name)


def _refuse_unparsed_entity(
    name: str, base: str | None, sysid: str | None, pubid: str | None, notation_name: str | None
) -> None:
    raise EntitiesForbidden(name, None, base, sysid, pubid, notation_name)


def _refuse_external_entity(context: str, base: str | None, sysid: str | None, pubid: str | None) -> int:
    raise ExternalReferenceForbidden(context, base, sysid, pubid)


def new_parser() -> expat.XMLParserType:
    """A fresh expat parser with defusedxml's guards: a DOCTYPE or an entity in an untrusted part raises."""
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_entity
    parser.UnparsedEntityDeclHandler = _refuse_unparsed_entity
    parser.ExternalEntityRefHandler = _refuse_external_entity
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.ordered_attributes = False
    parser.buffer_text = True
    return parser


def parse_part(pkg: Package, name: str, parser: expat.XMLParserType, chunks: Iterator[bytes] | None = None) -> None:
    """Feed a member (or `chunks` of it) to `parser`; Stop from a callback ends it quietly.

    A DOCTYPE or entity declaration is refused as MSG_UNSAFE_XML, malformed XML as MSG_BAD_PART.
    """
    try:
        for chunk in pkg.chunks(name) if chunks is None else chunks:
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except Stop:
        pass
    except DefusedXmlException:
        raise fail(MSG_UNSAFE_XML, pkg.path) from None
    except expat.ExpatError:
        raise fail(MSG_BAD_PART.format(part=name), pkg.path) from None


class Tags(dict[str, Any]):
    """Tag -> meaning, by local name: "x:c" finds "c" (the lookup is then cached for this parse)."""

    def __missing__(self, tag: str) -> Any:
        prefix, _, local = tag.rpartition(":")
        value = self.get(local) if prefix else None
        self[tag] = value
        return value
