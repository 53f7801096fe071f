"""The FEL wire protocol: every struct declared once, with construct. No I/O.

Two layers (see ../shared/reference/fel.md, linux-sunxi wiki FEL/Protocol):

* the USB layer frames every payload: a 32-byte ``AWUC`` request announces the
  direction and length, the payload follows (possibly as several bulk
  transfers), and a 13-byte ``AWUS`` response closes the exchange;
* the FEL layer sends a 16-byte command message as a host->device payload,
  then the command's own data phase, then reads an 8-byte status.

The device model in felboot.sim parses the same declarations from the other
side, so client and model cannot drift apart on layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import construct as cs

from felboot.errors import ProtocolError

# USB layer ---------------------------------------------------------------

USB_SIGNATURE_REQUEST = b"AWUC"
USB_SIGNATURE_RESPONSE = b"AWUS"
USB_DIRECTION_WRITE = 0x12  # host -> device
USB_DIRECTION_READ = 0x11  # device -> host
USB_REQUEST_MAGIC = 0x0C000000

UsbRequest = cs.Struct(
    "signature" / cs.Const(USB_SIGNATURE_REQUEST),
    cs.Padding(4),
    "length" / cs.Int32ul,
    "magic" / cs.Const(USB_REQUEST_MAGIC, cs.Int32ul),
    "direction" / cs.OneOf(cs.Int16ul, [USB_DIRECTION_WRITE, USB_DIRECTION_READ]),
    "length_again" / cs.Int32ul,
    cs.Padding(10),
)
USB_REQUEST_SIZE = 32

UsbResponse = cs.Struct(
    "signature" / cs.Const(USB_SIGNATURE_RESPONSE),
    "tag" / cs.Int32ul,
    "residue" / cs.Int32ul,
    "status" / cs.Int8ul,
)
USB_RESPONSE_SIZE = 13

# FEL layer ---------------------------------------------------------------

FEL_VERSION = 0x001
FEL_WRITE = 0x101
FEL_EXEC = 0x102
FEL_READ = 0x103

FelMessage = cs.Struct(
    "command" / cs.Int32ul,
    "address" / cs.Int32ul,
    "length" / cs.Int32ul,
    cs.Padding(4),
)
FEL_MESSAGE_SIZE = 16

FEL_STATUS_MARK = 0xFFFF
FelStatus = cs.Struct(
    "mark" / cs.Const(FEL_STATUS_MARK, cs.Int16ul),
    "tag" / cs.Int16ul,
    "state" / cs.Int8ul,
    cs.Padding(3),
)
FEL_STATUS_SIZE = 8

FEL_VERSION_SIGNATURE = b"AWUSBFEX"
FelVersionAnswer = cs.Struct(
    "signature" / cs.Const(FEL_VERSION_SIGNATURE),
    "soc_word" / cs.Int32ul,  # SoC id shifted left by 8: A20 answers 0x00165100
    "firmware" / cs.Int32ul,
    "protocol" / cs.Int16ul,
    "unknown_12" / cs.Int8ul,
    "unknown_13" / cs.Int8ul,
    "scratchpad" / cs.Int32ul,
    cs.Padding(8),
)
FEL_VERSION_SIZE = 32


@dataclass(frozen=True)
class FelVersion:
    """What the boot ROM says about itself."""

    soc_id: int
    firmware: int
    protocol: int
    scratchpad: int


# Building ------------------------------------------------------------------


def build_usb_request(direction: int, length: int) -> bytes:
    return bytes(UsbRequest.build(dict(length=length, direction=direction, length_again=length)))


def build_usb_response(tag: int = 0, residue: int = 0, status: int = 0) -> bytes:
    return bytes(UsbResponse.build(dict(tag=tag, residue=residue, status=status)))


def build_fel_message(command: int, address: int = 0, length: int = 0) -> bytes:
    return bytes(FelMessage.build(dict(command=command, address=address, length=length)))


def build_fel_status(tag: int = 0, state: int = 0) -> bytes:
    return bytes(FelStatus.build(dict(tag=tag, state=state)))


def build_version_answer(
    soc_id: int, scratchpad: int, firmware: int = 1, protocol: int = 1
) -> bytes:
    return bytes(
        FelVersionAnswer.build(
            dict(
                soc_word=soc_id << 8,
                firmware=firmware,
                protocol=protocol,
                unknown_12=0x44,
                unknown_13=0x08,
                scratchpad=scratchpad,
            )
        )
    )


# Parsing -------------------------------------------------------------------


def _parse(struct: Any, size: int, data: bytes | bytearray, what: str) -> Any:
    """Parse exactly ``size`` bytes as ``struct`` or raise a ProtocolError naming ``what``."""
    if len(data) != size:
        raise ProtocolError(
            f"the device sent {len(data)} bytes where a {size}-byte {what} was expected: "
            "power-cycle the board into FEL and retry"
        )
    try:
        return struct.parse(data)
    except cs.ConstructError:
        raise ProtocolError(
            f"the device sent a malformed {what} ({data[:16].hex()}...): "
            "power-cycle the board into FEL and retry"
        ) from None


def parse_usb_request(data: bytes | bytearray) -> Any:
    request = _parse(UsbRequest, USB_REQUEST_SIZE, data, "USB request")
    if request.length != request.length_again:
        raise ProtocolError(
            f"USB request announces two lengths ({request.length} and {request.length_again})"
        )
    return request


def check_usb_response(data: bytes | bytearray) -> None:
    """A USB-layer response must say AWUS with status 0."""
    response = _parse(UsbResponse, USB_RESPONSE_SIZE, data, "USB response (AWUS)")
    if response.status != 0:
        raise ProtocolError(
            f"the device answered USB status {response.status} instead of 0: "
            "power-cycle the board into FEL and retry"
        )


def parse_fel_message(data: bytes | bytearray) -> Any:
    return _parse(FelMessage, FEL_MESSAGE_SIZE, data, "FEL message")


def check_fel_status(data: bytes | bytearray, command: str) -> None:
    """The 8-byte status after every FEL command must carry the 0xffff mark and state 0."""
    status = _parse(FelStatus, FEL_STATUS_SIZE, data, f"FEL status after {command}")
    if status.state != 0:
        raise ProtocolError(
            f"the boot ROM refused {command} (FEL state {status.state}): "
            "check the address is one the ROM accepts"
        )


def parse_version_answer(data: bytes | bytearray) -> FelVersion:
    answer = _parse(FelVersionAnswer, FEL_VERSION_SIZE, data, "FEL VERSION answer (AWUSBFEX)")
    return FelVersion(
        soc_id=(answer.soc_word >> 8) & 0xFFFF,
        firmware=answer.firmware,
        protocol=answer.protocol,
        scratchpad=answer.scratchpad,
    )
