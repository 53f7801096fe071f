"""FIT parsing (embedded and external data) and configuration selection."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import fdt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from felboot.errors import ImageError
from felboot.images.devicetree import read_fdt
from felboot.images.fit import FitImage, parse_fit, select_config
from tests.support import fixture_script

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "fixtures" / "images"


make_images = fixture_script("make_images")


def fixture(name: str) -> bytes:
    return (IMAGES / name).read_bytes()


def small_fit(images: dict[str, dict[str, object]], configs: dict[str, dict[str, object]]) -> bytes:
    """A FIT from plain dicts: ints become cells, bytes stay bytes, tuples become string lists."""

    def prop(name: str, value: object) -> object:
        if isinstance(value, bytes):
            return fdt.PropBytes(name, data=value)
        if isinstance(value, int):
            return fdt.PropWords(name, value)
        if isinstance(value, list):
            return fdt.PropWords(name, *value)
        if isinstance(value, tuple):
            return fdt.PropStrings(name, *value)
        return fdt.PropStrings(name, str(value))

    tree = fdt.FDT()
    for parent_name, children in (("images", images), ("configurations", configs)):
        parent = fdt.Node(parent_name)
        for name, props in children.items():
            if name == "default":
                parent.append(prop("default", props))
                continue
            node = fdt.Node(name)
            assert isinstance(props, dict)
            for key, value in props.items():
                node.append(prop(key, value))
            parent.append(node)
        tree.root.append(parent)
    return tree.to_dtb(version=17)


def test_external_data_fixture() -> None:
    fit = parse_fit(fixture("u-boot-a64.itb"), "u-boot.itb")
    expected = make_images.fit_payloads(make_images.A64_BOARDS)
    assert list(fit.images) == list(expected)
    for name, (props, data) in expected.items():
        image = fit.images[name]
        assert image.data == data, name
        assert image.external
        assert image.load == props.get("load")
        assert image.entry == props.get("entry")
        assert image.type == props["type"]
        assert image.description == props["description"]
    assert fit.images["atf"].os == "arm-trusted-firmware"
    assert fit.images["uboot"].arch == "arm64"
    assert fit.images["uboot"].compression == "none"
    assert fit.description == "Configuration to load ATF before U-Boot"
    assert fit.default == "config-2"
    assert fit.size == len(fixture("u-boot-a64.itb"))
    assert fit.fdt_size < fit.size
    config = fit.configurations["config-1"]
    assert config.description == "sun50i-a64-pine64"
    assert config.firmware == "atf"
    assert config.loadables == ("scp", "uboot")
    assert config.fdt == ("fdt-1",)
    assert config.image_names == ("atf", "scp", "uboot", "fdt-1")
    assert [image.name for image in fit.images_of(config)] == ["atf", "scp", "uboot", "fdt-1"]


def test_embedded_data_matches_external() -> None:
    embedded = parse_fit(fixture("u-boot-sunxi-with-spl-a64.bin")[0x8000:], "with-spl")
    external = parse_fit(fixture("u-boot-a64.itb"), "itb")
    for name, image in external.images.items():
        assert embedded.images[name].data == image.data
        assert not embedded.images[name].external
    assert embedded.configurations == external.configurations


def test_data_position_is_from_the_start() -> None:
    blob = small_fit(
        {"uboot": {"type": "standalone", "data-position": 0x200, "data-size": 5}},
        {"default": "c", "c": {"description": "d", "loadables": ("uboot",)}},
    )
    data = blob + bytes(0x200 - len(blob)) + b"hello"
    assert parse_fit(data, "p.itb").images["uboot"].data == b"hello"


def test_two_cell_addresses() -> None:
    blob = small_fit(
        {"k": {"data": b"x", "load": [0x1, 0x80000000], "entry": [0, 0x40080000]}},
        {"c": {"description": "d", "loadables": ("k",)}},
    )
    image = parse_fit(blob, "x").images["k"]
    assert image.load == 0x180000000
    assert image.entry == 0x40080000


@settings(max_examples=60, deadline=None)
@given(payload=st.binary(max_size=64) | st.sampled_from([b"ab\0cd\0", b"text\0", b"\0", b"a\0\0"]))
def test_embedded_data_comes_back_exactly(payload: bytes) -> None:
    # the device-tree library guesses a type for every value; the adapter must undo it
    blob = small_fit({"i": {"data": payload}}, {"c": {"description": "d", "loadables": ("i",)}})
    assert parse_fit(blob, "x").images["i"].data == payload


def test_read_fdt_gives_raw_properties() -> None:
    node = read_fdt(make_images.make_dtb("M", ("a,b", "c,d")), "m.dtb")
    assert node.properties["compatible"] == b"a,b\0c,d\0"
    assert node.properties["#address-cells"] == (1).to_bytes(4, "big")
    assert node.child("missing") is None


# Errors ------------------------------------------------------------------


def test_truncated_external_data() -> None:
    with pytest.raises(ImageError) as caught:
        parse_fit(fixture("broken-u-boot-truncated.itb"), "cut.itb")
    message = str(caught.value)
    assert message.startswith("cut.itb: FIT image 'fdt-2': external data")
    assert "runs past the end of the file" in message


def test_not_a_fit() -> None:
    expected = r"u-boot.img: not a device tree \(magic 0x27051956.*\.itb"
    with pytest.raises(ImageError, match=expected):
        parse_fit(fixture("u-boot-a20.img"), "u-boot.img")


def test_truncated_fdt() -> None:
    data = fixture("u-boot-a64.itb")
    with pytest.raises(
        ImageError, match=r"cut.itb is truncated: the device tree header says \d+ bytes"
    ):
        parse_fit(data[:200], "cut.itb")
    with pytest.raises(ImageError, match="tiny.itb: only 4 bytes, too short for a device tree"):
        parse_fit(data[:4], "tiny.itb")


def test_malformed_structure() -> None:
    data = bytearray(fixture("u-boot-a64.itb"))
    struct_offset = int.from_bytes(data[8:12], "big")
    data[struct_offset : struct_offset + 4] = b"\0\0\0\x42"  # an unknown tag
    with pytest.raises(ImageError, match=r"bad.itb: malformed device tree \("):
        parse_fit(bytes(data), "bad.itb")


def test_plain_dtb_is_not_a_fit() -> None:
    with pytest.raises(ImageError, match="board.dtb: a device tree without /images, not a FIT"):
        parse_fit(make_images.make_dtb("M", ("a,b",)), "board.dtb")


def test_image_without_data() -> None:
    blob = small_fit({"u": {"type": "standalone"}}, {})
    with pytest.raises(ImageError, match="x.itb: FIT image 'u': no data, data-offset or data-pos"):
        parse_fit(blob, "x.itb")


def test_external_data_without_size() -> None:
    blob = small_fit({"u": {"data-offset": 0}}, {})
    with pytest.raises(ImageError, match="FIT image 'u': external data without a data-size"):
        parse_fit(blob, "x.itb")


def test_address_with_three_cells() -> None:
    blob = small_fit({"u": {"data": b"x", "load": [1, 2, 3]}}, {})
    with pytest.raises(ImageError, match="FIT image 'u': property load has 12 bytes"):
        parse_fit(blob, "x.itb")


def test_string_property_that_is_not_text() -> None:
    blob = small_fit({"u": {"data": b"x", "type": b"\xff\xfe\0"}}, {})
    with pytest.raises(ImageError, match="FIT image 'u': property type is not text"):
        parse_fit(blob, "x.itb")
    blob = small_fit({"u": {"data": b"x", "type": b"abc"}}, {})
    with pytest.raises(ImageError, match="property type is not a NUL-terminated string"):
        parse_fit(blob, "x.itb")


def test_config_naming_a_missing_image() -> None:
    blob = small_fit({"u": {"data": b"x"}}, {"c": {"description": "d", "firmware": "atf"}})
    with pytest.raises(ImageError) as caught:
        parse_fit(blob, "x.itb")
    assert str(caught.value) == (
        "x.itb: FIT configuration 'c' names image 'atf', which /images does not have (it has: u)"
    )


def test_default_naming_a_missing_config() -> None:
    blob = small_fit({"u": {"data": b"x"}}, {"default": "nope", "c": {"description": "d"}})
    with pytest.raises(ImageError, match="x.itb: the default configuration 'nope' does not exist"):
        parse_fit(blob, "x.itb")


# Configuration selection -----------------------------------------------------


@pytest.fixture(name="pine64_fit")
def _pine64_fit() -> FitImage:
    return parse_fit(fixture("u-boot-a64.itb"), "pine64.itb")


def test_dt_name_picks_the_config_by_description(pine64_fit: FitImage) -> None:
    assert select_config(pine64_fit, "sun50i-a64-pine64").name == "config-1"
    assert select_config(pine64_fit, "sun50i-a64-pine64-plus").name == "config-2"


def test_unknown_dt_name_falls_back_to_the_default(pine64_fit: FitImage) -> None:
    assert select_config(pine64_fit, "sun50i-a64-teres-i").name == "config-2"
    assert select_config(pine64_fit, None).name == "config-2"


@pytest.mark.parametrize(("dram", "expected"), [(512, "config-1"), (1024, "config-2")])
def test_pine64_boards_are_told_apart_by_dram_size(
    pine64_fit: FitImage, dram: int, expected: str
) -> None:
    # board/sunxi/board.c: more than 512 MiB means Pine64+, whatever the SPL's DT name says
    for dt_name in ("sun50i-a64-pine64", "sun50i-a64-pine64-plus"):
        assert select_config(pine64_fit, dt_name, dram_size_mib=dram).name == expected


def test_no_match_and_no_default_lists_the_configs(pine64_fit: FitImage) -> None:
    no_default = dataclasses.replace(pine64_fit, default=None)
    with pytest.raises(ImageError) as caught:
        select_config(no_default, "sun50i-h5-nanopi-neo2")
    assert str(caught.value) == (
        "pine64.itb: DT name 'sun50i-h5-nanopi-neo2' matches none of the FIT configurations and "
        "there is no default; available: config-1 (sun50i-a64-pine64), "
        "config-2 (sun50i-a64-pine64-plus)"
    )
    with pytest.raises(ImageError, match="the SPL names no device tree"):
        select_config(no_default, None)


def test_single_config_without_default_serves_an_unnamed_spl() -> None:
    blob = small_fit({"u": {"data": b"x"}}, {"only": {"description": "d", "loadables": ("u",)}})
    assert select_config(parse_fit(blob, "x"), None).name == "only"


def test_no_configurations() -> None:
    fit = parse_fit(small_fit({"u": {"data": b"x"}}, {}), "x.itb")
    with pytest.raises(ImageError, match="x.itb: the FIT has no configurations to boot"):
        select_config(fit, "sun50i-a64-pine64")


def test_config_without_description_cannot_be_matched() -> None:
    blob = small_fit({"u": {"data": b"x"}}, {"c": {"loadables": ("u",)}})
    fit = parse_fit(blob, "x.itb")
    with pytest.raises(ImageError, match="x.itb: FIT configuration 'c' has no description"):
        select_config(fit, "sun50i-a64-pine64")


# Cross-check against mkimage ------------------------------------------------

ITS = """/dts-v1/;
/ {
    description = "felboot test FIT";
    #address-cells = <1>;
    images {
        uboot {
            description = "U-Boot";
            data = /incbin/("uboot.bin");
            type = "standalone"; os = "u-boot"; arch = "arm64"; compression = "none";
            load = <0x4a000000>;
        };
        atf {
            description = "ATF";
            data = /incbin/("atf.bin");
            type = "firmware"; os = "arm-trusted-firmware"; arch = "arm64"; compression = "none";
            load = <0x44000>; entry = <0x44000>;
        };
        fdt-1 {
            description = "sun50i-a64-pine64-plus";
            data = /incbin/("board.dtb");
            type = "flat_dt"; compression = "none";
        };
    };
    configurations {
        default = "config-1";
        config-1 {
            description = "sun50i-a64-pine64-plus";
            firmware = "atf"; loadables = "uboot"; fdt = "fdt-1";
        };
    };
};
"""


@pytest.mark.skipif(
    shutil.which("mkimage") is None or shutil.which("dtc") is None,
    reason="mkimage (u-boot-tools) and dtc (device-tree-compiler) not installed",
)
@pytest.mark.parametrize("layout", [[], ["-E"], ["-E", "-p", "0x2000"]])
def test_fits_made_by_mkimage(tmp_path: Path, layout: list[str]) -> None:
    payloads = {
        "uboot.bin": make_images.pattern(3001, 1),
        "atf.bin": make_images.pattern(777, 2),
        "board.dtb": make_images.make_dtb("Pine64+", ("pine64,pine64-plus",)),
    }
    for name, data in payloads.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "u.its").write_text(ITS)
    env = {**os.environ, "SOURCE_DATE_EPOCH": "0"}
    subprocess.run(
        ["mkimage", *layout, "-f", "u.its", "u.itb"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        env=env,
    )
    fit = parse_fit((tmp_path / "u.itb").read_bytes(), "u.itb")
    assert fit.images["uboot"].data == payloads["uboot.bin"]
    assert fit.images["atf"].data == payloads["atf.bin"]
    assert fit.images["fdt-1"].data == payloads["board.dtb"]
    assert fit.images["uboot"].external == bool(layout)
    assert fit.images["atf"].entry == 0x44000
    assert select_config(fit, "sun50i-a64-pine64-plus").loadables == ("uboot",)
