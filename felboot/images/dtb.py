"""Flattened device trees (DTB): header checks and the few facts the boot needs.

The header (devicetree specification, "Flattened Devicetree Format") is
big-endian: magic 0xd00dfeed, totalsize, then offsets and versions. The tree
itself is read with the PyPI ``fdt`` library, kept behind ``_Tree`` so the rest
of felboot never sees its types.

The fact that matters most is the console UART: Xen prints nothing at all when
``dtuart=`` names a node that is not in the tree (the Xen wiki's
``/soc@01c00000/serial@01c28000`` is gone from current A20 trees), so the path
is resolved from this DTB and checked to exist.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import construct as cs
import fdt

from felboot.errors import ImageError

log = logging.getLogger(__name__)

DTB_MAGIC = 0xD00DFEED
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


class _Tree:
    """The one place that talks to the ``fdt`` library."""

    def __init__(self, blob: bytes, source: str) -> None:
        try:
            self._fdt = fdt.parse_dtb(blob)
        except Exception as exc:  # the library raises bare Exception/ValueError subclasses
            raise ImageError(
                f"{source}: device tree is damaged ({exc}): pass an intact DTB"
            ) from exc

    def has_node(self, path: str) -> bool:
        try:
            return bool(self._fdt.exist_node(path))
        except Exception:  # malformed paths make the library raise
            return False

    def strings(self, path: str, name: str) -> tuple[str, ...]:
        """A string-list property's values; empty when the node or property is missing."""
        if not self.has_node(path):
            return ()
        prop = self._fdt.get_property(name, path)
        if prop is None or not hasattr(prop, "data"):
            return ()
        return tuple(str(item) for item in prop.data)


@dataclass(frozen=True)
class DeviceTree:
    """A parsed DTB; ``data`` is the file as read."""

    source: str
    totalsize: int
    compatible: tuple[str, ...]
    model: str | None
    has_chosen: bool
    data: bytes = field(default=b"", repr=False, compare=False)
    _tree: _Tree | None = field(default=None, repr=False, compare=False)

    def _require_tree(self) -> _Tree:
        if self._tree is None:
            raise ImageError(f"{self.source}: device tree was not parsed: use parse_dtb()")
        return self._tree

    def _resolve(self, name_or_path: str) -> str | None:
        """An absolute path for a path or an /aliases name; None for an unknown alias."""
        if name_or_path.startswith("/"):
            return name_or_path
        target = self._require_tree().strings("/aliases", name_or_path)
        return target[0] if target else None

    def serial_path(self) -> str:
        """The console UART node's path: /chosen/stdout-path, else the serial0 alias."""
        tree = self._require_tree()
        stdout = tree.strings("/chosen", "stdout-path") or tree.strings(
            "/chosen", "linux,stdout-path"
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
        if not tree.has_node(path):
            raise ImageError(
                f"{self.source}: {origin} leads to {path}, which is not in the tree: "
                "pass --xen-args 'dtuart=/path/to/uart'"
            )
        return path


def parse_dtb(data: bytes, source: str) -> DeviceTree:
    """Check the header (magic, totalsize <= file size) and read the tree."""
    if len(data) < FDT_HEADER_SIZE:
        raise ImageError(
            f"{source}: only {len(data)} bytes, too short for a device tree: pass a .dtb file"
        )
    header = FdtHeader.parse(data)
    if header.magic != DTB_MAGIC:
        raise ImageError(
            f"{source}: not a device tree blob (magic 0x{header.magic:08x}, expected "
            f"0x{DTB_MAGIC:08x}): pass the compiled .dtb, not the .dts"
        )
    if header.totalsize > len(data):
        raise ImageError(
            f"{source}: device tree header says totalsize 0x{header.totalsize:x} but the "
            f"file has only 0x{len(data):x} bytes: the file is truncated"
        )
    tree = _Tree(data[: header.totalsize], source)
    compatible = tree.strings("/", "compatible")
    model = tree.strings("/", "model")
    log.debug("%s: device tree %s, %d bytes", source, compatible, header.totalsize)
    return DeviceTree(
        source=source,
        totalsize=header.totalsize,
        compatible=compatible,
        model=model[0] if model else None,
        has_chosen=tree.has_node("/chosen"),
        data=data,
        _tree=tree,
    )


def describe(data: bytes) -> dict[str, Any] | None:
    """What `felboot inspect` shows for a DTB; None when it is not one."""
    if len(data) < FDT_HEADER_SIZE or FdtHeader.parse(data).magic != DTB_MAGIC:
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
