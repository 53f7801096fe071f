"""FEL operations over a Transport: version, read, write, exec.

Each FEL command is three USB-layer exchanges (see protocol.py):

    write  FEL message (16 bytes)        AWUC, message, AWUS
    data   (WRITE: host->device,          AWUC, payload in bulk transfers of
           READ: device->host, EXEC: none)      <= 512 KiB, AWUS
    read   FEL status (8 bytes)           AWUC, status, AWUS

A write or read of N bytes is ONE FEL command whose data phase is split into
bulk transfers: fewer round trips than many small FEL commands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

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

#: Called with the number of bytes moved by each bulk transfer of a data phase.
Progress = Callable[[int], None]

ADDRESS_SPACE = 1 << 32


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


class FelDevice:
    """A board in FEL mode, reached through ``transport``."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._version: protocol.FelVersion | None = None

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
        with self._dram_hang_explained(address, length, "writing"):
            self._command(protocol.FEL_WRITE, address, length)
            self._usb_write(data, progress)
            self._read_status(f"WRITE at 0x{address:08x}")

    def execute(self, address: int) -> None:
        """Call the ARM function at ``address``; it must return to the ROM with ``bx lr``."""
        check_range(address, 4)
        self._command(protocol.FEL_EXEC, address, 0)
        try:
            self._read_status(f"EXEC at 0x{address:08x}")
        except DeviceTimeout:
            raise DeviceTimeout(
                f"the code at 0x{address:08x} did not return to FEL: "
                "power-cycle the board into FEL; check the code ends with 'bx lr'"
            ) from None

    def jump(self, address: int) -> None:
        """EXEC code that never returns to FEL (U-Boot, a warm reset), without awaiting its status.

        Only the USB acknowledgement of the EXEC message is read. sunxi-fel reads
        the status even here and gets it, which suggests the ROM answers before it
        calls the code; a model or ROM that answers only after the call would make
        us wait out the time-out for nothing, so the status is not asked for.
        """
        check_range(address, 4)
        self._command(protocol.FEL_EXEC, address, 0)

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
        self._usb_write(protocol.build_fel_message(command, address, length))

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
        protocol.check_usb_response(self.transport.bulk_in(protocol.USB_RESPONSE_SIZE))

    def _usb_read(self, length: int, progress: Progress | None = None) -> bytearray:
        # Filled in place and returned as is: a final bytes() copy would double the
        # peak memory of a large read.
        self.transport.bulk_out(protocol.build_usb_request(protocol.USB_DIRECTION_READ, length))
        buffer = bytearray(length)
        received = 0
        while received < length:
            chunk = self.transport.bulk_in(min(MAX_BULK_TRANSFER, length - received))
            if not chunk:
                raise ProtocolError(
                    f"the device sent an empty transfer after {received} of {length} bytes: "
                    "power-cycle the board into FEL and retry"
                )
            if len(chunk) > length - received:
                raise ProtocolError(
                    f"the device sent {received + len(chunk)} bytes where {length} were asked"
                )
            buffer[received : received + len(chunk)] = chunk
            received += len(chunk)
            if progress is not None:
                progress(len(chunk))
        protocol.check_usb_response(self.transport.bulk_in(protocol.USB_RESPONSE_SIZE))
        return buffer

    @contextmanager
    def _dram_hang_explained(self, address: int, length: int, doing: str) -> Iterator[None]:
        """Turn a time-out while touching DRAM into the likely cause: no SPL has run yet."""
        soc = self.soc  # asked before the risky transfer: a hung board cannot say who it is
        try:
            yield
        except DeviceTimeout:
            if soc is not None and address + length > soc.dram_base:
                raise DeviceTimeout(
                    f"the device stopped answering while {doing} 0x{address:08x} in DRAM: DRAM "
                    "works only after an SPL has run; power-cycle the board into FEL and run "
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
        soc, room = self._thunk_scratch("read registers")
        per_batch = max_readl_words(room)
        words: list[int] = []
        for first in range(0, len(addresses), per_batch):
            batch = addresses[first : first + per_batch]
            with self._dram_hang_explained(max(batch), 4, "reading"):
                result = self._run_thunk(soc, build_readl(batch))
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
        soc, room = self._thunk_scratch("write registers")
        per_batch = max_writel_pairs(room)
        for first in range(0, len(pairs), per_batch):
            batch = pairs[first : first + per_batch]
            with self._dram_hang_explained(max(address for address, _ in batch), 4, "writing"):
                self._run_thunk(soc, build_writel(batch))

    def sid(self) -> bytes:
        """The 16-byte SID (e-fuse chip id): four little-endian words, first word first."""
        soc, _ = self._thunk_scratch("read the SID")
        if soc.sid_base is None:
            raise DeviceError(
                f"the {soc.name} has no SID felboot knows how to read: "
                "tell boards apart by their USB port instead"
            )
        if not soc.sid_needs_registers:
            first = soc.sid_base + soc.sid_offset
            return sid_bytes(self.read_words([first + 4 * i for i in range(SID_WORDS)]))
        payload = build_sid_registers(soc.sid_base, SID_WORDS)
        readout = parse_sid_result(self._run_thunk(soc, payload), SID_WORDS)
        if readout.timed_out:
            raise DeviceError(
                f"the {soc.name} SID controller at 0x{soc.sid_base:08x} never finished reading "
                f"e-fuse word 0x{4 * len(readout.words):02x} (SID_PRCTL stayed busy): "
                "power-cycle the board into FEL and retry"
            )
        return sid_bytes(readout.words)

    def reset(self) -> None:
        """Reset the SoC through its watchdog; the board leaves FEL.

        The watchdog fires while (or soon after) the writel thunk runs, so the
        ROM may never send the EXEC's status: the USB device vanishes first. A
        time-out or disappearance AFTER the write went out is therefore the
        expected outcome, not a failure. This FelDevice is useless afterwards.
        """
        soc, _ = self._thunk_scratch("reset the board")
        if soc.watchdog is None:
            raise DeviceError(
                f"the {soc.name} has no watchdog felboot knows of: power-cycle the board instead"
            )
        payload = build_writel([(soc.watchdog.register, soc.watchdog.value)])
        self.write(soc.scratch_addr, payload.data)
        try:
            self.execute(soc.scratch_addr)
        except (DeviceTimeout, DeviceGone) as exc:
            log.info("no EXEC status after the watchdog write, as expected on reset: %s", exc)

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

    def _run_thunk(self, soc: SocInfo, payload: ThunkPayload) -> bytes:
        """Upload ``payload`` to the scratch address, call it, and read back its results."""
        self.write(soc.scratch_addr, payload.data)
        self.execute(soc.scratch_addr)
        if payload.result_size == 0:
            return b""
        return bytes(self.read(soc.scratch_addr + payload.result_offset, payload.result_size))


def iter_chunks(data: bytes | bytearray | memoryview, size: int) -> Iterator[memoryview]:
    """Slices of ``data`` no longer than ``size`` bytes, without copying."""
    view = memoryview(data)
    for offset in range(0, len(view), size):
        yield view[offset : offset + size]
