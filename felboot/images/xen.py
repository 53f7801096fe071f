"""Xen or Linux? The markers each carries, so swapped arguments are named as such.

Both are zImages on arm32 and Images on arm64 with the same header (arm32 Xen
has a zImage header, arm64 Xen the arm64 Image header, "ARM\\x64" and all), so
the header alone cannot tell them apart. Their contents can (checked on
Debian bookworm's xen-hypervisor-4.17-armhf/-arm64 and linux-image 6.1 armmp,
armmp-lpae and arm64 builds):

* Xen, uncompressed on both architectures, carries its banner's format
  string "Xen version %d.%d%s" and its own compatible "xen,xen-4.17" (Xen's
  xen/arch/arm/domain_build.c writes ``xen,xen-<major>.<minor>`` into dom0's
  /hypervisor node). Linux with Xen support has the strings "xen,xen" and
  "Xen version not found", never the printf format or a versioned compatible.
* Linux: an arm64 Image is uncompressed and carries "Linux version 6.1...";
  an arm32 zImage is compressed, but its decompressor prints
  "Uncompressing Linux..." (arch/arm/boot/compressed/misc.c), and since 4.x
  its header has 0x45454545 at 0x34 (the "another magic number" word that
  starts the zImage extension table in arch/arm/boot/compressed/head.S),
  which arm32 Xen's header does not.

A gzip'ed arm64 Image is not inflated for this (31 MiB of work for a hint):
it reads as "unknown", and unknown is never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import construct as cs

from felboot.images.kernel import KernelImage

Kind = Literal["xen", "linux"]

XEN_BANNER = b"Xen version %d.%d"
XEN_COMPATIBLE = re.compile(rb"xen,xen-(\d+\.\d+)\0")
LINUX_BANNER = re.compile(rb"Linux version (\d[^\s\0]*)")
LINUX_DECOMPRESSOR = b"Uncompressing Linux"
ZIMAGE_TABLE_MAGIC = 0x45454545
ZImageTableWord = cs.Struct(cs.Padding(0x34), "magic" / cs.Int32ul)


@dataclass(frozen=True)
class Markers:
    """What an image's bytes say about it (see the module docstring for why these)."""

    xen_version: str | None  # from the versioned compatible "xen,xen-4.17"
    xen_banner: bool  # the "Xen version %d.%d" format string
    linux_version: str | None  # "6.1.0-57-armmp-lpae" from "Linux version ..."
    linux_decompressor: bool  # "Uncompressing Linux" of an arm32 zImage
    zimage_table: bool  # the 0x45454545 word at 0x34 of a zImage header

    @property
    def xen(self) -> list[str]:
        """The Xen markers found, for people: ["xen,xen-4.17", "Xen version banner"]."""
        found = [f"xen,xen-{self.xen_version}"] if self.xen_version else []
        return found + (["Xen version banner"] if self.xen_banner else [])

    @property
    def kind(self) -> Kind | None:
        if self.xen:
            return "xen"
        if self.linux_version or self.linux_decompressor or self.zimage_table:
            return "linux"
        return None


def find_markers(data: bytes, zimage: bool) -> Markers:
    """The markers in ``data``, the uncompressed bytes of a kernel image (``zimage``: arm32)."""
    compatible = XEN_COMPATIBLE.search(data)
    linux = LINUX_BANNER.search(data)
    table = zimage and len(data) >= ZImageTableWord.sizeof()
    return Markers(
        xen_version=compatible.group(1).decode("ascii") if compatible else None,
        xen_banner=XEN_BANNER in data,
        linux_version=linux.group(1).decode("ascii", "replace") if linux else None,
        linux_decompressor=LINUX_DECOMPRESSOR in data,
        zimage_table=bool(table) and ZImageTableWord.parse(data).magic == ZIMAGE_TABLE_MAGIC,
    )


def image_kind(image: KernelImage) -> Kind | None:
    """ "xen", "linux", or None when the image carries neither's markers."""
    if image.compressed:
        return None
    return find_markers(image.data, image.kind == "zImage").kind


def describe_kind(kind: Kind | None) -> str:
    return {"xen": "Xen", "linux": "a Linux kernel", None: "neither Xen nor Linux"}[kind]


# How Xen shows a dom0less guest's vpl011 output. Xen 4.17's vpl011_write_data_xen()
# (xen/arch/arm/vpl011.c) prints it as printk("DOM%u: %s"): "(XEN) DOM1: ..." lines, as
# seen in QEMU with Debian's 4.17 (tests/test_qemu_e2e.py). A 2025 xen-devel series
# (Denis Mukhin, "guest_printk() for vpl011") switched to guest_printk(), "(d1) ...".
# Which release took it is not known here, so up to 4.19 only the old form is promised.
DOM_PREFIX_KNOWN_UNTIL = (4, 19)


def xen_version(image: KernelImage) -> tuple[int, int] | None:
    """(major, minor) from an uncompressed Xen's "xen,xen-X.Y" compatible; None if unknown."""
    if image.compressed:
        return None
    found = find_markers(image.data, image.kind == "zImage").xen_version
    if found is None:
        return None
    major, minor = found.split(".")
    return int(major), int(minor)


def vpl011_console_lines(version: tuple[int, int] | None, domid: int) -> str:
    """How the console shows domain ``domid``'s vpl011 output under this Xen version."""
    old = f"'(XEN) DOM{domid}: ...' lines"
    if version is not None and version <= DOM_PREFIX_KNOWN_UNTIL:
        return old
    return f"{old} (or '(d{domid}) ...' on a newer Xen)"
