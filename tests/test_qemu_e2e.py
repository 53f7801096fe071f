"""End to end: a felboot plan, placed in DRAM as FEL would, boots Xen and dom0 in QEMU.

QEMU's orangepi-pc machine (Allwinner H3, 1 GiB at 0x40000000) runs Debian's
real orangepi_plus SPL and U-Boot from an SD card image. Every region of the
plan felboot makes for board orangepi-pc, and its boot.scr, is put in DRAM
by ``-device loader`` before U-Boot starts. At its prompt, after relocating
(its malloc arena, framebuffer and stack are in place), U-Boot CRC32s every
region, then sources felboot's script, which must start Xen, which must start
dom0. How and why: fixtures/qemu/qemu_boot.py; packages and timings:
fixtures/README.md, "QEMU end-to-end".

Run: python -m pytest -m slow tests/test_qemu_e2e.py -v
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from felboot.bootscript import build_boot_scr
from felboot.domains import DomU
from felboot.plan import Plan
from felboot.run import RunRequest, command_lines, prepare

ROOT = Path(__file__).resolve().parent.parent
UBOOT = Path("/usr/lib/u-boot/orangepi_plus/u-boot-sunxi-with-spl.bin")
XEN = Path("/boot/xen-4.17-armhf")
DTB_NAME = "sun8i-h3-orangepi-pc.dtb"
UBOOT_QEMU_ARM64 = Path("/usr/lib/u-boot/qemu_arm64/u-boot.bin")
XEN_ARM64 = Path("/boot/xen-4.17-arm64")
VIRT_PROFILE = ROOT / "fixtures" / "qemu" / "qemu-virt-arm64.toml"
# The same machine options for the DTB dump and the boot: the DTB must match.
# No NIC: the default virtio-net needs the iPXE option ROM (efi-virtio.rom), which only the
# recommended ipxe-qemu package ships; nothing here boots from the network.
VIRT_MACHINE = (
    "-M", "virt,virtualization=on", "-cpu", "cortex-a57", "-m", "1G", "-smp", "2", "-nic", "none"
)  # fmt: skip
VIRT_SCRIPTADDR = 0x40200000  # qemu_arm64 U-Boot's scriptaddr: distro boot loads boot.scr there
BOOT_TIMEOUT = 120.0  # seconds for one QEMU run; each takes about 10 s here


def load_fixture(name: str) -> ModuleType:
    path = ROOT / "fixtures" / "qemu" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"felboot_qemu_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


sdcard = load_fixture("sdcard")
qemu_boot = load_fixture("qemu_boot")


def armmp_kernel(flavours: tuple[str, ...]) -> tuple[Path, Path] | None:
    """(vmlinuz, the orangepi-pc DTB shipped with it) of an installed Debian armmp kernel."""
    for flavour in flavours:
        for kernel in sorted(Path("/boot").glob(f"vmlinuz-*-{flavour}"), reverse=True):
            version = kernel.name.removeprefix("vmlinuz-")
            dtb = Path("/usr/lib") / f"linux-image-{version}" / DTB_NAME
            if dtb.is_file():
                return kernel, dtb
    return None


def require(*, xen: bool, flavours: tuple[str, ...]) -> tuple[Path, Path]:
    """Skip, naming the Debian package, when something the boot needs is absent."""
    if shutil.which(qemu_boot.QEMU) is None:
        pytest.skip(f"{qemu_boot.QEMU} missing: apt-get install qemu-system-arm")
    if not UBOOT.is_file():
        pytest.skip(f"{UBOOT} missing: apt-get install u-boot-sunxi:armhf")
    if xen and not XEN.is_file():
        pytest.skip(f"{XEN} missing: apt-get install xen-hypervisor-4.17-armhf:armhf")
    found = armmp_kernel(flavours)
    if found is None:
        pytest.skip(
            f"no /boot/vmlinuz-*-{flavours[0]} with its {DTB_NAME}: "
            f"apt-get install linux-image-{flavours[0]}:armhf"
        )
    missing = sdcard.missing_tools()
    if missing:
        pytest.skip(f"missing {', '.join(missing)}: needed to build the SD card")
    return found


def tiny_initramfs(directory: Path) -> Path:
    """A newc cpio holding one file: enough for dom0 to unpack and free an initrd."""
    if shutil.which("cpio") is None:
        pytest.skip("cpio missing: apt-get install cpio")
    tree = directory / "initramfs"
    tree.mkdir()
    (tree / "felboot-e2e").write_text("placed by felboot\n")
    archive = directory / "initrd.cpio"
    with archive.open("wb") as out:
        subprocess.run(
            ["cpio", "--quiet", "-o", "-H", "newc"],
            input=b"felboot-e2e\n",
            stdout=out,
            cwd=tree,
            check=True,
        )
    return archive


@dataclass
class Boot:
    plan: Plan
    blobs: list[Any]  # qemu_boot.Blob
    run: Any  # qemu_boot.ConsoleRun
    check_script: str


@dataclass(frozen=True)
class Machine:
    """How one QEMU machine gets U-Boot, the card and the check script."""

    qemu: str
    arguments: tuple[str, ...]  # everything but the disk and the loaders
    disk_interface: tuple[str, ...]  # {disk} stands for the image path
    uboot: bytes  # written at 8 KiB on the card (the sunxi SPL's place); b"" for none
    check_address: int  # where U-Boot loads and runs the check script

    def card_files(self, check_image: bytes) -> dict[str, bytes]:
        if self.check_address == qemu_boot.CHECK_SCRIPT_ADDRESS:  # sunxi: env runs it
            return {
                qemu_boot.ENV_FILE: qemu_boot.environment(qemu_boot.boot_environment()),
                qemu_boot.CHECK_FILE: check_image,
            }
        return {"boot.scr": check_image}  # distro boot loads it to its own scriptaddr


def orangepi_pc() -> Machine:
    return Machine(
        qemu=qemu_boot.QEMU,
        arguments=("-M", "orangepi-pc", "-m", "1G"),
        disk_interface=("-drive", "file={disk},format=raw,if=sd"),
        uboot=UBOOT.read_bytes(),
        check_address=qemu_boot.CHECK_SCRIPT_ADDRESS,
    )


def virt_arm64() -> Machine:
    return Machine(
        qemu=qemu_boot.QEMU_AARCH64,
        arguments=(*VIRT_MACHINE, "-bios", str(UBOOT_QEMU_ARM64)),
        disk_interface=(
            *("-drive", "if=none,file={disk},format=raw,id=card"),
            *("-device", "virtio-blk-device,drive=card"),
        ),
        uboot=b"",
        check_address=VIRT_SCRIPTADDR,
    )


def boot(
    machine: Machine, request: RunRequest, expected_after_checks: list[str], directory: Path
) -> Boot:
    """Plan with felboot, build the card, boot QEMU until the expected console lines."""
    prepared = prepare(request)
    plan, script = prepared.plan, prepared.script
    assert plan is not None and script is not None  # the profile knows its DRAM size
    # Everything a FEL run writes after U-Boot: the regions, then boot.scr.
    blobs = [qemu_boot.Blob(r.name, r.start, r.payload) for r in plan.regions]
    blobs.append(qemu_boot.Blob("boot.scr", plan.script_address, script.image))
    for address in (machine.check_address, qemu_boot.CRC_RESULT_ADDRESS):
        for region in (*plan.regions, *plan.reserved):
            assert not region.start <= address < region.end, (
                f"the test's scratch address 0x{address:08x} lies in {region.name}"
            )

    check = qemu_boot.check_commands(blobs, plan.script_address)
    (directory / "check.cmd").write_text(check)
    card = sdcard.sd_image(machine.uboot, machine.card_files(build_boot_scr(check, 0)))
    card_path = directory / "card.img"
    card_path.write_bytes(card)
    command = [
        machine.qemu,
        *machine.arguments,
        *("-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot"),
        *(part.format(disk=card_path) for part in machine.disk_interface),
        *qemu_boot.loader_arguments(blobs, directory),
    ]
    expected = [
        f"{qemu_boot.MARK}: U-Boot has relocated",
        f"{qemu_boot.MARK}: all checked",
        *expected_after_checks,
    ]
    run = qemu_boot.run_until(
        command,
        expected,
        timeout=BOOT_TIMEOUT,
        log_path=directory / "console.log",
        stop_on=[f"{qemu_boot.MARK}: the felboot script returned", "\n=> ", "(XEN) Panic"],
    )
    return Boot(plan, blobs, run, check)


def uboot_layout(console: str) -> str:
    """bdinfo's relocaddr, stack and reserved ranges: the numbers a layout finding needs."""
    keep = re.compile(r"relocaddr|reserved\[|sp start|fdt_blob|TLB addr")
    return "\n".join(line.strip() for line in console.splitlines() if keep.search(line))


