"""``felboot socs``: the SoC table, as ``sunxi-fel --list-socs``, with the facts felboot uses."""

from __future__ import annotations

import argparse
from typing import Any

from felboot.commands.common import emit
from felboot.soc import SOCS, SocInfo
from felboot.units import format_size


def soc_row(soc: SocInfo) -> dict[str, Any]:
    """One SoC's listing: the record's names and the addresses the boot chain uses."""
    from felboot.boot import spl_size_limit

    limit, reason = spl_size_limit(soc)
    return {
        "soc_id": soc.soc_id,
        "name": soc.name,
        "aliases": list(soc.aliases),
        # T7 has AArch64 cores but no RVBAR in soc_info.c: felboot starts it in AArch32.
        "starts_aarch64": soc.is_arm64,
        "dram_base": soc.dram_base,
        "spl_addr": soc.spl_addr,
        "spl_size_limit": limit,
        "spl_limit_set_by": reason,
    }


def _line(row: dict[str, Any]) -> str:
    aliases = ", ".join(row["aliases"]) or "-"
    starts = "AArch64" if row["starts_aarch64"] else "AArch32"
    limit = row["spl_size_limit"]
    return (
        f"{row['soc_id']:04x}  {row['name']:<8} {aliases:<18} {starts:<7} "
        f"0x{row['dram_base']:08x}  0x{row['spl_addr']:06x}  {format_size(limit):>8} (0x{limit:x})"
    )


HEADER = (
    f"{'id':<4}  {'name':<8} {'aliases':<18} {'starts':<7} {'DRAM':<10}  {'SPL at':<8}  SPL limit"
)


def cmd_socs(args: argparse.Namespace) -> int:
    rows = [soc_row(soc) for soc in SOCS]
    emit(args, {"socs": rows}, "\n".join([HEADER, *map(_line, rows)]))
    return 0
