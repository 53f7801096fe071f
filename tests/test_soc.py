import pytest

from felboot.soc import SOCS, soc_by_id, soc_by_name, soc_label


def test_every_soc_of_sunxi_tools_is_known():
    names = {soc.name for soc in SOCS}
    assert names == {
        "A10", "A13", "A20", "A23", "A31", "A33", "A64", "A80", "F1C100s", "A83T", "H3",
        "V3s", "H5", "R40", "A63", "H6", "V536", "V831", "H616", "R329", "V853", "R528", "V5",
    }  # fmt: skip


def test_ids_are_unique():
    assert len({soc.soc_id for soc in SOCS}) == len(SOCS)


def test_a20_facts():
    a20 = soc_by_id(0x1651)
    assert a20 is not None and a20.name == "A20"
    assert a20.rom_state_ranges == ((0x1C00, 0x2000), (0x5C00, 0x7000), (0x7C00, 0x8000))
    assert (a20.spl_addr, a20.scratch_addr, a20.thunk_addr) == (0, 0x1000, 0xA200)
    assert not a20.is_arm64


def test_a64_h5_switch_to_aarch64_through_rvbar():
    for name in ("a64", "h5"):
        soc = soc_by_name(name)
        assert soc is not None and soc.rvbar_reg == 0x017000A0 and soc.spl_addr == 0x10000


@pytest.mark.parametrize("soc", SOCS, ids=lambda soc: soc.name)
def test_swap_buffers_do_not_overlap_thunk_or_each_other(soc):
    thunk = (soc.thunk_addr, soc.thunk_addr + soc.thunk_size)
    spans = [(b.rom, b.rom_end) for b in soc.swap_buffers]
    spans += [(b.spare, b.spare + b.size) for b in soc.swap_buffers]
    spans.append(thunk)
    spans.sort()
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start


def test_unknown_id_label():
    assert soc_label(0x1234) == "unknown SoC 0x1234"
    assert soc_by_name("H2+") is soc_by_id(0x1680)


@pytest.mark.parametrize("soc", SOCS, ids=lambda soc: soc.name)
def test_scratch_area_is_writable(soc):
    """Thunks run at scratch_addr: it must lie outside the ROM's live state on every SoC."""
    for start, end in soc.rom_state_ranges:
        assert start < end
        assert not start <= soc.scratch_addr < end
