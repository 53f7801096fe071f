"""Where Xen, the DTB, the ramdisk and the dom0 kernel go in DRAM: a pure planner.

The shape is the Xen wiki's Allwinner recipe: from the bottom up Xen, DTB,
ramdisk, kernel, in 2 MiB-aligned slots of 2, 2, 8 and 8 MiB; an image larger
than its slot grows the slot in 2 MiB steps and pushes the slots below it down.
``layout="recipe"`` reproduces the recipe's table exactly (the slots end 2 MiB
below the top of DRAM: 0x7ea00000-0x7fe00000 on a 1 GiB board).

Why the default layout ("safe") ends lower
-----------------------------------------
U-Boot relocates itself to the top of DRAM and keeps its malloc arena, its
framebuffer, its stack and EFI pages just below (fel.md, "Where U-Boot lives
after it starts", measured on Debian's 2023.01 builds with a 0x80000000 top):

=====================  ==============================  ====================
build                  claims from                      below the top
=====================  ==============================  ====================
orangepi_plus (HDMI)   0x78f61000 (lowest reservation)  112.6 MiB
nanopi_neo (no HDMI)   0x7af5a000                        80.6 MiB
qemu_arm               0x7ddf3000                        34.0 MiB
=====================  ==============================  ====================

The recipe's slots lie inside that region on every build: in the framebuffer
of boards with a display, in the malloc arena of the others. They are written
while U-Boot still runs and must survive until Xen starts, so the safe layout
ends ``SAFE_RESERVE`` = 128 MiB below the top. That is 15.4 MiB (13 %) more
than the largest claim measured; the margin covers what grows between builds
and configurations (EFI pages, the stack allowance, a larger framebuffer) while
costing nothing that matters on a 512 MiB+ board. It is a round number, so the
1 GiB slots end at 0x78000000 and the 2 GiB ones at 0xb8000000. U-Boot is dead
once Xen runs, so Xen may still relocate itself into that top region.

The slots must also stay clear of U-Boot's load area (0x4a000000, until it has
relocated), the boot script (0x43100000) and the words the SPL wrote while
probing DRAM. All these are kept as ``reserved`` regions and every image region
is checked against them and against each other, even though the construction
cannot produce an overlap.

Sizes come from headers, not files: Xen's slot from its zImage/Image header
(bss included), an arm64 Image's base 2 MiB-aligned plus its text_offset
(booti needs that), the DTB's slot from its totalsize plus the room the boot
script adds. An uncompressed arm64 dom0 Image is sent gzip-compressed: Xen on
arm64 inflates it itself, and half the bytes cross FEL's slow USB link.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from felboot.boards import BoardProfile
from felboot.domains import SOC_CPUS, DomU
from felboot.errors import ImageError, PlanError, UnsafeWrite, UsageError
from felboot.images.dtb import DeviceTree
from felboot.images.kernel import KernelImage, gzip_for_wire
from felboot.images.spl import SPL_HEADER_SIZE
from felboot.images.xen import xen_version
from felboot.soc import SocInfo, soc_by_name
from felboot.units import format_size

log = logging.getLogger(__name__)

KiB = 1 << 10
MiB = 1 << 20
SLOT_ALIGN = 2 * MiB

# The recipe's slots (minimum sizes) and the room it leaves at the top.
XEN_SLOT = 2 * MiB
DTB_SLOT = 2 * MiB
INITRD_SLOT = 8 * MiB
KERNEL_SLOT = 8 * MiB
RECIPE_TOP_GAP = 2 * MiB

SAFE_RESERVE = 128 * MiB  # see the module docstring

# The DTB grows in place: `fdt resize DTB_ROOM` for the /chosen nodes the boot
# script adds, rounded up to 4 KiB, then CONFIG_SYS_FDT_PAD (12 KiB) more when
# bootz/booti fixes it up with fdt_high set to "leave it here".
DTB_ROOM = 0x10000
DTB_GROWTH = DTB_ROOM + 4 * KiB + 0x3000

# arm32 Linux started without Xen runs its decompressor's stack and heap past
# the zImage's end.
ZIMAGE_SCRATCH = 1 * MiB

DEFAULT_SCRIPT_ADDRESS = 0x43100000  # Debian's scriptaddr / fel_scriptaddr
SCRIPT_ROOM = 64 * KiB
UBOOT_LOAD_ADDRESS = 0x4A000000  # CONFIG_TEXT_BASE of every sunxi build
DEFAULT_UBOOT_SIZE = 1 * MiB  # the measured builds are ~0.5 MiB (arm64 FIT 0.75 MiB)

# What the SPL wrote while sizing DRAM (done before the host writes anything).
SPL_DRAM_PROBES = (
    (0x40000000, 0x40001004),
    (0x40400000, 0x40400004),
    (0x40800000, 0x40800004),
    (0x4F000000, 0x4F000004),
    (0x4FD00000, 0x4FE00000),
    (0x4FF80000, 0x4FF80004),
)

# sunxi U-Boot maps at most 3 GiB of DRAM (dram_init() caps it at SUNXI_DRAM_MAX_SIZE), and
# no more than the SoC's DRAM window (SocInfo.dram_window).
MAX_DRAM = 3 << 30

# What U-Boot claims below the top of DRAM once it has relocated, as measured (fel.md,
# "Where U-Boot lives after it starts": Debian 2023.01, top of RAM 0x80000000, lowest
# reservation). --reserve-top below this is warned about.
MEASURED_TOP = 0x80000000
UBOOT_CLAIM_DISPLAY = ("orangepi_plus (HDMI)", MEASURED_TOP - 0x78F61000)  # 112.6 MiB
UBOOT_CLAIM_HEADLESS = ("nanopi_neo (no display)", MEASURED_TOP - 0x7AF5A000)  # 80.6 MiB

# Xen on Arm reads dom0_mem= as one <size> (docs/misc/xen-command-line.pandoc, "dom0_mem
# (ARM)": "= <size>", "It must be greater than zero"; parse_dom0_mem() in
# xen/arch/arm/domain_build.c returns -EINVAL when anything follows the size, so the x86
# forms min:, max:, lists and % are refused there). <size> is parse_size_and_unit(): a C
# integer (0x.. hex, leading 0 octal, else decimal) and at most one of T/G/M/K/B; no
# suffix means KiB. When dom0_mem is unset or invalid, Xen warns and uses 512M.
_XEN_SIZE = re.compile(r"(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)([TtGgMmKkBb]?)")
_XEN_SHIFT = {"t": 40, "g": 30, "m": 20, "k": 10, "b": 0, "": 10}
XEN_DEFAULT_DOM0_MEM = 512 * MiB
# arm32 Xen keeps at least 32 MiB of xenheap outside every domain (setup_mm() in
# xen/arch/arm/setup.c: "must be at least 32M"); arm64 Xen needs room for its own
# image, frame table and page tables too, but may make do with less.
XEN_MIN_OWN_MEMORY = 32 * MiB

LAYOUTS = ("safe", "recipe")


def _align_up(value: int, align: int) -> int:
    return -(-value // align) * align


def _align_down(value: int, align: int) -> int:
    return value // align * align


@dataclass(frozen=True)
class Region:
    """A range of DRAM: [start, end) is what the plan claims, ``size`` bytes are written at start.

    Reserved regions (U-Boot, the script, the top of DRAM) have no source and size 0.
    """

    name: str
    start: int
    end: int
    size: int
    source: str | None
    sha256: str | None
    payload: bytes = field(default=b"", repr=False, compare=False)

    def overlaps(self, other: Region) -> bool:
        return self.start < other.end and other.start < self.end

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "start": self.start,
            "end": self.end,
            "size": self.size,
            "source": self.source,
            "sha256": self.sha256,
        }


def _image_region(name: str, start: int, end: int, payload: bytes, source: str) -> Region:
    digest = hashlib.sha256(payload).hexdigest()
    return Region(name, start, end, len(payload), source, digest, payload)


def _reserved(name: str, start: int, end: int) -> Region:
    return Region(name, start, end, 0, None, None)


@dataclass(frozen=True)
class Plan:
    board: str
    soc: str
    arch: str  # of the image U-Boot starts: "arm" (bootz) or "arm64" (booti)
    dram_base: int
    dram_size: int
    layout: str
    reserve_top: int  # bytes below the top of DRAM the images keep clear of
    regions: tuple[Region, ...]  # what is written, bottom up
    reserved: tuple[Region, ...]  # what must not be touched
    warnings: tuple[str, ...]
    script_address: int
    script_room: int
    uboot_range: tuple[int, int]
    dtb_room: int  # the argument of `fdt resize`
    no_xen: bool
    kernel_gzipped: bool
    dtb_has_chosen: bool
    console_uart: str | None  # the DTB's console node, for Xen's dtuart=
    console_problem: str | None  # why console_uart is None
    domains: tuple[DomainPlan, ...] = ()  # dom0less domUs, domU1 first
    no_dom0: bool = False  # dom0less only: no dom0 kernel module
    passthrough: tuple[str, ...] = ()  # host DTB nodes the script marks xen,passthrough
    # (major, minor) of Xen, read when there are domUs (their console line depends on it);
    # None without domUs, with --no-xen, or for a Xen that does not say.
    xen_version: tuple[int, int] | None = None

    @property
    def dram_top(self) -> int:
        return self.dram_base + self.dram_size

    @property
    def boot_command(self) -> str:
        return "booti" if self.arch == "arm64" else "bootz"

    def region(self, name: str) -> Region | None:
        return next((r for r in self.regions if r.name == name), None)

    def _need(self, name: str) -> Region:
        found = self.region(name)
        if found is None:
            raise PlanError(f"plan for {self.board} has no {name} region")
        return found

    @property
    def xen(self) -> Region:
        return self._need("xen")

    @property
    def kernel(self) -> Region:
        return self._need("kernel")

    @property
    def dtb(self) -> Region:
        return self._need("dtb")

    @property
    def initrd(self) -> Region | None:
        return self.region("initrd")

    def to_dict(self) -> dict[str, Any]:
        return {
            "board": self.board,
            "soc": self.soc,
            "arch": self.arch,
            "dram_base": self.dram_base,
            "dram_size": self.dram_size,
            "dram_top": self.dram_top,
            "layout": self.layout,
            "reserve_top": self.reserve_top,
            "boot_command": self.boot_command,
            "no_xen": self.no_xen,
            "kernel_gzipped": self.kernel_gzipped,
            "script_address": self.script_address,
            "uboot_range": list(self.uboot_range),
            "dtb_room": self.dtb_room,
            "console_uart": self.console_uart,
            "no_dom0": self.no_dom0,
            "passthrough": list(self.passthrough),
            "domains": [domain.to_dict() for domain in self.domains],
            "regions": [r.to_dict() for r in self.regions],
            "reserved": [r.to_dict() for r in self.reserved],
            "warnings": list(self.warnings),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


@dataclass(frozen=True)
class DomUImages:
    """A domU's files read and checked (run.load_inputs): what the planner places."""

    domu: DomU
    kernel: KernelImage
    ramdisk: bytes | None = None
    ramdisk_source: str | None = None
    dtb: DeviceTree | None = None  # the partial device tree


