"""Where things are on a simulated board: SRAM, boot ROM, DRAM window, MMIO, stacks, cp15.

Derived from the SoC record (felboot.soc) plus a few facts the record does not
carry; each such fact says where it comes from. Data only.
"""

from __future__ import annotations

from dataclasses import dataclass

from felboot.soc import SocInfo

PAGE = 0x1000  # mapping granule of the emulator
MMU_TABLE_SIZE = 16 * 1024
ADDRESS_LIMIT = 1 << 32

#: Where the A10/A13/A20 ROM's translation table lives. sunxi-fel's verbose
#: log on those SoCs reads "Reading the MMU translation table from 0x00008000"
#: (it takes TTBR0 as the ROM left it). The table overlaps the swap-buffer spare
#: areas and the SPL thunk (0xA200-0xBFFF): that is why the client backs the
#: table up, turns the MMU off before the SPL and writes the table back after.
ROM_MMU_TABLE = 0x8000

#: SoCs whose boot ROM runs FEL with the MMU, I-cache and branch prediction on
#: (sunxi-tools reads the ROM's table on these; later ROMs report "MMU is not
#: enabled by BROM", see sunxi-tools issue #130 and PR #43).
ROM_MMU_ON = frozenset({0x1623, 0x1625, 0x1651})  # A10, A13, A20

#: SRAM the SoC record does not imply. A64/H5: SRAM A1+C back to back
#: (0x10000-0x33FFF) and SRAM A2 up to 0x53FFF, where ATF's bl31 is loaded.
_EXTRA_SRAM: dict[str, tuple[tuple[int, int], ...]] = {
    "A64": ((0x10000, 0x34000), (0x40000, 0x54000)),
    "H5": ((0x10000, 0x34000), (0x40000, 0x54000)),
}

#: (sp_irq, sp) that real ROMs report in FEL, where a public record gives them; the
#: other SoCs get the A13 shape (see _stacks). Both lie outside the swap buffers'
#: protected part: sunxi-fel only reports them, the SPL size limit keeps clear of sp.
_MEASURED_STACKS: dict[str, tuple[int, int]] = {
    "H616": (0x21400, 0x53FFC),  # sunxi-fel -v on an Orange Pi Zero3 (H618)
    "R329": (0x101400, 0x13C2C8),  # soc_info.c, comment on r329_sram_swap_buffers
}


@dataclass(frozen=True)
class Die:
    """A die of a SoC: what the low byte of its version register reads, where its RVBAR is."""

    name: str
    version: int
    rvbar_reg: int | None


#: The H616 ships as two dies (sunxi-tools 05f58b5, "fel: h616: support alternative
#: die variant"): the first reads 0x00 in the low byte of VER_REG (0x03000024) and has
#: RVBAR at 0x09010040; the newer one (sold as H618, T507, or H616) reads 0x02 and has
#: RVBAR at 0x08100040.
_H616_DIES = {
    "h616": Die("H616", 0x00, 0x09010040),
    "h618": Die("H618", 0x02, 0x08100040),
    "t507": Die("T507", 0x02, 0x08100040),
}
_DIES: dict[str, dict[str, Die]] = {"H616": _H616_DIES}


def dies_of(soc: SocInfo) -> dict[str, Die]:
    """The dies a ``die=`` option may name for ``soc`` (empty: it has only one)."""
    return _DIES.get(soc.name, {})


def default_die(soc: SocInfo) -> Die:
    """The die a board has when no ``die=`` is given: the first (version 0)."""
    return next(iter(dies_of(soc).values()), Die(soc.name, 0x00, soc.rvbar_reg))


#: SRAM A2 as modelled behind an smc probe word (H3/A64: 0x40004): the word is
#: non-zero, i.e. the ROM already runs in the secure state and needs no smc.
SMC_PROBE_SRAM = 0xC000
SMC_PROBE_VALUE = 0x00000001

# SCTLR bits (ARMv7 short-descriptor, AArch32).
SCTLR_M = 1 << 0  # MMU
SCTLR_Z = 1 << 11  # branch prediction
SCTLR_I = 1 << 12  # instruction cache
SCTLR_V = 1 << 13  # high exception vectors (ROM at 0xFFFF0000)
#: The Cortex-A7 reset value in the emulator, whose fixed bits match what
#: sunxi-fel expects from every ROM (0x00C50038 once M, Z, I, V and bit 6 are masked).
SCTLR_RESET = 0x00C50078

DACR_ALL_CLIENT = 0x55555555  # the ROM's value: permissions checked in every domain

# Section descriptor bits for the 1:1 table (ARMv7 short-descriptor format).
SECTION = 0b10
SECTION_DOMAIN_15 = 0xF << 5
SECTION_AP_FULL = 0b11 << 10
SECTION_TEX_NORMAL = 0b001 << 12
SECTION_SHIFT = 20


@dataclass(frozen=True)
class Span:
    """[start, end) in the 32-bit address space."""

    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start

    def __contains__(self, address: object) -> bool:
        return isinstance(address, int) and self.start <= address < self.end


