"""Which device --device names, and opening it.

Forms of --device:

    usb                   the only FEL board on the bus (error when none or several)
    usb:BUS:ADDR          e.g. usb:1:7, as `felboot list` shows it
    usb:port=1-1.2        the USB port chain: stays the same across re-plugging
    usb:sid=HEX           the board whose SID e-fuses read HEX (32 hex digits,
                          colons allowed, as `felboot sid` prints them)
    sim[:OPTIONS]         the built-in device model, e.g. sim:soc=a20,dram=1G
    replay:FILE           a recorded transcript (see felboot.transcript)

With ``wait`` the USB forms poll the bus until the board shows up: run the
command, then press the FEL button.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from felboot.errors import DeviceError, FelbootError, PermissionDenied, UsageError
from felboot.transport import (
    FEL_PRODUCT_ID,
    FEL_VENDOR_ID,
    Transport,
    UsbDeviceInfo,
    find_fel_devices,
    open_usb,
)

if TYPE_CHECKING:
    from felboot.fel import FelDevice

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.2  # seconds between looks at the bus while waiting
# udev grants access a moment after the device appears: a permission error
# right after it showed up is retried for this long before it counts.
UDEV_GRACE = 1.5

VALID_FORMS = (
    "usb, usb:BUS:ADDR (e.g. usb:1:7), usb:port=PATH (e.g. usb:port=1-1.2), "
    "usb:sid=HEX (32 hex digits), sim, sim:soc=a20,dram=1G, replay:FILE"
)

NO_DEVICE = (
    f"no Allwinner board in FEL mode found (USB {FEL_VENDOR_ID:04x}:{FEL_PRODUCT_ID:04x}): "
    "hold the FEL/uboot button while powering on, or boot an SD card image that enters FEL; "
    "use --wait 30 to wait for it"
)


def format_sid(sid: bytes) -> str:
    """ "02c00081:5e3c4b17:..." : the SID words as `felboot sid` and sunxi-fel print them."""
    from felboot.thunks.registers import format_sid as sid_hex

    digits = sid_hex(sid)
    return ":".join(digits[i : i + 8] for i in range(0, len(digits), 8))


# Parsing --device ------------------------------------------------------------------


@dataclass(frozen=True)
class UsbSelector:
    """Which FEL device on the bus: any (all None), by bus:address, by port path or by SID."""

    bus: int | None = None
    address: int | None = None
    port_path: str | None = None
    sid: str | None = None  # 32 lowercase hex digits, no colons

    def __str__(self) -> str:
        if self.bus is not None:
            return f"usb:{self.bus}:{self.address}"
        if self.port_path is not None:
            return f"usb:port={self.port_path}"
        if self.sid is not None:
            return f"usb:sid={self.sid}"
        return "usb"

    def matches(self, info: UsbDeviceInfo) -> bool:
        """Whether ``info`` fits, as far as the bus tells (a SID needs the device opened)."""
        if self.bus is not None:
            return (info.bus, info.address) == (self.bus, self.address)
        if self.port_path is not None:
            return info.port_path == self.port_path
        return True


@dataclass(frozen=True)
class SimSpec:
    options: str  # "soc=a20,dram=1G", parsed by felboot.sim


@dataclass(frozen=True)
class ReplaySpec:
    path: Path


DeviceSpec = UsbSelector | SimSpec | ReplaySpec

_BUS_ADDRESS = re.compile(r"(\d{1,3}):(\d{1,3})")
_PORT_PATH = re.compile(r"\d{1,3}-\d{1,3}(\.\d{1,3}){0,6}")
_SID = re.compile(r"[0-9a-f]{32}")


def parse_device_spec(spec: str) -> DeviceSpec:
    """Parse a --device value; UsageError listing the valid forms when it is none of them."""
    kind, _, rest = spec.partition(":")
    if spec == "usb":
        return UsbSelector()
    if kind == "usb":
        if match := _BUS_ADDRESS.fullmatch(rest):
            return UsbSelector(bus=int(match[1]), address=int(match[2]))
        key, _, value = rest.partition("=")
        if key == "port" and _PORT_PATH.fullmatch(value):
            return UsbSelector(port_path=value)
        if key == "sid":
            sid = value.replace(":", "").lower()
            if _SID.fullmatch(sid):
                return UsbSelector(sid=sid)
            raise UsageError(
                f"--device {spec}: a SID is 32 hex digits (colons allowed), as "
                "'felboot sid' prints it"
            )
    elif kind == "sim":
        return SimSpec(rest)
    elif kind == "replay" and rest:
        return ReplaySpec(Path(rest))
    raise UsageError(f"--device {spec!r} is not a device: use one of {VALID_FORMS}", culprit=spec)


# Finding and opening USB devices -------------------------------------------------


class UsbBus(Protocol):
    """Where FEL devices are found and opened: the real bus, or a fake in tests."""

    def find(self) -> list[UsbDeviceInfo]: ...

    def open(self, info: UsbDeviceInfo) -> Transport: ...


class SystemUsbBus:
    """The machine's USB bus, through pyusb."""

    def find(self) -> list[UsbDeviceInfo]:
        return find_fel_devices()

    def open(self, info: UsbDeviceInfo) -> Transport:
        return open_usb(info)


