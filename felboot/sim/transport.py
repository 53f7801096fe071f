"""The simulated board seen through the Transport boundary: USB framing and the FEL layer.

The model parses what the host sends with the very construct declarations the
client builds it with (felboot.protocol), from the device's side:

    USB layer   AWUC request (32 bytes) -> data phase in the announced direction
                (host->device: bulk OUTs until `length` bytes; device->host:
                bulk INs until `length` bytes) -> AWUS response (13 bytes)
    FEL layer   16-byte message -> the command's data phase -> 8-byte status

EXEC, as real boot ROMs do it: the ROM answers the status exchange first and
calls the code only after that exchange; until the code returns, the next
request goes unanswered (NAKed), and forever if it never returns. Sources:
sunxi-fel's aw_fel_execute() (fel_lib.c) reads the status after every EXEC,
also for U-Boot and the RMR reset, and exits on any USB time-out, yet
`sunxi-fel uboot` ends cleanly on real boards; public A64/H5/H618 logs print
"...RMR mode 3... done." (after that status read) before BL31 speaks. xfel's
fel_exec() and snagboot's FEL.jump() read the status too.

A host that breaks the framing (bad signature, wrong direction or length,
more bytes than announced, reading when it should write) gets what a real ROM
gives it: silence. The board is marked hung and every later transfer times out.
"""

from __future__ import annotations

import logging
from typing import NoReturn

from felboot import protocol
from felboot.errors import DeviceGone, DeviceTimeout, ProtocolError
from felboot.sim.board import SimBoard
from felboot.transport import Transport

log = logging.getLogger(__name__)

_WRITE = protocol.USB_DIRECTION_WRITE
_READ = protocol.USB_DIRECTION_READ
_DIRECTION = {_WRITE: "write", _READ: "read"}


