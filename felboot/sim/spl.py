"""What happens when the CPU reaches the SPL load address: the SPL's EFFECT, not its code.

The model never runs an SPL's instructions (they would program a DRAM
controller nobody emulates). It looks at the eGON header the way the SPL
itself would behave given that header, and decides:

* ``eGON.FEL``: the SPL initialises DRAM, records the size in the header
  (sunxi SPL v0.3+) and returns to whoever called it;
* ``eGON.BT0``: the SPL thinks it was booted from storage and goes on to load
  U-Boot from MMC/NAND: it never returns to FEL;
* anything else: not an SPL; the instructions there run like any other code.

The boot ROM does not verify checksums on EXEC, so neither does this.
"""

from __future__ import annotations

from dataclasses import dataclass

from felboot.images.spl import (
    EGON_FEL_MAGIC,
    EGON_MAGIC,
    SPL_HEADER_SIZE,
    SPL_SIGNATURE,
    SPL_VERSION_DRAM_SIZE,
    SplHeader,
)
from felboot.sim.layout import SCTLR_I, SCTLR_M

HEADER_SIZE = SPL_HEADER_SIZE


@dataclass(frozen=True)
class SplVerdict:
    """``action`` is "not_spl", "hang" (with ``reason``) or "run" (with the new header bytes)."""

    action: str
    reason: str = ""
    header: bytes = b""


def judge_spl_entry(
    header: bytes, address: int, sctlr: int, sram_size: int, dram_size: int
) -> SplVerdict:
    """Decide what a real SPL with this ``header`` does when called at ``address``."""
    fields = SplHeader.parse(header)
    if fields.magic == EGON_MAGIC:
        return SplVerdict(
            "hang",
            f"SPL at 0x{address:08x} did not return to FEL (header still eGON.BT0): "
            "it boots from storage instead; the FEL thunk must patch the magic to eGON.FEL",
        )
    if fields.magic != EGON_FEL_MAGIC:
        return SplVerdict("not_spl")
    if sctlr & (SCTLR_M | SCTLR_I):
        return SplVerdict(
            "hang",
            f"SPL at 0x{address:08x} entered with the MMU or I-cache still on "
            f"(SCTLR 0x{sctlr:08x}): a real SPL crashes; turn both off before calling it",
        )
    length = fields.length
    if length < SPL_HEADER_SIZE or length % 4 or length > sram_size:
        return SplVerdict(
            "hang",
            f"SPL at 0x{address:08x} has length 0x{length:x} in its header: not a multiple "
            f"of 4 within the 0x{sram_size:x} bytes of SRAM, so it cannot be a working SPL",
        )
    if fields.signature == SPL_SIGNATURE and fields.version >= SPL_VERSION_DRAM_SIZE:
        fields.dram_size = dram_size >> 20
    return SplVerdict("run", header=bytes(SplHeader.build(fields)))
