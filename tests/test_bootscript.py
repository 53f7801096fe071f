"""felboot.bootscript: boot.cmd text (golden files) and boot.scr bytes (against mkimage)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from felboot.boards import load_board
from felboot.bootscript import SCRIPT_NAME, LoadMethod, build_boot_scr, render_boot_cmd
from felboot.domains import parse_domu
from felboot.errors import ImageError, PlanError, UsageError
from felboot.images.dtb import parse_dtb
from felboot.images.kernel import parse_kernel
from felboot.images.uimage import parse_legacy_image, parse_script_image
from felboot.plan import DomUImages, Plan, make_plan

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PAYLOADS = FIXTURES / "payloads"
GOLDEN = FIXTURES / "golden"
UPDATE = os.environ.get("FELBOOT_UPDATE_GOLDEN") == "1"  # rewrite the golden files


def plan_for(
    board_name: str,
    *,
    xen: str | None,
    kernel: str,
    dtb: str,
    initrd: bool = True,
    **kwargs: object,
) -> Plan:
    board = load_board(board_name)
    assert board.dram_size is not None
    return make_plan(
        board,
        board.dram_size,
        parse_kernel((PAYLOADS / xen).read_bytes(), str(PAYLOADS / xen), "Xen") if xen else None,
        parse_kernel((PAYLOADS / kernel).read_bytes(), str(PAYLOADS / kernel), "kernel"),
        parse_dtb((PAYLOADS / dtb).read_bytes(), str(PAYLOADS / dtb)),
        (PAYLOADS / "initrd.img").read_bytes() if initrd else None,
        initrd_source=str(PAYLOADS / "initrd.img"),
        **kwargs,  # type: ignore[arg-type]
    )


A20 = {"xen": "xen-arm32.zimage", "kernel": "zImage-arm32", "dtb": "sun7i-a20-felboot-test.dtb"}
A64 = {"xen": "xen-arm64.Image", "kernel": "Image-arm64.gz", "dtb": "sun50i-a64-felboot-test.dtb"}


def domu_images(spec: str, index: int) -> DomUImages:
    """A --domu SPEC with its files read from fixtures/payloads (as run.load_domu reads them)."""
    domu = parse_domu(spec, index)
    kernel = PAYLOADS / domu.kernel
    return DomUImages(
        domu,
        parse_kernel(kernel.read_bytes(), str(kernel), "kernel"),
        (PAYLOADS / domu.ramdisk).read_bytes() if domu.ramdisk else None,
        str(PAYLOADS / domu.ramdisk) if domu.ramdisk else None,
        parse_dtb((PAYLOADS / domu.dtb).read_bytes(), str(PAYLOADS / domu.dtb))
        if domu.dtb
        else None,
    )


A20_PASS = {**A20, "dtb": "sun7i-a20-felboot-passthrough.dtb"}
DOMU_A20 = 'kernel=zImage-arm32,ramdisk=initrd.img,mem=128M,vcpus=1,args="console=ttyAMA0"'
DOMU_PASSTHROUGH = (
    'zImage-arm32,mem=256M,vcpus=2,args="console=ttyAMA0 ip=dhcp,eth0",'
    "dtb=domu-ethernet-partial.dtb,passthrough=/soc/ethernet@1c50000"
)
DOMU_A64 = 'kernel=Image-arm64.gz,ramdisk=initrd.img,mem=256M,vcpus=2,args="console=ttyAMA0"'

GOLDEN_CASES = {
    "a20-1g-dom0-and-domu.boot.cmd": ("cubieboard2", A20, {"domus": [domu_images(DOMU_A20, 1)]}),
    "a20-1g-dom0less-passthrough.boot.cmd": (
        "cubieboard2",
        A20_PASS,
        {
            "no_dom0": True,
            "domus": [
                domu_images(DOMU_PASSTHROUGH, 1),
                domu_images("zImage-arm32,mem=64M,vpl011=no", 2),
            ],
        },
    ),
    "a20-1g-load-tftp-domu.boot.cmd": (
        "cubieboard2",
        A20,
        {"domus": [domu_images(DOMU_A20, 1)], "load": LoadMethod("tftp")},
    ),
    "a20-1g-no-xen-load-mmc.boot.cmd": (
        "cubieboard2",
        {**A20, "xen": None},
        {"no_xen": True, "load": LoadMethod("mmc", "0:1")},
    ),
    "a64-2g-load-usb.boot.cmd": ("pine64-plus", A64, {"load": LoadMethod("usb", "0:1")}),
    "a64-2g-dom0-and-domu.boot.cmd": ("pine64-plus", A64, {"domus": [domu_images(DOMU_A64, 1)]}),
    "a20-1g-recipe.boot.cmd": ("cubieboard2", A20, {"layout": "recipe"}),
    "a20-1g-safe.boot.cmd": ("cubieboard2", A20, {}),
    "a20-2g-safe.boot.cmd": ("cubietruck", A20, {}),
    "a64-2g-safe-gzip-dom0.boot.cmd": ("pine64-plus", A64, {}),
    "a20-1g-no-xen.boot.cmd": ("cubieboard2", {**A20, "xen": None}, {"no_xen": True}),
}


def render(name: str) -> str:
    board_name, images, extra = GOLDEN_CASES[name]
    board = load_board(board_name)
    options = dict(extra)
    load = options.pop("load", LoadMethod("fel"))
    plan = plan_for(board_name, **images, **options)  # type: ignore[arg-type]
    return render_boot_cmd(
        plan,
        xen_args=board.xen_args,
        dom0_args=board.linux_args if plan.no_xen else board.dom0_args,
        uboot_is_64bit=board.uboot_is_64bit,
        load=load,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden(name: str) -> None:
    text = render(name)
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text()


def test_golden_directory_has_no_stale_files() -> None:
    assert sorted(p.name for p in GOLDEN.glob("*.boot.cmd")) == sorted(GOLDEN_CASES)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_xen_script_follows_the_plan() -> None:
    plan = plan_for("cubieboard2", **A20)  # type: ignore[arg-type]
    text = render_boot_cmd(plan, xen_args="dom0_mem=256M", dom0_args="console=hvc0",
                           uboot_is_64bit=False)  # fmt: skip
    body = lines(text)
    initrd = plan.initrd
    assert initrd is not None
    assert body == [
        "setenv fdt_high 0xffffffff",
        "fdt addr 0x76e00000",
        "fdt resize 0x10000",
        "fdt set /chosen \\#address-cells <1>",
        "fdt set /chosen \\#size-cells <1>",
        'fdt set /chosen xen,xen-bootargs "dom0_mem=256M dtuart=/soc/serial@1c28000"',
        "fdt mknode /chosen module@0",
        'fdt set /chosen/module@0 compatible "multiboot,kernel" "multiboot,module"',
        f"fdt set /chosen/module@0 reg <0x{plan.kernel.start:08x} {plan.kernel.size:#x}>",
        'fdt set /chosen/module@0 bootargs "console=hvc0"',
        "fdt mknode /chosen module@1",
        'fdt set /chosen/module@1 compatible "multiboot,ramdisk" "multiboot,module"',
        f"fdt set /chosen/module@1 reg <0x{initrd.start:08x} {initrd.size:#x}>",
        f"bootz 0x{plan.xen.start:08x} - 0x{plan.dtb.start:08x}",
    ]
    assert "xen,linux-zimage" in text  # the comment explaining the older names


def test_64bit_uboot_gets_a_64bit_fdt_high_and_booti() -> None:
    plan = plan_for("pine64-plus", **A64)  # type: ignore[arg-type]
    text = render_boot_cmd(plan, xen_args="", dom0_args="", uboot_is_64bit=True)
    assert "setenv fdt_high 0xffffffffffffffff\n" in text
    assert lines(text)[-1] == f"booti 0x{plan.xen.start:08x} - 0x{plan.dtb.start:08x}"


def test_users_dtuart_wins() -> None:
    plan = plan_for("cubieboard2", **A20)  # type: ignore[arg-type]
    text = render_boot_cmd(plan, xen_args="console=dtuart dtuart=serial0", dom0_args="",
                           uboot_is_64bit=False)  # fmt: skip
    assert 'xen,xen-bootargs "console=dtuart dtuart=serial0"' in text
    assert "/soc/serial@1c28000" not in text


def test_dtb_without_console_needs_a_dtuart() -> None:
    plan = plan_for("cubieboard2", **{**A20, "dtb": "no-console.dtb"})  # type: ignore[arg-type]
    with pytest.raises(ImageError) as info:
        render_boot_cmd(plan, xen_args="console=dtuart", dom0_args="", uboot_is_64bit=False)
    assert str(info.value) == (
        f"{PAYLOADS / 'no-console.dtb'}: no /chosen/stdout-path and no serial0 alias: "
        "pass --xen-args 'dtuart=/path/to/uart'"
    )
    text = render_boot_cmd(plan, xen_args="dtuart=/soc/serial@1c28000", dom0_args="",
                           uboot_is_64bit=False)  # fmt: skip
    body = lines(text)
    assert body.index("fdt mknode / chosen") < body.index("fdt set /chosen \\#address-cells <1>")


def test_no_xen_script_sets_bootargs_and_boots_the_kernel() -> None:
    plan = plan_for("cubieboard2", **{**A20, "xen": None}, no_xen=True)  # type: ignore[arg-type]
    text = render_boot_cmd(plan, xen_args="ignored", dom0_args="console=ttyS0,115200",
                           uboot_is_64bit=False)  # fmt: skip
    initrd = plan.initrd
    assert initrd is not None
    assert lines(text) == [
        'setenv bootargs "console=ttyS0,115200"',
        f"bootz 0x{plan.kernel.start:08x} 0x{initrd.start:08x}:{initrd.size:#x} "
        f"0x{plan.dtb.start:08x}",
    ]
    plan = plan_for("cubieboard2", **{**A20, "xen": None}, no_xen=True, initrd=False)  # type: ignore[arg-type]
    text = render_boot_cmd(plan, xen_args="", dom0_args="", uboot_is_64bit=False)
    assert lines(text)[-1] == f"bootz 0x{plan.kernel.start:08x} - 0x{plan.dtb.start:08x}"


@pytest.mark.parametrize(
    ("xen_args", "dom0_args", "expected"),
    [
        ('dom0_mem="512M"', "", "Xen arguments .* contains a double quote"),
        ("", "root=$root", "dom0 arguments .* contains a dollar sign"),
        ("", "a\\b", "dom0 arguments .* contains a backslash"),
        ("", "one\ntwo", "dom0 arguments .*one line of ASCII"),
        ("console=dtuart \u00e9", "", "Xen arguments .*one line of ASCII"),
    ],
)
def test_arguments_the_script_cannot_carry(xen_args: str, dom0_args: str, expected: str) -> None:
    plan = plan_for("cubieboard2", **A20)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=expected):
        render_boot_cmd(plan, xen_args=xen_args, dom0_args=dom0_args, uboot_is_64bit=False)


def test_script_that_does_not_fit_its_room() -> None:
    plan = plan_for("cubieboard2", **A20)  # type: ignore[arg-type]
    with pytest.raises(PlanError, match=r"boot script of \d+ bytes does not fit .* 0x43100000"):
        render_boot_cmd(plan, xen_args="x" * 70000, dom0_args="", uboot_is_64bit=False)


def test_build_boot_scr_holds_the_text() -> None:
    text = render("a20-1g-safe.boot.cmd")
    image = build_boot_scr(text, timestamp=1_700_000_000)
    header = parse_legacy_image(image, "boot.scr")
    assert header.name == SCRIPT_NAME
    assert header.timestamp == 1_700_000_000
    assert parse_script_image(image, "boot.scr") == text.encode()


@pytest.mark.skipif(shutil.which("mkimage") is None, reason="mkimage (u-boot-tools) not installed")
@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_build_boot_scr_matches_mkimage(name: str, tmp_path: Path) -> None:
    source = GOLDEN / name
    target = tmp_path / "boot.scr"
    subprocess.run(
        ["mkimage", "-A", "arm", "-O", "linux", "-T", "script", "-C", "none",
         "-n", SCRIPT_NAME, "-d", str(source), str(target)],
        check=True, capture_output=True, env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"},
    )  # fmt: skip
    assert build_boot_scr(source.read_text(), 1_700_000_000) == target.read_bytes()