def assert_regions_intact(result: Boot) -> None:
    """A PASS line per blob, and U-Boot's printed CRC32 equals the one computed here."""
    console = result.run.text
    reported = qemu_boot.crcs_reported(console)
    failures = []
    for blob in result.blobs:
        crc = reported.get(blob.address)
        marker = f"{qemu_boot.MARK} PASS {blob.name} 0x{blob.address:08x}"
        if crc is None:
            failures.append(f"{blob.name} 0x{blob.address:08x}: U-Boot printed no crc32")
        elif crc != blob.crc32 or marker not in console:
            verdict = "PASS" if marker in console else "FAIL"
            failures.append(
                f"{blob.name} 0x{blob.address:08x}-0x{blob.end:08x}: expected crc32 "
                f"{blob.crc32:08x}, U-Boot computed {crc:08x} and said {verdict}"
            )
    assert not failures, (
        "planned regions changed before felboot's script ran:\n"
        + "\n".join(failures)
        + "\nU-Boot's layout (bdinfo):\n"
        + uboot_layout(console)
        + f"\nconsole: {result.run.tail()}"
    )
    assert f"{qemu_boot.MARK} FAIL" not in console


def assert_console(result: Boot) -> None:
    run = result.run
    assert not run.missing, (
        f"the console never showed {run.missing!r} (after {run.seconds:.0f} s, "
        f"timed out: {run.timed_out}, QEMU exit {run.exit_code}); last lines:\n{run.tail()}"
    )


