import pytest

from felboot.errors import UsageError
from felboot.units import format_bytes, format_size, parse_number


@pytest.mark.parametrize(
    ("text", "value"),
    [("0x7ea00000", 0x7EA00000), ("4096", 4096), ("64K", 65536), ("512M", 512 << 20),
     ("1G", 1 << 30), ("2GiB", 2 << 30), ("16kb", 16384), ("0X10", 16), ("1_000", 1000)],
)  # fmt: skip
def test_parse_number(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["", "0x", "12Q", "-4", "1.5M", "0xfg"])
def test_unparseable_number_names_value(text):
    with pytest.raises(UsageError, match=f"cannot read address {text!r}"):
        parse_number(text, "address")


def test_format_size():
    assert format_size(8 << 20) == "8 MiB"
    assert format_size(1536) == "1.5 KiB"
    assert format_size(12) == "12 bytes"


def test_format_bytes_gives_the_exact_count_too():
    assert format_bytes(1172112) == "1.1 MiB (1,172,112 bytes)"
    assert format_bytes(4096) == "4 KiB (4,096 bytes)"
    assert format_bytes(130) == "130 bytes"
