"""An ImageBuilder config read as data and mapped onto felboot's request (pure).

ImageBuilder (the Xen project's ``scripts/uboot-script-gen``) takes a config of
shell variables, which it runs with ``source``. felboot never runs it: each
line is one of ``KEY=value``, ``KEY="value"``, ``KEY='value'`` or
``KEY[N]=...`` (a blank line or a ``#`` comment, a comment after the value);
anything else (``$`` expansions, command substitution, ``export``, a value
that needs more than one line) is refused with the file and line.

The keys and their meaning, from ImageBuilder's README (xen-project/imagebuilder
on gitlab.com, the README listing DOM0_MEM, DOM0_VCPUS, DOMU_CMD and
DOMU_PASSTHROUGH_PATHS; the older Xilinx/imagebuilder mirror shows the same
uboot-script-gen for the rest):

* DOM0_MEM is "the amount of memory for Dom0 VM in MB" and DOM0_VCPUS its VCPUs,
  both "only applicable when XEN_CMD is not specified": with XEN_CMD they are
  ignored here too (and named in the warning);
* DOMU_MEM[i] is MB (uboot-script-gen multiplies it by 1024 for the KiB of
  ``memory``), DOMU_VCPUS[i] defaults to 1, DOMU_CMD[i] to ``console=ttyAMA0``;
* DOMU_PASSTHROUGH_PATHS[i] are host DTB paths "separated by spaces" that get
  ``xen,passthrough``; DOMU_PASSTHROUGH_DTB[i] the domain's partial DTB;
* DOM0_KERNEL "for dom0less configurations ... is optional": without it the
  plan is dom0less (felboot's --no-dom0);
* LOAD_CMD is the U-Boot command that loads each file (``tftpb``,
  ``load mmc 0:1``, ``fatload usb 0:1``);
* MEMORY_START and MEMORY_END "the start and end of RAM".

XEN_PASSTHROUGH_PATHS is accepted as felboot's --passthrough, although
ImageBuilder itself dropped the name (Michal Orzel's README patch: "there is no
such option and it should be replaced with DOMU_PASSTHROUGH_PATHS[number]").

Where felboot differs: paths are relative to the config file's directory
(ImageBuilder's are relative to its ``-d`` directory); an unset XEN_CMD or
DOM0_CMD leaves felboot's profile command lines (ImageBuilder's defaults name
a ZynqMP console); an unset DOMU_MEM is felboot's 128 MiB, not 512 MB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from felboot.domains import DEFAULT_MEM, DEFAULT_VCPUS, DomU, MiB
from felboot.errors import UsageError

DEFAULT_DOMU_CMD = "console=ttyAMA0"  # ImageBuilder's README: DOMU_CMD "If not set"

SCALAR_KEYS = (
    "XEN",
    "XEN_CMD",
    "DOM0_KERNEL",
    "DOM0_CMD",
    "DOM0_RAMDISK",
    "DOM0_MEM",
    "DOM0_VCPUS",
    "NUM_DOMUS",
    "XEN_PASSTHROUGH_PATHS",
    "DEVICE_TREE",
    "LOAD_CMD",
    "MEMORY_START",
    "MEMORY_END",
)
INDEXED_KEYS = (
    "DOMU_KERNEL",
    "DOMU_RAMDISK",
    "DOMU_MEM",
    "DOMU_VCPUS",
    "DOMU_CMD",
    "DOMU_PASSTHROUGH_DTB",
    "DOMU_PASSTHROUGH_PATHS",
)

_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[([0-9]+)\])?=(.*)")
_LOAD = re.compile(r"(?:load|fatload|ext4load|ext2load)\s+(mmc|usb)\s+([0-9]+:[0-9]+)")


_SHELL_IN_QUOTES = (
    ("$", "a $ expansion"),
    ("`", "a command substitution"),
    ("\\", "a backslash escape"),
)


class ImageBuilderError(UsageError):
    """A config line felboot cannot read as data, or a value that does not map."""


@dataclass(frozen=True)
class Value:
    text: str
    where: str  # "config:12"


@dataclass(frozen=True)
class ImageBuilderConfig:
    """What the file asks for, in felboot's terms (None: the file does not say)."""

    source: str
    xen: Path | None = None
    kernel: Path | None = None
    dtb: Path | None = None
    initrd: Path | None = None
    xen_args: str | None = None
    dom0_args: str | None = None
    dom0_mem: str | None = None  # as --dom0-mem takes it: "1024M"
    domus: tuple[DomU, ...] = ()
    no_dom0: bool = False
    passthrough: tuple[str, ...] = ()
    load: str | None = None  # as felboot script --load takes it: "tftp", "mmc:0:1"
    memory: tuple[int, int, str] | None = None  # MEMORY_START, MEMORY_END, where
    warnings: tuple[str, ...] = field(default=())


