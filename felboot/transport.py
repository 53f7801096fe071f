"""The Transport boundary: bulk OUT and bulk IN, nothing else.

Everything above this line (fel.py, boot.py, run.py) speaks only these two
calls; everything below it is either the real pyusb device, the device model
(felboot.sim) or a replayed transcript (felboot.transcript). The mock sits here
and nowhere else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

# Bulk transfers are at most this large. The boot ROM accepts one FEL request
# whose data phase spans many bulk transfers; 512 KiB is what the reference tool
# uses, so every ROM in the field has seen it.
MAX_BULK_TRANSFER = 512 * 1024


class Transport(ABC):
    """One open FEL device, seen as a pair of bulk endpoints."""

    #: Human-readable name used in messages: "usb 1:7 (port 1-1.2)", "sim a20", ...
    description: str = "device"

    @abstractmethod
    def bulk_out(self, data: bytes | memoryview) -> None:
        """Send ``data`` (at most MAX_BULK_TRANSFER bytes) as one bulk OUT transfer.

        Raises DeviceTimeout, DeviceGone or DeviceError with an actionable message.
        """

    @abstractmethod
    def bulk_in(self, length: int) -> bytes:
        """Receive one bulk IN transfer of up to ``length`` bytes."""

    def close(self) -> None:  # noqa: B027 - most transports hold nothing to release
        """Release the device. Safe to call twice."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
