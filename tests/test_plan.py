"""felboot.plan: the recipe table, the safe layout clear of U-Boot, growth, errors."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from felboot.boards import BoardProfile, load_board
from felboot.errors import PlanError
from felboot.images.dtb import DeviceTree, parse_dtb
from felboot.images.kernel import (
    ARM64_MAGIC,
    ZIMAGE_MAGIC,
    Arm64ImageHeader,
    KernelImage,
    ZImageHeader,
    gzip_for_wire,
    parse_kernel,
)
from felboot.plan import DTB_ROOM, Plan, Region, check_no_overlap, make_plan

MiB = 1 << 20
GiB = 1 << 30
PAYLOADS = Path(__file__).resolve().parent.parent / "fixtures" / "payloads"

# fel.md, "Where U-Boot lives after it starts (measured)", top of RAM 0x80000000.
# (name, start): each runs up to the top of DRAM or to the next U-Boot region.
MEASURED_UBOOT_1G = {
    "orangepi_plus relocated U-Boot": 0x7DF8F000,
    "orangepi_plus malloc arena": 0x79F6EEB0,
    "orangepi_plus framebuffer": 0x7E000000,
    "orangepi_plus lowest reservation": 0x78F61000,
    "nanopi_neo relocated U-Boot": 0x7FF88000,
    "nanopi_neo malloc arena": 0x7BF67EC0,
    "nanopi_neo lowest reservation": 0x7AF5A000,
    "qemu_arm relocated U-Boot": 0x7FF38000,
    "qemu_arm malloc arena": 0x7EEF7EB0,
    "qemu_arm lowest reservation": 0x7DDF3000,
    "MMU table": 0x7FFF0000,
}
SPL_AND_SCRIPT = [
    (0x40000000, 0x40001004),
    (0x40400000, 0x40400004),
    (0x40800000, 0x40800004),
    (0x43100000, 0x43100000 + 4096),  # the boot script
    (0x4A000000, 0x4A080000),  # U-Boot proper before relocating (~0.5 MiB)
    (0x4F000000, 0x4F000004),
    (0x4FD00000, 0x4FE00000),
    (0x4FF80000, 0x4FF80004),
]


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def kernel_file(name: str, role: str) -> KernelImage:
    return parse_kernel(payload(name), str(PAYLOADS / name), role)


def a20_dtb() -> DeviceTree:
    name = "sun7i-a20-felboot-test.dtb"
    return parse_dtb(payload(name), str(PAYLOADS / name))


def a64_dtb() -> DeviceTree:
    name = "sun50i-a64-felboot-test.dtb"
    return parse_dtb(payload(name), str(PAYLOADS / name))


def zimage(source: str, role: str, *, file_size: int, end: int) -> KernelImage:
    header = ZImageHeader.build({"magic": ZIMAGE_MAGIC, "start": 0, "end": end})
    return parse_kernel(header + bytes(file_size - len(header)), source, role)


def arm64_image(source: str, role: str, *, image_size: int, text_offset: int = 0) -> KernelImage:
    fields = {"code0": 0, "code1": 0, "text_offset": text_offset, "image_size": image_size}
    fields |= {"flags": 0xA, "res2": 0, "res3": 0, "res4": 0, "magic": ARM64_MAGIC, "res5": 0}
    return parse_kernel(Arm64ImageHeader.build(fields) + bytes(0x1000), source, role)


def a20_plan(board: str = "cubieboard2", **kwargs: object) -> Plan:
    profile = load_board(board)
    assert profile.dram_size is not None
    args: dict[str, object] = {
        "xen": kernel_file("xen-arm32.zimage", "Xen"),
        "kernel": kernel_file("zImage-arm32", "kernel"),
        "dtb": a20_dtb(),
        "initrd": payload("initrd.img"),
        "initrd_source": "initrd.img",
    }
    args.update(kwargs)
    return make_plan(profile, profile.dram_size, **args)  # type: ignore[arg-type]


def addresses(plan: Plan) -> dict[str, tuple[int, int]]:
    return {r.name: (r.start, r.end) for r in plan.regions}


# -- recipe layout -----------------------------------------------------------


def test_recipe_layout_1g_is_the_recipe_table() -> None:
    plan = a20_plan(layout="recipe")
    assert addresses(plan) == {
        "xen": (0x7EA00000, 0x7EC00000),
        "dtb": (0x7EC00000, 0x7EE00000),
        "initrd": (0x7EE00000, 0x7F600000),
        "kernel": (0x7F600000, 0x7FE00000),
    }
    assert plan.dram_top - plan.kernel.end == 2 * MiB
    assert len(plan.warnings) == 1
    warning = plan.warnings[0]
    assert "U-Boot" in warning and "framebuffer" in warning and "malloc" in warning
    assert "0x7ea00000-0x7fe00000" in warning


def test_recipe_layout_2g_is_the_recipe_table_shifted() -> None:
    plan = a20_plan("cubietruck", layout="recipe")
    assert addresses(plan) == {
        "xen": (0xBEA00000, 0xBEC00000),
        "dtb": (0xBEC00000, 0xBEE00000),
        "initrd": (0xBEE00000, 0xBF600000),
        "kernel": (0xBF600000, 0xBFE00000),
    }
    assert plan.dram_top == 0xC0000000
    assert len(plan.warnings) == 1


def test_recipe_warning_without_display_names_the_malloc_arena() -> None:
    board = dataclasses.replace(load_board("cubieboard2"), display=False)
    plan = make_plan(
        board, GiB, kernel_file("xen-arm32.zimage", "Xen"),
        kernel_file("zImage-arm32", "kernel"), a20_dtb(), None, layout="recipe",
    )  # fmt: skip
    assert "malloc arena" in plan.warnings[0] and "framebuffer" not in plan.warnings[0]


# -- safe layout ---------------------------------------------------------------


@pytest.mark.parametrize(("board", "shift"), [("cubieboard2", 0), ("cubietruck", GiB)])
def test_safe_layout_is_clear_of_every_measured_uboot_region(board: str, shift: int) -> None:
    plan = a20_plan(board)
    lowest_uboot = min(MEASURED_UBOOT_1G.values()) + shift
    for region in plan.regions:
        assert region.end <= lowest_uboot, (region, "reaches into U-Boot's memory")
        for name, start in MEASURED_UBOOT_1G.items():
            assert region.end <= start + shift, (region.name, name)
        for start, end in SPL_AND_SCRIPT:
            assert region.end <= start or region.start >= end, (region.name, hex(start))
    assert plan.warnings == ()


def test_safe_layout_1g_addresses() -> None:
    plan = a20_plan()
    assert addresses(plan) == {
        "xen": (0x76C00000, 0x76E00000),
        "dtb": (0x76E00000, 0x77000000),
        "initrd": (0x77000000, 0x77800000),
        "kernel": (0x77800000, 0x78000000),
    }
    assert plan.reserve_top == 128 * MiB
    assert plan.layout == "safe"


def test_safe_layout_keeps_the_recipe_shape() -> None:
    safe, recipe = a20_plan(), a20_plan(layout="recipe")
    assert [r.name for r in safe.regions] == ["xen", "dtb", "initrd", "kernel"]
    assert [r.end - r.start for r in safe.regions] == [r.end - r.start for r in recipe.regions]
    for low, high in zip(safe.regions, safe.regions[1:]):
        assert low.end == high.start
    for region in safe.regions:
        assert region.start % (2 * MiB) == 0


def test_reserve_top_override() -> None:
    plan = a20_plan(reserve_top=64 * MiB)
    assert plan.kernel.end == 0x80000000 - 64 * MiB
    assert plan.reserve_top == 64 * MiB


def test_a9_mib_kernel_grows_its_slot_and_shifts_the_others_down() -> None:
    base = a20_plan()
    big = a20_plan(kernel=zimage("zImage-9M", "kernel", file_size=9 * MiB, end=9 * MiB))
    assert big.kernel.end == base.kernel.end
    assert big.kernel.end - big.kernel.start == 10 * MiB
    for name in ("xen", "dtb", "initrd"):
        base_region, big_region = base.region(name), big.region(name)
        assert base_region is not None and big_region is not None
        assert big_region.start == base_region.start - 2 * MiB


def test_xen_slot_comes_from_the_header_not_the_file() -> None:
    # A 32 KiB file whose header claims 3 MiB (bss) needs a 4 MiB slot.
    xen = zimage("xen-big-bss", "Xen", file_size=0x8000, end=3 * MiB)
    plan = a20_plan(xen=xen)
    assert plan.xen.end - plan.xen.start == 4 * MiB
    assert plan.xen.size == 0x8000
    assert a20_plan().xen.end - a20_plan().xen.start == 2 * MiB  # 0x116290 fits 2 MiB


def test_without_initrd_there_is_no_ramdisk_region() -> None:
    plan = a20_plan(initrd=None)
    assert plan.initrd is None
    assert [r.name for r in plan.regions] == ["xen", "dtb", "kernel"]
    assert plan.dtb.end == plan.kernel.start


def test_dtb_slot_holds_the_dtb_and_the_room() -> None:
    plan = a20_plan()
    assert plan.dtb.end - plan.dtb.start >= a20_dtb().totalsize + DTB_ROOM
    big = DeviceTree("huge.dtb", 0x200000, (), None, True, bytes(0x200000))
    grown = a20_plan(dtb=big)
    assert grown.dtb.end - grown.dtb.start == 4 * MiB
    assert grown.console_uart is None and grown.console_problem is not None


def test_regions_carry_source_and_sha256_of_what_is_written() -> None:
    plan = a20_plan()
    for region, name in zip(
        plan.regions,
        ("xen-arm32.zimage", "sun7i-a20-felboot-test.dtb", "initrd.img", "zImage-arm32"),
    ):
        data = payload(name)
        assert region.size == len(data)
        assert region.sha256 == hashlib.sha256(data).hexdigest()
        assert region.payload == data
    assert plan.xen.source == str(PAYLOADS / "xen-arm32.zimage")
    assert plan.initrd is not None and plan.initrd.source == "initrd.img"


def test_console_uart_comes_from_the_dtb() -> None:
    plan = a20_plan()
    assert plan.console_uart == "/soc/serial@1c28000"
    assert plan.console_problem is None
    assert plan.dtb_has_chosen


# -- arm64 ---------------------------------------------------------------------


def a64_plan(**kwargs: object) -> Plan:
    board = load_board("pine64-plus")
    args: dict[str, object] = {
        "xen": kernel_file("xen-arm64.Image", "Xen"),
        "kernel": kernel_file("Image-arm64", "kernel"),
        "dtb": a64_dtb(),
        "initrd": payload("initrd.img"),
    }
    args.update(kwargs)
    return make_plan(board, 2 * GiB, **args)  # type: ignore[arg-type]


def test_arm64_plan_is_aligned_and_uses_booti() -> None:
    plan = a64_plan()
    assert plan.arch == "arm64" and plan.boot_command == "booti"
    assert plan.xen.start % (2 * MiB) == 0
    assert plan.kernel.start % (2 * MiB) == 0
    assert plan.kernel.end == 0xC0000000 - 128 * MiB


def test_uncompressed_arm64_dom0_is_sent_gzipped() -> None:
    plan = a64_plan()
    raw = payload("Image-arm64")
    wire = gzip_for_wire(raw)
    assert plan.kernel_gzipped
    assert plan.kernel.payload == wire
    assert plan.kernel.size == len(wire) < len(raw)
    assert plan.kernel.sha256 == hashlib.sha256(wire).hexdigest()


def test_gzip_can_be_turned_off() -> None:
    plan = a64_plan(gzip_kernel=False)
    assert not plan.kernel_gzipped
    assert plan.kernel.payload == payload("Image-arm64")


def test_pre_gzipped_dom0_is_sent_as_it_is() -> None:
    plan = a64_plan(kernel=kernel_file("Image-arm64.gz", "kernel"))
    assert not plan.kernel_gzipped
    assert plan.kernel.payload == payload("Image-arm64.gz")


def test_arm64_xen_with_text_offset_sits_at_aligned_base_plus_offset() -> None:
    xen = arm64_image("xen-old", "Xen", image_size=0x180000, text_offset=0x80000)
    plan = a64_plan(xen=xen)
    assert plan.xen.start % (2 * MiB) == 0x80000
    assert plan.xen.end - (plan.xen.start - 0x80000) == 2 * MiB


def test_arm64_kernel_without_xen_is_placed_for_booti() -> None:
    kernel = arm64_image("Image-5.4", "kernel", image_size=0x1900000, text_offset=0x80000)
    plan = a64_plan(xen=None, kernel=kernel, no_xen=True)
    assert plan.region("xen") is None
    assert plan.kernel.start % (2 * MiB) == 0x80000
    assert plan.kernel.end - plan.kernel.start + 0x80000 == 26 * MiB  # 25 MiB + offset -> 26


def test_image_without_place_anywhere_flag_is_warned_about() -> None:
    fields = {"code0": 0, "code1": 0, "text_offset": 0, "image_size": 0x100000, "flags": 0x2}
    fields |= {"res2": 0, "res3": 0, "res4": 0, "magic": ARM64_MAGIC, "res5": 0}
    xen = parse_kernel(Arm64ImageHeader.build(fields) + bytes(64), "xen-4.11", "Xen")
    plan = a64_plan(xen=xen)
    assert len(plan.warnings) == 1
    assert "xen-4.11" in plan.warnings[0] and "0x40000000" in plan.warnings[0]


# -- no Xen ----------------------------------------------------------------------


def test_no_xen_plan() -> None:
    plan = a20_plan(xen=None, no_xen=True)
    assert [r.name for r in plan.regions] == ["dtb", "initrd", "kernel"]
    assert plan.no_xen and plan.boot_command == "bootz"


# -- errors name the culprit -------------------------------------------------------


def test_xen_that_cannot_fit_names_itself_its_size_and_the_room() -> None:
    small = dataclasses.replace(load_board("cubieboard2"), dram_size=256 * MiB)
    xen = zimage("/boot/xen-huge", "Xen", file_size=0x8000, end=200 * MiB)
    with pytest.raises(PlanError) as info:
        make_plan(small, 256 * MiB, xen, kernel_file("zImage-arm32", "kernel"), a20_dtb(), None)
    message = str(info.value)
    assert "Xen /boot/xen-huge (zImage) needs 200 MiB (0xc800000 bytes, a 200 MiB slot)" in message
    assert "only" in message and "is left between boot script" in message


def test_kernel_that_cannot_fit_names_itself() -> None:
    kernel = zimage("/boot/vmlinuz-huge", "kernel", file_size=0x1000, end=700 * MiB)
    expected = r"kernel /boot/vmlinuz-huge \(zImage\) needs 701 MiB \(0x2bd00000 bytes"
    with pytest.raises(PlanError, match=expected):
        a20_plan(kernel=kernel, xen=None, no_xen=True)


def test_arm64_xen_on_an_arm32_board() -> None:
    with pytest.raises(PlanError) as info:
        a20_plan(xen=kernel_file("xen-arm64.Image", "Xen"))
    message = str(info.value)
    assert message.startswith(str(PAYLOADS / "xen-arm64.Image"))
    assert "cubieboard2 (A20) runs a 32-bit U-Boot" in message


def test_arm32_xen_on_an_arm64_board() -> None:
    with pytest.raises(PlanError, match=r"xen-arm32.zimage: the Xen is zImage for arm, but pine64"):
        a64_plan(xen=kernel_file("xen-arm32.zimage", "Xen"))


def test_arm64_dom0_under_arm32_xen() -> None:
    with pytest.raises(PlanError, match=r"Image-arm64: the dom0 kernel is an arm64 Image"):
        a20_plan(kernel=kernel_file("Image-arm64", "kernel"))


def test_arm32_dom0_under_arm64_xen_is_allowed() -> None:
    plan = a64_plan(kernel=kernel_file("zImage-arm32", "kernel"))
    assert not plan.kernel_gzipped


def test_gzip_forced_on_a_zimage() -> None:
    with pytest.raises(PlanError, match=r"zImage-arm32: cannot send the zImage gzip-compressed"):
        a20_plan(gzip_kernel=True)


def test_gzip_image_without_xen() -> None:
    with pytest.raises(PlanError, match=r"Image-arm64.gz: booti cannot start a gzip-compressed"):
        a64_plan(xen=None, no_xen=True, kernel=kernel_file("Image-arm64.gz", "kernel"))


def test_missing_xen() -> None:
    with pytest.raises(PlanError, match=r"no Xen image given"):
        a20_plan(xen=None)


def test_unknown_layout() -> None:
    with pytest.raises(PlanError, match=r"unknown layout 'fancy'"):
        a20_plan(layout="fancy")


def test_reserve_larger_than_dram() -> None:
    with pytest.raises(PlanError, match=r"reserve at the top 0x40000000 .* cubieboard2"):
        a20_plan(reserve_top=GiB)


def test_bad_dram_size() -> None:
    board = load_board("cubieboard2")
    with pytest.raises(PlanError, match=r"DRAM size 0 of cubieboard2"):
        make_plan(board, 0, None, kernel_file("zImage-arm32", "kernel"), a20_dtb(), None)


def test_overlap_check_names_both_regions() -> None:
    first = Region("kernel", 0x48000000, 0x48800000, 0x10, "zImage", None)
    second = Region("U-Boot load area", 0x48700000, 0x48900000, 0, None, None)
    with pytest.raises(PlanError) as info:
        check_no_overlap((first,), (second,))
    message = str(info.value)
    assert "kernel 0x48000000-0x48800000 overlaps U-Boot load area 0x48700000-0x48900000" in message
    check_no_overlap((first,), (Region("after", 0x48800000, 0x49000000, 0, None, None),))


def test_ceiling_that_cuts_through_a_reserved_range_is_lowered() -> None:
    small = dataclasses.replace(load_board("cubieboard2"), dram_size=256 * MiB)
    plan = make_plan(
        small, 256 * MiB, kernel_file("xen-arm32.zimage", "Xen"),
        kernel_file("zImage-arm32", "kernel"), a20_dtb(), None,
        reserve_top=0x50000000 - 0x4A200000, uboot_range=(0x4A000000, 0x4A400000),
    )  # fmt: skip
    assert plan.kernel.end == 0x4A000000
    assert plan.xen.start >= 0x43100000 + plan.script_room


def test_dram_above_3g_is_clamped_with_a_warning() -> None:
    board = load_board("pine64-plus")
    plan = make_plan(
        board, 4 * GiB, kernel_file("xen-arm64.Image", "Xen"),
        kernel_file("Image-arm64.gz", "kernel"), a64_dtb(), None,
    )  # fmt: skip
    assert plan.dram_size == 3 * GiB
    assert plan.kernel.end == 0x100000000 - 128 * MiB
    assert any("4 GiB of DRAM" in w for w in plan.warnings)


# -- serialisation ------------------------------------------------------------------


def test_to_json_round_trips_without_payloads() -> None:
    plan = a20_plan()
    data = json.loads(plan.to_json())
    assert data == plan.to_dict()
    assert data["board"] == "cubieboard2" and data["layout"] == "safe"
    assert data["dram_top"] == 0x80000000
    assert [r["name"] for r in data["regions"]] == ["xen", "dtb", "initrd", "kernel"]
    assert data["regions"][0]["sha256"] == plan.xen.sha256
    assert all("payload" not in r for r in data["regions"])
    assert any(r["name"] == "U-Boot load area" for r in data["reserved"])


def test_board_profile_type() -> None:
    assert isinstance(load_board("cubieboard2"), BoardProfile)