class SimTransport(Transport):
    """A FEL device backed by a SimBoard instead of USB."""

    def __init__(self, board: SimBoard) -> None:
        self.board = board
        self.description = f"{board.name} ({board.dram_size >> 20} MiB)"
        # USB layer: "request", "out" (host sends), "in" (device sends), "response".
        self._usb = "request"
        self._out_expected = 0
        self._out = bytearray()
        self._in = b""
        self._in_offset = 0
        # FEL layer: "message", "write_data", "read_data", "status".
        self._fel = "message"
        self._command = 0
        self._address = 0
        self._length = 0
        self._pending_exec: int | None = None
        #: (seconds, why) of every Transport.pause the host asked for.
        self.pauses: list[tuple[float, str]] = []

    # Transport -------------------------------------------------------------------

    def bulk_out(self, data: bytes | memoryview) -> None:
        self._check_alive()
        data = bytes(data)
        if self._usb == "request":
            self._take_request(data)
        elif self._usb == "out":
            if len(data) > self._out_expected - len(self._out):
                self._violation(
                    f"host sent {len(self._out) + len(data)} bytes where the AWUC request "
                    f"announced {self._out_expected}"
                )
            self._out += data
            if len(self._out) == self._out_expected:
                self._usb = "response"
                self._take_payload(bytes(self._out))
        else:
            self._violation(f"host sent {len(data)} bytes while the device was to {self._due()}")

    def bulk_in(self, length: int) -> bytes:
        self._check_alive()
        if self._usb == "in":
            end = self._in_offset + min(length, len(self._in) - self._in_offset)
            chunk = self._in[self._in_offset : end]
            self._in_offset = end
            if end == len(self._in):
                self._usb = "response"
            return chunk
        if self._usb == "response":
            if length < protocol.USB_RESPONSE_SIZE:
                self._violation(
                    f"host asked for {length} bytes where the "
                    f"{protocol.USB_RESPONSE_SIZE}-byte AWUS response was due"
                )
            self._usb = "request"
            response = protocol.build_usb_response()
            if self._pending_exec is not None and self._fel == "message":
                # The EXEC's status exchange is over: only now does the ROM call the
                # code. The host has its answer; a hang shows at the next request.
                address, self._pending_exec = self._pending_exec, None
                self.board.fel_exec(address)
            return response
        self._violation(f"host read {length} bytes while the device was to {self._due()}")

    def pause(self, seconds: float, why: str) -> None:
        # The model has no clock to wait out; keep the pause so tests can see it was made.
        log.info("sim: the host pauses %.2f s (%s); the model does not wait", seconds, why)
        self.pauses.append((seconds, why))

    # States ---------------------------------------------------------------------------

    def _check_alive(self) -> None:
        board = self.board
        if board.left_fel:
            raise DeviceGone(
                f"{self.description}: device left FEL ({board.leave_reason}); "
                "power-cycle the board into FEL to talk to it again"
            )
        if board.hung:
            raise DeviceTimeout(f"{self.description}: no answer (board hung: {board.hang_reason})")

    def _violation(self, reason: str) -> NoReturn:
        self.board.hang(f"USB framing violation: {reason}")
        raise DeviceTimeout(f"{self.description}: no answer (board hung: {self.board.hang_reason})")

    def _due(self) -> str:
        return {
            "request": "receive an AWUC request",
            "out": f"receive {self._out_expected - len(self._out)} more bytes",
            "in": f"send {len(self._in) - self._in_offset} more bytes",
            "response": "send the AWUS response",
        }[self._usb]

    def _expected(self) -> tuple[int, int, str]:
        """The USB exchange the FEL layer waits for: direction, length, what it is."""
        if self._fel == "message":
            return _WRITE, protocol.FEL_MESSAGE_SIZE, "a FEL message"
        if self._fel == "write_data":
            return _WRITE, self._length, "the FEL WRITE data"
        if self._fel == "read_data":
            return _READ, self._length, "the FEL READ/VERSION data"
        return _READ, protocol.FEL_STATUS_SIZE, "the FEL status"

    def _take_request(self, data: bytes) -> None:
        try:
            request = protocol.parse_usb_request(data)
        except ProtocolError:
            self._violation(f"expected a 32-byte AWUC request, got {len(data)} bytes {data[:8]!r}")
        direction, length, what = self._expected()
        if (request.direction, request.length) != (direction, length):
            self._violation(
                f"AWUC {_DIRECTION[request.direction]} of {request.length} bytes where "
                f"{what} ({_DIRECTION[direction]} of {length} bytes) was due"
            )
        if direction == _WRITE:
            self._usb = "out"
            self._out_expected = length
            self._out = bytearray()
        else:
            self._usb = "in"
            self._in = self._produce()
            self._in_offset = 0

    # FEL layer ---------------------------------------------------------------------

    def _take_payload(self, payload: bytes) -> None:
        if self._fel == "write_data":
            self._fel = "status"
            self.board.fel_write(self._address, payload)
            return
        message = protocol.parse_fel_message(payload)
        self._command, self._address, self._length = (
            message.command,
            message.address,
            message.length,
        )
        command = self._command
        log.debug("sim: FEL 0x%03x 0x%08x %d", command, self._address, self._length)
        if command == protocol.FEL_VERSION:
            self._fel = "read_data"
            self._length = protocol.FEL_VERSION_SIZE
        elif command in (protocol.FEL_WRITE, protocol.FEL_READ):
            data_phase = "write_data" if command == protocol.FEL_WRITE else "read_data"
            self._fel = data_phase if self._length else "status"
        elif command == protocol.FEL_EXEC:
            self._fel = "status"
            self._pending_exec = self._address
        else:
            self.board.hang(f"unknown FEL command 0x{command:03x}")

    def _produce(self) -> bytes:
        """The device->host data of the current FEL phase (empty when the board hung)."""
        if self._fel == "status":
            self._fel = "message"
            return protocol.build_fel_status()
        self._fel = "status"
        if self._command == protocol.FEL_VERSION:
            return self.board.version_answer()
        data = self.board.fel_read(self._address, self._length)
        return b"" if data is None else data
