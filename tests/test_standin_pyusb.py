"""felboot's real USB path (pyusb, libusb1 backend) through the libusb stand-in, against the model.

The CLI runs as a subprocess with ``--device usb``: device discovery, descriptor
parsing, claiming and every bulk transfer go through pyusb and the stand-in's
libusb-1.0.so.0, exactly as on a board. Every test checks the server saw the
connection, so pyusb silently loading the system libusb (or the libusb-package
wheel) fails it. Injected USB failures must end in one actionable line on
stderr, a non-zero exit, no traceback, and never "U-Boot started".
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from felboot.images.fit import FitImage, select_config
from felboot.images.uboot import load_uboot
from felboot.images.uimage import LegacyImage
from felboot.sim.options import parse_options
from tests.standin import (
    A20_UBOOT,
    RUN_INPUTS,
    ClientRun,
    debian_file,
    events,
    felboot_cli,
    run_client,
    standin_lib,
    start_server,
)

__all__ = ["standin_lib"]  # the session fixture, imported so pytest finds it here

# The one line a failure must print: it names the device and says what to do.
ACTIONABLE = re.compile(r"usb 1:10 \(port 1-1\.1\).*(power-cycle|put the board in FEL|replug)")


def felboot(
    lib: Path, tmp_path: Path, *args: str | Path, spec: str = "sim", faults: tuple[str, ...] = ()
) -> ClientRun:
    board = start_server(lib, tmp_path / "board", spec, faults)
    return run_client(board, felboot_cli(*args))


def assert_ok(run: ClientRun) -> None:
    assert run.returncode == 0, run.stderr
    assert run.state["connections"] >= 1, "felboot did not reach the stand-in: wrong libusb loaded"
    assert run.state["transfers"], "no bulk transfer reached the model"
    assert not run.state["hung"], run.state["hang_reason"]
    assert "Traceback" not in run.stderr


def assert_one_line_failure(run: ClientRun) -> None:
    assert run.state["connections"] >= 1, "felboot did not reach the stand-in: wrong libusb loaded"
    assert run.returncode != 0
    assert "Traceback" not in run.stderr + run.stdout
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert ACTIONABLE.search(lines[0]), lines[0]
    assert "U-Boot started" not in run.stdout + run.stderr
    assert "uboot_started" not in [kind for kind, _ in events(run.state)]


# The commands -------------------------------------------------------------------------


def test_the_stand_in_is_what_pyusb_loaded(standin_lib: Path, tmp_path: Path) -> None:
    board = start_server(standin_lib, tmp_path / "board")
    env = board.env | {"FELBOOT_STANDIN_DEBUG": "1"}
    try:
        result = subprocess.run(
            [str(part) for part in felboot_cli("version")],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        state = board.stop()
    assert result.returncode == 0, result.stderr
    assert "libusb-standin: init" in result.stderr
    assert state["connections"] == 1


def test_list_shows_the_deterministic_bus_position(standin_lib: Path, tmp_path: Path) -> None:
    board = start_server(standin_lib, tmp_path / "board")
    run = run_client(board, felboot_cli("list"))
    assert_ok(run)
    sid = ":".join(f"{word:08x}" for word in parse_options("").sid)
    assert run.stdout.split() == ["usb:1:10", "port", "1-1.1", "A20", "sid", sid]


def test_version(standin_lib: Path, tmp_path: Path) -> None:
    run = felboot(standin_lib, tmp_path, "version")
    assert_ok(run)
    assert run.stdout == (
        "A20 (SoC id 0x1651) on usb 1:10 (port 1-1.1): FEL protocol 1, firmware 1, "
        "scratchpad 0x7e00\n"
    )


@pytest.mark.parametrize("spec", ["sim", "sim:soc=h3", "sim:soc=a64"])
def test_sid(standin_lib: Path, tmp_path: Path, spec: str) -> None:
    run = felboot(standin_lib, tmp_path, "sid", spec=spec)
    assert_ok(run)
    assert run.stdout.strip() == ":".join(
        f"{word:08x}" for word in parse_options(spec.partition(":")[2]).sid
    )


def test_readl_writel_hexdump(standin_lib: Path, tmp_path: Path) -> None:
    board = start_server(standin_lib, tmp_path / "board")
    try:
        for args in (("writel", "0x3000", "0xdeadbeef"), ("readl", "0x3000")):
            result = subprocess.run(
                [str(part) for part in felboot_cli(*args)],
                env=board.env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
        assert result.stdout == "0xdeadbeef\n"
    finally:
        board.stop()
    # hexdump on a fresh board of its own, through run_client for the state checks
    run = felboot(standin_lib, tmp_path / "h", "hexdump", "0x01c23800", "4")
    assert_ok(run)
    first_word = parse_options("").sid[0]
    assert run.stdout.startswith(
        "01c23800: " + " ".join(f"{b:02x}" for b in first_word.to_bytes(4, "little"))
    )


def test_write_and_read(standin_lib: Path, tmp_path: Path) -> None:
    data = bytes(range(256)) * 32
    source, back = tmp_path / "in.bin", tmp_path / "out.bin"
    source.write_bytes(data)
    board = start_server(standin_lib, tmp_path / "board")
    try:
        for args in (("write", "0x2000", source), ("read", "0x2000", "8192", back)):
            result = subprocess.run(
                [str(part) for part in felboot_cli(*args)],
                env=board.env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
    finally:
        state = board.stop()
    assert back.read_bytes() == data
    commands = [(c["command"], c["address"], c["length"]) for c in state["fel_commands"]]
    assert ("WRITE", 0x2000, 8192) in commands
    assert ("READ", 0x2000, 8192) in commands
    assert state["connections"] == 2


def test_spl(standin_lib: Path, tmp_path: Path) -> None:
    run = felboot(
        standin_lib, tmp_path, "spl", debian_file("Cubieboard2", "u-boot-sunxi-with-spl.bin")
    )
    assert_ok(run)
    assert run.state["dram_ready"] and not run.state["left_fel"]
    assert events(run.state) == [("spl", 0)]


def legacy_entry(path: Path) -> int:
    main = load_uboot([path]).main
    assert isinstance(main, LegacyImage)
    return main.entry


@pytest.mark.parametrize(
    ("board", "spec"), [("Cubieboard2", "sim"), ("orangepi_plus", "sim:soc=h3")]
)
def test_uboot_legacy(standin_lib: Path, tmp_path: Path, board: str, spec: str) -> None:
    image = debian_file(board, "u-boot-sunxi-with-spl.bin")
    run = felboot(standin_lib, tmp_path, "uboot", image, spec=spec)
    assert_ok(run)
    assert "U-Boot started" in run.stdout
    assert events(run.state) == [("spl", 0), ("uboot_started", legacy_entry(image))]
    assert run.state["left_fel"]


def test_uboot_a64_fit(standin_lib: Path, tmp_path: Path) -> None:
    spl = debian_file("pine64_plus", "sunxi-spl.bin")
    itb = debian_file("pine64_plus", "u-boot-sunxi-with-spl.fit.itb")
    bundle = load_uboot([spl, itb])
    assert isinstance(bundle.main, FitImage)
    config = select_config(bundle.main, bundle.spl.dt_name, dram_size_mib=2048)
    assert config.firmware is not None
    atf = bundle.main.images[config.firmware]
    run = felboot(standin_lib, tmp_path, "uboot", spl, itb, spec="sim:soc=a64,dram=2G")
    assert_ok(run)
    spl_address = parse_options("soc=a64").soc.spl_addr
    assert events(run.state) == [("spl", spl_address), ("aarch64_reset", atf.entry or atf.load)]


def test_run_the_readme_example(standin_lib: Path, tmp_path: Path) -> None:
    run = felboot(standin_lib, tmp_path, "run", *RUN_INPUTS)
    assert_ok(run)
    assert "U-Boot started" in run.stdout
    assert events(run.state) == [("spl", 0), ("uboot_started", legacy_entry(A20_UBOOT))]


# Injected failures -------------------------------------------------------------------


@pytest.fixture(scope="module")
def clean_uboot(standin_lib: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A fault-free `felboot uboot` session, to place faults on its transfers."""
    run = felboot(standin_lib, tmp_path_factory.mktemp("clean"), "uboot", A20_UBOOT)
    assert_ok(run)
    return run.state