@dataclass(frozen=True)
class DomainPlan:
    """A dom0less domU as the boot script writes it (Xen's booting.txt, "Creating Multiple
    Domains directly from Xen"): its /chosen node, properties and module regions."""

    name: str  # "domU1": the node under /chosen
    mem: int  # bytes (the script writes KiB)
    vcpus: int
    args: str
    vpl011: bool
    kernel: Region
    ramdisk: Region | None
    dtb: Region | None
    passthrough: tuple[str, ...]

    @property
    def modules(self) -> tuple[Region, ...]:
        return tuple(r for r in (self.kernel, self.ramdisk, self.dtb) if r is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mem": self.mem,
            "vcpus": self.vcpus,
            "args": self.args,
            "vpl011": self.vpl011,
            "kernel": self.kernel.name,
            "ramdisk": self.ramdisk.name if self.ramdisk else None,
            "dtb": self.dtb.name if self.dtb else None,
            "passthrough": list(self.passthrough),
        }


def check_no_overlap(images: tuple[Region, ...], reserved: tuple[Region, ...] = ()) -> None:
    """PlanError naming both regions when two images, or an image and a reserved range, overlap."""
    for index, first in enumerate(images):
        for second in (*images[index + 1 :], *reserved):
            if first.overlaps(second):
                raise PlanError(
                    f"{first.name} 0x{first.start:08x}-0x{first.end:08x} overlaps "
                    f"{second.name} 0x{second.start:08x}-0x{second.end:08x}: "
                    "this is a felboot bug, please report it with the plan (--json)"
                )


