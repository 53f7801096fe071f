"""The memmove thunk: copy bytes inside the device's memory (sunxi-fel's `memmove`).

The host uploads code + parameter block to the scratch address and EXECs it;
nothing comes back. The block's layout is the one in memmove.S's header.

Pure: no I/O, no transport.
"""

from __future__ import annotations

import construct as cs

from felboot.errors import UsageError
from felboot.thunks import Thunk, ThunkPayload

# Assembled from memmove.S (arm-none-eabi-as, objcopy -O binary).
MEMMOVE = Thunk(
    "memmove",
    (
        0xE28FC0C0,  # 00: adr   r12, params
        0xE89C0007,  # 04: ldmia r12, {r0, r1, r2}
        0xE1500001,  # 08: cmp   r0, r1
        0x012FFF1E,  # 0c: bxeq  lr
        0x9A000002,  # 10: bls   up
        0xE0403001,  # 14: sub   r3, r0, r1
        0xE1530002,  # 18: cmp   r3, r2
        0x3A000013,  # 1c: bcc   down
        0xE0203001,  # 20: up: eor   r3, r0, r1
        0xE3130003,  # 24: tst   r3, #3
        0x1A00000B,  # 28: bne   up_bytes
        0xE3110003,  # 2c: up_head: tst   r1, #3
        0x0A000004,  # 30: beq   up_words
        0xE2522001,  # 34: subs  r2, r2, #1
        0x312FFF1E,  # 38: bxcc  lr
        0xE4D13001,  # 3c: ldrb  r3, [r1], #1
        0xE4C03001,  # 40: strb  r3, [r0], #1
        0xEAFFFFF8,  # 44: b     up_head
        0xE2522004,  # 48: up_words: subs  r2, r2, #4
        0x24913004,  # 4c: ldrcs r3, [r1], #4
        0x24803004,  # 50: strcs r3, [r0], #4
        0x2AFFFFFB,  # 54: bcs   up_words
        0xE2822004,  # 58: add   r2, r2, #4
        0xE2522001,  # 5c: up_bytes: subs  r2, r2, #1
        0x312FFF1E,  # 60: bxcc  lr
        0xE4D13001,  # 64: ldrb  r3, [r1], #1
        0xE4C03001,  # 68: strb  r3, [r0], #1
        0xEAFFFFFA,  # 6c: b     up_bytes
        0xE0800002,  # 70: down: add   r0, r0, r2
        0xE0811002,  # 74: add   r1, r1, r2
        0xE0203001,  # 78: eor   r3, r0, r1
        0xE3130003,  # 7c: tst   r3, #3
        0x1A00000B,  # 80: bne   down_bytes
        0xE3110003,  # 84: down_head: tst   r1, #3
        0x0A000004,  # 88: beq   down_words
        0xE2522001,  # 8c: subs  r2, r2, #1
        0x312FFF1E,  # 90: bxcc  lr
        0xE5713001,  # 94: ldrb  r3, [r1, #-1]!
        0xE5603001,  # 98: strb  r3, [r0, #-1]!
        0xEAFFFFF8,  # 9c: b     down_head
        0xE2522004,  # a0: down_words: subs  r2, r2, #4
        0x25313004,  # a4: ldrcs r3, [r1, #-4]!
        0x25203004,  # a8: strcs r3, [r0, #-4]!
        0x2AFFFFFB,  # ac: bcs   down_words
        0xE2822004,  # b0: add   r2, r2, #4
        0xE2522001,  # b4: down_bytes: subs  r2, r2, #1
        0x312FFF1E,  # b8: bxcc  lr
        0xE5713001,  # bc: ldrb  r3, [r1, #-1]!
        0xE5603001,  # c0: strb  r3, [r0, #-1]!
        0xEAFFFFFA,  # c4: b     down_bytes
    ),
)

MemmoveParams = cs.Struct("dst" / cs.Int32ul, "src" / cs.Int32ul, "size" / cs.Int32ul)

ADDRESS_SPACE = 1 << 32


def build_memmove(dst: int, src: int, size: int) -> ThunkPayload:
    """memmove + its block: copy ``size`` bytes from ``src`` to ``dst`` (overlap allowed)."""
    for what, address in (("destination", dst), ("source", src)):
        if address < 0 or size < 0 or address + size > ADDRESS_SPACE:
            raise UsageError(
                f"memmove {what} 0x{address:x} + 0x{size:x} bytes runs past 4 GiB: "
                "the boot ROM addresses 32 bits; check the address and size"
            )
    code = MEMMOVE.code
    block = MemmoveParams.build(dict(dst=dst, src=src, size=size))
    return ThunkPayload(code + block, len(code), 0)
