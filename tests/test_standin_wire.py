"""sunxi-fel and felboot on the wire, same board, same job: what each sends, and where they differ.

Run with ``-s`` to see the tables (FEL commands by kind, bulk transfers, bytes
each way) and the command sequences' differences. The assertions hold what must
agree: the final device state and where the images land.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.standin import (
    A20_UBOOT,
    RUN_INPUTS,
    debian_file,
    events,
    felboot_cli,
    format_comparison,
    run_client,
    sequence_differences,
    standin_lib,
    start_server,
    sunxi_fel,
)
from tests.support import ROOT

__all__ = ["standin_lib"]  # the session fixture, imported so pytest finds it here


def session(lib: Path, work: Path, command: list[str | Path]) -> dict[str, Any]:
    run = run_client(start_server(lib, work), command)
    assert run.returncode == 0, run.stderr
    assert run.state["connections"] >= 1
    return run.state


def writes(state: dict[str, Any], minimum: int) -> set[tuple[int, int]]:
    """(address, length) of the FEL WRITEs of at least ``minimum`` bytes: the images, not thunks."""
    return {
        (c["address"], c["length"])
        for c in state["fel_commands"]
        if c["command"] == "WRITE" and c["length"] >= minimum
    }


def report(title: str, sunxi: dict[str, Any], ours: dict[str, Any]) -> None:
    print(f"\n== {title}")
    print(format_comparison("sunxi-fel", sunxi, "felboot", ours))
    print("FEL command sequence, - sunxi-fel only, + felboot only:")
    print("\n".join(sequence_differences(sunxi, ours)) or "(identical)")


def test_uboot_cubieboard2(standin_lib: Path, tmp_path: Path) -> None:
    image = debian_file("Cubieboard2", "u-boot-sunxi-with-spl.bin")
    sunxi = session(standin_lib, tmp_path / "sunxi", sunxi_fel("uboot", image))
    ours = session(standin_lib, tmp_path / "ours", felboot_cli("uboot", image))
    report("uboot, Debian Cubieboard2 u-boot-sunxi-with-spl.bin", sunxi, ours)
    assert events(sunxi) == events(ours)
    assert writes(sunxi, 64 * 1024) == writes(ours, 64 * 1024)  # U-Boot proper, same place


def felboot_json(*args: str) -> Any:
    result = subprocess.run(
        [sys.executable, "-m", "felboot", "--json", *args],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(result.stdout)


def test_run_a20_family_profile(standin_lib: Path, tmp_path: Path) -> None:
    # sunxi-fel's nearest to `felboot run`: uboot, a write per image at felboot's
    # planned address, the boot script last (fel.c hands a script's address to U-Boot).
    plan = felboot_json("plan", "--dram-size", "1G", *RUN_INPUTS)
    subprocess.run(
        [sys.executable, "-m", "felboot", "script", "--dram-size", "1G", *RUN_INPUTS,
         "-o", str(tmp_path / "script")],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    command = sunxi_fel("uboot", A20_UBOOT)
    for region in plan["regions"]:
        command += ["write", hex(region["start"]), region["source"]]
    command += ["write", hex(plan["script_address"]), tmp_path / "script" / "boot.scr"]
    sunxi = session(standin_lib, tmp_path / "sunxi", command)
    ours = session(standin_lib, tmp_path / "ours", felboot_cli("run", *RUN_INPUTS))
    report("run, a20 family profile with the fixtures' Xen, kernel, initrd, DTB", sunxi, ours)
    assert events(sunxi) == events(ours)
    assert writes(sunxi, 600) == writes(ours, 600)
