"""Flattened device trees: the header, declared once, and the one adapter to the FDT library.

Both DTBs (dtb.py) and U-Boot FITs (fit.py) are flattened device trees. The
header (devicetree specification, "Flattened Devicetree Format") is big-endian:
magic 0xd00dfeed, totalsize, then offsets and versions. The tree itself is read
with the PyPI ``fdt`` library, only in ``read_fdt`` below, and handed on as plain
``FdtNode`` values with raw property bytes, so the library can be replaced
without touching the rest of felboot.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import construct as cs
import fdt as fdtlib

from felboot.errors import ImageError

FDT_MAGIC = 0xD00DFEED
FdtHeader = cs.Struct(
    "magic" / cs.Int32ub,
    "totalsize" / cs.Int32ub,
    "off_dt_struct" / cs.Int32ub,
    "off_dt_strings" / cs.Int32ub,
    "off_mem_rsvmap" / cs.Int32ub,
    "version" / cs.Int32ub,
    "last_comp_version" / cs.Int32ub,
    "boot_cpuid_phys" / cs.Int32ub,
    "size_dt_strings" / cs.Int32ub,
    "size_dt_struct" / cs.Int32ub,
)
FDT_HEADER_SIZE = FdtHeader.sizeof()


def has_fdt_magic(data: bytes) -> bool:
    return len(data) >= FDT_HEADER_SIZE and FdtHeader.parse(data).magic == FDT_MAGIC


def fdt_total_size(data: bytes, source: str, hint: str) -> int:
    """The header's totalsize, after checking the magic and that ``data`` holds it all.

    ``hint`` ends the wrong-kind messages: what the user should pass instead.
    """
    if len(data) < FDT_HEADER_SIZE:
        raise ImageError(
            f"{source}: only {len(data)} bytes, too short for a device tree header: {hint}"
        )
    header = FdtHeader.parse(data)
    if header.magic != FDT_MAGIC:
        raise ImageError(
            f"{source}: not a device tree (magic 0x{header.magic:08x}, expected "
            f"0x{FDT_MAGIC:08x}): {hint}"
        )
    if header.totalsize > len(data):
        raise ImageError(
            f"{source} is truncated: the device tree header says {header.totalsize} bytes, "
            f"the file has {len(data)}: copy or rebuild it"
        )
    return int(header.totalsize)


@dataclass(frozen=True)
class FdtNode:
    """A device-tree node with raw property values."""

    name: str
    properties: Mapping[str, bytes] = field(default_factory=dict)
    children: Mapping[str, FdtNode] = field(default_factory=dict)

    def child(self, name: str) -> FdtNode | None:
        return self.children.get(name)

    def find(self, path: str) -> FdtNode | None:
        """The node at an absolute ``path`` below this (root) node, or None."""
        node: FdtNode | None = self
        for part in path.strip("/").split("/") if path.strip("/") else ():
            node = node.child(part) if node is not None else None
        return node

    def strings(self, name: str) -> tuple[str, ...]:
        """A string-list property's values; empty when the property is missing."""
        raw = self.properties.get(name)
        if not raw:
            return ()
        return tuple(part.decode("utf-8", "replace") for part in raw.rstrip(b"\0").split(b"\0"))


def _raw_value(prop: object) -> bytes:
    # The library types each value by guessing; undo the guess exactly: it only
    # calls a value strings when every NUL-ended piece is non-empty and printable.
    if isinstance(prop, fdtlib.PropStrings):
        return b"".join(text.encode("ascii") + b"\0" for text in prop.data)
    if isinstance(prop, fdtlib.PropWords):
        words = array("I", prop.data)
        assert words.itemsize == 4
        if sys.byteorder == "little":
            words.byteswap()
        return words.tobytes()
    if isinstance(prop, fdtlib.PropBytes):
        return bytes(prop.data)
    return b""


def _convert(node: Any) -> FdtNode:
    return FdtNode(
        name=node.name,
        properties={prop.name: _raw_value(prop) for prop in node.props},
        children={child.name: _convert(child) for child in node.nodes},
    )


def read_fdt(blob: bytes, source: str) -> FdtNode:
    """The root node of the flattened device tree ``blob`` (the only use of the FDT library)."""
    try:
        tree = fdtlib.parse_dtb(bytes(blob))
    except Exception as error:  # the library raises bare Exception, IndexError, struct.error
        reason = str(error) or type(error).__name__
        raise ImageError(f"{source}: malformed device tree ({reason}): rebuild it") from error
    if tree.root is None:
        raise ImageError(f"{source}: malformed device tree (no root node)")
    return _convert(tree.root)
