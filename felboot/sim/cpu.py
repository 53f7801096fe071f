"""The SoC's CPU, emulated with unicorn: runs what a FEL EXEC calls.

One unicorn instance lives as long as the board, so cp15 state (SCTLR, TTBR0,
DACR, TTBCR ...) persists between EXECs like on hardware. Unicorn 2 honours
the MMU: with SCTLR.M set, accesses go through the translation table in SRAM.

The CPU is a Cortex-A7 in AArch32 SVC mode on every SoC. The AArch64 SoCs'
Cortex-A53 differs in one register that matters here, RMR (``mcr/mrc p15, 0,
rX, c12, c0, 2``), which unicorn's v7 core does not have: such an access raises
"invalid instruction", the model decodes the faulting word (ARM, or T32 whose
two halfwords have the same field layout) and, if it is an RMR access on an
AArch64 SoC, performs it and resumes after it. Anything else invalid hangs.
"""

from __future__ import annotations

import ctypes
import logging
import time
from typing import TYPE_CHECKING, Any

import construct as cs
from unicorn import (
    UC_ARCH_ARM,
    UC_ERR_INSN_INVALID,
    UC_HOOK_BLOCK,
    UC_HOOK_INTR,
    UC_HOOK_MEM_UNMAPPED,
    UC_HOOK_MEM_WRITE_PROT,
    UC_MEM_FETCH_UNMAPPED,
    UC_MEM_WRITE_UNMAPPED,
    UC_MODE_ARM,
    UC_PROT_ALL,
    UC_PROT_EXEC,
    UC_PROT_READ,
    Uc,
    UcError,
)
from unicorn import arm_const as arm

from felboot.sim.events import SimEvent
from felboot.sim.layout import (
    DACR_ALL_CLIENT,
    MMU_TABLE_SIZE,
    SECTION_SHIFT,
    BoardLayout,
    identity_section,
)
from felboot.sim.memory import DRAM_PAGE

if TYPE_CHECKING:
    from felboot.sim.board import SimBoard

log = logging.getLogger(__name__)

#: Code that has not returned after this many instructions never will.
INSTRUCTION_LIMIT = 5_000_000
#: Wall-clock cap per EXEC, for code that spins on (slow, Python-side) MMIO reads.
TIME_LIMIT_US = 2_000_000
#: Emulated RMR accesses per EXEC before the model calls it a loop (each resume
#: gets a fresh instruction budget; the wall-clock cap bounds the total).
MAX_RESUMES = 256

MODE_MASK = 0x1F
MODE_SVC = 0x13
MODE_IRQ = 0x12
CPSR_T = 1 << 5
CPSR_IF = (1 << 7) | (1 << 6)  # IRQ and FIQ masked, as in the ROM's FEL loop

RMR_AA64 = 1 << 0
RMR_RR = 1 << 1  # request warm reset (taken at the next WFI)

CALLEE_SAVED = tuple(getattr(arm, f"UC_ARM_REG_R{n}") for n in range(4, 12))
SCRATCH_REGS = tuple(getattr(arm, f"UC_ARM_REG_R{n}") for n in (0, 1, 2, 3, 12))
GENERAL = tuple(getattr(arm, f"UC_ARM_REG_R{n}") for n in range(13))
#: What the ROM's caller frame keeps in r4-r11: preserved by AAPCS callees.
ROM_CALLEE_VALUES = tuple(0x7E570000 + n for n in range(4, 12))

