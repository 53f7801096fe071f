"""End to end: `felboot script --load tftp|mmc` and a real U-Boot that loads every image itself.

FEL is not the only way to the board: the Xen-on-Allwinner page also loads the same
images over TFTP and from the SD card. `felboot script --load KIND -o DIR` writes a
boot.scr that loads each image at the plan's address and a DIR laid out for a TFTP
root or the card's first partition, and prints the commands to type at the U-Boot
prompt. Here QEMU's orangepi-pc runs Debian's U-Boot from an SD card whose
environment runs exactly those printed commands; nothing is put in DRAM by QEMU.
The plan holds dom0 with an initrd and one dom0less domU with its console on vpl011,
so a real U-Boot runs every kind of line the loading script has: the loads, the
``${filesize}`` sizes in the module nodes, ``fdt set PATH vpl011`` with no value.

Run: python -m pytest -m slow tests/test_qemu_load_media.py -v
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_qemu_e2e import (
    DOMU_ARGS,
    DOMU_PREFIX,
    qemu_boot,
    sdcard,
    tiny_initramfs,
)
from tests.test_qemu_e2e import require as require_orangepi_pc

ROOT = Path(__file__).resolve().parent.parent
XEN = Path("/boot/xen-4.17-armhf")
# nanopi_neo's U-Boot, not orangepi_plus's as in the FEL test: QEMU's H3 EMAC answers
# on MDIO address 1, the H3's internal PHY, which the NanoPi NEO's DT uses. The Orange
# Pi Plus has an external PHY at address 0 and its U-Boot finds no network in QEMU
# ("Could not get PHY for ethernet@1c30000: addr 0").
UBOOT = Path("/usr/lib/u-boot/nanopi_neo/u-boot-sunxi-with-spl.bin")
# QEMU's user network (slirp): the guest is 10.0.2.15, the host and its TFTP server 10.0.2.2.
NETWORK = "setenv ipaddr 10.0.2.15; setenv serverip 10.0.2.2"
CARD_SIZE = 64 << 20  # Xen, two kernels, an initrd and the DTB on the card's FAT partition
BOOT_TIMEOUT = 180.0  # seconds; a run takes about 20 s here


def require() -> tuple[Path, Path]:
    """The armmp-lpae kernel and its orangepi-pc DTB; skip, naming the package, if absent."""
    found: tuple[Path, Path] = require_orangepi_pc(xen=True, flavours=("armmp-lpae",))
    if not UBOOT.is_file():
        pytest.skip(f"{UBOOT} missing: apt-get install u-boot-sunxi:armhf")
    return found


def felboot_script(load: str, output: Path, kernel: Path, dtb: Path, initrd: Path) -> dict:
    """Run `felboot script` as a user types it, options after the files; its JSON result."""
    domu = f'kernel={kernel},mem=64M,vcpus=1,vpl011=yes,args="{DOMU_ARGS}"'
    command = [
        *(sys.executable, "-m", "felboot", "script", "--board", "orangepi-pc"),
        *(str(XEN), str(kernel), str(dtb), "--initrd", str(initrd)),
        *("--domu", domu, "--load", load, "-o", str(output), "--json"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def boot(load: str, tmp_path: Path) -> tuple[dict, str, qemu_boot.ConsoleRun]:
    kernel, dtb = require()
    initrd = tiny_initramfs(tmp_path)
    media = tmp_path / "média dir"  # a space and an accent, as users' paths have
    result = felboot_script(load, media, kernel, dtb, initrd)
    typed = result["uboot_commands"]  # what the text output tells the user to type
    bootcmd = f"{NETWORK}; {typed}" if load == "tftp" else typed
    files = {qemu_boot.ENV_FILE: qemu_boot.environment({"bootdelay": "0", "bootcmd": bootcmd})}
    if load.startswith("mmc"):
        files.update({path.name: path.read_bytes() for path in sorted(media.iterdir())})
    card = tmp_path / "card.img"
    card.write_bytes(sdcard.sd_image(UBOOT.read_bytes(), files, CARD_SIZE))
    command = [
        *(qemu_boot.QEMU, "-M", "orangepi-pc", "-m", "1G"),
        *("-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot"),
        *("-drive", f"file={card},format=raw,if=sd"),
    ]
    if load == "tftp":
        command += ["-nic", f"user,tftp={media}"]
    else:
        command += ["-nic", "none"]
    expected = [
        "(XEN) Xen version 4.17",
        "(XEN) *** LOADING DOMAIN 0 ***",
        "(XEN) *** LOADING DOMU cpus=1 memory=10000KB ***",  # 64 MiB in hex KiB
        f"{DOMU_PREFIX}[    0.000000] Booting Linux on physical CPU",
        f"{DOMU_PREFIX}[    0.000000] Kernel command line: {DOMU_ARGS}",
        "Freeing initrd memory",  # dom0 got the ramdisk module at its loaded size
    ]
    run = qemu_boot.run_until(
        command,
        expected,
        timeout=BOOT_TIMEOUT,
        log_path=tmp_path / "console.log",
        stop_on=["\n=> ", "(XEN) Panic", "is larger than its"],
    )
    assert not run.missing, (
        f"the console never showed {run.missing!r} (after {run.seconds:.0f} s, "
        f"timed out: {run.timed_out}, QEMU exit {run.exit_code}); last lines:\n{run.tail()}"
    )
    return result, typed, run


# Xen 4.17, xen/arch/arm/kernel.c: "Loading d0 initrd from <module> to <start>-<end>": the
# module's size is the reg property's, which the loading script took from ${filesize}.
INITRD_COPY = re.compile(r"Loading d0 initrd from ([0-9a-f]+) to 0x([0-9a-f]+)-0x([0-9a-f]+)")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("load", "typed", "done_line"),
    [
        ("tftp", "tftpboot {a} boot.scr; source {a}", "Bytes transferred = {size} "),
        ("mmc", "load mmc 0:1 {a} boot.scr; source {a}", "{size} bytes read in "),
    ],
    ids=["tftp", "mmc"],
)
def test_plan_loaded_by_uboot_boots_xen_dom0_and_a_domu_on_orangepi_pc(
    load: str, typed: str, done_line: str, tmp_path: Path
) -> None:
    result, commands, run = boot(load, tmp_path)
    assert result["load"] == load
    assert commands == typed.format(a=f"0x{result['script_address']:08x}")
    # U-Boot read each file of DIR at its full size...
    sizes = {Path(image).name: os.path.getsize(image) for image in result["images"]}
    for name, size in sizes.items():
        assert done_line.format(size=size) in run.text, (name, size)
    # ...and Xen saw the initrd module at exactly that size.
    copy = INITRD_COPY.search(run.text)
    assert copy is not None, run.tail()
    assert int(copy[3], 16) - int(copy[2], 16) == sizes["initrd"]
