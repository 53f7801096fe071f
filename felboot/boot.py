"""The FEL boot chain: run the SPL, place U-Boot, hand it the boot script, start it.

Order of a boot (``boot_uboot``), each step sending nothing after a fault:

1. SPL (``run_spl``): smc workaround (non-secure ROMs), L2 on (A10/A13), read
   the CPU state (stacks, MMU), save the ROM's translation table and turn
   the MMU/I-cache off, upload the SPL (the parts over the ROM's own SRAM go
   to the spare buffers), run spl_thunk.S at the thunk address, check the
   eGON marker it leaves, learn the DRAM size, restore the MMU with DRAM
   mapped write-combine.
2. U-Boot proper (``load_uboot``): a legacy image's data to its load address,
   or a FIT's firmware (ATF), loadables (U-Boot) and the DTB the SPL would
   pick, the DTB right after U-Boot's image as U-Boot's SPL FIT loader puts it.
3. Extra writes (kernel, DTB, ...), refused where they overlap U-Boot.
4. The script address in the SPL header (``hand_off_script``).
5. The jump (``start_uboot``): EXEC of the entry (32-bit), or RVBAR + RMR
   warm reset into AArch64 at the ATF entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import construct as cs

from felboot.dram import DramInfo, detect_dram
from felboot.errors import BootError, DeviceGone, DeviceTimeout, ImageError, UnsafeWrite
from felboot.fel import FelDevice, RunningCode
from felboot.images.fit import FitImage, FitSubImage, select_config
from felboot.images.spl import (
    SPL_HEADER_SIZE,
    SPL_SIGNATURE,
    SPL_VERSION_DRAM_SIZE,
    SplHeader,
    SplImage,
    spl_header_with_script,
)
from felboot.images.uboot import UBootBundle, soc_from_dt_name
from felboot.images.uimage import ARCH_ARM64, LegacyImage
from felboot.plan import check_write_ranges
from felboot.soc import SocInfo, soc_by_name
from felboot.thunks.boot_thunks import (
    DACR_ALL_CLIENTS,
    L2_ENABLE,
    MMU_OFF,
    SCTLR_I,
    SCTLR_M,
    SPL_BAD_CHECKSUM,
    SPL_CACHES_ON,
    SPL_NOT_STARTED,
    SPL_RETURNED,
    TABLE_SIZE,
    TTBR0_TABLE_MASK,
    CpuState,
    build_cpu_state,
    build_mmu_on,
    build_plain,
    build_rmr_switch,
    build_section_table,
    build_spl_thunk,
    identity_section_table,
    parse_cpu_state,
    parse_section_table,
    with_fast_dram,
)

log = logging.getLogger(__name__)

Progress = Callable[[int], None]
Region = tuple[str, int, int]  # name, start, end (exclusive)

FDT_ALIGN = 8  # U-Boot's SPL FIT loader: the DTB goes at ALIGN(end of U-Boot, 8)
SPL_SETTLE_SECONDS = 0.5  # the pause after the SPL's EXEC: see run_spl
Word = cs.Int32ul


# Results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SplResult:
    dram: DramInfo
    mmu_restored: bool


@dataclass(frozen=True)
class UBootPlacement:
    regions: list[Region]
    entry: int
    aarch64: bool


class LoadedRegions:
    """What is already in the board's memory that later writes must not clobber."""

    def __init__(self, regions: Sequence[Region] = ()) -> None:
        self._regions: list[Region] = list(regions)

    def add(self, name: str, start: int, end: int) -> None:
        self._regions.append((name, start, end))

    def overlapping(self, address: int, length: int) -> Region | None:
        for region in self._regions:
            _, start, end = region
            if address < end and start < address + length:
                return region
        return None

    def check(self, address: int, length: int, what: str) -> None:
        """Raise UnsafeWrite when [address, address+length) overlaps a loaded region."""
        hit = self.overlapping(address, length)
        if hit is not None:
            name, start, end = hit
            raise UnsafeWrite(
                f"refusing to write {what} at 0x{address:08x}-0x{address + length - 1:08x}: it "
                f"overlaps {name} at 0x{start:08x}-0x{end - 1:08x}, already loaded; "
                "choose another address"
            )

    def __iter__(self) -> Iterator[Region]:
        return iter(self._regions)


# Small device helpers -----------------------------------------------------------------


