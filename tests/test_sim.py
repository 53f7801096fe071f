"""The device model's wire protocol, memory map and options, driven like a real board."""

from __future__ import annotations

import pytest

from felboot import protocol
from felboot.boot import boot_uboot
from felboot.errors import DeviceGone, DeviceTimeout, UsageError
from felboot.fel import FelDevice
from felboot.images.uboot import load_uboot
from felboot.sim import SimTransport, open_sim
from felboot.sim.layout import SCTLR_I, layout_for
from felboot.soc import SOCS, soc_by_name
from felboot.thunks.boot_thunks import SMC, build_plain
from tests.support import IMAGES

BX_LR = bytes.fromhex("1eff2fe1")  # 0xE12FFF1E: bx lr


def fel(options: str = "") -> tuple[FelDevice, SimTransport]:
    transport = open_sim(options)
    return FelDevice(transport), transport


# Raw framing, for what the client refuses to send ------------------------------------


def usb_write(transport: SimTransport, payload: bytes) -> None:
    transport.bulk_out(protocol.build_usb_request(protocol.USB_DIRECTION_WRITE, len(payload)))
    transport.bulk_out(payload)
    protocol.check_usb_response(transport.bulk_in(protocol.USB_RESPONSE_SIZE))


def usb_read(transport: SimTransport, length: int) -> bytes:
    transport.bulk_out(protocol.build_usb_request(protocol.USB_DIRECTION_READ, length))
    data = transport.bulk_in(length)
    protocol.check_usb_response(transport.bulk_in(protocol.USB_RESPONSE_SIZE))
    return data


def raw_fel_write(transport: SimTransport, address: int, data: bytes) -> None:
    usb_write(transport, protocol.build_fel_message(protocol.FEL_WRITE, address, len(data)))
    usb_write(transport, data)
    protocol.check_fel_status(usb_read(transport, protocol.FEL_STATUS_SIZE), "WRITE")


# Options ---------------------------------------------------------------------------------


def test_defaults_are_an_a20_with_1g() -> None:
    transport = open_sim()
    assert transport.description == "sim A20 (1024 MiB)"
    assert transport.board.dram_size == 1 << 30
    assert transport.board.soc.name == "A20"


def test_options_pick_soc_dram_and_sid() -> None:
    transport = open_sim("soc=h3, dram=512M, sid=02c00081:7b7ee2c2:4a8e2d5f:1a3b5c7d")
    assert transport.description == "sim H3 (512 MiB)"
    assert transport.board.registers.sid == (0x02C00081, 0x7B7EE2C2, 0x4A8E2D5F, 0x1A3B5C7D)


@pytest.mark.parametrize(
    ("options", "culprit"),
    [
        ("colour=red", "'colour=red'"),
        ("soc", "'soc'"),
        ("soc=z80", "soc='z80'"),
        ("dram=lots", "'lots'"),
        ("dram=3G", "dram='3G'"),
        ("dram=4G", "dram='4G'"),
        ("dram=1M", "dram='1M'"),
        ("sid=1234", "sid='1234'"),
        ("sid=" + "g" * 32, "sid="),
    ],
)
def test_bad_options_name_the_culprit(options: str, culprit: str) -> None:
    with pytest.raises(UsageError) as error:
        open_sim(options)
    assert culprit in str(error.value)


def test_unknown_key_lists_the_valid_ones() -> None:
    with pytest.raises(UsageError, match="soc=, dram=, sid="):
        open_sim("ram=1G")


def test_unknown_soc_lists_the_known_ones() -> None:
    with pytest.raises(UsageError, match="A20.*H3"):
        open_sim("soc=pentium")


# Every SoC in the table ----------------------------------------------------------------


@pytest.mark.parametrize("soc", SOCS, ids=lambda soc: soc.name)
def test_every_soc_answers_version_and_runs_code(soc: object) -> None:
    device, transport = fel(f"soc={soc.name}")  # type: ignore[attr-defined]
    version = device.version()
    assert version.soc_id == soc.soc_id  # type: ignore[attr-defined]
    scratch = soc.scratch_addr  # type: ignore[attr-defined]
    device.write(scratch, BX_LR + b"scratch!")
    assert device.read(scratch + 4, 8) == b"scratch!"
    device.execute(scratch)
    assert not transport.board.stopped


