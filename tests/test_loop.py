"""The desk loop (felboot.loop) on the device model: rounds, changed files, files still being
written, Ctrl-C, and selection across re-enumeration. No test sleeps: the clock is a fake one."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from felboot.devices import UsbSelector
from felboot.errors import DeviceError, UsageError
from felboot.loop import (
    SETTLE_SECONDS,
    FileLook,
    Phases,
    RoundReport,
    SimBus,
    UBootRequest,
    UsbDeviceSource,
    device_source,
    format_round,
    run_loop,
    stat_file,
)
from felboot.run import RunRequest
from felboot.sim.options import parse_options
from felboot.transport import Transport
from tests.support import IMAGES, PAYLOADS, fixture_script

A20 = parse_options("soc=a20,dram=1G")
OTHER_SID = "02c00081:5c004c4f:4e4b4c52:12345678"


class FakeClock:
    """Time that moves only when the loop sleeps; ``on_sleep`` lets a test act meanwhile."""

    def __init__(self, on_sleep: Callable[[int], None] | None = None) -> None:
        self.now = 1000.0
        self.wall = time.time()  # file mtimes are real: start at the real wall clock
        self.slept: list[float] = []
        self.on_sleep = on_sleep

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.wall

    def process_time(self) -> float:
        return time.process_time()

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        self.wall += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.slept))


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    """The README's sim walk-through files, copied so a test can rebuild them."""
    names = {
        "uboot": IMAGES / "u-boot-sunxi-with-spl-a20.bin",
        "xen": PAYLOADS / "xen-arm32.zimage",
        "kernel": PAYLOADS / "zImage-arm32",
        "dtb": PAYLOADS / "sun7i-a20-felboot-test.dtb",
        "initrd": PAYLOADS / "initrd.img",
    }
    copies = {}
    for key, source in names.items():
        copies[key] = tmp_path / source.name
        shutil.copyfile(source, copies[key])
    return copies


def request_for(files: dict[str, Path]) -> RunRequest:
    return RunRequest(
        board="a20",
        uboot=(files["uboot"],),
        xen=files["xen"],
        kernel=files["kernel"],
        dtb=files["dtb"],
        initrd=files["initrd"],
    )


def new_kernel(seed: int) -> bytes:
    """Another valid arm32 zImage, as a rebuild makes it (fixtures/make_payloads.py)."""
    return bytes(fixture_script("make_payloads").zimage(0x30000, 0x30000, seed=seed))