def boot_soc(device: FelDevice) -> SocInfo:
    """The device's SoC record, refused when felboot has no SPL facts for it."""
    soc = device.soc
    if soc is None:
        raise BootError(
            f"unknown SoC 0x{device.version().soc_id:04x}: felboot has no SRAM layout "
            "(swap buffers, thunk address) for it, so it cannot run an SPL on it"
        )
    if not soc.swap_buffers or soc.sram_size == 0 or soc.thunk_size == 0:
        raise BootError(f"felboot has no SPL facts for the {soc.name}: it cannot run an SPL there")
    return soc


# The SPL ------------------------------------------------------------------------------------


def spl_size_limit(soc: SocInfo) -> tuple[int, str]:
    """The largest SPL the SoC can run from FEL, and what sets that limit."""
    limits = [(soc.sram_size, f"{soc.sram_size // 1024} KiB of SRAM")]
    if soc.thunk_addr >= soc.spl_addr:
        limits.append((soc.thunk_addr - soc.spl_addr, f"the SPL thunk at 0x{soc.thunk_addr:x}"))
    for buffer in soc.swap_buffers:
        if buffer.spare >= soc.spl_addr:
            limits.append((buffer.spare - soc.spl_addr, f"the swap buffer at 0x{buffer.spare:x}"))
    return min(limits)


def check_spl_suits(soc: SocInfo, spl: SplImage) -> None:
    """Refuse an SPL built for another SoC (by its DT name) or too large for this one."""
    built_for = soc_from_dt_name(spl.dt_name) if spl.dt_name else None
    if built_for is not None and soc_by_name(built_for) is not soc:
        raise ImageError(
            f"{spl.source} is built for the {built_for} ({spl.dt_name}), but the board in FEL "
            f"mode is an {soc.name}: use the U-Boot built for this board"
        )
    limit, reason = spl_size_limit(soc)
    if spl.length > limit:
        raise ImageError(
            f"{spl.source}: the SPL is {spl.length} bytes (0x{spl.length:x}) but the {soc.name} "
            f"runs at most {limit} (0x{limit:x}) from FEL at 0x{soc.spl_addr:x}, up to "
            f"{reason}: use an SPL built for this board"
        )


def spl_upload_pieces(soc: SocInfo, data: bytes) -> list[tuple[int, bytes]]:
    """Where each part of the SPL goes: in place, or to a spare buffer for ROM-owned SRAM."""
    base, end = soc.spl_addr, soc.spl_addr + len(data)
    pieces: list[tuple[int, bytes]] = []
    cursor = base
    for buffer in sorted(soc.swap_buffers, key=lambda b: b.rom):
        start, stop = max(buffer.rom, base), min(buffer.rom_end, end)
        if start >= stop:
            continue
        if cursor < start:
            pieces.append((cursor, data[cursor - base : start - base]))
        pieces.append((buffer.spare + start - buffer.rom, data[start - base : stop - base]))
        cursor = stop
    if cursor < end:
        pieces.append((cursor, data[cursor - base :]))
    return pieces


def check_rom_stacks(soc: SocInfo, state: CpuState) -> None:
    """Report the ROM's stack pointers; they are no reason to refuse the SPL.

    sunxi-fel's aw_fel_write_and_execute_spl() (fel.c) only prints them
    ("Stack pointers: sp_irq=..., sp=..."): the ROM's stacks stay intact because
    the SPL is kept below the SoC's limit (spl_size_limit: SRAM size, thunk,
    spare buffers) and its parts over the ROM's own SRAM go to the spare buffers.
    Real ROMs keep their stacks anywhere in that scheme: an H618 reports
    sp_irq=0x21400, sp=0x53FFC (above the thunk), an R329 sp=0x13C2C8 (soc_info.c).
    """
    log.info("%s: stack pointers: sp_irq=0x%08x, sp=0x%08x", soc.name, state.sp_irq, state.sp)