def uboot_upload_transfer(state: dict[str, Any]) -> int:
    """The bulk OUT that carries U-Boot proper: the data of the WRITE to its load address."""
    load = legacy_entry(A20_UBOOT)  # the legacy image loads where it starts
    message = next(
        c["transfer"]
        for c in state["fel_commands"]
        if (c["command"], c["address"]) == ("WRITE", load)
    )
    return int(
        next(
            t["n"]
            for t in state["transfers"]
            if t["n"] > message and t["dir"] == "out" and t["length"] > 32
        )
    )


def first_transfer(state: dict[str, Any]) -> int:
    """The AWUC request of the VERSION read that opening the device starts with."""
    return 1


@pytest.mark.slow  # eight full sessions, each with the post-SPL pause
@pytest.mark.parametrize("kind", ["gone", "stall", "timeout", "die"])
@pytest.mark.parametrize("where", [first_transfer, uboot_upload_transfer])
def test_usb_failure_is_one_actionable_line(
    standin_lib: Path, tmp_path: Path, clean_uboot: dict[str, Any], kind: str, where
) -> None:
    number = where(clean_uboot)
    run = felboot(standin_lib, tmp_path, "uboot", A20_UBOOT, faults=(f"{number}:{kind}",))
    assert [f["kind"] for f in run.state["faults_fired"]] == [kind]
    assert_one_line_failure(run)


