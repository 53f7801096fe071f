"""Serve felboot's device model to the libusb stand-in over a Unix socket.

    python -m felboot.sim.standin_server --socket PATH [--device-spec sim:soc=a64,dram=2G]
                                         [--state FILE] [--fault N:KIND ...]

The C library in felboot/sim/standin/ (built as libusb-1.0.so.0) turns every
libusb bulk transfer of an unmodified client (Debian's sunxi-fel, pyusb) into
one request on PATH; this process answers it from a SimTransport, so the
reference client and felboot's real USB path both meet the same model.

Socket wire (ours; the C side is felboot/sim/standin/libusb_standin.c):

    request  u8 op ('O' host->device, 'I' device->host), u8 endpoint,
             u32 length, u32 timeout_ms, then `length` data bytes for 'O'
    reply    i32 libusb status, u32 length (bytes moved), then the data for 'I'

All integers little-endian. The client connects in libusb_open() and
disconnects in libusb_close(); connections are served one after the other and
share the one board. The device is "on the bus" while PATH exists: when the
board leaves FEL the socket file is removed, later transfers answer
LIBUSB_ERROR_NO_DEVICE, and the server exits when the client lets go.

Model errors map to libusb's: DeviceTimeout -> LIBUSB_ERROR_TIMEOUT (answered at
once: a hung board never makes the client wait), DeviceGone ->
LIBUSB_ERROR_NO_DEVICE.

Faults (``--fault N:KIND``, N counts bulk transfers from 1 over the server's life):

    timeout  transfer N answers LIBUSB_ERROR_TIMEOUT and never reaches the model
    stall    transfer N answers LIBUSB_ERROR_PIPE and never reaches the model
    gone     at transfer N the device drops off the bus: no answer, connection
             closed, socket removed (the client sees LIBUSB_ERROR_NO_DEVICE)
    die      at transfer N this process dies (os._exit) without answering
    short    the first IN at or after N returns half of what the model sent;
             the rest comes with the next IN, as a device ending a transfer
             with a short packet does
    zlp      the first IN at or after N returns a zero-length packet; the data
             comes with the next IN

``--state FILE`` gets JSON with every bulk transfer, the FEL commands decoded
from them, the faults that fired and the board's final state (events,
dram_ready, hung/hang_reason, left_fel/leave_reason). It is written when a
connection closes, when a fault fires and when the server exits.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import construct as cs

from felboot import protocol
from felboot.devices import SimSpec, parse_device_spec
from felboot.errors import DeviceGone, DeviceTimeout, FelbootError, ProtocolError, UsageError
from felboot.sim.transport import SimTransport

log = logging.getLogger(__name__)

# libusb.h's status codes (enum libusb_error).
LIBUSB_SUCCESS = 0
LIBUSB_ERROR_NO_DEVICE = -4
LIBUSB_ERROR_TIMEOUT = -7
LIBUSB_ERROR_PIPE = -9

OP_OUT = b"O"
OP_IN = b"I"

StandinRequest = cs.Struct(
    "op" / cs.OneOf(cs.Bytes(1), [OP_OUT, OP_IN]),
    "endpoint" / cs.Int8ul,
    "length" / cs.Int32ul,
    "timeout_ms" / cs.Int32ul,
)
REQUEST_SIZE = StandinRequest.sizeof()

StandinReply = cs.Struct(
    "status" / cs.Int32sl,
    "length" / cs.Int32ul,
)

FAULT_KINDS = ("timeout", "stall", "gone", "die", "short", "zlp")
IN_FAULTS = ("short", "zlp")

FEL_COMMAND_NAMES = {
    protocol.FEL_VERSION: "VERSION",
    protocol.FEL_WRITE: "WRITE",
    protocol.FEL_EXEC: "EXEC",
    protocol.FEL_READ: "READ",
}


def parse_fault(text: str) -> tuple[int, str]:
    """ "12:stall" -> (12, "stall")."""
    number, _, kind = text.partition(":")
    if not number.isdigit() or int(number) < 1 or kind not in FAULT_KINDS:
        raise UsageError(
            f"--fault {text!r}: write N:KIND with N >= 1 the bulk transfer number and KIND one "
            f"of {', '.join(FAULT_KINDS)} (e.g. --fault 5:stall)"
        )
    return int(number), kind


class FelCommandLog:
    """The FEL commands in a stream of bulk OUT transfers, decoded with felboot.protocol.

    Only host->device payloads matter: a FEL message, or the data of the WRITE
    announced by the message before it.
    """

    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []
        self.undecoded = 0  # OUT transfers that fit no framing (the model hangs on those)
        self._payload_left = 0
        self._payload = bytearray()
        self._write_data_due = False

    def feed_out(self, data: bytes, transfer: int) -> None:
        """Take bulk OUT number ``transfer``; a FEL message it completes is logged with it."""
        if self._payload_left == 0:
            try:
                request = protocol.parse_usb_request(data)
            except ProtocolError:
                self.undecoded += 1
                return
            if request.direction == protocol.USB_DIRECTION_WRITE and request.length:
                self._payload_left = request.length
                self._payload = bytearray()
            return
        take = data[: self._payload_left]
        self._payload += take
        self._payload_left -= len(take)
        if self._payload_left == 0:
            self._take_payload(bytes(self._payload), transfer)

    def _take_payload(self, payload: bytes, transfer: int) -> None:
        if self._write_data_due:
            self._write_data_due = False
            return
        try:
            message = protocol.parse_fel_message(payload)
        except ProtocolError:
            self.undecoded += 1
            return
        name = FEL_COMMAND_NAMES.get(message.command, f"0x{message.command:03x}")
        self.commands.append(
            {
                "command": name,
                "address": message.address,
                "length": message.length,
                "transfer": transfer,
            }
        )
        self._write_data_due = message.command == protocol.FEL_WRITE and message.length > 0


@dataclass
class Faults:
    """What to break, by bulk transfer number."""

    at: dict[int, str] = field(default_factory=dict)
    armed_in: list[tuple[int, str]] = field(default_factory=list)  # short/zlp waiting for an IN
    fired: list[dict[str, Any]] = field(default_factory=list)

    def take(self, number: int, is_in: bool) -> str | None:
        """The fault transfer ``number`` suffers, if any (and remember that it fired)."""
        kind = self.at.pop(number, None)
        if kind in IN_FAULTS:
            self.armed_in.append((number, kind))
            kind = None
        if kind is None and is_in and self.armed_in:
            _, kind = self.armed_in.pop(0)
        if kind is not None:
            self.fired.append({"transfer": number, "kind": kind})
        return kind


class _ConnectionClosed(Exception):
    """The client went away (libusb_close, exit or crash)."""


class StandinServer:
    """One board, served on one socket path."""

    def __init__(
        self, path: Path, device_spec: str, state: Path | None, faults: list[tuple[int, str]]
    ) -> None:
        parsed = parse_device_spec(device_spec)
        if not isinstance(parsed, SimSpec):
            raise UsageError(
                f"--device-spec {device_spec!r}: the stand-in serves the device model only: "
                "use sim or sim:soc=a64,dram=2G"
            )
        import felboot.sim

        self.transport: SimTransport = felboot.sim.open_sim(parsed.options)
        self.path = path
        self.device_spec = device_spec
        self.state_path = state
        self.faults = Faults(at=dict(faults))
        self.fel = FelCommandLog()
        self.transfers: list[dict[str, Any]] = []
        self.connections = 0
        self.on_bus = False
        self._pending_in = b""  # the rest of an IN cut short by a fault
        self._listener: socket.socket | None = None

    # Bus presence ---------------------------------------------------------------------

    def listen(self) -> None:
        """Bind under a temporary name and rename, so the path appears only once it accepts."""
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        partial.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(partial))
        listener.listen(4)
        partial.replace(self.path)
        self._listener = listener
        self.on_bus = True

    def leave_bus(self) -> None:
        if self.on_bus:
            self.on_bus = False
            self.path.unlink(missing_ok=True)

    # Serving ---------------------------------------------------------------------------------

    def serve(self) -> None:
        """Serve connections until the device has left the bus and its last client let go."""
        assert self._listener is not None
        while self.on_bus:
            connection, _ = self._listener.accept()
            self.connections += 1
            log.info("connection %d", self.connections)
            with connection:
                try:
                    while True:
                        self._serve_one(connection)
                except _ConnectionClosed:
                    pass
            self.write_state()
        self._listener.close()

    def _serve_one(self, connection: socket.socket) -> None:
        header = _receive(connection, REQUEST_SIZE)
        request = StandinRequest.parse(header)
        is_in = request.op == OP_IN
        data = b"" if is_in else _receive(connection, request.length)
        number = len(self.transfers) + 1
        fault = self.faults.take(number, is_in)
        record: dict[str, Any] = {
            "n": number,
            "dir": "in" if is_in else "out",
            "endpoint": request.endpoint,
            "length": request.length,
        }
        self.transfers.append(record)
        if fault == "die":
            record.update(status=None, moved=0, fault=fault)
            self.write_state()
            os._exit(3)
        if fault == "gone":
            record.update(status=LIBUSB_ERROR_NO_DEVICE, moved=0, fault=fault)
            self.leave_bus()
            self.write_state()
            raise _ConnectionClosed  # the caller closes the socket without an answer
        status, answer = self._transfer(number, is_in, request.length, data, fault)
        moved = len(answer) if is_in else (len(data) if status == LIBUSB_SUCCESS else 0)
        record.update(status=status, moved=moved)
        if fault:
            record["fault"] = fault
            self.write_state()
        connection.sendall(bytes(StandinReply.build(dict(status=status, length=moved))) + answer)
        if self.transport.board.left_fel:
            self.leave_bus()  # a board that started U-Boot drops off USB

    def _transfer(
        self, number: int, is_in: bool, length: int, data: bytes, fault: str | None
    ) -> tuple[int, bytes]:
        if fault == "timeout":
            return LIBUSB_ERROR_TIMEOUT, b""
        if fault == "stall":
            return LIBUSB_ERROR_PIPE, b""
        if not self.on_bus:
            return LIBUSB_ERROR_NO_DEVICE, b""
        try:
            if not is_in:
                self.transport.bulk_out(data)
                self.fel.feed_out(data, number)
                return LIBUSB_SUCCESS, b""
            if self._pending_in:
                answer, self._pending_in = self._pending_in[:length], self._pending_in[length:]
            else:
                answer = self.transport.bulk_in(length)
        except DeviceTimeout as error:
            log.info("transfer: %s", error)
            return LIBUSB_ERROR_TIMEOUT, b""
        except DeviceGone as error:
            log.info("transfer: %s", error)
            self.leave_bus()
            return LIBUSB_ERROR_NO_DEVICE, b""
        keep = {"short": max(1, len(answer) // 2), "zlp": 0}.get(fault or "", len(answer))
        answer, self._pending_in = answer[:keep], answer[keep:]
        return LIBUSB_SUCCESS, answer

    # State -------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        board = self.transport.board
        return {
            "device": self.device_spec,
            "socket": str(self.path),
            "connections": self.connections,
            "transfers": self.transfers,
            "fel_commands": self.fel.commands,
            "undecoded_out": self.fel.undecoded,
            "faults_fired": self.faults.fired,
            "events": [asdict(event) for event in board.events],
            "dram_ready": board.dram_ready,
            "hung": board.hung,
            "hang_reason": board.hang_reason,
            "left_fel": board.left_fel,
            "leave_reason": board.leave_reason,
        }

    def write_state(self) -> None:
        if self.state_path is None:
            return
        partial = self.state_path.with_name(f".{self.state_path.name}.tmp")
        partial.write_text(json.dumps(self.state(), indent=1))
        partial.replace(self.state_path)


def _receive(connection: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = connection.recv(min(size - len(chunks), 1 << 20))
        if not chunk:
            raise _ConnectionClosed
        chunks += chunk
    return bytes(chunks)


def _stop(signum: int, frame: object) -> NoReturn:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m felboot.sim.standin_server",
        description="serve felboot's FEL device model to the libusb stand-in",
    )
    parser.add_argument("--socket", type=Path, required=True, help="Unix socket path to serve on")
    parser.add_argument("--device-spec", default="sim", help="sim[:soc=a20,dram=1G,sid=...]")
    parser.add_argument("--state", type=Path, help="write the transfer log and board state here")
    parser.add_argument(
        "--fault", action="append", default=[], metavar="N:KIND",
        help=f"break bulk transfer N: {', '.join(FAULT_KINDS)}",
    )  # fmt: skip
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        faults = [parse_fault(text) for text in args.fault]
        server = StandinServer(args.socket, args.device_spec, args.state, faults)
        server.listen()
    except (FelbootError, OSError) as error:
        print(f"standin_server: {error}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
    finally:
        server.leave_bus()
        server.write_state()
    return 0


if __name__ == "__main__":
    sys.exit(main())