def _value(raw: str, where: str) -> str:
    """The shell word after ``=``: quoted or bare, a trailing ``# comment`` allowed."""
    raw = raw.rstrip()
    if raw.startswith("'"):
        close = raw.find("'", 1)
        if close < 0:
            raise ImageBuilderError(f"{where}: the single quote is never closed on this line")
        text, rest = raw[1:close], raw[close + 1 :]
    elif raw.startswith('"'):
        close = raw.find('"', 1)
        if close < 0:
            raise ImageBuilderError(f"{where}: the double quote is never closed on this line")
        text, rest = raw[1:close], raw[close + 1 :]
        for mark, what in _SHELL_IN_QUOTES:
            if mark in text:
                raise ImageBuilderError(
                    f"{where}: {text!r} holds {what}; felboot reads the config as data and "
                    "does not run it: write the value out"
                )
    else:
        word, _, comment = raw.partition(" ")
        text, rest = word, (" " + comment) if comment else ""
        for mark in ('"', "'", "$", "`", "\\", ";", "|", "&", "(", ")", "<", ">"):
            if mark in text:
                raise ImageBuilderError(
                    f"{where}: {text!r} is not a plain value (it holds {mark!r}); felboot reads "
                    "the config as data and does not run it: quote the value, without $ or `"
                )
    rest = rest.strip()
    if rest and not rest.startswith("#"):
        raise ImageBuilderError(
            f"{where}: {rest!r} follows the value; put a value with spaces in double quotes"
        )
    return text


def parse_lines(text: str, source: str) -> dict[tuple[str, int | None], Value]:
    """Every assignment of the file, by (KEY, index or None); the last one wins, as in bash."""
    values: dict[tuple[str, int | None], Value] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{source}:{number}"
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.fullmatch(stripped)
        if match is None:
            shown = stripped if len(stripped) <= 60 else stripped[:57] + "..."
            raise ImageBuilderError(
                f"{where}: {shown!r} is not KEY=value or KEY[N]=value (felboot reads the "
                "ImageBuilder config as data and runs no shell)"
            )
        key, index, raw = match.groups()
        values[(key, int(index) if index is not None else None)] = Value(_value(raw, where), where)
    return values


def _whole(value: Value, key: str, least: int) -> int:
    text = value.text.strip()
    if not text.isdigit() or int(text) < least:
        raise ImageBuilderError(
            f"{value.where}: {key}={value.text!r} is not a whole number from {least}"
        )
    return int(text)


def _address(value: Value, key: str) -> int:
    try:
        return int(value.text.strip(), 0)
    except ValueError:
        raise ImageBuilderError(
            f"{value.where}: {key}={value.text!r} is not an address (e.g. 0x40000000)"
        ) from None


def _load(value: Value, warnings: list[str]) -> str | None:
    """LOAD_CMD as felboot's --load: tftpb -> tftp, load mmc 0:1 -> mmc:0:1."""
    text = " ".join(value.text.split())
    if text in ("tftpb", "tftpboot", "tftp"):
        return "tftp"
    match = _LOAD.fullmatch(text)
    if match is not None:
        return f"{match[1]}:{match[2]}"
    warnings.append(
        f"{value.where}: LOAD_CMD={value.text!r} has no felboot equivalent (felboot script "
        "--load takes tftp, mmc[:DEV:PART] or usb[:DEV:PART]); ignored"
    )
    return None


