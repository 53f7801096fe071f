"""felboot.images.kernel: zImage / arm64 Image / gzip'ed Image headers, wire gzip."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import zlib
from pathlib import Path
from types import ModuleType

import pytest

from felboot.errors import ImageError
from felboot.images.kernel import (
    ARM64_FLAG_PLACE_ANYWHERE,
    ARM64_LEGACY_TEXT_OFFSET,
    ARM64_MAGIC,
    ZIMAGE_MAGIC,
    Arm64ImageHeader,
    ZImageHeader,
    describe,
    gzip_for_wire,
    parse_kernel,
)

PAYLOADS = Path(__file__).resolve().parent.parent / "fixtures" / "payloads"


def _make_payloads() -> ModuleType:
    path = PAYLOADS.parent / "make_payloads.py"
    spec = importlib.util.spec_from_file_location("make_payloads", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def zimage(size: int, start: int, end: int) -> bytes:
    header = ZImageHeader.build({"magic": ZIMAGE_MAGIC, "start": start, "end": end})
    return header + bytes(size - len(header))


def arm64_image(size: int, *, image_size: int, text_offset: int = 0, flags: int = 0xA) -> bytes:
    header = Arm64ImageHeader.build(
        {
            "code0": 0,
            "code1": 0,
            "text_offset": text_offset,
            "image_size": image_size,
            "flags": flags,
            "res2": 0,
            "res3": 0,
            "res4": 0,
            "magic": ARM64_MAGIC,
            "res5": 0,
        }
    )
    return header + bytes(size - len(header))


# -- the committed fixtures ------------------------------------------------


def test_make_payloads_reproduces_the_committed_kernel_files() -> None:
    for name, data in _make_payloads().payloads().items():
        assert (PAYLOADS / name).read_bytes() == data, name


def test_fixture_headers_sit_at_the_documented_offsets() -> None:
    # Independent of the construct declarations: raw bytes at the documented places.
    xen = (PAYLOADS / "xen-arm32.zimage").read_bytes()
    assert xen[0x24:0x28] == bytes.fromhex("18286f01")
    assert xen[0x28:0x2C] == bytes(4)
    assert xen[0x2C:0x30] == bytes.fromhex("90621100")  # end 0x116290
    image = (PAYLOADS / "Image-arm64").read_bytes()
    assert image[0x38:0x3C] == b"ARM\x64"
    assert image[0x10:0x18] == bytes.fromhex("0000000200000000")  # image_size 0x2000000


def test_arm32_xen_is_sized_from_its_header_not_its_file() -> None:
    image = parse_kernel((PAYLOADS / "xen-arm32.zimage").read_bytes(), "xen-4.17", "Xen")
    assert (image.kind, image.arch, image.compressed) == ("zImage", "arm", False)
    assert image.file_size == 0x8008
    assert image.load_size == 0x116290


def test_debian_sized_xen_reports_bss_included_size() -> None:
    image = parse_kernel(zimage(0xD8008, 0, 0x116290), "xen", "Xen")
    assert image.file_size == 0xD8008
    assert image.load_size == 0x116290


def test_zimage_with_appended_dtb_needs_its_whole_file() -> None:
    image = parse_kernel(zimage(0x50000, 0, 0x40000), "zImage+dtb", "kernel")
    assert image.load_size == 0x50000


def test_zimage_load_size_is_end_minus_start() -> None:
    image = parse_kernel(zimage(0x1000, 0x8000, 0x28000), "zImage", "kernel")
    assert image.load_size == 0x20000


def test_arm64_image_fields() -> None:
    data = arm64_image(0x10000, image_size=0x1A0000, text_offset=0x80000)
    image = parse_kernel(data, "xen-arm64", "Xen")
    assert (image.kind, image.arch, image.compressed) == ("Image", "arm64", False)
    assert image.load_size == 0x1A0000
    assert image.text_offset == 0x80000
    assert image.flags & ARM64_FLAG_PLACE_ANYWHERE
    assert image.place_anywhere
    assert image.data == data


def test_arm64_image_without_place_anywhere_flag() -> None:
    image = parse_kernel(arm64_image(0x1000, image_size=0x2000, flags=0x2), "old", "Xen")
    assert not image.place_anywhere


def test_pre_3_17_arm64_image_uses_file_size_and_legacy_text_offset() -> None:
    image = parse_kernel(arm64_image(0x30000, image_size=0), "Image-3.10", "kernel")
    assert image.load_size == 0x30000
    assert image.text_offset == ARM64_LEGACY_TEXT_OFFSET


def test_gzip_image_reports_decompressed_needs() -> None:
    data = (PAYLOADS / "Image-arm64.gz").read_bytes()
    image = parse_kernel(data, "vmlinuz.gz", "kernel")
    assert (image.kind, image.arch, image.compressed) == ("gzip-Image", "arm64", True)
    assert image.file_size == len(data)
    assert image.load_size == 0x2000000  # header image_size beats the 0x40000 ISIZE
    assert image.text_offset == 0


def test_gzip_image_without_image_size_uses_isize() -> None:
    inner = arm64_image(0x34567, image_size=0)
    image = parse_kernel(gzip.compress(inner, mtime=0), "old.gz", "kernel")
    assert image.load_size == 0x34567


# -- errors name the file and what was found -------------------------------


def test_elf_file_is_refused_with_a_hint() -> None:
    data = b"\x7fELF" + bytes(200)
    with pytest.raises(ImageError) as info:
        parse_kernel(data, "/boot/vmlinux-6.1", "kernel")
    message = str(info.value)
    assert message.startswith("/boot/vmlinux-6.1: ")
    assert "no 0x016f2818 at 0x24" in message
    assert "no ARM\\x64 at 0x38" in message
    assert "ELF" in message and "not vmlinux" in message


def test_unknown_bytes_are_named() -> None:
    with pytest.raises(ImageError, match=r"^junk\.bin: the Xen is not a zImage .*1234567800"):
        parse_kernel(bytes.fromhex("12345678") + bytes(100), "junk.bin", "Xen")


def test_uimage_is_recognised_in_the_message() -> None:
    with pytest.raises(ImageError, match=r"uImage.*legacy|legacy image \(uImage\)"):
        parse_kernel(bytes.fromhex("27051956") + bytes(100), "uImage", "kernel")


def test_too_short_file() -> None:
    with pytest.raises(ImageError, match=r"^tiny: only 10 bytes, too short for a Xen"):
        parse_kernel(bytes(10), "tiny", "Xen")


def test_gzip_of_something_else() -> None:
    with pytest.raises(ImageError, match=r"^initrd.gz: the kernel is not .*gzip data"):
        noise = b"".join(hashlib.sha256(bytes([i])).digest() for i in range(64))
        parse_kernel(gzip.compress(noise, mtime=0), "initrd.gz", "kernel")


def test_corrupt_gzip() -> None:
    data = b"\x1f\x8b\x08\x00" + bytes(6) + b"\xff" * 80
    with pytest.raises(ImageError, match=r"^broken.gz: corrupt gzip data"):
        parse_kernel(data, "broken.gz", "kernel")


def test_zimage_with_end_before_start() -> None:
    with pytest.raises(ImageError, match=r"^bad: zImage header of the Xen says end 0x100"):
        parse_kernel(zimage(0x200, 0x200, 0x100), "bad", "Xen")


def test_big_endian_arm64_image() -> None:
    with pytest.raises(ImageError, match=r"^be-Image: the kernel is a big-endian arm64 Image"):
        parse_kernel(arm64_image(0x100, image_size=0x1000, flags=0x9), "be-Image", "kernel")


# -- describe and gzip_for_wire ----------------------------------------------


def test_describe() -> None:
    info = describe((PAYLOADS / "xen-arm64.Image").read_bytes())
    assert info is not None
    assert info["type"] == "Image" and info["arch"] == "arm64"
    assert info["load_size"] == 0x1A0000 and info["place_anywhere"] is True
    zinfo = describe((PAYLOADS / "zImage-arm32").read_bytes())
    assert zinfo is not None and zinfo["type"] == "zImage" and "text_offset" not in zinfo
    assert describe((PAYLOADS / "sun7i-a20-felboot-test.dtb").read_bytes()) is None
    assert describe(b"short") is None


def test_gzip_for_wire_is_deterministic_and_round_trips() -> None:
    data = (PAYLOADS / "Image-arm64").read_bytes()
    packed = gzip_for_wire(data)
    assert packed == gzip_for_wire(data)
    assert packed[:3] == b"\x1f\x8b\x08"
    assert packed[4:8] == bytes(4)  # mtime 0
    assert packed[9] == 255  # OS unknown: independent of the Python version
    assert gzip.decompress(packed) == data
    assert zlib.decompress(packed, wbits=31) == data
    assert len(packed) < len(data)
    image = parse_kernel(packed, "Image", "kernel")
    assert image.kind == "gzip-Image" and image.load_size == 0x2000000
