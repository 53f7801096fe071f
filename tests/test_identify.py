"""describe_file: what `felboot inspect` shows for each kind of file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fdt
import pytest

from felboot.errors import UsageError
from felboot.images import identify
from felboot.images.identify import describe_bytes, describe_file
from tests.support import fixture_script

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "fixtures" / "images"


make_images = fixture_script("make_images")


def describe(name: str) -> dict[str, Any]:
    info = describe_file(IMAGES / name)
    json.dumps(info)  # everything must serialise for --json
    assert info["path"] == str(IMAGES / name)
    assert info["size"] == (IMAGES / name).stat().st_size
    return info


def test_spl() -> None:
    info = describe("spl-v3-a64.bin")
    assert info["kind"] == "spl"
    assert info["problems"] == []
    assert info["spl"] == {
        "length": 4096,
        "checksum": info["spl"]["checksum"],
        "checksum_ok": True,
        "spl_version": "0.3",
        "uboot_version": None,
        "dt_name": "sun50i-a64-pine64-plus",
        "soc": "A64",
        "soc_id": 0x1689,
        "dram_size_mib": 2048,
        "has_fel_script_fields": True,
    }
    assert isinstance(info["spl"]["checksum"], int)  # JSON has no hex: ints throughout


def test_a20_with_spl() -> None:
    info = describe("u-boot-sunxi-with-spl-a20.bin")
    assert info["kind"] == "u-boot-with-spl"
    assert info["main_offset"] == 0x8000
    assert info["spl"]["soc"] == "A20"
    main = info["main"]
    assert main["kind"] == "legacy-image"
    assert (main["type"], main["os"], main["arch"]) == ("firmware", "U-Boot", "ARM")
    assert main["load"] == main["entry"] == 0x4A000000
    assert main["header_crc_ok"] and main["data_crc_ok"]
    assert info["problems"] == []


def test_a64_with_spl_shows_the_selected_config() -> None:
    info = describe("u-boot-sunxi-with-spl-a64.bin")
    main = info["main"]
    assert main["kind"] == "fit"
    assert main["selected"] == "config-2"
    assert main["configurations"]["config-2"]["loadables"] == ["scp", "uboot"]
    assert main["configurations"]["config-1"]["soc"] == "A64"
    assert main["images"]["atf"]["entry"] == 0x44000
    assert main["images"]["uboot"]["entry"] is None
    assert main["images"]["uboot"]["load"] == 0x4A000000
    assert not main["images"]["uboot"]["external"]


def test_fit() -> None:
    info = describe("u-boot-a64.itb")
    assert info["kind"] == "fit"
    assert info["default"] == "config-2"
    assert info["images"]["scp"]["size"] == 256
    assert info["images"]["scp"]["external"]
    assert info["problems"] == []


def test_legacy_image() -> None:
    info = describe("u-boot-a20.img")
    assert info["kind"] == "legacy-image"
    assert info["name"] == "U-Boot felboot fixture"
    assert "script" not in info


def test_script_shows_its_text() -> None:
    info = describe("boot.scr")
    assert info["type"] == "script"
    assert info["script"].startswith("echo felboot fixture\n")


@pytest.mark.parametrize(
    ("name", "kind", "fragment"),
    [
        ("broken-spl-bad-checksum.bin", "spl", "SPL checksum"),
        ("broken-spl-truncated.bin", "spl", "is truncated"),
        ("broken-u-boot-bad-header-crc.img", "legacy-image", "header CRC"),
        ("broken-u-boot-bad-data-crc.img", "legacy-image", "data CRC"),
        ("broken-u-boot-truncated.itb", "fit", "runs past the end"),
    ],
)
def test_broken_files_say_what_is_wrong(name: str, kind: str, fragment: str) -> None:
    info = describe(name)
    assert info["kind"] == kind
    assert len(info["problems"]) == 1
    assert str(IMAGES / name) in info["problems"][0]
    assert fragment in info["problems"][0]


def test_bad_checksum_still_shows_the_header() -> None:
    info = describe("broken-spl-bad-checksum.bin")
    assert info["spl"]["checksum_ok"] is False
    assert info["spl"]["dt_name"] == "sun7i-a20-cubietruck"


def test_bad_main_in_bundle() -> None:
    data = (IMAGES / "spl-v2-a20.bin").read_bytes() + bytes(0x7000)
    data += (IMAGES / "broken-u-boot-bad-data-crc.img").read_bytes()
    info = describe_bytes(data, "x.bin")
    assert info["kind"] == "u-boot-with-spl"
    assert "main" not in info
    assert info["problems"][0].startswith("x.bin at 0x8000: legacy image data CRC")


def test_bundle_falls_back_to_the_fit_default() -> None:
    spl = (IMAGES / "spl-v2-a20.bin").read_bytes()  # DT name of an A20 board
    fit = (IMAGES / "u-boot-a64.itb").read_bytes()
    info = describe_bytes(spl + bytes(0x8000 - len(spl)) + fit, "mixed.bin")
    assert info["main"]["selected"] == "config-2"
    assert info["problems"] == []


def test_bundle_whose_fit_has_no_matching_config() -> None:
    spl = (IMAGES / "spl-v2-a20.bin").read_bytes()
    fit = make_images.make_fit(external=False, default=None)
    info = describe_bytes(spl + bytes(0x8000 - len(spl)) + fit, "mixed.bin")
    assert info["main"]["selected"] is None
    assert info["problems"] == [
        "mixed.bin at 0x8000: no FIT configuration matches DT name 'sun7i-a20-cubietruck'"
    ]


def test_unknown_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello world")
    info = describe_file(path)
    assert info["kind"] == "unknown"
    assert info["magic"] == b"hello wo".hex()
    assert info["problems"] == [
        f"{path}: felboot does not recognise this file (first bytes {b'hello wo'.hex()})"
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"nope\.bin: no such file$"):
        describe_file(tmp_path / "nope.bin")


def test_plain_device_tree_goes_to_the_dtb_describer() -> None:
    tree = fdt.FDT()
    tree.root.append(fdt.PropStrings("model", "Board"))
    tree.root.append(fdt.PropStrings("compatible", "vendor,board"))
    info = describe_bytes(tree.to_dtb(version=17), "board.dtb")
    try:
        import felboot.images.dtb  # noqa: F401
    except ModuleNotFoundError:
        assert info["kind"] == "unknown"
    else:
        assert info["kind"] == "dtb"


def test_a_describer_kind_is_reported_as_it_names_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = lambda data: {"type": "fake"} if data[:4] == b"FAKE" else None  # noqa: E731
    monkeypatch.setattr(identify, "describe_kernel", fake)
    info = describe_bytes(b"FAKE....", "f")
    assert info["kind"] == "fake"
    assert info["type"] == "fake"
    assert info["problems"] == []
    assert describe_bytes(b"OTHER...", "f")["kind"] == "unknown"


PAYLOADS = ROOT / "fixtures" / "payloads"


def test_xen_is_told_by_its_own_markers() -> None:
    body = b"\0xen,xen-4.17\0xen,xen\0Xen version %d.%d%s (%s)\0"
    zimage = (PAYLOADS / "zImage-arm32").read_bytes() + body
    info = describe_bytes(zimage, "xen")
    assert (info["os"], info["xen_version"]) == ("Xen", "4.17")
    assert info["xen_markers"] == ["xen,xen-4.17", "Xen version banner"]
    assert info["linux_version"] is None


def test_linux_strings_that_look_like_xen_are_not_markers() -> None:
    # What Debian's arm64 Linux 6.1 carries: the bare prefix and an error message.
    body = b"\0xen,xen-\0Xen version not found\0Linux version 6.1.0-57-arm64 (gcc)\0"
    info = describe_bytes((PAYLOADS / "Image-arm64").read_bytes() + body, "linux")
    assert (info["os"], info["xen_markers"], info["linux_version"]) == (
        "Linux",
        [],
        "6.1.0-57-arm64",
    )


def test_gzipped_xen_is_searched_unpacked() -> None:
    import gzip

    image = (PAYLOADS / "xen-arm64.Image").read_bytes() + b"\0xen,xen-4.19\0"
    info = describe_bytes(gzip.compress(image, mtime=0), "xen.gz")
    assert (info["kind"], info["os"], info["xen_version"]) == ("gzip-Image", "Xen", "4.19")


@pytest.mark.parametrize(
    ("name", "lpae", "warned"),
    [
        ("vmlinuz-6.1.0-57-armmp-lpae", True, False),
        ("vmlinuz-6.1.0-57-armmp", False, True),
        ("zImage", None, False),
    ],
)
def test_lpae_from_the_debian_flavour(tmp_path: Path, name: str, lpae: bool, warned: bool) -> None:
    path = tmp_path / name
    path.write_bytes((PAYLOADS / "zImage-arm32").read_bytes())
    info = describe_file(path)
    assert info["lpae"] is lpae
    assert bool(info["warnings"]) is warned
    if warned:
        assert info["warnings"][0].startswith(f"{path}: not an LPAE kernel")
    assert info["lpae_source"] == (
        None if lpae is None else f"the Debian flavour in the file name {name!r}"
    )


def test_arm64_kernels_have_no_lpae_question() -> None:
    assert "lpae" not in describe("../payloads/Image-arm64")


def test_dtb_names_board_and_soc() -> None:
    info = describe_file(PAYLOADS / "sun7i-a20-felboot-test.dtb")
    assert (info["board"], info["soc"], info["soc_id"]) == ("felboot,a20-test", "A20", 0x1651)
    assert info["soc_compatible"] == "allwinner,sun7i-a20"
    assert info["console"] == "/soc/serial@1c28000"


@pytest.mark.parametrize(
    ("head", "compression"),
    [(b"\x28\xb5\x2f\xfd", "zstd"), (b"\xfd7zXZ\x00", "xz"), (b"070701", "cpio")],
)
def test_compressed_data_is_taken_for_a_ramdisk(head: bytes, compression: str) -> None:
    info = describe_bytes(head + bytes(64), "initrd")
    assert (info["kind"], info["compression"], info["problems"]) == ("ramdisk", compression, [])


def test_a_legacy_ramdisk_says_what_it_wraps() -> None:
    from felboot.images.uimage import ARCH_ARM, OS_LINUX, TYPE_RAMDISK, build_legacy_image

    wrapped = build_legacy_image(
        b"\x1f\x8b\x08" + bytes(61),
        name="uInitrd",
        image_type=TYPE_RAMDISK,
        arch=ARCH_ARM,
        os=OS_LINUX,
        timestamp=0,
    )
    info = describe_bytes(wrapped, "uInitrd")
    assert (info["type"], info["payload_format"]) == ("ramdisk", "gzip")


def test_text_of_a_describer_kind_is_readable(monkeypatch: pytest.MonkeyPatch) -> None:
    found = {"type": "fake", "load": 0x4A000000, "image_size": 4096, "ok": True}
    fake = lambda data: dict(found) if data[:4] == b"FAKE" else None  # noqa: E731
    monkeypatch.setattr(identify, "describe_kernel", fake)
    info = {"path": "f", "size": 8, **describe_bytes(b"FAKE....", "f")}
    assert identify.report_lines(info) == [
        "f: fake",
        "  file:       8 bytes",
        "  type:       fake",
        "  load:       0x4a000000",
        "  image_size: 4 KiB (4,096 bytes)",
        "  ok:         yes",
    ]


def test_config_beside_the_kernel_wins_over_the_name(tmp_path: Path) -> None:
    path = tmp_path / "vmlinuz-6.1.0-57-armmp-lpae"
    path.write_bytes((PAYLOADS / "zImage-arm32").read_bytes())
    (tmp_path / "config-6.1.0-57-armmp-lpae").write_text("# CONFIG_ARM_LPAE is not set\n")
    info = describe_file(path)
    assert (info["lpae"], info["xen_support"]) == (False, False)
    assert info["lpae_source"] == str(tmp_path / "config-6.1.0-57-armmp-lpae")
    assert "built without CONFIG_XEN" in info["warnings"][0]
    assert "not an LPAE kernel" in info["warnings"][1]