@dataclass(frozen=True)
class Dom0Mem:
    """Xen's dom0_mem= as the plan checks it."""

    size: int  # bytes
    text: str  # as Xen reads it: "512M"
    source: str  # for messages: "--dom0-mem", "profile a20 (.../a20.toml)"


def parse_dom0_mem(text: str, source: str) -> Dom0Mem:
    """dom0_mem=TEXT read the way Xen on Arm reads it (see _XEN_SIZE); UsageError otherwise."""
    match = _XEN_SIZE.fullmatch(text.strip())
    if match is None:
        arm_only = any(mark in text for mark in (":", ",", "%", "-"))
        why = (
            "Xen on Arm takes one size, the min:/max:/%/list forms are x86's"
            if arm_only
            else "Xen reads a number and at most one of T/G/M/K/B, no suffix meaning KiB"
        )
        raise UsageError(
            f"{source}: dom0_mem={text!r} is not a size Xen accepts ({why}): write e.g. 512M"
        )
    digits, suffix = match.groups()
    base = 16 if digits[:2] in ("0x", "0X") else 8 if digits.startswith("0") else 10
    size = int(digits, base) << _XEN_SHIFT[suffix.lower()]
    if size == 0:
        raise UsageError(
            f"{source}: dom0_mem={text!r} is zero (Xen then ignores it and gives dom0 512M): "
            "write e.g. 512M"
        )
    return Dom0Mem(size, text.strip(), source)


def board_soc(board: BoardProfile) -> SocInfo:
    """The SoC record of a profile (load_board_file has checked the name)."""
    soc = soc_by_name(board.soc)
    if soc is None:
        raise PlanError(f"profile {board.name}: SoC {board.soc!r} is not one felboot knows")
    return soc


Range = tuple[str, int, int]  # name for messages, start, end (exclusive)


