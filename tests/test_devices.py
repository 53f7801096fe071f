"""--device values, device selection, waiting, and `felboot list`, without hardware.

The USB bus is replaced by a small fake (the UsbBus seam in felboot.devices);
the devices on it are scripted FEL transports (tests/scripted.py), so SoC and
SID come from real FelDevice calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from felboot import devices
from felboot.devices import (
    NO_DEVICE,
    DeviceListing,
    ReplaySpec,
    SimSpec,
    UsbSelector,
    format_sid,
    list_devices,
    open_transport,
    parse_device_spec,
)
from felboot.errors import DeviceError, DeviceTimeout, PermissionDenied, UsageError
from felboot.fel import FelDevice
from felboot.transcript import RecordingTransport, ReplayTransport
from felboot.transport import Transport, UsbDeviceInfo
from tests.scripted import OK_RESPONSE, OK_STATUS, ScriptedTransport, version_answers, write_answers

FIRST = UsbDeviceInfo(1, 7, "1-1.2")
SECOND = UsbDeviceInfo(1, 9, "1-1.3")

SID_A = bytes.fromhex("8100c0024f4c005c524c4b4e78563412")  # words 02c00081:5c004c4f:...
SID_B = bytes(range(16))


def a20_with_sid(sid: bytes) -> list[bytes | Exception]:
    """The device side of VERSION then SID on an A20 (upload, EXEC, read back)."""
    exec_ok = [OK_RESPONSE, OK_STATUS, OK_RESPONSE]
    read_back = [OK_RESPONSE, sid, OK_RESPONSE, OK_STATUS, OK_RESPONSE]
    return [*version_answers(0x1651), *write_answers(), *exec_ok, *read_back]


class Board(ScriptedTransport):
    """A scripted FEL device that remembers whether it was closed."""

    def __init__(self, answers: list[bytes | Exception], name: str) -> None:
        super().__init__(answers)
        self.description = name
        self.closed = False

    def close(self) -> None:
        self.closed = True


class FakeBus:
    """Devices appear after ``appear_after`` looks at the bus; opening runs ``boards[info]``."""

    def __init__(
        self, boards: dict[UsbDeviceInfo, Callable[[], Transport]], appear_after: int = 0
    ) -> None:
        self.boards = boards
        self.appear_after = appear_after
        self.looks = 0
        self.opened: list[Transport] = []

    def find(self) -> list[UsbDeviceInfo]:
        self.looks += 1
        return list(self.boards) if self.looks > self.appear_after else []

    def open(self, info: UsbDeviceInfo) -> Transport:
        transport = self.boards[info]()
        self.opened.append(transport)
        return transport


def board(name: str, answers: list[bytes | Exception] | None = None) -> Callable[[], Transport]:
    return lambda: Board(list(answers or []), name)


def refuses(error: Exception) -> Callable[[], Transport]:
    def open_it() -> Transport:
        raise error

    return open_it


@pytest.fixture(autouse=True)
def fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "POLL_INTERVAL", 0.01)


# Parsing --device ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("usb", UsbSelector()),
        ("usb:1:7", UsbSelector(bus=1, address=7)),
        ("usb:port=1-1.2", UsbSelector(port_path="1-1.2")),
        ("usb:port=3-4", UsbSelector(port_path="3-4")),
        (
            "usb:sid=02C00081:5c004c4f:4e4b4c52:12345678",
            UsbSelector(sid="02c000815c004c4f4e4b4c5212345678"),
        ),
        ("sim", SimSpec("")),
        ("sim:soc=a20,dram=1G", SimSpec("soc=a20,dram=1G")),
        ("replay:fixtures/x.jsonl", ReplaySpec(Path("fixtures/x.jsonl"))),
    ],
)
def test_valid_specs(spec: str, parsed: object) -> None:
    assert parse_device_spec(spec) == parsed


@pytest.mark.parametrize(
    "spec", ["", "usb:", "usb:1", "usb:a:b", "usb:port=", "usb:port=1.2", "usb:serial=3", "serial",
             "replay:", "USB"]
)  # fmt: skip
def test_unknown_specs_list_the_valid_forms(spec: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_device_spec(spec)
    assert f"--device {spec!r} is not a device" in str(raised.value)
    assert "usb:BUS:ADDR" in str(raised.value) and "replay:FILE" in str(raised.value)


def test_a_bad_sid_says_what_a_sid_looks_like() -> None:
    with pytest.raises(UsageError, match=r"--device usb:sid=1234: a SID is 32 hex digits"):
        parse_device_spec("usb:sid=1234")


def test_selectors_print_as_specs() -> None:
    for spec in ("usb", "usb:1:7", "usb:port=1-1.2", "usb:sid=" + "ab" * 16):
        assert str(parse_device_spec(spec)) == spec


def test_sid_format_matches_felboot_sid() -> None:
    assert format_sid(SID_A) == "02c00081:5c004c4f:4e4b4c52:12345678"


# Choosing a USB device -----------------------------------------------------------------


def test_the_only_board_is_taken() -> None:
    bus = FakeBus({FIRST: board("first")})
    transport = open_transport("usb", bus=bus)
    assert transport.description == "first"


def test_no_board_says_how_to_get_one_into_fel() -> None:
    with pytest.raises(DeviceError) as raised:
        open_transport("usb", bus=FakeBus({}))
    assert str(raised.value) == NO_DEVICE
    assert str(raised.value).startswith(
        "no Allwinner board in FEL mode found (USB 1f3a:efe8): hold the FEL/uboot button"
    )
    assert "--wait 30" in str(raised.value)


def test_several_boards_need_a_choice() -> None:
    bus = FakeBus({FIRST: board("first"), SECOND: board("second")})
    with pytest.raises(DeviceError) as raised:
        open_transport("usb", bus=bus)
    assert str(raised.value) == (
        "several FEL devices: usb:1:7 (port 1-1.2), usb:1:9 (port 1-1.3): "
        "pick one with --device usb:port=1-1.2"
    )
    assert bus.opened == []


@pytest.mark.parametrize(("spec", "name"), [("usb:1:9", "second"), ("usb:port=1-1.2", "first")])
def test_bus_address_and_port_pick_one(spec: str, name: str) -> None:
    bus = FakeBus({FIRST: board("first"), SECOND: board("second")})
    assert open_transport(spec, bus=bus).description == name


def test_selection_that_matches_nothing_lists_what_is_there() -> None:
    bus = FakeBus({FIRST: board("first")})
    with pytest.raises(DeviceError) as raised:
        open_transport("usb:port=2-1", bus=bus)
    assert str(raised.value) == (
        "no FEL device matches --device usb:port=2-1 (found: usb:1:7 (port 1-1.2)): "
        "check the value against 'felboot list'"
    )


def test_sid_opens_each_board_and_keeps_the_match() -> None:
    bus = FakeBus(
        {FIRST: board("first", a20_with_sid(SID_B)), SECOND: board("second", a20_with_sid(SID_A))}
    )
    transport = open_transport("usb:sid=02c00081:5c004c4f:4e4b4c52:12345678", bus=bus)
    assert transport.description == "second"
    first, second = bus.opened
    assert isinstance(first, Board) and first.closed
    assert isinstance(second, Board) and not second.closed


def test_sid_without_a_match_lists_the_sids_seen() -> None:
    bus = FakeBus({FIRST: board("first", a20_with_sid(SID_B)), SECOND: board("silent")})
    with pytest.raises(DeviceError) as raised:
        open_transport("usb:sid=" + "ab" * 16, bus=bus)
    assert str(raised.value) == (
        f"no FEL device has SID {'ab' * 16} "
        "(found: usb:1:7 sid 03020100:07060504:0b0a0908:0f0e0d0c): "
        "check the value against 'felboot list'"
    )


def test_permission_error_is_passed_on() -> None:
    bus = FakeBus({FIRST: refuses(PermissionDenied("cannot open usb 1:7: permission denied"))})
    with pytest.raises(PermissionDenied, match="usb 1:7"):
        open_transport("usb", bus=bus)


# Waiting for the board -------------------------------------------------------------------


def test_wait_polls_until_the_board_appears() -> None:
    bus = FakeBus({FIRST: board("first")}, appear_after=3)
    assert open_transport("usb", wait=5, bus=bus).description == "first"
    assert bus.looks == 4


def test_wait_forever_is_allowed() -> None:
    bus = FakeBus({FIRST: board("first")}, appear_after=2)
    assert open_transport("usb", wait=float("inf"), bus=bus).description == "first"


def test_wait_gives_up_with_the_no_device_error() -> None:
    bus = FakeBus({FIRST: board("first")}, appear_after=10**9)
    started = time.monotonic()
    with pytest.raises(DeviceError) as raised:
        open_transport("usb", wait=0.2, bus=bus)
    assert str(raised.value) == NO_DEVICE
    assert 0.15 <= time.monotonic() - started < 2
    assert bus.looks > 2


def test_without_wait_the_bus_is_looked_at_once() -> None:
    bus = FakeBus({FIRST: board("first")}, appear_after=1)
    with pytest.raises(DeviceError, match="no Allwinner board"):
        open_transport("usb", wait=0, bus=bus)
    assert bus.looks == 1


def test_wait_rides_out_udev_granting_access_late() -> None:
    attempts = iter([refuses(PermissionDenied("cannot open usb 1:7: permission denied")),
                     board("first")])  # fmt: skip
    bus = FakeBus({FIRST: lambda: next(attempts)()})
    assert open_transport("usb", wait=5, bus=bus).description == "first"


# replay:, sim: and --record ----------------------------------------------------------------


@pytest.fixture
def version_transcript(tmp_path: Path) -> Path:
    path = tmp_path / "version.jsonl"
    with RecordingTransport(ScriptedTransport(version_answers(0x1651)), path) as transport:
        FelDevice(transport).version()
    return path


def test_replay_spec_opens_a_replay(version_transcript: Path) -> None:
    transport = open_transport(f"replay:{version_transcript}")
    assert isinstance(transport, ReplayTransport)
    assert FelDevice(transport).version().soc_id == 0x1651
    transport.finish()


def test_record_wraps_any_transport(version_transcript: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.jsonl"
    with open_transport(f"replay:{version_transcript}", record=again) as transport:
        assert isinstance(transport, RecordingTransport)
        FelDevice(transport).version()
    recorded = [line for line in again.read_text().splitlines()[1:]]
    assert recorded == version_transcript.read_text().splitlines()[1:]


def test_record_to_a_bad_path_closes_the_device(tmp_path: Path) -> None:
    bus = FakeBus({FIRST: board("first")})
    with pytest.raises(UsageError, match="cannot write transcript"):
        open_transport("usb", bus=bus, record=tmp_path / "no" / "such" / "dir.jsonl")
    (opened,) = bus.opened
    assert isinstance(opened, Board) and opened.closed


def test_sim_spec_opens_the_device_model() -> None:
    sim = pytest.importorskip("felboot.sim")
    if not hasattr(sim, "open_sim"):
        pytest.skip("felboot.sim.open_sim is not there yet")
    transport = open_transport("sim:soc=a20")
    try:
        assert FelDevice(transport).version().soc_id == 0x1651
    finally:
        transport.close()


# felboot list ----------------------------------------------------------------------------


def test_list_shows_soc_and_sid_and_survives_a_broken_board() -> None:
    bus = FakeBus(
        {
            FIRST: board("first", a20_with_sid(SID_A)),
            SECOND: refuses(PermissionDenied("cannot open usb 1:9: permission denied")),
            UsbDeviceInfo(2, 3): board("odd", version_answers(0x9999)),
            UsbDeviceInfo(2, 4, "2-2"): board("silent"),
        }
    )
    first, second, odd, silent = list_devices(bus)
    assert first == DeviceListing(1, 7, "1-1.2", "A20", "02c00081:5c004c4f:4e4b4c52:12345678")
    assert second == DeviceListing(1, 9, "1-1.3", error="cannot open usb 1:9: permission denied")
    assert odd == DeviceListing(2, 3, None, "unknown SoC 0x9999")
    assert silent.soc is None and silent.error is not None and "no answer" in silent.error
    assert first.summary() == "usb:1:7  port 1-1.2  A20  sid 02c00081:5c004c4f:4e4b4c52:12345678"
    assert second.summary() == "usb:1:9  port 1-1.3  error: cannot open usb 1:9: permission denied"
    assert odd.to_dict() == {
        "device": "usb:2:3",
        "bus": 2,
        "address": 3,
        "port": None,
        "soc": "unknown SoC 0x9999",
        "sid": None,
        "error": None,
    }
    assert all(isinstance(t, Board) and t.closed for t in bus.opened)


def test_list_keeps_the_soc_when_only_the_sid_fails() -> None:
    answers = [*version_answers(0x1651), DeviceTimeout("usb 1:7 did not answer")]
    (listing,) = list_devices(FakeBus({FIRST: board("first", answers)}))
    assert listing.soc == "A20" and listing.sid is None
    assert listing.error is not None


def test_list_of_an_empty_bus() -> None:
    assert list_devices(FakeBus({})) == []
