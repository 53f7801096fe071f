"""Flattened device trees (DTB): header checks and the few facts the boot needs.

The header (devicetree specification, "Flattened Devicetree Format") is
big-endian: magic 0xd00dfeed, totalsize, then offsets and versions. The tree
itself is read through felboot.images.devicetree, the one adapter to the FDT
library.

The fact that matters most is the console UART: Xen prints nothing at all when
``dtuart=`` names a node that is not in the tree (the Xen wiki's
``/soc@01c00000/serial@01c28000`` is gone from current A20 trees), so the path
is resolved from this DTB and checked to exist.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from felboot.errors import ImageError
from felboot.images.devicetree import FdtNode, fdt_total_size, has_fdt_magic, read_fdt

log = logging.getLogger(__name__)

DTB_HINT = "pass the compiled .dtb, not the .dts"


@dataclass(frozen=True)
class DeviceTree:
    """A parsed DTB; ``data`` is the file as read."""

    source: str
    totalsize: int
    compatible: tuple[str, ...]
    model: str | None
    has_chosen: bool
    data: bytes = field(default=b"", repr=False, compare=False)
    _tree: FdtNode | None = field(default=None, repr=False, compare=False)

    def _require_tree(self) -> FdtNode:
        if self._tree is None:
            raise ImageError(f"{self.source}: device tree was not parsed: use parse_dtb()")
        return self._tree

    def _resolve(self, name_or_path: str) -> str | None:
        """An absolute path for a path or an /aliases name; None for an unknown alias."""
        if name_or_path.startswith("/"):
            return name_or_path
        aliases = self._require_tree().find("/aliases")
        target = aliases.strings(name_or_path) if aliases is not None else ()
        return target[0] if target else None

    def has_node(self, path: str) -> bool:
        """Whether the absolute ``path`` is a node of this tree."""
        return path.startswith("/") and self._require_tree().find(path) is not None

    def serial_path(self) -> str:
        """The console UART node's path: /chosen/stdout-path, else the serial0 alias."""
        tree = self._require_tree()
        chosen = tree.find("/chosen")
        stdout = (
            chosen.strings("stdout-path") or chosen.strings("linux,stdout-path") if chosen else ()
        )
        if stdout:
            spec = stdout[0].split(":", 1)[0]  # drop options such as ":115200n8"
            path = self._resolve(spec)
            if path is None:
                raise ImageError(
                    f"{self.source}: /chosen/stdout-path names {spec!r}, which is neither a "
                    f"path nor an alias in /aliases: pass --xen-args 'dtuart=/path/to/uart'"
                )
            origin = f"/chosen/stdout-path ({stdout[0]!r})"
        else:
            found = self._resolve("serial0")
            if found is None:
                raise ImageError(
                    f"{self.source}: no /chosen/stdout-path and no serial0 alias: "
                    "pass --xen-args 'dtuart=/path/to/uart'"
                )
            path, origin = found, "the serial0 alias"
        if tree.find(path) is None:
            raise ImageError(
                f"{self.source}: {origin} leads to {path}, which is not in the tree: "
                "pass --xen-args 'dtuart=/path/to/uart'"
            )
        return path


def parse_dtb(data: bytes, source: str) -> DeviceTree:
    """Check the header (magic, totalsize <= file size) and read the tree."""
    totalsize = fdt_total_size(data, source, DTB_HINT)
    tree = read_fdt(data[:totalsize], source)
    compatible = tree.strings("compatible")
    model = tree.strings("model")
    log.debug("%s: device tree %s, %d bytes", source, compatible, totalsize)
    return DeviceTree(
        source=source,
        totalsize=totalsize,
        compatible=compatible,
        model=model[0] if model else None,
        has_chosen=tree.find("/chosen") is not None,
        data=data,
        _tree=tree,
    )


def describe(data: bytes) -> dict[str, Any] | None:
    """What `felboot inspect` shows for a DTB; None when it is not one."""
    if not has_fdt_magic(data):
        return None
    try:
        tree = parse_dtb(data, "<inspect>")
    except ImageError:
        return None
    info: dict[str, Any] = {
        "type": "dtb",
        "totalsize": tree.totalsize,
        "model": tree.model,
        "compatible": list(tree.compatible),
    }
    try:
        info["console"] = tree.serial_path()
    except ImageError:
        info["console"] = None
    return info
