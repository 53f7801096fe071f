"""What happened on a simulated board, for tests and `felboot` debugging output."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SimEvent:
    """One thing the board did.

    ``kind`` is one of: "spl" (DRAM came up; ``value`` = DRAM bytes),
    "uboot_started" (the CPU jumped into DRAM at ``address``), "aarch64_reset"
    (RMR warm reset into AArch64 at ``address`` = RVBAR), "warm_reset",
    "watchdog_reset", "secure_state" (an `smc #0` switched a non-secure FEL to
    secure), "crash" (the board hung; ``reason`` says why).
    """

    kind: str
    address: int | None = None
    value: int | None = None
    reason: str = ""
