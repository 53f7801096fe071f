"""What felboot sees in a file, for `felboot inspect`: JSON-able data and its text form.

``describe_file``/``describe_bytes`` give a dict. Every answer has ``kind``
("spl", "u-boot-with-spl", "legacy-image", "fit", "zImage", "Image",
"gzip-Image", "dtb", "ramdisk", "unknown", or a kind from an extension module),
``path``, ``size``, ``problems`` (one line per reason felboot would refuse the
file; empty when it is fine) and ``warnings`` (what felboot would warn about).
Every number is an int (addresses, ids, checksums and sizes alike: JSON has no
hex). ``report_lines`` is the text form of `felboot inspect`: 0x... for
addresses and ids, yes/no, sizes as "1.1 MiB (1,172,112 bytes)".

Kernel and device-tree files are first described by ``describe(data)`` of
felboot.images.kernel and felboot.images.dtb when those modules exist, so new
kinds appear without editing this file; what a Xen user needs beyond that
(Xen or Linux, LPAE, the board and SoC) is added here.
"""

from __future__ import annotations

import datetime
import re
import zlib
from pathlib import Path
from typing import Any

from felboot.errors import ImageError
from felboot.images import installed_kernel_config, load
from felboot.images.devicetree import FDT_MAGIC, fdt_total_size, read_fdt
from felboot.images.dtb import describe as describe_dtb
from felboot.images.dtb import parse_dtb
from felboot.images.fit import FIT_HINT, FitImage, parse_fit, select_config
from felboot.images.kconfig import KernelConfig, debian_flavour
from felboot.images.kernel import describe as describe_kernel
from felboot.images.kernel import parse_kernel
from felboot.images.spl import EGON_MAGIC, MAGIC_OFFSET, SplImage, parse_spl
from felboot.images.uboot import (
    LeadingMagic,
    main_offset_for,
    parse_main,
    soc_from_dt_name,
)
from felboot.images.uimage import (
    LEGACY_MAGIC,
    TYPE_RAMDISK,
    TYPE_SCRIPT,
    LegacyImage,
    image_parts,
    parse_legacy_image,
)
from felboot.images.xen import find_markers
from felboot.soc import soc_by_name
from felboot.units import format_bytes, format_size

Info = dict[str, Any]

SCRIPT_PREVIEW_LIMIT = 64 * 1024
KERNEL_KINDS = ("zImage", "Image", "gzip-Image")

UBOOT_BANNER = re.compile(rb"U-Boot (?:SPL )?([0-9]{4}\.[0-9]{2}[\x21-\x7e]*) \(")
GUNZIP_LIMIT = 128 << 20  # a dom0 Image is ~31 MiB unpacked; the markers are in the first part

# Leading bytes of what an initrd usually is (the formats Linux' initramfs unpacker
# takes: usr/Kconfig); felboot passes a ramdisk on as it is.
RAMDISK_MAGICS = (
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x02\x21\x4c\x18", "lz4"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\x1f\x8b\x08", "gzip"),
    (b"BZh", "bzip2"),
    (b"\x89LZO", "lzo"),
    (b"\x5d\x00\x00", "lzma"),
    (b"070701", "cpio"),
    (b"070702", "cpio"),
)


def _leading_magic(data: bytes, offset: int = 0) -> int | None:
    if len(data) < offset + LeadingMagic.sizeof():
        return None
    return int(LeadingMagic.parse(data[offset:]))


def _soc_id(soc: str | None) -> int | None:
    record = soc_by_name(soc) if soc else None
    return record.soc_id if record else None


def _uboot_version(data: bytes) -> str | None:
    """ "2023.01+dfsg-2+deb12u3" from U-Boot's (or its SPL's) version banner."""
    found = UBOOT_BANNER.search(data)
    return found.group(1).decode("ascii") if found else None


def _ramdisk_format(data: bytes) -> str | None:
    for magic, name in RAMDISK_MAGICS:
        if data.startswith(magic):
            return name
    return None


