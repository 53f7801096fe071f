"""Boot-chain thunks: the SPL call, CPU/MMU control, SMC and the AArch64 switch.

Each thunk's source is ``<name>.S`` next to this file (calling convention and
parameter block in its header comment); the words below are what
arm-none-eabi-as makes of it (tests/test_boot_thunks.py re-assembles and
compares). The parameter and result blocks, and the ARM short-descriptor
translation table the host saves and restores around the SPL, are declared
here with construct.

Pure: no I/O, no transport.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import construct as cs

from felboot.errors import BootError, ProtocolError
from felboot.soc import SocInfo
from felboot.thunks import Thunk, ThunkPayload

WORD = 4

# Assembled from spl_thunk.S.
SPL_THUNK = Thunk(
    "spl_thunk",
    (
        0xE59FC100,  # 00: spl_thunk: ldr ip, [pc, #256]
        0xE52CD004,  # 04: str sp, [ip, #-4]!
        0xE1A0D00C,  # 08: mov sp, ip
        0xE10FC000,  # 0c: mrs ip, CPSR
        0xE92D5FF0,  # 10: push {r4, r5, r6, r7, r8, r9, sl, fp, ip, lr}
        0xE38CC0C0,  # 14: orr ip, ip, #192
        0xE121F00C,  # 18: msr CPSR_c, ip
        0xEE110F10,  # 1c: mrc 15, 0, r0, cr1, cr0, {0}
        0xE59F10CC,  # 20: ldr r1, [pc, #204]
        0xE1100001,  # 24: tst r0, r1
        0x159F00D4,  # 28: ldrne r0, [pc, #212]
        0x1A00001E,  # 2c: bne mark_only
        0xEB000023,  # 30: bl swap_pairs
        0xE59F40D0,  # 34: ldr r4, [pc, #208]
        0xE59F50D0,  # 38: ldr r5, [pc, #208]
        0xE59F60B4,  # 3c: ldr r6, [pc, #180]
        0xE1A07004,  # 40: mov r7, r4
        0xE4978004,  # 44: sum_word: ldr r8, [r7], #4
        0xE0866008,  # 48: add r6, r6, r8
        0xE2555004,  # 4c: subs r5, r5, #4
        0x1AFFFFFB,  # 50: bne sum_word
        0xE594800C,  # 54: ldr r8, [r4, #12]
        0xE0466008,  # 58: sub r6, r6, r8
        0xE1560008,  # 5c: cmp r6, r8
        0x159F0098,  # 60: ldrne r0, [pc, #152]
        0x15840008,  # 64: strne r0, [r4, #8]
        0x1A00000D,  # 68: bne swap_back
        0xE59F0088,  # 6c: ldr r0, [pc, #136]
        0xE5840008,  # 70: str r0, [r4, #8]
        0xE3A00000,  # 74: mov r0, #0
        0xEE070F9A,  # 78: mcr 15, 0, r0, cr7, cr10, {4}
        0xEE070F15,  # 7c: mcr 15, 0, r0, cr7, cr5, {0}
        0xEE101F10,  # 80: mrc 15, 0, r1, cr0, cr0, {0}
        0xE201180F,  # 84: and r1, r1, #983040
        0xE351080F,  # 88: cmp r1, #983040
        0x0E070FD5,  # 8c: mcreq 15, 0, r0, cr7, cr5, {6}
        0x0E070F9A,  # 90: mcreq 15, 0, r0, cr7, cr10, {4}
        0x0E070F95,  # 94: mcreq 15, 0, r0, cr7, cr5, {4}
        0xE12FFF34,  # 98: blx r4
        0xE59F0064,  # 9c: ldr r0, [pc, #100]
        0xE240D02C,  # a0: sub sp, r0, #44
        0xEB000006,  # a4: swap_back: bl swap_pairs
        0xEA000001,  # a8: b leave
        0xE59F4058,  # ac: mark_only: ldr r4, [pc, #88]
        0xE5840008,  # b0: str r0, [r4, #8]
        0xE8BD5FF0,  # b4: leave: pop {r4, r5, r6, r7, r8, r9, sl, fp, ip, lr}
        0xE121F00C,  # b8: msr CPSR_c, ip
        0xE59DD000,  # bc: ldr sp, [sp]
        0xE12FFF1E,  # c0: bx lr
        0xE28F404C,  # c4: swap_pairs: add r4, pc, #76
        0xE59F5044,  # c8: ldr r5, [pc, #68]
        0xE2555001,  # cc: next_pair: subs r5, r5, #1
        0x412FFF1E,  # d0: bxmi lr
        0xE8B401C0,  # d4: ldm r4!, {r6, r7, r8}
        0xE2588004,  # d8: next_word: subs r8, r8, #4
        0x4AFFFFFA,  # dc: bmi next_pair
        0xE5969000,  # e0: ldr r9, [r6]
        0xE597A000,  # e4: ldr sl, [r7]
        0xE4879004,  # e8: str r9, [r7], #4
        0xE486A004,  # ec: str sl, [r6], #4
        0xEAFFFFF8,  # f0: b next_word
        0x00001005,  # f4: caches_mask: .word 0x00001005
        0x5F0A6C39,  # f8: checksum_stamp: .word 0x5f0a6c39
        0x4C45462E,  # fc: fel_tag: .word 0x4c45462e
        0x4441422E,  # 100: bad_tag: .word 0x4441422e
        0x554D4D2E,  # 104: mmu_tag: .word 0x554d4d2e
    ),
)

# Assembled from cpu_state.S.
CPU_STATE = Thunk(
    "cpu_state",
    (
        0xE28F0044,  # 00: cpu_state: add r0, pc, #68
        0xEE111F10,  # 04: mrc 15, 0, r1, cr1, cr0, {0}
        0xEE122F10,  # 08: mrc 15, 0, r2, cr2, cr0, {0}
        0xE3A03000,  # 0c: mov r3, #0
        0xEE10CF10,  # 10: mrc 15, 0, ip, cr0, cr0, {0}
        0xE20CC80F,  # 14: and ip, ip, #983040
        0xE35C080F,  # 18: cmp ip, #983040
        0x0E123F50,  # 1c: mrceq 15, 0, r3, cr2, cr0, {2}
        0xE8A0000E,  # 20: stmia r0!, {r1, r2, r3}
        0xEE131F10,  # 24: mrc 15, 0, r1, cr3, cr0, {0}
        0xE1A0200D,  # 28: mov r2, sp
        0xE10FC000,  # 2c: mrs ip, CPSR
        0xE3CC301F,  # 30: bic r3, ip, #31
        0xE38330D2,  # 34: orr r3, r3, #210
        0xE121F003,  # 38: msr CPSR_c, r3
        0xE1A0300D,  # 3c: mov r3, sp
        0xE121F00C,  # 40: msr CPSR_c, ip
        0xE880000E,  # 44: stm r0, {r1, r2, r3}
        0xE12FFF1E,  # 48: bx lr
    ),
)

# Assembled from l2_enable.S.
L2_ENABLE = Thunk(
    "l2_enable",
    (
        0xEE110F30,  # 00: l2_enable: mrc 15, 0, r0, cr1, cr0, {1}
        0xE3800002,  # 04: orr r0, r0, #2
        0xEE010F30,  # 08: mcr 15, 0, r0, cr1, cr0, {1}
        0xF57FF06F,  # 0c: isb sy
        0xE12FFF1E,  # 10: bx lr
    ),
)

# Assembled from mmu_off.S.
MMU_OFF = Thunk(
    "mmu_off",
    (
        0xEE110F10,  # 00: mmu_off: mrc 15, 0, r0, cr1, cr0, {0}
        0xE3C00001,  # 04: bic r0, r0, #1
        0xE3C00B06,  # 08: bic r0, r0, #6144
        0xF57FF04F,  # 0c: dsb sy
        0xEE010F10,  # 10: mcr 15, 0, r0, cr1, cr0, {0}
        0xF57FF06F,  # 14: isb sy
        0xE3A00000,  # 18: mov r0, #0
        0xEE070F15,  # 1c: mcr 15, 0, r0, cr7, cr5, {0}
        0xEE070FD5,  # 20: mcr 15, 0, r0, cr7, cr5, {6}
        0xF57FF04F,  # 24: dsb sy
        0xF57FF06F,  # 28: isb sy
        0xE12FFF1E,  # 2c: bx lr
    ),
)

# Assembled from mmu_on.S.
MMU_ON = Thunk(
    "mmu_on",
    (
        0xE59F0044,  # 00: mmu_on: ldr r0, [pc, #68]
        0xEE020F10,  # 04: mcr 15, 0, r0, cr2, cr0, {0}
        0xE3A00000,  # 08: mov r0, #0
        0xEE020F50,  # 0c: mcr 15, 0, r0, cr2, cr0, {2}
        0xE59F0030,  # 10: ldr r0, [pc, #48]
        0xEE030F10,  # 14: mcr 15, 0, r0, cr3, cr0, {0}
        0xE3A00000,  # 18: mov r0, #0
        0xEE080F17,  # 1c: mcr 15, 0, r0, cr8, cr7, {0}
        0xEE070F15,  # 20: mcr 15, 0, r0, cr7, cr5, {0}
        0xEE070FD5,  # 24: mcr 15, 0, r0, cr7, cr5, {6}
        0xF57FF04F,  # 28: dsb sy
        0xF57FF06F,  # 2c: isb sy
        0xEE110F10,  # 30: mrc 15, 0, r0, cr1, cr0, {0}
        0xE3800001,  # 34: orr r0, r0, #1
        0xE3800B06,  # 38: orr r0, r0, #6144
        0xEE010F10,  # 3c: mcr 15, 0, r0, cr1, cr0, {0}
        0xF57FF06F,  # 40: isb sy
        0xE12FFF1E,  # 44: bx lr
        0x55555555,  # 48: all_clients: .word 0x55555555
    ),
)

# Assembled from smc.S.
SMC = Thunk(
    "smc",
    (
        0xE1600070,  # 00: smc: smc 0
        0xE12FFF1E,  # 04: bx lr
    ),
)

# Assembled from icache_off.S.
ICACHE_OFF = Thunk(
    "icache_off",
    (
        0xEE110F10,  # 00: icache_off: mrc 15, 0, r0, cr1, cr0, {0}
        0xE3C00A01,  # 04: bic r0, r0, #4096
        0xEE010F10,  # 08: mcr 15, 0, r0, cr1, cr0, {0}
        0xE3A00000,  # 0c: mov r0, #0
        0xEE070F15,  # 10: mcr 15, 0, r0, cr7, cr5, {0}
        0xF57FF06F,  # 14: isb sy
        0xE12FFF1E,  # 18: bx lr
    ),
)

# Assembled from rmr_switch.S.
RMR_SWITCH = Thunk(
    "rmr_switch",
    (
        0xE28F0024,  # 00: rmr_switch: add r0, pc, #36
        0xE890000E,  # 04: ldm r0, {r1, r2, r3}
        0xE5812000,  # 08: str r2, [r1]
        0xF57FF04F,  # 0c: dsb sy
        0xF57FF06F,  # 10: isb sy
        0xEE1C0F50,  # 14: mrc 15, 0, r0, cr12, cr0, {2}
        0xE1800003,  # 18: orr r0, r0, r3
        0xEE0C0F50,  # 1c: mcr 15, 0, r0, cr12, cr0, {2}
        0xF57FF06F,  # 20: isb sy
        0xE320F003,  # 24: wait_for_reset: wfi
        0xEAFFFFFD,  # 28: b wait_for_reset
    ),
)

BOOT_THUNKS: dict[str, Thunk] = {
    t.name: t
    for t in (SPL_THUNK, CPU_STATE, L2_ENABLE, MMU_OFF, MMU_ON, SMC, ICACHE_OFF, RMR_SWITCH)
}

# The SPL thunk -----------------------------------------------------------------------

SwapPair = cs.Struct("rom" / cs.Int32ul, "spare" / cs.Int32ul, "size" / cs.Int32ul)

SplThunkParams = cs.Struct(
    "stack_top" / cs.Int32ul,
    "spl_addr" / cs.Int32ul,
    "spl_length" / cs.Int32ul,
    "count" / cs.Rebuild(cs.Int32ul, cs.len_(cs.this.pairs)),
    "pairs" / cs.Array(cs.this.count, SwapPair),
)

# The thunk's frame (ROM sp, r4-r11, cpsr, lr) plus what an SPL may push before it
# switches to its own stack (U-Boot's SPL pushes nothing there; 84 bytes spare).
SPL_THUNK_MIN_STACK = 128

# What the thunk leaves at spl_addr + 4 (the eGON magic), and what each means.
MAGIC_OFFSET = 4
MAGIC_SIZE = 8
SPL_RETURNED = b"eGON.FEL"
SPL_NOT_STARTED = b"eGON.BT0"
SPL_BAD_CHECKSUM = b"eGON.BAD"
SPL_CACHES_ON = b"eGON.MMU"


def build_spl_thunk(soc: SocInfo, spl_length: int) -> bytes:
    """spl_thunk + its block, to upload at soc.thunk_addr: call the SPL at soc.spl_addr.

    Its private stack sits at the top of the thunk area; raises BootError when
    code, block and stack do not fit soc.thunk_size.
    """
    pairs = [dict(rom=b.rom, spare=b.spare, size=b.size) for b in soc.swap_buffers]
    stack_top = (soc.thunk_addr + soc.thunk_size) & ~7
    block = SplThunkParams.build(
        dict(stack_top=stack_top, spl_addr=soc.spl_addr, spl_length=spl_length, pairs=pairs)
    )
    data = SPL_THUNK.code + block
    if soc.thunk_addr + len(data) + SPL_THUNK_MIN_STACK > stack_top:
        raise BootError(
            f"the SPL thunk needs {len(data) + SPL_THUNK_MIN_STACK} bytes (code, swap table, "
            f"stack) but the {soc.name} thunk area at 0x{soc.thunk_addr:x} has "
            f"{soc.thunk_size}: fix its SocInfo (thunk_addr/thunk_size)"
        )
    return data


# Reading the CPU state ------------------------------------------------------------

CpuStateResult = cs.Struct(
    "sctlr" / cs.Int32ul,
    "ttbr0" / cs.Int32ul,
    "ttbcr" / cs.Int32ul,
    "dacr" / cs.Int32ul,
    "sp" / cs.Int32ul,
    "sp_irq" / cs.Int32ul,
)

SCTLR_M = 1 << 0  # MMU
SCTLR_C = 1 << 2  # D-cache
SCTLR_Z = 1 << 11  # branch prediction
SCTLR_I = 1 << 12  # I-cache
DACR_ALL_CLIENTS = 0x55555555
TTBR0_TABLE_MASK = 0x3FFF  # a 16 KiB-aligned table leaves these bits free


@dataclass(frozen=True)
class CpuState:
    """What cpu_state.S reports about the boot ROM's CPU setup."""

    sctlr: int
    ttbr0: int
    ttbcr: int
    dacr: int
    sp: int
    sp_irq: int

    @property
    def mmu_on(self) -> bool:
        return bool(self.sctlr & SCTLR_M)

    @property
    def table_address(self) -> int:
        """Where TTBR0 says the translation table is."""
        return self.ttbr0 & ~TTBR0_TABLE_MASK