def test_run_when_the_model_process_dies(standin_lib: Path, tmp_path: Path) -> None:
    # the model process dies in the middle of `felboot run`'s uploads
    run = felboot(standin_lib, tmp_path, "run", *RUN_INPUTS, faults=("200:die",))
    assert run.state["faults_fired"] == [{"transfer": 200, "kind": "die"}]
    assert_one_line_failure(run)


@pytest.mark.slow  # four full sessions, each with the post-SPL pause
@pytest.mark.parametrize("kind", ["zlp", "short"])
@pytest.mark.parametrize("offset", [1, 3])  # the AWUS after the upload; the status
def test_short_and_zero_length_in_packets_are_joined(
    standin_lib: Path, tmp_path: Path, clean_uboot: dict[str, Any], kind: str, offset: int
) -> None:
    # Real devices may end an IN transfer early; sunxi-fel's usb_bulk_recv() (fel_lib.c)
    # asks again for the rest, and so must felboot.
    number = uboot_upload_transfer(clean_uboot) + offset
    run = felboot(standin_lib, tmp_path, "uboot", A20_UBOOT, faults=(f"{number}:{kind}",))
    assert [f["kind"] for f in run.state["faults_fired"]] == [kind]
    assert_ok(run)
    assert events(run.state) == events(clean_uboot)


DESCRIBE = """
import json, usb.core, usb.util
dev = usb.core.find(idVendor=0x1f3a, idProduct=0xefe8)
cfg = dev.get_active_configuration()
intf = cfg[(0, 0)]
print(json.dumps({
    "bus": dev.bus, "address": dev.address, "ports": list(dev.port_numbers), "speed": dev.speed,
    "configuration": cfg.bConfigurationValue, "interface": intf.bInterfaceNumber,
    "endpoints": [(ep.bEndpointAddress, usb.util.endpoint_type(ep.bmAttributes),
                   ep.wMaxPacketSize) for ep in intf],
}))
"""


def test_descriptors_as_pyusb_reads_them(standin_lib: Path, tmp_path: Path) -> None:
    board = start_server(standin_lib, tmp_path / "board")
    run = run_client(board, [sys.executable, "-c", DESCRIBE])
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {
        "bus": 1, "address": 10, "ports": [1, 1], "speed": 3,  # usb.util.SPEED_HIGH
        "configuration": 1, "interface": 0,
        "endpoints": [[0x01, 2, 512], [0x82, 2, 512]],  # bulk OUT, bulk IN
    }  # fmt: skip
    assert run.state["connections"] == 1 and run.state["transfers"] == []
