"""Copies of a zip written by Python's zipfile with some members' bytes replaced, byte for byte as zipfile writes them.

For a package we just wrote ourselves (a template): the copy keeps every header of the original, only the CRC,
the sizes and the offsets change; replaced members are deflated as zipfile deflates them (default level), the
others are copied still compressed. A zip written any other way (data descriptors, zip64, a comment, stored
members) is refused with ValueError: the caller writes its file another way.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO

__all__ = ["Spliceable"]


@dataclass(frozen=True)
class _Member:
    local: bytes  # the local file header, name and extra field
    raw: bytes  # the compressed bytes
    central: int  # where its entry starts in the central directory


class Spliceable:
    """A zip held in memory, ready to be copied with members replaced."""

    def __init__(self, data: bytes) -> None:
        end = data[-22:]
        sig, _, _, count, total, cd_size, cd_offset, comment = struct.unpack("<4s4H2LH", end)
        if sig != b"PK\x05\x06" or comment or count != total or cd_offset + cd_size != len(data) - 22:
            raise ValueError("unexpected zip end record")
        self.central = data[cd_offset : cd_offset + cd_size]
        self.end = end
        self.members: dict[str, _Member] = {}
        self.texts: dict[str, bytes] = {}
        with zipfile.ZipFile(BytesIO(data)) as zf:
            pos = 0
            for info in zf.infolist():
                if self.central[pos : pos + 4] != b"PK\x01\x02":
                    raise ValueError("unexpected central directory")
                name_len, extra_len, comment_len = struct.unpack_from("<3H", self.central, pos + 28)
                offset = struct.unpack_from("<L", self.central, pos + 42)[0]
                if info.flag_bits & 0x08 or info.compress_type != zipfile.ZIP_DEFLATED or offset != info.header_offset:
                    raise ValueError("unexpected zip member")
                local_len = 30 + sum(struct.unpack_from("<2H", data, offset + 26))
                raw = data[offset + local_len : offset + local_len + info.compress_size]
                self.members[info.filename] = _Member(data[offset : offset + local_len], raw, pos)
                self.texts[info.filename] = zf.read(info)  # inflated and CRC-checked once
                pos += 46 + name_len + extra_len + comment_len

    def replaced(self, new: Mapping[str, bytes]) -> bytes:
        """The zip with the members named in `new` holding those bytes; the same order, names and headers."""
        chunks: list[bytes] = []
        central = bytearray(self.central)
        pos = 0
        for name, m in self.members.items():
            local, raw = m.local, m.raw
            text = new.get(name)
            if text is not None:
                packer = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)  # as zipfile's default
                raw = packer.compress(text) + packer.flush()
                sizes = (zlib.crc32(text), len(raw), len(text))
                header = bytearray(local)
                struct.pack_into("<3L", header, 14, *sizes)
                struct.pack_into("<3L", central, m.central + 16, *sizes)
                local = bytes(header)
            struct.pack_into("<L", central, m.central + 42, pos)
            chunks += (local, raw)
            pos += len(local) + len(raw)
        end = bytearray(self.end)
        struct.pack_into("<L", end, 16, pos)
        return b"".join([*chunks, central, end])
