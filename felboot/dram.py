"""How much DRAM the board has, once an SPL brought it up.

Three sources, best first:

1. the sunxi SPL header (v0.3+): the SPL writes the size it found, in MiB,
   at spl_addr + 0x24 before returning to FEL;
2. an aliasing probe (below);
3. the board profile or ``--dram-size``.

The probe. A DRAM controller decodes only the address bits its chips have,
so on a board with S bytes (a power of two) the address dram_base + S reads
and writes the same cell as dram_base, and so does every dram_base + 2^k
with 2^k >= S. The probe

  a. reads the words at dram_base and at dram_base + 2^k for every 2^k from
     1 MiB up to half the DRAM window (one readl batch);
  b. writes a distinct marker to each offset, largest first, and the base's
     own marker LAST (one writel batch): every offset that aliases the base
     now reads the base's marker, every real cell its own;
  c. reads them all back: S is the smallest 2^k that reads the base's marker;
     none does: S is the whole window;
  d. writes the saved words back in the same order (one writel batch), so
     every cell, aliased or not, ends as it was.

A read-back that fits no power-of-two size (a marker that is neither its own
nor the base's, or a real cell above an aliasing one) means the DRAM is not
a plain power of two (3 GiB) or not working: the probe says None and the
caller falls back to the profile.

The probe must run while the MMU is off (strongly ordered accesses): with
DRAM mapped write-combine the stores to two aliasing addresses could reach
the chips in either order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, Protocol

from felboot.errors import BootError
from felboot.soc import SocInfo

log = logging.getLogger(__name__)

MiB = 1 << 20
PROBE_FIRST_OFFSET = MiB
PROBE_WINDOW = 2 << 30  # the largest power-of-two DRAM sunxi controllers decode
BASE_MARKER = 0xD7A3B45E
OFFSET_MARKER = 0x5EB10000  # | k for dram_base + 2^k

DramSource = Literal["spl header", "probed", "profile"]


class WordAccess(Protocol):
    """The FelDevice calls the probe needs (readl/writel thunks)."""

    def read_words(self, addresses: list[int]) -> list[int]: ...

    def write_words(self, pairs: list[tuple[int, int]]) -> None: ...


@dataclass(frozen=True)
class DramInfo:
    size: int  # bytes
    source: DramSource

    @property
    def size_mib(self) -> int:
        return self.size // MiB

    def __str__(self) -> str:
        return f"DRAM {self.size_mib} MiB, {self.source}"


def probe_window(soc: SocInfo) -> int:
    """Bytes of address space the probe may span from soc.dram_base."""
    return min(PROBE_WINDOW, (1 << 32) - soc.dram_base)


def probe_offsets(window: int) -> list[int]:
    """1 MiB, 2 MiB ... up to window / 2."""
    offsets = []
    offset = PROBE_FIRST_OFFSET
    while offset < window:
        offsets.append(offset)
        offset <<= 1
    return offsets


def offset_marker(offset: int) -> int:
    return OFFSET_MARKER | offset.bit_length()


def interpret_probe(offsets: list[int], seen: list[int], window: int) -> int | None:
    """The DRAM size the read-back ``seen`` (base first, then each offset) shows, or None."""
    if seen[0] != BASE_MARKER:
        return None
    size = None
    for offset, value in zip(offsets, seen[1:], strict=True):
        if size is None:
            if value == BASE_MARKER:
                size = offset
            elif value != offset_marker(offset):
                return None
        elif value != BASE_MARKER:
            return None  # a real cell above an aliasing one: not a power of two
    return size if size is not None else window


def probe_dram_size(device: WordAccess, soc: SocInfo) -> int | None:
    """Run the aliasing probe (module docstring); None when the result is not a plain size."""
    base = soc.dram_base
    window = probe_window(soc)
    offsets = probe_offsets(window)
    largest_first = [base + offset for offset in reversed(offsets)]
    addresses = [base] + [base + offset for offset in offsets]
    saved = dict(zip(addresses, device.read_words(addresses), strict=True))
    markers = {base + offset: offset_marker(offset) for offset in offsets}
    device.write_words([(a, markers[a]) for a in largest_first] + [(base, BASE_MARKER)])
    try:
        seen = device.read_words(addresses)
    finally:
        device.write_words([(a, saved[a]) for a in largest_first] + [(base, saved[base])])
    size = interpret_probe(offsets, seen, window)
    log.info("DRAM probe at 0x%08x: %s", base, f"{size >> 20} MiB" if size else "inconclusive")
    return size


def detect_dram(
    device: WordAccess,
    soc: SocInfo,
    header_mib: int | None,
    profile_size: int | None = None,
) -> DramInfo:
    """The DRAM size from the SPL header, else the probe, else the profile."""
    if header_mib:
        return DramInfo(header_mib * MiB, "spl header")
    probed = probe_dram_size(device, soc)
    if probed is not None:
        return DramInfo(probed, "probed")
    if profile_size is not None:
        return DramInfo(profile_size, "profile")
    raise BootError(
        f"cannot tell how much DRAM the {soc.name} board has: the SPL does not report it "
        "(sunxi SPL header older than v0.3) and the aliasing probe at "
        f"0x{soc.dram_base:08x} was inconclusive; pass --dram-size (e.g. 1G) or a board profile"
    )
