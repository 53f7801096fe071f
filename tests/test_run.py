"""`felboot run` end to end on the device model: what lands in the board's memory."""

from dataclasses import replace
from pathlib import Path

import pytest

from felboot.devices import open_transport
from felboot.errors import PlanError, UsageError
from felboot.fel import FelDevice
from felboot.images.spl import SplHeader
from felboot.progress import TransferProgress
from felboot.run import RunRequest, command_lines, execute, prepare

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = ROOT / "fixtures" / "payloads"
IMAGES = ROOT / "fixtures" / "images"

A20 = dict(
    uboot=(IMAGES / "u-boot-sunxi-with-spl-a20.bin",),
    xen=PAYLOADS / "xen-arm32.zimage",
    kernel=PAYLOADS / "zImage-arm32",
    dtb=PAYLOADS / "sun7i-a20-felboot-test.dtb",
    initrd=PAYLOADS / "initrd.img",
)
A64 = dict(
    uboot=(IMAGES / "u-boot-sunxi-with-spl-a64.bin",),
    xen=PAYLOADS / "xen-arm64.Image",
    kernel=PAYLOADS / "Image-arm64",
    dtb=PAYLOADS / "sun50i-a64-felboot-test.dtb",
)


class CountingTransport:
    """Wraps the model's transport to count bulk transfers and bytes (the client is unchanged)."""

    def __init__(self, inner):
        self.inner = inner
        self.description = inner.description
        self.transfers = 0
        self.bytes_out = 0

    def bulk_out(self, data):
        self.transfers += 1
        self.bytes_out += len(data)
        self.inner.bulk_out(data)

    def bulk_in(self, length):
        self.transfers += 1
        return self.inner.bulk_in(length)

    def pause(self, seconds, why):
        self.inner.pause(seconds, why)

    def close(self):
        self.inner.close()


def boot(device_spec, request):
    sim = open_transport(device_spec)
    counter = CountingTransport(sim)
    device = FelDevice(counter)
    report = execute(device, prepare(request), request, TransferProgress(None))
    return sim.board, report, counter


def assert_plan_landed(board, report):
    for region in report.plan.regions:
        assert board.read_memory(region.start, region.size) == region.payload, region.name
    script = report.plan.script_address
    assert board.read_memory(script, len(report.script.image)) == report.script.image
    header = SplHeader.parse(board.read_memory(board.soc.spl_addr, SplHeader.sizeof()))
    assert header.magic == b"eGON.FEL"
    assert header.fel_script_address == script and header.fel_uenv_length == 0


@pytest.mark.parametrize(("board_name", "dram"), [("cubieboard2", "1G"), ("cubietruck", "2G")])
def test_a20_xen_run_places_every_image_and_starts_uboot(board_name, dram):
    board, report, _ = boot(f"sim:soc=a20,dram={dram}", RunRequest(board=board_name, **A20))
    assert_plan_landed(board, report)
    assert report.plan.dram_size == (1 << 30 if dram == "1G" else 2 << 30)
    started = [e for e in board.events if e.kind == "uboot_started"]
    assert [e.address for e in started] == [report.uboot.entry] == [0x4A000000]
    assert board.left_fel and not board.hung
    top = report.plan.dram_base + report.plan.dram_size
    assert max(region.end for region in report.plan.regions) <= top - (128 << 20)


def test_a64_run_switches_to_aarch64_at_atf():
    board, report, _ = boot("sim:soc=a64,dram=2G", RunRequest(board="pine64-plus", **A64))
    assert_plan_landed(board, report)
    resets = [e for e in board.events if e.kind == "aarch64_reset"]
    assert [e.address for e in resets] == [report.uboot.entry]
    assert report.uboot.aarch64 and report.plan.boot_command == "booti"


def test_family_profile_plans_after_the_spl_reports_dram():
    # The family's dom0_mem=512M would take all of this board (test_input_checks.py).
    request = RunRequest(board="a20", dom0_mem="256M", **A20)
    assert prepare(request).plan is None  # DRAM size unknown until the SPL ran
    board, report, _ = boot("sim:soc=a20,dram=512M", request)
    assert report.plan.dram_size == 512 << 20
    assert_plan_landed(board, report)


