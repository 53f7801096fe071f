"""The reference client judges the model: Debian's unmodified sunxi-fel through the libusb stand-in.

sunxi-fel works on real boards; every command here must work the same against
felboot's device model, with the output sunxi-fel prints on hardware and the
final device state a real board would be in. A failure here means the model is
wrong, however green the rest of the suite.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from felboot.images.fit import FitImage, select_config
from felboot.images.uboot import load_uboot
from felboot.images.uimage import LegacyImage
from felboot.sim.options import parse_options
from tests.standin import (
    ClientRun,
    debian_file,
    events,
    run_client,
    standin_lib,
    start_server,
    sunxi_fel,
    sunxi_fel_a64_bundle,
)
from tests.support import IMAGES, ROOT

__all__ = ["standin_lib"]  # the session fixture, imported so pytest finds it here

# sunxi-fel's aw_fel_print_version() format (fel.c), as on a real A20.
A20_VERSION = (
    "AWUSBFEX soc=00001651(A20) 00000001 ver=0001 44 08 scratchpad=00007e00 00000000 00000000\n"
)
# sunxi-fel exits with 2 after any libusb error in a bulk transfer (fel_lib.c usb_error()).
SUNXI_FEL_USB_ERROR = 2


def sid_text(spec: str) -> str:
    return ":".join(f"{word:08x}" for word in parse_options(spec).sid)


def fel(lib: Path, tmp_path: Path, *args: str | Path, spec: str = "sim", faults=()) -> ClientRun:
    command = sunxi_fel(*args)  # skips first when sunxi-fel is missing
    board = start_server(lib, tmp_path / "board", spec, faults)
    return run_client(board, command)


def assert_clean(run: ClientRun) -> None:
    assert run.returncode == 0, run.stderr
    assert run.state["connections"] == 1, "sunxi-fel did not reach the model through the stand-in"
    assert not run.state["hung"], run.state["hang_reason"]
    assert run.state["undecoded_out"] == 0


@pytest.mark.parametrize(
    ("spec", "soc_id", "name", "scratchpad"),
    [("sim", 0x1651, "A20", 0x7E00), ("sim:soc=a64", 0x1689, "A64", 0x17E00),
     ("sim:soc=h3", 0x1680, "H3", 0x7E00)],
)  # fmt: skip
def test_version(standin_lib: Path, tmp_path: Path, spec, soc_id, name, scratchpad) -> None:
    run = fel(standin_lib, tmp_path, "version", spec=spec)
    assert_clean(run)
    # fel_lib.c aw_fel_get_version() keeps only the low 16 bits of the scratchpad word.
    assert run.stdout == (
        f"AWUSBFEX soc={soc_id:08x}({name}) 00000001 ver=0001 44 08 "
        f"scratchpad={scratchpad & 0xFFFF:08x} 00000000 00000000\n"
    )
    assert [c["command"] for c in run.state["fel_commands"]][:1] == ["VERSION"]


def test_version_a20_exact(standin_lib: Path, tmp_path: Path) -> None:
    run = fel(standin_lib, tmp_path, "version")
    assert_clean(run)
    assert run.stdout == A20_VERSION
    # open: claim, read the endpoints, VERSION: AWUC, message, AWUS, AWUC, 32 bytes, AWUS, status
    assert [c["command"] for c in run.state["fel_commands"]] == ["VERSION"]
    assert run.state["transfers"][0] == {
        "n": 1, "dir": "out", "endpoint": 0x01, "length": 32, "status": 0, "moved": 32,
    }  # fmt: skip


@pytest.mark.parametrize("spec", ["sim", "sim:soc=h3", "sim:soc=a64"])
def test_sid(standin_lib: Path, tmp_path: Path, spec: str) -> None:
    run = fel(standin_lib, tmp_path, "sid", spec=spec)
    assert_clean(run)
    assert run.stdout == sid_text(spec.partition(":")[2]) + "\n"


@pytest.mark.parametrize("soc", ["h3", "a64"])
def test_sid_of_a_secure_fused_board_after_sunxi_fels_smc_workaround(
    standin_lib: Path, tmp_path: Path, soc: str
) -> None:
    # The model's fel=nonsecure (probe word and e-fuses read zero until smc #0) as the
    # reference client meets it: it must apply its workaround and print the real SID.
    spec = f"sim:soc={soc},fel=nonsecure"
    run = fel(standin_lib, tmp_path, "sid", spec=spec)
    assert_clean(run)
    assert run.stdout == sid_text(spec.partition(":")[2]) + "\n"
    assert [kind for kind, _ in events(run.state)] == ["secure_state"]
    assert [c["command"] for c in run.state["fel_commands"]][:4] == [
        "VERSION", "READ", "WRITE", "EXEC"
    ]  # fmt: skip


def test_readl_reads_the_sid_register(standin_lib: Path, tmp_path: Path) -> None:
    # A20: the SID e-fuses are memory-mapped at 0x01c23800 (sunxi-tools soc_info.c sid_base).
    run = fel(standin_lib, tmp_path, "readl", "0x01c23800")
    assert_clean(run)
    assert run.stdout == f"0x{parse_options('').sid[0]:08x}\n"


def test_writel_then_readl_and_hexdump(standin_lib: Path, tmp_path: Path) -> None:
    run = fel(
        standin_lib, tmp_path,
        "writel", "0x3000", "0xdeadbeef", "readl", "0x3000", "hexdump", "0x3000", "8",
    )  # fmt: skip
    assert_clean(run)
    readl, hexdump = run.stdout.splitlines()
    assert readl == "0xdeadbeef"
    assert hexdump.startswith("00003000: ef be ad de ")


def test_write_and_read_back_sram(standin_lib: Path, tmp_path: Path) -> None:
    data = bytes(range(256)) * 32  # 8 KiB into free SRAM A1 (0x2000-0x3fff on A20)
    source, back = tmp_path / "in.bin", tmp_path / "out.bin"
    source.write_bytes(data)
    run = fel(standin_lib, tmp_path, "write", "0x2000", source, "read", "0x2000", "8192", back)
    assert_clean(run)
    assert back.read_bytes() == data
    kinds = [(c["command"], c["address"], c["length"]) for c in run.state["fel_commands"]]
    assert ("WRITE", 0x2000, 8192) in kinds
    assert ("READ", 0x2000, 8192) in kinds


def test_dram_before_the_spl_times_out_like_a_real_board(standin_lib: Path, tmp_path: Path) -> None:
    run = fel(standin_lib, tmp_path, "hexdump", "0x40000000", "16")
    assert run.returncode == SUNXI_FEL_USB_ERROR
    assert "ERROR -7: Operation timed out" in run.stderr
    assert run.state["hung"] and "before DRAM was initialised" in run.state["hang_reason"]


def test_spl_brings_dram_up_and_stays_in_fel(standin_lib: Path, tmp_path: Path) -> None:
    image = debian_file("Cubieboard2", "u-boot-sunxi-with-spl.bin")
    run = fel(standin_lib, tmp_path, "spl", image)
    assert_clean(run)
    assert run.state["dram_ready"]
    assert events(run.state) == [("spl", 0)]
    assert not run.state["left_fel"]


def legacy_entry(path: Path) -> int:
    main = load_uboot([path]).main
    assert isinstance(main, LegacyImage)
    return main.entry


def test_uboot_a20_cubieboard2_starts_at_the_legacy_entry(
    standin_lib: Path, tmp_path: Path
) -> None:
    image = debian_file("Cubieboard2", "u-boot-sunxi-with-spl.bin")
    entry = legacy_entry(image)
    run = fel(standin_lib, tmp_path, "-v", "uboot", image)
    assert_clean(run)
    assert run.stdout.splitlines()[-1] == f"Starting U-Boot (0x{entry:08X})."
    assert events(run.state) == [("spl", 0), ("uboot_started", entry)]
    assert run.state["left_fel"]


def test_uboot_h3_orangepi_plus(standin_lib: Path, tmp_path: Path) -> None:
    image = debian_file("orangepi_plus", "u-boot-sunxi-with-spl.bin")
    entry = legacy_entry(image)
    run = fel(standin_lib, tmp_path, "-v", "uboot", image, spec="sim:soc=h3")
    assert_clean(run)
    assert "MMU is not enabled by BROM" in run.stdout  # the H3 ROM runs with the MMU off
    assert run.stdout.splitlines()[-1] == f"Starting U-Boot (0x{entry:08X})."
    assert events(run.state) == [("spl", 0), ("uboot_started", entry)]


def test_uboot_a64_pine64_plus_resets_into_atf(standin_lib: Path, tmp_path: Path) -> None:
    bundle_file = sunxi_fel_a64_bundle("pine64_plus", tmp_path)
    bundle = load_uboot([bundle_file])
    fit = bundle.main
    assert isinstance(fit, FitImage)
    config = select_config(fit, bundle.spl.dt_name, dram_size_mib=2048)
    assert config.firmware is not None
    atf = fit.images[config.firmware]
    atf_entry = atf.entry if atf.entry is not None else atf.load
    run = fel(standin_lib, tmp_path, "-v", "uboot", bundle_file, spec="sim:soc=a64,dram=2G")
    assert_clean(run)
    assert f"Starting U-Boot (0x{atf_entry:08X})." in run.stdout
    assert "RMR mode 3... done." in run.stdout  # the log line real A64 boards show
    spl_address = parse_options("soc=a64").soc.spl_addr
    assert events(run.state) == [("spl", spl_address), ("aarch64_reset", atf_entry)]
    assert run.state["left_fel"]


def test_uboot_with_the_synthetic_a20_fixture(standin_lib: Path, tmp_path: Path) -> None:
    image = IMAGES / "u-boot-sunxi-with-spl-a20.bin"
    entry = legacy_entry(image)
    run = fel(standin_lib, tmp_path, "uboot", image)
    assert_clean(run)
    assert events(run.state) == [("spl", 0), ("uboot_started", entry)]


@pytest.mark.parametrize("fault", ["2:zlp", "4:short", "7:zlp"])
def test_short_and_zero_length_packets_are_tolerated(
    standin_lib: Path, tmp_path: Path, fault: str
) -> None:
    # fel_lib.c usb_bulk_recv() loops until it has every byte it asked for.
    run = fel(standin_lib, tmp_path, "version", faults=[fault])
    assert_clean(run)
    assert run.stdout == A20_VERSION
    assert [f["kind"] for f in run.state["faults_fired"]] == [fault.partition(":")[2]]


@pytest.mark.parametrize(
    ("fault", "message"),
    [("3:stall", "usb_bulk_recv() ERROR -9: Pipe error"),
     ("2:timeout", "usb_bulk_send() ERROR -7: Operation timed out"),
     ("2:gone", "usb_bulk_send() ERROR -4: No such device"),
     ("3:die", "usb_bulk_recv() ERROR -4: No such device")],
)  # fmt: skip
def test_usb_failures_reach_sunxi_fel_as_libusb_errors(
    standin_lib: Path, tmp_path: Path, fault: str, message: str
) -> None:
    run = fel(standin_lib, tmp_path, "version", faults=[fault])
    assert run.returncode == SUNXI_FEL_USB_ERROR
    assert message in run.stderr


def test_two_boards_enumerate_in_socket_order(standin_lib: Path, tmp_path: Path) -> None:
    command = sunxi_fel("--list")
    first = start_server(standin_lib, tmp_path / "a", "sim")
    second = start_server(standin_lib, tmp_path / "b", "sim:soc=h3")
    env = first.env | {"FELBOOT_STANDIN_SOCKETS": f"{first.socket}:{second.socket}"}
    try:
        result = subprocess.run(
            [str(c) for c in command], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        first.stop(), second.stop()
    assert result.returncode == 0, result.stderr
    lines = [re.sub(r"\s+", " ", line) for line in result.stdout.splitlines()]
    assert lines == [
        f"USB device 001:010 Allwinner A20 {sid_text('')}",
        f"USB device 001:011 Allwinner H3 {sid_text('soc=h3')}",
    ]


def felboot_sim(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "felboot", "--json", "--device", "sim:soc=h3", *args],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout


def test_sunxi_fel_agrees_with_felboot_on_version_and_sid(
    standin_lib: Path, tmp_path: Path
) -> None:
    version = fel(standin_lib, tmp_path / "v", "version", spec="sim:soc=h3")
    sid = fel(standin_lib, tmp_path / "s", "sid", spec="sim:soc=h3")
    ours = json.loads(felboot_sim("version"))
    match = re.fullmatch(
        r"AWUSBFEX soc=([0-9a-f]{8})\((\w+)\) ([0-9a-f]{8}) ver=([0-9a-f]{4}) 44 08 "
        r"scratchpad=([0-9a-f]{8}) 00000000 00000000\n",
        version.stdout,
    )
    assert match, version.stdout
    assert (int(match[1], 16), match[2], int(match[3], 16), int(match[4], 16)) == (
        ours["soc_id"], ours["soc"], ours["firmware"], ours["protocol"],
    )  # fmt: skip
    assert int(match[5], 16) == ours["scratchpad"] & 0xFFFF  # sunxi-fel prints 16 bits
    assert sid.stdout.strip() == json.loads(felboot_sim("sid"))["sid"]