def _hazard(soc: SocInfo, start: int, end: int) -> str | None:
    """What in the SoC's SRAM a write to [start, end) would destroy, or None."""
    for rom_start, rom_end in soc.rom_state_ranges:
        if start < rom_end and rom_start < end:
            return (
                f"0x{rom_start:08x}-0x{rom_end - 1:08x}, where the {soc.name} boot ROM keeps "
                "its stacks and state (FEL would die)"
            )
    header_end = soc.spl_addr + SPL_HEADER_SIZE
    if start < header_end and soc.spl_addr < end:
        # U-Boot proper reads fel_script_address and the eGON/SPL marks from here.
        return (
            f"the SPL header in SRAM at 0x{soc.spl_addr:08x}-0x{header_end - 1:08x}, where "
            "U-Boot looks for the boot script's address (felboot writes it there)"
        )
    return None


def check_write_ranges(soc: SocInfo, writes: Sequence[Range], loaded: Sequence[Range] = ()) -> None:
    """Before anything is sent: each write below 4 GiB, inside the DRAM window when it starts
    there, clear of the ROM's state, the SPL header, what is ``loaded`` (U-Boot), and the others.
    """
    dram_start, dram_end = soc.dram_window
    for index, (name, start, end) in enumerate(writes):
        span = f"{name} at 0x{start:08x}-0x{end - 1:08x}"
        if start < 0 or end > 1 << 32:
            raise UsageError(
                f"{name} at 0x{start:x} + 0x{end - start:x} bytes runs past 4 GiB: the boot ROM "
                "addresses 32 bits; choose another address"
            )
        if dram_start <= start < dram_end < end:
            raise UsageError(
                f"{span} runs past the end of the {soc.name}'s DRAM window at 0x{dram_end:08x}: "
                "choose a lower address"
            )
        hazard = _hazard(soc, start, end)
        if hazard is not None:
            raise UnsafeWrite(
                f"refusing to write {span}: it overlaps {hazard}; choose another address"
            )
        for other, other_start, other_end in (*writes[index + 1 :], *loaded):
            if start < other_end and other_start < end:
                raise UnsafeWrite(
                    f"refusing to write {span}: it overlaps {other} at "
                    f"0x{other_start:08x}-0x{other_end - 1:08x}; choose another address"
                )


@dataclass(frozen=True)
class _Item:
    """One image to place: its slot size and where in the slot its bytes start."""

    name: str
    what: str  # for messages: "Xen xen-4.17 (zImage)"
    payload: bytes
    source: str
    need: int  # bytes of memory it needs from the slot's base
    minimum: int  # the recipe's slot size
    offset: int = 0  # arm64 text_offset

    @property
    def slot(self) -> int:
        return max(self.minimum, _align_up(self.need, SLOT_ALIGN))


def _check_arch(board: BoardProfile, xen: KernelImage | None, kernel: KernelImage | None) -> str:
    """The arch U-Boot boots (Xen's, or the kernel's without Xen); PlanError on a mismatch."""
    started = xen if xen is not None else kernel
    if started is None:
        raise PlanError("no Xen and no kernel given: nothing to boot")
    if started.arch != board.arch:
        bits = "64" if board.arch == "arm64" else "32"
        wanted = "an arm64 Image" if board.arch == "arm64" else "an arm32 zImage"
        raise PlanError(
            f"{started.source}: the {started.role} is {started.kind} for {started.arch}, but "
            f"{board.name} ({board.soc}) runs a {bits}-bit U-Boot: pass {wanted}"
        )
    if xen is not None and kernel is not None and xen.arch == "arm" and kernel.arch == "arm64":
        raise PlanError(
            f"{kernel.source}: the dom0 kernel is an arm64 {kernel.kind}, but arm32 Xen "
            "runs only arm32 guests: pass an arm32 zImage"
        )
    return started.arch


def _kernel_item(
    kernel: KernelImage, *, no_xen: bool, xen_arch: str | None, gzip_kernel: bool | None
) -> tuple[_Item, bool]:
    uncompressed_arm64 = kernel.kind == "Image"
    if gzip_kernel and not (uncompressed_arm64 and not no_xen):
        raise PlanError(
            f"{kernel.source}: cannot send the {kernel.kind} gzip-compressed: only an "
            "uncompressed arm64 Image started by arm64 Xen can be (Xen inflates it)"
        )
    if no_xen and kernel.compressed:
        raise PlanError(
            f"{kernel.source}: booti cannot start a gzip-compressed Image without Xen: "
            "pass the uncompressed Image"
        )
    gzipped = uncompressed_arm64 and not no_xen and xen_arch == "arm64" and gzip_kernel is not False
    what = f"kernel {kernel.source} ({kernel.kind})"
    if no_xen and kernel.arch == "arm64":
        need = kernel.text_offset + kernel.load_size
        item = _Item(
            "kernel", what, kernel.data, kernel.source, need, KERNEL_SLOT, kernel.text_offset
        )
    elif no_xen:
        need = kernel.load_size + ZIMAGE_SCRATCH
        item = _Item("kernel", what, kernel.data, kernel.source, need, KERNEL_SLOT)
    else:
        payload = gzip_for_wire(kernel.data) if gzipped else kernel.data
        if gzipped:
            log.info(
                "%s: sending the dom0 Image gzip-compressed, %s instead of %s",
                kernel.source,
                format_size(len(payload)),
                format_size(len(kernel.data)),
            )
        item = _Item("kernel", what, payload, kernel.source, len(payload), KERNEL_SLOT)
    return item, gzipped


