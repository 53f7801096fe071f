"""A simulated Allwinner board sitting in FEL: memory, registers, CPU, and what it did.

The FEL-facing methods (``fel_read``, ``fel_write``, ``fel_exec``) behave like
the boot ROM's handlers: they check only what hardware would notice, and a
mistake does not raise, it hangs the board (``hung``/``hang_reason``) or makes
it leave FEL (``left_fel``). The transport turns those states into time-outs
and vanished devices. ``read_memory``/``write_memory`` are back doors for
tests: no checks, no side effects.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator

import construct as cs

from felboot import protocol
from felboot.errors import UsageError
from felboot.sim.cpu import ArmCore
from felboot.sim.events import SimEvent
from felboot.sim.layout import SMC_PROBE_VALUE, layout_for
from felboot.sim.memory import SparseDram
from felboot.sim.mmio import Registers
from felboot.sim.options import SimConfig
from felboot.sim.spl import HEADER_SIZE, judge_spl_entry

log = logging.getLogger(__name__)

#: What the VERSION answer reports as the scratchpad: 0x7e00 on every SRAM-at-0
#: ROM (A20 measured), the same offset above SRAM A1 on the others (0x17e00 on A64/H5).
SCRATCHPAD_OFFSET = 0x7E00

Word = cs.Int32ul


class SimBoard:
    """One board: a SoC from felboot.soc with ``dram_size`` bytes of DRAM."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.soc = config.soc
        self.layout = layout_for(config.soc)
        self.dram = SparseDram(config.dram_size)
        self.registers = Registers(config.soc, config.sid, self._watchdog_fired)
        if config.die is not None:
            # Which RVBAR the RMR reset reads, and what VER_REG says (option die=).
            self.registers.die = config.die
        self.events: list[SimEvent] = []
        self.dram_ready = False
        self.hung = False
        self.hang_reason = ""
        self.left_fel = False
        self.leave_reason = ""
        self.core = ArmCore(self)
        self._fill_rom_state()
        self.secure = not config.nonsecure_fel
        self.registers.secure = self.secure
        if self.layout.smc_probe is not None:
            # Secure-only SRAM reads zero from non-secure FEL: the clients' probe word.
            self.core.write(
                self.layout.smc_probe, Word.build(SMC_PROBE_VALUE if self.secure else 0)
            )

    @property
    def name(self) -> str:
        return f"sim {self.soc.name}"

    @property
    def dram_size(self) -> int:
        return self.dram.size

    @property
    def stopped(self) -> bool:
        """True once the board no longer runs the FEL loop (hung or gone)."""
        return self.hung or self.left_fel

    def _fill_rom_state(self) -> None:
        """The ROM's stacks and variables: arbitrary but fixed bytes, so changes show."""
        rng = random.Random(self.soc.soc_id)
        for start, end in self.soc.rom_state_ranges:
            self.core.write(start, rng.randbytes(end - start))

    # State changes ----------------------------------------------------------------

    def hang(self, reason: str) -> None:
        """The board stops answering; the first reason is the one that counts."""
        if self.stopped:
            return
        log.info("%s: board hung: %s", self.name, reason)
        self.hung = True
        self.hang_reason = reason
        self.events.append(SimEvent("crash", reason=reason))
        self.core.stop()

    def leave_fel(self, event: SimEvent) -> None:
        """The board left the boot ROM (started U-Boot, reset): the USB device goes away."""
        if self.stopped:
            return
        log.info("%s: left FEL: %s", self.name, event)
        self.left_fel = True
        where = f" at 0x{event.address:08x}" if event.address is not None else ""
        self.leave_reason = f"{event.kind.replace('_', ' ')}{where}"
        self.events.append(event)
        self.core.stop()

    def enter_secure(self) -> bool:
        """`smc #0` from FEL: True when the ROM's monitor switched FEL to the secure state.

        Only a ROM that started FEL non-secure has a monitor handler; elsewhere
        the smc crashes the ROM (sunxi-tools fel.c, aw_apply_smc_workaround()).
        """
        if self.secure or self.layout.smc_probe is None:
            return False
        self.secure = self.registers.secure = True
        self.core.write(self.layout.smc_probe, Word.build(SMC_PROBE_VALUE))
        self.events.append(SimEvent("secure_state"))
        return True

    def _watchdog_fired(self) -> None:
        watchdog = self.soc.watchdog
        self.leave_fel(SimEvent("watchdog_reset", address=watchdog.register if watchdog else None))

    # Address decoding ----------------------------------------------------------------

    def _region(self, address: int) -> tuple[str, int]:
        """The kind of memory at ``address`` and where that region ends."""
        layout = self.layout
        for span in layout.sram:
            if address in span:
                return "sram", span.end
        for kind, span in (("rom", layout.rom), ("dram", layout.dram), ("mmio", layout.mmio)):
            if address in span:
                return kind, span.end
        following = [s.start for s in (*layout.sram, layout.rom, layout.dram, layout.mmio)]
        return "unmapped", min([s for s in following if s > address], default=1 << 32)

    def _pieces(self, address: int, length: int) -> Iterator[tuple[str, int, int]]:
        end = address + length
        while address < end:
            kind, region_end = self._region(address)
            take = min(end, region_end) - address
            yield kind, address, take
            address += take

    def _dram_offset(self, address: int) -> int:
        """Controllers decode only the address bits the chips have: DRAM aliases."""
        return (address - self.layout.dram.start) % self.dram.size

    def _read_registers(self, address: int, length: int) -> bytes:
        first = address & ~3
        words = [self.registers.read32(a) for a in range(first, address + length, 4)]
        raw = bytes(cs.Array(len(words), Word).build(words))
        return raw[address - first : address - first + length]

    # Back doors for tests ---------------------------------------------------------------

    def read_memory(self, address: int, length: int) -> bytes:
        """Read any mapped memory (DRAM even before an SPL ran); no side effects."""
        out = bytearray()
        for kind, start, size in self._pieces(address, length):
            if kind in ("sram", "rom"):
                out += self.core.read(start, size)
            elif kind == "dram":
                out += self.dram.read(self._dram_offset(start), size)
            elif kind == "mmio":
                out += self._read_registers(start, size)
            else:
                raise UsageError(f"{self.name}: 0x{start:08x} is not mapped on this model")
        return bytes(out)

    def write_memory(self, address: int, data: bytes | bytearray | memoryview) -> None:
        """Write SRAM, ROM or DRAM directly; no checks, no side effects."""
        view = memoryview(bytes(data))
        done = 0
        for kind, start, size in self._pieces(address, len(view)):
            chunk = view[done : done + size]
            if kind in ("sram", "rom"):
                self.core.write(start, chunk)
            elif kind == "dram":
                self.dram.write(self._dram_offset(start), chunk)
            else:
                raise UsageError(f"{self.name}: 0x{start:08x} is not memory on this model")
            done += size

    # The boot ROM's FEL handlers -----------------------------------------------------------

    def version_answer(self) -> bytes:
        scratchpad = self.soc.spl_addr + SCRATCHPAD_OFFSET
        return protocol.build_version_answer(self.soc.soc_id, scratchpad)

    def _check_access(self, address: int, length: int, doing: str) -> bool:
        """Hang (and say False) when the ROM's memcpy would touch nothing or dead DRAM."""
        for kind, start, _ in self._pieces(address, length):
            if kind == "unmapped":
                self.hang(f"FEL {doing} at 0x{address:08x} touched unmapped 0x{start:08x}")
                return False
            if kind == "dram" and not self.dram_ready:
                self.hang(
                    f"FEL {doing} at 0x{address:08x} touched DRAM at 0x{start:08x} before DRAM "
                    "was initialised (no SPL has run)"
                )
                return False
        return True

    def fel_read(self, address: int, length: int) -> bytes | None:
        """FEL READ: the bytes, or None when the board hung doing it."""
        if not self._check_access(address, length, "READ"):
            return None
        return self.read_memory(address, length)

    def fel_write(self, address: int, data: bytes | bytearray | memoryview) -> None:
        """FEL WRITE: store ``data``; the ROM dies if it overwrites its own state."""
        length = len(data)
        for start, end in self.soc.rom_state_ranges:
            if address < end and start < address + length:
                self.hang(
                    f"FEL WRITE 0x{address:08x}-0x{address + length - 1:08x} overwrote the "
                    f"boot ROM's own state at 0x{start:08x}-0x{end - 1:08x}"
                )
                return
        if not self._check_access(address, length, "WRITE"):
            return
        view = memoryview(bytes(data))
        done = 0
        for kind, start, size in self._pieces(address, length):
            chunk = view[done : done + size]
            done += size
            if kind == "sram":
                self.core.write(start, chunk)
            elif kind == "dram":
                self.dram.write(self._dram_offset(start), chunk)
            elif kind == "rom":
                log.debug("%s: FEL WRITE to ROM 0x%08x ignored", self.name, start)
            else:
                self._write_registers(start, chunk)
            if self.stopped:
                return

    def _write_registers(self, address: int, chunk: memoryview) -> None:
        """Whole aligned words reach the registers; the ROM's byte copies of the rest do not."""
        for offset in range(0, len(chunk), 4):
            target = address + offset
            word = chunk[offset : offset + 4]
            if target & 3 or len(word) < 4:
                log.debug("%s: partial FEL WRITE to register 0x%08x ignored", self.name, target)
                continue
            self.registers.write32(target, Word.parse(bytes(word)))
            if self.stopped:
                return

    def fel_exec(self, address: int) -> bool:
        """FEL EXEC: call ``address``; True when it came back and the ROM survived."""
        stack = self.layout.stack
        live = []
        for start, end in self.soc.rom_state_ranges:
            # Below the ROM's stack pointer is free stack: the callee may use it.
            if start == stack.start:
                start = self.layout.svc_sp
            live.append((start, end, self.core.read(start, end - start)))
        if not self.core.call(address):
            return False
        for start, end, before in live:
            after = self.core.read(start, end - start)
            if after != before:
                first = start + next(
                    i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b
                )
                self.hang(
                    f"EXEC at 0x{address:08x} returned with the boot ROM's state changed at "
                    f"0x{first:08x} (in 0x{start:08x}-0x{end - 1:08x}): the ROM crashes; "
                    "swap buffers back before returning"
                )
                return False
        return True

    # Called by the CPU when execution reaches the SPL load address ---------------------------

    def enter_spl(self) -> bool:
        """Emulate an SPL's effect; True when it "returns" to its caller."""
        spl = self.soc.spl_addr
        verdict = judge_spl_entry(
            self.core.read(spl, HEADER_SIZE),
            spl,
            self.core.sctlr,
            self.soc.sram_size,
            self.dram.size,
        )
        if verdict.action == "hang":
            self.hang(verdict.reason)
            return False
        if verdict.action == "not_spl":
            return False
        self.core.write(spl, verdict.header)
        self.dram_ready = True
        self.events.append(SimEvent("spl", address=spl, value=self.dram.size))
        log.info("%s: SPL ran: DRAM %d MiB up", self.name, self.dram.size >> 20)
        return True