def build_cpu_state() -> ThunkPayload:
    """cpu_state + room for its six result words."""
    code = CPU_STATE.code
    return ThunkPayload(code + bytes(CpuStateResult.sizeof()), len(code), CpuStateResult.sizeof())


def parse_cpu_state(data: bytes) -> CpuState:
    if len(data) != CpuStateResult.sizeof():
        raise ProtocolError(
            f"cpu_state result is {len(data)} bytes where {CpuStateResult.sizeof()} were expected"
        )
    fields = CpuStateResult.parse(data)
    return CpuState(fields.sctlr, fields.ttbr0, fields.ttbcr, fields.dacr, fields.sp, fields.sp_irq)


# Plain thunks and the two with parameters ---------------------------------------

MmuOnParams = cs.Struct("ttbr0" / cs.Int32ul)

RMR_AA64 = 1 << 0  # come back from the reset in AArch64
RMR_RR = 1 << 1  # request a warm reset
RmrParams = cs.Struct("rvbar_reg" / cs.Int32ul, "entry" / cs.Int32ul, "rmr_bits" / cs.Int32ul)


def build_plain(thunk: Thunk) -> ThunkPayload:
    """A thunk without parameters or results (l2_enable, mmu_off, smc)."""
    return ThunkPayload(thunk.code, len(thunk.code), 0)


