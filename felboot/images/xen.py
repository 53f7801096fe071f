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
from typing import Literal

import construct as cs

from felboot.images.kernel import KernelImage

Kind = Literal["xen", "linux"]

XEN_BANNER = b"Xen version %d.%d"
XEN_COMPATIBLE = re.compile(rb"xen,xen-\d+\.\d+\0")
LINUX_BANNER = re.compile(rb"Linux version \d")
LINUX_DECOMPRESSOR = b"Uncompressing Linux"
ZIMAGE_TABLE_MAGIC = 0x45454545
ZImageTableWord = cs.Struct(cs.Padding(0x34), "magic" / cs.Int32ul)


def image_kind(image: KernelImage) -> Kind | None:
    """ "xen", "linux", or None when the image carries neither's markers."""
    data = image.data
    if image.compressed:
        return None
    if XEN_BANNER in data or XEN_COMPATIBLE.search(data):
        return "xen"
    if LINUX_BANNER.search(data) or LINUX_DECOMPRESSOR in data:
        return "linux"
    table_word = image.kind == "zImage" and len(data) >= ZImageTableWord.sizeof()
    if table_word and ZImageTableWord.parse(data).magic == ZIMAGE_TABLE_MAGIC:
        return "linux"
    return None


def describe_kind(kind: Kind | None) -> str:
    return {"xen": "Xen", "linux": "a Linux kernel", None: "neither Xen nor Linux"}[kind]
