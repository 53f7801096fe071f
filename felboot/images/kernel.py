"""Kernel images: the arm32 zImage, the arm64 Image and a gzip-wrapped arm64 Image.

Xen itself is one of these (arm32 Xen is a zImage, arm64 Xen an Image), so the
same parser serves for the hypervisor and for the dom0 kernel; ``role`` only
changes the wording of messages.

What matters for placing an image is how much memory it needs, not how long
its file is: the arm32 Xen header's end - start includes bss (Debian's
0xd8008-byte Xen says 0x116290), and the arm64 header's image_size does too.

Layouts (little-endian):

* zImage (Documentation/arm/booting): u32 magic 0x016f2818 at 0x24, u32 start
  and u32 end at 0x28/0x2C, u32 0x04030201 at 0x30 (endianness marker, newer
  kernels only).
* arm64 Image (Documentation/arm64/booting): u64 text_offset at 0x08, u64
  image_size at 0x10, u64 flags at 0x18, "ARM\\x64" at 0x38. A zero image_size
  marks a pre-3.17 kernel whose text_offset is of unknown endianness; U-Boot
  then assumes 0x80000, so do we.
* gzip (RFC 1952): 1f 8b 08 at 0, u32 ISIZE (uncompressed size mod 2**32) in the
  last four bytes.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from typing import Any

import construct as cs

from felboot.errors import ImageError
from felboot.units import format_size

log = logging.getLogger(__name__)

ZIMAGE_MAGIC = 0x016F2818
ZIMAGE_MAGIC_OFFSET = 0x24
ZImageHeader = cs.Struct(
    cs.Padding(ZIMAGE_MAGIC_OFFSET),  # code: nops and a branch
    "magic" / cs.Int32ul,
    "start" / cs.Int32ul,
    "end" / cs.Int32ul,
)
ZIMAGE_HEADER_SIZE = ZImageHeader.sizeof()

ARM64_MAGIC = b"ARM\x64"
ARM64_MAGIC_OFFSET = 0x38
ARM64_LEGACY_TEXT_OFFSET = 0x80000  # what U-Boot assumes when image_size is 0
ARM64_FLAG_BIG_ENDIAN = 1 << 0
ARM64_FLAG_PLACE_ANYWHERE = 1 << 3  # the 2 MiB-aligned base may be anywhere in RAM
Arm64ImageHeader = cs.Struct(
    "code0" / cs.Int32ul,
    "code1" / cs.Int32ul,
    "text_offset" / cs.Int64ul,
    "image_size" / cs.Int64ul,
    "flags" / cs.Int64ul,
    "res2" / cs.Int64ul,
    "res3" / cs.Int64ul,
    "res4" / cs.Int64ul,
    "magic" / cs.Bytes(4),
    "res5" / cs.Int32ul,  # offset of the PE header in EFI-stub kernels
)
ARM64_HEADER_SIZE = Arm64ImageHeader.sizeof()

GZIP_MAGIC = b"\x1f\x8b\x08"
GZIP_OS_UNKNOWN = 255
GZIP_XFL_NONE = 0
GzipHeader = cs.Struct(
    "magic" / cs.Const(GZIP_MAGIC),
    "flags" / cs.Int8ul,
    "mtime" / cs.Int32ul,
    "extra_flags" / cs.Int8ul,
    "os" / cs.Int8ul,
)
GzipTrailer = cs.Struct(
    "crc32" / cs.Int32ul,
    "isize" / cs.Int32ul,  # uncompressed size mod 2**32
)
GZIP_TRAILER_SIZE = GzipTrailer.sizeof()

# zlib level for the dom0 kernel sent over FEL. Measured on a 31 MiB input
# (sunxi U-Boot binaries and x86-64 shared libraries, standing in for an
# arm64 Image): level 6 gives 15.91 MiB in 1.46 s, level 9 15.89 MiB in 3.05 s,
# level 1 16.76 MiB in 0.53 s. At FEL's 0.3-1 MB/s the 20 KiB level 9 saves
# cost less than 0.1 s of transfer against 1.6 s more compressing; level 1's
# extra 0.85 MiB costs 1-3 s of transfer. Level 6 is the sweet spot.
WIRE_GZIP_LEVEL = 6

_PEEK = 4096  # decompressed bytes enough to read an inner header


@dataclass(frozen=True)
class KernelImage:
    """A parsed zImage/Image; ``data`` is the file as read."""

    source: str
    role: str
    kind: str  # "zImage" | "Image" | "gzip-Image"
    arch: str  # "arm" | "arm64"
    file_size: int
    load_size: int  # bytes of memory the running image needs (bss included)
    text_offset: int  # arm64: offset from a 2 MiB-aligned base; 0 for zImage
    compressed: bool  # True for gzip-Image (zImage decompresses itself: False)
    flags: int = 0  # arm64 header flags; 0 for zImage
    data: bytes = field(default=b"", repr=False, compare=False)

    @property
    def place_anywhere(self) -> bool:
        """arm64: booti may leave it where it is (else it is moved to DRAM base)."""
        return self.arch != "arm64" or bool(self.flags & ARM64_FLAG_PLACE_ANYWHERE)


def _zimage(data: bytes) -> cs.Container | None:
    if len(data) < ZIMAGE_HEADER_SIZE:
        return None
    header = ZImageHeader.parse(data)
    return header if header.magic == ZIMAGE_MAGIC else None


def _arm64(data: bytes) -> cs.Container | None:
    if len(data) < ARM64_HEADER_SIZE:
        return None
    header = Arm64ImageHeader.parse(data)
    return header if header.magic == ARM64_MAGIC else None


def _what_is_it(data: bytes) -> str:
    """A hint for the error message: what the file looks like instead."""
    if data[:4] == b"\x7fELF":
        return "an ELF file (vmlinux or xen-syms?)"
    if data[:4] == bytes.fromhex("27051956"):
        return "a U-Boot legacy image (uImage)"
    if data[:4] == bytes.fromhex("d00dfeed"):
        return "a device tree blob"
    if data[:3] == GZIP_MAGIC:
        return "gzip data that is not an arm64 Image"
    return f"first bytes {data[:8].hex()}"


def _gunzip_head(data: bytes, source: str) -> bytes:
    try:
        return zlib.decompressobj(wbits=31).decompress(data, _PEEK)
    except zlib.error as exc:
        raise ImageError(f"{source}: corrupt gzip data ({exc}): pass an intact kernel") from exc


def _from_arm64(
    header: cs.Container, data: bytes, source: str, role: str, kind: str, unpacked: int
) -> KernelImage:
    if header.flags & ARM64_FLAG_BIG_ENDIAN:
        raise ImageError(
            f"{source}: the {role} is a big-endian arm64 Image (flags 0x{header.flags:x}): "
            "Xen and sunxi U-Boot run little-endian; rebuild it little-endian"
        )
    if header.image_size == 0:
        # Pre-3.17 kernel: only the unpacked file size is known.
        load, text_offset = unpacked, ARM64_LEGACY_TEXT_OFFSET
    else:
        load, text_offset = max(header.image_size, unpacked), header.text_offset
    return KernelImage(
        source=source,
        role=role,
        kind=kind,
        arch="arm64",
        file_size=len(data),
        load_size=load,
        text_offset=text_offset,
        compressed=kind != "Image",
        flags=header.flags,
        data=data,
    )


def parse_kernel(data: bytes, source: str, role: str) -> KernelImage:
    """Parse a zImage, arm64 Image or gzip'ed arm64 Image; ``role`` is "Xen" or "kernel"."""
    if len(data) < ARM64_HEADER_SIZE:
        raise ImageError(
            f"{source}: only {len(data)} bytes, too short for a {role} zImage/Image: "
            "pass the real image file"
        )
    zimage = _zimage(data)
    if zimage is not None:
        if zimage.end <= zimage.start:
            raise ImageError(
                f"{source}: zImage header of the {role} says end 0x{zimage.end:x} <= "
                f"start 0x{zimage.start:x}: the file is damaged"
            )
        load = max(zimage.end - zimage.start, len(data))  # an appended DTB lies past end
        image = KernelImage(
            source=source,
            role=role,
            kind="zImage",
            arch="arm",
            file_size=len(data),
            load_size=load,
            text_offset=0,
            compressed=False,
            flags=0,
            data=data,
        )
        log.debug("%s: %s zImage, %s in memory", source, role, format_size(load))
        return image
    arm64 = _arm64(data)
    if arm64 is not None:
        return _from_arm64(arm64, data, source, role, "Image", len(data))
    if data[:3] == GZIP_MAGIC:
        inner = _arm64(_gunzip_head(data, source))
        if inner is not None:
            isize = GzipTrailer.parse(data[-GZIP_TRAILER_SIZE:]).isize
            return _from_arm64(inner, data, source, role, "gzip-Image", isize)
    raise ImageError(
        f"{source}: the {role} is not a zImage or arm64 Image (no 0x{ZIMAGE_MAGIC:08x} at "
        f"0x{ZIMAGE_MAGIC_OFFSET:x}, no ARM\\x64 at 0x{ARM64_MAGIC_OFFSET:x}; found "
        f"{_what_is_it(data)}): pass the {role}'s zImage/Image, not vmlinux"
    )


