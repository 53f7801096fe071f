"""The register thunks: shipped words vs. the assembler, and what the code does in unicorn.

Each thunk runs at the A20's scratch address on an emulated ARM926 (ARMv5TE, the
oldest core felboot meets: F1C100s) and Cortex-A7, with a scripted MMIO window
recording every register access. The harness checks the calling convention
every time: return through lr in ARM state, callee-saved registers and sp
untouched, no SRAM written outside the uploaded code + block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from felboot.errors import ProtocolError, UsageError
from felboot.soc import GENERIC, SOCS, soc_by_name
from felboot.thunks import SOURCE_DIR, Thunk
from felboot.thunks.memmove import MEMMOVE
from felboot.thunks.registers import (
    DEFAULT_SID_SPIN_LIMIT,
    MAX_SCRATCH_ROOM,
    SID_REGISTERS,
    THUNKS,
    SidParams,
    build_readl,
    build_sid_registers,
    build_writel,
    format_sid,
    max_readl_words,
    max_writel_pairs,
    parse_readl_result,
    parse_sid_result,
    scratch_room,
    sid_bytes,
)
from tests.support import assemble_file

unicorn = pytest.importorskip("unicorn")
arm = pytest.importorskip("unicorn.arm_const")

A20 = soc_by_name("A20")
SCRATCH = 0x1000  # the A20's scratch address
SRAM_SIZE = 0x10000
RETURN = 0xF000  # the lr handed to the thunk: SRAM outside any thunk area
ROM_SP = 0x7000
MMIO_BASE = 0x01C00000
MMIO_SIZE = 0x00100000
H3_SID = 0x01C14000
CPUS = pytest.mark.parametrize(
    "cpu", [arm.UC_CPU_ARM_926, arm.UC_CPU_ARM_CORTEX_A7], ids=["arm926", "cortex-a7"]
)
PRESERVED = [getattr(arm, f"UC_ARM_REG_R{n}") for n in range(4, 12)]

# (kind, address, value) of every MMIO access, in order.
Access = tuple[str, int, int]


def register_value(address: int) -> int:
    """What the fake MMIO window answers at ``address``: distinct per address."""
    return (address * 0x9E3779B1 + 0x5A5A) & 0xFFFFFFFF


@dataclass
class Board:
    """SRAM at 0 and a scripted MMIO window; runs one payload at SCRATCH."""

    cpu: int
    on_read: Callable[[int], int] = register_value
    on_write: Callable[[int, int], None] = lambda address, value: None
    accesses: list[Access] = field(default_factory=list)
    sram_writes: list[tuple[int, int]] = field(default_factory=list)

    def run(self, payload: bytes, max_instructions: int = 200_000) -> bytes:
        uc = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_ARM)
        uc.ctl_set_cpu_model(self.cpu)
        uc.mem_map(0, SRAM_SIZE)
        uc.mem_write(0, bytes([0xEE]) * SRAM_SIZE)
        uc.mmio_map(MMIO_BASE, MMIO_SIZE, self._mmio_read, None, self._mmio_write, None)
        uc.hook_add(unicorn.UC_HOOK_MEM_WRITE, self._sram_write, begin=0, end=SRAM_SIZE - 1)
        uc.mem_write(SCRATCH, payload)
        sentinels = {reg: 0xC0DE0000 + reg for reg in PRESERVED}
        for reg, value in sentinels.items():
            uc.reg_write(reg, value)
        for reg in (arm.UC_ARM_REG_R0, arm.UC_ARM_REG_R1, arm.UC_ARM_REG_R2, arm.UC_ARM_REG_R3):
            uc.reg_write(reg, 0xBAD0BAD0)  # the ROM passes nothing in registers
        uc.reg_write(arm.UC_ARM_REG_SP, ROM_SP)
        uc.reg_write(arm.UC_ARM_REG_LR, RETURN)

        uc.emu_start(SCRATCH, RETURN, count=max_instructions)

        assert uc.reg_read(arm.UC_ARM_REG_PC) == RETURN, "did not return through lr"
        assert uc.reg_read(arm.UC_ARM_REG_CPSR) & (1 << 5) == 0, "returned in Thumb state"
        assert uc.reg_read(arm.UC_ARM_REG_SP) == ROM_SP
        assert {reg: uc.reg_read(reg) for reg in PRESERVED} == sentinels
        for address, size in self.sram_writes:
            assert address >= SCRATCH and address + size <= SCRATCH + len(payload), (
                f"wrote SRAM 0x{address:x} outside its own area"
            )
        return bytes(uc.mem_read(SCRATCH, len(payload)))

    def _mmio_read(self, uc: object, offset: int, size: int, _: object) -> int:
        assert size == 4, "MMIO must be accessed as 32-bit words"
        address = MMIO_BASE + offset
        value = self.on_read(address)
        self.accesses.append(("r", address, value))
        return value

    def _mmio_write(self, uc: object, offset: int, size: int, value: int, _: object) -> None:
        assert size == 4, "MMIO must be accessed as 32-bit words"
        address = MMIO_BASE + offset
        self.accesses.append(("w", address, value))
        self.on_write(address, value)

    def _sram_write(self, uc: object, access: int, address: int, size: int, *_: object) -> None:
        self.sram_writes.append((address, size))


def result_of(board: Board, payload_data: bytes, offset: int, size: int) -> bytes:
    after = board.run(payload_data)
    return after[offset : offset + size]


# Shipped words vs. the assembler ---------------------------------------------------------


@pytest.mark.parametrize("thunk", [*THUNKS.values(), MEMMOVE], ids=lambda t: t.name)
def test_shipped_words_are_what_the_assembler_makes(thunk: Thunk, tmp_path):
    assert assemble_file(thunk.source, tmp_path) == thunk.code


def test_every_register_thunk_has_a_source():
    assert set(THUNKS) <= {path.stem for path in SOURCE_DIR.glob("*.S")}
    for thunk in THUNKS.values():
        text = thunk.source.read_text()
        assert "Calling convention" in text and "bx\tlr" in text


def test_every_thunk_ends_in_bx_lr():
    for thunk in THUNKS.values():
        assert thunk.words[-1] == 0xE12FFF1E


# readl_n -------------------------------------------------------------------------------------


@CPUS
def test_readl_reads_each_address_once_in_order(cpu):
    addresses = [0x01C20C94, 0x01C20000, 0x01C20C94, 0x01C28014]
    payload = build_readl(addresses)
    board = Board(cpu)
    data = result_of(board, payload.data, payload.result_offset, payload.result_size)
    expected = [register_value(a) for a in addresses]
    assert parse_readl_result(data, len(addresses)) == expected
    assert board.accesses == [("r", a, v) for a, v in zip(addresses, expected, strict=True)]


@CPUS
def test_readl_of_nothing_touches_nothing(cpu):
    payload = build_readl([])
    board = Board(cpu)
    after = board.run(payload.data)
    assert board.accesses == [] and after == payload.data


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, MMIO_SIZE // 4 - 1).map(lambda i: MMIO_BASE + 4 * i), max_size=60))
def test_readl_any_list(addresses):
    payload = build_readl(addresses)
    board = Board(arm.UC_CPU_ARM_CORTEX_A7)
    data = result_of(board, payload.data, payload.result_offset, payload.result_size)
    assert parse_readl_result(data, len(addresses)) == [register_value(a) for a in addresses]
    assert [a for _, a, _ in board.accesses] == addresses


def test_readl_largest_batch_fits_the_a20_scratch_area_and_runs():
    room = scratch_room(A20)
    count = max_readl_words(room)
    addresses = [MMIO_BASE + 4 * (i % 1024) for i in range(count)]
    payload = build_readl(addresses)
    assert len(payload.data) <= room < len(build_readl([*addresses, MMIO_BASE]).data)
    board = Board(arm.UC_CPU_ARM_CORTEX_A7)
    data = result_of(board, payload.data, payload.result_offset, payload.result_size)
    assert parse_readl_result(data, count) == [register_value(a) for a in addresses]


def test_readl_refuses_unaligned_and_out_of_range_addresses():
    with pytest.raises(UsageError, match=r"0x01c20c96 is not a multiple of 4"):
        build_readl([0x01C20C94, 0x01C20C96])
    with pytest.raises(UsageError, match=r"0x100000000 is outside the 32-bit"):
        build_readl([1 << 32])


def test_readl_result_of_the_wrong_size_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="6 bytes where 8"):
        parse_readl_result(bytes(6), 2)


# writel_n ------------------------------------------------------------------------------------


@CPUS
def test_writel_stores_each_value_in_order(cpu):
    pairs = [(0x01C20C94, 3), (0x01C20000, 0xFFFFFFFF), (0x01C20C94, 0)]
    payload = build_writel(pairs)
    assert payload.result_size == 0
    board = Board(cpu)
    after = board.run(payload.data)
    assert board.accesses == [("w", a, v) for a, v in pairs]
    assert after == payload.data  # the block is left as uploaded


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, MMIO_SIZE // 4 - 1).map(lambda i: MMIO_BASE + 4 * i),
            st.integers(0, 0xFFFFFFFF),
        ),
        max_size=40,
    )
)
def test_writel_any_pairs(pairs):
    board = Board(arm.UC_CPU_ARM_CORTEX_A7)
    board.run(build_writel(pairs).data)
    assert board.accesses == [("w", a, v) for a, v in pairs]


def test_writel_largest_batch_fits_the_a20_scratch_area():
    room = scratch_room(A20)
    pairs = [(MMIO_BASE, 0)] * max_writel_pairs(room)
    assert len(build_writel(pairs).data) <= room < len(build_writel([*pairs, (0, 0)]).data)


def test_writel_refuses_bad_addresses_and_values():
    with pytest.raises(UsageError, match=r"register address 0x01c20c95"):
        build_writel([(0x01C20C95, 1)])
    with pytest.raises(UsageError, match=r"value 0x100000000 for register 0x01c20c94"):
        build_writel([(0x01C20C94, 1 << 32)])


# sid_registers ---------------------------------------------------------------------------------

PRCTL = H3_SID + 0x40
RDKEY = H3_SID + 0x60
KEYS = {0x0: 0x02C00081, 0x4: 0x5C004C4F, 0x8: 0x4E4B4C52, 0xC: 0x12345678}


class FakeSid:
    """A SID controller: READ start stays set for ``busy_polls`` reads of PRCTL.

    ``busy_polls`` None: the block is dead and never finishes.
    """

    def __init__(self, busy_polls: int | None = 2, dead_from_offset: int | None = None) -> None:
        self.busy_polls = busy_polls
        self.dead_from_offset = dead_from_offset
        self.prctl = 0
        self.latched = -1
        self.remaining = 0

    def read(self, address: int) -> int:
        if address == PRCTL:
            if self.prctl & 2 and self.remaining is not None:
                if self.remaining == 0:
                    self.prctl &= ~2
                else:
                    self.remaining -= 1
            return self.prctl
        assert address == RDKEY, f"unexpected read at 0x{address:08x}"
        return KEYS[self.latched]

    def write(self, address: int, value: int) -> None:
        assert address == PRCTL, f"unexpected write at 0x{address:08x}"
        self.prctl = value
        if value & 2:
            assert (value >> 8) & 0xFF == 0xAC, "READ started without the operation lock"
            self.latched = (value >> 16) & 0x1FF
            dead = self.dead_from_offset is not None and self.latched >= self.dead_from_offset
            self.remaining = None if dead or self.busy_polls is None else self.busy_polls


def sid_board(cpu: int, sid: FakeSid) -> Board:
    return Board(cpu, on_read=sid.read, on_write=sid.write)


def handshake(offset: int, busy_polls: int) -> list[Access]:
    """The documented access sequence for one e-fuse word."""
    select = offset << 16
    start = select | 0xAC << 8 | 2
    return [
        ("w", PRCTL, select),
        ("w", PRCTL, start),
        *[("r", PRCTL, start)] * busy_polls,
        ("r", PRCTL, start & ~2),
        ("w", PRCTL, 0),
        ("r", RDKEY, KEYS[offset]),
    ]


@CPUS
def test_sid_registers_does_the_prctl_handshake_and_returns_rdkey(cpu):
    payload = build_sid_registers(H3_SID, 4)
    sid = FakeSid(busy_polls=3)
    board = sid_board(cpu, sid)
    data = result_of(board, payload.data, payload.result_offset, payload.result_size)
    readout = parse_sid_result(data, 4)
    assert not readout.timed_out
    assert readout.words == tuple(KEYS.values())
    assert board.accesses == [access for o in KEYS for access in handshake(o, 3)]


@CPUS
def test_sid_registers_gives_up_on_a_dead_sid_block(cpu):
    payload = build_sid_registers(H3_SID, 4, spin_limit=50)
    board = sid_board(cpu, FakeSid(busy_polls=None))
    data = result_of(board, payload.data, payload.result_offset, payload.result_size)
    readout = parse_sid_result(data, 4)
    assert readout.timed_out and readout.left == 4 and readout.words == ()
    start = 0xAC << 8 | 2
    assert board.accesses == [
        ("w", PRCTL, 0),
        ("w", PRCTL, start),
        *[("r", PRCTL, start)] * 50,  # exactly spin_limit polls
        ("w", PRCTL, 0),  # lock and op bits cleared before returning
    ]


def test_sid_registers_reports_the_word_that_timed_out():
    payload = build_sid_registers(H3_SID, 4, spin_limit=20)
    board = sid_board(arm.UC_CPU_ARM_CORTEX_A7, FakeSid(busy_polls=1, dead_from_offset=0x8))
    data = result_of(board, payload.data, payload.result_offset, payload.result_size)
    readout = parse_sid_result(data, 4)
    assert readout.left == 2 and readout.words == (KEYS[0x0], KEYS[0x4])
    assert board.accesses[-1] == ("w", PRCTL, 0)
    # the unread slots still hold their e-fuse offsets
    assert data[12:] == bytes.fromhex("08000000 0c000000")


def test_sid_registers_block_layout():
    payload = build_sid_registers(H3_SID, 2, spin_limit=7)
    code = SID_REGISTERS.code
    assert payload.data[: len(code)] == code
    assert payload.data[len(code) :] == bytes.fromhex(
        "0040c101 07000000 02000000 00000000 04000000"
    )
    assert payload.result_offset == len(code) + 8 and payload.result_size == 12


def test_sid_registers_refuses_bad_parameters():
    with pytest.raises(UsageError, match="SID base 0x01c14002"):
        build_sid_registers(0x01C14002)
    with pytest.raises(UsageError, match="cannot read 129 SID words"):
        build_sid_registers(H3_SID, 129)
    with pytest.raises(UsageError, match="spin limit 0"):
        build_sid_registers(H3_SID, spin_limit=0)
    block = build_sid_registers(H3_SID).data[len(SID_REGISTERS.code) :]
    assert SidParams.parse(block).spin_limit == DEFAULT_SID_SPIN_LIMIT


def test_sid_result_that_cannot_come_from_the_thunk_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="5 of 4 words unread"):
        parse_sid_result(bytes.fromhex("05000000") + bytes(16), 4)
    with pytest.raises(ProtocolError, match="8 bytes where 20"):
        parse_sid_result(bytes(8), 4)


def test_sid_bytes_and_text_follow_sunxi_fel():
    sid = sid_bytes(list(KEYS.values()))
    assert sid[:4] == bytes.fromhex("8100c002")  # little-endian words
    assert format_sid(sid) == "02c000815c004c4f4e4b4c5212345678"


# Scratch room ------------------------------------------------------------------------------------


def test_scratch_room_stops_below_the_rom_state():
    assert scratch_room(A20) == MAX_SCRATCH_ROOM  # 0x1000..0x1c00: the IRQ stack starts there
    assert scratch_room(soc_by_name("A31")) == 0x800  # ROM state from 0x1800
    # scratch at the bottom of the IRQ stack buffer: the 1 KiB the table leaves free
    assert scratch_room(soc_by_name("H616")) == 0x400


@pytest.mark.parametrize("soc", [*SOCS, GENERIC], ids=lambda s: s.name)
def test_scratch_room_never_overlaps_rom_state_and_holds_every_thunk(soc):
    room = scratch_room(soc)
    for start, end in soc.rom_state_ranges:
        assert not (soc.scratch_addr < end and start < soc.scratch_addr + room)
    if room:
        assert len(build_sid_registers(0x01C14000).data) <= room
        assert max_readl_words(room) >= 4 and max_writel_pairs(room) >= 1
