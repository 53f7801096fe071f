"""SPL + U-Boot proper bundles, the SoC hint, and the fixture generator."""

from __future__ import annotations

from pathlib import Path

import fdt
import pytest

from felboot.errors import ImageError, UsageError
from felboot.images.fit import FitImage
from felboot.images.uboot import (
    SOC_BY_DT_PREFIX,
    UBootBundle,
    load_uboot,
    main_offset_for,
    parse_main,
    soc_from_dt_name,
    soc_hint,
    split_uboot_with_spl,
)
from felboot.images.uimage import LegacyImage, build_script_image
from felboot.soc import soc_by_name
from tests.support import fixture_script

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "fixtures" / "images"


make_images = fixture_script("make_images")


def fixture(name: str) -> bytes:
    return (IMAGES / name).read_bytes()


def test_fixtures_are_what_the_generator_makes() -> None:
    built = make_images.build_all()
    on_disk = {path.name for path in IMAGES.iterdir()}
    assert on_disk == set(built), "run: python fixtures/make_images.py"
    for name, contents in built.items():
        assert (IMAGES / name).read_bytes() == contents, f"{name} differs: regenerate fixtures"


def test_generator_writes_to_a_chosen_directory(tmp_path: Path) -> None:
    assert make_images.main(["make_images.py", str(tmp_path)]) == 0
    assert (tmp_path / "spl-v2-a20.bin").read_bytes() == fixture("spl-v2-a20.bin")


def test_a20_with_spl() -> None:
    bundle = split_uboot_with_spl(fixture("u-boot-sunxi-with-spl-a20.bin"), "a20.bin")
    assert bundle.spl.dt_name == bundle.dt_name == "sun7i-a20-cubietruck"
    assert bundle.main_offset == 0x8000
    assert bundle.spl_source == "a20.bin"
    assert bundle.main_source == "a20.bin at 0x8000"
    assert isinstance(bundle.main, LegacyImage)
    assert not bundle.is_fit
    alone = parse_main(fixture("u-boot-a20.img"), "img")
    assert isinstance(alone, LegacyImage)
    assert bundle.main.data == alone.data
    assert soc_hint(bundle) == "A20"


def test_a64_with_spl() -> None:
    bundle = split_uboot_with_spl(fixture("u-boot-sunxi-with-spl-a64.bin"), "a64.bin")
    assert isinstance(bundle.main, FitImage)
    assert bundle.is_fit
    assert bundle.main.default == "config-2"
    assert soc_hint(bundle) == "A64"


def test_main_follows_an_spl_longer_than_32k() -> None:
    spl = make_images.make_spl(length=0x9000, dt_name="sun8i-h3-nanopi-neo", version=2)
    data = spl + fixture("u-boot-a20.img")
    bundle = split_uboot_with_spl(data, "big.bin")
    assert bundle.main_offset == main_offset_for(bundle.spl) == 0x9000
    assert soc_hint(bundle) == "H3"


def test_spl_alone_has_no_main() -> None:
    with pytest.raises(ImageError) as caught:
        split_uboot_with_spl(fixture("spl-v2-a20.bin"), "sunxi-spl.bin")
    assert str(caught.value).startswith(
        "sunxi-spl.bin holds no U-Boot after the SPL (expected a legacy image or FIT at 0x8000; "
        "the file ends at 0x1000, it is an SPL alone)"
    )


def test_padding_without_main() -> None:
    with pytest.raises(ImageError, match=r"x.bin holds no U-Boot .*something else is there"):
        split_uboot_with_spl(fixture("broken-spl-without-main.bin"), "x.bin")


def test_spl_errors_name_the_bundle() -> None:
    with pytest.raises(ImageError, match="^cut.bin is truncated"):
        split_uboot_with_spl(fixture("broken-spl-truncated.bin"), "cut.bin")


def test_broken_main_names_its_offset() -> None:
    data = fixture("spl-v2-a20.bin") + bytes(0x7000) + fixture("broken-u-boot-bad-data-crc.img")
    with pytest.raises(ImageError, match=r"^x.bin at 0x8000: legacy image data CRC"):
        split_uboot_with_spl(data, "x.bin")


def test_legacy_main_must_be_u_boot() -> None:
    script = build_script_image(b"boot", name="s", timestamp=0)
    with pytest.raises(ImageError) as caught:
        parse_main(script, "boot.scr")
    assert str(caught.value).startswith(
        "boot.scr: a legacy ARM script image ('s'), not U-Boot proper"
    )


def test_main_must_be_legacy_or_fit() -> None:
    with pytest.raises(ImageError, match="zImage: not U-Boot proper"):
        parse_main(bytes(64), "zImage")


