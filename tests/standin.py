"""Shared fixtures for the libusb stand-in tests: build it, serve the model, run real clients.

The stand-in (felboot/sim/standin/) is a libusb-1.0.so.0 of our own that forwards
bulk transfers to ``python -m felboot.sim.standin_server``. With it first on
LD_LIBRARY_PATH, Debian's unmodified sunxi-fel and felboot's pyusb path talk to
the device model as to a board on the bus.
"""

from __future__ import annotations

import collections
import difflib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from felboot.sim.standin import StandinBuildError, build, find_compiler, libusb_header
from tests.support import IMAGES, PAYLOADS, ROOT

#: The README's `felboot run` on the fixtures, for felboot and (as plan + writes) for sunxi-fel.
A20_UBOOT = IMAGES / "u-boot-sunxi-with-spl-a20.bin"
RUN_INPUTS = (
    "--board", "a20", "--uboot", str(A20_UBOOT),
    "--initrd", str(PAYLOADS / "initrd.img"),
    str(PAYLOADS / "xen-arm32.zimage"), str(PAYLOADS / "zImage-arm32"),
    str(PAYLOADS / "sun7i-a20-felboot-test.dtb"),
)  # fmt: skip

SUNXI_FEL = shutil.which("sunxi-fel")
NO_SUNXI_FEL = "sunxi-fel is not installed (Debian package sunxi-tools)"
UBOOT_DIR = Path("/usr/lib/u-boot")
SERVER_START_TIMEOUT = 20.0
CLIENT_TIMEOUT = 120.0


def standin_library(outdir: Path) -> Path:
    """The built stand-in, or a skip naming what is missing (never a silent pass)."""
    if find_compiler() is None:
        pytest.skip("no C compiler (cc/gcc) to build the libusb stand-in")
    if libusb_header() is None:
        pytest.skip("libusb.h is missing (Debian package libusb-1.0-0-dev)")
    try:
        return build(outdir)
    except StandinBuildError as error:
        pytest.fail(str(error))  # compiler and header are there: a build failure is a bug


@pytest.fixture(scope="session")
def standin_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in built once per session (shared by every module that imports this fixture)."""
    return standin_library(tmp_path_factory.getbasetemp() / "standin-build")


@dataclass
class ServedBoard:
    """One standin_server process serving one model board on one socket."""

    socket: Path
    state_file: Path
    library: Path
    process: subprocess.Popen[bytes]
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The environment a client needs to find this board through the stand-in."""
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = str(self.library.parent)
        env["FELBOOT_STANDIN_SOCKETS"] = str(self.socket)
        env["PYTHONPATH"] = str(ROOT)
        env.pop("FELBOOT_STANDIN_DEBUG", None)
        return env

    def stop(self) -> dict[str, Any]:
        """End the server (if the board has not already left the bus) and read its state."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.state_file.exists():
            self.state = json.loads(self.state_file.read_text())
        return self.state


def start_server(
    library: Path, work: Path, device_spec: str = "sim", faults: Sequence[str] = ()
) -> ServedBoard:
    work.mkdir(parents=True, exist_ok=True)
    sock, state = work / "fel.sock", work / "state.json"
    command = [sys.executable, "-m", "felboot.sim.standin_server", "--socket", str(sock)]
    command += ["--device-spec", device_spec, "--state", str(state)]
    for fault in faults:
        command += ["--fault", fault]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while not sock.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            _, err = process.communicate()
            pytest.fail(f"standin_server did not come up: {err.decode(errors='replace')}")
        time.sleep(0.02)
    return ServedBoard(sock, state, library, process)


@dataclass(frozen=True)
class ClientRun:
    returncode: int
    stdout: str
    stderr: str
    state: dict[str, Any]


def run_client(board: ServedBoard, command: Sequence[str | Path]) -> ClientRun:
    """Run ``command`` against ``board``, then stop the server and collect its final state."""
    try:
        result = subprocess.run(
            [str(part) for part in command],
            env=board.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT,
            check=False,
        )
    finally:
        state = board.stop()
    return ClientRun(result.returncode, result.stdout, result.stderr, state)


def sunxi_fel(*args: str | Path) -> list[str | Path]:
    if SUNXI_FEL is None:
        pytest.skip(NO_SUNXI_FEL)
    return [SUNXI_FEL, *args]


def felboot_cli(*args: str | Path) -> list[str | Path]:
    """felboot's real CLI on the real USB path (pyusb), with progress bars off."""
    return [sys.executable, "-m", "felboot", "--quiet", "--device", "usb", *args]


