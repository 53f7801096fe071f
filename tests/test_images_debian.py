"""Every sunxi U-Boot that Debian's u-boot-sunxi packages install, parsed as felboot sees it.

32-bit boards ship u-boot-sunxi-with-spl.bin (SPL + legacy image); arm64
boards ship sunxi-spl.bin and u-boot-sunxi-with-spl.fit.itb, plus the DTBs
and u-boot-nodtb.bin that went into the FIT, which the FIT's contents are
checked against. Skipped when the packages are not installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from felboot.images.fit import FitImage, parse_fit, select_config
from felboot.images.spl import parse_spl
from felboot.images.uboot import load_uboot, soc_hint
from felboot.images.uimage import ARCH_ARM, OS_U_BOOT, TYPE_FIRMWARE, LegacyImage
from felboot.soc import soc_by_name

UBOOT_DIR = Path("/usr/lib/u-boot")
WITH_SPL = sorted(UBOOT_DIR.glob("*/u-boot-sunxi-with-spl.bin"))
ARM64_PAIRS = sorted(
    directory
    for directory in (path.parent for path in UBOOT_DIR.glob("*/sunxi-spl.bin"))
    if (directory / "u-boot-sunxi-with-spl.fit.itb").exists()
)
U_BOOT_PROPER_OFFSET_IN_DRAM = 0x0A000000  # Debian's CONFIG_TEXT_BASE: DRAM base + 160 MiB
ATF_BASE = {"A64": 0x44000, "H5": 0x44000, "H6": 0x104000}

needs_armhf = pytest.mark.skipif(not WITH_SPL, reason="u-boot-sunxi:armhf is not installed")
needs_arm64 = pytest.mark.skipif(not ARM64_PAIRS, reason="u-boot-sunxi:arm64 is not installed")


def board_id(path: Path) -> str:
    return path.name if path.is_dir() else path.parent.name


@needs_armhf
@pytest.mark.parametrize("path", WITH_SPL, ids=board_id)
def test_armhf_u_boot_with_spl(path: Path) -> None:
    bundle = load_uboot([path])
    spl = bundle.spl
    assert spl.checksum_ok
    assert spl.has_fel_script_fields
    assert spl.dt_name is not None and spl.dt_name.startswith("sun")
    assert bundle.main_offset == max(spl.length, 0x8000)

    soc_name = soc_hint(bundle)
    assert soc_name is not None, spl.dt_name
    soc = soc_by_name(soc_name)
    assert soc is not None
    assert not soc.is_arm64
    assert spl.length <= soc.sram_size

    main = bundle.main
    assert isinstance(main, LegacyImage)
    assert main.header_crc_ok and main.data_crc_ok
    assert (main.os, main.arch, main.image_type) == (OS_U_BOOT, ARCH_ARM, TYPE_FIRMWARE)
    assert main.load == main.entry == soc.dram_base + U_BOOT_PROPER_OFFSET_IN_DRAM
    assert main.name.startswith("U-Boot ")


@needs_armhf
@pytest.mark.skipif(shutil.which("mkimage") is None, reason="mkimage not installed")
@pytest.mark.parametrize("path", WITH_SPL[:3], ids=board_id)
def test_armhf_main_agrees_with_mkimage(path: Path, tmp_path: Path) -> None:
    bundle = load_uboot([path])
    assert isinstance(bundle.main, LegacyImage) and bundle.main_offset is not None
    main_file = tmp_path / "u-boot.img"
    main_file.write_bytes(path.read_bytes()[bundle.main_offset :][: bundle.main.total_size])
    listing = subprocess.run(
        ["mkimage", "-l", str(main_file)], check=True, capture_output=True, text=True
    ).stdout
    assert re.search(rf"Load Address:\s+{bundle.main.load:08x}", listing)
    assert re.search(rf"Entry Point:\s+{bundle.main.entry:08x}", listing)
    assert f"Data Size:    {bundle.main.data_size} Bytes" in listing
    assert "U-Boot Firmware" in listing


@needs_arm64
@pytest.mark.parametrize("directory", ARM64_PAIRS, ids=board_id)
def test_arm64_spl_and_fit(directory: Path) -> None:
    bundle = load_uboot([directory / "sunxi-spl.bin", directory / "u-boot-sunxi-with-spl.fit.itb"])
    spl = bundle.spl
    assert spl.checksum_ok
    assert spl.dt_name is not None
    soc_name = soc_hint(bundle)
    assert soc_name in ATF_BASE, spl.dt_name
    soc = soc_by_name(soc_name)
    assert soc is not None and soc.is_arm64
    assert spl.length <= soc.sram_size

    fit = bundle.main
    assert isinstance(fit, FitImage)
    config = select_config(fit, spl.dt_name)
    assert config.description == spl.dt_name  # each Debian SPL names a config of its own FIT
    assert config.firmware == "atf"
    assert "uboot" in config.loadables

    atf = fit.images["atf"]
    assert atf.os == "arm-trusted-firmware"
    assert atf.load == atf.entry == ATF_BASE[soc_name]
    uboot = fit.images["uboot"]
    assert (uboot.type, uboot.os, uboot.arch) == ("standalone", "u-boot", "arm64")
    assert uboot.load == soc.dram_base + U_BOOT_PROPER_OFFSET_IN_DRAM
    assert uboot.data == (directory / "u-boot-nodtb.bin").read_bytes()

    (fdt_name,) = config.fdt
    dtb = directory / f"{config.description}.dtb"
    if dtb.exists():
        assert fit.images[fdt_name].data == dtb.read_bytes()
    assert fit.images[fdt_name].data[:4] == bytes.fromhex("d00dfeed")


@needs_arm64
@pytest.mark.skipif(shutil.which("fdtget") is None, reason="fdtget not installed")
@pytest.mark.parametrize("directory", ARM64_PAIRS[:3], ids=board_id)
def test_arm64_fit_agrees_with_fdtget(directory: Path) -> None:
    itb = directory / "u-boot-sunxi-with-spl.fit.itb"
    fit = parse_fit(itb.read_bytes(), str(itb))

    def fdtget(*args: str) -> str:
        command = ["fdtget", *args]
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()

    assert fdtget(str(itb), "-l", "/images").split() == list(fit.images)
    assert fdtget(str(itb), "-l", "/configurations").split() == list(fit.configurations)
    assert fdtget(str(itb), "/configurations", "default") == fit.default
    for name, image in fit.images.items():
        if image.load is not None:
            assert int(fdtget("-t", "x", str(itb), f"/images/{name}", "load"), 16) == image.load


@needs_arm64
def test_pine64_plus_spl_follows_u_boot_dram_rule() -> None:
    directory = UBOOT_DIR / "pine64_plus"
    if not directory.exists():
        pytest.skip("no pine64_plus build installed")
    spl = parse_spl((directory / "sunxi-spl.bin").read_bytes(), "sunxi-spl.bin")
    itb = directory / "u-boot-sunxi-with-spl.fit.itb"
    fit = parse_fit(itb.read_bytes(), str(itb))
    assert select_config(fit, spl.dt_name, dram_size_mib=512).description == "sun50i-a64-pine64"
    plus = select_config(fit, spl.dt_name, dram_size_mib=2048)
    assert plus.description == "sun50i-a64-pine64-plus"