def test_fit_main_needs_configurations() -> None:
    blob = make_images.make_fit(external=False)
    assert isinstance(parse_main(blob, "u.itb"), FitImage)
    plain_images = fixture("u-boot-a64.itb")
    assert isinstance(parse_main(plain_images, "u.itb"), FitImage)
    tree = fdt.FDT()
    tree.root.append(fdt.Node("images"))
    with pytest.raises(ImageError, match="u.itb: a FIT without configurations"):
        parse_main(tree.to_dtb(version=17), "u.itb")


# Loading from files ----------------------------------------------------------


def test_load_one_file() -> None:
    bundle = load_uboot([IMAGES / "u-boot-sunxi-with-spl-a20.bin"])
    assert bundle.spl_source.endswith("u-boot-sunxi-with-spl-a20.bin")
    assert bundle.main_offset == 0x8000


@pytest.mark.parametrize("order", [0, 1])
def test_load_spl_and_fit_in_either_order(order: int) -> None:
    paths = [IMAGES / "spl-v3-a64.bin", IMAGES / "u-boot-a64.itb"]
    if order:
        paths.reverse()
    bundle = load_uboot(paths)
    assert bundle.main_offset is None
    assert bundle.spl_source.endswith("spl-v3-a64.bin")
    assert bundle.main_source.endswith("u-boot-a64.itb")
    assert isinstance(bundle.main, FitImage)
    assert soc_hint(bundle) == "A64"


def test_load_spl_and_legacy_image() -> None:
    bundle = load_uboot([IMAGES / "spl-v2-a20.bin", IMAGES / "u-boot-a20.img"])
    assert isinstance(bundle.main, LegacyImage)


def test_load_two_spls() -> None:
    with pytest.raises(ImageError, match="both are an eGON SPL"):
        load_uboot([IMAGES / "spl-v2-a20.bin", IMAGES / "spl-v3-a64.bin"])


def test_load_no_spl() -> None:
    with pytest.raises(ImageError, match="neither is an eGON SPL"):
        load_uboot([IMAGES / "u-boot-a20.img", IMAGES / "u-boot-a64.itb"])


@pytest.mark.parametrize("count", [0, 3])
def test_load_wrong_number_of_files(count: int) -> None:
    with pytest.raises(UsageError, match=f"got {count}"):
        load_uboot([IMAGES / "spl-v2-a20.bin"] * count)


def test_load_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "u-boot-sunxi-with-spl.bin"
    with pytest.raises(UsageError, match=f"^{missing}: no such file$"):
        load_uboot([missing])


# SoC hints -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dt_name", "soc"),
    [
        ("sun7i-a20-cubietruck", "A20"),
        ("sun4i-a10-cubieboard", "A10"),
        ("sun5i-a10s-olinuxino-micro", "A10s"),
        ("sun5i-r8-chip", "R8"),
        ("sun8i-h2-plus-orangepi-zero", "H2+"),
        ("sun8i-h3-orangepi-plus", "H3"),
        ("sun8i-v40-bananapi-m2-berry", "R40"),
        ("sun8i-a83t-bananapi-m3", "A83T"),
        ("sun8i-v3s-licheepi-zero", "V3s"),
        ("sun9i-a80-cubieboard4", "A80"),
        ("sun50i-a64-pine64-plus", "A64"),
        ("sun50i-h5-nanopi-neo2", "H5"),
        ("sun50i-h6-orangepi-one-plus", "H6"),
        ("sun50i-h616-orangepi-zero2", "H616"),
        ("sun50i-h618-orangepi-zero3", "H616"),
        ("allwinner/sun50i-a64-pinebook", "A64"),
        ("sun50i-h64-unknown", None),
        ("rk3399-rock-pi-4", None),
    ],
)
def test_soc_from_dt_name(dt_name: str, soc: str | None) -> None:
    assert soc_from_dt_name(dt_name) == soc


def test_every_hint_names_a_soc_in_the_table() -> None:
    for _prefix, soc in SOC_BY_DT_PREFIX:
        assert soc_by_name(soc) is not None, soc


def test_hint_from_the_fit_when_the_spl_names_no_tree() -> None:
    spl = make_images.make_spl(length=1024, dt_name=None, version=1)
    bundle = load_uboot_from(spl, fixture("u-boot-a64.itb"))
    assert bundle.spl.dt_name is None
    assert soc_hint(bundle) == "A64"


def test_no_hint_for_an_anonymous_legacy_bundle() -> None:
    spl = make_images.make_spl(length=1024, dt_name=None, version=1)
    assert soc_hint(load_uboot_from(spl, fixture("u-boot-a20.img"))) is None


def load_uboot_from(spl: bytes, main: bytes) -> UBootBundle:
    return split_uboot_with_spl(make_images.with_main(spl, main), "mem")
