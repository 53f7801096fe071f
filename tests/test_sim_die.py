"""The model's H616 dies (sim option die=): what VER_REG reads and which RVBAR the reset uses."""

from __future__ import annotations

import pytest

from felboot.errors import DeviceGone, UsageError
from felboot.fel import FelDevice
from felboot.sim.options import parse_options
from felboot.thunks.boot_thunks import build_rmr_switch

pytest.importorskip("unicorn")
from felboot.sim import open_sim

VER_REG = 0x03000024
RVBAR_FIRST_DIE, RVBAR_SECOND_DIE = 0x09010040, 0x08100040
ATF = 0x40000000


def board(options: str) -> tuple[FelDevice, object]:
    transport = open_sim(options)
    return FelDevice(transport), transport.board


@pytest.mark.parametrize(
    ("options", "version"),
    [("soc=h616", 0x00), ("soc=h616,die=h618", 0x02), ("soc=h616,die=T507", 0x02)],
)
def test_version_register_low_byte_tells_the_die(options, version):
    device, _ = board(options)
    assert device.readl(VER_REG) & 0xFF == version


@pytest.mark.parametrize(
    ("options", "real", "other"),
    [
        ("soc=h616", RVBAR_FIRST_DIE, RVBAR_SECOND_DIE),
        ("soc=h616,die=h618", RVBAR_SECOND_DIE, RVBAR_FIRST_DIE),
    ],
)
def test_the_reset_takes_the_dies_own_rvbar(options, real, other):
    device, sim = board(options)
    device.writel(other, 0x12345678)  # not a register on this die
    assert device.readl(other) == 0
    payload = build_rmr_switch(real, ATF)
    device.write(sim.soc.scratch_addr, payload.data)
    with pytest.raises(DeviceGone):
        device.jump(sim.soc.scratch_addr)
        device.read(sim.soc.scratch_addr, 4)
    assert (sim.events[-1].kind, sim.events[-1].address) == ("aarch64_reset", ATF)


def test_an_rvbar_write_to_the_other_die_register_resets_at_zero():
    device, sim = board("soc=h616,die=h618")
    payload = build_rmr_switch(RVBAR_FIRST_DIE, ATF)  # a client that ignores VER_REG
    device.write(sim.soc.scratch_addr, payload.data)
    with pytest.raises(DeviceGone):
        device.jump(sim.soc.scratch_addr)
        device.read(sim.soc.scratch_addr, 4)
    assert (sim.events[-1].kind, sim.events[-1].address) == ("aarch64_reset", 0)


def test_die_option_names_the_choices():
    assert parse_options("soc=h616,die=h618").die.rvbar_reg == RVBAR_SECOND_DIE
    assert parse_options("soc=h616").die is None
    with pytest.raises(UsageError, match=r"die='h619' is not a die of the H616: use die=h616"):
        parse_options("soc=h616,die=h619")
    with pytest.raises(UsageError, match=r"not a die of the A64: use no die= option"):
        parse_options("soc=a64,die=h618")