@pytest.mark.parametrize("soc", SOCS, ids=lambda soc: soc.name)
def test_layout_holds_everything_the_client_uses(soc: object) -> None:
    layout = layout_for(soc)  # type: ignore[arg-type]

    def in_sram(start: int, end: int) -> bool:
        return any(span.start <= start and end <= span.end for span in layout.sram)

    assert in_sram(soc.spl_addr, soc.spl_addr + soc.sram_size)  # type: ignore[attr-defined]
    assert in_sram(soc.thunk_addr, soc.thunk_addr + soc.thunk_size)  # type: ignore[attr-defined]
    for buffer in soc.swap_buffers:  # type: ignore[attr-defined]
        assert in_sram(buffer.rom, buffer.rom_end)
        assert in_sram(buffer.spare, buffer.spare + buffer.size)
    assert layout.stack.start <= layout.svc_sp < layout.stack.end
    for span in layout.sram:
        assert span.end <= layout.mmio.start or span.start >= layout.mmio.end
        assert span.end <= layout.rom.start or span.start >= layout.rom.end


# VERSION -----------------------------------------------------------------------------------


def test_version_answer_is_the_a20_roms() -> None:
    transport = open_sim()
    usb_write(transport, protocol.build_fel_message(protocol.FEL_VERSION))
    answer = usb_read(transport, protocol.FEL_VERSION_SIZE)
    assert answer == protocol.build_version_answer(0x1651, 0x7E00)
    assert answer[8:12] == bytes.fromhex("00511600")  # 0x00165100 little-endian
    protocol.check_fel_status(usb_read(transport, protocol.FEL_STATUS_SIZE), "VERSION")


def test_version_scratchpad_follows_sram_on_a64() -> None:
    device, _ = fel("soc=a64")
    assert device.version().scratchpad == 0x17E00


# Memory --------------------------------------------------------------------------------------


def test_sram_write_read_round_trip() -> None:
    device, transport = fel()
    payload = bytes(range(256)) * 16
    device.write(0x2000, payload)
    assert device.read(0x2000, len(payload)) == payload
    assert transport.board.read_memory(0x2000, 4) == payload[:4]


def test_large_write_spans_many_bulk_transfers_into_dram() -> None:
    device, transport = fel("dram=256M")
    transport.board.dram_ready = True  # back door: as if an SPL had run
    payload = bytes(range(251)) * 5000  # > 1 MiB: three bulk transfers
    device.write(0x42000000, payload)
    assert device.read(0x42000000, len(payload)) == payload


def test_dram_before_spl_hangs_and_the_client_says_run_an_spl() -> None:
    device, transport = fel()
    device.version()
    with pytest.raises(DeviceTimeout, match="SPL") as error:
        device.read(0x40000000, 4)
    assert "0x40000000" in str(error.value)
    assert transport.board.hung
    assert "before DRAM was initialised" in transport.board.hang_reason
    with pytest.raises(DeviceTimeout, match="board hung"):
        device.read(0x2000, 4)


def test_dram_write_before_spl_hangs() -> None:
    device, transport = fel()
    device.version()
    with pytest.raises(DeviceTimeout, match="SPL"):
        device.write(0x4A000000, b"u-boot")
    assert "WRITE" in transport.board.hang_reason


def test_unmapped_read_hangs() -> None:
    device, transport = fel()
    with pytest.raises(DeviceTimeout, match="no answer"):
        device.read(0x00F00000, 16)
    assert "unmapped 0x00f00000" in transport.board.hang_reason


def test_two_gib_board_stays_sparse() -> None:
    device, transport = fel("dram=2G")
    board = transport.board
    board.dram_ready = True
    device.write(0xBFFFFFF0, b"top of 2 GiB")
    device.write(0x40000000, b"bottom")
    assert device.read(0xBFFFFFF0, 12) == b"top of 2 GiB"
    assert board.dram.allocated <= 2 * 64 * 1024


def test_dram_aliases_modulo_its_size() -> None:
    device, transport = fel("dram=256M")
    transport.board.dram_ready = True
    device.write(0x40000100, b"alias")
    assert device.read(0x50000100, 5) == b"alias"
    assert device.read(0xB0000100, 5) == b"alias"


def test_writing_rom_state_hangs_the_board() -> None:
    transport = open_sim()
    with pytest.raises(DeviceTimeout, match="board hung"):
        raw_fel_write(transport, 0x7D00, b"oops")
    assert "0x00007c00-0x00007fff" in transport.board.hang_reason


