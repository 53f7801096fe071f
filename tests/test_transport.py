"""The pyusb transport: the parts that can be checked without a board.

pyusb's device path needs hardware, so these tests exercise the pure pieces
(time-outs, port paths, descriptor walking, error mapping, backend fallback)
with real pyusb exception objects, and UsbTransport's transfer logic over a
stand-in for the claimed pyusb device.
"""

from __future__ import annotations

import errno
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import usb.core

from felboot.errors import (
    DeviceError,
    DeviceGone,
    DeviceTimeout,
    PermissionDenied,
    ProtocolError,
)
from felboot.transport import (
    FEL_PRODUCT_ID,
    FEL_VENDOR_ID,
    MAX_BULK_TRANSFER,
    MIN_TRANSFER_TIMEOUT_MS,
    BulkEndpoints,
    UsbDeviceInfo,
    UsbTransport,
    find_fel_devices,
    format_port_path,
    load_backend,
    map_usb_error,
    select_bulk_endpoints,
    transfer_timeout_ms,
)

DEVICE = "usb 1:7 (port 1-1.2)"


# Time-outs -------------------------------------------------------------------


def test_small_transfers_get_the_ten_second_floor() -> None:
    assert transfer_timeout_ms(13) == MIN_TRANSFER_TIMEOUT_MS == 10_000
    assert transfer_timeout_ms(MAX_BULK_TRANSFER) == 10_000


def test_large_transfers_get_time_for_200_kib_per_second() -> None:
    assert transfer_timeout_ms(200 * 1024 * 30) == 30_000
    assert transfer_timeout_ms(200 * 1024 * 30 + 1) == 30_001  # rounded up, never down


# Port paths and names -------------------------------------------------------------


def test_port_path_uses_the_kernel_naming() -> None:
    assert format_port_path(1, (1, 2)) == "1-1.2"
    assert format_port_path(3, [4]) == "3-4"


def test_port_path_unknown() -> None:
    assert format_port_path(1, None) is None
    assert format_port_path(1, ()) is None


def test_device_info_names() -> None:
    info = UsbDeviceInfo(1, 7, "1-1.2")
    assert info.description == DEVICE
    assert info.spec == "usb:1:7"
    assert info.stable_spec == "usb:port=1-1.2"
    bare = UsbDeviceInfo(2, 3)
    assert bare.description == "usb 2:3"
    assert bare.stable_spec == "usb:2:3"


# Error mapping (with the exception objects pyusb's libusb1 backend raises) ---------


def usb_error(code: int, text: str) -> usb.core.USBError:
    return usb.core.USBError(text, -1, code)


def test_access_denied_points_at_the_udev_rule() -> None:
    error = map_usb_error(
        usb_error(errno.EACCES, "Access denied (insufficient permissions)"), DEVICE
    )
    assert isinstance(error, PermissionDenied)
    assert str(error).startswith(f"cannot open {DEVICE}: permission denied")
    assert "sudo felboot udev --install" in str(error)
    assert f"sudo {sys.executable} -m felboot udev --install" in str(error)


def test_access_denied_recognised_by_text_without_errno() -> None:
    error = map_usb_error(usb.core.USBError("Access denied (insufficient permissions)"), DEVICE)
    assert isinstance(error, PermissionDenied)


def test_timeout_names_device_direction_and_size() -> None:
    timeout = usb.core.USBTimeoutError("Operation timed out", -7, errno.ETIMEDOUT)
    error = map_usb_error(timeout, DEVICE, "bulk IN of 13 bytes")
    assert isinstance(error, DeviceTimeout)
    assert DEVICE in str(error)
    assert "bulk IN of 13 bytes" in str(error)


def test_vanished_device_mid_transfer() -> None:
    gone = usb_error(errno.ENODEV, "No such device (it may have been disconnected)")
    error = map_usb_error(gone, "usb 1:7", "bulk OUT of 32 bytes")
    assert isinstance(error, DeviceGone)
    assert str(error) == (
        "usb 1:7 disappeared in the middle of a transfer: check the cable/power, "
        "put the board in FEL again"
    )


def test_vanished_device_while_opening() -> None:
    error = map_usb_error(usb.core.USBError("No such device"), DEVICE)
    assert isinstance(error, DeviceGone)
    assert "while being opened" in str(error)


def test_busy_device_names_the_likely_culprit() -> None:
    error = map_usb_error(usb_error(errno.EBUSY, "Resource busy"), DEVICE)
    assert type(error) is DeviceError
    assert DEVICE in str(error) and "sunxi-fel" in str(error)


def test_overflow_is_a_protocol_error() -> None:
    error = map_usb_error(usb_error(errno.EOVERFLOW, "Overflow"), DEVICE, "bulk IN of 8 bytes")
    assert isinstance(error, ProtocolError)
    assert "bulk IN of 8 bytes" in str(error)


def test_other_errors_keep_the_libusb_text() -> None:
    error = map_usb_error(usb_error(errno.EIO, "Input/output error"), DEVICE, "bulk OUT of 4 bytes")
    assert type(error) is DeviceError
    assert "Input/output error" in str(error) and DEVICE in str(error)


# Endpoint selection from descriptors -------------------------------------------------


@dataclass
class FakeEndpoint:
    bEndpointAddress: int
    bmAttributes: int


@dataclass
class FakeInterface:
    bInterfaceNumber: int
    endpoints: list[FakeEndpoint]
    bAlternateSetting: int = 0

    def __iter__(self) -> Iterator[FakeEndpoint]:
        return iter(self.endpoints)


BULK, INTERRUPT = 0x02, 0x03


