"""Register access thunks: readl_n, writel_n and the register-based SID read.

Byte-wise FEL READ/WRITE of MMIO is unreliable, so 32-bit register accesses
run on the device: the host uploads code + parameter block to the SoC's
scratch address, EXECs it, and FEL-READs the results back. The parameter
blocks are declared here with construct; their layout is the one documented
in the header comment of each ``.S`` source.

Pure: no I/O, no transport.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import construct as cs

from felboot.errors import ProtocolError, UsageError
from felboot.soc import SocInfo
from felboot.thunks import Thunk, ThunkPayload

WORD = 4
U32_LIMIT = 1 << 32

# Assembled from readl_n.S (arm-none-eabi-as, objcopy -O binary).
READL_N = Thunk(
    "readl_n",
    (
        0xE28F001C,  # 00: adr   r0, params
        0xE4901004,  # 04: ldr   r1, [r0], #4
        0xE2511001,  # 08: next: subs r1, r1, #1
        0x4A000003,  # 0c: bmi   done
        0xE5902000,  # 10: ldr   r2, [r0]
        0xE5923000,  # 14: ldr   r3, [r2]
        0xE4803004,  # 18: str   r3, [r0], #4
        0xEAFFFFF9,  # 1c: b     next
        0xE12FFF1E,  # 20: done: bx lr
    ),
)

# Assembled from writel_n.S.
WRITEL_N = Thunk(
    "writel_n",
    (
        0xE28F0018,  # 00: adr   r0, params
        0xE4901004,  # 04: ldr   r1, [r0], #4
        0xE2511001,  # 08: next: subs r1, r1, #1
        0x4A000002,  # 0c: bmi   done
        0xE8B0000C,  # 10: ldmia r0!, {r2, r3}
        0xE5823000,  # 14: str   r3, [r2]
        0xEAFFFFFA,  # 18: b     next
        0xE12FFF1E,  # 1c: done: bx lr
    ),
)

# Assembled from sid_registers.S.
SID_REGISTERS = Thunk(
    "sid_registers",
    (
        0xE28F1070,  # 00: adr   r1, params
        0xE5910000,  # 04: ldr   r0, [r1]
        0xE5912008,  # 08: ldr   r2, [r1, #8]
        0xE281100C,  # 0c: add   r1, r1, #12
        0xE3520000,  # 10: next_word: cmp r2, #0
        0x0A000014,  # 14: beq   finish
        0xE5913000,  # 18: ldr   r3, [r1]
        0xE1A03803,  # 1c: lsl   r3, r3, #16
        0xE5803040,  # 20: str   r3, [r0, #SID_PRCTL]
        0xE3833B2B,  # 24: orr   r3, r3, #SID_OP_LOCK
        0xE3833002,  # 28: orr   r3, r3, #SID_READ_START
        0xE5803040,  # 2c: str   r3, [r0, #SID_PRCTL]
        0xE59FC044,  # 30: ldr   r12, spin_limit
        0xE5903040,  # 34: poll: ldr r3, [r0, #SID_PRCTL]
        0xE3130002,  # 38: tst   r3, #SID_READ_START
        0x0A000002,  # 3c: beq   fetch
        0xE25CC001,  # 40: subs  r12, r12, #1
        0x1AFFFFFA,  # 44: bne   poll
        0xEA000005,  # 48: b     give_up
        0xE3A03000,  # 4c: fetch: mov r3, #0
        0xE5803040,  # 50: str   r3, [r0, #SID_PRCTL]
        0xE5903060,  # 54: ldr   r3, [r0, #SID_RDKEY]
        0xE4813004,  # 58: str   r3, [r1], #4
        0xE2422001,  # 5c: sub   r2, r2, #1
        0xEAFFFFEA,  # 60: b     next_word
        0xE3A03000,  # 64: give_up: mov r3, #0
        0xE5803040,  # 68: str   r3, [r0, #SID_PRCTL]
        0xE28F300C,  # 6c: finish: adr r3, left
        0xE5832000,  # 70: str   r2, [r3]
        0xE12FFF1E,  # 74: bx    lr
    ),
)

THUNKS: dict[str, Thunk] = {t.name: t for t in (READL_N, WRITEL_N, SID_REGISTERS)}

# Parameter blocks (see the .S headers) ------------------------------------------

ReadlParams = cs.Struct(
    "count" / cs.Rebuild(cs.Int32ul, cs.len_(cs.this.slots)),
    "slots" / cs.Array(cs.this.count, cs.Int32ul),  # addresses in, values out
)

WritelParams = cs.Struct(
    "count" / cs.Rebuild(cs.Int32ul, cs.len_(cs.this.pairs)),
    "pairs" / cs.Array(cs.this.count, cs.Struct("address" / cs.Int32ul, "value" / cs.Int32ul)),
)

SidParams = cs.Struct(
    "sid_base" / cs.Int32ul,
    "spin_limit" / cs.Int32ul,
    "left" / cs.Rebuild(cs.Int32ul, cs.len_(cs.this.slots)),  # out: words not read
    "slots" / cs.Array(cs.this.left, cs.Int32ul),  # e-fuse offsets in, words out
)
SID_RESULT_OFFSET = 8  # from the block's start: `left`, then the slots

# The part of SidParams the host reads back.
SidResult = cs.Struct("left" / cs.Int32ul, "words" / cs.GreedyRange(cs.Int32ul))

# SID controller registers, from the SID base (H3 user manual, SID chapter).
SID_PRCTL = 0x40
SID_RDKEY = 0x60
SID_OP_LOCK = 0xAC
SID_READ_START = 1 << 1
SID_PRCTL_OFFSETS = 0x200  # PRCTL's offset field (bits 16-24) reaches e-fuse bytes 0-0x1ff

# An e-fuse read takes microseconds. A million polls take well under a second
# even with the CPU on the 24 MHz oscillator, inside any USB time-out.
DEFAULT_SID_SPIN_LIMIT = 0x100000

# The 16-byte SID as felboot returns it: four words, little-endian, in order.
SID_WORDS = 4
SidBytes = cs.Array(SID_WORDS, cs.Int32ul)

# Thunk code + data never exceeds this, even where the ROM's state lies further
# away: 3 KiB is what the A20 has between its scratch address (0x1000) and its
# IRQ stack (0x1C00), and sunxi-tools' thunks have lived there on every SoC.
MAX_SCRATCH_ROOM = 0xC00


# Scratch area -------------------------------------------------------------------


def scratch_room(soc: SocInfo) -> int:
    """Bytes usable at soc.scratch_addr for code + data: 0 when it lies in ROM state."""
    start = soc.scratch_addr
    end = start + MAX_SCRATCH_ROOM
    for rom_start, rom_end in soc.rom_state_ranges:
        if rom_start <= start < rom_end:
            return 0
        if start < rom_start < end:
            end = rom_start
    return end - start


def max_readl_words(room: int) -> int:
    """How many words one readl_n upload can read within ``room`` bytes."""
    fixed = len(READL_N.code) + WORD  # code + count
    return max(0, (room - fixed) // WORD)


def max_writel_pairs(room: int) -> int:
    """How many (address, value) pairs one writel_n upload can store within ``room`` bytes."""
    fixed = len(WRITEL_N.code) + WORD  # code + count
    return max(0, (room - fixed) // (2 * WORD))


# Builders -------------------------------------------------------------------------


def _check_word_address(address: int, what: str) -> None:
    if not 0 <= address < U32_LIMIT:
        raise UsageError(f"{what} 0x{address:x} is outside the 32-bit address space")
    if address % WORD:
        raise UsageError(
            f"{what} 0x{address:08x} is not a multiple of 4: registers are accessed as "
            "aligned 32-bit words; round the address down"
        )


def build_readl(addresses: Sequence[int]) -> ThunkPayload:
    """readl_n + its block: read one word from each of ``addresses``."""
    for address in addresses:
        _check_word_address(address, "register address")
    code = READL_N.code
    block = ReadlParams.build(dict(slots=list(addresses)))
    return ThunkPayload(code + block, len(code) + WORD, WORD * len(addresses))


def parse_readl_result(data: bytes, count: int) -> list[int]:
    """The words readl_n left in its slots (the ``result_size`` bytes read back)."""
    if len(data) != WORD * count:
        raise ProtocolError(
            f"readl_n result is {len(data)} bytes where {WORD * count} were expected"
        )
    return list(cs.Array(count, cs.Int32ul).parse(data))


def build_writel(pairs: Sequence[tuple[int, int]]) -> ThunkPayload:
    """writel_n + its block: store each value at its address, first to last."""
    for address, value in pairs:
        _check_word_address(address, "register address")
        if not 0 <= value < U32_LIMIT:
            raise UsageError(f"value 0x{value:x} for register 0x{address:08x} does not fit 32 bits")
    code = WRITEL_N.code
    block = WritelParams.build(dict(pairs=[dict(address=a, value=v) for a, v in pairs]))
    return ThunkPayload(code + block, len(code), 0)


def build_sid_registers(
    sid_base: int,
    word_count: int = SID_WORDS,
    spin_limit: int = DEFAULT_SID_SPIN_LIMIT,
) -> ThunkPayload:
    """sid_registers + its block: read e-fuse words 0, 4, 8 ... through SID_PRCTL/RDKEY.

    The results come back as ``SidResult``: ``left`` (0 = all read) and the words.
    """
    _check_word_address(sid_base, "SID base")
    if not 0 <= word_count <= SID_PRCTL_OFFSETS // WORD:
        raise UsageError(
            f"cannot read {word_count} SID words: SID_PRCTL selects e-fuse bytes 0-0x1ff only"
        )
    if not 1 <= spin_limit < U32_LIMIT:
        raise UsageError(f"SID spin limit {spin_limit} must be between 1 and 0xffffffff")
    code = SID_REGISTERS.code
    offsets = [WORD * i for i in range(word_count)]
    block = SidParams.build(dict(sid_base=sid_base, spin_limit=spin_limit, slots=offsets))
    return ThunkPayload(code + block, len(code) + SID_RESULT_OFFSET, WORD * (1 + word_count))


@dataclass(frozen=True)
class SidReadout:
    """What sid_registers reports: the words it read, and how many it did not."""

    words: tuple[int, ...]  # only the words actually read
    left: int  # 0: all read; else word len(words) timed out

    @property
    def timed_out(self) -> bool:
        return self.left != 0


def parse_sid_result(data: bytes, word_count: int) -> SidReadout:
    """Decode the ``result_size`` bytes read back after sid_registers ran."""
    if len(data) != WORD * (1 + word_count):
        raise ProtocolError(
            f"sid_registers result is {len(data)} bytes where {WORD * (1 + word_count)} "
            "were expected"
        )
    result = SidResult.parse(data)
    if result.left > word_count:
        raise ProtocolError(
            f"sid_registers reports {result.left} of {word_count} words unread: "
            "the thunk did not run as uploaded"
        )
    done = word_count - result.left
    return SidReadout(tuple(result.words[:done]), result.left)


def sid_bytes(words: Sequence[int]) -> bytes:
    """The 16-byte SID from its four words (little-endian, first word first)."""
    return bytes(SidBytes.build(list(words)))


def format_sid(sid: bytes) -> str:
    """32 hex digits, each word as %08x in order, the way sunxi-fel prints the SID."""
    return "".join(f"{word:08x}" for word in SidBytes.parse(sid))