def _prepare_mmu(device: FelDevice, soc: SocInfo, state: CpuState) -> tuple[int, list[int]] | None:
    """Turn MMU and I-cache off; the (address, entries) of the table to restore, if any."""
    saved: tuple[int, list[int]] | None = None
    if state.mmu_on:
        if state.dacr != DACR_ALL_CLIENTS or state.ttbcr != 0:
            raise BootError(
                f"the {soc.name} boot ROM runs its MMU with DACR 0x{state.dacr:08x} and TTBCR "
                f"0x{state.ttbcr:08x} (expected 0x{DACR_ALL_CLIENTS:08x} and 0): felboot cannot "
                "restore that setup after the SPL"
            )
        address = soc.mmu_tt_addr if soc.mmu_tt_addr is not None else state.table_address
        if address & TTBR0_TABLE_MASK:
            raise BootError(f"the {soc.name} MMU table at 0x{address:08x} is not 16 KiB aligned")
        table = device.read(address, TABLE_SIZE)
        saved = (address, parse_section_table(bytes(table), address))
    elif soc.mmu_tt_addr is not None:
        # The ROM runs without the MMU; a 1:1 table at mmu_tt_addr speeds up later writes.
        saved = (soc.mmu_tt_addr, identity_section_table())
    if state.sctlr & (SCTLR_M | SCTLR_I):
        device.run_thunk(build_plain(MMU_OFF), "MMU-off")
    return saved


def _spl_failure(spl: SplImage, soc: SocInfo, magic: bytes) -> BootError:
    if magic == SPL_BAD_CHECKSUM:
        return BootError(
            f"{spl.source}: the SPL's checksum did not match in the {soc.name}'s SRAM, so it was "
            "not started: the upload was damaged; power-cycle the board into FEL and retry"
        )
    if magic == SPL_CACHES_ON:
        return BootError(
            f"the SPL was not started: the {soc.name}'s MMU or a cache was still on when the "
            "SPL thunk ran; power-cycle the board into FEL and retry"
        )
    if magic == SPL_NOT_STARTED:
        return BootError(
            f"the SPL thunk at 0x{soc.thunk_addr:x} did not run to the SPL (header still "
            "eGON.BT0): power-cycle the board into FEL and retry"
        )
    return BootError(
        f"{spl.source}: the SPL returned to FEL but left {magic!r} instead of {SPL_RETURNED!r} "
        "in its header: it is not a FEL-capable sunxi SPL; use U-Boot's sunxi-spl.bin"
    )


def run_spl(
    device: FelDevice,
    spl: SplImage,
    *,
    progress: Progress | None = None,
    dram_size: int | None = None,
) -> SplResult:
    """Run ``spl`` from FEL and return with DRAM up; ``dram_size`` is the profile's fallback."""
    soc = boot_soc(device)
    check_spl_suits(soc, spl)
    thunk = build_spl_thunk(soc, spl.length)

    device.apply_smc_workaround()  # done once per session; a no-op when already done
    if soc.needs_l2_enable:
        device.run_thunk(build_plain(L2_ENABLE), "L2-enable")
    state = parse_cpu_state(device.run_thunk(build_cpu_state(), "CPU-state"))
    log.debug(
        "%s: cpu state: sctlr=0x%08x ttbr0=0x%08x ttbcr=0x%08x dacr=0x%08x sp=0x%08x sp_irq=0x%08x",
        soc.name,
        state.sctlr,
        state.ttbr0,
        state.ttbcr,
        state.dacr,
        state.sp,
        state.sp_irq,
    )
    check_rom_stacks(soc, state)
    saved_table = _prepare_mmu(device, soc, state)

    for address, piece in spl_upload_pieces(soc, spl.data):
        device.write(address, piece, progress)
    device.write(soc.thunk_addr, thunk)
    device.execute(
        soc.thunk_addr,
        RunningCode(
            f"the SPL ({spl.source})",
            f"power-cycle the board into FEL; check the SPL is built for this board ({soc.name})",
        ),
    )
    # The SPL now re-clocks the PLLs and the AHB that feeds the USB controller.
    # Both peers that work on real boards wait before their next request:
    # sunxi-fel 250 ms (aw_fel_write_and_execute_spl() in fel.c, "TODO: Try to
    # find and fix the bug, which needs this workaround"), snagboot 500 ms
    # (sunxi_fw.py, "apparently this delay is sometimes necessary"). We take
    # the longer one: a quarter second per boot is cheap next to a power cycle.
    device.transport.pause(SPL_SETTLE_SECONDS, "after the SPL's EXEC, as sunxi-fel and snagboot")
    try:
        header = SplHeader.parse(bytes(device.read(soc.spl_addr, SPL_HEADER_SIZE)))
    except (DeviceTimeout, DeviceGone) as error:
        raise BootError(str(error)) from None
    magic = bytes(header.magic)
    if magic != SPL_RETURNED:
        raise _spl_failure(spl, soc, magic)
    device.dram_up = True
    reports_dram = header.signature == SPL_SIGNATURE and header.version >= SPL_VERSION_DRAM_SIZE
    header_mib = header.dram_size if reports_dram else None
    dram = detect_dram(device, soc, header_mib, dram_size)
    log.info("%s: SPL done, %s", soc.name, dram)

    if saved_table is not None:
        address, entries = saved_table
        device.write(address, build_section_table(with_fast_dram(entries, soc.dram_base)))
        device.run_thunk(build_mmu_on(address), "MMU-on")
    return SplResult(dram, saved_table is not None)


