"""The Transport boundary: bulk OUT and bulk IN, nothing else.

Everything above this line (fel.py, boot.py, run.py) speaks only these two
calls; everything below it is either the real pyusb device, the device model
(felboot.sim) or a replayed transcript (felboot.transcript). The mock sits here
and nowhere else.
"""

from __future__ import annotations

import array
import errno
import logging
import shlex
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from felboot.errors import (
    DeviceError,
    DeviceGone,
    DeviceTimeout,
    FelbootError,
    PermissionDenied,
    ProtocolError,
)

log = logging.getLogger(__name__)

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

    def pause(self, seconds: float, why: str) -> None:
        """Leave the device alone for ``seconds`` (``why`` goes to the log).

        A real ROM needs it at one point (after the SPL's EXEC, see boot.py);
        a model or a replay has no clock to respect and overrides this.
        """
        log.info("pausing %.2f s: %s", seconds, why)
        time.sleep(seconds)

    def close(self) -> None:  # noqa: B027 - most transports hold nothing to release
        """Release the device. Safe to call twice."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# The real device ------------------------------------------------------------
#
# pyusb is imported inside the functions below, not at module level, so that
# `felboot --help` and the pure modules never pay for loading libusb.

FEL_VENDOR_ID = 0x1F3A
FEL_PRODUCT_ID = 0xEFE8

# Time-outs are sized for the slowest ROM in the field: full-speed USB moves
# about 0.3 MB/s, so 200 KiB/s leaves a margin. The 10 s floor is what the
# reference tool uses for every transfer (USB_TIMEOUT in sunxi-tools' fel_lib.c);
# it also covers the request after an EXEC, which the ROM leaves unanswered
# until the called code (an SPL initialising DRAM) has returned.
SLOWEST_BYTES_PER_SECOND = 200 * 1024
MIN_TRANSFER_TIMEOUT_MS = 10_000

# sudo's secure PATH seldom holds a venv's or pipx's felboot: the second form always works.
_UDEV_HINT = (
    "install the udev rule: sudo felboot udev --install (if sudo cannot find felboot, "
    f"as with a venv or pipx: sudo {shlex.quote(sys.executable)} -m felboot udev --install), "
    "or run as root"
)
_LIBUSB_HINT = (
    "cannot load libusb-1.0, which felboot needs to reach USB devices: install it "
    "(Debian/Ubuntu: sudo apt install libusb-1.0-0; Fedora: sudo dnf install libusb1; "
    "macOS: brew install libusb) or pip install libusb-package"
)


def transfer_timeout_ms(size: int) -> int:
    """Milliseconds to allow one bulk transfer of ``size`` bytes on the slowest ROM."""
    at_slowest_rate = -(-size * 1000 // SLOWEST_BYTES_PER_SECOND)  # ceiling division
    return max(MIN_TRANSFER_TIMEOUT_MS, at_slowest_rate)


def format_port_path(bus: int, port_numbers: Sequence[int] | None) -> str | None:
    """The kernel's name for a USB port chain: bus 1, ports (1, 2) -> "1-1.2".

    Bus and address change every time a board is re-plugged or reset into FEL;
    the port path stays the same as long as the cable goes into the same socket.
    """
    if not port_numbers:
        return None
    return f"{bus}-" + ".".join(str(port) for port in port_numbers)


@dataclass(frozen=True)
class UsbDeviceInfo:
    """A FEL device seen on the bus, not yet opened."""

    bus: int
    address: int
    port_path: str | None = None

    @property
    def spec(self) -> str:
        """The --device value that picks this device now: "usb:1:7"."""
        return f"usb:{self.bus}:{self.address}"

    @property
    def stable_spec(self) -> str:
        """The --device value that survives re-plugging: "usb:port=1-1.2" when known."""
        return f"usb:port={self.port_path}" if self.port_path else self.spec

    @property
    def description(self) -> str:
        """ "usb 1:7 (port 1-1.2)", or "usb 1:7" when the port path is unknown."""
        name = f"usb {self.bus}:{self.address}"
        return f"{name} (port {self.port_path})" if self.port_path else name


def map_usb_error(error: OSError, device: str, transfer: str | None = None) -> FelbootError:
    """Turn a pyusb error into the felboot error a user can act on.

    ``device`` names the device ("usb 1:7 (port 1-1.2)"); ``transfer`` says what
    was moving ("bulk IN of 13 bytes"), or is None while the device is opened.
    """
    import usb.core

    code = error.errno
    text = str(getattr(error, "strerror", None) or error)
    if isinstance(error, usb.core.USBTimeoutError) or code == errno.ETIMEDOUT:
        what = transfer or "opening it"
        return DeviceTimeout(
            f"{device} did not answer within the time-out ({what}): "
            "power-cycle the board into FEL and retry"
        )
    if code == errno.EACCES or "access denied" in text.lower():
        return PermissionDenied(f"cannot open {device}: permission denied: {_UDEV_HINT}")
    if code == errno.ENODEV or "no such device" in text.lower():
        when = "in the middle of a transfer" if transfer else "while being opened"
        return DeviceGone(
            f"{device} disappeared {when}: check the cable/power, put the board in FEL again"
        )
    if code == errno.EBUSY:
        return DeviceError(
            f"{device} is busy: another program (sunxi-fel, another felboot) has claimed it; "
            "close that program and retry"
        )
    if code == errno.EOVERFLOW:
        return ProtocolError(
            f"{device} sent more data than asked for ({transfer or 'opening it'}): "
            "power-cycle the board into FEL and retry"
        )
    if code == errno.EPIPE:
        return DeviceError(
            f"{device} stalled the {transfer or 'control request'}: "
            "power-cycle the board into FEL and retry"
        )
    return DeviceError(
        f"USB error on {device} ({transfer or 'opening it'}): {text}: "
        "replug the board in FEL mode and retry"
    )


@dataclass(frozen=True)
class BulkEndpoints:
    """The interface to claim and its two bulk endpoint addresses."""

    interface: int
    out_address: int
    in_address: int


def select_bulk_endpoints(configuration: Iterable[Any], device: str) -> BulkEndpoints:
    """Find, from the descriptors, the interface with one bulk OUT and one bulk IN endpoint.

    ``configuration`` is a pyusb Configuration (iterating it yields interfaces,
    iterating an interface yields endpoints). The boot ROM has exactly one such
    interface; numbers are read, never assumed.
    """
    import usb.util

    for interface in configuration:
        if interface.bAlternateSetting != 0:
            continue
        out_address = in_address = None
        for endpoint in interface:
            if usb.util.endpoint_type(endpoint.bmAttributes) != usb.util.ENDPOINT_TYPE_BULK:
                continue
            direction = usb.util.endpoint_direction(endpoint.bEndpointAddress)
            if direction == usb.util.ENDPOINT_OUT and out_address is None:
                out_address = endpoint.bEndpointAddress
            elif direction == usb.util.ENDPOINT_IN and in_address is None:
                in_address = endpoint.bEndpointAddress
        if out_address is not None and in_address is not None:
            return BulkEndpoints(interface.bInterfaceNumber, out_address, in_address)
    raise DeviceError(
        f"{device} has no interface with a bulk OUT and a bulk IN endpoint, which every "
        f"FEL device ({FEL_VENDOR_ID:04x}:{FEL_PRODUCT_ID:04x}) has: replug the board in FEL mode"
    )


def _system_libusb() -> Any:
    import usb.backend.libusb1

    return usb.backend.libusb1.get_backend()


def _bundled_libusb() -> Any:
    try:
        import libusb_package
    except ImportError:
        return None
    return libusb_package.get_libusb1_backend()


def load_backend(
    loaders: Sequence[Callable[[], Any]] = (_system_libusb, _bundled_libusb),
) -> Any:
    """The first libusb-1.0 backend that loads: the system's, else the libusb-package wheel's."""
    for loader in loaders:
        backend = loader()
        if backend is not None:
            return backend
    raise DeviceError(_LIBUSB_HINT)


def find_fel_devices() -> list[UsbDeviceInfo]:
    """Every device on the bus with the FEL vendor/product id, ordered by bus and address."""
    import usb.core

    backend = load_backend()
    try:
        found = usb.core.find(
            find_all=True, idVendor=FEL_VENDOR_ID, idProduct=FEL_PRODUCT_ID, backend=backend
        )
        infos = [
            UsbDeviceInfo(dev.bus, dev.address, format_port_path(dev.bus, dev.port_numbers))
            for dev in found
        ]
    except usb.core.USBError as error:
        raise map_usb_error(error, "the USB bus (listing FEL devices)") from error
    return sorted(infos, key=lambda info: (info.bus, info.address))


def open_usb(info: UsbDeviceInfo) -> UsbTransport:
    """Open and claim the FEL device ``info`` names."""
    import usb.core
    import usb.util

    backend = load_backend()
    device = usb.core.find(
        idVendor=FEL_VENDOR_ID,
        idProduct=FEL_PRODUCT_ID,
        bus=info.bus,
        address=info.address,
        backend=backend,
    )
    if device is None:
        raise DeviceGone(
            f"{info.description} is no longer on the bus: check the cable/power, "
            "put the board in FEL again"
        )
    name = info.description
    detached = False
    try:
        try:
            configuration = device.get_active_configuration()
        except usb.core.USBError as error:
            if error.errno in (errno.EACCES, errno.ENODEV):
                raise
            # Unconfigured (no kernel picked a configuration): take the first one.
            device.set_configuration()
            configuration = device.get_active_configuration()
        endpoints = select_bulk_endpoints(configuration, name)
        try:
            if device.is_kernel_driver_active(endpoints.interface):
                device.detach_kernel_driver(endpoints.interface)
                detached = True
        except NotImplementedError:
            pass  # Windows and macOS have no detachable kernel drivers
        usb.util.claim_interface(device, endpoints.interface)
    except usb.core.USBError as error:
        usb.util.dispose_resources(device)
        raise map_usb_error(error, name) from error
    log.debug(
        "opened %s: interface %d, bulk OUT 0x%02x, bulk IN 0x%02x",
        name,
        endpoints.interface,
        endpoints.out_address,
        endpoints.in_address,
    )
    return UsbTransport(device, endpoints, name, reattach_kernel_driver=detached)


class UsbTransport(Transport):
    """A claimed FEL device: bulk transfers through pyusb with slow-ROM time-outs.

    Built by open_usb(); the constructor takes an already claimed pyusb device.
    """

    def __init__(
        self,
        device: Any,
        endpoints: BulkEndpoints,
        description: str,
        *,
        reattach_kernel_driver: bool = False,
    ) -> None:
        self._device = device
        self._endpoints = endpoints
        self.description = description
        self._reattach = reattach_kernel_driver
        self._closed = False

    def bulk_out(self, data: bytes | memoryview) -> None:
        import usb.core

        size = len(data)
        what = f"bulk OUT of {size} bytes"
        # pyusb copies anything but an array('B') element by element: hand it one.
        buffer = array.array("B")
        buffer.frombytes(data)
        try:
            written = self._device.write(
                self._endpoints.out_address, buffer, timeout=transfer_timeout_ms(size)
            )
        except usb.core.USBError as error:
            raise map_usb_error(error, self.description, what) from error
        if written != size:
            raise DeviceError(
                f"{self.description} accepted only {written} bytes of a {what}: "
                "power-cycle the board into FEL and retry"
            )

    def bulk_in(self, length: int) -> bytes:
        import usb.core

        try:
            data = self._device.read(
                self._endpoints.in_address, length, timeout=transfer_timeout_ms(length)
            )
        except usb.core.USBError as error:
            raise map_usb_error(error, self.description, f"bulk IN of {length} bytes") from error
        return bytes(data.tobytes())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        import usb.core
        import usb.util

        interface = self._endpoints.interface
        try:
            usb.util.release_interface(self._device, interface)
            if self._reattach:
                self._device.attach_kernel_driver(interface)
        except (usb.core.USBError, NotImplementedError) as error:
            # The device may already be gone (reset into U-Boot, unplugged): nothing to free.
            log.debug("releasing %s: %s", self.description, error)
        usb.util.dispose_resources(self._device)
