"""Parse numbers the way users type them: 0x7ea00000, 4096, 64K, 512M, 1G.

Used only at the edges (command line, board files); everything inside is int.
"""

from __future__ import annotations

import re

from felboot.errors import UsageError

_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
# Suffixes go with decimal numbers only: "0xfg" is a typo, not 15 GiB.
_HEX = re.compile(r"0x[0-9a-f]+", re.IGNORECASE)
_DECIMAL = re.compile(r"([0-9]+)(?:([kmg])(?:i?b)?)?", re.IGNORECASE)


def parse_number(text: str, what: str = "number") -> int:
    """An int from "0x..", decimal, or decimal with K/M/G (powers of 1024; KiB/MB spellings too)."""
    cleaned = text.strip().replace("_", "")
    if _HEX.fullmatch(cleaned):
        return int(cleaned, 16)
    match = _DECIMAL.fullmatch(cleaned)
    if match is None:
        raise UsageError(
            f"cannot read {what} {text!r}: write it as 0x7ea00000, 4096, 64K, 512M or 1G"
        )
    return int(match.group(1)) * _SUFFIXES[(match.group(2) or "").upper()]


def format_size(size: int) -> str:
    """ "8 MiB", "1.5 KiB", "123 bytes": for messages and tables."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            value = size / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


def format_bytes(size: int) -> str:
    """ "1.1 MiB (1,172,112 bytes)": the readable size and the exact count, for `inspect`."""
    rounded = format_size(size)
    return rounded if size < 1 << 10 else f"{rounded} ({size:,} bytes)"
