"""eGON SPL header parsing, checksum and the FEL script fields."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from felboot.errors import ImageError
from felboot.images.spl import (
    CHECKSUM_STAMP,
    SPL_HEADER_SIZE,
    SplHeader,
    parse_spl,
    spl_checksum,
    spl_header_with_script,
)

IMAGES = Path(__file__).resolve().parent.parent / "fixtures" / "images"


def fixture(name: str) -> bytes:
    return (IMAGES / name).read_bytes()


def with_header(data: bytes, **changes: object) -> bytes:
    """``data`` with header fields replaced (checksum left as it was)."""
    header = SplHeader.parse(data)
    header.update(changes)
    return SplHeader.build(header) + data[SPL_HEADER_SIZE:]


def resealed(data: bytes, **changes: object) -> bytes:
    """``data`` with header fields replaced and a correct checksum again."""
    changed = with_header(data, **changes)
    length = SplHeader.parse(changed).length
    return with_header(changed, checksum=spl_checksum(changed, length))


def test_v2_spl_with_dt_name() -> None:
    spl = parse_spl(fixture("spl-v2-a20.bin"), "spl-v2-a20.bin")
    assert spl.length == 4096
    assert len(spl.data) == 4096
    assert spl.checksum_ok
    assert spl.checksum == spl.computed_checksum
    assert spl.spl_version == 2
    assert spl.version_text == "0.2"
    assert spl.dt_name == "sun7i-a20-cubietruck"
    assert spl.has_fel_script_fields
    assert spl.dram_size_mib is None  # v0.2 has no DRAM size field
    assert spl.source == "spl-v2-a20.bin"


def test_v3_spl_reports_dram_size() -> None:
    spl = parse_spl(fixture("spl-v3-a64.bin"), "spl-v3-a64.bin")
    assert spl.version_text == "0.3"
    assert spl.dt_name == "sun50i-a64-pine64-plus"
    assert spl.dram_size_mib == 2048


def test_dram_size_ignored_before_v3() -> None:
    data = resealed(fixture("spl-v2-a20.bin"), dram_size=1024)
    assert parse_spl(data, "x").dram_size_mib is None


def test_v1_spl_has_script_fields_but_no_dt_name() -> None:
    spl = parse_spl(resealed(fixture("spl-v2-a20.bin"), version=1), "v1")
    assert spl.has_fel_script_fields
    assert spl.dt_name is None
    assert spl.version_text == "0.1"


def test_spl_without_sunxi_signature() -> None:
    spl = parse_spl(fixture("spl-plain.bin"), "boot0.bin")
    assert spl.spl_version is None
    assert spl.version_text is None
    assert spl.dt_name is None
    assert not spl.has_fel_script_fields


def test_major_version_bits() -> None:
    spl = parse_spl(resealed(fixture("spl-v2-a20.bin"), version=(1 << 5) | 4), "x")
    assert spl.version_text == "1.4"
    assert spl.dt_name == "sun7i-a20-cubietruck"


def test_trailing_data_is_not_part_of_the_spl() -> None:
    bundle = fixture("u-boot-sunxi-with-spl-a20.bin")
    spl = parse_spl(bundle, "with-spl")
    assert spl.data == fixture("spl-v2-a20.bin")


def test_checksum_takes_its_own_field_as_the_stamp() -> None:
    data = fixture("spl-v2-a20.bin")
    stored = SplHeader.parse(data).checksum
    assert spl_checksum(data, 4096) == stored
    assert spl_checksum(with_header(data, checksum=0), 4096) == stored
    stamped = with_header(data, checksum=CHECKSUM_STAMP)
    words = [int.from_bytes(stamped[i : i + 4], "little") for i in range(0, 4096, 4)]
    assert sum(words) & 0xFFFFFFFF == stored


def test_checksum_refuses_bad_lengths() -> None:
    data = fixture("spl-v2-a20.bin")
    for length in (4094, 8192, 16):
        with pytest.raises(ImageError, match=f"cannot checksum {length} bytes"):
            spl_checksum(data, length)


@settings(max_examples=50, deadline=None)
@given(offset=st.integers(0, 4095), flip=st.integers(1, 255))
def test_any_single_byte_change_is_caught(offset: int, flip: int) -> None:
    data = bytearray(fixture("spl-v2-a20.bin"))
    data[offset] ^= flip
    if 0x0C <= offset < 0x10:
        # the stored checksum itself changed: still a mismatch
        with pytest.raises(ImageError, match="does not match"):
            parse_spl(bytes(data), "x")
        return
    if 0x04 <= offset < 0x0C:
        with pytest.raises(ImageError, match="no eGON.BT0"):
            parse_spl(bytes(data), "x")
        return
    try:
        spl = parse_spl(bytes(data), "x", verify_checksum=False)
    except ImageError:
        return  # the length or DT name offset changed into something invalid
    assert not spl.checksum_ok


# Errors ------------------------------------------------------------------


def test_not_egon() -> None:
    with pytest.raises(ImageError) as caught:
        parse_spl(b"\x7fELF" + bytes(200), "u-boot.elf")
    message = str(caught.value)
    assert message.startswith("u-boot.elf: not an Allwinner eGON SPL (no eGON.BT0 at offset 4)")
    assert "sunxi-spl.bin" in message


def test_egon_bad_magic() -> None:
    with pytest.raises(ImageError, match=r"broken.bin: not an Allwinner eGON SPL .*eGON\.BAD"):
        parse_spl(fixture("broken-spl-egon-bad.bin"), "broken.bin")


def test_egon_fel_magic_explains_itself() -> None:
    data = with_header(fixture("spl-v2-a20.bin"), magic=b"eGON.FEL")
    with pytest.raises(ImageError, match="already started over FEL"):
        parse_spl(data, "dump.bin")


def test_toc0_is_named() -> None:
    with pytest.raises(ImageError, match="TOC0 secure-boot image"):
        parse_spl(b"TOC0.GLH" + bytes(100), "toc0.bin")


def test_tiny_file() -> None:
    with pytest.raises(ImageError, match="tiny.bin: not an Allwinner eGON SPL"):
        parse_spl(b"\0\0", "tiny.bin")


def test_truncated_spl() -> None:
    with pytest.raises(ImageError) as caught:
        parse_spl(fixture("broken-spl-truncated.bin"), "cut.bin")
    assert str(caught.value) == (
        "cut.bin is truncated: the SPL header says 4096 bytes, the file has 2048"
    )


def test_truncated_header() -> None:
    with pytest.raises(ImageError, match="short.bin is truncated: 64 bytes cannot hold"):
        parse_spl(fixture("spl-v2-a20.bin")[:64], "short.bin")


@pytest.mark.parametrize("length", [4095, 4094, 0x40])
def test_length_not_multiple_of_four(length: int) -> None:
    data = with_header(fixture("spl-v2-a20.bin"), length=length)
    with pytest.raises(ImageError, match=rf"odd.bin: the SPL header's length {length} .*corrupt"):
        parse_spl(data, "odd.bin")


def test_bad_checksum() -> None:
    data = fixture("broken-spl-bad-checksum.bin")
    stored = SplHeader.parse(data).checksum
    computed = spl_checksum(data, 4096)
    with pytest.raises(ImageError) as caught:
        parse_spl(data, "bad.bin")
    assert str(caught.value).startswith(
        f"bad.bin: SPL checksum 0x{stored:08x} does not match the computed 0x{computed:08x}: "
        "rebuild it"
    )


def test_bad_checksum_reported_when_not_verifying() -> None:
    spl = parse_spl(fixture("broken-spl-bad-checksum.bin"), "bad.bin", verify_checksum=False)
    assert not spl.checksum_ok
    assert spl.checksum != spl.computed_checksum


@pytest.mark.parametrize("offset", [0x10, 4096, 5000])
def test_dt_name_offset_outside_the_spl(offset: int) -> None:
    data = resealed(fixture("spl-v2-a20.bin"), dt_name_offset=offset)
    expected = rf"name.bin: the SPL header's DT name offset 0x{offset:x}"
    with pytest.raises(ImageError, match=expected):
        parse_spl(data, "name.bin")


def test_dt_name_without_terminator() -> None:
    data = bytearray(fixture("spl-v2-a20.bin"))
    data[0x2C:4096] = b"A" * (4096 - 0x2C)
    length = 4096
    sealed = with_header(bytes(data), checksum=spl_checksum(bytes(data), length))
    with pytest.raises(ImageError, match="NUL-terminated string"):
        parse_spl(sealed, "x")


def test_dt_name_not_ascii() -> None:
    data = bytearray(fixture("spl-v2-a20.bin"))
    data[0x2C:0x2F] = b"\xff\xfe\xfd"
    sealed = with_header(bytes(data), checksum=spl_checksum(bytes(data), 4096))
    with pytest.raises(ImageError, match="x: the SPL's DT name at 0x2c is not ASCII"):
        parse_spl(sealed, "x")


# FEL script fields -----------------------------------------------------------


def test_script_fields_are_patched_and_nothing_else() -> None:
    original = fixture("spl-v2-a20.bin")
    patched = spl_header_with_script(original, 0x43100000, 0)
    assert len(patched) == len(original)
    assert patched[0x18:0x1C] == (0x43100000).to_bytes(4, "little")
    assert patched[0x1C:0x20] == bytes(4)
    assert patched[:0x18] == original[:0x18]
    assert patched[0x20:] == original[0x20:]


def test_script_fields_with_uenv_length() -> None:
    patched = spl_header_with_script(fixture("spl-v3-a64.bin")[:SPL_HEADER_SIZE], 0x43100000, 77)
    header = SplHeader.parse(patched)
    assert (header.fel_script_address, header.fel_uenv_length) == (0x43100000, 77)
    assert len(patched) == SPL_HEADER_SIZE


def test_script_fields_need_sunxi_header() -> None:
    with pytest.raises(ImageError, match="no sunxi SPL header v0.1"):
        spl_header_with_script(fixture("spl-plain.bin"), 0x43100000)
    version0 = with_header(fixture("spl-v2-a20.bin"), version=0)
    with pytest.raises(ImageError, match="no sunxi SPL header v0.1"):
        spl_header_with_script(version0, 0x43100000)


def test_script_fields_need_the_whole_header() -> None:
    with pytest.raises(ImageError, match="needs 96 bytes, got 32"):
        spl_header_with_script(fixture("spl-v2-a20.bin")[:32], 0x43100000)


@pytest.mark.parametrize(("address", "length"), [(1 << 32, 0), (-1, 0), (0, 1 << 32)])
def test_script_fields_must_fit_32_bits(address: int, length: int) -> None:
    with pytest.raises(ImageError, match="does not fit the SPL header's 32-bit field"):
        spl_header_with_script(fixture("spl-v2-a20.bin"), address, length)