def _keep_clear(top: int, script_address: int, uboot_range: tuple[int, int]) -> list[Region]:
    """What the images must avoid below the top reserve."""
    regions = [
        _reserved(f"SPL DRAM probe {i}", start, end)
        for i, (start, end) in enumerate(SPL_DRAM_PROBES)
        if start < top
    ]
    regions.append(_reserved("boot script", script_address, script_address + SCRIPT_ROOM))
    regions.append(_reserved("U-Boot load area", *uboot_range))
    return regions


def _lower_ceiling(ceiling: int, keep_clear: list[Region]) -> int:
    """Move the ceiling below any kept-clear region it cuts through."""
    for region in sorted(keep_clear, key=lambda r: r.end, reverse=True):
        if region.start < ceiling < region.end:
            ceiling = _align_down(region.start, SLOT_ALIGN)
    return ceiling


def _items(
    kernel_item: _Item | None,
    xen: KernelImage | None,
    dtb: DeviceTree,
    initrd: bytes | None,
    initrd_source: str | None,
) -> list[_Item]:
    """The images to place, top down: kernel, ramdisk, DTB, Xen (the recipe's order)."""
    items = [kernel_item] if kernel_item is not None else []
    if initrd is not None:
        source = initrd_source or "<initrd>"
        items.append(_Item("initrd", f"ramdisk {source}", initrd, source, len(initrd), INITRD_SLOT))
    blob = dtb.data[: dtb.totalsize]
    need = dtb.totalsize + DTB_GROWTH
    items.append(_Item("dtb", f"device tree {dtb.source}", blob, dtb.source, need, DTB_SLOT))
    if xen is not None:
        what = f"Xen {xen.source} ({xen.kind})"
        need = xen.text_offset + xen.load_size  # header size: bss included
        items.append(_Item("xen", what, xen.data, xen.source, need, XEN_SLOT, xen.text_offset))
    return items


def _domu_items(domus: Sequence[DomUImages]) -> list[_Item]:
    """Each domU's modules, top down below Xen, in the recipe's slots (kernel 8 MiB, ramdisk
    8 MiB, partial DTB 2 MiB, larger ones in 2 MiB steps): adding a domU moves nothing of dom0.
    Xen copies a domU's kernel into the domain's memory itself, so the module needs no
    text_offset; the slots are 2 MiB-aligned anyway."""
    items = []
    for images in domus:
        name, kernel = images.domu.name, images.kernel
        items.append(
            _Item(
                f"{name}-kernel",
                f"{name} kernel {kernel.source} ({kernel.kind})",
                kernel.data,
                kernel.source,
                len(kernel.data),
                KERNEL_SLOT,
            )
        )
        if images.ramdisk is not None:
            source = images.ramdisk_source or f"<{name} ramdisk>"
            items.append(
                _Item(
                    f"{name}-initrd",
                    f"{name} ramdisk {source}",
                    images.ramdisk,
                    source,
                    len(images.ramdisk),
                    INITRD_SLOT,
                )
            )
        if images.dtb is not None:
            blob = images.dtb.data[: images.dtb.totalsize]
            items.append(
                _Item(
                    f"{name}-dtb",
                    f"{name} partial device tree {images.dtb.source}",
                    blob,
                    images.dtb.source,
                    len(blob),
                    DTB_SLOT,
                )
            )
    return items


# docs/misc/arm/passthrough.txt: the partial device tree's nodes for the guest sit under
# /passthrough (and /aliases); Xen copies that node into the domU's tree.
PASSTHROUGH_NODE = "/passthrough"


