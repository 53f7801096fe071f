"""U-Boot's legacy image format ("uImage"): a 64-byte big-endian header, then the data.

Header (U-Boot include/image.h, struct legacy_img_hdr): magic 0x27051956,
header CRC32 (computed with this field zeroed), timestamp, data size, load
address, entry point, data CRC32, os, arch, type, compression, 32-byte name.

Multi-file and script images start their data with a list of big-endian u32
part lengths ended by a zero word; each part but the last is padded to 4
bytes. ``source`` runs the first part of a script image.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import construct as cs

from felboot.errors import ImageError

LEGACY_MAGIC = 0x27051956
LEGACY_HEADER_SIZE = 64
LEGACY_NAME_SIZE = 32

# Values from include/image.h (IH_OS_*, IH_ARCH_*, IH_TYPE_*, IH_COMP_*).
OS_LINUX = 5
OS_U_BOOT = 17
OS_ARM_TRUSTED_FIRMWARE = 25
OS_NAMES = {OS_LINUX: "Linux", OS_U_BOOT: "U-Boot", OS_ARM_TRUSTED_FIRMWARE: "ARM Trusted Firmware"}

ARCH_ARM = 2
ARCH_ARM64 = 22
ARCH_NAMES = {ARCH_ARM: "ARM", ARCH_ARM64: "AArch64"}

TYPE_STANDALONE = 1
TYPE_KERNEL = 2
TYPE_RAMDISK = 3
TYPE_MULTI = 4
TYPE_FIRMWARE = 5
TYPE_SCRIPT = 6
TYPE_FLATDT = 8
TYPE_NAMES = {
    TYPE_STANDALONE: "standalone",
    TYPE_KERNEL: "kernel",
    TYPE_RAMDISK: "ramdisk",
    TYPE_MULTI: "multi",
    TYPE_FIRMWARE: "firmware",
    TYPE_SCRIPT: "script",
    TYPE_FLATDT: "flat_dt",
}

COMP_NONE = 0
COMP_GZIP = 1
COMP_BZIP2 = 2
COMP_LZMA = 3
COMP_LZO = 4
COMP_LZ4 = 5
COMP_ZSTD = 6
COMP_NAMES = {
    COMP_NONE: "none",
    COMP_GZIP: "gzip",
    COMP_BZIP2: "bzip2",
    COMP_LZMA: "lzma",
    COMP_LZO: "lzo",
    COMP_LZ4: "lz4",
    COMP_ZSTD: "zstd",
}

LegacyHeader = cs.Struct(
    "magic" / cs.Int32ub,
    "header_crc" / cs.Int32ub,
    "timestamp" / cs.Int32ub,
    "data_size" / cs.Int32ub,
    "load" / cs.Int32ub,
    "entry" / cs.Int32ub,
    "data_crc" / cs.Int32ub,
    "os" / cs.Int8ub,
    "arch" / cs.Int8ub,
    "image_type" / cs.Int8ub,
    "compression" / cs.Int8ub,
    "name" / cs.Bytes(LEGACY_NAME_SIZE),
)
assert LegacyHeader.sizeof() == LEGACY_HEADER_SIZE

# The part-length table of multi-file and script images.
PartLengths = cs.RepeatUntil(lambda length, _lst, _ctx: length == 0, cs.Int32ub)


def _label(names: dict[int, str], value: int) -> str:
    return names.get(value, f"unknown ({value})")


@dataclass(frozen=True)
class LegacyImage:
    """A parsed legacy image; ``data`` is the payload without the 64-byte header."""

    header_crc: int
    timestamp: int
    data_size: int
    load: int
    entry: int
    data_crc: int
    os: int
    arch: int
    image_type: int
    compression: int
    name: str
    data: bytes
    header_crc_ok: bool = True
    data_crc_ok: bool = True

    @property
    def total_size(self) -> int:
        """Header plus data: the bytes the image occupies in a file or in memory."""
        return LEGACY_HEADER_SIZE + self.data_size

    @property
    def os_name(self) -> str:
        return _label(OS_NAMES, self.os)

    @property
    def arch_name(self) -> str:
        return _label(ARCH_NAMES, self.arch)

    @property
    def type_name(self) -> str:
        return _label(TYPE_NAMES, self.image_type)

    @property
    def compression_name(self) -> str:
        return _label(COMP_NAMES, self.compression)


def _crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def parse_legacy_image(data: bytes, source: str, *, verify: bool = True) -> LegacyImage:
    """Parse the legacy image at the start of ``data`` (trailing bytes are ignored).

    With ``verify=False`` CRC mismatches are reported in ``header_crc_ok`` and
    ``data_crc_ok`` instead of raised (for `felboot inspect`).
    """
    if len(data) < LEGACY_HEADER_SIZE:
        raise ImageError(
            f"{source} is truncated: {len(data)} bytes cannot hold a "
            f"{LEGACY_HEADER_SIZE}-byte U-Boot legacy image header"
        )
    header = LegacyHeader.parse(data)
    if header.magic != LEGACY_MAGIC:
        raise ImageError(
            f"{source}: not a U-Boot legacy image (magic 0x{header.magic:08x}, "
            f"expected 0x{LEGACY_MAGIC:08x})"
        )
    header_bytes = LegacyHeader.build({**header, "header_crc": 0})
    header_crc = _crc32(header_bytes)
    if verify and header_crc != header.header_crc:
        raise ImageError(
            f"{source}: legacy image header CRC 0x{header.header_crc:08x} does not match the "
            f"computed 0x{header_crc:08x}: the header is corrupt, rebuild the image with mkimage"
        )
    end = LEGACY_HEADER_SIZE + header.data_size
    if end > len(data):
        raise ImageError(
            f"{source} is truncated: the legacy image header says {header.data_size} bytes of "
            f"data, the file has {len(data) - LEGACY_HEADER_SIZE} after the header"
        )
    payload = bytes(data[LEGACY_HEADER_SIZE:end])
    data_crc = _crc32(payload)
    if verify and data_crc != header.data_crc:
        raise ImageError(
            f"{source}: legacy image data CRC 0x{header.data_crc:08x} does not match the "
            f"computed 0x{data_crc:08x}: the data is corrupt, rebuild the image with mkimage"
        )
    return LegacyImage(
        header_crc=header.header_crc,
        timestamp=header.timestamp,
        data_size=header.data_size,
        load=header.load,
        entry=header.entry,
        data_crc=header.data_crc,
        os=header.os,
        arch=header.arch,
        image_type=header.image_type,
        compression=header.compression,
        name=header.name.split(b"\0", 1)[0].decode("utf-8", errors="replace"),
        data=payload,
        header_crc_ok=header_crc == header.header_crc,
        data_crc_ok=data_crc == header.data_crc,
    )


def build_legacy_image(
    data: bytes,
    *,
    name: str,
    image_type: int,
    arch: int,
    os: int,
    load: int = 0,
    entry: int = 0,
    compression: int = 0,
    timestamp: int,
) -> bytes:
    """Header + ``data``, as mkimage writes it (the name is cut to 32 bytes like mkimage does)."""
    fields = {
        "magic": LEGACY_MAGIC,
        "header_crc": 0,
        "timestamp": timestamp,
        "data_size": len(data),
        "load": load,
        "entry": entry,
        "data_crc": _crc32(data),
        "os": os,
        "arch": arch,
        "image_type": image_type,
        "compression": compression,
        "name": name.encode("utf-8")[:LEGACY_NAME_SIZE].ljust(LEGACY_NAME_SIZE, b"\0"),
    }
    try:
        unsealed = LegacyHeader.build(fields)
    except cs.ConstructError as error:
        raise ImageError(f"cannot build legacy image {name!r}: {error}") from error
    return LegacyHeader.build({**fields, "header_crc": _crc32(unsealed)}) + bytes(data)


def build_script_image(text: bytes, *, name: str, timestamp: int) -> bytes:
    """The bytes of `mkimage -A arm -O linux -T script -C none -n NAME -d boot.cmd`.

    With SOURCE_DATE_EPOCH=timestamp, mkimage writes the same bytes: load and
    entry 0, one part holding the text, no padding after it.
    """
    if not text:
        raise ImageError(f"boot script {name!r} is empty: mkimage refuses empty scripts too")
    payload = PartLengths.build([len(text), 0]) + bytes(text)
    return build_legacy_image(
        payload,
        name=name,
        image_type=TYPE_SCRIPT,
        arch=ARCH_ARM,
        os=OS_LINUX,
        timestamp=timestamp,
    )


def image_parts(image: LegacyImage, source: str) -> list[bytes]:
    """The parts of a multi-file or script image, in order."""
    try:
        lengths = PartLengths.parse(image.data)[:-1]
    except cs.ConstructError as error:
        raise ImageError(
            f"{source}: the part-length table of this {image.type_name} image has no end marker"
        ) from error
    offset = 4 * (len(lengths) + 1)
    parts = []
    for index, length in enumerate(lengths):
        if offset + length > len(image.data):
            raise ImageError(
                f"{source}: part {index} of the {image.type_name} image ({length} bytes at "
                f"offset {offset}) runs past the image data ({len(image.data)} bytes)"
            )
        parts.append(image.data[offset : offset + length])
        offset += (length + 3) & ~3
    return parts


def parse_script_image(data: bytes, source: str) -> bytes:
    """The text of a mkimage script image (its first part, the one `source` runs)."""
    image = parse_legacy_image(data, source)
    if image.image_type != TYPE_SCRIPT:
        raise ImageError(
            f"{source}: a legacy {image.type_name} image, not a boot script (type script)"
        )
    parts = image_parts(image, source)
    if not parts:
        raise ImageError(f"{source}: the script image holds no script part")
    return parts[0]