# U-Boot proper --------------------------------------------------------------------------


def _fit_image(fit: FitImage, name: str, role: str) -> FitSubImage:
    image = fit.images.get(name)
    if image is None:
        raise ImageError(f"{fit.source}: the configuration names {role} {name!r}, which is missing")
    if image.load is None:
        raise ImageError(f"{fit.source}: FIT image {name!r} ({role}) has no load address")
    if image.compression not in (None, "none"):
        raise ImageError(
            f"{fit.source}: FIT image {name!r} is {image.compression}-compressed: U-Boot's SPL "
            "would inflate it, felboot cannot; build the FIT uncompressed"
        )
    return image


def plan_fit(
    fit: FitImage, spl: SplImage, dram_mib: int | None
) -> tuple[list[tuple[str, int, bytes]], int]:
    """(name, address, bytes) of each FIT part as U-Boot's SPL would place it, and the entry."""
    config = select_config(fit, spl.dt_name, dram_size_mib=dram_mib)
    # The firmware first, then the other loadables (a firmware listed there too is skipped).
    names = list(config.loadables)
    if config.firmware is not None:
        names = [config.firmware, *(name for name in names if name != config.firmware)]
    if not names:
        raise ImageError(f"{fit.source}: configuration {config.name!r} loads nothing")
    parts: list[tuple[str, int, bytes]] = []
    fdt_after: int | None = None
    for name in names:
        image = _fit_image(fit, name, "firmware" if name == config.firmware else "loadable")
        assert image.load is not None
        parts.append((name, image.load, image.data))
        if image.os == "u-boot" and fdt_after is None:
            end = image.load + len(image.data)
            fdt_after = (end + FDT_ALIGN - 1) & ~(FDT_ALIGN - 1)
    if config.fdt:
        fdt = fit.images.get(config.fdt[0])
        if fdt is None:
            raise ImageError(
                f"{fit.source}: the configuration names DTB {config.fdt[0]!r}, missing"
            )
        if fdt_after is None:
            raise ImageError(
                f"{fit.source}: configuration {config.name!r} has a DTB but no U-Boot image "
                '(os = "u-boot") for it to follow'
            )
        parts.append((config.fdt[0], fdt_after, fdt.data))
    return parts, fit_entry(fit, names)


def fit_entry(fit: FitImage, names: Sequence[str]) -> int:
    """Where U-Boot's SPL jumps; ``names`` starts with the firmware (else the first loadable).

    spl_load_simple_fit() (U-Boot common/spl/spl_fit.c): the firmware's ``entry``; if
    it has none, the first ``entry`` among the other loadables; if none has one, or
    the entry is 0 ("use the load address"), the firmware's load address.
    """
    images = [fit.images[name] for name in names]
    first = images[0]
    entry = first.entry
    if entry is None:
        entry = next((image.entry for image in images[1:] if image.entry is not None), None)
    if not entry:
        assert first.load is not None  # _fit_image refused images without one
        return first.load
    return entry


def load_uboot(
    device: FelDevice,
    bundle: UBootBundle,
    *,
    progress: Progress | None = None,
    dram_mib: int | None = None,
) -> UBootPlacement:
    """Place U-Boot proper in DRAM (the SPL must have run); nothing is started yet."""
    soc = boot_soc(device)
    main = bundle.main
    if isinstance(main, LegacyImage):
        if main.arch == ARCH_ARM64:
            raise ImageError(
                f"{bundle.main_source}: a legacy AArch64 U-Boot image; FEL boots arm64 U-Boot "
                "from its FIT (u-boot-sunxi-with-spl.bin of an arm64 board)"
            )
        parts = [(main.name or "U-Boot", main.load, main.data)]
        entry, aarch64 = main.entry, False
    else:
        parts, entry = plan_fit(main, bundle.spl, dram_mib)
        aarch64 = True
        if soc.rvbar_reg is None:
            raise BootError(
                f"{bundle.main_source} is an arm64 FIT but the {soc.name} cannot switch to "
                "AArch64 (no RVBAR known): use the 32-bit U-Boot for this board"
            )
    placed = LoadedRegions()
    for name, address, data in parts:
        placed.check(address, len(data), name)
        log.info("placing %s at 0x%08x (%d bytes)", name, address, len(data))
        device.write(address, data, progress)
        placed.add(name, address, address + len(data))
    return UBootPlacement(list(placed), entry, aarch64)


