"""dom0less domUs: the ``--domu`` option read into a pure ``DomU`` record (parsed at the edge).

Syntax (one ``--domu`` per domain, domU1 first)::

    --domu kernel=Image,ramdisk=r.cpio,mem=256M,vcpus=1,args="console=ttyAMA0 a=b,c",
           vpl011=yes,dtb=partial.dtb,passthrough=/soc/ethernet@1c50000

Items are separated by commas. A value that begins with a double quote runs to
the next double quote, so it may hold commas and ``=``; a value without one
ends at the next comma. There is no escape inside quotes: a command line can
carry no double quote anyway (the boot script puts it inside one). A first
item without ``=`` is the kernel (``--domu Image``). ``passthrough=`` may be
given more than once, or name several paths separated by ``;``.

Defaults: 1 vCPU and a vpl011 console, as ImageBuilder's ``uboot-script-gen``
(Xilinx/imagebuilder: DOMU_VCPUS defaults to 1, and it always sets ``vpl011``);
128 MiB of memory, not ImageBuilder's 512 MB: Allwinner boards have 512 MiB to
2 GiB and Xen gives dom0 512M unless told otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from felboot.errors import UsageError
from felboot.units import parse_number

KiB = 1 << 10
MiB = 1 << 20
DEFAULT_MEM = 128 * MiB
DEFAULT_VCPUS = 1

# CPU cores per SoC, from the /cpus nodes of Linux's device trees (arch/arm/boot/dts/
# allwinner/sun4i-a10.dtsi, sun5i.dtsi, sun7i-a20.dtsi, sun8i-a23-a33.dtsi, sun6i-a31.dtsi,
# sun8i-a83t.dtsi, sun8i-h3.dtsi (sunxi-h3-h5.dtsi shares the peripherals, each SoC its cpus),
# sun8i-r40.dtsi, sun8i-v3s.dtsi; arch/arm64/boot/dts/allwinner/sun50i-a64.dtsi,
# sun50i-h5.dtsi, sun50i-h6.dtsi, sun50i-h616.dtsi). Checked against Debian's 6.1 DTBs for
# A20 (2), H3 (4) and A64 (4) by tests/test_domains.py when they are installed.
SOC_CPUS = {
    "A10": 1,
    "A13": 1,
    "A20": 2,
    "A23": 2,
    "A31": 4,
    "A33": 4,
    "A64": 4,
    "A83T": 8,
    "H3": 4,
    "H5": 4,
    "H6": 4,
    "H616": 4,
    "R40": 4,
    "V3s": 1,
}

_KEYS = ("kernel", "ramdisk", "mem", "vcpus", "args", "vpl011", "dtb", "passthrough")
_ALIASES = {"initrd": "ramdisk", "memory": "mem", "cpus": "vcpus", "cmdline": "args"}
_YES = {"yes": True, "true": True, "on": True, "1": True}
_NO = {"no": False, "false": False, "off": False, "0": False}


@dataclass(frozen=True)
class DomU:
    """One dom0less domain as the user asked for it (paths not read yet)."""

    index: int  # 1 for domU1: the /chosen node's name
    kernel: Path
    ramdisk: Path | None = None
    mem: int = DEFAULT_MEM  # bytes, a whole number of KiB (Xen's `memory` is in KiB)
    vcpus: int = DEFAULT_VCPUS
    args: str = ""
    vpl011: bool = True
    dtb: Path | None = None  # the partial device tree (docs/misc/arm/passthrough.txt)
    passthrough: tuple[str, ...] = ()  # host DTB nodes that get xen,passthrough

    @property
    def name(self) -> str:
        return f"domU{self.index}"

    def spec(self) -> str:
        """This domain in --domu syntax (for `felboot config show`)."""
        items = [f"kernel={self.kernel}"]
        if self.ramdisk is not None:
            items.append(f"ramdisk={self.ramdisk}")
        mem = f"{self.mem >> 20}M" if self.mem % MiB == 0 else f"{self.mem >> 10}K"
        items += [f"mem={mem}", f"vcpus={self.vcpus}"]
        if self.args:
            items.append(f'args="{self.args}"')
        items.append(f"vpl011={'yes' if self.vpl011 else 'no'}")
        if self.dtb is not None:
            items.append(f"dtb={self.dtb}")
        if self.passthrough:
            items.append(f"passthrough={';'.join(self.passthrough)}")
        return ",".join(items)


def _split(text: str, what: str) -> list[tuple[str | None, str]]:
    """(key or None, value) items of ``text``: commas separate, double quotes protect."""
    items: list[tuple[str | None, str]] = []
    position = 0
    while position < len(text):
        equals = text.find("=", position)
        comma = text.find(",", position)
        key: str | None = None
        if equals >= 0 and (comma < 0 or equals < comma):
            key = text[position:equals].strip().lower()
            position = equals + 1
        if text.startswith('"', position):
            close = text.find('"', position + 1)
            if close < 0:
                raise UsageError(f"{what}: the double quote at offset {position} is never closed")
            value = text[position + 1 : close]
            position = close + 1
            if position < len(text) and text[position] != ",":
                raise UsageError(
                    f"{what}: {text[position:]!r} follows a closing double quote: put a comma "
                    "between items"
                )
        else:
            end = text.find(",", position)
            end = len(text) if end < 0 else end
            value = text[position:end].strip()
            if '"' in value:
                raise UsageError(
                    f"{what}: {value!r} has a double quote inside it: quote the whole value, "
                    'as args="a,b"'
                )
            position = end
        items.append((key, value))
        position += 1  # the comma
    return items


def parse_domu(text: str, index: int) -> DomU:
    """``--domu TEXT`` (the ``index``-th, from 1) as a DomU; a UsageError naming the domU."""
    what = f"--domu domU{index}"
    values: dict[str, str] = {}
    paths: list[str] = []
    for position, (key, value) in enumerate(_split(text, what)):
        if key is None:
            if position != 0 or not value:
                raise UsageError(
                    f"{what}: {value!r} is not key=value (keys: {', '.join(_KEYS)}); only the "
                    "first item may be the bare kernel"
                )
            key = "kernel"
        key = _ALIASES.get(key, key)
        if key not in _KEYS:
            raise UsageError(f"{what}: unknown key {key!r} (keys: {', '.join(_KEYS)})")
        if key == "passthrough":
            paths += [part.strip() for part in value.split(";") if part.strip()]
            continue
        if key in values:
            raise UsageError(f"{what}: {key}= is given twice ({values[key]!r} and {value!r})")
        values[key] = value
    return _domu(values, paths, index, what)


def domu_from_table(table: dict[str, Any], index: int, what: str, base: Path) -> DomU:
    """One ``[[domu]]`` table of a config file (the --domu keys, TOML-typed) as a DomU.

    Paths are relative to ``base``, the config file's directory; ``what`` names the
    file and the table in messages."""
    values: dict[str, str] = {}
    paths: list[str] = []
    for key, value in table.items():
        key = _ALIASES.get(key, key)
        if key not in _KEYS:
            raise UsageError(f"{what}: unknown key {key!r} (keys: {', '.join(_KEYS)})")
        if key == "passthrough":
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
                raise UsageError(f"{what}: passthrough takes a path or a list of paths")
            paths += items
        elif key == "vpl011" and isinstance(value, bool):
            values[key] = "yes" if value else "no"
        elif key in ("mem", "vcpus") and isinstance(value, int) and not isinstance(value, bool):
            values[key] = str(value)
        elif isinstance(value, str):
            values[key] = value
        else:
            raise UsageError(f"{what}: {key} = {value!r} is not a string")
    for key in ("kernel", "ramdisk", "dtb"):
        if values.get(key):
            values[key] = os.path.normpath(base / Path(values[key]).expanduser())
    return _domu(values, paths, index, what)


def _domu(values: dict[str, str], paths: list[str], index: int, what: str) -> DomU:
    """The DomU of checked ``values`` (key -> text, as --domu spells them)."""
    if not values.get("kernel"):
        raise UsageError(f"{what}: no kernel: write kernel=FILE (or the file first)")
    for path in paths:
        if not path.startswith("/"):
            raise UsageError(
                f"{what}: passthrough={path!r} is not an absolute device-tree path "
                "(e.g. /soc/ethernet@1c50000)"
            )
    mem = DEFAULT_MEM
    if "mem" in values:
        try:
            mem = parse_number(values["mem"], "mem")
        except UsageError:
            raise UsageError(
                f"{what}: mem={values['mem']!r} is not a size: write e.g. 256M, 1G or 65536K"
            ) from None
        if mem <= 0 or mem % KiB:
            raise UsageError(
                f"{what}: mem={values['mem']!r} is not a positive whole number of KiB "
                "(Xen's memory property counts KiB): write e.g. 256M"
            )
    vcpus = DEFAULT_VCPUS
    if "vcpus" in values:
        if not values["vcpus"].isdigit() or int(values["vcpus"]) < 1:
            raise UsageError(f"{what}: vcpus={values['vcpus']!r} is not a whole number from 1")
        vcpus = int(values["vcpus"])
    vpl011 = True
    if "vpl011" in values:
        word = values["vpl011"].lower()
        if word not in _YES and word not in _NO:
            raise UsageError(f"{what}: vpl011={values['vpl011']!r} is not yes or no")
        vpl011 = _YES.get(word, False)
    return DomU(
        index=index,
        kernel=Path(values["kernel"]),
        ramdisk=Path(values["ramdisk"]) if values.get("ramdisk") else None,
        mem=mem,
        vcpus=vcpus,
        args=values.get("args", ""),
        vpl011=vpl011,
        dtb=Path(values["dtb"]) if values.get("dtb") else None,
        passthrough=tuple(paths),
    )


def parse_domus(specs: Sequence[str | DomU]) -> tuple[DomU, ...]:
    """The --domu options in order; DomU items (from a config file's [[domu]]) pass as they are."""
    return tuple(
        spec if isinstance(spec, DomU) else parse_domu(spec, index)
        for index, spec in enumerate(specs, start=1)
    )