def rebuild(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    stamp = time.time_ns() + 1_000_000  # a new mtime even on a coarse file system clock
    os.utime(path, ns=(stamp, stamp))


def kernel_region(report: RoundReport):
    assert report.run is not None
    (region,) = [r for r in report.run.plan.regions if r.name == "kernel"]
    return region


# Rounds --------------------------------------------------------------------------------------


def test_two_rounds_boot_a_new_board_each_time_with_the_changed_kernel(inputs):
    bus = SimBus({"1-2": A20})
    clock = FakeClock()
    source = UsbDeviceSource(UsbSelector(port_path="1-2"), bus=bus, clock=clock)
    kernel = new_kernel(seed=7)
    lines = []

    def on_round(report: RoundReport) -> None:
        lines.append(format_round(report))
        if report.number == 1:  # the user rebuilds while the board boots
            rebuild(inputs["kernel"], kernel)

    first, second = run_loop(request_for(inputs), source, rounds=2, on_round=on_round, clock=clock)

    one, two = bus.sockets[0].boards  # round 2 ran on a fresh board: ROM state, DRAM down
    assert one is not two
    for board, report in ((one, first), (two, second)):
        assert [e.kind for e in board.events] == ["spl", "uboot_started"]
        assert board.left_fel and not board.hung
        region = kernel_region(report)
        assert board.read_memory(region.start, region.size) == region.payload
    assert kernel_region(second).payload == kernel != kernel_region(first).payload
    assert first.changed is None and second.changed == ("zImage-arm32",)
    assert (first.board, second.board) == (
        "usb 1:5 (port 1-2) sim A20",
        "usb 1:6 (port 1-2) sim A20",
    )
    assert first.sid == second.sid == "16515daf:fd01b8d1:6693fc1a:0e5448b5"
    assert first.notes == () and first.booted and second.booted
    assert second.bytes_sent == second.run.bytes_written > 400_000
    assert lines[0].startswith("round 1  usb 1:5 (port 1-2) sim A20 sid 16515daf:")
    assert "  first round  detect " in lines[0]
    assert "  changed: zImage-arm32  detect " in lines[1]
    for phase in ("detect", "check", "SPL", "upload", "start"):
        assert f"  {phase} 0." in lines[1]
    assert lines[1].endswith("sent 424 KiB")


def test_unchanged_and_touched_files_are_told_apart(inputs):
    bus = SimBus({"1-1": A20})
    clock = FakeClock()
    source = UsbDeviceSource(UsbSelector(), bus=bus, clock=clock)

    def on_round(report: RoundReport) -> None:
        if report.number == 2:
            rebuild(inputs["dtb"], inputs["dtb"].read_bytes())  # same bytes, new mtime

    reports = run_loop(request_for(inputs), source, rounds=3, on_round=on_round, clock=clock)
    assert [r.changed for r in reports] == [None, (), ("sun7i-a20-felboot-test.dtb (touched)",)]
    assert "changed: nothing" in format_round(reports[1])
    assert len(bus.sockets[0].boards) == 3


def test_uboot_rounds_read_the_files_anew(inputs, tmp_path):
    script = tmp_path / "boot.scr"
    shutil.copyfile(IMAGES / "boot.scr", script)
    bus = SimBus({"1-1": A20})
    clock = FakeClock()
    request = UBootRequest((inputs["uboot"],), script=(script, 0x43100000))

    def on_round(report: RoundReport) -> None:
        rebuild(script, script.read_bytes() + b"\n")  # a longer script

    reports = run_loop(
        request, UsbDeviceSource(UsbSelector(), bus=bus, clock=clock), rounds=2,
        on_round=on_round, clock=clock,
    )  # fmt: skip
    assert [r.changed for r in reports] == [None, ("boot.scr",)]
    second = bus.sockets[0].boards[1]
    assert [e.kind for e in second.events] == ["spl", "uboot_started"]
    assert second.read_memory(0x43100000, script.stat().st_size - 1) == script.read_bytes()[:-1]
    assert reports[1].run is None
    assert reports[1].bytes_sent == reports[0].bytes_sent + 1  # SPL, U-Boot, the script


# Files still being written -----------------------------------------------------------------------


def growing(path_name: str, bus: SimBus, looks: int) -> Callable[[Path], FileLook | None]:
    """stat() as a build still writing ``path_name`` shows it for ``looks`` looks."""
    seen = {"looks": 0}

    def stat(path: Path) -> FileLook | None:
        look = stat_file(path)
        if path.name != path_name or look is None or seen["looks"] >= looks:
            return look
        assert not bus.sockets[0].board.dram_ready  # nothing is booted while it grows
        seen["looks"] += 1
        return FileLook(look.size - 4096 * (looks - seen["looks"]), look.mtime_ns - seen["looks"])

    return stat


def test_a_file_still_being_written_is_waited_for(inputs, caplog):
    bus = SimBus({"1-1": A20})
    clock = FakeClock()
    source = UsbDeviceSource(UsbSelector(), bus=bus, clock=clock)
    with caplog.at_level(logging.WARNING, logger="felboot.loop"):
        (report,) = run_loop(
            request_for(inputs), source, rounds=1, clock=clock,
            stat=growing("zImage-arm32", bus, looks=3),
        )  # fmt: skip
    waits = [r.getMessage() for r in caplog.records if "still being written" in r.getMessage()]
    assert waits == ["waiting for zImage-arm32: still being written"]  # once, not per look
    # Looks 1-3 grow, look 4 is the final file, look 5 agrees with it.
    assert clock.slept == [SETTLE_SECONDS] * 4
    assert report.booted and report.settled == 4 * SETTLE_SECONDS
    assert "waited 2.00 s for files still being written" in format_round(report)
    assert kernel_region(report).payload == inputs["kernel"].read_bytes()


def test_files_quiet_for_a_while_need_no_second_look(inputs):
    old = time.time_ns() - 60 * 10**9
    for path in inputs.values():
        os.utime(path, ns=(old, old))
    clock = FakeClock()
    source = UsbDeviceSource(UsbSelector(), bus=SimBus({"1-1": A20}), clock=clock)
    (report,) = run_loop(request_for(inputs), source, rounds=1, clock=clock)
    assert clock.slept == [] and report.settled == 0


def test_a_later_round_whose_files_do_not_check_waits_for_the_fix(inputs):
    bus = SimBus({"1-1": A20})
    fixed = new_kernel(seed=9)
    clock = FakeClock(on_sleep=lambda count: count == 3 and rebuild(inputs["kernel"], fixed))
    source = UsbDeviceSource(UsbSelector(), bus=bus, clock=clock)

    def on_round(report: RoundReport) -> None:
        if report.number == 1:
            rebuild(inputs["kernel"], b"half a kernel")

    reports = run_loop(request_for(inputs), source, rounds=3, on_round=on_round, clock=clock)
    _, broken, third = reports
    assert broken.error is not None and "zImage-arm32" in broken.error
    assert "failed: " in format_round(broken) and "sent" not in format_round(broken)
    # Nothing was sent to round 2's board: it stayed in FEL and round 3 booted it.
    _, two = bus.sockets[0].boards
    assert broken.board == third.board == "usb 1:6 (port 1-1) sim A20"
    assert [e.kind for e in two.events] == ["spl", "uboot_started"]
    assert kernel_region(third).payload == fixed
    assert third.changed == ("zImage-arm32",)  # against round 1, the last one booted


def test_the_first_round_raises_as_felboot_run_does(inputs):
    inputs["kernel"].write_bytes(b"not a kernel")
    bus = SimBus({"1-1": A20})
    closed = []
    source = ClosingSource(UsbDeviceSource(UsbSelector(), bus=bus, clock=FakeClock()), closed)
    with pytest.raises(Exception, match="zImage-arm32"):
        run_loop(request_for(inputs), source, rounds=2, clock=FakeClock())
    assert closed == [True] and not bus.sockets[0].board.dram_ready


# Ctrl-C ---------------------------------------------------------------------------------------


class ClosingSource:
    """A source that notes whether each transport it handed out was closed."""

    def __init__(self, inner: UsbDeviceSource, closed: list[bool], fail: Callable | None = None):
        self.inner = inner
        self.closed = closed
        self.fail = fail
        self.rounds = 0

    def wait_for_board(self) -> Transport:
        self.rounds += 1
        if self.fail is not None:
            self.fail("wait_for_board", self.rounds)
        transport = self.inner.wait_for_board()
        index = len(self.closed)
        self.closed.append(False)
        close = transport.close

        def closing() -> None:
            self.closed[index] = True
            close()

        transport.close = closing  # type: ignore[method-assign]
        if self.fail is not None:
            self.fail("opened", self.rounds, transport)
        return transport

    def wait_gone(self, transport: Transport) -> None:
        if self.fail is not None:
            self.fail("wait_gone", self.rounds)
        self.inner.wait_gone(transport)

    def notes(self) -> list[str]:
        return self.inner.notes()


def interrupt_at(where: str, round_number: int) -> Callable:
    def fail(stage: str, number: int, transport: Transport | None = None) -> None:
        if (stage, number) == (where, round_number):
            raise KeyboardInterrupt

    return fail


@pytest.mark.parametrize(
    ("where", "round_number"),
    [("wait_for_board", 2), ("wait_gone", 1)],
)
def test_ctrl_c_between_rounds_ends_the_loop(inputs, where, round_number):
    bus = SimBus({"1-1": A20})
    closed: list[bool] = []
    clock = FakeClock()
    inner = UsbDeviceSource(UsbSelector(), bus=bus, clock=clock)
    source = ClosingSource(inner, closed, interrupt_at(where, round_number))
    reported = []
    with pytest.raises(KeyboardInterrupt):
        run_loop(request_for(inputs), source, on_round=reported.append, clock=clock)
    assert [r.number for r in reported] == [1]
    assert closed and all(closed)  # every board handed out was closed


@pytest.mark.parametrize("at_send", [1, 40])  # the first VERSION; well into SPL and U-Boot
def test_ctrl_c_during_a_round_closes_the_board(inputs, at_send):
    bus = SimBus({"1-1": A20})
    closed: list[bool] = []
    clock = FakeClock()
    exits = []

    def in_upload(stage: str, number: int, transport: Transport | None = None) -> None:
        if stage == "opened" and number == 2:
            sends = {"count": 0}
            bulk_out = transport.bulk_out

            def bulk_out_then_ctrl_c(data) -> None:
                sends["count"] += 1
                if sends["count"] == at_send:
                    raise KeyboardInterrupt
                bulk_out(data)

            transport.bulk_out = bulk_out_then_ctrl_c

    from contextlib import contextmanager

    from felboot.progress import TransferProgress

    @contextmanager
    def progress(total: int):
        try:
            yield TransferProgress(None)
        finally:
            exits.append(total)

    source = ClosingSource(UsbDeviceSource(UsbSelector(), bus=bus, clock=clock), closed, in_upload)
    reported = []
    with pytest.raises(KeyboardInterrupt):
        run_loop(
            request_for(inputs), source, on_round=reported.append, clock=clock, progress=progress
        )
    assert [r.number for r in reported] == [1]
    assert closed == [True, True]
    assert len(exits) == (1 if at_send == 1 else 2)  # a progress bar opened was closed


# Selection across re-enumeration ---------------------------------------------------------------


def test_a_bus_address_is_carried_over_by_port_path(inputs):
    bus = SimBus({"1-1.3": A20}, first_address=9)
    clock = FakeClock()
    source = device_source("usb:1:9", clock=clock, bus=bus)
    lines = []
    reports = run_loop(
        request_for(inputs), source, rounds=3, clock=clock,
        on_round=lambda r: lines.append(format_round(r)),
    )  # fmt: skip
    note = (
        "next rounds select --device usb:port=1-1.3, was usb:1:9 "
        "(the board gets a new bus address every time it enters FEL)"
    )
    assert reports[0].notes == (note,) and lines[0].endswith(note)
    assert reports[1].notes == reports[2].notes == ()
    assert [r.board.split(" (")[0] for r in reports] == ["usb 1:9", "usb 1:10", "usb 1:11"]
    assert str(source.selector) == "usb:port=1-1.3"
    assert all(r.booted for r in reports)


def test_a_sid_picks_the_same_board_every_round(inputs):
    other = replace(A20, sid=tuple(int(word, 16) for word in OTHER_SID.split(":")))
    bus = SimBus({"1-1": A20, "1-2": other})
    clock = FakeClock()
    source = device_source("usb:sid=" + OTHER_SID, clock=clock, bus=bus)
    reports = run_loop(request_for(inputs), source, rounds=2, clock=clock)
    assert [r.sid for r in reports] == [OTHER_SID, OTHER_SID]
    assert all("(port 1-2)" in r.board for r in reports)
    assert len(bus.sockets[0].boards) == 1 and len(bus.sockets[1].boards) == 2
    assert reports[0].notes == ()  # a SID already survives re-enumeration


def test_several_boards_and_no_selection_stop_the_first_round(inputs):
    bus = SimBus({"1-1": A20, "1-2": A20})
    source = device_source("usb", clock=FakeClock(), bus=bus)
    with pytest.raises(DeviceError, match=r"several FEL devices: .*--device usb:port=1-1"):
        run_loop(request_for(inputs), source, rounds=2, clock=FakeClock())


def test_a_transcript_cannot_loop():
    with pytest.raises(UsageError, match=r"--device replay:x.jsonl: a transcript .* --loop needs"):
        device_source("replay:x.jsonl")


def test_sim_device_is_a_one_board_bus(inputs):
    clock = FakeClock()
    reports = run_loop(request_for(inputs), device_source("sim:dram=2G", clock=clock),
                       rounds=2, clock=clock)  # fmt: skip
    assert [r.run.plan.dram_size for r in reports] == [2 << 30] * 2


# The watch hook and the line -------------------------------------------------------------------


def test_watch_gives_each_booted_round_its_verdict(inputs):
    clock = FakeClock()
    seen = []

    def watch(report: RoundReport) -> str:
        seen.append(report.run.plan.dram_size)
        return f"console: ok (round {report.number})"

    reports = run_loop(request_for(inputs), device_source("sim", clock=clock), rounds=2,
                       clock=clock, watch=watch)  # fmt: skip
    assert [r.verdict for r in reports] == ["console: ok (round 1)", "console: ok (round 2)"]
    assert format_round(reports[1]).endswith("sent 424 KiB  console: ok (round 2)")
    assert seen == [1 << 30, 1 << 30]


def test_the_round_line():
    report = RoundReport(
        3, "usb 1:12 (port 1-1.2)", "02c00081:5c004c4f:4e4b4c52:12345678",
        ("zImage", "sun7i-a20-cubieboard2.dtb"),
        Phases(detect=0.04, check=0.12, spl=0.81, upload=12.34, start=0.01),
        bytes_sent=6_500_000, verdict="console: Xen and dom0 up",
    )  # fmt: skip
    assert format_round(report) == (
        "round 3  usb 1:12 (port 1-1.2) sid 02c00081:5c004c4f:4e4b4c52:12345678  "
        "changed: zImage, sun7i-a20-cubieboard2.dtb  detect 0.04 s  check 0.12 s  SPL 0.81 s  "
        "upload 12.3 s  start 0.01 s  sent 6.2 MiB  console: Xen and dom0 up"
    )
    failed = replace(report, error="DRAM did not come up", verdict=None,
                     phases=Phases(detect=0.04, check=0.1))  # fmt: skip
    assert format_round(failed).endswith("check 0.10 s  failed: DRAM did not come up")
    assert report.to_dict()["phases"]["upload"] == 12.34