# Handoff and start ------------------------------------------------------------------------


def _field_offset(struct: cs.Struct, name: str) -> int:
    offset = 0
    for sub in struct.subcons:
        if sub.name == name:
            return offset
        offset += sub.sizeof()
    raise KeyError(name)


SCRIPT_FIELDS_START = _field_offset(SplHeader, "fel_script_address")
SCRIPT_FIELDS_END = _field_offset(SplHeader, "dt_name_offset")


def hand_off_script(
    device: FelDevice, spl: SplImage, script_address: int, uenv_length: int = 0
) -> bool:
    """Tell U-Boot where its boot script is, through the SPL header in SRAM.

    False (with a warning saying what to type) when the SPL has no such fields.
    """
    soc = boot_soc(device)
    if not spl.has_fel_script_fields:
        log.warning(
            "%s has no sunxi SPL header v0.1+: U-Boot will not find the boot script by "
            "itself; at the U-Boot prompt type: source 0x%08x",
            spl.source,
            script_address,
        )
        return False
    header = spl_header_with_script(spl.data[:SPL_HEADER_SIZE], script_address, uenv_length)
    device.write(soc.spl_addr + SCRIPT_FIELDS_START, header[SCRIPT_FIELDS_START:SCRIPT_FIELDS_END])
    return True


DIE_VERSION_MASK = 0xFF  # ver_reg's low byte: 0 on the H616's first die (sunxi-tools 05f58b5)


def rvbar_register(device: FelDevice, soc: SocInfo) -> int:
    """The RVBAR of this board's die: H616 dies differ, ver_reg tells them apart.

    As sunxi-fel's aw_rmr_request() (fel.c): with an rvbar_reg_alt, read ver_reg
    and use the alternative when its low byte is non-zero (the die sold as H618,
    T507 or H616: sunxi-tools commit 05f58b5).
    """
    if soc.rvbar_reg is None:
        raise BootError(f"the {soc.name} has no RVBAR felboot knows: cannot start AArch64")
    if soc.rvbar_reg_alt is None or soc.ver_reg is None:
        return soc.rvbar_reg
    version = device.readl(soc.ver_reg)
    rvbar = soc.rvbar_reg_alt if version & DIE_VERSION_MASK else soc.rvbar_reg
    log.info("%s: version register 0x%08x: RVBAR at 0x%08x", soc.name, version, rvbar)
    return rvbar


def start_uboot(device: FelDevice, placement: UBootPlacement) -> None:
    """Jump into U-Boot: the EXEC's status is read, then the board leaves FEL.

    A board that does not answer that status has not started U-Boot (the ROM
    calls the code only after the status exchange): that is an error.
    """
    soc = boot_soc(device)
    if placement.aarch64:
        if soc.rvbar_reg is None:
            raise BootError(f"the {soc.name} has no RVBAR felboot knows: cannot start AArch64")
        payload = build_rmr_switch(rvbar_register(device, soc), placement.entry)
        device.write(soc.scratch_addr, payload.data)
        address = soc.scratch_addr
    else:
        address = placement.entry
    log.info(
        "starting U-Boot at 0x%08x%s", placement.entry, " (AArch64)" if placement.aarch64 else ""
    )
    try:
        device.jump(address)
    except (DeviceTimeout, DeviceGone) as error:
        raise BootError(
            f"U-Boot was not started: the board did not answer the EXEC at 0x{address:08x} "
            f"({error}); power-cycle the board into FEL and retry"
        ) from None


Write = tuple[int, bytes, str]  # address, bytes, name for messages


def _with_script(writes: Sequence[Write], script: tuple[int, bytes] | None) -> list[Write]:
    return [*writes, *([(script[0], script[1], "the boot script")] if script else [])]


