"""DRAM size detection: the aliasing probe against the device model, and its fallbacks."""

from __future__ import annotations

import pytest

from felboot.dram import (
    BASE_MARKER,
    DramInfo,
    detect_dram,
    interpret_probe,
    offset_marker,
    probe_dram_size,
    probe_offsets,
)
from felboot.errors import BootError
from felboot.fel import FelDevice
from felboot.images.spl import parse_spl
from felboot.soc import soc_by_name

pytest.importorskip("unicorn")
from felboot.boot import run_spl
from felboot.sim import open_sim
from tests.test_boot import IMAGES

A20 = soc_by_name("A20")
GiB = 1 << 30


def board_after_spl(options: str):
    transport = open_sim(options)
    device = FelDevice(transport)
    spl = parse_spl((IMAGES / "spl-plain.bin").read_bytes(), "spl-plain.bin")
    result = run_spl(device, spl, dram_size=123 << 20)  # profile fallback, never used here
    return device, transport.board, result


@pytest.mark.parametrize("size", ["512M", "1G", "2G"])
def test_probe_finds_the_models_size_and_restores_every_word(size):
    device, board, _ = board_after_spl(f"soc=a20,dram={size}")
    expected = {"512M": 512 << 20, "1G": GiB, "2G": 2 * GiB}[size]
    addresses = [A20.dram_base] + [A20.dram_base + o for o in probe_offsets(2 * GiB)]
    for n, address in enumerate(addresses):  # distinct contents where the cells are real
        if address - A20.dram_base < expected:
            board.write_memory(address, (0x1000 + n).to_bytes(4, "little"))
    before = [board.read_memory(a, 4) for a in addresses]
    assert probe_dram_size(device, A20) == expected
    assert [board.read_memory(a, 4) for a in addresses] == before


def test_a20_run_spl_reports_the_probed_size():
    _, board, result = board_after_spl("soc=a20,dram=2G")
    assert [e.kind for e in board.events] == ["spl"]
    assert result.dram == DramInfo(2 * GiB, "probed")


def test_interpretation_of_read_backs():
    offsets = probe_offsets(2 * GiB)
    own = [offset_marker(o) for o in offsets]
    # 256 MiB: offsets from 256 MiB up alias the base
    seen = [BASE_MARKER] + [m if o < 256 << 20 else BASE_MARKER for o, m in zip(offsets, own)]
    assert interpret_probe(offsets, seen, 2 * GiB) == 256 << 20
    assert interpret_probe(offsets, [BASE_MARKER, *own], 2 * GiB) == 2 * GiB
    assert interpret_probe(offsets, [0, *own], 2 * GiB) is None  # DRAM holds nothing
    broken = [BASE_MARKER] + [BASE_MARKER if o == 4 << 20 else m for o, m in zip(offsets, own)]
    assert interpret_probe(offsets, broken, 2 * GiB) is None  # a real cell above an alias


class Unreadable:
    """DRAM that reads back zeros whatever is written."""

    def read_words(self, addresses):
        return [0] * len(addresses)

    def write_words(self, pairs):
        pass


def test_sources_in_order_of_preference():
    assert detect_dram(Unreadable(), A20, 1024) == DramInfo(GiB, "spl header")
    assert detect_dram(Unreadable(), A20, None, 512 << 20) == DramInfo(512 << 20, "profile")
    assert str(DramInfo(GiB, "probed")) == "DRAM 1024 MiB, probed"
    with pytest.raises(BootError, match=r"A20 board has.*probe at 0x40000000.*--dram-size"):
        detect_dram(Unreadable(), A20, None, None)
