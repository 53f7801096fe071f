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
    """A size for people, one style everywhere: "1 GiB", "864 KiB", "31.4 MiB", "130 bytes".

    The largest binary unit that keeps the number below 1024, with one decimal,
    and without it when that decimal is 0 (884,744 bytes is "864 KiB", not
    "864.0 KiB"): at most 0.05 of the unit off; format_bytes gives the exact count.
    """
    if abs(size) < 1 << 10:
        return f"{size} bytes"
    units = ("KiB", "MiB", "GiB", "TiB")
    for power, unit in enumerate(units, start=1):
        value = size / (1 << (10 * power))
        # Rounded first: 1,048,575 bytes is "1 MiB", not "1024 KiB".
        if abs(round(value, 1)) < 1024 or unit == units[-1]:
            return f"{value:.1f}".removesuffix(".0") + f" {unit}"
    raise AssertionError("unreachable")  # the loop returns at the last unit


def format_rate(size: int, seconds: float) -> str:
    """ "512 KiB/s": bytes over time, in format_size's style; "-" when no time passed."""
    if seconds <= 0:
        return "-"
    return f"{format_size(round(size / seconds))}/s"


def format_seconds(seconds: float) -> str:
    """ "0.42 s", "61.3 s": the phase times of a run."""
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def format_bytes(size: int) -> str:
    """ "1.1 MiB (1,172,112 bytes)": the readable size and the exact count, for `inspect`."""
    rounded = format_size(size)
    return rounded if size < 1 << 10 else f"{rounded} ({size:,} bytes)"