@dataclass(frozen=True)
class BoardLayout:
    soc: SocInfo
    sram: tuple[Span, ...]
    rom: Span
    return_address: int  # where "the ROM's FEL loop" sits: reaching it ends an EXEC
    dram: Span  # the whole DRAM window; the chips alias inside it
    mmio: Span
    svc_sp: int
    irq_sp: int
    stack: Span  # the swap buffer holding the ROM's SVC stack
    sctlr: int
    mmu_table: int | None  # set: the ROM runs with this 1:1 table and the MMU on
    smc_probe: int | None


def _round_out(start: int, end: int) -> tuple[int, int]:
    return start & ~(PAGE - 1), (end + PAGE - 1) & ~(PAGE - 1)


def _merge(pieces: list[tuple[int, int]]) -> tuple[Span, ...]:
    merged: list[list[int]] = []
    for start, end in sorted(_round_out(s, e) for s, e in pieces if e > s):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple(Span(s, e) for s, e in merged)


def _rom_is_high(soc: SocInfo) -> bool:
    """SoCs with SRAM at 0 keep the boot ROM at 0xFFFF0000; the others at 0."""
    return soc.spl_addr == 0


def dram_window(soc: SocInfo) -> Span:
    """The SoC's DRAM window (SocInfo.dram_window: up to the ROM at the top, or to 4 GiB)."""
    return Span(*soc.dram_window)


def _sram(soc: SocInfo, mmu_table: int | None) -> tuple[Span, ...]:
    pieces = [(soc.spl_addr, soc.spl_addr + soc.sram_size)]
    for buffer in soc.swap_buffers:
        pieces += [(buffer.rom, buffer.rom_end), (buffer.spare, buffer.spare + buffer.size)]
    pieces.append((soc.scratch_addr, soc.scratch_addr + PAGE))
    stack, _, _ = _stacks(soc)
    pieces.append((stack.start, stack.end))
    pieces.append((soc.thunk_addr, soc.thunk_addr + soc.thunk_size))
    if mmu_table is not None:
        pieces.append((mmu_table, mmu_table + MMU_TABLE_SIZE))
    if soc.smc_probe_addr is not None:
        base = soc.smc_probe_addr & ~0xFFFF
        pieces.append((base, base + SMC_PROBE_SRAM))
    pieces += list(_EXTRA_SRAM.get(soc.name, ()))
    return _merge(pieces)


def _stacks(soc: SocInfo) -> tuple[Span, int, int]:
    """The ROM's SVC stack range and the SVC and IRQ stack pointers while FEL waits.

    Measured on A13-family ROMs (sunxi-fel -v): sp_irq=0x2000 (top of the IRQ
    stack buffer), sp=0x5DF8 (0x1F8 into the ROM stack buffer). SoCs without a
    measurement in _MEASURED_STACKS get the same shape relative to their own swap
    buffers; for the measured ones the SVC stack is modelled as the page holding sp.
    """
    if soc.name in _MEASURED_STACKS:
        irq_sp, svc_sp = _MEASURED_STACKS[soc.name]
        page = svc_sp & ~(PAGE - 1)
        return Span(page, page + PAGE), svc_sp, irq_sp
    stack_buffer = max(soc.swap_buffers, key=lambda b: b.size)
    stack = Span(stack_buffer.rom, stack_buffer.rom_end)
    svc_sp = stack.start + min(0x1F8, stack.size - 8)
    first = soc.swap_buffers[0]
    irq_sp = first.rom_end if first is not stack_buffer else stack.start + 0x100
    return stack, svc_sp, irq_sp


def _sctlr(soc: SocInfo, mmu_on: bool) -> int:
    sctlr = SCTLR_RESET | SCTLR_Z
    if _rom_is_high(soc):
        sctlr |= SCTLR_V
    if mmu_on:
        sctlr |= SCTLR_M | SCTLR_I
    elif soc.needs_icache_fix:
        sctlr |= SCTLR_I  # the ROM leaves the I-cache on; the client must turn it off
    return sctlr


def layout_for(soc: SocInfo) -> BoardLayout:
    mmu_on = soc.soc_id in ROM_MMU_ON
    mmu_table = ROM_MMU_TABLE if mmu_on else None
    if _rom_is_high(soc):
        rom = Span(0xFFFF0000, ADDRESS_LIMIT)
    else:
        rom = Span(0, min(soc.spl_addr, 0x10000))
    stack, svc_sp, irq_sp = _stacks(soc)
    window = dram_window(soc)
    return BoardLayout(
        soc=soc,
        sram=_sram(soc, mmu_table if mmu_table is not None else soc.mmu_tt_addr),
        rom=rom,
        return_address=rom.start + 0x1000,
        dram=window,
        mmio=Span(0x01000000, min(soc.dram_base, 0x10000000)),
        svc_sp=svc_sp,
        irq_sp=irq_sp,
        stack=stack,
        sctlr=_sctlr(soc, mmu_on),
        mmu_table=mmu_table,
        smc_probe=soc.smc_probe_addr,
    )


def identity_section(index: int, normal: bool) -> int:
    """A 1 MiB 1:1 section descriptor; ``normal`` for SRAM/ROM, strongly ordered otherwise."""
    descriptor = (index << SECTION_SHIFT) | SECTION | SECTION_DOMAIN_15 | SECTION_AP_FULL
    return descriptor | SECTION_TEX_NORMAL if normal else descriptor
