"""The device model's CPU: EXEC, the SPL's effect, leaving FEL, and how code crashes a ROM.

Test programs are assembled with Debian's arm-none-eabi-as (the tests skip
without it) and uploaded through felboot.fel.FelDevice like any client would.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import construct as cs
import pytest

from felboot.errors import DeviceGone, DeviceTimeout
from felboot.fel import FelDevice
from felboot.images.spl import CHECKSUM_STAMP, SplHeader, spl_checksum
from felboot.sim import SimTransport, open_sim
from felboot.sim.cpu import INSTRUCTION_LIMIT

AS = shutil.which("arm-none-eabi-as")
OBJCOPY = shutil.which("arm-none-eabi-objcopy")
pytestmark = pytest.mark.skipif(
    AS is None or OBJCOPY is None, reason="needs Debian's binutils-arm-none-eabi"
)
Word = cs.Int32ul


@functools.cache
def assemble(source: str) -> bytes:
    """Raw ARM code for ``source`` (placed wherever it is uploaded: use PC-relative data)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, obj, binary = Path(tmp, "t.S"), Path(tmp, "t.o"), Path(tmp, "t.bin")
        src.write_text(".syntax unified\n.arm\n.text\n" + source + "\n")
        subprocess.run([AS, "-march=armv7-a", "-o", obj, src], check=True)  # type: ignore[list-item]
        subprocess.run([OBJCOPY, "-O", "binary", obj, binary], check=True)  # type: ignore[list-item]
        return binary.read_bytes()


def board(options: str = "") -> tuple[FelDevice, SimTransport]:
    transport = open_sim(options)
    return FelDevice(transport), transport


def run(device: FelDevice, source: str, address: int | None = None) -> None:
    soc = device.soc
    assert soc is not None
    target = soc.scratch_addr if address is None else address
    device.write(target, assemble(source))
    device.execute(target)
    # The status came before the code ran; whether it returned shows at the next request.
    device.wait_returned()


def kinds(transport: SimTransport) -> list[str]:
    return [event.kind for event in transport.board.events]


# A synthetic sunxi SPL and the thunk that calls it ------------------------------------------

SPL_LENGTH = 0x200


def synthetic_spl(version: int = 3, magic: bytes = b"eGON.BT0") -> bytes:
    """A header-only SPL: the model emulates an SPL's effect, never its code."""
    header = SplHeader.build(
        dict(
            branch=0xEA000016,  # b 0x60: over the header
            magic=magic,
            checksum=CHECKSUM_STAMP,
            length=SPL_LENGTH,
            signature=b"SPL",
            version=version,
            fel_script_address=0,
            fel_uenv_length=0,
            dt_name_offset=0,
            dram_size=0,
            boot_media=0,
            string_pool=bytes(52),
        )
    )
    image = bytearray(header + bytes(SPL_LENGTH - len(header)))
    image[12:16] = Word.build(spl_checksum(bytes(image), SPL_LENGTH))
    return bytes(image)


def spl_thunk(spl_addr: int, mmu_off: bool = True, magic: bool = True) -> str:
    """Patch eGON.BT0 to eGON.FEL, turn MMU/I-cache/branch prediction off, call the SPL."""
    return f"""
        push {{r4-r11, lr}}
        ldr r0, spl
        {"ldr r1, fel" if magic else "nop"}
        {"str r1, [r0, #8]" if magic else "nop"}
        mrc p15, 0, r2, c1, c0, 0
        {"bic r2, r2, #1" if mmu_off else "nop"}
        {"bic r2, r2, #0x1800" if mmu_off else "nop"}
        mcr p15, 0, r2, c1, c0, 0
        blx r0
        pop {{r4-r11, pc}}
    spl: .word {spl_addr:#x}
    fel: .ascii ".FEL"
    """


def boot_spl(device: FelDevice, **thunk: bool) -> None:
    soc = device.soc
    assert soc is not None
    device.write(soc.spl_addr, synthetic_spl())
    run(device, spl_thunk(soc.spl_addr, **thunk))


# EXEC basics ------------------------------------------------------------------------------------


def test_exec_returns_and_keeps_the_rom_alive() -> None:
    device, transport = board()
    run(device, "bx lr")
    run(device, "push {r4-r11, lr}\n mov r4, #1\n add sp, sp, #0\n pop {r4-r11, pc}")
    assert not transport.board.stopped
    assert device.read(0x2000, 4) == bytes(4)  # still answering


def test_code_results_land_in_sram() -> None:
    device, _ = board()
    run(device, "ldr r0, =0x2000\n mov r1, #42\n str r1, [r0]\n bx lr\n .ltorg")
    assert Word.parse(device.read(0x2000, 4)) == 42


