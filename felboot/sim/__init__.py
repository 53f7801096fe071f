"""The FEL device model: a simulated Allwinner boot ROM behind the Transport boundary.

``open_sim("soc=h3,dram=512M")`` gives a Transport that felboot.fel.FelDevice
talks to exactly as to a real board. The model behaves like a boot ROM, not
like the client expects: it keeps SRAM/DRAM contents, refuses DRAM until an SPL
ran, stops answering when the ROM's own SRAM is overwritten, runs uploaded ARM
code with unicorn, and emulates only the effect of the SPL (DRAM comes up) and
of the final jump (the device leaves FEL). Needs the ``[sim]`` extra (unicorn).
"""

from __future__ import annotations

from felboot.sim.board import SimBoard
from felboot.sim.events import SimEvent
from felboot.sim.options import SimConfig, parse_options
from felboot.sim.transport import SimTransport


def open_sim(options: str = "") -> SimTransport:
    """A fresh board in FEL, configured by the text after ``sim:`` in ``--device``."""
    return SimTransport(SimBoard(parse_options(options)))


__all__ = ["SimBoard", "SimConfig", "SimEvent", "SimTransport", "open_sim"]
