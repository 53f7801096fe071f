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
from dataclasses import dataclass, field
from typing import Any

from felboot.boards import BoardProfile
from felboot.errors import ImageError, PlanError
from felboot.images.dtb import DeviceTree
from felboot.images.kernel import KernelImage, gzip_for_wire
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

# sunxi U-Boot maps at most 3 GiB of DRAM.
MAX_DRAM = 3 << 30

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
            "regions": [r.to_dict() for r in self.regions],
            "reserved": [r.to_dict() for r in self.reserved],
            "warnings": list(self.warnings),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


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


def _check_arch(board: BoardProfile, xen: KernelImage | None, kernel: KernelImage) -> str:
    """The arch U-Boot boots (Xen's, or the kernel's without Xen); PlanError on a mismatch."""
    started = xen if xen is not None else kernel
    if started.arch != board.arch:
        bits = "64" if board.arch == "arm64" else "32"
        wanted = "an arm64 Image" if board.arch == "arm64" else "an arm32 zImage"
        raise PlanError(
            f"{started.source}: the {started.role} is {started.kind} for {started.arch}, but "
            f"{board.name} ({board.soc}) runs a {bits}-bit U-Boot: pass {wanted}"
        )
    if xen is not None and xen.arch == "arm" and kernel.arch == "arm64":
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
    kernel_item: _Item,
    xen: KernelImage | None,
    dtb: DeviceTree,
    initrd: bytes | None,
    initrd_source: str | None,
) -> list[_Item]:
    """The images to place, top down: kernel, ramdisk, DTB, Xen (the recipe's order)."""
    items = [kernel_item]
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
    kernel: KernelImage,
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
) -> Plan:
    """Place the images below the top of DRAM (see the module docstring).

    ``xen`` may be None only with ``no_xen``. ``gzip_kernel`` None sends an
    uncompressed arm64 dom0 Image gzip'ed when Xen is arm64; False never does.
    """
    if layout not in LAYOUTS:
        raise PlanError(f"unknown layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    if dram_size <= 0:
        raise PlanError(f"DRAM size {dram_size} of {board.name} is not positive")
    if xen is None and not no_xen:
        raise PlanError("no Xen image given: pass --xen, or --no-xen to boot the kernel alone")
    if no_xen:
        xen = None
    warnings: list[str] = []
    if dram_size > MAX_DRAM:
        warnings.append(
            f"{format_size(dram_size)} of DRAM: sunxi U-Boot uses only the first "
            f"{format_size(MAX_DRAM)}, so the plan does too"
        )
        dram_size = MAX_DRAM
    arch = _check_arch(board, xen, kernel)
    top = board.dram_base + dram_size

    if reserve_top is None:
        reserve_top = RECIPE_TOP_GAP if layout == "recipe" else SAFE_RESERVE
    if reserve_top < 0 or reserve_top >= dram_size:
        raise PlanError(
            f"reserve at the top 0x{reserve_top:x} does not fit in {format_size(dram_size)} "
            f"of DRAM on {board.name}"
        )
    ceiling = _align_down(top - reserve_top, SLOT_ALIGN)

    kernel_item, gzipped = _kernel_item(
        kernel, no_xen=no_xen, xen_arch=xen.arch if xen else None, gzip_kernel=gzip_kernel
    )
    items = _items(kernel_item, xen, dtb, initrd, initrd_source)
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
    started = xen if xen is not None else kernel
    if not started.place_anywhere:
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
    )
