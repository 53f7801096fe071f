"""What felboot sees in a file, for `felboot inspect`: a JSON-able dict.

Every answer has ``kind`` ("spl", "u-boot-with-spl", "legacy-image", "fit",
"unknown", or a kind from an extension module), ``path``, ``size`` and
``problems`` (one line per reason felboot would refuse the file; empty when
it is fine). Addresses, checksums and CRCs are "0x..." strings, sizes ints.

Kernel and device-tree files are described by ``describe(data)`` of
felboot.images.kernel and felboot.images.dtb when those modules exist, so new
kinds appear without editing this file.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from felboot.errors import ImageError
from felboot.images import load
from felboot.images.devicetree import FDT_MAGIC, fdt_total_size, read_fdt
from felboot.images.fit import FIT_HINT, FitImage, parse_fit, select_config
from felboot.images.spl import EGON_MAGIC, MAGIC_OFFSET, SplImage, parse_spl
from felboot.images.uboot import (
    LeadingMagic,
    main_offset_for,
    parse_main,
    soc_from_dt_name,
)
from felboot.images.uimage import (
    LEGACY_MAGIC,
    TYPE_SCRIPT,
    LegacyImage,
    image_parts,
    parse_legacy_image,
)

Info = dict[str, Any]
Describer = Callable[[bytes], "Info | None"]

EXTENSION_MODULES = ("felboot.images.kernel", "felboot.images.dtb")
SCRIPT_PREVIEW_LIMIT = 64 * 1024


def _hex(value: int | None) -> str | None:
    return None if value is None else f"0x{value:x}"


def _leading_magic(data: bytes, offset: int = 0) -> int | None:
    if len(data) < offset + LeadingMagic.sizeof():
        return None
    return int(LeadingMagic.parse(data[offset:]))


def _spl_info(spl: SplImage) -> Info:
    return {
        "length": spl.length,
        "checksum": _hex(spl.checksum),
        "checksum_ok": spl.checksum_ok,
        "spl_version": spl.version_text,
        "dt_name": spl.dt_name,
        "soc": soc_from_dt_name(spl.dt_name) if spl.dt_name else None,
        "dram_size_mib": spl.dram_size_mib,
        "has_fel_script_fields": spl.has_fel_script_fields,
    }


def _legacy_info(image: LegacyImage, source: str) -> Info:
    info: Info = {
        "kind": "legacy-image",
        "name": image.name,
        "type": image.type_name,
        "os": image.os_name,
        "arch": image.arch_name,
        "compression": image.compression_name,
        "load": _hex(image.load),
        "entry": _hex(image.entry),
        "data_size": image.data_size,
        "timestamp": image.timestamp,
        "header_crc_ok": image.header_crc_ok,
        "data_crc_ok": image.data_crc_ok,
    }
    if image.image_type == TYPE_SCRIPT and image.data_crc_ok:
        parts = image_parts(image, source)
        if parts and len(parts[0]) <= SCRIPT_PREVIEW_LIMIT:
            info["script"] = parts[0].decode("utf-8", errors="replace")
    return info


def _fit_info(fit: FitImage, dt_name: str | None) -> Info:
    try:
        selected: str | None = select_config(fit, dt_name).name
    except ImageError:
        selected = None
    return {
        "kind": "fit",
        "description": fit.description,
        "fdt_size": fit.fdt_size,
        "default": fit.default,
        "selected": selected,
        "images": {
            name: {
                "description": image.description,
                "type": image.type,
                "arch": image.arch,
                "os": image.os,
                "compression": image.compression,
                "load": _hex(image.load),
                "entry": _hex(image.entry),
                "size": len(image.data),
                "external": image.external,
            }
            for name, image in fit.images.items()
        },
        "configurations": {
            name: {
                "description": config.description,
                "firmware": config.firmware,
                "loadables": list(config.loadables),
                "fdt": list(config.fdt),
                "soc": soc_from_dt_name(config.description) if config.description else None,
            }
            for name, config in fit.configurations.items()
        },
    }


def _main_info(main: LegacyImage | FitImage, source: str, dt_name: str | None) -> Info:
    if isinstance(main, FitImage):
        return _fit_info(main, dt_name)
    return _legacy_info(main, source)


def _describe_spl(data: bytes, source: str) -> Info | None:
    if data[MAGIC_OFFSET : MAGIC_OFFSET + len(EGON_MAGIC)] != EGON_MAGIC:
        return None
    problems: list[str] = []
    try:
        spl = parse_spl(data, source)
    except ImageError as error:
        problems.append(str(error))
        try:
            spl = parse_spl(data, source, verify_checksum=False)
        except ImageError:
            return {"kind": "spl", "problems": problems}
    info: Info = {"kind": "spl", "spl": _spl_info(spl), "problems": problems}
    offset = main_offset_for(spl)
    if _leading_magic(data, offset) not in (LEGACY_MAGIC, FDT_MAGIC):
        return info
    main_source = f"{source} at 0x{offset:x}"
    info["kind"] = "u-boot-with-spl"
    info["main_offset"] = offset
    try:
        main = parse_main(data[offset:], main_source)
    except ImageError as error:
        problems.append(str(error))
        return info
    info["main"] = _main_info(main, main_source, spl.dt_name)
    if isinstance(main, FitImage) and info["main"]["selected"] is None:
        problems.append(f"{main_source}: no FIT configuration matches DT name {spl.dt_name!r}")
    return info


def _describe_legacy(data: bytes, source: str) -> Info | None:
    if _leading_magic(data) != LEGACY_MAGIC:
        return None
    problems: list[str] = []
    try:
        image = parse_legacy_image(data, source)
    except ImageError as error:
        problems.append(str(error))
        try:
            image = parse_legacy_image(data, source, verify=False)
        except ImageError:
            return {"kind": "legacy-image", "problems": problems}
    try:
        info = _legacy_info(image, source)
    except ImageError as error:
        info = {"kind": "legacy-image"}
        problems.append(str(error))
    info["problems"] = problems
    return info


def _describe_fit(data: bytes, source: str) -> Info | None:
    if _leading_magic(data) != FDT_MAGIC:
        return None
    try:
        root = read_fdt(data[: fdt_total_size(data, source, FIT_HINT)], source)
    except ImageError:
        return None  # not a readable device tree: let the DTB describer (or "unknown") say so
    if root.child("images") is None:
        return None  # a plain device tree
    try:
        fit = parse_fit(data, source)
    except ImageError as error:
        return {"kind": "fit", "problems": [str(error)]}
    return {**_fit_info(fit, None), "problems": []}


def _extension_describers() -> Iterator[Describer]:
    for module_name in EXTENSION_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:
                continue  # that kind is not built yet
            raise
        describe = getattr(module, "describe", None)
        if callable(describe):
            yield describe


def describe_bytes(data: bytes, source: str) -> Info:
    """What felboot sees in ``data`` (named ``source`` in messages)."""
    for own in (_describe_spl, _describe_legacy, _describe_fit):
        info = own(data, source)
        if info is not None:
            return info
    for describe in _extension_describers():
        found = describe(data)
        if found is not None:
            return {"kind": found.get("kind", found.get("type")), **found, "problems": []}
    return {
        "kind": "unknown",
        "magic": data[:8].hex(),
        "problems": [
            f"{source}: felboot does not recognise this file (first bytes {data[:8].hex()})"
        ],
    }


def describe_file(path: Path) -> Info:
    """What felboot sees in the file at ``path``; see the module docstring for the keys."""
    data = load(path)
    return {"path": str(path), "size": len(data), **describe_bytes(data, str(path))}