Word = cs.Int32ul
Half = cs.Int16ul
TranslationTable = cs.Array(MMU_TABLE_SIZE // 4, cs.Int32ul)
#: MCR/MRC as a big-endian bit stream (ARM: the word; T32: halfword 1 then 2).
CoprocessorTransfer = cs.BitStruct(
    "cond" / cs.BitsInteger(4),
    "op" / cs.BitsInteger(4),  # 0b1110
    "opc1" / cs.BitsInteger(3),
    "to_core" / cs.Flag,  # L: 1 = MRC (coprocessor -> core register)
    "crn" / cs.BitsInteger(4),
    "rt" / cs.BitsInteger(4),
    "coproc" / cs.BitsInteger(4),
    "opc2" / cs.BitsInteger(3),
    "bit4" / cs.BitsInteger(1),  # 1 for register transfers
    "crm" / cs.BitsInteger(4),
)
ARM_WFI = 0x0320F003  # without the condition field
ARM_BRANCH_TO_SELF = 0xEAFFFFFE  # "b ." fills the ROM: stray jumps spin until the limit
T16_WFI = 0xBF30
T32_WFI = (0xF3AF, 0x8003)

_EXCEPTIONS = {
    1: "undefined instruction",
    2: "svc",
    3: "prefetch abort",
    4: "data abort",
    5: "IRQ",
    6: "FIQ",
    7: "bkpt",
    11: "hvc",
    13: "smc",
}
_ACCESS = {UC_MEM_WRITE_UNMAPPED: "wrote", UC_MEM_FETCH_UNMAPPED: "executed"}


def _reg(n: int) -> Any:
    return getattr(arm, f"UC_ARM_REG_R{n}")


class ArmCore:
    """The emulated CPU plus the SRAM and ROM it owns (unicorn holds those bytes)."""

    def __init__(self, board: SimBoard) -> None:
        self.board = board
        self.layout: BoardLayout = board.layout
        self.rmr = 0
        self.running = False
        self._mapped_dram: set[int] = set()
        # Any: unicorn's bundled annotations miss some ctl_* helpers.
        uc: Any = Uc(UC_ARCH_ARM, UC_MODE_ARM)
        uc.ctl_set_cpu_model(arm.UC_CPU_ARM_CORTEX_A7)
        self.uc: Any = uc
        for span in self.layout.sram:
            uc.mem_map(span.start, span.size, UC_PROT_ALL)
        rom = self.layout.rom
        uc.mem_map(rom.start, rom.size, UC_PROT_READ | UC_PROT_EXEC)
        uc.mem_write(rom.start, bytes(Word.build(ARM_BRANCH_TO_SELF)) * (rom.size // 4))
        mmio = self.layout.mmio
        uc.mmio_map(mmio.start, mmio.size, self._mmio_read, None, self._mmio_write, None)
        uc.hook_add(UC_HOOK_MEM_UNMAPPED, self._on_unmapped)
        uc.hook_add(UC_HOOK_MEM_WRITE_PROT, self._on_rom_write)
        uc.hook_add(UC_HOOK_INTR, self._on_exception)
        spl = board.soc.spl_addr
        uc.hook_add(UC_HOOK_BLOCK, self._on_spl_entry, begin=spl, end=spl)
        dram = self.layout.dram
        uc.hook_add(UC_HOOK_BLOCK, self._on_dram_entry, begin=dram.start, end=dram.end - 1)
        self._reset_cpu_state()

    # Power-on state, as the ROM leaves it in FEL ------------------------------

    def _reset_cpu_state(self) -> None:
        uc = self.uc
        uc.reg_write(arm.UC_ARM_REG_CPSR, CPSR_IF | MODE_IRQ)
        uc.reg_write(arm.UC_ARM_REG_SP, self.layout.irq_sp)
        uc.reg_write(arm.UC_ARM_REG_CPSR, CPSR_IF | MODE_SVC)
        table = self.layout.mmu_table
        if table is not None:
            self._build_rom_mmu_table(table)
            self.write_cp15(3, 0, 0, 0, DACR_ALL_CLIENT)  # DACR
            self.write_cp15(2, 0, 0, 2, 0)  # TTBCR: TTBR0 for everything, 16 KiB table
            self.write_cp15(2, 0, 0, 0, table)  # TTBR0
        self.write_cp15(1, 0, 0, 0, self.layout.sctlr)

    def _build_rom_mmu_table(self, table: int) -> None:
        """The ROM's 1:1 section table: normal memory for SRAM and ROM, strongly ordered else."""
        normal = {0, self.layout.rom.start >> SECTION_SHIFT}
        entries = [identity_section(i, i in normal) for i in range(MMU_TABLE_SIZE // 4)]
        self.uc.mem_write(table, bytes(TranslationTable.build(entries)))

    def read_cp15(self, crn: int, crm: int, opc1: int, opc2: int) -> int:
        return int(self.uc.reg_read(arm.UC_ARM_REG_CP_REG, (15, 0, 0, crn, crm, opc1, opc2)))

    def write_cp15(self, crn: int, crm: int, opc1: int, opc2: int, value: int) -> None:
        self.uc.reg_write(arm.UC_ARM_REG_CP_REG, (15, 0, 0, crn, crm, opc1, opc2, value))

    @property
    def sctlr(self) -> int:
        return self.read_cp15(1, 0, 0, 0)

    # Memory the core owns -------------------------------------------------------

    def read(self, address: int, length: int) -> bytes:
        return bytes(self.uc.mem_read(address, length))

    def write(self, address: int, data: bytes | bytearray | memoryview) -> None:
        self.uc.mem_write(address, bytes(data))

    def _map_dram_page(self, address: int) -> None:
        """Map the DRAM page behind ``address`` (any alias) onto the model's own buffer."""
        page_address = address & ~(DRAM_PAGE - 1)
        if page_address in self._mapped_dram:
            return
        offset = (page_address - self.layout.dram.start) % self.board.dram.size
        buffer = self.board.dram.page(offset // DRAM_PAGE)
        self.uc.mem_map_ptr(page_address, DRAM_PAGE, UC_PROT_ALL, ctypes.addressof(buffer))
        self._mapped_dram.add(page_address)

    # Running ---------------------------------------------------------------------

    def stop(self) -> None:
        if self.running:
            self.uc.emu_stop()

    def call(self, address: int) -> bool:
        """Run the function at ``address`` as the ROM's EXEC does.

        True when it returned to the ROM in good order; otherwise the board is
        hung or has left FEL (the reason is on the board).
        """
        uc = self.uc
        layout = self.layout
        uc.reg_write(arm.UC_ARM_REG_CPSR, CPSR_IF | MODE_SVC)
        for reg in SCRATCH_REGS:
            uc.reg_write(reg, 0)
        for reg, value in zip(CALLEE_SAVED, ROM_CALLEE_VALUES, strict=True):
            uc.reg_write(reg, value)
        uc.reg_write(arm.UC_ARM_REG_SP, layout.svc_sp)
        uc.reg_write(arm.UC_ARM_REG_LR, layout.return_address)
        uc.ctl_flush_tb()  # FEL writes since the last EXEC may have replaced code
        start = address
        deadline = time.monotonic() + TIME_LIMIT_US / 1e6
        self.running = True
        try:
            for _ in range(MAX_RESUMES):
                try:
                    remaining = max(1, int((deadline - time.monotonic()) * 1e6))
                    uc.emu_start(
                        start, layout.return_address, timeout=remaining, count=INSTRUCTION_LIMIT
                    )
                except UcError as error:
                    if self.board.stopped:
                        return False
                    resume = self._emulate_rmr() if error.errno == UC_ERR_INSN_INVALID else None
                    if resume is None:
                        self.board.hang(self._fault_reason(address, error))
                        return False
                    start = resume
                    continue
                break
            else:
                self.board.hang(
                    f"the code at 0x{address:08x} accessed RMR {MAX_RESUMES} times "
                    "without returning to FEL"
                )
                return False
        finally:
            self.running = False
        if self.board.stopped:
            return False
        pc = self.pc
        if pc == layout.return_address:
            return self._check_return(address)
        if self._stopped_in_wfi(pc):
            self._take_wfi(pc)
            return False
        self.board.hang(
            f"the code at 0x{address:08x} did not return to FEL within "
            f"{INSTRUCTION_LIMIT:,} instructions or {TIME_LIMIT_US // 1000} ms (pc 0x{pc:08x})"
        )
        return False

    @property
    def pc(self) -> int:
        return int(self.uc.reg_read(arm.UC_ARM_REG_PC))

    @property
    def thumb(self) -> bool:
        return bool(self.uc.reg_read(arm.UC_ARM_REG_CPSR) & CPSR_T)

    def _fault_reason(self, address: int, error: UcError) -> str:
        pc = self.pc
        try:
            word = f" (word 0x{Word.parse(self.read(pc, 4)):08x})"
        except UcError:
            word = ""
        return f"the code at 0x{address:08x} faulted at pc 0x{pc:08x}{word}: {error}"

    def _check_return(self, address: int) -> bool:
        """What the ROM's FEL loop needs back: its sp and SVC mode (lr brought us here).

        Not r4-r11: sunxi-fel's SPL thunk (thunks/fel-to-spl-thunk.S) uses r4-r8
        as scratch and restores only sp and CPSR before `bx lr`, and it works on
        real boards, so the ROM cannot rely on callee-saved registers.
        """
        uc = self.uc
        sp = int(uc.reg_read(arm.UC_ARM_REG_SP))
        if sp != self.layout.svc_sp:
            self.board.hang(
                f"the code at 0x{address:08x} returned with sp 0x{sp:08x} instead of "
                f"0x{self.layout.svc_sp:08x}: the ROM lost its stack"
            )
            return False
        mode = int(uc.reg_read(arm.UC_ARM_REG_CPSR)) & MODE_MASK
        if mode != MODE_SVC:
            self.board.hang(
                f"the code at 0x{address:08x} returned in CPU mode 0x{mode:02x}, not SVC"
            )
            return False
        return True

    # Coprocessor 15: RMR ------------------------------------------------------------

    def _decode_coprocessor(self, pc: int) -> Any | None:
        raw = self.read(pc, 4)
        # ARM: one little-endian word; T32: two little-endian halfwords, first one high.
        stream = raw[1::-1] + raw[3:1:-1] if self.thumb else raw[::-1]
        insn = CoprocessorTransfer.parse(stream)
        if insn.op != 0b1110 or insn.bit4 != 1 or insn.coproc != 15 or insn.cond != 0b1110:
            return None
        return insn

    def _emulate_rmr(self) -> int | None:
        """Perform an RMR access at pc on an AArch64 SoC; the address to resume at, or None."""
        if not self.board.soc.is_arm64:
            return None  # a v7-only core has no RMR: the access is undefined
        pc = self.pc
        insn = self._decode_coprocessor(pc)
        if insn is None or (insn.opc1, insn.crn, insn.crm, insn.opc2) != (0, 12, 0, 2):
            return None
        if insn.rt >= 13:
            return None
        if insn.to_core:
            self.uc.reg_write(_reg(insn.rt), self.rmr)
        else:
            self.rmr = int(self.uc.reg_read(_reg(insn.rt))) & (RMR_AA64 | RMR_RR)
            log.debug("sim: RMR <- 0x%x at pc 0x%08x", self.rmr, pc)
        return (pc + 4) | (1 if self.thumb else 0)

    def _stopped_in_wfi(self, pc: int) -> bool:
        """Unicorn ends emulation after a WFI; tell that apart from the instruction limit."""
        try:
            if self.thumb:
                if Half.parse(self.read(pc - 2, 2)) == T16_WFI:
                    return True
                return (
                    Half.parse(self.read(pc - 4, 2)),
                    Half.parse(self.read(pc - 2, 2)),
                ) == T32_WFI
            return Word.parse(self.read(pc - 4, 4)) & 0x0FFFFFFF == ARM_WFI
        except UcError:
            return False

    def _take_wfi(self, pc: int) -> None:
        if not self.rmr & RMR_RR:
            self.board.hang(
                f"the CPU sleeps in WFI at 0x{pc:08x} with interrupts masked: "
                "it never returns to FEL"
            )
        elif self.rmr & RMR_AA64:
            rvbar = self.board.registers.rvbar
            self.board.leave_fel(SimEvent("aarch64_reset", address=rvbar))
        else:
            self.board.leave_fel(SimEvent("warm_reset", reason="RMR reset into AArch32"))

    # Hooks -----------------------------------------------------------------------------

    def _on_unmapped(
        self, uc: Uc, access: int, address: int, size: int, value: int, data: object
    ) -> bool:
        if address in self.layout.dram and self.board.dram_ready:
            self._map_dram_page(address)
            return True
        verb = _ACCESS.get(access, "read")
        where = f"at pc 0x{self.pc:08x}"
        if address in self.layout.dram:
            self.board.hang(
                f"the CPU {verb} DRAM at 0x{address:08x} {where} before DRAM was initialised "
                "(no SPL has run)"
            )
        else:
            self.board.hang(f"the CPU {verb} unmapped address 0x{address:08x} {where}")
        return False

    def _on_rom_write(
        self, uc: Uc, access: int, address: int, size: int, value: int, data: object
    ) -> bool:
        self.board.hang(f"the CPU wrote to the boot ROM at 0x{address:08x} (pc 0x{self.pc:08x})")
        return False

    def _on_exception(self, uc: Uc, number: int, data: object) -> None:
        name = _EXCEPTIONS.get(number, f"#{number}")
        if name == "smc" and self.board.enter_secure():
            return  # the monitor returns to the instruction after the smc (pc already there)
        self.board.hang(
            f"the CPU took a {name} exception at pc 0x{self.pc:08x}: "
            "the ROM's handler does not return to FEL"
        )
        uc.emu_stop()

    def _on_spl_entry(self, uc: Uc, address: int, size: int, data: object) -> None:
        if address != self.board.soc.spl_addr:
            return
        if self.board.enter_spl():
            # U-Boot's return_to_fel restores sp, lr, cpsr, SCTLR and VBAR only:
            # everything else holds whatever the SPL left there.
            for n, reg in enumerate(GENERAL):
                uc.reg_write(reg, 0x5B100000 + n)
            uc.reg_write(arm.UC_ARM_REG_PC, uc.reg_read(arm.UC_ARM_REG_LR))
        elif self.board.stopped:
            uc.emu_stop()

    def _on_dram_entry(self, uc: Uc, address: int, size: int, data: object) -> None:
        self.board.leave_fel(SimEvent("uboot_started", address=address))
        uc.emu_stop()

    def _mmio_read(self, uc: Uc, offset: int, size: int, data: object) -> int:
        address = self.layout.mmio.start + offset
        word = self.board.registers.read32(address)
        shift = (address & 3) * 8
        return (word >> shift) & ((1 << (size * 8)) - 1)

    def _mmio_write(self, uc: Uc, offset: int, size: int, value: int, data: object) -> None:
        address = self.layout.mmio.start + offset
        if size == 4:
            self.board.registers.write32(address, value)
        else:
            shift = (address & 3) * 8
            mask = ((1 << (size * 8)) - 1) << shift
            word = self.board.registers.read32(address)
            self.board.registers.write32(address, (word & ~mask) | ((value << shift) & mask))
        if self.board.stopped:
            uc.emu_stop()
