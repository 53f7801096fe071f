"""FEL operations over a Transport: version, read, write, exec.

Each FEL command is three USB-layer exchanges (see protocol.py):

    write  FEL message (16 bytes)        AWUC, message, AWUS
    data   (WRITE: host->device,          AWUC, payload in bulk transfers of
           READ: device->host, EXEC: none)      <= 512 KiB, AWUS
    read   FEL status (8 bytes)           AWUC, status, AWUS

A write or read of N bytes is ONE FEL command whose data phase is split into
bulk transfers: fewer round trips than many small FEL commands.

EXEC has no data phase, and its status comes BEFORE the code runs: the ROM
answers the status exchange, then calls the code, and leaves the next request
unanswered until the code returns (sunxi-fel's aw_fel_execute() in fel_lib.c,
xfel's fel_exec(), snagboot's FEL.jump(); see felboot/sim/transport.py for the
public logs). So the status is read after every EXEC, the final jump included,
and code that never returns shows up as a time-out of the NEXT request, which
is where it is named.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import construct as cs

from felboot import protocol
from felboot.errors import (
    DeviceError,
    DeviceGone,
    DeviceTimeout,
    ProtocolError,
    UnsafeWrite,
    UsageError,
)
from felboot.soc import SocInfo, soc_by_id
from felboot.thunks import ThunkPayload
from felboot.thunks.boot_thunks import ICACHE_OFF, SMC, build_plain
from felboot.thunks.memmove import build_memmove
from felboot.thunks.registers import (
    SID_WORDS,
    build_readl,
    build_sid_registers,
    build_writel,
    max_readl_words,
    max_writel_pairs,
    parse_readl_result,
    parse_sid_result,
    scratch_room,
    sid_bytes,
)
from felboot.transport import MAX_BULK_TRANSFER, Transport

log = logging.getLogger(__name__)
# One line per FEL request, shown from -vv (cli.py), like esptool's --trace.
trace = logging.getLogger("felboot.trace")
REQUEST_NAMES = {
    protocol.FEL_VERSION: "VERSION",
    protocol.FEL_WRITE: "WRITE",
    protocol.FEL_EXEC: "EXEC",
    protocol.FEL_READ: "READ",
}

#: Called with the number of bytes moved by each bulk transfer of a data phase.
Progress = Callable[[int], None]

ADDRESS_SPACE = 1 << 32
#: Zero-length bulk INs tolerated in a row before the device counts as silent.
MAX_EMPTY_TRANSFERS = 64
ProbeWord = cs.Int32ul  # the SMC probe word, read as sunxi-fel does: one FEL READ
#: Bytes per FEL WRITE of fill(): one buffer reused, however large the range.
FILL_CHUNK = 1 << 20


def check_range(address: int, length: int) -> None:
    """Refuse ranges that leave the 32-bit address space the ROM can reach."""
    if address < 0 or length < 0 or address + length > ADDRESS_SPACE:
        raise UsageError(
            f"range 0x{address:x} + 0x{length:x} bytes runs past 4 GiB: "
            "the boot ROM addresses 32 bits; check the address and size"
        )


def overlapping_rom_state(soc: SocInfo, address: int, length: int) -> tuple[int, int] | None:
    """The first boot-ROM state range that [address, address+length) touches, if any."""
    for start, end in soc.rom_state_ranges:
        if address < end and start < address + length:
            return start, end
    return None


@dataclass(frozen=True)
class RunningCode:
    """What an EXEC started, for the message when it does not come back."""

    name: str  # "the SPL", "the register thunk at 0x00007e00"
    advice: str  # what the user can do about it


class FelDevice:
    """A board in FEL mode, reached through ``transport``."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._version: protocol.FelVersion | None = None
        # The code the last EXEC started, while the ROM has not yet answered again.
        self._running: RunningCode | None = None
        self._smc_checked = False
        #: Set by the boot chain once an SPL it ran has brought DRAM up.
        self.dram_up = False
        self._icache_off = False

    # Identity ------------------------------------------------------------

    def version(self) -> protocol.FelVersion:
        """Ask the ROM who it is (cached: the answer cannot change while in FEL)."""
        if self._version is None:
            self._command(protocol.FEL_VERSION, 0, 0)
            answer = self._usb_read(protocol.FEL_VERSION_SIZE)
            self._version = protocol.parse_version_answer(answer)
            self._read_status("VERSION")
        return self._version

    @property
    def soc(self) -> SocInfo | None:
        """The SoC record for this device, or None when the table does not know it."""
        return soc_by_id(self.version().soc_id)

    # Session start ---------------------------------------------------------------

    def apply_smc_workaround(self) -> None:
        """Bring a ROM that started FEL non-secure into the secure state (once per session).

        On secure-fused A64/H3/H5/H6 boards FEL starts non-secure and secure
        SRAM, the SID and many registers read zero. sunxi-fel does this right
        after opening the device, for every command (main() in fel.c, then
        aw_apply_smc_workaround()): a plain FEL READ of the SoC's probe word,
        and `smc #0` only when it reads zero (on a board booted non-secure
        there is no monitor and the smc would crash it).
        """
        if self._smc_checked:
            return
        self._smc_checked = True
        soc = self.soc
        if soc is None or soc.smc_probe_addr is None:
            return
        probe = ProbeWord.parse(bytes(self.read(soc.smc_probe_addr, ProbeWord.sizeof())))
        if probe != 0:
            return
        log.info("%s: secure SRAM reads zero: entering the secure state (smc #0)", soc.name)
        self.run_thunk(build_plain(SMC), "smc")

    # Memory ----------------------------------------------------------------

    def read(self, address: int, length: int, progress: Progress | None = None) -> bytearray:
        """Read ``length`` bytes at ``address``."""
        check_range(address, length)
        if length == 0:
            return bytearray()
        with self._dram_hang_explained(address, length, "reading"):
            self._command(protocol.FEL_READ, address, length)
            data = self._usb_read(length, progress)
            self._read_status(f"READ at 0x{address:08x}")
        return data

    def write(
        self,
        address: int,
        data: bytes | bytearray | memoryview,
        progress: Progress | None = None,
    ) -> None:
        """Write ``data`` at ``address``, refusing ranges the ROM needs to stay alive."""
        length = len(data)
        check_range(address, length)
        if length == 0:
            return
        self.refuse_rom_state(address, length)
        self._turn_icache_off()
        with self._dram_hang_explained(address, length, "writing"):
            self._command(protocol.FEL_WRITE, address, length)
            self._usb_write(data, progress)
            self._read_status(f"WRITE at 0x{address:08x}")

    def execute(self, address: int, code: RunningCode | None = None) -> None:
        """Start the ARM function at ``address``; it must return to the ROM with ``bx lr``.

        The ROM answers the status first and runs the code after it, so this
        returns while the code may still run. The next request waits for it; if
        that request times out, the error names ``code`` (default: "the code at
        ADDRESS", with the advice to end it with ``bx lr``).
        """
        check_range(address, 4)
        self._command(protocol.FEL_EXEC, address, 0)
        self._read_status(f"EXEC at 0x{address:08x}")
        self._running = code or RunningCode(
            f"the code at 0x{address:08x}",
            "power-cycle the board into FEL; check the code ends with 'bx lr'",
        )

    def wait_returned(self) -> None:
        """Make sure the code the last EXEC started has returned to the ROM.

        One request the ROM answers only from its FEL loop: VERSION (asked anew,
        never from the cache). Nothing is sent when no EXEC is outstanding.
        """
        if self._running is None:
            return
        self._command(protocol.FEL_VERSION, 0, 0)
        self._usb_read(protocol.FEL_VERSION_SIZE)
        self._read_status("VERSION")

    def jump(self, address: int) -> None:
        """EXEC code that never returns to FEL (U-Boot, a warm reset).

        The status is read as after every EXEC (all peers do, and the ROM calls
        the code only once the status exchange is over); after it, the board is
        expected to leave FEL, so nothing more is sent.
        """
        check_range(address, 4)
        self._command(protocol.FEL_EXEC, address, 0)
        self._read_status(f"EXEC at 0x{address:08x}")

    def _turn_icache_off(self) -> None:
        """Once per session, before the first write, on ROMs that leave the I-cache on.

        Every thunk goes to the same scratch address: with the I-cache on, a
        new thunk could run the previous one's cached words. sunxi-fel turns it
        off before its first write (aw_fel_write() -> aw_disable_icache() in
        fel_lib.c, for soc_info.c's `icache_fix` SoCs: V853, R528/T113, A523).
        """
        if self._icache_off:
            return
        self._icache_off = True
        soc = self.soc
        if soc is None or not soc.needs_icache_fix:
            return
        log.info("%s: the boot ROM runs with the I-cache on: turning it off", soc.name)
        self.run_thunk(build_plain(ICACHE_OFF), "I-cache-off")

    def refuse_rom_state(self, address: int, length: int) -> None:
        """Raise UnsafeWrite when the range touches SRAM the boot ROM lives on."""
        soc = self.soc
        if soc is None:
            return
        hit = overlapping_rom_state(soc, address, length)
        if hit is not None:
            raise UnsafeWrite(
                f"refusing to write 0x{address:08x}-0x{address + length - 1:08x}: it overlaps "
                f"0x{hit[0]:08x}-0x{hit[1] - 1:08x}, where the {soc.name} boot ROM keeps its "
                "stacks and state (FEL would die); use another address"
            )

    # USB framing -------------------------------------------------------------

    def _command(self, command: int, address: int, length: int) -> None:
        if trace.isEnabledFor(logging.DEBUG):  # one check per request when tracing is off
            name = REQUEST_NAMES.get(command, f"0x{command:03x}")
            trace.debug("FEL %-7s 0x%08x length 0x%x (%d)", name, address, length, length)
        message = protocol.build_fel_message(command, address, length)
        running, self._running = self._running, None
        if running is None:
            self._usb_write(message)
            return
        # The first request after an EXEC waits until the code is back in the ROM:
        # a time-out or a vanished device here is the code's doing, not this command's.
        try:
            self._usb_write(message)
        except DeviceTimeout:
            raise DeviceTimeout(
                f"{running.name} did not return to FEL (the board stopped answering "
                f"after it started): {running.advice}"
            ) from None
        except DeviceGone as error:
            raise DeviceGone(f"{running.name} did not return to FEL: {error}") from None

    def _read_status(self, what: str) -> None:
        protocol.check_fel_status(self._usb_read(protocol.FEL_STATUS_SIZE), what)

    def _usb_write(
        self, data: bytes | bytearray | memoryview, progress: Progress | None = None
    ) -> None:
        length = len(data)
        self.transport.bulk_out(protocol.build_usb_request(protocol.USB_DIRECTION_WRITE, length))
        for chunk in iter_chunks(data, MAX_BULK_TRANSFER):
            self.transport.bulk_out(chunk)
            if progress is not None:
                progress(len(chunk))
        protocol.check_usb_response(self._receive(protocol.USB_RESPONSE_SIZE))

    def _usb_read(self, length: int, progress: Progress | None = None) -> bytearray:
        self.transport.bulk_out(protocol.build_usb_request(protocol.USB_DIRECTION_READ, length))
        data = self._receive(length, progress)
        protocol.check_usb_response(self._receive(protocol.USB_RESPONSE_SIZE))
        return data

    def _receive(self, length: int, progress: Progress | None = None) -> bytearray:
        """Exactly ``length`` bytes from bulk IN, however the device splits them.

        sunxi-fel's usb_bulk_recv() (fel_lib.c) loops until the announced length
        has arrived, taking short and zero-length transfers on the way; so does
        this, except that a device sending nothing but empty transfers is given
        up on after MAX_EMPTY_TRANSFERS in a row instead of forever.
        """
        # Filled in place and returned as is: a final bytes() copy would double the
        # peak memory of a large read.
        buffer = bytearray(length)
        received = empty = 0
        while received < length:
            chunk = self.transport.bulk_in(min(MAX_BULK_TRANSFER, length - received))
            if len(chunk) > length - received:
                raise ProtocolError(
                    f"the device sent {received + len(chunk)} bytes where {length} were asked"
                )
            if not chunk:
                empty += 1
                if empty == MAX_EMPTY_TRANSFERS:
                    raise DeviceTimeout(
                        f"{self.transport.description} sent {empty} empty transfers in a row "
                        f"after {received} of {length} bytes: power-cycle the board into FEL "
                        "and retry"
                    )
                continue
            empty = 0
            buffer[received : received + len(chunk)] = chunk
            received += len(chunk)
            if progress is not None:
                progress(len(chunk))
        return buffer

    @contextmanager
    def _dram_hang_explained(self, address: int, length: int, doing: str) -> Iterator[None]:
        """Turn a time-out while touching DRAM into the likely cause: no SPL has run yet.

        Only when this session has not run one itself (``dram_up``): after our own
        SPL, a time-out in DRAM is an ordinary one and keeps its own message.
        """
        soc = self.soc  # asked before the risky transfer: a hung board cannot say who it is
        try:
            yield
        except DeviceTimeout:
            if soc is not None and not self.dram_up and address + length > soc.dram_base:
                raise DeviceTimeout(
                    f"{self.transport.description} stopped answering while {doing} "
                    f"0x{address:08x} in DRAM: DRAM works only once an SPL has run since the "
                    "board entered FEL; power-cycle the board into FEL and run "
                    "'felboot spl FILE' (or 'felboot uboot') first"
                ) from None
            raise

    # Registers, SID and reset (through thunks in the scratch area) -------------

    def readl(self, address: int) -> int:
        """Read the 32-bit register at ``address`` (one aligned load on the device)."""
        return self.read_words([address])[0]

    def read_words(self, addresses: Sequence[int]) -> list[int]:
        """Read one 32-bit word from each address: one upload, EXEC and READ per batch."""
        if not addresses:
            return []
        for address in addresses:
            check_range(address, 4)
        _, room = self._thunk_scratch("read registers")
        per_batch = max_readl_words(room)
        words: list[int] = []
        for first in range(0, len(addresses), per_batch):
            batch = addresses[first : first + per_batch]
            with self._dram_hang_explained(max(batch), 4, "reading"):
                result = self.run_thunk(build_readl(batch), "register-read")
            words += parse_readl_result(result, len(batch))
        return words

    def writel(self, address: int, value: int) -> None:
        """Store ``value`` in the 32-bit register at ``address``."""
        self.write_words([(address, value)])

    def write_words(self, pairs: Sequence[tuple[int, int]]) -> None:
        """Store each (address, value) pair, in order, as one 32-bit store per pair."""
        if not pairs:
            return
        for address, _ in pairs:
            check_range(address, 4)
            self.refuse_rom_state(address, 4)
        _, room = self._thunk_scratch("write registers")
        per_batch = max_writel_pairs(room)
        for first in range(0, len(pairs), per_batch):
            batch = pairs[first : first + per_batch]
            with self._dram_hang_explained(max(address for address, _ in batch), 4, "writing"):
                self.run_thunk(build_writel(batch), "register-write")

    def sid(self) -> bytes:
        """The 16-byte SID (e-fuse chip id): four little-endian words, first word first."""
        return sid_bytes(self.sid_words(SID_WORDS))

    def sid_words(self, count: int, *, registers: bool = False) -> tuple[int, ...]:
        """The first ``count`` e-fuse words (byte offsets 0, 4, ...), as sunxi-fel's
        fel_read_sid() reads them: through SID_PRCTL on SoCs with the H3 erratum or when
        ``registers`` asks for it (`sid-registers`), else from the memory-mapped copy."""
        soc, _ = self._thunk_scratch("read the SID")
        self.apply_smc_workaround()  # a secure-fused board's e-fuses read zero until then
        if soc.sid_base is None:
            raise DeviceError(
                f"the {soc.name} has no SID felboot knows how to read: "
                "tell boards apart by their USB port instead"
            )
        if not (soc.sid_needs_registers or registers):
            first = soc.sid_base + soc.sid_offset
            return tuple(self.read_words([first + 4 * i for i in range(count)]))
        payload = build_sid_registers(soc.sid_base, count)
        readout = parse_sid_result(self.run_thunk(payload, "SID-read"), count)
        if readout.timed_out:
            raise DeviceError(
                f"the {soc.name} SID controller at 0x{soc.sid_base:08x} never finished reading "
                f"e-fuse word 0x{4 * len(readout.words):02x} (SID_PRCTL stayed busy): "
                "power-cycle the board into FEL and retry"
            )
        return readout.words

    def fill(self, address: int, length: int, value: int, progress: Progress | None = None) -> None:
        """Store ``length`` copies of the byte ``value`` at ``address`` (sunxi-fel's
        aw_fel_fill()): plain FEL WRITEs of FILL_CHUNK bytes, every range checked first."""
        if not 0 <= value <= 0xFF:
            raise UsageError(f"fill value 0x{value:x} is not a byte: give 0-0xff")
        check_range(address, length)
        self.refuse_rom_state(address, length)
        chunk = memoryview(bytes([value]) * min(length, FILL_CHUNK))
        for offset in range(0, length, FILL_CHUNK):
            self.write(address + offset, chunk[: min(FILL_CHUNK, length - offset)], progress)

    def memmove(self, dst: int, src: int, size: int) -> None:
        """Copy ``size`` bytes from ``src`` to ``dst`` on the device (overlap allowed), with
        word accesses where the alignment allows (felboot/thunks/memmove.S), and wait for
        the copy to finish."""
        payload = build_memmove(dst, src, size)
        if size == 0:
            return
        soc, _ = self._thunk_scratch("move memory")
        self.refuse_rom_state(dst, size)
        low, high = soc.scratch_addr, soc.scratch_addr + len(payload.data)
        for what, start in (("destination", dst), ("source", src)):
            if start < high and low < start + size:
                raise UsageError(
                    f"memmove {what} 0x{start:08x}-0x{start + size - 1:08x} overlaps "
                    f"0x{low:08x}-0x{high - 1:08x}, where felboot's memmove thunk runs on the "
                    f"{soc.name}: use another address"
                )
        with self._dram_hang_explained(max(dst, src), size, "copying"):
            self.run_thunk(payload, "memmove")
            self.wait_returned()

    def reset(self) -> None:
        """Reset the SoC through its watchdog; the board leaves FEL.

        The writel thunk arms the watchdog only after the ROM has answered the
        EXEC's status (see the module docstring), so the status is read like
        any other; the USB device vanishes after it. This FelDevice is useless
        afterwards.
        """
        soc, _ = self._thunk_scratch("reset the board")
        if soc.watchdog is None:
            raise DeviceError(
                f"the {soc.name} has no watchdog felboot knows of: power-cycle the board instead"
            )
        payload = build_writel([(soc.watchdog.register, soc.watchdog.value)])
        self.write(soc.scratch_addr, payload.data)
        # The status comes before the thunk runs, so the board answers it and
        # resets after: jump() reads it and sends nothing more.
        self.jump(soc.scratch_addr)

    def _thunk_scratch(self, doing: str) -> tuple[SocInfo, int]:
        """The SoC record and the bytes usable for thunks at its scratch address."""
        soc = self.soc
        if soc is None:
            raise DeviceError(
                f"unknown SoC 0x{self.version().soc_id:04x}: register access needs the SoC's "
                "scratch address; only read/write/exec work"
            )
        room = scratch_room(soc)
        if room == 0:
            raise DeviceError(
                f"cannot {doing} on the {soc.name}: its scratch address 0x{soc.scratch_addr:x} "
                "lies in SRAM the boot ROM keeps state in; felboot has no safe place for the thunk"
            )
        return soc, room

    def run_thunk(self, payload: ThunkPayload, what: str) -> bytes:
        """Upload ``payload`` (felboot's ``what`` thunk) to the scratch address, call it,
        and read back its results."""
        soc, room = self._thunk_scratch(f"run the {what} thunk")
        if len(payload.data) > room:
            raise DeviceError(
                f"felboot's {what} thunk is {len(payload.data)} bytes, but the {soc.name} "
                f"scratch area at 0x{soc.scratch_addr:x} holds {room}: this is a bug in felboot"
            )
        self.write(soc.scratch_addr, payload.data)
        self.execute(
            soc.scratch_addr,
            RunningCode(
                f"felboot's {what} thunk at 0x{soc.scratch_addr:08x}",
                "power-cycle the board into FEL and retry",
            ),
        )
        if payload.result_size == 0:
            return b""
        return bytes(self.read(soc.scratch_addr + payload.result_offset, payload.result_size))


def iter_chunks(data: bytes | bytearray | memoryview, size: int) -> Iterator[memoryview]:
    """Slices of ``data`` no longer than ``size`` bytes, without copying."""
    view = memoryview(data)
    for offset in range(0, len(view), size):
        yield view[offset : offset + size]
