"""The boot-chain thunks: shipped words vs. the assembler, and what the code does in unicorn.

The SPL thunk runs at the A20's thunk address with the A20 swap table and a
synthetic eGON SPL that clobbers every register but pc (as U-Boot's SPL may)
and writes a marker. The board holds recognisable "ROM state" in the ranges
the ROM lives on, so the test can see where every byte is before, during and
after the SPL call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import construct as cs
import pytest

from felboot.errors import BootError
from felboot.soc import SocInfo, SwapBuffer, soc_by_name
from felboot.thunks import SOURCE_DIR, Thunk
from felboot.thunks.boot_thunks import (
    BOOT_THUNKS,
    BROM_SECTION,
    L2_ENABLE,
    MMU_OFF,
    SCTLR_I,
    SCTLR_M,
    SCTLR_Z,
    SPL_BAD_CHECKSUM,
    SPL_CACHES_ON,
    SPL_NOT_STARTED,
    SPL_RETURNED,
    SPL_THUNK,
    SPL_THUNK_MIN_STACK,
    TABLE_SIZE,
    WRITE_BACK,
    WRITE_COMBINE,
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
from tests.support import assemble_file

unicorn = pytest.importorskip("unicorn")
arm = pytest.importorskip("unicorn.arm_const")

A20 = soc_by_name("A20")
SRAM_SIZE = 0x10000
RETURN = 0xF000  # the lr handed to the thunk (SRAM outside every area the thunk uses)
ROM_SP = 0x7000
ROM_SP_IRQ = 0x2000
SPL_MARKER_ADDR = 0x9000  # where the synthetic SPL leaves SPL_MARKER
SPL_MARKER = 0x5AFE5AFE
CPUS = pytest.mark.parametrize(
    "cpu", [arm.UC_CPU_ARM_926, arm.UC_CPU_ARM_CORTEX_A7], ids=["arm926", "cortex-a7"]
)
PRESERVED = [getattr(arm, f"UC_ARM_REG_R{n}") for n in range(4, 12)]
Words = cs.GreedyRange(cs.Int32ul)


def words(*values: int) -> bytes:
    return bytes(Words.build(list(values)))


# Shipped words vs. the assembler ---------------------------------------------------------


@pytest.mark.parametrize("thunk", BOOT_THUNKS.values(), ids=lambda t: t.name)
def test_shipped_words_are_what_the_assembler_makes(thunk: Thunk, tmp_path):
    assert assemble_file(thunk.source, tmp_path) == thunk.code


def test_every_boot_thunk_has_a_documented_source():
    assert set(BOOT_THUNKS) <= {path.stem for path in SOURCE_DIR.glob("*.S")}
    for thunk in BOOT_THUNKS.values():
        assert "Calling convention" in thunk.source.read_text()


# A synthetic SPL ----------------------------------------------------------------------------

SPL_CODE = words(
    0xE3A04000,  # 60: mov r4, #0   ... r11: the SPL may leave any register clobbered
    0xE3A05000,
    0xE3A06000,
    0xE3A07000,
    0xE3A08000,
    0xE3A09000,
    0xE3A0A000,
    0xE3A0B000,
    0xE3A0DC01,  # 80: mov sp, #0x100: and sp too
    0xE59F0008,  # 84: ldr r0, [pc, #8]   -> marker address
    0xE59F1008,  # 88: ldr r1, [pc, #8]   -> marker
    0xE5801000,  # 8c: str r1, [r0]
    0xE12FFF1E,  # 90: bx  lr
    SPL_MARKER_ADDR,
    SPL_MARKER,
)
SPL_BRANCH_OVER_HEADER = 0xEA000016  # b 0x60


def synthetic_spl(length: int) -> bytes:
    """An eGON SPL of ``length`` bytes: header, the code above, then a counting pattern."""
    filler = words(*(0xA5000000 + i for i in range(length // 4)))
    head = words(SPL_BRANCH_OVER_HEADER) + b"eGON.BT0" + words(0, length) + b"SPL\x02"
    body = head + bytes(0x60 - len(head)) + SPL_CODE
    spl = bytearray(body + filler[len(body) :])
    total = sum(Words.parse(bytes(spl))) + 0x5F0A6C39
    spl[12:16] = words(total & 0xFFFFFFFF)  # the checksum word counted as the stamp
    return bytes(spl)


def rom_state(buffer: SwapBuffer) -> bytes:
    """Recognisable bytes for what the boot ROM keeps in ``buffer.rom``."""
    return words(*(0x70000000 + buffer.rom + 4 * i for i in range(buffer.size // 4)))


@dataclass
class SplBoard:
    """SRAM laid out as the host leaves it just before the EXEC of the SPL thunk."""

    cpu: int
    soc: SocInfo
    spl: bytes
    sctlr_bits: int = 0
    during_call: dict[str, bytes] = field(default_factory=dict)
    cpsr_in_spl: int | None = None

    def prepare(self) -> unicorn.Uc:
        uc = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_ARM)
        uc.ctl_set_cpu_model(self.cpu)
        uc.mem_map(0, SRAM_SIZE)
        uc.mem_write(0, bytes([0xEE]) * SRAM_SIZE)
        spl, base = self.spl, self.soc.spl_addr
        uc.mem_write(base, spl)
        for buffer in self.soc.swap_buffers:  # what run_spl uploads: the overlaps go to spare
            part = spl[buffer.rom - base : buffer.rom_end - base]
            uc.mem_write(buffer.spare, part)
            uc.mem_write(buffer.rom, rom_state(buffer))
        uc.mem_write(self.soc.thunk_addr, build_spl_thunk(self.soc, len(spl)))
        return uc

    def run(self) -> unicorn.Uc:
        uc = self.prepare()
        if self.sctlr_bits:
            sctlr = uc.reg_read(arm.UC_ARM_REG_CP_REG, (15, 0, 0, 1, 0, 0, 0))
            uc.reg_write(arm.UC_ARM_REG_CP_REG, (15, 0, 0, 1, 0, 0, 0, sctlr | self.sctlr_bits))
        uc.hook_add(unicorn.UC_HOOK_CODE, self._at_spl_entry, begin=self.soc.spl_addr,
                    end=self.soc.spl_addr)  # fmt: skip
        sentinels = {reg: 0xC0DE0000 + reg for reg in PRESERVED}
        for reg, value in sentinels.items():
            uc.reg_write(reg, value)
        uc.reg_write(arm.UC_ARM_REG_SP, ROM_SP)
        uc.reg_write(arm.UC_ARM_REG_LR, RETURN)
        cpsr = uc.reg_read(arm.UC_ARM_REG_CPSR)
        uc.emu_start(self.soc.thunk_addr, RETURN, count=2_000_000)
        assert uc.reg_read(arm.UC_ARM_REG_PC) == RETURN, "did not return through lr"
        assert uc.reg_read(arm.UC_ARM_REG_SP) == ROM_SP
        # mode, IRQ/FIQ masks and state restored (the condition flags are the caller's to lose)
        assert uc.reg_read(arm.UC_ARM_REG_CPSR) & 0xFF == cpsr & 0xFF, "cpsr not restored"
        assert {reg: uc.reg_read(reg) for reg in PRESERVED} == sentinels
        return uc

    def _at_spl_entry(self, uc: unicorn.Uc, address: int, size: int, _: object) -> None:
        self.cpsr_in_spl = uc.reg_read(arm.UC_ARM_REG_CPSR)
        self.during_call["magic"] = bytes(uc.mem_read(self.soc.spl_addr + 4, 8))
        for buffer in self.soc.swap_buffers:
            self.during_call[f"rom {buffer.rom:x}"] = bytes(uc.mem_read(buffer.rom, buffer.size))
            self.during_call[f"spare {buffer.spare:x}"] = bytes(
                uc.mem_read(buffer.spare, buffer.size)
            )


def spl_part(spl: bytes, base: int, buffer: SwapBuffer) -> bytes:
    return spl[buffer.rom - base : buffer.rom_end - base]


# The SPL thunk --------------------------------------------------------------------------


@CPUS
def test_spl_thunk_swaps_checks_marks_calls_and_swaps_back(cpu):
    spl = synthetic_spl(0x8000)  # covers all three A20 ROM ranges
    board = SplBoard(cpu, A20, spl)
    uc = board.run()

    # during the call: the SPL complete in place, the ROM's bytes parked in spare SRAM
    assert board.during_call["magic"] == SPL_RETURNED
    for buffer in A20.swap_buffers:
        assert board.during_call[f"rom {buffer.rom:x}"] == spl_part(spl, 0, buffer)
        assert board.during_call[f"spare {buffer.spare:x}"] == rom_state(buffer)
    assert board.cpsr_in_spl is not None and board.cpsr_in_spl & 0xC0 == 0xC0, "IRQ/FIQ not masked"

    # after: the ROM's bytes are back, the SPL ran, FEL marked
    for buffer in A20.swap_buffers:
        assert bytes(uc.mem_read(buffer.rom, buffer.size)) == rom_state(buffer)
        assert bytes(uc.mem_read(buffer.spare, buffer.size)) == spl_part(spl, 0, buffer)
    assert Words.parse(bytes(uc.mem_read(SPL_MARKER_ADDR, 4))) == [SPL_MARKER]
    assert bytes(uc.mem_read(4, 8)) == SPL_RETURNED


@CPUS
def test_spl_thunk_refuses_a_bad_checksum_without_calling_the_spl(cpu):
    spl = bytearray(synthetic_spl(0x8000))
    spl[0x6000] ^= 1  # a byte that lives in the ROM's stack range
    board = SplBoard(cpu, A20, bytes(spl))
    uc = board.run()
    assert board.cpsr_in_spl is None, "the SPL was called"
    assert bytes(uc.mem_read(4, 8)) == SPL_BAD_CHECKSUM
    assert Words.parse(bytes(uc.mem_read(SPL_MARKER_ADDR, 4))) == [0xEEEEEEEE]
    for buffer in A20.swap_buffers:  # swapped back: nothing moved
        assert bytes(uc.mem_read(buffer.rom, buffer.size)) == rom_state(buffer)
        assert bytes(uc.mem_read(buffer.spare, buffer.size)) == spl_part(bytes(spl), 0, buffer)


def test_spl_thunk_refuses_to_run_with_the_i_cache_on():
    spl = synthetic_spl(0x8000)
    board = SplBoard(arm.UC_CPU_ARM_CORTEX_A7, A20, spl, sctlr_bits=SCTLR_I)
    uc = board.run()
    assert board.cpsr_in_spl is None
    assert bytes(uc.mem_read(4, 8)) == SPL_CACHES_ON
    for buffer in A20.swap_buffers:  # never swapped
        assert bytes(uc.mem_read(buffer.rom, buffer.size)) == rom_state(buffer)


def test_a_short_spl_below_the_rom_ranges_runs_too():
    spl = synthetic_spl(0x1000)  # ends before the IRQ stack at 0x1C00
    board = SplBoard(arm.UC_CPU_ARM_CORTEX_A7, A20, spl)
    uc = board.run()
    assert bytes(uc.mem_read(4, 8)) == SPL_RETURNED
    assert Words.parse(bytes(uc.mem_read(SPL_MARKER_ADDR, 4))) == [SPL_MARKER]


def test_spl_thunk_block_layout():
    data = build_spl_thunk(A20, 0x6000)
    block = Words.parse(data[len(SPL_THUNK.code) :])
    assert block[:4] == [A20.thunk_addr + A20.thunk_size, 0, 0x6000, 3]
    assert block[4:] == [0x1C00, 0xA400, 0x400, 0x5C00, 0xA800, 0x1400, 0x7C00, 0xBC00, 0x400]
    assert data.startswith(SPL_THUNK.code)
    assert SPL_NOT_STARTED == b"eGON.BT0"


def test_spl_thunk_that_does_not_fit_the_thunk_area_is_refused():
    cramped = SocInfo(0x9999, "X1", 0x1000, 0xA200, 0x100, A20.swap_buffers, 48 * 1024, None)
    with pytest.raises(BootError, match=r"needs \d+ bytes .* X1 thunk area at 0xa200 has 256"):
        build_spl_thunk(cramped, 0x6000)
    assert len(build_spl_thunk(A20, 0x6000)) + SPL_THUNK_MIN_STACK <= A20.thunk_size


# CPU state, MMU control, L2, RMR ------------------------------------------------------------


@dataclass
class CpuBoard:
    cpu: int
    uc: unicorn.Uc = field(init=False)

    def __post_init__(self) -> None:
        self.uc = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_ARM)
        self.uc.ctl_set_cpu_model(self.cpu)
        self.uc.mem_map(0, SRAM_SIZE)
        cpsr = self.uc.reg_read(arm.UC_ARM_REG_CPSR)
        self.uc.reg_write(arm.UC_ARM_REG_CPSR, (cpsr & ~0x1F) | 0x12)  # IRQ mode
        self.uc.reg_write(arm.UC_ARM_REG_SP, ROM_SP_IRQ)
        self.uc.reg_write(arm.UC_ARM_REG_CPSR, cpsr)
        self.uc.reg_write(arm.UC_ARM_REG_SP, ROM_SP)

    def run(self, data: bytes, until: int = RETURN, at: int = A20.scratch_addr) -> None:
        self.uc.mem_write(at, data)
        self.uc.reg_write(arm.UC_ARM_REG_LR, RETURN)
        self.uc.emu_start(at, until, count=10_000)
        assert self.uc.reg_read(arm.UC_ARM_REG_PC) == until

    def state(self):
        payload = build_cpu_state()
        self.run(payload.data)
        start = A20.scratch_addr + payload.result_offset
        return parse_cpu_state(bytes(self.uc.mem_read(start, payload.result_size)))


@CPUS
def test_cpu_state_reports_both_stack_pointers_and_restores_the_mode(cpu):
    board = CpuBoard(cpu)
    cpsr = board.uc.reg_read(arm.UC_ARM_REG_CPSR)
    state = board.state()
    assert (state.sp, state.sp_irq) == (ROM_SP, ROM_SP_IRQ)
    assert board.uc.reg_read(arm.UC_ARM_REG_CPSR) & 0xFF == cpsr & 0xFF
    assert board.uc.reg_read(arm.UC_ARM_REG_SP) == ROM_SP
    assert not state.mmu_on


def test_mmu_on_then_off_with_a_1to1_table():
    board = CpuBoard(arm.UC_CPU_ARM_CORTEX_A7)
    table_at = 0x8000
    board.uc.mem_write(table_at, build_section_table(identity_section_table()))
    # (elsewhere than the scratch address: unicorn keeps stale code for a rewritten
    # address once the MMU is on)
    board.run(build_mmu_on(table_at).data, at=0x3000)
    state = board.state()  # runs with the MMU on, through the 1:1 map
    assert state.mmu_on and state.sctlr & (SCTLR_Z | SCTLR_I) == SCTLR_Z | SCTLR_I
    assert (state.ttbr0, state.ttbcr, state.dacr) == (table_at, 0, 0x55555555)
    board.run(build_plain(MMU_OFF).data, at=0x3400)
    state = board.state()
    assert state.sctlr & (SCTLR_M | SCTLR_Z | SCTLR_I) == 0


def test_l2_enable_returns():
    board = CpuBoard(arm.UC_CPU_ARM_CORTEX_A8)
    board.run(build_plain(L2_ENABLE).data)


def test_rmr_switch_stores_the_entry_in_rvbar_before_requesting_the_reset():
    board = CpuBoard(arm.UC_CPU_ARM_CORTEX_A7)
    stores: list[tuple[int, int]] = []
    board.uc.mmio_map(0x01700000, 0x1000, lambda *a: 0, None,
                      lambda uc, off, size, value, _: stores.append((0x01700000 + off, value)),
                      None)  # fmt: skip
    payload = build_rmr_switch(0x017000A0, 0x44000)
    rmr_read = A20.scratch_addr + 0x14  # mrc p15, 0, r0, c12, c0, 2
    board.run(payload.data, until=rmr_read)
    assert stores == [(0x017000A0, 0x44000)]
    assert board.uc.reg_read(arm.UC_ARM_REG_R3) == 3  # AA64 | RR


# The translation table ------------------------------------------------------------------------


def test_fast_dram_switches_only_the_dram_window_and_caches_the_brom():
    entries = with_fast_dram(identity_section_table(), 0x40000000)
    assert entries[0x3FF] == identity_section_table()[0x3FF]
    assert entries[0x400] & 0x700C == WRITE_COMBINE and entries[0xBFF] & 0x700C == WRITE_COMBINE
    assert entries[0xC00] == identity_section_table()[0xC00]
    assert entries[BROM_SECTION] & 0x700C == WRITE_BACK
    assert all(e >> 20 == i for i, e in enumerate(entries))


def test_section_table_round_trip_and_refusals():
    table = identity_section_table()
    assert parse_section_table(build_section_table(table), 0x4000) == table
    moved = list(table)
    moved[0x400] = (0x500 << 20) | (moved[0x400] & 0xFFFFF)
    with pytest.raises(BootError, match=r"at 0x00004000 maps 0x40000000 to 0x50000000"):
        parse_section_table(build_section_table(moved), 0x4000)
    coarse = list(table)
    coarse[7] = 0x00012341  # a page-table pointer
    with pytest.raises(BootError, match=r"entry 7 = 0x00012341, not a 1 MiB section"):
        parse_section_table(build_section_table(coarse), 0x4000)
    assert len(build_section_table(table)) == TABLE_SIZE