def read_sid(device: FelDevice) -> str | None:
    """The board's SID as "xxxxxxxx:..." or None when its SoC has no known SID address."""
    soc = device.soc
    if soc is None or soc.sid_base is None:
        return None
    return format_sid(device.sid())


def _listing(infos: list[UsbDeviceInfo]) -> str:
    return ", ".join(
        f"{info.spec}" + (f" (port {info.port_path})" if info.port_path else "") for info in infos
    )


def open_transport(
    spec: str,
    *,
    wait: float | None = None,
    record: Path | None = None,
    note: str | None = None,
    bus: UsbBus | None = None,
    replace: bool = True,
) -> Transport:
    """Open the device ``spec`` names; wrap it in a recorder when ``record`` is set.

    ``wait`` (seconds, may be inf) polls the USB bus until a matching board
    appears; 0 or None looks once. ``note`` goes into a recording's header (the
    command line); ``replace`` False refuses an existing ``record`` file.
    ``bus`` replaces the real USB bus (tests).
    """
    parsed = parse_device_spec(spec)
    transport: Transport
    if isinstance(parsed, SimSpec):
        try:
            import felboot.sim
        except ImportError as error:
            raise UsageError(
                f"--device {spec} needs the device model: pip install 'felboot[sim]' ({error})"
            ) from None
        transport = felboot.sim.open_sim(parsed.options)
    elif isinstance(parsed, ReplaySpec):
        from felboot.transcript import ReplayTransport

        transport = ReplayTransport(parsed.path)
    else:
        transport = _open_usb(parsed, wait or 0.0, bus or SystemUsbBus())
    if record is None:
        return transport
    from felboot.transcript import RecordingTransport

    try:
        return RecordingTransport(transport, record, note, overwrite=replace)
    except FelbootError:
        transport.close()
        raise


def _open_usb(selector: UsbSelector, wait: float, bus: UsbBus) -> Transport:
    deadline = time.monotonic() + wait
    if wait:
        limit = "forever" if math.isinf(wait) else f"up to {wait:g} s"
        log.info("waiting %s for a FEL device (%s): press the FEL button now", limit, selector)
    first_seen: dict[UsbDeviceInfo, float] = {}
    sids: dict[UsbDeviceInfo, str | None] = {}  # SIDs already read, so polling opens each once
    while True:
        found = bus.find()
        now = time.monotonic()
        for info in found:
            first_seen.setdefault(info, now)
        error: FelbootError
        try:
            picked = _pick(selector, found, bus, sids)
        except PermissionDenied as denied:
            # Right after the board appears udev may not have granted access yet.
            recent = any(now - first_seen[info] < UDEV_GRACE for info in found)
            if not (recent and now < deadline):
                raise
            error = denied
        else:
            if isinstance(picked, Transport):
                return picked
            error = picked
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise error
        time.sleep(min(POLL_INTERVAL, remaining))


def _pick(
    selector: UsbSelector,
    found: list[UsbDeviceInfo],
    bus: UsbBus,
    sids: dict[UsbDeviceInfo, str | None],
) -> Transport | DeviceError:
    """The one device ``selector`` names, opened; or, when it is not (yet) there, the error."""
    if not found:
        return DeviceError(NO_DEVICE)
    candidates = [info for info in found if selector.matches(info)]
    if selector.sid is not None:
        return _open_by_sid(selector.sid, candidates, bus, sids)
    if not candidates:
        return DeviceError(
            f"no FEL device matches --device {selector} (found: {_listing(found)}): "
            "check the value against 'felboot list'"
        )
    if len(candidates) > 1:
        raise DeviceError(
            f"several FEL devices: {_listing(candidates)}: pick one with "
            f"--device {candidates[0].stable_spec}"
        )
    return bus.open(candidates[0])


def _open_by_sid(
    sid: str, found: list[UsbDeviceInfo], bus: UsbBus, sids: dict[UsbDeviceInfo, str | None]
) -> Transport | DeviceError:
    from felboot.fel import FelDevice

    for info in found:
        if info in sids:
            continue  # asked on an earlier poll: not this one
        transport = bus.open(info)
        try:
            text = read_sid(FelDevice(transport))
        except FelbootError as error:
            log.warning("%s: cannot read its SID: %s", info.description, error)
            text = None
        if text is not None and text.replace(":", "") == sid:
            return transport
        sids[info] = text
        transport.close()
    known = ", ".join(f"{info.spec} sid {text}" for info, text in sids.items() if text)
    return DeviceError(
        f"no FEL device has SID {sid} (found: {known or 'none with a readable SID'}): "
        "check the value against 'felboot list'"
    )


# Several boards ------------------------------------------------------------------