def _check_domus(
    domus: Sequence[DomUImages],
    *,
    board: BoardProfile,
    dram_size: int,
    xen: KernelImage | None,
    dtb: DeviceTree,
    dom0: Dom0Mem | None,
    passthrough: Sequence[str],
) -> None:
    """Each domU against the board: vCPUs, memory, arch, pass-through paths, partial DTB."""
    cpus = SOC_CPUS.get(board.soc)
    for path in passthrough:
        if not dtb.has_node(path):
            raise PlanError(
                f"--passthrough {path}: {dtb.source} has no such node: name a path that "
                "exists in the DTB given (see `fdtdump` or /proc/device-tree)"
            )
    used = dom0.size if dom0 is not None else 0
    for images in domus:
        domu = images.domu
        if cpus is not None and domu.vcpus > cpus:
            raise PlanError(
                f"{domu.name}: vcpus={domu.vcpus} is more than the {cpus} CPUs of the "
                f"{board.soc} on {board.name}: pass vcpus={cpus} or fewer"
            )
        if xen is not None and xen.arch == "arm" and images.kernel.arch == "arm64":
            raise PlanError(
                f"{domu.name}: kernel {images.kernel.source} is an arm64 {images.kernel.kind}, "
                "but arm32 Xen runs only arm32 guests: pass an arm32 zImage"
            )
        used += domu.mem
        if used + XEN_MIN_OWN_MEMORY > dram_size:
            others = "dom0 and the domUs before it" if dom0 is not None else "the domUs before it"
            raise PlanError(
                f"{domu.name}: mem={domu.mem / MiB:g}M does not fit: with {others} the "
                f"domains ask {used / MiB:g} MiB of the {dram_size / MiB:g} MiB of DRAM "
                f"{board.name} has, and Xen keeps {format_size(XEN_MIN_OWN_MEMORY)} for "
                f"itself: give {domu.name} less memory"
            )
        for path in domu.passthrough:
            if not dtb.has_node(path):
                raise PlanError(
                    f"{domu.name}: passthrough={path}: {dtb.source} has no such node: name a "
                    "path that exists in the DTB given"
                )
        if images.dtb is not None and not images.dtb.has_node(PASSTHROUGH_NODE):
            raise PlanError(
                f"{domu.name}: dtb={images.dtb.source} has no {PASSTHROUGH_NODE} node, which Xen "
                "copies into the guest (docs/misc/arm/passthrough.txt): pass a partial "
                "device tree"
            )


def _domain_plans(
    domus: Sequence[DomUImages], regions: tuple[Region, ...]
) -> tuple[DomainPlan, ...]:
    by_name = {region.name: region for region in regions}
    plans = []
    for images in domus:
        domu = images.domu
        plans.append(
            DomainPlan(
                name=domu.name,
                mem=domu.mem,
                vcpus=domu.vcpus,
                args=domu.args,
                vpl011=domu.vpl011,
                kernel=by_name[f"{domu.name}-kernel"],
                ramdisk=by_name.get(f"{domu.name}-initrd"),
                dtb=by_name.get(f"{domu.name}-dtb"),
                passthrough=domu.passthrough,
            )
        )
    return tuple(plans)


def _place(
    items: list[_Item],
    ceiling: int,
    keep_clear: list[Region],
    board: BoardProfile,
    dram_size: int,
) -> tuple[Region, ...]:
    """Stack the slots down from ``ceiling``; PlanError when one reaches a kept-clear range."""
    below = [r for r in keep_clear if r.end <= ceiling]
    floor_region = max(below, key=lambda r: r.end, default=None)
    floor = max(board.dram_base, floor_region.end if floor_region else board.dram_base)
    floor_name = floor_region.name if floor_region else "the start of DRAM"
    placed: list[Region] = []
    slot_end = ceiling
    for item in items:
        slot_start = slot_end - item.slot
        if slot_start < floor:
            room = max(0, slot_end - floor)
            raise PlanError(
                f"{item.what} needs {format_size(item.need)} (0x{item.need:x} bytes, a "
                f"{format_size(item.slot)} slot) but only {format_size(room)} is left between "
                f"{floor_name} "
                f"(ends 0x{floor:08x}) and 0x{slot_end:08x} on {board.name} with "
                f"{format_size(dram_size)}: use a smaller image or a smaller --reserve-top"
            )
        if item.need > item.slot:  # cannot happen: the slot grows with the image
            raise PlanError(f"{item.what} does not fit its {format_size(item.slot)} slot")
        start = slot_start + item.offset
        placed.append(_image_region(item.name, start, slot_end, item.payload, item.source))
        slot_end = slot_start
    return tuple(reversed(placed))


def _check_dom0_mem(
    dom0: Dom0Mem, board: BoardProfile, dram_size: int, arch: str, warnings: list[str]
) -> None:
    """dom0_mem against the DRAM: Xen cannot give dom0 what it needs itself."""
    left = dram_size - dom0.size
    what = f"{dom0.source}: dom0_mem={dom0.text} ({format_size(dom0.size)})"
    fix = f"pass --dom0-mem {(dram_size // 2) >> 20}M or less"
    if left <= 0:
        raise PlanError(
            f"{what} is not less than the {format_size(dram_size)} of DRAM {board.name} has, "
            f"and Xen needs some for itself: {fix}"
        )
    if left < XEN_MIN_OWN_MEMORY:
        message = (
            f"{what} leaves Xen {format_size(left)} of the {format_size(dram_size)} of DRAM "
            f"{board.name} has; arm32 Xen keeps at least {format_size(XEN_MIN_OWN_MEMORY)} "
            f"for its heap (xen/arch/arm/setup.c): {fix}"
        )
        if arch == "arm":
            raise PlanError(message)
        warnings.append(message.replace("arm32 Xen keeps", "arm64 Xen may fail to; arm32 keeps"))