def refuse_overlaps_with_uboot(
    bundle: UBootBundle, writes: Sequence[Write], script: tuple[int, bytes] | None
) -> None:
    """Before anything is sent: refuse writes where U-Boot proper will be placed."""
    expected = LoadedRegions(uboot_regions(bundle, None))
    for address, data, name in _with_script(writes, script):
        expected.check(address, len(data), name)


def check_uboot_in_dram(soc: SocInfo, bundle: UBootBundle) -> None:
    """U-Boot proper (the legacy image, or the FIT's os = "u-boot" parts) must load into DRAM."""
    main = bundle.main
    regions = uboot_regions(bundle, None)
    if isinstance(main, FitImage):
        # ATF and SCP may live in SRAM (A64: bl31 at 0x44000); U-Boot itself cannot.
        proper = [r for r in regions if r[0] in main.images and main.images[r[0]].os == "u-boot"]
        regions = proper or regions
    start, end = soc.dram_window
    for name, low, high in regions:
        if not start <= low < high <= end:
            raise ImageError(
                f"{bundle.main_source}: {name} loads at 0x{low:08x}-0x{high - 1:08x}, outside "
                f"the {soc.name}'s DRAM 0x{start:08x}-0x{end - 1:08x}: pass the U-Boot built "
                "for this board"
            )


def check_writes(
    soc: SocInfo,
    bundle: UBootBundle,
    writes: Sequence[Write],
    script: tuple[int, bytes] | None,
) -> None:
    """Before anything is sent: U-Boot in DRAM; every write below 4 GiB, clear of the ROM's
    state, the SPL header (the handoff patches it), U-Boot proper and the other writes.
    """
    check_uboot_in_dram(soc, bundle)
    ranges = [
        (name, address, address + len(data))
        for address, data, name in _with_script(writes, script)
        if data
    ]
    check_write_ranges(soc, ranges, uboot_regions(bundle, None))


def finish_boot(
    device: FelDevice,
    bundle: UBootBundle,
    spl: SplResult,
    *,
    writes: Sequence[Write] = (),
    script: tuple[int, bytes] | None = None,
    progress: Progress | None = None,
) -> tuple[UBootPlacement, bool]:
    """After the SPL: U-Boot, the writes, the script and its handoff, the start.

    Every write is checked against U-Boot's real placement (the FIT config can
    depend on the DRAM size) before any of them is sent. Returns the placement
    and whether U-Boot was told where the script is.
    """
    placement = load_uboot(device, bundle, progress=progress, dram_mib=spl.dram.size_mib)
    loaded = LoadedRegions(placement.regions)
    for address, data, name in _with_script(writes, script):
        loaded.check(address, len(data), name)
    for address, data, name in writes:
        log.info("writing %s at 0x%08x (%d bytes)", name, address, len(data))
        device.write(address, data, progress)
    handed_off = False
    if script is not None:
        address, data = script
        device.write(address, data, progress)
        uenv_length = len(data) if data.startswith(UENV_MAGIC) else 0
        handed_off = hand_off_script(device, bundle.spl, address, uenv_length)
    start_uboot(device, placement)
    return placement, handed_off


def boot_uboot(
    device: FelDevice,
    bundle: UBootBundle,
    *,
    writes: Sequence[Write] = (),
    script: tuple[int, bytes] | None = None,
    progress: Progress | None = None,
    dram_size: int | None = None,
) -> SplResult:
    """SPL, U-Boot, extra writes, script handoff, start: nothing is sent after a fault."""
    soc = boot_soc(device)
    check_spl_suits(soc, bundle.spl)
    check_writes(soc, bundle, writes, script)
    result = run_spl(device, bundle.spl, progress=progress, dram_size=dram_size)
    finish_boot(device, bundle, result, writes=writes, script=script, progress=progress)
    return result


def uboot_regions(bundle: UBootBundle, dram_mib: int | None) -> list[Region]:
    if isinstance(bundle.main, LegacyImage):
        return [("U-Boot", bundle.main.load, bundle.main.load + len(bundle.main.data))]
    parts, _ = plan_fit(bundle.main, bundle.spl, dram_mib)
    return [(name, address, address + len(data)) for name, address, data in parts]


UENV_MAGIC = b"#=uEnv"  # text in uEnv.txt style: U-Boot imports it instead of sourcing it