def test_profile_dram_differs_from_the_board_replans():
    board, report, _ = boot("sim:soc=a20,dram=2G", RunRequest(board="cubieboard2", **A20))
    assert report.plan.dram_size == 2 << 30
    assert any("planned again" in note for note in report.notes)
    assert_plan_landed(board, report)


def test_wrong_soc_is_refused_before_anything_is_written():
    sim = open_transport("sim:soc=h3")
    request = RunRequest(board="cubieboard2", **A20)
    with pytest.raises(UsageError, match=r"is an H3, but profile cubieboard2 is for an A20"):
        execute(FelDevice(sim), prepare(request), request, TransferProgress(None))
    assert not sim.board.dram_ready and not sim.board.events


def test_images_that_do_not_fit_fail_before_the_device_is_touched():
    request = RunRequest(board="cubieboard2", reserve_top=(1 << 30) - (4 << 20), **A20)
    with pytest.raises(
        PlanError, match=r"zImage-arm32 \(zImage\) needs 192 KiB.*only 4 MiB is left"
    ):
        prepare(request)


def test_bulk_transfers_and_bytes_against_the_minimum():
    """The run's wire cost compared with the least the protocol needs for the same bytes."""
    request = RunRequest(board="cubieboard2", **A20)
    _, report, counter = boot("sim:soc=a20,dram=1G", request)
    payload = report.bytes_written
    # Minimum: one FEL WRITE per contiguous piece = 3 exchanges of (request, data, response)
    # around a 16-byte message and an 8-byte status, plus the data in 512 KiB transfers.
    pieces = len(report.plan.regions) + 1 + len(report.uboot.regions) + 1  # + script + SPL
    assert counter.bytes_out >= payload
    overhead = counter.bytes_out - payload
    print(
        f"\nrun on A20: {counter.transfers} bulk transfers, {counter.bytes_out} bytes out, "
        f"{payload} payload bytes, {overhead} bytes of framing/thunks, {pieces} pieces"
    )
    assert overhead < 64 * 1024  # thunks, MMU table round trip and framing, not payload copies


def test_dry_run_request_needs_no_uboot():
    request = replace(RunRequest(board="cubietruck", **A20), uboot=(), need_uboot=False)
    prepared = prepare(request)
    assert prepared.plan is not None and prepared.plan.dram_size == 2 << 30


def test_progress_total_matches_what_is_sent_after_a_replan():
    """The first total counts the profile's plan; a re-plan must replace it, not add to it."""

    class Bar:
        total = 0

        def update(self, count):
            pass

        def refresh(self):
            pass

    from felboot.run import upload_size

    request = RunRequest(board="cubieboard2", **A20)  # the profile says 1 GiB
    prepared = prepare(request)
    bar = Bar()
    bar.total = upload_size(prepared)
    progress = TransferProgress(bar)
    sim = open_transport("sim:soc=a20,dram=2G")
    report = execute(FelDevice(sim), prepared, request, progress)
    assert any("planned again" in note for note in report.notes)
    assert bar.total == progress.done == report.bytes_written


def test_command_lines_drop_profile_options_the_user_gives_again():
    # ImageBuilder's XEN_CMD and DOM0_CMD restate the console and memory the profile has.
    request = RunRequest(
        board="cubieboard2",
        xen_args="console=dtuart dtuart=serial0 dom0_mem=256M vwfi=native",
        dom0_args="console=hvc0 earlycon=xen root=/dev/mmcblk0p2",
        **A20,
    )
    xen_args, dom0_args = command_lines(prepare(request).inputs, request)
    assert xen_args == "console=dtuart dtuart=serial0 dom0_mem=256M vwfi=native"
    # Linux may take an option twice (console=): only the exact repeat goes.
    assert dom0_args == (
        "earlycon=xenboot clk_ignore_unused console=hvc0 earlycon=xen root=/dev/mmcblk0p2"
    )
    mem_only = replace(request, xen_args="", dom0_args="", dom0_mem="300M")
    xen_args, dom0_args = command_lines(prepare(mem_only).inputs, mem_only)
    assert xen_args == "console=dtuart dom0_mem=300M"
    assert dom0_args == "console=hvc0 earlycon=xenboot clk_ignore_unused"
