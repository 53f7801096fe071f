"""The initial ramdisk: a plain file, or one wrapped in a U-Boot legacy header.

Debian's flash-kernel writes ``/boot/uInitrd``: the initrd.img behind a
64-byte legacy image header of type ramdisk (include/image.h IH_TYPE_RAMDISK,
made with ``mkimage -T ramdisk``). Xen takes the ramdisk module as raw bytes
and hands them to dom0 as they are, so a header left in front makes Linux
find no initramfs. The header is checked (both CRCs) and taken off.
"""

from __future__ import annotations

from dataclasses import dataclass

from felboot.errors import ImageError
from felboot.images.dtb import has_fdt_magic
from felboot.images.kernel import describe as describe_kernel
from felboot.images.spl import EGON_MAGIC, MAGIC_OFFSET
from felboot.images.uimage import (
    LEGACY_HEADER_SIZE,
    LEGACY_MAGIC,
    TYPE_RAMDISK,
    LegacyHeader,
    parse_legacy_image,
)


@dataclass(frozen=True)
class Initrd:
    source: str
    data: bytes  # what goes to the board: the ramdisk without any wrapper
    unwrapped_from: str | None = None  # "uImage 'name'" when a legacy header was removed


def _looks_like(data: bytes) -> str | None:
    """What a file given as the ramdisk is instead, when it is a kernel or a DTB."""
    if has_fdt_magic(data):
        return "a device tree blob"
    if data[MAGIC_OFFSET : MAGIC_OFFSET + len(EGON_MAGIC)] == EGON_MAGIC:
        return "a U-Boot SPL image (eGON header)"
    kernel = describe_kernel(data)
    if kernel is not None:
        return f"a kernel image ({kernel['type']}: a kernel or Xen)"
    return None


def parse_initrd(data: bytes, source: str, role: str = "initrd") -> Initrd:
    """The ramdisk bytes of ``data``; ImageError for an empty file, a kernel or DTB given in
    its place (swapped arguments), or a bad/foreign uImage. ``role`` names it in messages
    ("initrd", "domU1 ramdisk")."""
    if not data:
        raise ImageError(f"{role} {source} is empty: pass the initrd.img (or leave it out)")
    instead = _looks_like(data)
    if instead is not None:
        raise ImageError(
            f"{role} {source} is {instead}, not a ramdisk: pass the ramdisk (a cpio archive "
            "such as initrd.img); are two files swapped?"
        )
    if len(data) < LEGACY_HEADER_SIZE or LegacyHeader.parse(data).magic != LEGACY_MAGIC:
        return Initrd(source, data)
    image = parse_legacy_image(data, source, verify=False)
    if image.image_type != TYPE_RAMDISK:
        raise ImageError(
            f"{role} {source} is a U-Boot legacy {image.type_name} image ({image.name!r}), not "
            "a ramdisk: pass the initrd.img or a 'mkimage -T ramdisk' image of it"
        )
    if not (image.header_crc_ok and image.data_crc_ok):
        which = "header" if not image.header_crc_ok else "data"
        raise ImageError(
            f"{role} {source}: the {which} CRC of its U-Boot ramdisk image does not match: the "
            "file is damaged; pass the plain initrd.img or rebuild it with 'mkimage -T ramdisk'"
        )
    if not image.data:
        raise ImageError(f"{role} {source}: its U-Boot ramdisk image holds no data")
    return Initrd(source, image.data, unwrapped_from=f"uImage {image.name!r}")
