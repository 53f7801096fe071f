"""A Transport that plays a fixed script of device answers and records what the host sent.

Sits exactly at the transport boundary, like the replay mock; tests use it to feed
the client malformed or hostile answers that neither the device model nor a real
board would give on purpose.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from felboot import protocol
from felboot.errors import DeviceTimeout
from felboot.transport import Transport


class ScriptedTransport(Transport):
    description = "scripted device"

    def __init__(self, answers: Iterable[bytes | Exception] = ()) -> None:
        self.answers: deque[bytes | Exception] = deque(answers)
        self.sent: list[bytes] = []

    def bulk_out(self, data: bytes | memoryview) -> None:
        self.sent.append(bytes(data))

    def bulk_in(self, length: int) -> bytes:
        if not self.answers:
            raise DeviceTimeout("scripted device: no answer left")
        answer = self.answers.popleft()
        if isinstance(answer, Exception):
            raise answer
        return answer


OK_RESPONSE = protocol.build_usb_response()
OK_STATUS = protocol.build_fel_status()


def version_answers(soc_id: int = 0x1651, scratchpad: int = 0x7E00) -> list[bytes | Exception]:
    """The device side of one successful VERSION command."""
    return [
        OK_RESPONSE,  # FEL message accepted
        protocol.build_version_answer(soc_id, scratchpad),
        OK_RESPONSE,
        OK_STATUS,
        OK_RESPONSE,
    ]


def write_answers() -> list[bytes | Exception]:
    """The device side of one successful FEL WRITE (any size)."""
    return [OK_RESPONSE, OK_RESPONSE, OK_STATUS, OK_RESPONSE]
