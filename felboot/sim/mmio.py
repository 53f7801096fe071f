"""The few SoC registers the model answers: SID e-fuses, watchdog, RVBAR, the H616's VER_REG.

Every other register in the MMIO window reads as 0 and ignores writes (they
are logged, and kept in ``writes`` for tests).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from felboot.sim.layout import Die, default_die
from felboot.soc import SocInfo

log = logging.getLogger(__name__)

SID_WORDS = 4
# The register method of reading e-fuses (H3 and later SoCs).
SID_PRCTL = 0x40
SID_RDKEY = 0x60
SID_PRCTL_READ = 1 << 1  # start a read; the controller clears it when RDKEY is valid
SID_PRCTL_LOCK = 0xAC  # "op lock" byte that must accompany a read request
SID_PRCTL_OFFSET_SHIFT = 16
SID_PRCTL_OFFSET_MASK = 0x1FF
EFUSE_AREA = 0x100  # bytes of e-fuse space behind the SID's memory-mapped window


class Registers:
    """Register state of one simulated SoC."""

    def __init__(
        self, soc: SocInfo, sid: tuple[int, ...], on_watchdog_reset: Callable[[], None]
    ) -> None:
        self.soc = soc
        self.sid = sid
        self.rvbar = 0
        # Which RVBAR is real and what VER_REG reads depend on the die (sim option die=).
        self.die: Die = default_die(soc)
        # False while FEL runs non-secure on a secure-fused board: the SID's
        # e-fuses read zero then (sunxi-tools soc_info.h, needs_smc_workaround...).
        self.secure = True
        self.writes: list[tuple[int, int]] = []
        self._on_watchdog_reset = on_watchdog_reset
        self._prctl = 0
        self._rdkey = 0
        # H3 erratum: until the e-fuses have been read through SID_PRCTL, the
        # memory-mapped copy returns a garbled value (FreeBSD's aw_sid.c and
        # sunxi-fel work around it). The model garbles only the first word, to
        # zero, which is what makes a client that skips the workaround visibly wrong.
        self._first_word_garbled = soc.sid_needs_registers

    # Decoding -------------------------------------------------------------

    def _efuse_word(self, offset: int) -> int:
        if not self.secure:
            return 0
        index = offset // 4
        return self.sid[index] if 0 <= index < SID_WORDS else 0

    def _sid_register(self, address: int) -> int | None:
        """Offset from the SID base, when ``address`` is one of the SID's registers."""
        base = self.soc.sid_base
        if base is None or not base <= address < base + self.soc.sid_offset + EFUSE_AREA:
            return None
        return address - base

    # Access -----------------------------------------------------------------

    def read32(self, address: int) -> int:
        address &= ~3
        if address == self.die.rvbar_reg:
            return self.rvbar
        if address == self.soc.ver_reg:
            return self.die.version
        offset = self._sid_register(address)
        if offset is not None:
            return self._read_sid(offset)
        return 0

    def write32(self, address: int, value: int) -> None:
        address &= ~3
        value &= 0xFFFFFFFF
        log.debug("sim: MMIO write 0x%08x <- 0x%08x", address, value)
        self.writes.append((address, value))
        watchdog = self.soc.watchdog
        if watchdog is not None and address == watchdog.register and value == watchdog.value:
            self._on_watchdog_reset()
            return
        if address == self.die.rvbar_reg:
            self.rvbar = value
            return
        offset = self._sid_register(address)
        if offset == SID_PRCTL and self.soc.sid_needs_registers:
            self._write_prctl(value)

    def _read_sid(self, offset: int) -> int:
        if offset == SID_PRCTL and self.soc.sid_needs_registers:
            return self._prctl
        if offset == SID_RDKEY and self.soc.sid_needs_registers:
            return self._rdkey
        efuse = offset - self.soc.sid_offset
        if efuse < 0:
            return 0
        if efuse == 0 and self._first_word_garbled:
            return 0
        return self._efuse_word(efuse)

    def _write_prctl(self, value: int) -> None:
        lock = (value >> 8) & 0xFF
        if value & SID_PRCTL_READ and lock == SID_PRCTL_LOCK:
            efuse = (value >> SID_PRCTL_OFFSET_SHIFT) & SID_PRCTL_OFFSET_MASK
            self._rdkey = self._efuse_word(efuse)
            if efuse == 0:
                self._first_word_garbled = False
            value &= ~SID_PRCTL_READ  # the read completes at once
        # Without the lock byte the controller ignores the request: READ stays
        # set, so a client polling for it to clear spins until the model gives up.
        self._prctl = value