def assert_in_order(console: str, lines: list[str]) -> None:
    position = 0
    for line in lines:
        found = console.find(line, position)
        assert found >= 0, f"{line!r} missing after offset {position}"
        position = found + len(line)


@pytest.mark.slow
def test_felboot_plan_boots_xen_and_dom0_on_orangepi_pc(tmp_path: Path) -> None:
    kernel, dtb = require(xen=True, flavours=("armmp-lpae",))  # arm32 Xen needs an LPAE dom0
    initrd = tiny_initramfs(tmp_path)
    request = RunRequest(
        board="orangepi-pc",
        uboot=(UBOOT,),
        xen=XEN,
        kernel=kernel,
        dtb=dtb,
        initrd=initrd,
        uboot_for_other_board=True,  # orangepi_plus's U-Boot: QEMU models no DRAM timing
    )
    prepared = prepare(request)
    _, dom0_args = command_lines(prepared.inputs, request)
    result = boot(
        orangepi_pc(),
        request,
        [
            "(XEN) Xen version 4.17",
            "(XEN) *** LOADING DOMAIN 0 ***",
            "Booting Linux on physical CPU",
            "Machine model: Xunlong Orange Pi PC",  # the DTB felboot placed, passed on by Xen
            f"Kernel command line: {dom0_args}",  # /chosen/module@0 bootargs from the script
            "Freeing initrd memory",  # the ramdisk module reached dom0
        ],
        tmp_path,
    )
    assert_regions_intact(result)
    assert_console(result)
    plan = result.plan
    assert [region.name for region in plan.regions] == ["xen", "dtb", "initrd", "kernel"]
    assert plan.console_uart is not None
    # Xen printed at all, so the dtuart= the plan took from the DTB is the real UART.
    assert f"dtuart={plan.console_uart}" in prepared.script.text  # type: ignore[union-attr]
    kernel_region = plan.kernel
    assert_in_order(
        result.run.text,
        [
            f"## Executing script at {plan.script_address:08x}",
            f"Kernel image @ 0x{plan.xen.start:08x}",
            f"Loading d0 kernel from boot module @ {kernel_region.start:016x}",
        ],
    )


@pytest.mark.slow
def test_felboot_no_xen_plan_boots_linux_on_orangepi_pc(tmp_path: Path) -> None:
    kernel, dtb = require(xen=False, flavours=("armmp", "armmp-lpae"))
    request = RunRequest(
        board="orangepi-pc",
        uboot=(UBOOT,),
        kernel=kernel,
        dtb=dtb,
        no_xen=True,
        uboot_for_other_board=True,  # orangepi_plus's U-Boot: QEMU models no DRAM timing
    )
    result = boot(
        orangepi_pc(),
        request,
        [
            "Starting kernel ...",
            "Booting Linux on physical CPU",
            "Machine model: Xunlong Orange Pi PC",
            "Kernel command line: console=ttyS0,115200",
        ],
        tmp_path,
    )
    assert_regions_intact(result)
    assert_console(result)
    assert "(XEN)" not in result.run.text