def test_the_client_refuses_rom_state_before_the_model_sees_it() -> None:
    device, transport = fel()
    from felboot.errors import UnsafeWrite

    with pytest.raises(UnsafeWrite):
        device.write(0x5C00, b"stack")
    assert not transport.board.stopped


def test_rom_state_is_readable_and_unchanged_by_reads() -> None:
    device, transport = fel()
    before = transport.board.read_memory(0x7C00, 0x400)
    assert device.read(0x7C00, 0x400) == before
    assert before != bytes(0x400)


def test_sid_words_read_through_fel() -> None:
    device, _ = fel("sid=16516650804848484848505000000000")
    assert device.read(0x01C23800, 16) == bytes.fromhex("50665116484848805050484800000000")


def test_default_sid_is_plausible_and_fixed() -> None:
    first = open_sim("soc=a64").board.registers.sid
    assert first == open_sim("soc=a64").board.registers.sid
    assert first[0] >> 16 == 0x1689


def test_h3_direct_sid_read_garbles_the_first_word() -> None:
    device, _ = fel("soc=h3,sid=02c0008112345678aabbccdd01020304")
    words = device.read(0x01C14200, 16)
    assert words[:4] == bytes(4)  # the erratum: use the SID_PRCTL method
    assert words[4:] == bytes.fromhex("78563412ddccbbaa04030201")


def test_watchdog_write_resets_the_board() -> None:
    device, transport = fel()
    with pytest.raises(DeviceGone, match="left FEL"):
        device.write(0x01C20C94, bytes.fromhex("03000000"))
    assert [event.kind for event in transport.board.events] == ["watchdog_reset"]
    with pytest.raises(DeviceGone, match="watchdog reset"):
        device.read(0x2000, 4)


def test_other_mmio_reads_zero_and_logs_writes() -> None:
    device, transport = fel()
    device.write(0x01C20800, bytes.fromhex("11223344"))
    assert device.read(0x01C20800, 4) == bytes(4)
    assert (0x01C20800, 0x44332211) in transport.board.registers.writes


def test_back_door_refuses_unmapped_addresses() -> None:
    with pytest.raises(UsageError, match="0x00f00000"):
        open_sim().board.read_memory(0x00F00000, 4)


# Framing violations ------------------------------------------------------------------------


def test_wrong_signature_hangs() -> None:
    transport = open_sim()
    bad = b"AWUX" + protocol.build_usb_request(protocol.USB_DIRECTION_WRITE, 16)[4:]
    with pytest.raises(DeviceTimeout, match="AWUC"):
        transport.bulk_out(bad)
    with pytest.raises(DeviceTimeout, match="no answer"):
        transport.bulk_in(13)


def test_read_request_when_a_message_is_due_hangs() -> None:
    transport = open_sim()
    with pytest.raises(DeviceTimeout, match="a FEL message"):
        transport.bulk_out(protocol.build_usb_request(protocol.USB_DIRECTION_READ, 8))
    assert transport.board.hung


def test_more_bytes_than_announced_hangs() -> None:
    transport = open_sim()
    transport.bulk_out(protocol.build_usb_request(protocol.USB_DIRECTION_WRITE, 16))
    with pytest.raises(DeviceTimeout, match="announced 16"):
        transport.bulk_out(bytes(20))


def test_reading_when_the_host_should_send_hangs() -> None:
    transport = open_sim()
    with pytest.raises(DeviceTimeout, match="receive an AWUC request"):
        transport.bulk_in(13)


def test_writing_when_the_response_is_due_hangs() -> None:
    transport = open_sim()
    transport.bulk_out(protocol.build_usb_request(protocol.USB_DIRECTION_WRITE, 16))
    transport.bulk_out(protocol.build_fel_message(protocol.FEL_VERSION))
    with pytest.raises(DeviceTimeout, match="AWUS"):
        transport.bulk_out(protocol.build_usb_request(protocol.USB_DIRECTION_READ, 32))


def test_wrong_data_length_for_a_fel_write_hangs() -> None:
    transport = open_sim()
    usb_write(transport, protocol.build_fel_message(protocol.FEL_WRITE, 0x2000, 64))
    with pytest.raises(DeviceTimeout, match="FEL WRITE data"):
        transport.bulk_out(protocol.build_usb_request(protocol.USB_DIRECTION_WRITE, 32))


def test_unknown_fel_command_hangs() -> None:
    transport = open_sim()
    with pytest.raises(DeviceTimeout, match="unknown FEL command 0x201"):
        usb_write(transport, protocol.build_fel_message(0x201, 0, 0))