def build_mmu_on(ttbr0: int) -> ThunkPayload:
    code = MMU_ON.code
    return ThunkPayload(code + MmuOnParams.build(dict(ttbr0=ttbr0)), len(code), 0)


def build_rmr_switch(rvbar_reg: int, entry: int) -> ThunkPayload:
    """Restart CPU0 in AArch64 at ``entry``: never returns to FEL."""
    code = RMR_SWITCH.code
    block = RmrParams.build(dict(rvbar_reg=rvbar_reg, entry=entry, rmr_bits=RMR_AA64 | RMR_RR))
    return ThunkPayload(code + block, len(code), 0)


# The translation table (ARMv7 short descriptors, 1 MiB sections) ---------------

SECTION_SHIFT = 20
SECTION_SIZE = 1 << SECTION_SHIFT
TABLE_ENTRIES = 4096
TABLE_SIZE = TABLE_ENTRIES * WORD  # 16 KiB
TranslationTable = cs.Array(TABLE_ENTRIES, cs.Int32ul)

SECTION_TYPE = 1 << 1  # bits [1:0] = 0b1x: section (bit 0 is PXN on LPAE-capable cores)
SECTION_SUPER = 1 << 18  # set: a 16 MiB supersection
SECTION_B = 1 << 2
SECTION_C = 1 << 3
SECTION_TEX_SHIFT = 12
SECTION_TEX = 0b111 << SECTION_TEX_SHIFT
MEMORY_TYPE_BITS = SECTION_TEX | SECTION_C | SECTION_B
# TEX=001 C=0 B=0: Normal memory, non-cacheable; stores may merge in the write
# buffer ("write-combine"), which is what speeds up FEL writes into DRAM.
WRITE_COMBINE = 0b001 << SECTION_TEX_SHIFT
# TEX=001 C=1 B=1: Normal memory, write-back cacheable (the boot ROM's own code).
WRITE_BACK = (0b001 << SECTION_TEX_SHIFT) | SECTION_C | SECTION_B
# The A10/A13/A20 ROM's entries: section, domain 15, AP=11 (full access),
# TEX/C/B = 0 (strongly ordered); a fresh table copies them.
ROM_STYLE_SECTION = SECTION_TYPE | (0b1111 << 5) | (0b11 << 10)
BROM_SECTION = TABLE_ENTRIES - 1  # 0xFFF00000: the boot ROM's megabyte
# The DRAM window covered by the write-combine mapping, from SocInfo.dram_base:
# the SoCs that keep the MMU on decode 2 GiB of DRAM.
DRAM_WINDOW = 2 << 30