def _check_script_address(
    soc: SocInfo,
    board: BoardProfile,
    script_address: int,
    keep_out: Sequence[Range],
    top: int,
) -> None:
    """The script's room: in DRAM, clear of the ROM, the SPL header, U-Boot and its top claim."""
    end = script_address + SCRIPT_ROOM
    name = f"the boot script (--script-address, {format_size(SCRIPT_ROOM)} kept for it)"
    check_write_ranges(soc, [(name, script_address, end)])
    if not board.dram_base <= script_address < end <= top:
        raise PlanError(
            f"{name} at 0x{script_address:08x}-0x{end - 1:08x} lies outside DRAM "
            f"0x{board.dram_base:08x}-0x{top - 1:08x} of {board.name}: pass a --script-address "
            f"in DRAM (Debian's U-Boot uses 0x{DEFAULT_SCRIPT_ADDRESS:08x})"
        )
    for other, start, stop in keep_out:
        if script_address < stop and start < end:
            raise PlanError(
                f"{name} at 0x{script_address:08x}-0x{end - 1:08x} overlaps {other} at "
                f"0x{start:08x}-0x{stop - 1:08x}, which U-Boot overwrites before it sources the "
                f"script: pass another --script-address (Debian's: 0x{DEFAULT_SCRIPT_ADDRESS:08x})"
            )


def _reserve_warning(board: BoardProfile, given: int, kept: int) -> str | None:
    """--reserve-top below what U-Boot was measured to claim at the top of DRAM."""
    build, claim = UBOOT_CLAIM_DISPLAY if board.display else UBOOT_CLAIM_HEADLESS
    if kept >= claim:
        return None
    return (
        f"--reserve-top {format_size(given)} keeps {format_size(kept)} (0x{kept:x}) free below "
        f"the top of DRAM, less than the {format_size(claim)} (0x{claim:x}) U-Boot claims there "
        f"on Debian's 2023.01 {build} build (lowest reservation 0x{MEASURED_TOP - claim:08x} "
        f"below 0x{MEASURED_TOP:08x}, fel.md): U-Boot may overwrite the images before Xen "
        "starts; use at least that unless your build claims less (see bdinfo)"
    )


def _recipe_warning(board: BoardProfile, plan_low: int, plan_high: int, top: int) -> str:
    where = (
        "its framebuffer (32 MiB below the top on display builds) and malloc arena"
        if board.display
        else "its malloc arena"
    )
    return (
        f"layout recipe puts the images at 0x{plan_low:08x}-0x{plan_high:08x}, inside the "
        f"~113 MiB below 0x{top:08x} where U-Boot keeps {where}: it works only while U-Boot "
        "leaves that memory alone (a monitor attached, a build that zeroes its arena); "
        "drop --layout recipe to use the safe layout"
    )