def test_data_in_is_served_across_several_bulk_ins() -> None:
    transport = open_sim()
    transport.board.write_memory(0x3000, b"0123456789")
    usb_write(transport, protocol.build_fel_message(protocol.FEL_READ, 0x3000, 10))
    transport.bulk_out(protocol.build_usb_request(protocol.USB_DIRECTION_READ, 10))
    assert transport.bulk_in(4) + transport.bulk_in(4) + transport.bulk_in(64) == b"0123456789"
    protocol.check_usb_response(transport.bulk_in(13))


def test_soc_aliases_resolve() -> None:
    assert open_sim("soc=H2+").board.soc is soc_by_name("h3")


# A secure-fused board: FEL starts non-secure ------------------------------------------------


def test_nonsecure_fel_reads_zero_sid_until_smc_and_felboot_applies_the_workaround_first():
    transport = open_sim("soc=h3,fel=nonsecure")
    raw = FelDevice(transport)
    soc = raw.soc
    assert soc is not None and soc.smc_probe_addr is not None
    # What a client without sunxi-fel's SMC workaround sees: zeros.
    assert raw.read_words([soc.sid_base + soc.sid_offset]) == [0]
    assert raw.read(soc.smc_probe_addr, 4) == bytes(4)
    assert raw.sid() == transport.board.config.sid_bytes  # smc first, then the real e-fuses
    assert [e.kind for e in transport.board.events] == ["secure_state"]


def test_smc_on_a_board_already_secure_crashes_it_as_sunxi_tools_says():
    transport = open_sim("soc=h3")
    device = FelDevice(transport)
    device.run_thunk(build_plain(SMC), "smc")
    with pytest.raises(DeviceTimeout, match="smc thunk .* did not return to FEL"):
        device.wait_returned()
    assert "smc exception" in transport.board.hang_reason


@pytest.mark.parametrize("spec", ["soc=a20,fel=nonsecure", "soc=h3,fel=maybe"])
def test_fel_option_is_checked(spec):
    with pytest.raises(UsageError, match=r"sim option fel="):
        open_sim(spec)


def test_uboot_on_a_nonsecure_a64_enters_the_secure_state_once_before_anything_else():
    transport = open_sim("soc=a64,dram=2G,fel=nonsecure")
    device = FelDevice(transport)
    device.apply_smc_workaround()
    boot_uboot(device, load_uboot([IMAGES / "u-boot-sunxi-with-spl-a64.bin"]))
    kinds = [e.kind for e in transport.board.events]
    assert kinds == ["secure_state", "spl", "aarch64_reset"]


@pytest.mark.parametrize("soc", [s.name for s in SOCS if s.needs_icache_fix])
def test_icache_is_turned_off_once_before_the_first_write_where_the_rom_leaves_it_on(soc):
    # sunxi-fel's aw_fel_write() -> aw_disable_icache() (fel_lib.c), soc_info.c `icache_fix`.
    transport = open_sim(f"soc={soc}")
    device = FelDevice(transport)
    info = device.soc
    assert info is not None
    sent: list[bytes] = []
    inner_out = transport.bulk_out
    transport.bulk_out = lambda data: (sent.append(bytes(data)), inner_out(data))[1]  # type: ignore[method-assign]
    assert transport.board.core.read_cp15(1, 0, 0, 0) & SCTLR_I
    device.write(info.scratch_addr + 0x40, b"data")
    device.write(info.scratch_addr + 0x40, b"more")
    messages = [protocol.parse_fel_message(d) for d in sent if len(d) == protocol.FEL_MESSAGE_SIZE]
    assert [(m.command, m.address) for m in messages] == [
        (protocol.FEL_WRITE, info.scratch_addr),  # the I-cache-off thunk
        (protocol.FEL_EXEC, info.scratch_addr),
        (protocol.FEL_WRITE, info.scratch_addr + 0x40),
        (protocol.FEL_WRITE, info.scratch_addr + 0x40),
    ]
    device.wait_returned()
    assert not transport.board.core.read_cp15(1, 0, 0, 0) & SCTLR_I
    assert not transport.board.stopped


def test_no_icache_thunk_where_the_rom_runs_without_the_icache():
    transport = open_sim("soc=h3")
    device = FelDevice(transport)
    device.write(0x10000, b"data")
    assert (
        transport.board.events == [] and transport.board.core.read_cp15(1, 0, 0, 0) & SCTLR_I == 0
    )