def select_boards(
    specs: Sequence[str],
    *,
    every: bool = False,
    wait: float | None = None,
    bus: UsbBus | None = None,
) -> list[str]:
    """The --device values of several boards (or ``every`` FEL board), each once, pinned.

    A USB board is pinned to its port path (``usb:port=...``) or its SID, so it
    stays matched when it re-enumerates mid-run. Refused before anything is sent:
    two specs naming the same board, a spec matching no board (unless ``wait``:
    then its own thread waits for it), a bare ``usb`` among others.
    """
    if every and specs:
        raise UsageError("--all and --device both name boards: give one of them")
    bus = bus or SystemUsbBus()
    if every:
        found = bus.find()
        if not found:
            raise DeviceError(NO_DEVICE)
        return [info.stable_spec for info in found]
    parsed = [(spec, parse_device_spec(spec)) for spec in specs]
    found = bus.find() if any(isinstance(p, UsbSelector) for _, p in parsed) else []
    sids: dict[UsbDeviceInfo, str | None] = {}
    owner: dict[object, str] = {}  # the board (UsbDeviceInfo, or the spec's own text) -> spec
    pinned: list[str] = []
    for spec, selector in parsed:
        board: object = spec
        pin = spec
        if isinstance(selector, UsbSelector):
            if selector == UsbSelector():
                raise UsageError(
                    "--device usb among several boards names none of them: pick each with "
                    "--device usb:port=PATH (see 'felboot list'), or use --all",
                    culprit=spec,
                )
            info = _match_one(spec, selector, found, bus, sids)
            if info is None and not wait:
                raise DeviceError(
                    f"--device {spec} matches no FEL board (found: {_listing(found) or 'none'}): "
                    "check it against 'felboot list'",
                    culprit=spec,
                )
            if info is not None:
                board = info
                if selector.sid is None and info.port_path:
                    pin = info.stable_spec
        elif isinstance(selector, ReplaySpec):
            board = selector.path.resolve()
        if board in owner:
            where = f" ({board.description})" if isinstance(board, UsbDeviceInfo) else ""
            raise UsageError(
                f"--device {owner[board]} and --device {spec} name the same board{where}: "
                "give each board once",
                culprit=spec,
            )
        owner[board] = spec
        pinned.append(pin)
    return pinned


def _match_one(
    spec: str,
    selector: UsbSelector,
    found: list[UsbDeviceInfo],
    bus: UsbBus,
    sids: dict[UsbDeviceInfo, str | None],
) -> UsbDeviceInfo | None:
    """The board on the bus ``selector`` names (SIDs read once per board), or None."""
    from felboot.fel import FelDevice

    if selector.sid is None:
        matches = [info for info in found if selector.matches(info)]
        return matches[0] if matches else None
    for info in found:
        if info not in sids:
            try:
                with bus.open(info) as transport:
                    sids[info] = read_sid(FelDevice(transport))
            except FelbootError as error:
                log.warning("%s: cannot read its SID: %s", info.description, error)
                sids[info] = None
        text = sids[info]
        if text is not None and text.replace(":", "") == selector.sid:
            return info
    return None


# felboot list --------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceListing:
    """One line of `felboot list`: where the board is, what it is, or why it did not say."""

    bus: int
    address: int
    port_path: str | None
    soc: str | None = None  # "A20", "unknown SoC 0x1234"
    sid: str | None = None  # "xxxxxxxx:xxxxxxxx:xxxxxxxx:xxxxxxxx"
    error: str | None = None  # why SoC or SID are missing

    @property
    def spec(self) -> str:
        return f"usb:{self.bus}:{self.address}"

    def summary(self) -> str:
        parts = [self.spec]
        if self.port_path:
            parts.append(f"port {self.port_path}")
        if self.soc:
            parts.append(self.soc)
        if self.sid:
            parts.append(f"sid {self.sid}")
        if self.error:
            parts.append(f"error: {self.error}")
        return "  ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.spec,
            "bus": self.bus,
            "address": self.address,
            "port": self.port_path,
            "soc": self.soc,
            "sid": self.sid,
            "error": self.error,
        }


def list_devices(bus: UsbBus | None = None) -> list[DeviceListing]:
    """Every FEL board on the bus with its SoC and SID; one that fails is listed with its error."""
    bus = bus or SystemUsbBus()
    return [_describe(info, bus) for info in bus.find()]


def _describe(info: UsbDeviceInfo, bus: UsbBus) -> DeviceListing:
    from felboot.fel import FelDevice
    from felboot.soc import soc_label

    soc: str | None = None
    sid: str | None = None
    try:
        with bus.open(info) as transport:
            device = FelDevice(transport)
            soc = soc_label(device.version().soc_id)
            sid = read_sid(device)
    except FelbootError as error:
        return DeviceListing(info.bus, info.address, info.port_path, soc, sid, str(error))
    return DeviceListing(info.bus, info.address, info.port_path, soc, sid)