def test_rom_state_changed_by_exec_hangs() -> None:
    device, transport = board()
    with pytest.raises(DeviceTimeout, match="did not return"):
        run(device, "ldr r0, =0x7c10\n str r0, [r0]\n bx lr\n .ltorg")
    assert "state changed at 0x00007c10" in transport.board.hang_reason


def test_free_stack_below_sp_may_be_used() -> None:
    device, transport = board()
    run(device, "push {r0-r12, lr}\n sub sp, #256\n str r0, [sp]\n add sp, #256\n pop {r0-r12, pc}")
    assert not transport.board.stopped


def test_code_that_never_returns_hangs_quickly() -> None:
    device, transport = board()
    started = time.monotonic()
    with pytest.raises(DeviceTimeout, match="did not return"):
        run(device, "loop: b loop")
    assert time.monotonic() - started < 1.0
    assert f"{INSTRUCTION_LIMIT:,} instructions" in transport.board.hang_reason


def test_clobbered_callee_saved_registers_do_not_hurt_the_rom() -> None:
    # sunxi-fel's SPL thunk returns with r4-r8 changed, and works on real boards.
    device, transport = board()
    run(device, "mov r4, #0\n mov r5, #0\n mov r8, #0\n mov r11, #0\n bx lr")
    assert not transport.board.stopped


def test_lost_stack_pointer_hangs() -> None:
    device, transport = board()
    with pytest.raises(DeviceTimeout):
        run(device, "push {r0}\n bx lr")
    assert "sp 0x" in transport.board.hang_reason


def test_cpu_access_to_dram_before_spl_hangs() -> None:
    device, transport = board()
    with pytest.raises(DeviceTimeout):
        run(device, "ldr r0, =0x40000000\n ldr r0, [r0]\n bx lr\n .ltorg")
    assert "read DRAM at 0x40000000" in transport.board.hang_reason


def test_cpu_access_to_unmapped_memory_hangs() -> None:
    device, transport = board()
    with pytest.raises(DeviceTimeout):
        run(device, "ldr r0, =0x00f00000\n str r0, [r0]\n bx lr\n .ltorg")
    assert "wrote unmapped address 0x00f00000" in transport.board.hang_reason


def test_exceptions_hang() -> None:
    device, transport = board()
    with pytest.raises(DeviceTimeout):
        run(device, "svc #0\n bx lr")
    assert "svc exception" in transport.board.hang_reason


COPY_WORD = """
    ldr r0, ={source:#x}
    ldr r1, [r0]
    ldr r0, ={target:#x}
    str r1, [r0]
    bx lr
    .ltorg
"""


# cp15 as the ROM leaves it ---------------------------------------------------------------------

READ_CP15 = """
    ldr r0, =0x2000
    mrc p15, 0, r1, c1, c0, 0   @ SCTLR
    mrc p15, 0, r2, c2, c0, 0   @ TTBR0
    mrc p15, 0, r3, c2, c0, 2   @ TTBCR
    mrc p15, 0, r12, c3, c0, 0  @ DACR
    stmia r0, {r1, r2, r3, r12}
    bx lr
    .ltorg
"""


def test_a20_rom_runs_with_the_mmu_on() -> None:
    device, _ = board()
    run(device, READ_CP15)
    sctlr, ttbr0, ttbcr, dacr = cs.Array(4, Word).parse(device.read(0x2000, 16))
    assert sctlr & 0x1801 == 0x1801  # MMU, I-cache, branch prediction
    assert sctlr & ~(0x3841) == 0x00C50038  # what sunxi-fel checks
    assert (ttbr0, ttbcr, dacr) == (0x8000, 0, 0x55555555)
    table = cs.Array(4096, Word).parse(device.read(ttbr0, 16 * 1024))
    assert all(entry >> 20 == i and entry & 0b11 == 0b10 for i, entry in enumerate(table))


def test_the_mmu_really_translates() -> None:
    device, transport = board()
    # Remap the 1 MiB section at 0x40000000 onto SRAM: DRAM is not up, SRAM answers.
    device.write(0x8000 + 0x400 * 4, Word.build(0x00000DE2))
    transport.board.write_memory(0x3000, b"SRAM")
    run(device, COPY_WORD.format(source=0x40003000, target=0x2000))
    assert device.read(0x2000, 4) == b"SRAM"


def test_h3_rom_leaves_the_mmu_off() -> None:
    device, _ = board("soc=h3")
    run(device, READ_CP15)
    assert Word.parse(device.read(0x2000, 4)) & 0x1001 == 0


def test_smc_probe_word_says_secure_already() -> None:
    device, _ = board("soc=h3")
    assert Word.parse(device.read(0x40004, 4)) != 0


