"""Issue 9, item 3: dom0_mem, DRAM size, script/write ranges, U-Boot in DRAM, --reserve-top.

Each check runs before anything is sent to the board; each error is one line naming the value.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from pathlib import Path

import pytest

from felboot.boards import load_board
from felboot.boot import boot_uboot, check_writes
from felboot.cli import main
from felboot.devices import open_transport
from felboot.errors import ImageError, PlanError, UnsafeWrite, UsageError
from felboot.fel import FelDevice
from felboot.images.dtb import parse_dtb
from felboot.images.kernel import parse_kernel
from felboot.images.uboot import load_uboot
from felboot.plan import Dom0Mem, check_write_ranges, make_plan, parse_dom0_mem
from felboot.progress import TransferProgress
from felboot.run import RunRequest, execute, prepare
from felboot.sim.layout import dram_window
from felboot.soc import soc_by_name

MiB = 1 << 20
GiB = 1 << 30
ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = ROOT / "fixtures" / "payloads"
IMAGES = ROOT / "fixtures" / "images"
OUTSIDE_DRAM = IMAGES / "broken-u-boot-sunxi-with-spl-a20-outside-dram.bin"
A20_UBOOT = IMAGES / "u-boot-sunxi-with-spl-a20.bin"
IMAGE_FILES = (
    PAYLOADS / "xen-arm32.zimage",
    PAYLOADS / "zImage-arm32",
    PAYLOADS / "sun7i-a20-felboot-test.dtb",
)
A20 = dict(
    uboot=(A20_UBOOT,),
    xen=IMAGE_FILES[0],
    kernel=IMAGE_FILES[1],
    dtb=IMAGE_FILES[2],
)
A20_SOC = soc_by_name("A20")


def a20_images():
    xen = parse_kernel(IMAGE_FILES[0].read_bytes(), str(IMAGE_FILES[0]), "Xen")
    kernel = parse_kernel(IMAGE_FILES[1].read_bytes(), str(IMAGE_FILES[1]), "kernel")
    dtb = parse_dtb(IMAGE_FILES[2].read_bytes(), str(IMAGE_FILES[2]))
    return xen, kernel, dtb


def a20_plan(dram_size=GiB, **options):
    xen, kernel, dtb = a20_images()
    return make_plan(load_board("cubieboard2"), dram_size, xen, kernel, dtb, None, **options)


# dom0_mem: Xen's syntax ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512M", 512 * MiB),
        ("512m", 512 * MiB),
        ("1G", GiB),
        ("524288", 512 * MiB),  # no suffix: KiB (parse_size_and_unit)
        ("524288K", 512 * MiB),
        ("0x200M", 512 * MiB),
        ("0x20000000B", 0x20000000B << 10),  # B is a hex digit here: KiB, as in Xen
        ("01000M", 512 * MiB),  # a leading 0 is octal, as simple_strtoull(base 0)
    ],
)
def test_dom0_mem_reads_as_xen_does(text, size):
    assert parse_dom0_mem(text, "--dom0-mem") == Dom0Mem(size, text, "--dom0-mem")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("min:512M,max:1G", "min:/max:/%/list forms are x86's"),
        ("512M,max:1G", "x86's"),
        ("50%", "x86's"),
        ("-128M", "x86's"),
        ("512MB", "at most one of T/G/M/K/B"),  # Xen: -EINVAL, then 512M by default
        ("512MiB", "at most one of T/G/M/K/B"),
        ("half", "at most one of T/G/M/K/B"),
        ("", "at most one of T/G/M/K/B"),
        ("08M", "at most one of T/G/M/K/B"),  # 8 is no octal digit
    ],
)
def test_dom0_mem_xen_refuses_is_refused_naming_value_and_option(text, why):
    with pytest.raises(UsageError, match=rf"^--dom0-mem: dom0_mem='{text}' .*{why}.*512M$"):
        parse_dom0_mem(text, "--dom0-mem")


def test_dom0_mem_zero_is_refused():
    with pytest.raises(UsageError, match=r"dom0_mem='0K' is zero .*gives dom0 512M"):
        parse_dom0_mem("0K", "--dom0-mem")


# dom0_mem against DRAM ----------------------------------------------------------------------


def test_dom0_mem_as_large_as_dram_is_refused():
    dom0 = parse_dom0_mem("1G", "--dom0-mem")
    with pytest.raises(
        PlanError,
        match=r"--dom0-mem: dom0_mem=1G \(1 GiB\) is not less than the 1 GiB of DRAM "
        r"cubieboard2 has.*pass --dom0-mem 512M or less$",
    ):
        a20_plan(dom0_mem=dom0)


def test_dom0_mem_leaving_arm32_xen_no_heap_is_refused():
    dom0 = parse_dom0_mem("1000M", "--dom0-mem")
    with pytest.raises(PlanError, match=r"leaves Xen 24 MiB .*at least 32 MiB .*setup\.c"):
        a20_plan(dom0_mem=dom0)


def test_dom0_mem_leaving_arm64_xen_little_is_a_warning():
    board = load_board("pine64-plus")
    xen = parse_kernel((PAYLOADS / "xen-arm64.Image").read_bytes(), "xen-arm64.Image", "Xen")
    kernel = parse_kernel((PAYLOADS / "Image-arm64").read_bytes(), "Image-arm64", "kernel")
    name = PAYLOADS / "sun50i-a64-felboot-test.dtb"
    dtb = parse_dtb(name.read_bytes(), str(name))
    dom0 = parse_dom0_mem("2040M", "--dom0-mem")
    plan = make_plan(board, 2 * GiB, xen, kernel, dtb, None, dom0_mem=dom0)
    assert any("dom0_mem=2040M" in w and "leaves Xen 8 MiB" in w for w in plan.warnings)


def test_dom0_mem_ignored_without_xen():
    _, kernel, dtb = a20_images()
    dom0 = parse_dom0_mem("4G", "--dom0-mem")
    board = load_board("cubieboard2")
    plan = make_plan(board, GiB, None, kernel, dtb, None, no_xen=True, dom0_mem=dom0)
    assert plan.no_xen


def test_profile_dom0_mem_too_large_for_the_board_names_the_profile(tmp_path):
    profile = tmp_path / "tiny.toml"
    profile.write_text('soc = "A20"\ndram_size = "512M"\n')  # inherits dom0_mem=512M
    request = RunRequest(board_file=profile, need_uboot=False, **{**A20, "uboot": ()})
    with pytest.raises(
        PlanError, match=r"^profile tiny \(.*tiny\.toml\): dom0_mem=512M .*pass --dom0-mem 256M"
    ):
        prepare(request)
    # --dom0-mem wins over the profile's, and --xen-args too
    assert prepare(replace(request, dom0_mem="256M")).plan is not None
    assert prepare(replace(request, xen_args="dom0_mem=384M")).plan is not None


def test_bad_dom0_mem_is_refused_before_the_spl_even_when_dram_is_detected():
    request = RunRequest(board="a20", dom0_mem="min:1G", **A20)
    with pytest.raises(UsageError, match=r"--dom0-mem: dom0_mem='min:1G'"):
        prepare(request)
    request = RunRequest(board="a20", dom0_mem="2G", **A20)  # an A20 has at most 2 GiB
    with pytest.raises(PlanError, match=r"dom0_mem=2G \(2 GiB\) is not less than the most DRAM"):
        prepare(request)


def test_family_default_dom0_mem_on_a_512m_board_fails_after_the_spl_names_it():
    sim = open_transport("sim:soc=a20,dram=512M")
    request = RunRequest(board="a20", **A20)
    with pytest.raises(PlanError, match=r"^profile a20 .*dom0_mem=512M .*512 MiB of DRAM"):
        execute(FelDevice(sim), prepare(request), request, TransferProgress(None))
    assert not any(e.kind == "uboot_started" for e in sim.board.events)


# DRAM size ---------------------------------------------------------------------------------


def test_dram_window_is_the_socs_fact_and_the_model_uses_it():
    assert A20_SOC.dram_window == (0x40000000, 0xC0000000)
    assert soc_by_name("H3").dram_window == (0x40000000, 0xC0000000)
    assert soc_by_name("A64").dram_window == (0x40000000, 1 << 32)
    window = dram_window(A20_SOC)
    assert (window.start, window.end) == A20_SOC.dram_window


def test_dram_size_beyond_the_window_is_refused():
    request = RunRequest(board="cubieboard2", dram_size=3 * GiB, **A20)
    with pytest.raises(
        UsageError,
        match=r"^--dram-size 3 GiB is more than the A20 can address: its DRAM window is "
        r"0x40000000-0xbfffffff \(2 GiB\)",
    ):
        prepare(request)


def test_profile_dram_size_beyond_the_window_is_refused(tmp_path):
    profile = tmp_path / "huge.toml"
    profile.write_text('soc = "A20"\ndram_size = "4G"\n')
    with pytest.raises(UsageError, match=r"^dram_size 4 GiB of profile huge \(.*huge\.toml\)"):
        prepare(RunRequest(board_file=profile, **A20))


def test_planner_caps_dram_at_the_window_as_uboot_does():
    plan = a20_plan(3 * GiB)
    assert plan.dram_size == 2 * GiB
    assert any("uses only the first 2 GiB" in w for w in plan.warnings)


def test_spl_measurement_wins_over_dram_size():
    request = RunRequest(board="cubieboard2", dram_size=512 * MiB, dom0_mem="256M", **A20)
    prepared = prepare(request)
    assert prepared.plan is not None and prepared.plan.dram_size == 512 * MiB
    sim = open_transport("sim:soc=a20,dram=1G")
    report = execute(FelDevice(sim), prepared, request, TransferProgress(None))
    assert report.plan.dram_size == GiB
    assert any(
        note.startswith("--dram-size says 512 MiB but the board has 1024 MiB (")
        and "planned again for 1024 MiB" in note
        for note in report.notes
    )
    for region in report.plan.regions:
        assert sim.board.read_memory(region.start, region.size) == region.payload


def test_dram_size_that_matches_the_board_is_not_replanned():
    request = RunRequest(board="cubieboard2", dram_size=GiB, **A20)
    prepared = prepare(request)
    report = execute(
        FelDevice(open_transport("sim:soc=a20,dram=1G")), prepared, request, TransferProgress(None)
    )
    assert report.plan is prepared.plan
    assert not any("planned again" in note for note in report.notes)


# The run's script address ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "error", "message"),
    [
        (0x0, UnsafeWrite, r"at 0x00000000-0x0000ffff: it overlaps 0x00001c00-0x00001fff, where "
         r"the A20 boot ROM"),
        (0x7C00, UnsafeWrite, r"overlaps 0x00007c00-0x00007fff, where the A20 boot ROM"),
        (0xFFFF8000, UsageError, r"runs past 4 GiB"),
        (0x20000000, PlanError, r"lies outside DRAM 0x40000000-0x7fffffff of cubieboard2"),
        (0x4A000000, PlanError, r"overlaps the U-Boot load area at 0x4a000000"),
        (0x7F000000, PlanError, r"overlaps what U-Boot claims after relocating \(orangepi_plus "
         r"\(HDMI\) measured\) at 0x78f61000-0x7fffffff"),
        (0x7FFF8000, PlanError, r"at 0x7fff8000-0x80007fff lies outside DRAM"),
        (0xBFFF8000, UsageError, r"runs past the end of the A20's DRAM window at 0xc0000000"),
    ],
)  # fmt: skip
def test_script_address_is_checked_at_plan_time(address, error, message):
    with pytest.raises(error, match=rf"--script-address.*{message}"):
        a20_plan(script_address=address)


def test_script_address_clear_of_a_large_reserve_is_fine():
    plan = a20_plan(reserve_top=(1 << 30) - (64 << 20))  # the reserve covers 0x43100000
    assert plan.script_address == 0x43100000


def test_script_address_in_the_dry_run_and_plan_commands(capsys):
    images = [str(path) for path in IMAGE_FILES]
    for command in (["plan"], ["run", "--dry-run"], ["script", "-o", "/nonexistent/x"]):
        code = main([*command, "--board", "cubieboard2", "--script-address", "0x7c00", *images])
        err = capsys.readouterr().err.strip()
        assert code == UnsafeWrite.exit_code, command
        assert len(err.splitlines()) == 1 and "0x00007c00-0x00007fff" in err


# felboot uboot: --write and --script ranges -----------------------------------------------


def a20_bundle():
    return load_uboot([A20_UBOOT])


def test_spl_header_is_protected_from_a_small_script_at_0():
    with pytest.raises(
        UnsafeWrite,
        match=r"^refusing to write the boot script at 0x00000000-0x000003ff: it overlaps the "
        r"SPL header in SRAM at 0x00000000-0x0000005f, where U-Boot looks for the boot "
        r"script's address",
    ):
        check_writes(A20_SOC, a20_bundle(), [], (0x0, bytes(1024)))


@pytest.mark.parametrize(
    ("writes", "script", "error", "message"),
    [
        ([(0x5C00, bytes(16), "a.bin")], None, UnsafeWrite, r"a\.bin at 0x00005c00-0x00005c0f: "
         r"it overlaps 0x00005c00-0x00006fff, where the A20 boot ROM"),
        ([(0xFFFFFFF0, bytes(32), "a.bin")], None, UsageError, r"a\.bin at 0xfffffff0 \+ 0x20 "
         r"bytes runs past 4 GiB"),
        ([(0x4A000100, bytes(16), "a.bin")], None, UnsafeWrite, r"overlaps U-Boot at "
         r"0x4a000000-0x4a0007ff"),
        ([(0x50000000, bytes(32), "a.bin"), (0x50000010, bytes(32), "b.bin")], None, UnsafeWrite,
         r"a\.bin at 0x50000000-0x5000001f: it overlaps b\.bin at 0x50000010-0x5000002f"),
        ([(0x50000000, bytes(32), "a.bin")], (0x50000010, bytes(8)), UnsafeWrite,
         r"overlaps the boot script at 0x50000010"),
        ([(0xBFFFFFF0, bytes(32), "a.bin")], None, UsageError, r"runs past the end of the "
         r"A20's DRAM window at 0xc0000000"),
    ],
)  # fmt: skip
def test_uboot_writes_are_checked_before_anything_is_sent(writes, script, error, message):
    sim = open_transport("sim:soc=a20")
    with pytest.raises(error, match=message):
        boot_uboot(FelDevice(sim), a20_bundle(), writes=writes, script=script)
    assert not sim.board.dram_ready and not sim.board.events  # not even the SPL went


def test_uboot_command_script_at_0_is_one_line_and_nothing_is_sent(capsys):
    code = main(
        ["--device", "sim", "uboot", str(A20_UBOOT), "--script", f"{IMAGES / 'boot.scr'}@0x0"]
    )
    err = capsys.readouterr().err.strip()
    assert code == UnsafeWrite.exit_code
    assert len(err.splitlines()) == 1 and "SPL header in SRAM at 0x00000000-0x0000005f" in err


def test_ranges_checker_allows_what_is_clear():
    check_write_ranges(A20_SOC, [("a", 0x50000000, 0x50000010), ("b", 0x50000010, 0x50000020)])
    check_write_ranges(A20_SOC, [("sram", 0x2000, 0x5C00)])  # between the ROM's ranges


# U-Boot outside DRAM ------------------------------------------------------------------------


def test_uboot_loading_outside_dram_is_an_image_error_at_plan_time():
    request = RunRequest(board="cubieboard2", **{**A20, "uboot": (OUTSIDE_DRAM,)})
    with pytest.raises(
        ImageError,
        match=r"outside-dram\.bin at 0x8000: U-Boot loads at "
        r"0x10000000-0x100007ff, outside the A20's DRAM 0x40000000-0xbfffffff",
    ):
        prepare(request)


def test_uboot_loading_outside_dram_in_the_cli_is_one_line(capsys):
    images = [str(path) for path in IMAGE_FILES]
    code = main(["plan", "--board", "cubieboard2", "--uboot", str(OUTSIDE_DRAM), *images])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == ImageError.exit_code
    assert "internal error" not in err[-1] and "outside the A20's DRAM" in err[-1]


def test_uboot_command_refuses_uboot_outside_dram_before_the_spl():
    sim = open_transport("sim:soc=a20")
    with pytest.raises(ImageError, match=r"loads at 0x10000000-0x100007ff, outside"):
        boot_uboot(FelDevice(sim), load_uboot([OUTSIDE_DRAM]))
    assert not sim.board.dram_ready and not sim.board.events


def test_uboot_beyond_the_top_of_dram_is_refused():
    with pytest.raises(PlanError, match=r"U-Boot proper loads at 0x9a000000-.*outside DRAM"):
        a20_plan(uboot_range=(0x9A000000, 0x9A100000))


# --reserve-top -----------------------------------------------------------------------------


def test_reserve_top_below_the_measured_footprint_warns_naming_value_and_source():
    plan = a20_plan(reserve_top=64 * MiB)
    (warning,) = [w for w in plan.warnings if "--reserve-top" in w]
    assert warning.startswith("--reserve-top 64 MiB keeps 64 MiB (0x4000000) free")
    assert "112.6 MiB (0x709f000)" in warning and "orangepi_plus (HDMI)" in warning
    assert "0x78f61000 below 0x80000000, fel.md" in warning


def test_reserve_top_on_a_board_without_display_uses_the_headless_measurement():
    xen, kernel, dtb = a20_images()
    board = dataclasses.replace(load_board("cubieboard2"), display=False)
    plan = make_plan(board, GiB, xen, kernel, dtb, None, reserve_top=64 * MiB)
    assert any("80.6 MiB" in w and "nanopi_neo" in w for w in plan.warnings)
    plan = make_plan(board, GiB, xen, kernel, dtb, None, reserve_top=96 * MiB)
    assert not any("--reserve-top" in w for w in plan.warnings)


def test_reserve_top_at_or_above_the_footprint_or_default_does_not_warn():
    assert not any("--reserve-top" in w for w in a20_plan().warnings)
    assert not any("--reserve-top" in w for w in a20_plan(reserve_top=114 * MiB).warnings)