def make_plan(
    board: BoardProfile,
    dram_size: int,
    xen: KernelImage | None,
    kernel: KernelImage | None,
    dtb: DeviceTree,
    initrd: bytes | None,
    *,
    initrd_source: str | None = None,
    layout: str = "safe",
    reserve_top: int | None = None,
    script_address: int = DEFAULT_SCRIPT_ADDRESS,
    uboot_range: tuple[int, int] = (UBOOT_LOAD_ADDRESS, UBOOT_LOAD_ADDRESS + DEFAULT_UBOOT_SIZE),
    no_xen: bool = False,
    gzip_kernel: bool | None = None,
    dom0_mem: Dom0Mem | None = None,
    domus: Sequence[DomUImages] = (),
    no_dom0: bool = False,
    passthrough: Sequence[str] = (),
) -> Plan:
    """Place the images below the top of DRAM (see the module docstring).

    ``xen`` may be None only with ``no_xen``. ``gzip_kernel`` None sends an
    uncompressed arm64 dom0 Image gzip'ed when Xen is arm64; False never does.
    ``dom0_mem`` (Xen's, checked against the DRAM) is ignored with ``no_xen``.
    ``domus`` are dom0less domains (placed below Xen); ``no_dom0`` boots them without a
    dom0 (``kernel`` None); ``passthrough`` names host DTB nodes to mark xen,passthrough.
    """
    if layout not in LAYOUTS:
        raise PlanError(f"unknown layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    if dram_size <= 0:
        raise PlanError(f"DRAM size {dram_size} of {board.name} is not positive")
    if xen is None and not no_xen:
        raise PlanError("no Xen image given: pass --xen, or --no-xen to boot the kernel alone")
    if no_xen:
        xen = None
        if domus or no_dom0 or passthrough:
            raise PlanError("dom0less domUs and pass-through need Xen: drop --no-xen")
    if no_dom0:
        if not domus:
            raise PlanError("--no-dom0 without a --domu boots nothing: add a --domu")
        kernel, initrd, dom0_mem = None, None, None
    elif kernel is None:
        raise PlanError("no dom0 kernel given: pass one, or --no-dom0 with --domu")
    warnings: list[str] = []
    soc = board_soc(board)
    usable = min(MAX_DRAM, soc.dram_window[1] - board.dram_base)
    if dram_size > usable:
        # U-Boot caps the size the same way (dram_init(): SUNXI_DRAM_MAX_SIZE).
        warnings.append(
            f"{format_size(dram_size)} of DRAM: sunxi U-Boot on the {soc.name} uses only the "
            f"first {format_size(usable)}, so the plan does too"
        )
        dram_size = usable
    arch = _check_arch(board, xen, kernel)
    top = board.dram_base + dram_size
    if dom0_mem is not None and not no_xen:
        _check_dom0_mem(dom0_mem, board, dram_size, arch, warnings)
    _check_domus(
        domus,
        board=board,
        dram_size=dram_size,
        xen=xen,
        dtb=dtb,
        # Xen gives dom0 512M when no dom0_mem= is given (see XEN_DEFAULT_DOM0_MEM).
        dom0=None if no_xen or no_dom0 else dom0_mem or Dom0Mem(XEN_DEFAULT_DOM0_MEM, "512M", ""),
        passthrough=passthrough,
    )

    given_reserve = reserve_top
    if reserve_top is None:
        reserve_top = RECIPE_TOP_GAP if layout == "recipe" else SAFE_RESERVE
    if reserve_top < 0 or reserve_top >= dram_size:
        raise PlanError(
            f"reserve at the top 0x{reserve_top:x} does not fit in {format_size(dram_size)} "
            f"of DRAM on {board.name}"
        )
    if not board.dram_base <= uboot_range[0] < uboot_range[1] <= top:
        raise PlanError(
            f"U-Boot proper loads at 0x{uboot_range[0]:08x}-0x{uboot_range[1] - 1:08x}, outside "
            f"DRAM 0x{board.dram_base:08x}-0x{top - 1:08x} of {board.name} with "
            f"{format_size(dram_size)}: pass the U-Boot built for this board"
        )
    ceiling = _align_down(top - reserve_top, SLOT_ALIGN)

    kernel_item, gzipped = None, False
    if kernel is not None:
        kernel_item, gzipped = _kernel_item(
            kernel, no_xen=no_xen, xen_arch=xen.arch if xen else None, gzip_kernel=gzip_kernel
        )
    items = [*_items(kernel_item, xen, dtb, initrd, initrd_source), *_domu_items(domus)]
    keep_clear = _keep_clear(top, script_address, uboot_range)
    ceiling = _lower_ceiling(ceiling, keep_clear)
    top_name = (
        "free for Xen to relocate into"
        if layout == "recipe"
        else "U-Boot after relocation (code, malloc, video, stack)"
    )
    reserved = tuple(
        sorted([*keep_clear, _reserved(top_name, ceiling, top)], key=lambda r: r.start)
    )
    # Not the reserve (the user may make it larger than U-Boot needs): what U-Boot claims.
    build, claim = UBOOT_CLAIM_DISPLAY if board.display else UBOOT_CLAIM_HEADLESS
    script_keep_out = [
        ("the U-Boot load area", *uboot_range),
        (f"what U-Boot claims after relocating ({build} measured)", top - claim, top),
    ]
    _check_script_address(soc, board, script_address, script_keep_out, top)
    regions = _place(items, ceiling, keep_clear, board, dram_size)
    for region in regions:
        if region.start < board.dram_base or region.end > top:
            raise PlanError(
                f"{region.name} 0x{region.start:08x}-0x{region.end:08x} lies outside DRAM "
                f"0x{board.dram_base:08x}-0x{top:08x}"
            )
    check_no_overlap(regions, reserved)

    if layout == "recipe":
        warnings.append(_recipe_warning(board, regions[0].start, regions[-1].end, top))
    elif given_reserve is not None:
        reserve_note = _reserve_warning(board, given_reserve, top - ceiling)
        if reserve_note is not None:
            warnings.append(reserve_note)
    started = xen if xen is not None else kernel
    if started is not None and not started.place_anywhere:
        moved = board.dram_base + started.text_offset
        warnings.append(
            f"{started.source}: the arm64 header lacks the 'place anywhere' flag, so booti "
            f"copies it to 0x{moved:08x} before starting it; use a newer build (Xen 4.12+, "
            "Linux 3.17+) if that memory is in use"
        )

    try:
        console: str | None = dtb.serial_path()
        problem = None
    except ImageError as exc:
        console, problem = None, str(exc)

    return Plan(
        board=board.name,
        soc=board.soc,
        arch=arch,
        dram_base=board.dram_base,
        dram_size=dram_size,
        layout=layout,
        reserve_top=top - ceiling,
        regions=regions,
        reserved=reserved,
        warnings=tuple(warnings),
        script_address=script_address,
        script_room=SCRIPT_ROOM,
        uboot_range=uboot_range,
        dtb_room=DTB_ROOM,
        no_xen=no_xen,
        kernel_gzipped=gzipped,
        dtb_has_chosen=dtb.has_chosen,
        console_uart=console,
        console_problem=problem,
        domains=_domain_plans(domus, regions),
        no_dom0=no_dom0,
        passthrough=tuple(
            dict.fromkeys([*passthrough, *(p for d in domus for p in d.domu.passthrough)])
        ),
        xen_version=xen_version(xen) if xen is not None and domus else None,
    )
