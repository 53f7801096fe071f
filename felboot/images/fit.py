"""U-Boot's Flattened Image Tree (FIT): a device tree that carries images.

    /images/<name>          type, arch, os, compression, load, entry, and either
                            data (embedded), or data-size with data-offset
                            (from the end of the FDT rounded up to 4 bytes) or
                            data-position (from the start of the FIT)
    /configurations         default = "<config>"
        <config>            description, firmware, loadables (string list), fdt

U-Boot's SPL picks a configuration by comparing each config's description
with the board's DT name (fit_find_config_node / board_fit_config_name_match),
and falls back to the default. Facts from U-Boot boot/image-fit.c,
common/spl/spl_fit.c and board/sunxi/board.c.

The tree is read through felboot.images.devicetree, the one adapter to the
FDT library.
"""

from __future__ import annotations

from dataclasses import dataclass

import construct as cs

from felboot.errors import ImageError
from felboot.images.devicetree import FdtNode, fdt_total_size, read_fdt

Cells = cs.GreedyRange(cs.Int32ub)
FIT_HINT = "pass U-Boot's .itb, or the u-boot-sunxi-with-spl.bin of an arm64 board"

# The pine64 quirk of board/sunxi/board.c: one SPL serves both Pine64 boards and
# picks the "plus" DT when the board has more than 512 MiB.
_PINE64_MARK = "-pine64"
_PINE64_PLUS_MIN_MIB = 512


# FIT model -----------------------------------------------------------------


@dataclass(frozen=True)
class FitSubImage:
    name: str
    description: str | None
    type: str | None
    arch: str | None
    os: str | None
    compression: str | None
    load: int | None
    entry: int | None
    data: bytes
    external: bool  # data stored after the FDT (data-offset / data-position)


@dataclass(frozen=True)
class FitConfig:
    name: str
    description: str | None
    firmware: str | None
    loadables: tuple[str, ...]
    fdt: tuple[str, ...]

    @property
    def image_names(self) -> tuple[str, ...]:
        """Every image this configuration loads: firmware, loadables, then device trees."""
        first = (self.firmware,) if self.firmware else ()
        return (*first, *self.loadables, *self.fdt)


@dataclass(frozen=True)
class FitImage:
    description: str | None
    images: dict[str, FitSubImage]
    configurations: dict[str, FitConfig]
    default: str | None
    fdt_size: int  # the FDT structure itself; external data follows it
    size: int  # up to the end of the last external data
    source: str = ""

    def images_of(self, config: FitConfig) -> tuple[FitSubImage, ...]:
        return tuple(self.images[name] for name in config.image_names)


def _strings(node: FdtNode, prop: str, where: str) -> tuple[str, ...]:
    value = node.properties.get(prop)
    if value is None:
        return ()
    if not value.endswith(b"\0"):
        raise ImageError(f"{where}: property {prop} is not a NUL-terminated string")
    try:
        return tuple(value[:-1].decode("utf-8").split("\0"))
    except UnicodeDecodeError as error:
        raise ImageError(f"{where}: property {prop} is not text ({value[:32]!r})") from error


def _string(node: FdtNode, prop: str, where: str) -> str | None:
    values = _strings(node, prop, where)
    return values[0] if values else None


def _number(node: FdtNode, prop: str, where: str) -> int | None:
    value = node.properties.get(prop)
    if value is None:
        return None
    if len(value) not in (4, 8):
        raise ImageError(
            f"{where}: property {prop} has {len(value)} bytes; expected one or two 32-bit cells"
        )
    high_then_low = Cells.parse(value)
    result = 0
    for cell in high_then_low:
        result = (result << 32) | cell
    return result


def _image_data(data: bytes, node: FdtNode, fdt_size: int, where: str) -> tuple[bytes, bool, int]:
    """(payload, external?, end offset in the file) of one /images node."""
    position = _number(node, "data-position", where)
    offset = _number(node, "data-offset", where)
    if position is None and offset is None:
        if "data" not in node.properties:
            raise ImageError(f"{where}: no data, data-offset or data-position property")
        return node.properties["data"], False, 0
    size = _number(node, "data-size", where)
    if size is None:
        raise ImageError(f"{where}: external data without a data-size property")
    start = position if position is not None else ((fdt_size + 3) & ~3) + (offset or 0)
    end = start + size
    if end > len(data):
        raise ImageError(
            f"{where}: external data (0x{size:x} bytes at 0x{start:x}) runs past the end "
            f"of the file (0x{len(data):x} bytes): the FIT is truncated"
        )
    return bytes(data[start:end]), True, end