def _spl_info(spl: SplImage) -> Info:
    soc = soc_from_dt_name(spl.dt_name) if spl.dt_name else None
    return {
        "length": spl.length,
        "checksum": spl.checksum,
        "checksum_ok": spl.checksum_ok,
        "spl_version": spl.version_text,
        "uboot_version": _uboot_version(spl.data),
        "dt_name": spl.dt_name,
        "soc": soc,
        "soc_id": _soc_id(soc),
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
        "load": image.load,
        "entry": image.entry,
        "data_size": image.data_size,
        "timestamp": image.timestamp,
        "header_crc_ok": image.header_crc_ok,
        "data_crc_ok": image.data_crc_ok,
    }
    if image.os_name == "U-Boot":
        info["uboot_version"] = _uboot_version(image.data)
    if image.image_type == TYPE_RAMDISK:
        info["payload_format"] = _ramdisk_format(image.data)
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
    versions = (
        _uboot_version(image.data)
        for image in fit.images.values()
        if (image.os or "").lower() == "u-boot"
    )
    return {
        "kind": "fit",
        "description": fit.description,
        "fdt_size": fit.fdt_size,
        "default": fit.default,
        "selected": selected,
        "uboot_version": next((version for version in versions if version), None),
        "images": {
            name: {
                "description": image.description,
                "type": image.type,
                "arch": image.arch,
                "os": image.os,
                "compression": image.compression,
                "load": image.load,
                "entry": image.entry,
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


def _unpacked(data: bytes, kind: str) -> bytes:
    """The bytes the markers are in: a gzip'ed Image is searched unpacked."""
    if kind != "gzip-Image":
        return data
    try:
        return zlib.decompressobj(wbits=31).decompress(data, GUNZIP_LIMIT)
    except zlib.error:
        return b""  # kernel.describe already read its head; a bad tail hides no markers


def _kernel_identity(data: bytes, info: Info) -> Info:
    """Xen, Linux or None (neither's markers), and the version when the image says it."""
    kind = str(info.get("kind"))
    markers = find_markers(_unpacked(data, kind), zimage=kind == "zImage")
    return {
        "os": {"xen": "Xen", "linux": "Linux", None: None}[markers.kind],
        "xen_version": markers.xen_version,
        "xen_markers": markers.xen,
        "linux_version": None if markers.xen else markers.linux_version,
    }


def _describe_ramdisk(data: bytes) -> Info | None:
    found = _ramdisk_format(data)
    return None if found is None else {"kind": "ramdisk", "compression": found}


def describe_bytes(data: bytes, source: str) -> Info:
    """What felboot sees in ``data`` (named ``source`` in messages)."""
    for own in (_describe_spl, _describe_legacy, _describe_fit):
        info = own(data, source)
        if info is not None:
            return {**info, "warnings": []}
    for describe in (describe_kernel, describe_dtb):
        found = describe(data)
        if found is not None:
            kind = found.get("kind", found.get("type"))
            info = {"kind": kind, **found}
            if kind in KERNEL_KINDS:
                info.update(_kernel_identity(data, info))
            return {**info, "problems": [], "warnings": []}
    ramdisk = _describe_ramdisk(data)
    if ramdisk is not None:
        return {**ramdisk, "problems": [], "warnings": []}
    return {
        "kind": "unknown",
        "magic": data[:8].hex(),
        "problems": [
            f"{source}: felboot does not recognise this file (first bytes {data[:8].hex()})"
        ],
        "warnings": [],
    }


# What the file's place on disk adds -------------------------------------------


def _lpae_from_name(path: Path) -> bool | None:
    return {"armmp-lpae": True, "armmp": False}.get(debian_flavour(path.name) or "")


def _kernel_config(data: bytes, path: Path) -> tuple[KernelConfig, str] | None:
    """The kernel's build config and where it came from: config-VERSION beside it, or IKCONFIG."""
    config = installed_kernel_config(path, parse_kernel(data, str(path), "kernel"))
    if config is None:
        return None
    embedded = config.source == str(path)
    return config, "the kernel's embedded config (IKCONFIG)" if embedded else config.source


def _add_linux_config(info: Info, data: bytes, path: Path) -> None:
    """Xen support and (arm32) LPAE: from the build config when there is one, else the name."""
    try:
        found = _kernel_config(data, path)
    except ImageError as error:
        info["warnings"].append(str(error))
        found = None
    arm32 = info.get("arch") == "arm"
    if found is not None:
        config, source = found
        info["xen_support"] = config.enabled("CONFIG_XEN")
        info["config_source"] = source
        if arm32:
            info["lpae"] = config.enabled("CONFIG_ARM_LPAE")
            info["lpae_source"] = source
    else:
        info["xen_support"] = None
        info["config_source"] = None
        if arm32:
            lpae = _lpae_from_name(path)
            info["lpae"] = lpae
            info["lpae_source"] = (
                None if lpae is None else f"the Debian flavour in the file name {path.name!r}"
            )
    if info["xen_support"] is False:
        info["warnings"].append(
            f"{path}: built without CONFIG_XEN ({info['config_source']}): it cannot be dom0"
        )
    if arm32 and info.get("lpae") is False:
        info["warnings"].append(
            f"{path}: not an LPAE kernel ({info['lpae_source']}): arm32 Xen is proven "
            "here with LPAE dom0 kernels only (Debian's linux-image-armmp-lpae)"
        )


def _add_dtb_facts(info: Info, data: bytes, path: Path) -> None:

    compatible = [str(item) for item in info.get("compatible") or []]
    socs = [(item, soc_from_dt_name(item.split(",", 1)[-1])) for item in compatible]
    soc_compatible, soc = next(((item, soc) for item, soc in socs if soc), (None, None))
    info["board"] = compatible[0] if compatible and compatible[0] != soc_compatible else None
    info["soc"] = soc
    info["soc_compatible"] = soc_compatible
    info["soc_id"] = _soc_id(soc)
    if info.get("console") is None:
        try:
            parse_dtb(data, str(path)).serial_path()
        except ImageError as error:
            info["warnings"].append(str(error))


def describe_file(path: Path) -> Info:
    """What felboot sees in the file at ``path``; see the module docstring for the keys."""
    data = load(path)
    info = {"path": str(path), "size": len(data), **describe_bytes(data, str(path))}
    if info["kind"] in KERNEL_KINDS and info.get("os") != "Xen":
        _add_linux_config(info, data, path)
    if info["kind"] == "dtb":
        _add_dtb_facts(info, data, path)
    return info


# The text form -----------------------------------------------------------------


def _yes_no(value: object) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _hex_or_dash(value: int | None) -> str:
    return "-" if value is None else f"0x{value:x}"


def _soc_text(soc: str | None, soc_id: int | None) -> str:
    if soc is None:
        return "unknown"
    return soc if soc_id is None else f"{soc} (FEL SoC id 0x{soc_id:04x})"


def _aligned(pairs: list[tuple[str, str]], indent: str) -> list[str]:
    width = max((len(label) for label, _ in pairs), default=0) + 1
    return [f"{indent}{label + ':':<{width}} {value}".rstrip() for label, value in pairs]


def _arch_text(arch: object) -> str:
    return {"arm": "arm32", "arm64": "arm64"}.get(str(arch), str(arch))


def _kernel_headline(info: Info) -> str:
    form = {"zImage": "zImage", "Image": "Image", "gzip-Image": "Image, gzip'ed"}[info["kind"]]
    arch = _arch_text(info.get("arch"))
    if info.get("os") == "Xen":
        version = f" {info['xen_version']}" if info.get("xen_version") else ""
        return f"Xen{version} hypervisor, {arch} {form}"
    if info.get("os") == "Linux":
        return f"Linux kernel, {arch} {form}"
    return f"{arch} {form}: neither Xen's nor Linux' markers found"


def _kernel_lines(info: Info) -> list[tuple[str, str]]:
    pairs = [("load size", format_bytes(info["load_size"]))]
    if info.get("arch") == "arm64":
        pairs.append(("text offset", _hex_or_dash(info.get("text_offset"))))
        pairs.append(("header flags", _hex_or_dash(info.get("flags"))))
        pairs.append(("place anywhere", _yes_no(info.get("place_anywhere"))))
    pairs.append(("compressed", _yes_no(info.get("compressed"))))
    if info.get("os") == "Xen":
        pairs.append(("Xen markers", ", ".join(info["xen_markers"])))
    else:
        pairs.append(("Xen markers", "none"))
        if info.get("linux_version"):
            pairs.append(("Linux version", info["linux_version"]))
    if "xen_support" in info:
        source = info.get("config_source")
        pairs.append(
            (
                "Xen support",
                f"{_yes_no(info['xen_support'])} (CONFIG_XEN, from {source})"
                if source
                else "unknown (no config-VERSION beside it, no IKCONFIG)",
            )
        )
    if "lpae" in info:
        if info["lpae"] is None:
            lpae = "unknown (no config, and the name is not Debian's -armmp/-armmp-lpae)"
        else:
            lpae = f"{_yes_no(info['lpae'])} (from {info['lpae_source']})"
        pairs.append(("LPAE", lpae))
    pairs.append(("boots with", "booti" if info.get("arch") == "arm64" else "bootz"))
    return pairs


def _spl_pairs(spl: Info) -> list[tuple[str, str]]:
    checksum = f"0x{spl['checksum']:08x} ({'ok' if spl['checksum_ok'] else 'WRONG'})"
    pairs = [
        ("DT name", spl.get("dt_name") or "- (none in the header)"),
        ("SoC", _soc_text(spl.get("soc"), spl.get("soc_id"))),
        (
            "SPL header",
            f"version {spl['spl_version']}" if spl.get("spl_version") else "not U-Boot's",
        ),
    ]
    if spl.get("uboot_version"):
        pairs.append(("U-Boot version", str(spl["uboot_version"])))
    pairs += [
        ("SPL size", format_bytes(spl["length"])),
        ("checksum", checksum),
        ("FEL script fields", _yes_no(spl.get("has_fel_script_fields"))),
    ]
    if spl.get("dram_size_mib"):
        size = format_size(spl["dram_size_mib"] << 20)
        pairs.append(("DRAM size", f"{size} (written by an SPL that ran)"))
    return pairs


def _spl_headline(info: Info) -> str:
    spl = info.get("spl")
    what = "U-Boot with SPL" if info["kind"] == "u-boot-with-spl" else "SPL"
    if not spl or not spl.get("dt_name"):
        return f"{what} (eGON), for no board it names"
    soc = f" ({spl['soc']})" if spl.get("soc") else ""
    return f"{what} for {spl['dt_name']}{soc}"


def _legacy_headline(info: Info) -> str:
    kinds = {
        "script": "boot script",
        "ramdisk": "ramdisk (uInitrd)",
        "kernel": "kernel (uImage)",
        "firmware": "U-Boot proper" if info.get("os") == "U-Boot" else "firmware",
    }
    what = kinds.get(str(info.get("type")), f"{info.get('type')} image")
    return f"U-Boot legacy image: {what}" if "type" in info else "U-Boot legacy image"


def _legacy_pairs(info: Info) -> list[tuple[str, str]]:
    if "type" not in info:
        return []
    stamp = datetime.datetime.fromtimestamp(info["timestamp"], datetime.timezone.utc)
    pairs = [
        ("name", repr(info["name"])),
        ("type", f"{info['type']} (OS {info['os']}, arch {info['arch']})"),
        ("compression", str(info["compression"])),
        ("load", _hex_or_dash(info["load"])),
        ("entry", _hex_or_dash(info["entry"])),
        ("data size", format_bytes(info["data_size"])),
        ("CRCs", f"header {_ok(info['header_crc_ok'])}, data {_ok(info['data_crc_ok'])}"),
        ("created", stamp.strftime("%Y-%m-%d %H:%M:%S UTC")),
    ]
    if info.get("uboot_version"):
        pairs.append(("U-Boot version", str(info["uboot_version"])))
    if "payload_format" in info:
        pairs.append(("payload", f"{info['payload_format'] or 'unknown'} data"))
    return pairs


def _ok(flag: object) -> str:
    return "ok" if flag else "WRONG"


def _fit_lines(info: Info, indent: str) -> list[str]:
    if "configurations" not in info:
        return []
    lines = _aligned(
        [
            ("description", repr(info["description"]) if info.get("description") else "-"),
            ("default", info.get("default") or "-"),
            ("selected", (info.get("selected") or "none matches") + " (what the SPL boots)"),
            ("U-Boot version", info.get("uboot_version") or "-"),
        ],
        indent,
    )
    lines.append(f"{indent}configurations:")
    for name, config in info["configurations"].items():
        soc = f" ({config['soc']})" if config.get("soc") else ""
        loads = [config["firmware"], *config["loadables"]] if config["firmware"] else []
        lines.append(
            f"{indent}  {name}: {config.get('description') or '-'}{soc}; "
            f"loads {', '.join(loads) or '-'}; fdt {', '.join(config['fdt']) or '-'}"
        )
    lines.append(f"{indent}images:")
    for name, image in info["images"].items():
        where = "after the tree" if image["external"] else "embedded"
        lines.append(
            f"{indent}  {name}: {image.get('type') or '-'}, {image.get('arch') or '-'}, "
            f"load {_hex_or_dash(image['load'])}, entry {_hex_or_dash(image['entry'])}, "
            f"{format_bytes(image['size'])} ({where})"
        )
    return lines


def _dtb_headline(info: Info) -> str:
    board = info.get("model") or info.get("board") or "an unnamed board"
    soc = f" ({info['soc']})" if info.get("soc") and info["soc"] not in board else ""
    return f"device tree for {board}{soc}"


def _dtb_pairs(info: Info) -> list[tuple[str, str]]:
    soc = _soc_text(info.get("soc"), info.get("soc_id"))
    if info.get("soc_compatible"):
        soc += f", from {info['soc_compatible']}"
    return [
        ("model", info.get("model") or "-"),
        ("board", info.get("board") or "-"),
        ("compatible", ", ".join(info.get("compatible") or []) or "-"),
        ("SoC", soc),
        ("Xen dtuart", info.get("console") or "- (none found: pass --xen-args 'dtuart=...')"),
    ]


def _generic_value(key: str, value: object) -> str:
    if isinstance(value, bool) or value is None:
        return _yes_no(value)
    if isinstance(value, int):
        return format_bytes(value) if "size" in key else f"0x{value:x}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value) or "-"
    return str(value)


_ALWAYS_SHOWN = ("path", "size", "kind", "problems", "warnings")


def report_lines(info: Info) -> list[str]:
    """The text `felboot inspect` prints for one ``describe_file`` answer."""
    kind = info.get("kind")
    indent = "  "
    pairs = [("file", format_bytes(info["size"]))]
    nested: list[str] = []
    if kind in ("spl", "u-boot-with-spl"):
        headline = _spl_headline(info)
        pairs += _spl_pairs(info["spl"]) if info.get("spl") else []
        main = info.get("main")
        if main is not None:
            offset = f"0x{info['main_offset']:x}"
            if main["kind"] == "fit":
                nested.append(f"{indent}U-Boot proper at {offset}: FIT image")
                nested += _fit_lines(main, indent * 2)
            else:
                nested.append(f"{indent}U-Boot proper at {offset}: {_legacy_headline(main)}")
                nested += _aligned(_legacy_pairs(main), indent * 2)
    elif kind == "legacy-image":
        headline = _legacy_headline(info)
        pairs += _legacy_pairs(info)
        if "script" in info:
            nested.append(f"{indent}script:")
            nested += [f"{indent}  | {line}" for line in info["script"].splitlines()]
    elif kind == "fit":
        headline = "FIT image (U-Boot's .itb)"
        nested += _fit_lines(info, indent)
    elif kind in KERNEL_KINDS:
        headline = _kernel_headline(info)
        pairs += _kernel_lines(info)
    elif kind == "dtb":
        headline = _dtb_headline(info)
        pairs += _dtb_pairs(info)
    elif kind == "ramdisk":
        headline = f"{info['compression']} data: an initrd? (felboot sends a ramdisk as it is)"
    elif kind == "unknown":
        headline = f"not a file felboot knows (first bytes {info['magic']})"
    else:  # a kind from an extension module this text does not know yet
        headline = str(kind)
        extra = [(key, value) for key, value in info.items() if key not in _ALWAYS_SHOWN]
        pairs += [(key, _generic_value(key, value)) for key, value in extra]
    lines = [f"{info['path']}: {headline}", *_aligned(pairs, indent), *nested]
    lines += [f"{indent}warning: {warning}" for warning in info.get("warnings", [])]
    lines += [f"{indent}problem: {problem}" for problem in info.get("problems", [])]
    return lines