def parse_section_table(data: bytes, address: int) -> list[int]:
    """The 4096 entries of the table read at ``address``; refuses anything but a 1:1 section map."""
    if len(data) != TABLE_SIZE:
        raise ProtocolError(f"read {len(data)} bytes of the MMU table, expected {TABLE_SIZE}")
    entries = list(TranslationTable.parse(data))
    for index, entry in enumerate(entries):
        if not entry & SECTION_TYPE or entry & SECTION_SUPER:
            raise BootError(
                f"the boot ROM's MMU table at 0x{address:08x} has entry {index} = 0x{entry:08x}, "
                "not a 1 MiB section: felboot can only restore a 1:1 section map; this ROM is "
                "not one it knows"
            )
        if entry >> SECTION_SHIFT != index:
            raise BootError(
                f"the boot ROM's MMU table at 0x{address:08x} maps 0x{index << SECTION_SHIFT:08x} "
                f"to 0x{entry & ~(SECTION_SIZE - 1) & 0xFFFFFFFF:08x}: not a 1:1 map, which "
                "felboot cannot restore around the SPL"
            )
    return entries


def identity_section_table() -> list[int]:
    """A 1:1 table like the A10/A13/A20 ROM's: strongly ordered, but the first
    (SRAM) and last (BROM) megabytes are Normal non-cacheable."""
    entries = [ROM_STYLE_SECTION | (index << SECTION_SHIFT) for index in range(TABLE_ENTRIES)]
    for index in (0, BROM_SECTION):
        entries[index] |= WRITE_COMBINE
    return entries


def with_fast_dram(entries: Sequence[int], dram_base: int) -> list[int]:
    """``entries`` with the DRAM window write-combine and the BROM section cacheable."""
    result = list(entries)
    first = dram_base >> SECTION_SHIFT
    last = min((dram_base + DRAM_WINDOW) >> SECTION_SHIFT, BROM_SECTION)
    for index in range(first, last):
        result[index] = (result[index] & ~MEMORY_TYPE_BITS) | WRITE_COMBINE
    result[BROM_SECTION] = (result[BROM_SECTION] & ~MEMORY_TYPE_BITS) | WRITE_BACK
    return result


def build_section_table(entries: Sequence[int]) -> bytes:
    return bytes(TranslationTable.build(list(entries)))