def parse_fit(data: bytes, source: str) -> FitImage:
    """Parse the FIT at the start of ``data``; trailing bytes after it are ignored."""
    fdt_size = fdt_total_size(data, source, FIT_HINT)
    root = read_fdt(data[:fdt_size], source)
    images_node = root.child("images")
    if images_node is None:
        raise ImageError(f"{source}: a device tree without /images, not a FIT image")

    images: dict[str, FitSubImage] = {}
    end_of_data = fdt_size
    for name, node in images_node.children.items():
        where = f"{source}: FIT image {name!r}"
        payload, external, end = _image_data(data, node, fdt_size, where)
        end_of_data = max(end_of_data, end)
        images[name] = FitSubImage(
            name=name,
            description=_string(node, "description", where),
            type=_string(node, "type", where),
            arch=_string(node, "arch", where),
            os=_string(node, "os", where),
            compression=_string(node, "compression", where),
            load=_number(node, "load", where),
            entry=_number(node, "entry", where),
            data=payload,
            external=external,
        )

    configurations: dict[str, FitConfig] = {}
    default = None
    configs_node = root.child("configurations")
    if configs_node is not None:
        default = _string(configs_node, "default", f"{source}: /configurations")
        for name, node in configs_node.children.items():
            where = f"{source}: FIT configuration {name!r}"
            config = FitConfig(
                name=name,
                description=_string(node, "description", where),
                firmware=_string(node, "firmware", where),
                loadables=_strings(node, "loadables", where),
                fdt=_strings(node, "fdt", where),
            )
            missing = [image for image in config.image_names if image not in images]
            if missing:
                raise ImageError(
                    f"{where} names image {missing[0]!r}, which /images does not have "
                    f"(it has: {', '.join(images) or 'none'})"
                )
            configurations[name] = config
        if default is not None and default not in configurations:
            raise ImageError(
                f"{source}: the default configuration {default!r} does not exist "
                f"(there are: {', '.join(configurations) or 'none'})"
            )

    return FitImage(
        description=_string(root, "description", source),
        images=images,
        configurations=configurations,
        default=default,
        fdt_size=fdt_size,
        size=end_of_data,
        source=source,
    )


def _name_matches(description: str, dt_name: str, dram_size_mib: int | None) -> bool:
    if dram_size_mib is not None and _PINE64_MARK in description and _PINE64_MARK in dt_name:
        return ("plus" in description) == (dram_size_mib > _PINE64_PLUS_MIN_MIB)
    return description == dt_name


def select_config(
    fit: FitImage, dt_name: str | None, *, dram_size_mib: int | None = None
) -> FitConfig:
    """The configuration U-Boot's sunxi SPL would boot for an SPL whose DT name is ``dt_name``.

    The first config whose description equals the DT name wins, else the
    default. ``dram_size_mib`` (when the SPL reported it) lets the Pine64 /
    Pine64+ choice follow U-Boot, which decides it by DRAM size.
    """
    available = ", ".join(
        f"{name} ({config.description})" if config.description else name
        for name, config in fit.configurations.items()
    )
    if not fit.configurations:
        raise ImageError(f"{fit.source}: the FIT has no configurations to boot")
    if dt_name is not None:
        for config in fit.configurations.values():
            if config.description is None:
                raise ImageError(
                    f"{fit.source}: FIT configuration {config.name!r} has no description, "
                    "so U-Boot's SPL cannot match it to the board: rebuild the FIT"
                )
            if _name_matches(config.description, dt_name, dram_size_mib):
                return config
    if fit.default is not None:
        return fit.configurations[fit.default]
    if dt_name is None and len(fit.configurations) == 1:
        return next(iter(fit.configurations.values()))
    wanted = f"DT name {dt_name!r} matches none" if dt_name else "the SPL names no device tree"
    raise ImageError(
        f"{fit.source}: {wanted} of the FIT configurations and there is no default; "
        f"available: {available}"
    )