def map_config(text: str, path: Path) -> ImageBuilderConfig:
    """The config ``text`` read from ``path`` (relative paths are taken from its directory)."""
    source = str(path)
    values = parse_lines(text, source)
    base = path.parent

    def get(key: str, index: int | None = None) -> Value | None:
        return values.get((key, index))

    def file(key: str, index: int | None = None) -> Path | None:
        value = get(key, index)
        if value is None or not value.text:
            return None
        named = Path(value.text)  # no ~: bash leaves it alone inside quotes too
        return named if named.is_absolute() else base / named

    ignored: list[str] = []
    warnings: list[str] = []
    for key, index in values:
        known = (index is None and key in SCALAR_KEYS) or (
            index is not None and key in INDEXED_KEYS
        )
        if not known and (key in SCALAR_KEYS or key in INDEXED_KEYS):
            shape = f"{key}[N]" if key in INDEXED_KEYS else key
            raise ImageBuilderError(
                f"{values[(key, index)].where}: write {shape}=..., as ImageBuilder's README does"
            )
        if not known:
            ignored.append(f"{key}[{index}]" if index is not None else key)

    xen_cmd = get("XEN_CMD")
    xen_args = xen_cmd.text if xen_cmd is not None else None
    dom0_mem = None
    if (mem := get("DOM0_MEM")) is not None:
        if xen_cmd is not None:
            ignored.append("DOM0_MEM (XEN_CMD is set, as ImageBuilder ignores it then)")
        else:
            dom0_mem = f"{_whole(mem, 'DOM0_MEM', 1)}M"  # MB in ImageBuilder
    if (vcpus := get("DOM0_VCPUS")) is not None:
        if xen_cmd is not None:
            ignored.append("DOM0_VCPUS (XEN_CMD is set, as ImageBuilder ignores it then)")
        else:
            xen_args = f"dom0_max_vcpus={_whole(vcpus, 'DOM0_VCPUS', 1)}"

    count = 0
    if (num := get("NUM_DOMUS")) is not None:
        count = _whole(num, "NUM_DOMUS", 0)
    for (key, index), value in values.items():
        if index is not None and key in INDEXED_KEYS and index >= count:
            raise ImageBuilderError(
                f"{value.where}: {key}[{index}] is beyond NUM_DOMUS={count} (domUs 0 to "
                f"{count - 1}): raise NUM_DOMUS or drop the line"
                if count
                else f"{value.where}: {key}[{index}] but no NUM_DOMUS: add NUM_DOMUS={index + 1}"
            )
    domus = []
    for index in range(count):
        kernel = file("DOMU_KERNEL", index)
        if kernel is None:
            where = num.where if num is not None else source
            raise ImageBuilderError(
                f"{where}: NUM_DOMUS={count} but no DOMU_KERNEL[{index}]: add it or lower NUM_DOMUS"
            )
        mem = get("DOMU_MEM", index)
        vcpu = get("DOMU_VCPUS", index)
        cmd = get("DOMU_CMD", index)
        paths = get("DOMU_PASSTHROUGH_PATHS", index)
        passthrough = tuple(paths.text.split()) if paths is not None else ()
        for node in passthrough:
            if not node.startswith("/"):
                assert paths is not None
                raise ImageBuilderError(
                    f"{paths.where}: DOMU_PASSTHROUGH_PATHS[{index}] {node!r} is not an absolute "
                    "device-tree path (e.g. /soc/ethernet@1c30000)"
                )
        domus.append(
            DomU(
                index=index + 1,  # ImageBuilder's domU0 is felboot's domU1 (the --domu order)
                kernel=kernel,
                ramdisk=file("DOMU_RAMDISK", index),
                mem=_whole(mem, f"DOMU_MEM[{index}]", 1) * MiB if mem is not None else DEFAULT_MEM,
                vcpus=(
                    _whole(vcpu, f"DOMU_VCPUS[{index}]", 1) if vcpu is not None else DEFAULT_VCPUS
                ),
                args=cmd.text if cmd is not None else DEFAULT_DOMU_CMD,
                dtb=file("DOMU_PASSTHROUGH_DTB", index),
                passthrough=passthrough,
            )
        )

    host_paths = get("XEN_PASSTHROUGH_PATHS")
    passthrough = tuple(host_paths.text.split()) if host_paths is not None else ()
    load_cmd = get("LOAD_CMD")
    load = _load(load_cmd, warnings) if load_cmd is not None else None
    memory = None
    start, end = get("MEMORY_START"), get("MEMORY_END")
    if start is not None or end is not None:
        if start is None or end is None:
            given = start or end
            assert given is not None
            raise ImageBuilderError(
                f"{given.where}: MEMORY_START and MEMORY_END go together: give both or neither"
            )
        low, high = _address(start, "MEMORY_START"), _address(end, "MEMORY_END")
        if high <= low:
            raise ImageBuilderError(
                f"{end.where}: MEMORY_END=0x{high:x} is not above MEMORY_START=0x{low:x}"
            )
        memory = (low, high, f"{start.where} and {end.where}")
    kernel = file("DOM0_KERNEL")
    if ignored:
        warnings.insert(
            0, f"{source}: ImageBuilder keys felboot does not use, ignored: {', '.join(ignored)}"
        )
    return ImageBuilderConfig(
        source=source,
        xen=file("XEN"),
        kernel=kernel,
        dtb=file("DEVICE_TREE"),
        initrd=file("DOM0_RAMDISK"),
        xen_args=xen_args,
        dom0_args=dom0_cmd.text if (dom0_cmd := get("DOM0_CMD")) is not None else None,
        dom0_mem=dom0_mem,
        domus=tuple(domus),
        no_dom0=kernel is None and bool(domus),
        passthrough=passthrough,
        load=load,
        memory=memory,
        warnings=tuple(warnings),
    )
