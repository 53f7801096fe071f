"""The FEL boot chain against the device model: SPL, U-Boot placement, handoff, start.

The model (felboot.sim) behaves like the boot ROM: it crashes when its own SRAM
is overwritten, refuses DRAM before an SPL ran, runs the thunks in unicorn and
emulates the SPL's effect and the final jump. Assertions are on its events
and memory, never on what the client believes it did.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from felboot import protocol
from felboot.boot import (
    LoadedRegions,
    boot_uboot,
    check_rom_stacks,
    hand_off_script,
    load_uboot,
    plan_fit,
    run_spl,
    rvbar_register,
    spl_size_limit,
    spl_upload_pieces,
)
from felboot.errors import BootError, DeviceTimeout, ImageError, UnsafeWrite
from felboot.fel import FelDevice
from felboot.images.fit import FitConfig, FitImage, FitSubImage, select_config
from felboot.images.spl import SPL_HEADER_SIZE, SplHeader, parse_spl, spl_checksum
from felboot.images.uboot import UBootBundle
from felboot.images.uboot import load_uboot as load_uboot_files
from felboot.soc import soc_by_name
from felboot.thunks.boot_thunks import (
    SECTION_SHIFT,
    TABLE_SIZE,
    WRITE_BACK,
    WRITE_COMBINE,
    CpuState,
    TranslationTable,
)
from felboot.transport import Transport

pytest.importorskip("unicorn")
from felboot.sim import open_sim

IMAGES = Path(__file__).resolve().parent.parent / "fixtures" / "images"
A20 = soc_by_name("A20")
SCRIPT_ADDR = 0x43100000
MEMORY_TYPE = 0x700C


def sim_device(options: str) -> tuple[FelDevice, object]:
    transport = open_sim(options)
    return FelDevice(transport), transport.board


def kinds(board) -> list[str]:
    return [event.kind for event in board.events]


def bundle(name: str) -> UBootBundle:
    return load_uboot_files([IMAGES / name])


def big_spl(length: int, version: int | None = 2, seed: int = 3) -> bytes:
    """An eGON SPL of ``length`` bytes (large enough to reach into the ROM's SRAM)."""
    body = bytes((seed + i * 7 + (i >> 9)) & 0xFF for i in range(length - SPL_HEADER_SIZE))
    fields = dict(
        branch=0xEA000016,
        magic=b"eGON.BT0",
        checksum=0,
        length=length,
        signature=b"SPL" if version is not None else b"\0\0\0",
        version=version or 0,
        fel_script_address=0,
        fel_uenv_length=0,
        dt_name_offset=0,
        dram_size=0,
        boot_media=0,
        string_pool=bytes(52),
    )
    unsigned = SplHeader.build(fields) + body
    fields["checksum"] = spl_checksum(unsigned, length)
    return SplHeader.build(fields) + body


# A20: legacy U-Boot, MMU on in the ROM --------------------------------------------------


def test_a20_uboot_boot_end_to_end():
    device, board = sim_device("soc=a20,dram=1G")
    uboot = bundle("u-boot-sunxi-with-spl-a20.bin")
    script = (IMAGES / "boot.scr").read_bytes()
    result = boot_uboot(device, uboot, script=(SCRIPT_ADDR, script))

    assert kinds(board) == ["spl", "uboot_started"]
    assert board.events[-1].address == uboot.main.entry == 0x4A000000
    assert board.read_memory(0x4A000000, len(uboot.main.data)) == uboot.main.data
    assert board.read_memory(SCRIPT_ADDR, len(script)) == script
    header = SplHeader.parse(board.read_memory(A20.spl_addr, SPL_HEADER_SIZE))
    assert (header.magic, header.fel_script_address, header.fel_uenv_length) == (
        b"eGON.FEL",
        SCRIPT_ADDR,
        0,
    )
    assert result.mmu_restored
    assert str(result.dram) == "DRAM 1024 MiB, probed"  # a v0.2 SPL does not report it
    # the ROM's table is back, DRAM write-combine, the BROM section cacheable
    table = TranslationTable.parse(board.read_memory(0x8000, TABLE_SIZE))
    assert table[0x400] & MEMORY_TYPE == WRITE_COMBINE == table[0xBFF] & MEMORY_TYPE
    assert table[0xFFF] & MEMORY_TYPE == WRITE_BACK
    assert all(entry >> SECTION_SHIFT == index for index, entry in enumerate(table))


def test_a20_spl_that_covers_the_roms_sram_is_swapped_in_and_out():
    device, board = sim_device("soc=a20,dram=512M")
    data = big_spl(0x8000)
    spl = parse_spl(data, "big-spl.bin")
    rom_before = [board.read_memory(s, e - s) for s, e in A20.rom_state_ranges]
    result = run_spl(device, spl)
    assert kinds(board) == ["spl"]
    assert [board.read_memory(s, e - s) for s, e in A20.rom_state_ranges] == rom_before
    # the rest stayed in place (the spare buffers lie under the ROM's MMU table at
    # 0x8000-0xBFFF, written back after the SPL)
    assert board.read_memory(0x2000, 0x5C00 - 0x2000) == data[0x2000:0x5C00]
    assert result.dram.size == 512 << 20 and result.dram.source == "probed"
    # the model checked that the ROM's state was intact after every EXEC: still answering
    assert device.read(0, 4)


def test_spl_upload_pieces_never_touch_rom_ranges():
    pieces = spl_upload_pieces(A20, bytes(0x8000))
    spans = [(address, address + len(data)) for address, data in pieces]
    assert spans == [
        (0x0000, 0x1C00),
        (0xA400, 0xA800),
        (0x2000, 0x5C00),
        (0xA800, 0xBC00),
        (0x7000, 0x7C00),
        (0xBC00, 0xC000),
    ]
    assert sum(len(d) for _, d in pieces) == 0x8000


# A64 / H5: FIT, ATF, AArch64 warm reset ----------------------------------------------------


@pytest.mark.parametrize("soc", ["a64", "h5"])
def test_arm64_fit_boot_places_atf_uboot_dtb_and_resets_into_aarch64(soc):
    device, board = sim_device(f"soc={soc},dram=1G")
    uboot = bundle(f"u-boot-sunxi-with-spl-{soc}.bin")
    fit = uboot.main
    assert isinstance(fit, FitImage)
    result = boot_uboot(device, uboot)

    assert kinds(board) == ["spl", "aarch64_reset"]
    atf, main = fit.images["atf"], fit.images["uboot"]
    assert board.events[-1].address == atf.entry == 0x44000
    assert str(result.dram) == "DRAM 1024 MiB, spl header"
    assert not result.mmu_restored
    assert board.read_memory(atf.load, len(atf.data)) == atf.data
    assert board.read_memory(main.load, len(main.data)) == main.data
    config = select_config(fit, uboot.spl.dt_name, dram_size_mib=1024)
    fdt = fit.images[config.fdt[0]].data
    fdt_at = (main.load + len(main.data) + 7) & ~7
    assert board.read_memory(fdt_at, len(fdt)) == fdt


def test_arm64_placement_reports_regions():
    device, _ = sim_device("soc=a64,dram=512M")
    uboot = bundle("u-boot-sunxi-with-spl-a64.bin")
    run_spl(device, uboot.spl)
    placement = load_uboot(device, uboot, dram_mib=512)
    regions = {name: (start, end) for name, start, end in placement.regions}
    fit = uboot.main
    assert isinstance(fit, FitImage)
    assert regions["atf"] == (0x44000, 0x44000 + len(fit.images["atf"].data))
    assert regions["scp"][0] == 0x50000 and regions["uboot"][0] == 0x4A000000
    assert placement.aarch64 and placement.entry == 0x44000


# H3: legacy, MMU table at mmu_tt_addr, smc probe -----------------------------------------


def test_h3_boot_builds_a_table_at_mmu_tt_addr():
    device, board = sim_device("soc=h3,dram=512M")
    uboot = bundle("u-boot-sunxi-with-spl-h3.bin")  # a 32-bit legacy U-Boot
    result = boot_uboot(device, uboot)
    assert kinds(board) == ["spl", "uboot_started"]
    assert result.mmu_restored and result.dram.size == 512 << 20
    table = TranslationTable.parse(board.read_memory(0x8000, TABLE_SIZE))
    assert [entry >> SECTION_SHIFT for entry in table] == list(range(4096))
    assert table[0x400] & MEMORY_TYPE == WRITE_COMBINE


# Error paths ------------------------------------------------------------------------------


def test_too_large_spl_is_refused_before_anything_is_sent():
    device, board = sim_device("soc=a20,dram=1G")
    limit, _ = spl_size_limit(A20)
    spl = parse_spl(big_spl(limit + 0x400), "huge-spl.bin")
    before = board.read_memory(0, 0xC000)
    with pytest.raises(ImageError, match=r"huge-spl.bin: .* A20 runs at most 41472 \(0xa200\)"):
        run_spl(device, spl)
    assert board.events == [] and board.read_memory(0, 0xC000) == before


def test_bad_checksum_is_caught_on_the_device_and_the_spl_not_called():
    device, board = sim_device("soc=a20,dram=1G")
    data = bytearray(big_spl(0x4000))
    data[0x3000] ^= 0xFF
    spl = parse_spl(bytes(data), "bad.bin", verify_checksum=False)
    with pytest.raises(BootError, match=r"bad.bin: the SPL's checksum did not match"):
        run_spl(device, spl)
    assert "spl" not in kinds(board) and "crash" not in kinds(board)


class SplNeverReturns(Transport):
    """The model, except that the SPL thunk never comes back.

    As on a real ROM, the EXEC's status exchange is answered (it comes before
    the call); every request after it goes unanswered.
    """

    EXCHANGES_AFTER_THE_MESSAGE = 4  # AWUS of the message; AWUC, status, AWUS

    def __init__(self, inner: Transport, thunk_addr: int) -> None:
        self.inner = inner
        self.exec_message = protocol.build_fel_message(protocol.FEL_EXEC, thunk_addr, 0)
        self.answered: int | None = None  # transfers left before the board falls silent

    def _tick(self) -> None:
        if self.answered is not None:
            if self.answered == 0:
                raise DeviceTimeout("sim: no answer")
            self.answered -= 1

    def bulk_out(self, data: bytes | memoryview) -> None:
        self._tick()
        self.inner.bulk_out(data)
        if bytes(data) == self.exec_message:
            self.answered = self.EXCHANGES_AFTER_THE_MESSAGE

    def bulk_in(self, length: int) -> bytes:
        self._tick()
        return self.inner.bulk_in(length)


def test_spl_that_never_returns_is_a_boot_error_named_at_the_next_request():
    transport = SplNeverReturns(open_sim("soc=a20,dram=1G"), A20.thunk_addr)
    device = FelDevice(transport)
    spl = bundle("u-boot-sunxi-with-spl-a20.bin").spl
    with pytest.raises(
        BootError,
        match=r"^the SPL \(.*\) did not return to FEL \(the board stopped answering after it "
        r"started\): power-cycle the board into FEL; check the SPL is built for this board "
        r"\(A20\)$",
    ):
        run_spl(device, spl)
    assert transport.answered == 0  # the status was read; the next request timed out


def test_write_overlapping_uboot_is_refused_before_anything_is_sent():
    device, board = sim_device("soc=a20,dram=1G")
    uboot = bundle("u-boot-sunxi-with-spl-a20.bin")
    with pytest.raises(
        UnsafeWrite, match=r"kernel at 0x4a000100-0x4a00010f: it overlaps U-Boot .* 0x4a000000-"
    ):
        boot_uboot(device, uboot, writes=[(0x4A000100, bytes(16), "kernel")])
    assert board.events == []


def test_loaded_regions_names_both_ranges():
    regions = LoadedRegions([("uboot", 0x4A000000, 0x4A080000)])
    regions.check(0x4A080000, 0x100, "dtb")  # touching is fine
    with pytest.raises(UnsafeWrite, match=r"ramdisk at 0x49fff000-0x4a000fff: it overlaps uboot"):
        regions.check(0x49FFF000, 0x2000, "ramdisk")


def test_unknown_or_unsupported_soc_is_refused():
    from tests.scripted import ScriptedTransport, version_answers

    device = FelDevice(ScriptedTransport(version_answers(soc_id=0x1234)))
    spl = bundle("u-boot-sunxi-with-spl-a20.bin").spl
    with pytest.raises(BootError, match=r"unknown SoC 0x1234"):
        run_spl(device, spl)


def test_handoff_without_sunxi_header_warns_how_to_source_by_hand(caplog):
    device, board = sim_device("soc=a20,dram=1G")
    plain = parse_spl((IMAGES / "spl-plain.bin").read_bytes(), "spl-plain.bin")
    run_spl(device, plain, dram_size=1 << 30)
    assert not hand_off_script(device, plain, SCRIPT_ADDR)
    assert "source 0x43100000" in caplog.text
    assert SplHeader.parse(board.read_memory(0, SPL_HEADER_SIZE)).fel_script_address == 0


def test_uenv_text_sets_the_uenv_length():
    device, board = sim_device("soc=a20,dram=1G")
    uboot = bundle("u-boot-sunxi-with-spl-a20.bin")
    text = b"#=uEnv\nbootcmd=echo hi\n"
    boot_uboot(device, uboot, script=(SCRIPT_ADDR, text))
    header = SplHeader.parse(board.read_memory(0, SPL_HEADER_SIZE))
    assert (header.fel_script_address, header.fel_uenv_length) == (SCRIPT_ADDR, len(text))


# Transfers ------------------------------------------------------------------------------------


class Counting(Transport):
    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.transfers = 0
        self.bytes = 0
        self.commands: Counter[int] = Counter()

    def bulk_out(self, data: bytes | memoryview) -> None:
        self.transfers += 1
        self.bytes += len(data)
        if len(data) == 16:
            self.commands[int.from_bytes(bytes(data)[:4], "little")] += 1
        self.inner.bulk_out(data)

    def bulk_in(self, length: int) -> bytes:
        answer = self.inner.bulk_in(length)
        self.transfers += 1
        self.bytes += len(answer)
        return answer


def test_a20_boot_transfer_count_against_the_protocol_minimum():
    counting = Counting(open_sim("soc=a20,dram=1G"))
    device = FelDevice(counting)
    uboot = bundle("u-boot-sunxi-with-spl-a20.bin")
    script = (IMAGES / "boot.scr").read_bytes()
    boot_uboot(device, uboot, script=(SCRIPT_ADDR, script))

    # The least a FEL boot of this image can do: VERSION, WRITE SPL, WRITE thunk,
    # EXEC thunk, READ marker, WRITE U-Boot, WRITE script, WRITE header fields,
    # EXEC U-Boot. A20 adds the MMU round trip (cpu_state, READ table, mmu_off,
    # WRITE table, mmu_on) and the DRAM probe of a v0.2 SPL (4 register thunks).
    minimum = Counter({protocol.FEL_VERSION: 1, protocol.FEL_WRITE: 5, protocol.FEL_EXEC: 2,
                       protocol.FEL_READ: 1})  # fmt: skip
    mmu = Counter({protocol.FEL_WRITE: 4, protocol.FEL_EXEC: 3, protocol.FEL_READ: 2})
    probe = Counter({protocol.FEL_WRITE: 4, protocol.FEL_EXEC: 4, protocol.FEL_READ: 2})
    assert counting.commands == minimum + mmu + probe
    # every FEL command is 3 USB exchanges of 3 transfers (request, data, response),
    # except that EXEC has no data phase and its status never comes for the jump
    commands = sum(counting.commands.values())
    assert counting.transfers <= commands * 9
    print(
        f"A20 uboot boot: {commands} FEL commands ({sum(minimum.values())} minimum), "
        f"{counting.transfers} bulk transfers, {counting.bytes} bytes"
    )


def test_uboot_for_another_soc_is_refused_before_anything_is_written():
    from felboot.boot import boot_uboot
    from felboot.devices import open_transport
    from felboot.errors import ImageError
    from felboot.fel import FelDevice
    from felboot.images.uboot import load_uboot

    bundle = load_uboot([IMAGES / "u-boot-sunxi-with-spl-a20.bin"])
    sim = open_transport("sim:soc=h3")
    with pytest.raises(ImageError, match=r"built for the A20 \(sun7i-a20-.*an H3"):
        boot_uboot(FelDevice(sim), bundle)
    assert not sim.board.events and not sim.board.dram_ready


def test_info_reads_what_the_spl_left_in_sram():
    from felboot.images.spl import SPL_HEADER_SIZE, describe_header_in_sram

    device, _ = sim_device("soc=a64,dram=2G")
    spl_addr = soc_by_name("A64").spl_addr
    before = describe_header_in_sram(bytes(device.read(spl_addr, SPL_HEADER_SIZE)))
    assert before == {"spl": "none has run (DRAM is not up)"}
    run_spl(device, bundle("u-boot-sunxi-with-spl-a64.bin").spl)
    after = describe_header_in_sram(bytes(device.read(spl_addr, SPL_HEADER_SIZE)))
    assert after == {"spl": "ran and returned to FEL", "spl_version": "0.3", "dram_size_mib": 2048}


def test_the_host_pauses_after_the_spl_exec_before_its_next_request():
    # sunxi-fel sleeps 250 ms there, snagboot 500 ms; felboot takes the longer one.
    transport = open_sim("soc=a20,dram=1G")
    device = FelDevice(transport)
    run_spl(device, bundle("u-boot-sunxi-with-spl-a20.bin").spl)
    assert [seconds for seconds, _ in transport.pauses] == [0.5]


class SilentAfterExecAt(Transport):
    """The model, except that the board stops answering right after the EXEC of ``address``."""

    def __init__(self, inner: Transport, address: int) -> None:
        self.inner = inner
        self.exec_message = protocol.build_fel_message(protocol.FEL_EXEC, address, 0)
        self.silent = False

    def bulk_out(self, data: bytes | memoryview) -> None:
        if self.silent:
            raise DeviceTimeout("sim: no answer")
        self.inner.bulk_out(data)
        self.silent = bytes(data) == self.exec_message

    def bulk_in(self, length: int) -> bytes:
        if self.silent:
            raise DeviceTimeout("sim: no answer")
        return self.inner.bulk_in(length)


def test_a_board_that_does_not_answer_the_final_exec_status_has_not_started_uboot():
    uboot = bundle("u-boot-sunxi-with-spl-a20.bin")
    entry = uboot.main.entry
    transport = SilentAfterExecAt(open_sim("soc=a20,dram=1G"), entry)
    with pytest.raises(
        BootError,
        match=rf"^U-Boot was not started: the board did not answer the EXEC at 0x{entry:08x} "
        r"\(.*\); power-cycle the board into FEL and retry$",
    ):
        boot_uboot(FelDevice(transport), uboot)


# ROM stacks: reported as sunxi-fel does, never a reason to refuse -------------------------


@pytest.mark.parametrize(
    ("soc", "sp_irq", "sp"),
    [
        ("H616", 0x00021400, 0x00053FFC),  # sunxi-fel -v on an Orange Pi Zero3 (H618)
        ("R329", 0x00101400, 0x0013C2C8),  # soc_info.c, comment on r329_sram_swap_buffers
    ],
)
def test_real_rom_stack_pointers_are_reported_not_refused(caplog, soc, sp_irq, sp):
    record = soc_by_name(soc)
    state = CpuState(sctlr=0x00C50878, ttbr0=0, ttbcr=0, dacr=0, sp=sp, sp_irq=sp_irq)
    with caplog.at_level(logging.INFO, logger="felboot.boot"):
        check_rom_stacks(record, state)
    assert f"stack pointers: sp_irq=0x{sp_irq:08x}, sp=0x{sp:08x}" in caplog.text
    # what keeps the SPL off the ROM's stack is the size limit, below the thunk and sp
    limit, _ = spl_size_limit(record)
    assert record.spl_addr + limit <= record.thunk_addr < sp


@pytest.mark.parametrize("soc", ["h616", "r329", "v536", "v831", "v853", "r528"])
def test_spl_runs_where_the_rom_stacks_lie_outside_its_protected_sram(soc, caplog):
    """H616/R329 with the stacks real boards report, the V831 family with the model's
    (in the swap buffer, below the protected part): the old check refused them all."""
    device, board = sim_device(f"soc={soc},dram=256M")
    spl = parse_spl(big_spl(0x2000), "spl.bin")  # covers the swap buffer at spl_addr + 0x1000
    with caplog.at_level(logging.INFO, logger="felboot.boot"):
        result = run_spl(device, spl)
    assert kinds(board) == ["spl"] and result.dram.size == 256 << 20
    layout = board.layout
    assert f"sp_irq=0x{layout.irq_sp:08x}, sp=0x{layout.svc_sp:08x}" in caplog.text


# FIT entry point: U-Boot SPL's order ------------------------------------------------------

ATF_LOAD, UBOOT_LOAD = 0x40000000, 0x4A000000


def fit_of(
    entries: dict[str, int | None], firmware: str | None = "atf", loadables=("uboot",)
) -> FitImage:
    """A FIT whose images (named in ``entries``) have those entries; atf at 0x40000000."""
    loads = {"atf": ATF_LOAD, "uboot": UBOOT_LOAD, "scp": 0x50000}
    images = {
        name: FitSubImage(
            name, None, "firmware", "arm64", "u-boot" if name == "uboot" else None,
            "none", loads[name], entry, bytes(16), False,
        )
        for name, entry in entries.items()
    }  # fmt: skip
    config = FitConfig("config-1", None, firmware, tuple(loadables), ())
    return FitImage(None, images, {"config-1": config}, "config-1", 0, 0, "u-boot.itb")


def plan_entry(fit: FitImage) -> int:
    return plan_fit(fit, parse_spl(big_spl(0x2000), "spl.bin"), None)[1]


def test_fit_entry_is_the_firmwares_entry():
    assert plan_entry(fit_of({"atf": 0x40000100, "uboot": 0x4A000800})) == 0x40000100


def test_fit_entry_without_firmware_entry_is_the_first_loadables_entry():
    fit = fit_of({"atf": None, "scp": None, "uboot": 0x4A000800}, loadables=("scp", "uboot"))
    assert plan_entry(fit) == 0x4A000800


def test_fit_entry_without_any_entry_is_the_firmwares_load_address():
    assert plan_entry(fit_of({"atf": None, "uboot": None})) == ATF_LOAD


def test_fit_entry_zero_means_the_load_address():
    # spl_fit.c: an entry of 0 (CONFIG_SYS_UBOOT_START unset) "means: use the load address"
    assert plan_entry(fit_of({"atf": 0, "uboot": 0x4A000800})) == ATF_LOAD


def test_fit_without_firmware_starts_the_first_loadable():
    fit = fit_of({"uboot": None, "scp": 0x50100}, firmware=None, loadables=("uboot", "scp"))
    assert plan_entry(fit) == 0x50100  # uboot is "the firmware", scp has the first entry


def test_fit_firmware_also_listed_as_loadable_still_comes_first():
    fit = fit_of({"atf": 0x40000100, "uboot": 0x4A000800}, loadables=("uboot", "atf"))
    parts, entry = plan_fit(fit, parse_spl(big_spl(0x2000), "spl.bin"), None)
    assert [name for name, _, _ in parts] == ["atf", "uboot"] and entry == 0x40000100


# H616's two dies: RVBAR by the version register -----------------------------------------


def h616_bundle() -> UBootBundle:
    """ATF in DRAM at 0x40000000 and U-Boot at 0x4A000000, as U-Boot's H616 FIT has them."""
    fit = fit_of({"atf": ATF_LOAD, "uboot": None})
    spl = parse_spl(big_spl(0x2000), "spl.bin")
    return UBootBundle(spl, fit, None, "spl.bin", "u-boot.itb")


@pytest.mark.parametrize(
    ("options", "rvbar"),
    [
        ("soc=h616", 0x09010040),
        ("soc=h616,die=h618", 0x08100040),
        ("soc=h616,die=t507", 0x08100040),
    ],
)
def test_both_h616_dies_boot_into_aarch64_at_the_atf_entry(options, rvbar):
    device, board = sim_device(f"{options},dram=1G")
    assert rvbar_register(device, soc_by_name("H616")) == rvbar
    boot_uboot(device, h616_bundle())
    assert kinds(board) == ["spl", "aarch64_reset"]
    assert board.events[-1].address == ATF_LOAD


def test_rvbar_register_reads_no_version_where_there_is_one_rvbar():
    device, board = sim_device("soc=a64")
    assert rvbar_register(device, soc_by_name("A64")) == 0x017000A0
    assert board.registers.writes == []  # no thunk ran, nothing was read


def test_rvbar_register_refuses_a_soc_without_rvbar():
    device, _ = sim_device("soc=a20")
    with pytest.raises(BootError, match="the A20 has no RVBAR"):
        rvbar_register(device, A20)
