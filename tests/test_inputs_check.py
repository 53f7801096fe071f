"""Inputs that belong together (felboot.inputs_check), checked in load_inputs before any upload.

Synthetic files everywhere; Debian's real Xen, kernels, DTBs and U-Boot builds
where installed (skipped cleanly otherwise).
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import fdt
import pytest

from felboot.boards import load_board
from felboot.cli import main
from felboot.domains import DomU
from felboot.errors import FelbootError, ImageError, UsageError
from felboot.images import load
from felboot.images.dtb import parse_dtb
from felboot.images.initrd import parse_initrd
from felboot.images.kconfig import config_name_for, debian_flavour, embedded_config, parse_config
from felboot.images.kernel import parse_kernel
from felboot.images.uboot import load_uboot
from felboot.images.uimage import (
    ARCH_ARM,
    OS_LINUX,
    TYPE_KERNEL,
    TYPE_RAMDISK,
    build_legacy_image,
)
from felboot.images.xen import image_kind
from felboot.inputs_check import (
    check_dom0_kernel,
    check_domu_kernels,
    check_dtb_soc,
    check_slots,
    check_uboot_board,
    dtb_board_matches,
)
from felboot.plan import DomUImages
from felboot.run import RunRequest, load_inputs

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = ROOT / "fixtures" / "payloads"
IMAGES = ROOT / "fixtures" / "images"
A20_UBOOT = IMAGES / "u-boot-sunxi-with-spl-a20.bin"  # SPL DT name sun7i-a20-cubietruck
A20 = dict(
    xen=PAYLOADS / "xen-arm32.zimage",
    kernel=PAYLOADS / "zImage-arm32",
    dtb=PAYLOADS / "sun7i-a20-felboot-test.dtb",
)


def debian(pattern: str) -> Path:
    matches = sorted(Path("/").glob(pattern.lstrip("/")))
    if not matches:
        pytest.skip(f"Debian file {pattern} is not installed")
    return matches[-1]


def dtb_bytes(*compatible: str) -> bytes:
    tree = fdt.FDT()
    tree.set_property("compatible", list(compatible), path="/")
    tree.set_property("model", "test", path="/")
    return bytes(tree.to_dtb(version=17))


def dtb(name: str, *compatible: str):  # type: ignore[no-untyped-def]
    return parse_dtb(dtb_bytes(*compatible), name)


def kernel(data: bytes, name: str = "k"):  # type: ignore[no-untyped-def]
    return parse_kernel(data, name, "kernel")


def marked(path: Path, marker: bytes) -> bytes:
    """A fixture image with a marker string in its body (where real images carry theirs)."""
    data = path.read_bytes()
    return data[:0x100] + marker + data[0x100 + len(marker) :]


def request(**overrides: object) -> RunRequest:
    fields: dict[str, object] = {"board": "cubieboard2", "need_uboot": False, **A20}
    fields.update(overrides)
    return RunRequest(**fields)  # type: ignore[arg-type]


def one_line(error: FelbootError) -> str:
    message = str(error)
    assert "\n" not in message
    return message


# DTB SoC vs board -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("compatible", "soc"),
    [
        (("xunlong,orangepi-pc", "allwinner,sun8i-h3"), "H3"),
        (("pine64,pine64-plus", "allwinner,sun50i-a64"), "A64"),
        (("cubietech,a10-cubieboard", "allwinner,sun4i-a10"), "A10"),
    ],
)
def test_another_sunxi_socs_dtb_is_refused(compatible: tuple[str, ...], soc: str) -> None:
    with pytest.raises(ImageError) as caught:
        check_dtb_soc(dtb("other.dtb", *compatible), load_board("cubieboard2"))
    message = one_line(caught.value)
    assert f"DTB other.dtb is for an {soc}" in message
    assert "board cubieboard2 has an A20" in message and compatible[-1] in message


def test_a_ti_dtb_is_refused_as_another_vendors() -> None:
    tree = dtb("am335x-boneblack.dtb", "ti,am335x-bone-black", "ti,am33xx")
    with pytest.raises(ImageError, match=r"am335x-boneblack.dtb is for another vendor's SoC.*A20"):
        check_dtb_soc(tree, load_board("cubieboard2"))


def test_matching_and_custom_dtbs() -> None:
    board = load_board("cubieboard2")
    assert check_dtb_soc(dtb("x.dtb", "cubietech,cubieboard2", "allwinner,sun7i-a20"), board) == []
    h2plus = dtb("z.dtb", "xunlong,orangepi-zero", "allwinner,sun8i-h2-plus")
    assert check_dtb_soc(h2plus, load_board("h3")) == []  # the H2+ is an H3 die
    (warning,) = check_dtb_soc(dtb("custom.dtb", "acme,board"), board)
    assert "custom.dtb names no Allwinner SoC" in warning


def test_debian_h3_dtb_on_an_a20_board_is_refused_in_load_inputs() -> None:
    h3 = debian("/usr/lib/linux-image-*-armmp-lpae/sun8i-h3-orangepi-pc.dtb")
    with pytest.raises(ImageError, match=r"is for an H3 .* board cubieboard2 has an A20"):
        load_inputs(request(dtb=h3))


def test_another_socs_dtb_is_named_before_any_uboot_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A family profile looks U-Boot up from the DTB; an H3 DTB must be named as the
    # culprit, not reported as "no A20 U-Boot build matches".
    monkeypatch.setenv("FELBOOT_UBOOT_PATH", str(tmp_path))  # nothing to find there
    h3 = tmp_path / "sun8i-h3-orangepi-pc.dtb"
    h3.write_bytes(dtb_bytes("xunlong,orangepi-pc", "allwinner,sun8i-h3"))
    with pytest.raises(
        ImageError,
        match=r"^DTB .*sun8i-h3-orangepi-pc.dtb is for an H3 .* board "
        r"a20 has an A20",
    ):
        load_inputs(request(board="a20", dtb=h3, need_uboot=True))


# U-Boot's SPL DT name vs DTB and profile -------------------------------------------------


def with_dt_name(dt_name: str):  # type: ignore[no-untyped-def]
    bundle = load_uboot((A20_UBOOT,))
    return dataclasses.replace(bundle, spl=dataclasses.replace(bundle.spl, dt_name=dt_name))


@pytest.mark.parametrize("spl_board", ["sun7i-a20-cubietruck", "sun7i-a20-bananapi"])
def test_another_boards_uboot_on_a_cubieboard2_is_refused(spl_board: str) -> None:
    tree = dtb("/x/sun7i-a20-cubieboard2.dtb", "cubietech,cubieboard2", "allwinner,sun7i-a20")
    with pytest.raises(ImageError) as caught:
        check_uboot_board(with_dt_name(spl_board), tree, load_board("cubieboard2"))
    message = one_line(caught.value)
    assert f"is built for {spl_board}" in message
    assert "sun7i-a20-cubieboard2.dtb is for another board" in message
    assert 'another board (compatible "cubietech,cubieboard2"' in message


def test_other_board_ok_turns_the_refusal_into_a_warning() -> None:
    tree = dtb("sun7i-a20-cubieboard2.dtb", "cubietech,cubieboard2", "allwinner,sun7i-a20")
    bundle = with_dt_name("sun7i-a20-cubietruck")
    (warning,) = check_uboot_board(bundle, tree, load_board("cubieboard2"), other_board_ok=True)
    assert "sun7i-a20-cubietruck" in warning and "another board" in warning


def test_a_dtb_that_cannot_tell_leaves_the_profile_as_witness() -> None:
    """The fixture DTB is a made-up board: the cubietruck SPL vs the cubieboard2 profile warns."""
    tree = parse_dtb(A20["dtb"].read_bytes(), str(A20["dtb"]))
    bundle = load_uboot((A20_UBOOT,))
    assert dtb_board_matches("sun7i-a20-cubietruck", tree) is None
    (warning,) = check_uboot_board(bundle, tree, load_board("cubieboard2"))
    assert "sun7i-a20-cubietruck" in warning
    assert "profile cubieboard2 is for sun7i-a20-cubieboard2" in warning
    assert check_uboot_board(bundle, tree, load_board("cubietruck")) == []
    assert check_uboot_board(bundle, tree, load_board("a20")) == []  # a family names no board


def test_uboot_and_dtb_agree_but_the_profile_does_not() -> None:
    tree = dtb("sun7i-a20-cubietruck.dtb", "cubietech,cubietruck", "allwinner,sun7i-a20")
    (warning,) = check_uboot_board(
        with_dt_name("sun7i-a20-cubietruck"), tree, load_board("cubieboard2")
    )
    assert "like DTB sun7i-a20-cubietruck.dtb" in warning and "--board" in warning


def test_a_renamed_dtb_matches_by_compatible_and_pine64_by_the_spls_own_rule() -> None:
    renamed = dtb("board.dtb", "olimex,a20-olinuxino-lime2", "allwinner,sun7i-a20")
    assert dtb_board_matches("sun7i-a20-olinuxino-lime2", renamed) is True
    pine64 = dtb("sun50i-a64-pine64.dtb", "pine64,pine64", "allwinner,sun50i-a64")
    assert dtb_board_matches("sun50i-a64-pine64-plus", pine64) is True


def debian_builds() -> list[Path]:
    found = sorted(Path("/usr/lib/u-boot").glob("*/u-boot-sunxi-with-spl.bin"))
    found += sorted(Path("/usr/lib/u-boot").glob("*/sunxi-spl.bin"))
    return found


def test_every_debian_uboot_matches_its_own_dtb_and_no_other() -> None:
    builds = debian_builds()
    dtbs = {p.stem: p for p in Path("/usr/lib").glob("linux-image-*/**/*.dtb")}
    if not builds or not dtbs:
        pytest.skip("u-boot-sunxi and a linux-image with DTBs are not installed")
    checked = 0
    for spl_path in builds:
        spl = load_uboot((spl_path,)).spl if spl_path.name != "sunxi-spl.bin" else None
        dt_name = spl.dt_name if spl else None
        if dt_name is None or dt_name not in dtbs:
            continue
        own = parse_dtb(dtbs[dt_name].read_bytes(), str(dtbs[dt_name]))
        assert dtb_board_matches(dt_name, own) is True, dt_name
        checked += 1
    assert checked > 10


def test_debian_cubietruck_or_bananapi_uboot_on_a_cubieboard2_in_load_inputs() -> None:
    dtb_path = debian("/usr/lib/linux-image-*-armmp-lpae/sun7i-a20-cubieboard2.dtb")
    for board in ("Cubietruck", "Bananapi"):
        uboot = debian(f"/usr/lib/u-boot/{board}/u-boot-sunxi-with-spl.bin")
        with pytest.raises(ImageError, match=rf"{board}/u-boot.*is built for sun7i-a20-"):
            load_inputs(request(uboot=(uboot,), dtb=dtb_path))


# Xen vs Linux in their slots ---------------------------------------------------------------


def test_markers_tell_xen_from_linux() -> None:
    xen32 = kernel(marked(A20["xen"], b"Xen version %d.%d%s (%s"))
    linux32 = kernel(marked(A20["kernel"], b"Uncompressing Linux..."))
    xen64 = kernel(marked(PAYLOADS / "xen-arm64.Image", b"xen,xen-4.17\0xen,xen\0"))
    linux64 = kernel(marked(PAYLOADS / "Image-arm64", b"Linux version 6.1.0 (x)"))
    assert [image_kind(i) for i in (xen32, linux32, xen64, linux64)] == [
        "xen", "linux", "xen", "linux",
    ]  # fmt: skip
    # Linux with Xen support carries "xen,xen" and "Xen version not found": still Linux.
    guest = kernel(marked(PAYLOADS / "Image-arm64", b"xen,xen-\0Xen version not found\0"))
    assert image_kind(guest) is None
    assert image_kind(kernel(A20["xen"].read_bytes())) is None  # no markers: unknown, allowed


@pytest.mark.parametrize(
    ("xen_name", "kernel_name", "expected"),
    [
        ("/boot/vmlinuz-*-armmp-lpae", "/boot/xen-4.17-armhf", "swap them"),
        ("/boot/vmlinuz-*-armmp-lpae", "/boot/vmlinuz-*-armmp-lpae", "Xen slot holds a Linux"),
        ("/boot/xen-4.17-armhf", "/boot/xen-4.17-armhf", "kernel slot holds Xen"),
        ("/boot/vmlinuz-*-arm64", "/boot/xen-4.17-arm64", "swap them"),
    ],
)
def test_debian_xen_and_linux_in_the_wrong_slots(
    xen_name: str, kernel_name: str, expected: str
) -> None:
    xen_path, kernel_path = debian(xen_name), debian(kernel_name)
    xen = parse_kernel(xen_path.read_bytes(), str(xen_path), "Xen")
    dom0 = parse_kernel(kernel_path.read_bytes(), str(kernel_path), "kernel")
    with pytest.raises(ImageError) as caught:
        check_slots(xen, dom0, no_xen=False)
    message = one_line(caught.value)
    assert expected in message
    if expected == "swap them":
        assert str(xen_path) in message and str(kernel_path) in message


def test_debian_xen_and_linux_in_the_right_slots() -> None:
    xen_path, kernel_path = debian("/boot/xen-4.17-armhf"), debian("/boot/vmlinuz-*-armmp-lpae")
    xen = parse_kernel(xen_path.read_bytes(), str(xen_path), "Xen")
    dom0 = parse_kernel(kernel_path.read_bytes(), str(kernel_path), "kernel")
    assert (image_kind(xen), image_kind(dom0)) == ("xen", "linux")
    check_slots(xen, dom0, no_xen=False)


def test_xen_with_no_xen_is_named(tmp_path: Path) -> None:
    xen = tmp_path / "xen"
    xen.write_bytes(marked(A20["xen"], b"Xen version %d.%d"))
    with pytest.raises(ImageError, match=r"kernel .*xen is Xen, but --no-xen boots"):
        load_inputs(request(xen=None, kernel=xen, no_xen=True))


def test_swapped_arguments_are_one_cli_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    xen, linux = tmp_path / "xen", tmp_path / "zImage"
    xen.write_bytes(marked(A20["xen"], b"Xen version %d.%d"))
    linux.write_bytes(marked(A20["kernel"], b"Uncompressing Linux..."))
    code = main(["plan", "--board", "cubieboard2", str(linux), str(xen), str(A20["dtb"])])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == ImageError.exit_code and len(err) == 1
    assert "swap them" in err[0] and err[0].startswith("felboot: error: ")


# dom0 kernel configuration ------------------------------------------------------------------


def installed(tmp_path: Path, name: str, config: str | None, source: Path = A20["kernel"]) -> Path:
    path = tmp_path / name
    shutil.copy(source, path)
    version = name.split("-", 1)[1]
    if config is not None:
        (tmp_path / f"config-{version}").write_text(config)
    return path


def test_a_kernel_without_config_xen_is_refused(tmp_path: Path) -> None:
    path = installed(
        tmp_path, "vmlinuz-6.1.0-9-armmp-lpae", "CONFIG_ARM_LPAE=y\n# CONFIG_XEN is not set\n"
    )
    with pytest.raises(ImageError) as caught:
        load_inputs(request(kernel=path))
    message = one_line(caught.value)
    assert "vmlinuz-6.1.0-9-armmp-lpae is built without CONFIG_XEN" in message
    assert "config-6.1.0-9-armmp-lpae" in message and "--no-xen" in message
    load_inputs(request(kernel=path, xen=None, no_xen=True))  # fine on its own


def test_a_non_lpae_dom0_warns(tmp_path: Path) -> None:
    path = installed(
        tmp_path, "vmlinuz-6.1.0-9-custom", "CONFIG_XEN=y\n# CONFIG_ARM_LPAE is not set\n"
    )
    inputs = load_inputs(request(kernel=path))  # the commands print inputs.warnings
    (warning,) = [w for w in inputs.warnings if "LPAE" in w]
    assert "no CONFIG_ARM_LPAE=y" in warning
    named = installed(tmp_path, "vmlinuz-6.1.0-9-armmp", None)
    (by_name,) = [w for w in load_inputs(request(kernel=named)).warnings if "LPAE" in w]
    assert "-armmp flavour" in by_name
    lpae = installed(tmp_path, "vmlinuz-6.1.0-9-armmp-lpae", "CONFIG_XEN=y\nCONFIG_ARM_LPAE=y\n")
    assert not [w for w in load_inputs(request(kernel=lpae)).warnings if "LPAE" in w]


def test_ikconfig_is_read_from_an_uncompressed_image(tmp_path: Path) -> None:
    body = gzip.compress(b"# CONFIG_XEN is not set\nCONFIG_ARM64=y\n", mtime=0)
    data = marked(PAYLOADS / "Image-arm64", b"IKCFG_ST" + body + b"IKCFG_ED")
    config = embedded_config(data, "Image")
    assert (
        config is not None and not config.enabled("CONFIG_XEN") and config.enabled("CONFIG_ARM64")
    )
    image = tmp_path / "Image"
    image.write_bytes(data)
    with pytest.raises(ImageError, match=r"Image is built without CONFIG_XEN \(.*IKCONFIG\)"):
        load_inputs(
            RunRequest(
                board="pine64-plus",
                xen=PAYLOADS / "xen-arm64.Image",
                kernel=image,
                dtb=PAYLOADS / "sun50i-a64-felboot-test.dtb",
                need_uboot=False,
            )
        )


def test_kconfig_names_and_parsing() -> None:
    assert config_name_for("vmlinuz-6.1.0-57-armmp-lpae") == "config-6.1.0-57-armmp-lpae"
    assert config_name_for("zImage") is None
    assert debian_flavour("vmlinuz-6.1.0-57-armmp") == "armmp"
    assert debian_flavour("vmlinuz-6.1.0-57-armmp-lpae") == "armmp-lpae"
    config = parse_config('CONFIG_XEN=y\nCONFIG_CMDLINE="a b"\n# CONFIG_ARM_LPAE is not set\n', "c")
    assert config.enabled("CONFIG_XEN") and config.options["CONFIG_CMDLINE"] == "a b"
    with pytest.raises(ImageError, match="not a kernel configuration"):
        parse_config("hello\n", "c")


def test_debian_armmp_warns_and_armmp_lpae_does_not() -> None:
    for name, lpae in (("armmp", False), ("armmp-lpae", True)):
        path = debian(f"/boot/vmlinuz-*-{name}")
        config_path = path.with_name(config_name_for(path.name) or "")
        if not config_path.is_file():
            pytest.skip(f"{config_path} is not installed")
        config = parse_config(config_path.read_text(), str(config_path))
        image = parse_kernel(path.read_bytes(), str(path), "kernel")
        warnings = check_dom0_kernel(image, config, path.name, no_xen=False)
        assert bool(warnings) is not lpae, name


# initrd ----------------------------------------------------------------------------------------


def ramdisk_image(data: bytes, image_type: int = TYPE_RAMDISK) -> bytes:
    return build_legacy_image(
        data, name="initrd", image_type=image_type, arch=ARCH_ARM, os=OS_LINUX, timestamp=0
    )


def test_a_uimage_ramdisk_is_unwrapped(tmp_path: Path) -> None:
    plain = (PAYLOADS / "initrd.img").read_bytes()
    wrapped = tmp_path / "uInitrd"
    wrapped.write_bytes(ramdisk_image(plain))
    assert load_inputs(request(initrd=wrapped)).initrd == plain
    assert parse_initrd(plain, "initrd.img").data == plain  # a plain one is left alone


def test_bad_initrds_are_refused() -> None:
    with pytest.raises(ImageError, match=r"initrd x is empty"):
        parse_initrd(b"", "x")
    corrupt = bytearray(ramdisk_image(b"ramdisk" * 100))
    corrupt[-1] ^= 0xFF
    with pytest.raises(ImageError, match=r"data CRC .*mkimage -T ramdisk"):
        parse_initrd(bytes(corrupt), "uInitrd")
    with pytest.raises(ImageError, match=r"a U-Boot legacy kernel image .*not a ramdisk"):
        parse_initrd(ramdisk_image(b"k" * 64, TYPE_KERNEL), "uImage")


@pytest.mark.parametrize(
    ("name", "found"),
    [
        ("zImage-arm32", r"a kernel image \(zImage: a kernel or Xen\)"),
        ("xen-arm32.zimage", r"a kernel image \(zImage: a kernel or Xen\)"),
        ("sun7i-a20-felboot-test.dtb", "a device tree blob"),
    ],
)
def test_a_kernel_or_dtb_given_as_the_ramdisk_is_refused(name: str, found: str) -> None:
    with pytest.raises(ImageError) as caught:
        parse_initrd((PAYLOADS / name).read_bytes(), name, "domU1 ramdisk")
    assert re.fullmatch(
        rf"domU1 ramdisk {re.escape(name)} is {found}, not a ramdisk: pass the ramdisk \(a cpio "
        r"archive such as initrd\.img\); are two files swapped\?",
        str(caught.value),
    )


def test_an_spl_given_as_the_initrd_is_refused() -> None:
    spl = (IMAGES / "u-boot-sunxi-with-spl-a20.bin").read_bytes()
    with pytest.raises(ImageError, match=r"^initrd u\.bin is a U-Boot SPL image \(eGON header\)"):
        parse_initrd(spl, "u.bin")


@pytest.mark.skipif(shutil.which("mkimage") is None, reason="mkimage (u-boot-tools) not installed")
def test_mkimage_uinitrd_is_unwrapped(tmp_path: Path) -> None:
    wrapped = tmp_path / "uInitrd"
    subprocess.run(
        ["mkimage", "-A", "arm", "-O", "linux", "-T", "ramdisk", "-C", "none", "-n", "initrd",
         "-d", str(PAYLOADS / "initrd.img"), str(wrapped)],
        check=True, capture_output=True,
    )  # fmt: skip
    assert (
        parse_initrd(wrapped.read_bytes(), str(wrapped)).data
        == (PAYLOADS / "initrd.img").read_bytes()
    )


# Large files are sized before they are read ------------------------------------------------------


@pytest.mark.parametrize("slot", ["kernel", "initrd", "dtb", "xen"])
def test_an_sd_card_image_is_refused_from_its_size(
    slot: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = tmp_path / "sdcard.img"
    with card.open("wb") as handle:
        handle.truncate(8 << 30)  # sparse: nothing is written
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        assert self != card, "the 8 GiB file was read"
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    started = time.monotonic()
    with pytest.raises(UsageError) as caught:
        load_inputs(request(**{slot: card}))
    assert time.monotonic() - started < 5
    message = one_line(caught.value)
    assert f"{card} is 8 GiB, more than the A20's DRAM window (2 GiB)" in message
    assert "SD-card image" in message


def test_load_has_a_limit_of_its_own(tmp_path: Path) -> None:
    big = tmp_path / "big"
    with big.open("wb") as handle:
        handle.truncate(4 << 30)
    with pytest.raises(UsageError, match=r"big is 4 GiB, more than what FEL can place"):
        load(big, "file")
    os.truncate(big, 16)
    assert load(big) == bytes(16)


def test_the_cli_prints_input_warnings_and_the_flag_accepts_another_boards_uboot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The fixture DTB (it has a UART for dtuart), relabelled as a Cubieboard2's.
    board_tree = fdt.parse_dtb((PAYLOADS / "sun7i-a20-felboot-test.dtb").read_bytes())
    board_tree.set_property("compatible", ["cubietech,cubieboard2", "allwinner,sun7i-a20"])
    tree = tmp_path / "sun7i-a20-cubieboard2.dtb"
    tree.write_bytes(bytes(board_tree.to_dtb(version=17)))
    args = [
        "plan", "--board", "cubieboard2", "--uboot", str(A20_UBOOT),
        str(PAYLOADS / "xen-arm32.zimage"), str(PAYLOADS / "zImage-arm32"), str(tree),
    ]  # fmt: skip
    assert main(args) == 6
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--uboot-for-other-board" in err
    assert main([*args, "--uboot-for-other-board"]) == 0
    captured = capsys.readouterr()
    (warning,) = captured.err.splitlines()
    assert warning.startswith("felboot: warning: U-Boot ") and "another board" in warning
    assert captured.out.startswith("U-Boot: ")


def _xen_of_version(version: str) -> Any:
    """The test Xen with the versioned compatible a real Xen carries (images/xen.py)."""
    data = (PAYLOADS / "xen-arm32.zimage").read_bytes() + f"xen,xen-{version}\0".encode()
    return parse_kernel(data, f"xen-{version}", "Xen")


def _domu(kernel_file: str) -> DomUImages:
    data = (PAYLOADS / kernel_file).read_bytes()
    return DomUImages(DomU(index=1, kernel=Path(kernel_file)), parse_kernel(data, kernel_file, "k"))


def test_domus_need_xen_4_12_when_the_version_is_known() -> None:
    domus = [_domu("zImage-arm32")]
    check_domu_kernels(_xen_of_version("4.12"), domus)
    check_domu_kernels(_xen_of_version("4.17"), domus)
    check_domu_kernels(
        parse_kernel((PAYLOADS / "xen-arm32.zimage").read_bytes(), "x", "Xen"), domus
    )
    check_domu_kernels(_xen_of_version("4.11"), [])  # no domUs: any Xen
    with pytest.raises(ImageError) as caught:
        check_domu_kernels(_xen_of_version("4.11"), domus)
    assert str(caught.value) == (
        "Xen xen-4.11 is Xen 4.11, which has no dom0less domUs (Xen 4.12 added them): use Xen "
        "4.12 or later, or leave out --domu"
    )


def test_xen_given_as_a_domu_kernel_is_refused() -> None:
    xen = _xen_of_version("4.17")
    domu = DomUImages(DomU(index=1, kernel=Path("xen")), xen)
    with pytest.raises(ImageError, match=r"^domU1 kernel xen-4.17 is Xen, not a guest kernel"):
        check_domu_kernels(xen, [domu])


def test_the_expected_domu_console_follows_the_xen_version() -> None:
    from felboot.images.xen import vpl011_console_lines, xen_version

    assert xen_version(_xen_of_version("4.17")) == (4, 17)
    assert vpl011_console_lines((4, 17), 1) == "'(XEN) DOM1: ...' lines"
    assert vpl011_console_lines((4, 21), 2) == (
        "'(XEN) DOM2: ...' lines (or '(d2) ...' on a newer Xen)"
    )
    assert vpl011_console_lines(None, 1).endswith("(or '(d1) ...' on a newer Xen)")
