"""Legacy U-Boot images and mkimage script images."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from felboot.errors import ImageError
from felboot.images.uimage import (
    ARCH_ARM,
    ARCH_ARM64,
    LEGACY_HEADER_SIZE,
    OS_ARM_TRUSTED_FIRMWARE,
    OS_LINUX,
    OS_U_BOOT,
    TYPE_FIRMWARE,
    TYPE_KERNEL,
    TYPE_MULTI,
    TYPE_SCRIPT,
    LegacyHeader,
    PartLengths,
    build_legacy_image,
    build_script_image,
    image_parts,
    parse_legacy_image,
    parse_script_image,
)

IMAGES = Path(__file__).resolve().parent.parent / "fixtures" / "images"
MKIMAGE = shutil.which("mkimage")
needs_mkimage = pytest.mark.skipif(MKIMAGE is None, reason="mkimage (u-boot-tools) not installed")


def fixture(name: str) -> bytes:
    return (IMAGES / name).read_bytes()


def run_mkimage(tmp_path: Path, args: list[str], payload: bytes, timestamp: int) -> bytes:
    assert MKIMAGE is not None
    source = tmp_path / "payload"
    source.write_bytes(payload)
    out = tmp_path / "out"
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(timestamp)}
    subprocess.run(
        [MKIMAGE, *args, "-d", str(source), str(out)], check=True, env=env, capture_output=True
    )
    return out.read_bytes()


def test_constants_match_u_boot() -> None:
    assert (OS_LINUX, OS_U_BOOT, OS_ARM_TRUSTED_FIRMWARE) == (5, 17, 25)
    assert (ARCH_ARM, ARCH_ARM64) == (2, 22)
    assert (TYPE_KERNEL, TYPE_FIRMWARE, TYPE_SCRIPT) == (2, 5, 6)
    assert LegacyHeader.sizeof() == LEGACY_HEADER_SIZE == 64


def test_fixture_u_boot_image() -> None:
    image = parse_legacy_image(fixture("u-boot-a20.img"), "u-boot.img")
    assert image.name == "U-Boot felboot fixture"
    assert (image.os_name, image.arch_name, image.type_name) == ("U-Boot", "ARM", "firmware")
    assert image.compression_name == "none"
    assert image.load == image.entry == 0x4A000000
    assert image.data_size == len(image.data) == 2048
    assert image.total_size == 2112
    assert image.timestamp == 1700000000
    assert image.header_crc_ok and image.data_crc_ok


def test_round_trip_keeps_every_field() -> None:
    blob = build_legacy_image(
        b"kernel bytes",
        name="Linux",
        image_type=TYPE_KERNEL,
        arch=ARCH_ARM64,
        os=OS_LINUX,
        load=0x40080000,
        entry=0x40080000,
        compression=1,
        timestamp=42,
    )
    image = parse_legacy_image(blob + b"trailing", "k.img")
    assert image.data == b"kernel bytes"
    assert (image.load, image.entry, image.timestamp) == (0x40080000, 0x40080000, 42)
    assert (image.os, image.arch, image.image_type, image.compression) == (5, 22, 2, 1)
    assert image.compression_name == "gzip"


def test_unknown_codes_are_labelled() -> None:
    blob = build_legacy_image(b"x", name="n", image_type=99, arch=98, os=97, timestamp=0)
    image = parse_legacy_image(blob, "x")
    assert image.type_name == "unknown (99)"
    assert image.arch_name == "unknown (98)"
    assert image.os_name == "unknown (97)"


def test_long_names_are_cut_like_mkimage() -> None:
    blob = build_legacy_image(
        b"x", name="0123456789abcdef0123456789abcdefXYZ", image_type=5, arch=2, os=17, timestamp=0
    )
    assert blob[32:64] == b"0123456789abcdef0123456789abcdef"
    assert parse_legacy_image(blob, "x").name == "0123456789abcdef0123456789abcdef"


def test_build_refuses_out_of_range_fields() -> None:
    with pytest.raises(ImageError, match="cannot build legacy image 'n'"):
        build_legacy_image(b"x", name="n", image_type=5, arch=2, os=17, load=1 << 32, timestamp=0)


# Errors ------------------------------------------------------------------


def test_bad_header_crc() -> None:
    data = fixture("broken-u-boot-bad-header-crc.img")
    stored = LegacyHeader.parse(data).header_crc
    with pytest.raises(ImageError) as caught:
        parse_legacy_image(data, "u-boot.img")
    message = str(caught.value)
    assert message.startswith(f"u-boot.img: legacy image header CRC 0x{stored:08x} does not match")
    assert "computed 0x" in message


def test_bad_data_crc() -> None:
    data = fixture("broken-u-boot-bad-data-crc.img")
    stored = LegacyHeader.parse(data).data_crc
    with pytest.raises(ImageError, match=rf"^u-boot.img: legacy image data CRC 0x{stored:08x}"):
        parse_legacy_image(data, "u-boot.img")


def test_crc_problems_reported_when_not_verifying() -> None:
    header = parse_legacy_image(fixture("broken-u-boot-bad-header-crc.img"), "x", verify=False)
    assert not header.header_crc_ok and header.data_crc_ok
    payload = parse_legacy_image(fixture("broken-u-boot-bad-data-crc.img"), "x", verify=False)
    assert payload.header_crc_ok and not payload.data_crc_ok


def test_truncated_data() -> None:
    with pytest.raises(ImageError) as caught:
        parse_legacy_image(fixture("u-boot-a20.img")[:1000], "cut.img")
    assert str(caught.value) == (
        "cut.img is truncated: the legacy image header says 2048 bytes of data, "
        "the file has 936 after the header"
    )


def test_truncated_header() -> None:
    with pytest.raises(ImageError, match="tiny.img is truncated: 10 bytes cannot hold"):
        parse_legacy_image(fixture("u-boot-a20.img")[:10], "tiny.img")


def test_bad_magic() -> None:
    with pytest.raises(ImageError, match=r"zimage: not a U-Boot legacy image \(magic 0x00000000"):
        parse_legacy_image(bytes(100), "zimage")


# Script images -----------------------------------------------------------


def test_fixture_script() -> None:
    text = parse_script_image(fixture("boot.scr"), "boot.scr")
    assert text == b"echo felboot fixture\nsetenv bootargs console=ttyS0,115200\n"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        (b"echo hi\nboot", "NAME"),  # 12 bytes: no padding after the text
        (b"x" * 1001, "0123456789abcdef0123456789abcdefXYZ"),
        (b"setenv fdt_high 0xffffffff\n", "felboot"),
    ],
)
@needs_mkimage
def test_script_image_is_byte_identical_to_mkimage(tmp_path: Path, text: bytes, name: str) -> None:
    expected = run_mkimage(
        tmp_path, ["-A", "arm", "-O", "linux", "-T", "script", "-C", "none", "-n", name], text, 7
    )
    assert build_script_image(text, name=name, timestamp=7) == expected


@needs_mkimage
def test_firmware_image_is_byte_identical_to_mkimage(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 5
    args = ["-A", "arm", "-O", "u-boot", "-T", "firmware", "-C", "none"]
    args += ["-a", "0x4a000000", "-e", "0x4a000000", "-n", "U-Boot"]
    expected = run_mkimage(tmp_path, args, payload, 123456)
    built = build_legacy_image(
        payload,
        name="U-Boot",
        image_type=TYPE_FIRMWARE,
        arch=ARCH_ARM,
        os=OS_U_BOOT,
        load=0x4A000000,
        entry=0x4A000000,
        timestamp=123456,
    )
    assert built == expected


def test_script_image_layout() -> None:
    blob = build_script_image(b"boot", name="s", timestamp=0)
    image = parse_legacy_image(blob, "s")
    assert (image.image_type, image.arch, image.os, image.load, image.entry) == (6, 2, 5, 0, 0)
    assert image.data == (4).to_bytes(4, "big") + bytes(4) + b"boot"


def test_empty_script_is_refused() -> None:
    with pytest.raises(ImageError, match="boot script 'empty' is empty"):
        build_script_image(b"", name="empty", timestamp=0)


def test_script_parse_refuses_other_types() -> None:
    with pytest.raises(ImageError, match="u-boot.img: a legacy firmware image, not a boot script"):
        parse_script_image(fixture("u-boot-a20.img"), "u-boot.img")


def test_script_without_end_marker() -> None:
    blob = build_legacy_image(b"\0\0\0\x05", name="s", image_type=6, arch=2, os=5, timestamp=0)
    with pytest.raises(ImageError, match="s.scr: the part-length table .* has no end marker"):
        parse_script_image(blob, "s.scr")


def test_script_part_past_the_data() -> None:
    payload = PartLengths.build([100, 0]) + b"short"
    blob = build_legacy_image(payload, name="s", image_type=6, arch=2, os=5, timestamp=0)
    with pytest.raises(ImageError, match=r"s.scr: part 0 of the script image \(100 bytes"):
        parse_script_image(blob, "s.scr")


def test_script_with_no_parts() -> None:
    blob = build_legacy_image(bytes(4), name="s", image_type=6, arch=2, os=5, timestamp=0)
    with pytest.raises(ImageError, match="holds no script part"):
        parse_script_image(blob, "s.scr")


def test_multi_image_parts_are_padded_to_four_bytes() -> None:
    payload = PartLengths.build([5, 3, 0]) + b"hello" + bytes(3) + b"abc"
    blob = build_legacy_image(payload, name="m", image_type=TYPE_MULTI, arch=2, os=5, timestamp=0)
    image = parse_legacy_image(blob, "m")
    assert image_parts(image, "m") == [b"hello", b"abc"]