def test_endpoints_are_read_from_the_descriptors() -> None:
    config = [FakeInterface(0, [FakeEndpoint(0x82, BULK), FakeEndpoint(0x01, BULK)])]
    assert select_bulk_endpoints(config, DEVICE) == BulkEndpoints(0, 0x01, 0x82)


def test_non_bulk_endpoints_and_interfaces_are_skipped() -> None:
    config = [
        FakeInterface(0, [FakeEndpoint(0x81, INTERRUPT)]),
        FakeInterface(1, [FakeEndpoint(0x83, BULK), FakeEndpoint(0x04, BULK)], 1),  # alt 1
        FakeInterface(2, [FakeEndpoint(0x85, INTERRUPT), FakeEndpoint(0x86, BULK),
                          FakeEndpoint(0x07, BULK)]),
    ]  # fmt: skip
    assert select_bulk_endpoints(config, DEVICE) == BulkEndpoints(2, 0x07, 0x86)


def test_no_bulk_pair_is_an_error_naming_the_device() -> None:
    config = [FakeInterface(0, [FakeEndpoint(0x01, BULK)])]
    with pytest.raises(DeviceError, match=r"usb 1:7 \(port 1-1.2\) has no interface"):
        select_bulk_endpoints(config, DEVICE)


# Backend loading --------------------------------------------------------------------


def test_system_libusb_is_preferred() -> None:
    assert load_backend((lambda: "system", lambda: "bundled")) == "system"


def test_bundled_libusb_is_the_fallback() -> None:
    assert load_backend((lambda: None, lambda: "bundled")) == "bundled"


def test_no_libusb_says_how_to_install_it() -> None:
    with pytest.raises(DeviceError, match=r"cannot load libusb-1.0.*apt install libusb-1.0-0"):
        load_backend((lambda: None, lambda: None))


def test_the_default_loaders_find_a_libusb_here() -> None:
    # libusb-package is a dependency, so at least its bundled copy must load.
    assert load_backend() is not None


def test_discovery_runs_on_a_machine_without_boards() -> None:
    devices = find_fel_devices()
    assert all(isinstance(info, UsbDeviceInfo) for info in devices)
    assert devices == sorted(devices, key=lambda info: (info.bus, info.address))


# Transfers over a stand-in for the claimed pyusb device ---------------------------------


@dataclass
class FakeClaimedDevice:
    """Answers write/read like pyusb's Device; ``accept`` and ``fail`` steer it."""

    accept: int | None = None  # bytes a write reports as written; None: all
    fail: Exception | None = None
    answer: bytes = b"AWUS" + bytes(9)
    calls: list[tuple[str, int, int, int]] = field(default_factory=list)

    def write(self, endpoint: int, data: Any, timeout: int) -> int:
        self.calls.append(("write", endpoint, len(data), timeout))
        if self.fail:
            raise self.fail
        return len(data) if self.accept is None else self.accept

    def read(self, endpoint: int, length: int, timeout: int) -> Any:
        self.calls.append(("read", endpoint, length, timeout))
        if self.fail:
            raise self.fail
        import array

        return array.array("B", self.answer[:length])


ENDPOINTS = BulkEndpoints(0, 0x01, 0x82)


def test_transfers_use_the_descriptor_endpoints_and_sized_timeouts() -> None:
    device = FakeClaimedDevice()
    transport = UsbTransport(device, ENDPOINTS, DEVICE)
    transport.bulk_out(bytes(32))
    assert transport.bulk_in(13) == b"AWUS" + bytes(9)
    assert device.calls == [("write", 0x01, 32, 10_000), ("read", 0x82, 13, 10_000)]
    assert transport.description == DEVICE


def test_short_write_is_an_error() -> None:
    transport = UsbTransport(FakeClaimedDevice(accept=16), ENDPOINTS, DEVICE)
    with pytest.raises(DeviceError, match=r"usb 1:7 .* accepted only 16 bytes of a bulk OUT of 32"):
        transport.bulk_out(bytes(32))


def test_timeout_during_read_is_mapped() -> None:
    timeout = usb.core.USBTimeoutError("Operation timed out", -7, errno.ETIMEDOUT)
    transport = UsbTransport(FakeClaimedDevice(fail=timeout), ENDPOINTS, DEVICE)
    with pytest.raises(DeviceTimeout, match=r"bulk IN of 13 bytes"):
        transport.bulk_in(13)


def test_unplug_during_write_is_mapped() -> None:
    gone = usb_error(errno.ENODEV, "No such device (it may have been disconnected)")
    transport = UsbTransport(FakeClaimedDevice(fail=gone), ENDPOINTS, DEVICE)
    with pytest.raises(DeviceGone, match=r"disappeared in the middle of a transfer"):
        transport.bulk_out(bytes(4))


# The udev rule ------------------------------------------------------------------------

RULE_FILE = Path(__file__).parent.parent / "udev" / "60-felboot.rules"


def test_udev_rule_grants_the_fel_device_to_the_seat_user() -> None:
    rules = [
        line
        for line in RULE_FILE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert len(rules) == 2  # access, then USB autosuspend off (tests/test_udev.py)
    keys = dict(re.findall(r'([A-Z_]+(?:\{\w+\})?)\+?==?"([^"]*)"', rules[0]))
    assert keys["SUBSYSTEM"] == "usb"
    assert keys["ATTR{idVendor}"] == f"{FEL_VENDOR_ID:04x}"
    assert keys["ATTR{idProduct}"] == f"{FEL_PRODUCT_ID:04x}"
    assert 'TAG+="uaccess"' in rules[0]
    assert keys["MODE"] == "0660" and keys["GROUP"] == "plugdev"
    # uaccess tags only take effect from rules ordered before 73-seat-late.rules.
    assert int(RULE_FILE.name.split("-")[0]) < 73