# The SPL ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("soc", ["a20", "h3", "a64", "h5"])
def test_spl_brings_dram_up_and_reports_its_size(soc: str) -> None:
    device, transport = board(f"soc={soc},dram=512M")
    boot_spl(device)
    spl_addr = device.soc.spl_addr  # type: ignore[union-attr]
    assert transport.board.dram_ready
    assert kinds(transport) == ["spl"]
    assert transport.board.events[0].value == 512 << 20
    header = SplHeader.parse(device.read(spl_addr, 0x60))
    assert header.magic == b"eGON.FEL"
    assert header.dram_size == 512
    device.write(0x40000000, b"DRAM works")
    assert device.read(0x40000000, 10) == b"DRAM works"


def test_older_spl_header_gets_no_dram_size() -> None:
    device, transport = board()
    device.write(0, synthetic_spl(version=2))
    run(device, spl_thunk(0))
    assert transport.board.dram_ready
    assert SplHeader.parse(device.read(0, 0x60)).dram_size == 0


def test_dram_aliases_beyond_its_size_after_spl() -> None:
    device, _ = board("dram=256M")
    boot_spl(device)
    device.write(0x40000000, b"first")
    assert device.read(0x50000000, 5) == b"first"
    # The CPU sees the same aliasing.
    run(device, COPY_WORD.format(source=0x60000000, target=0x2000))
    assert device.read(0x2000, 4) == b"firs"


def test_spl_still_egon_bt0_never_returns() -> None:
    device, transport = board()
    device.write(0, synthetic_spl())
    with pytest.raises(DeviceTimeout, match="did not return"):
        run(device, spl_thunk(0, magic=False))
    assert "eGON.BT0" in transport.board.hang_reason
    assert not transport.board.dram_ready


def test_spl_with_the_mmu_still_on_crashes() -> None:
    device, transport = board()
    device.write(0, synthetic_spl())
    with pytest.raises(DeviceTimeout):
        run(device, spl_thunk(0, mmu_off=False))
    assert "MMU or I-cache still on" in transport.board.hang_reason


def test_spl_with_bad_checksum_still_runs() -> None:
    device, transport = board()
    image = bytearray(synthetic_spl())
    image[12] ^= 0xFF
    device.write(0, bytes(image))
    run(device, spl_thunk(0))
    assert transport.board.dram_ready


def test_spl_clobbering_r4_to_r12_returns_to_fel_like_sunxi_fels_thunk_needs() -> None:
    device, transport = board()
    device.write(0, synthetic_spl())
    thunk = (
        spl_thunk(0)
        .replace("push {r4-r11, lr}", "push {lr}")
        .replace("pop {r4-r11, pc}", "pop {pc}")
    )
    run(device, thunk)  # the SPL trashed r4-r12; the ROM, like sunxi-fel's thunk, does not care
    assert transport.board.dram_ready and not transport.board.stopped


# Leaving FEL --------------------------------------------------------------------------------------


def test_jump_into_dram_starts_u_boot_and_the_device_leaves() -> None:
    device, transport = board()
    boot_spl(device)
    device.write(0x4A000000, bytes.fromhex("feffffea"))  # b .
    with pytest.raises(DeviceGone, match="left FEL"):
        run(device, "ldr r0, =0x4a000000\n bx r0\n .ltorg")
    assert transport.board.left_fel
    assert transport.board.events[-1].kind == "uboot_started"
    assert transport.board.events[-1].address == 0x4A000000
    with pytest.raises(DeviceGone, match="uboot started at 0x4a000000"):
        device.read(0x2000, 4)


def test_exec_of_dram_directly_leaves_fel_too() -> None:
    device, transport = board()
    boot_spl(device)
    device.execute(0x4A000000)  # the status comes first, as on a real ROM
    assert kinds(transport)[-1] == "uboot_started"
    with pytest.raises(DeviceGone, match=r"^the code at 0x4a000000 did not return to FEL: .*left"):
        device.wait_returned()


def test_exec_of_dram_before_spl_hangs() -> None:
    device, transport = board()
    device.execute(0x4A000000)
    with pytest.raises(DeviceTimeout, match=r"^the code at 0x4a000000 did not return to FEL"):
        device.wait_returned()
    assert "executed DRAM at 0x4a000000" in transport.board.hang_reason


RMR_RESET = """
    ldr r0, rvbar_reg
    ldr r1, entry
    str r1, [r0]
    dsb sy
    isb sy
    mrc p15, 0, r0, c12, c0, 2
    orr r0, r0, #3
    mcr p15, 0, r0, c12, c0, 2
    isb sy
loop:
    wfi
    b loop
rvbar_reg: .word 0x017000a0
entry: .word 0x44000
"""