def describe(data: bytes) -> dict[str, Any] | None:
    """What `felboot inspect` shows for a kernel image; None when it is not one."""
    try:
        image = parse_kernel(data, "<inspect>", "kernel")
    except ImageError:
        return None
    info: dict[str, Any] = {
        "type": image.kind,
        "arch": image.arch,
        "file_size": image.file_size,
        "load_size": image.load_size,
        "compressed": image.compressed,
    }
    if image.arch == "arm64":
        info["text_offset"] = image.text_offset
        info["flags"] = image.flags
        info["place_anywhere"] = image.place_anywhere
    return info


def gzip_for_wire(data: bytes) -> bytes:
    """Deterministic gzip of ``data``: mtime 0, OS "unknown", level WIRE_GZIP_LEVEL.

    Built from raw deflate so the header does not depend on the Python version
    (gzip.compress writes a different OS byte on 3.10 and 3.11).
    """
    deflate = zlib.compressobj(WIRE_GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = deflate.compress(data) + deflate.flush()
    header = GzipHeader.build(
        {"flags": 0, "mtime": 0, "extra_flags": GZIP_XFL_NONE, "os": GZIP_OS_UNKNOWN}
    )
    trailer = GzipTrailer.build({"crc32": zlib.crc32(data), "isize": len(data) & 0xFFFFFFFF})
    return header + body + trailer