def debian_file(*parts: str) -> Path:
    path = UBOOT_DIR.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"{path} is not installed (Debian package u-boot-sunxi)")
    return path


def sunxi_fel_a64_bundle(board: str, work: Path) -> Path:
    """Debian's arm64 sunxi-spl.bin padded to 32 KiB, then the FIT: what `sunxi-fel uboot` takes.

    fel.c aw_fel_process_spl_and_uboot(): the main image starts at max(SPL length,
    SPL_MIN_OFFSET = 32 KiB), and aw_fel_write_uboot_image() loads a FIT found there.
    """
    spl = debian_file(board, "sunxi-spl.bin").read_bytes()
    fit = debian_file(board, "u-boot-sunxi-with-spl.fit.itb").read_bytes()
    assert len(spl) <= 0x8000, f"{board}: SPL of {len(spl)} bytes does not fit 32 KiB"
    bundle = work / f"{board}-spl-and-fit.bin"
    bundle.write_bytes(spl + bytes(0x8000 - len(spl)) + fit)
    return bundle


def events(state: dict[str, Any]) -> list[tuple[str, int | None]]:
    return [(event["kind"], event["address"]) for event in state["events"]]


# Wire comparison ------------------------------------------------------------------


def wire_summary(state: dict[str, Any]) -> dict[str, Any]:
    """FEL commands by kind, bulk transfers and bytes each way, from a server state."""
    transfers = state["transfers"]
    kinds = collections.Counter(command["command"] for command in state["fel_commands"])
    return {
        "fel_commands": dict(sorted(kinds.items())),
        "bulk_transfers": len(transfers),
        "bulk_out": sum(1 for t in transfers if t["dir"] == "out"),
        "bulk_in": sum(1 for t in transfers if t["dir"] == "in"),
        "bytes_out": sum(t["moved"] for t in transfers if t["dir"] == "out"),
        "bytes_in": sum(t["moved"] for t in transfers if t["dir"] == "in"),
        "written": sum(c["length"] for c in state["fel_commands"] if c["command"] == "WRITE"),
        "read": sum(c["length"] for c in state["fel_commands"] if c["command"] == "READ"),
    }


def _command_text(command: dict[str, Any]) -> str:
    return f"{command['command']} 0x{command['address']:08x} {command['length']}"


def sequence_differences(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    """Where two sessions' FEL command sequences differ, as unified-diff lines."""
    a = [_command_text(c) for c in first["fel_commands"]]
    b = [_command_text(c) for c in second["fel_commands"]]
    return [
        line
        for line in difflib.unified_diff(a, b, "first", "second", n=0, lineterm="")
        if not line.startswith(("---", "+++"))
    ]


def format_comparison(name_a: str, a: dict[str, Any], name_b: str, b: dict[str, Any]) -> str:
    """A small table of two wire summaries, for the lead's note (printed with pytest -s)."""
    sa, sb = wire_summary(a), wire_summary(b)
    kinds = sorted(set(sa["fel_commands"]) | set(sb["fel_commands"]))
    rows = [(f"FEL {k}", sa["fel_commands"].get(k, 0), sb["fel_commands"].get(k, 0)) for k in kinds]
    rows += [(key, sa[key], sb[key]) for key in sa if key != "fel_commands"]
    width = max(len(name_a), len(name_b), 10)
    lines = [f"{'':16} {name_a:>{width}} {name_b:>{width}}"]
    lines += [f"{label:16} {x:>{width}} {y:>{width}}" for label, x, y in rows]
    return "\n".join(lines)


def iter_lines(text: str) -> Iterator[str]:
    return (line for line in text.splitlines() if line.strip())