@pytest.mark.parametrize("soc", ["a64", "h5"])
def test_rmr_and_wfi_reset_into_aarch64_at_rvbar(soc: str) -> None:
    device, transport = board(f"soc={soc}")
    with pytest.raises(DeviceGone, match="aarch64 reset at 0x00044000"):
        run(device, RMR_RESET)
    event = transport.board.events[-1]
    assert (event.kind, event.address) == ("aarch64_reset", 0x44000)


def test_rmr_without_wfi_does_nothing_yet() -> None:
    device, transport = board("soc=a64")
    run(device, "mrc p15, 0, r0, c12, c0, 2\n orr r0, r0, #3\n mcr p15, 0, r0, c12, c0, 2\n bx lr")
    assert not transport.board.stopped
    # The request stays pending: the next WFI takes the reset.
    with pytest.raises(DeviceGone):
        run(device, "wfi\n bx lr")
    assert kinds(transport) == ["aarch64_reset"]


def test_wfi_without_reset_request_sleeps_forever() -> None:
    device, transport = board("soc=a64")
    with pytest.raises(DeviceTimeout):
        run(device, "wfi\n bx lr")
    assert "WFI" in transport.board.hang_reason


def test_rmr_does_not_exist_on_the_a20() -> None:
    device, transport = board()
    with pytest.raises(DeviceTimeout):
        run(device, "mcr p15, 0, r0, c12, c0, 2\n bx lr")
    assert "faulted" in transport.board.hang_reason


def test_rvbar_is_a_plain_register() -> None:
    device, _ = board("soc=a64")
    run(device, "ldr r0, =0x017000a0\n ldr r1, =0x4a000000\n str r1, [r0]\n bx lr\n .ltorg")
    run(device, COPY_WORD.format(source=0x017000A0, target=0x11100))
    assert Word.parse(device.read(0x11100, 4)) == 0x4A000000


def test_watchdog_from_code_resets_the_board() -> None:
    device, transport = board("soc=h3")
    with pytest.raises(DeviceGone):
        run(device, "ldr r0, =0x01c20cb8\n mov r1, #1\n str r1, [r0]\n b .\n .ltorg")
    assert kinds(transport) == ["watchdog_reset"]


# SID through code ---------------------------------------------------------------------------

READ_SID_DIRECT = """
    ldr r0, =0x01c23800
    ldmia r0, {r1, r2, r3, r12}
    ldr r0, =0x2000
    stmia r0, {r1, r2, r3, r12}
    bx lr
    .ltorg
"""

READ_SID_REGISTERS = """
    push {r4-r6, lr}
    ldr r0, =0x01c14000        @ SID base
    ldr r5, =0x2000            @ results
    mov r1, #0                 @ e-fuse offset
next:
    lsl r2, r1, #16
    orr r2, r2, #0xac00        @ op lock
    orr r2, r2, #2             @ start the read
    str r2, [r0, #0x40]        @ SID_PRCTL
wait:
    ldr r3, [r0, #0x40]
    tst r3, #2
    bne wait
    mov r4, #0
    str r4, [r0, #0x40]
    ldr r3, [r0, #0x60]        @ SID_RDKEY
    str r3, [r5], #4
    add r1, r1, #4
    cmp r1, #16
    bne next
    pop {r4-r6, pc}
    .ltorg
"""


def test_sid_words_readable_by_code() -> None:
    device, _ = board("sid=0123456789abcdef0011223344556677")
    run(device, READ_SID_DIRECT)
    words = cs.Array(4, Word).parse(device.read(0x2000, 16))
    assert words == [0x01234567, 0x89ABCDEF, 0x00112233, 0x44556677]


def test_h3_register_method_reads_the_sid_and_clears_the_erratum() -> None:
    device, _ = board("soc=h3,sid=02c00081aabbccdd0011223344556677")
    assert device.read(0x01C14200, 4) == bytes(4)  # memory-mapped first word: garbled
    run(device, READ_SID_REGISTERS)
    words = cs.Array(4, Word).parse(device.read(0x2000, 16))
    assert words == [0x02C00081, 0xAABBCCDD, 0x00112233, 0x44556677]
    assert Word.parse(device.read(0x01C14200, 4)) == 0x02C00081


def test_thumb_code_runs_too() -> None:
    device, transport = board("soc=a64")
    code = assemble(
        ".thumb\n"
        "mrc p15, 0, r0, c12, c0, 2\n"  # T32 encoding of the RMR read
        "ldr r1, =0x11100\n str r0, [r1]\n bx lr\n .ltorg"
    )
    device.write(0x11200, assemble("add r0, pc, #1\n bx r0\n") + code)
    device.execute(0x11200)
    assert not transport.board.stopped
    assert Word.parse(device.read(0x11100, 4)) == 0