def virt_dtb(directory: Path) -> Path:
    """QEMU's own DTB for the virt machine as the test boots it (what dom0 must see)."""
    path = directory / "virt.dtb"
    subprocess.run(
        [qemu_boot.QEMU_AARCH64, "-M", f"{VIRT_MACHINE[1]},dumpdtb={path}", *VIRT_MACHINE[2:]],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return path


def require_virt_arm64() -> Path:
    """The arm64 kernel to boot on virt; skip, naming the package, when something is absent."""
    if shutil.which(qemu_boot.QEMU_AARCH64) is None:
        pytest.skip(f"{qemu_boot.QEMU_AARCH64} missing: apt-get install qemu-system-arm")
    if not UBOOT_QEMU_ARM64.is_file():
        pytest.skip(f"{UBOOT_QEMU_ARM64} missing: apt-get install u-boot-qemu")
    if not XEN_ARM64.is_file():
        pytest.skip(f"{XEN_ARM64} missing: apt-get install xen-hypervisor-4.17-arm64:arm64")
    kernels = sorted(Path("/boot").glob("vmlinuz-*-arm64"), reverse=True)
    if not kernels:
        pytest.skip("no /boot/vmlinuz-*-arm64: apt-get install linux-image-arm64:arm64")
    missing = sdcard.missing_tools()
    if missing:
        pytest.skip(f"missing {', '.join(missing)}: needed to build the disk")
    return kernels[0]


@pytest.mark.slow
def test_felboot_plan_boots_arm64_xen_and_gzipped_dom0_on_qemu_virt(tmp_path: Path) -> None:
    request = RunRequest(
        board_file=VIRT_PROFILE,
        xen=XEN_ARM64,
        kernel=require_virt_arm64(),
        dtb=virt_dtb(tmp_path),
        need_uboot=False,
    )
    prepared = prepare(request)
    _, dom0_args = command_lines(prepared.inputs, request)
    result = boot(
        virt_arm64(),
        request,
        [
            "(XEN) Xen version 4.17",
            "(XEN) *** LOADING DOMAIN 0 ***",
            "Booting Linux on physical CPU",
            "Machine model: linux,dummy-virt",
            f"Kernel command line: {dom0_args}",
        ],
        tmp_path,
    )
    assert_regions_intact(result)
    assert_console(result)
    plan = result.plan
    assert plan.arch == "arm64" and plan.kernel_gzipped
    assert prepared.script is not None
    assert "setenv fdt_high 0xffffffffffffffff" in prepared.script.text
    assert_in_order(
        result.run.text,
        [
            f"## Executing script at {plan.script_address:08x}",
            f"Loading d0 kernel from boot module @ {plan.kernel.start:016x}",
        ],
    )


# Xen's vpl011 for dom0less guests sits at GUEST_PL011_BASE (xen/include/public/arch-arm.h:
# 0x22000000), an SBSA UART: 32-bit accesses, hence earlycon's mmio32.
DOMU_ARGS = "console=ttyAMA0 earlycon=pl011,mmio32,0x22000000"
# Xen 4.17 prints a dom0less guest's vpl011 output line by line as "DOM<id>: " (its
# vpl011_write_data_xen); later Xen versions write "(d1) " instead.
DOMU_PREFIX = "(XEN) DOM1: "


@pytest.mark.slow
def test_felboot_plan_boots_dom0_and_a_dom0less_domu_on_qemu_virt(tmp_path: Path) -> None:
    kernel = require_virt_arm64()
    # The same Debian kernel, no initrd: it panics at the root mount, after its first lines.
    domu = DomU(index=1, kernel=kernel, mem=128 << 20, vcpus=1, args=DOMU_ARGS)
    request = RunRequest(
        board_file=VIRT_PROFILE,
        xen=XEN_ARM64,
        kernel=kernel,
        dtb=virt_dtb(tmp_path),
        need_uboot=False,
        domus=(domu,),
    )
    prepared = prepare(request)
    _, dom0_args = command_lines(prepared.inputs, request)
    assert prepared.plan is not None
    (domain,) = prepared.plan.domains
    result = boot(
        virt_arm64(),
        request,
        [
            "(XEN) Xen version 4.17",
            "(XEN) *** LOADING DOMAIN 0 ***",
            f"(XEN) Loading d0 kernel from boot module @ {prepared.plan.kernel.start:016x}",
            "(XEN) *** LOADING DOMU cpus=1 memory=20000KB ***",  # 128 MiB in hex KiB
            f"(XEN) Loading d1 kernel from boot module @ {domain.kernel.start:016x}",
            f"{DOMU_PREFIX}[    0.000000] Booting Linux on physical CPU",  # domU's own console
            f"{DOMU_PREFIX}[    0.000000] Kernel command line: {DOMU_ARGS}",
            f"Kernel command line: {dom0_args}",  # dom0, on Xen's console (hvc0)
        ],
        tmp_path,
    )
    assert_regions_intact(result)
    assert_console(result)
    text = result.run.text
    assert "(XEN) Panic" not in text
