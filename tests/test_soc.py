"""The SoC table against sunxi-tools: soc_info.c (d7bbd172) field by field, and sunxi-fel."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import NamedTuple

import construct as cs
import pytest

from felboot.soc import SOCS, KiB, SocInfo, soc_by_id, soc_by_name, soc_label

SUNXI_FEL = Path("/usr/bin/sunxi-fel")


class Row(NamedTuple):
    """One soc_info_table record of sunxi-tools' soc_info.c at d7bbd172, as written there."""

    soc_id: int
    name: str
    spl_addr: int
    scratch_addr: int
    thunk: tuple[int, int]  # thunk_addr, thunk_size
    sram_size: int
    sid: tuple[int | None, int]  # sid_base, sid_offset
    rvbar: tuple[int | None, int | None, int | None]  # rvbar_reg, rvbar_reg_alt, ver_reg
    mmu_tt_addr: int | None
    smc_probe: int | None  # needs_smc_workaround_if_zero_word_at_addr
    watchdog: tuple[int, int]  # reg_mode, reg_mode_value
    swap: tuple[tuple[int, int, int], ...]  # buf1, buf2, size
    flags: frozenset[str] = frozenset()  # needs_l2en, icache_fix, sid_fix


# The sram_swap_buffers tables of soc_info.c (buf1, buf2, size).
A10_SWAP = ((0x1C00, 0xA400, 0x400), (0x5C00, 0xA800, 0x1400), (0x7C00, 0xBC00, 0x400))
A31_SWAP = ((0x1800, 0x20000, 0x800), (0x5C00, 0x20800, 0x2400))
A64_SWAP = ((0x11C00, 0x31400, 0x400), (0x15C00, 0x31800, 0x1400), (0x17C00, 0x32C00, 0x400))
AR100_SWAP = ((0x1800, 0x44000, 0x800), (0x5C00, 0x44800, 0x2400))
A80_SWAP = ((0x11800, 0x20000, 0x800), (0x15400, 0x20800, 0x2C00))
H6_SWAP = ((0x21C00, 0x42400, 0x400), (0x25C00, 0x42800, 0x1400), (0x27C00, 0x43C00, 0x400))
T7_SWAP = ((0x21C00, 0x4E400, 0x400), (0x25C00, 0x4E800, 0x1400), (0x27C00, 0x4FC00, 0x400))
V831_SWAP = ((0x21000, 0x38000, 0x1000),)
H616_SWAP = ((0x21000, 0x52A00, 0x1000),)
A133_SWAP = ((0x21000, 0x40000, 0x400),)
R329_SWAP = ((0x101000, 0x13BC00, 0x400),)
F1C100S_SWAP = ((0x1C00, 0x9000, 0x400), (0x5C00, 0x9400, 0x1400), (0x7C00, 0xA800, 0x400))
A523_SWAP = ((0x45000, 0x40200, 0x400),)

WD_A10 = (0x01C20C94, 3)
WD_H3 = (0x01C20CB8, 1)
WD_A80 = (0x06000CB8, 1)
WD_H6 = (0x030090B8, 1)
WD_V853 = (0x020500B8, 0x16AA0001)
WD_A523 = (0x02050008, 0x16AA0001)
SID_A10 = (0x01C23800, 0)
SID_H3 = (0x01C14000, 0x200)
SID_H6 = (0x03006000, 0x200)
NO_SID = (None, 0)
NO_RVBAR = (None, None, None)
L2, ICACHE, SID_FIX = frozenset({"l2"}), frozenset({"icache"}), frozenset({"sid_fix"})

SOC_INFO_C = (
    Row(0x1623, "A10", 0, 0x1000, (0xA200, 0x200), 48 * KiB,
        SID_A10, NO_RVBAR, None, None, WD_A10, A10_SWAP, L2),
    Row(0x1625, "A13", 0, 0x1000, (0xA200, 0x200), 48 * KiB,
        SID_A10, NO_RVBAR, None, None, WD_A10, A10_SWAP, L2),
    Row(0x1651, "A20", 0, 0x1000, (0xA200, 0x200), 48 * KiB,
        SID_A10, NO_RVBAR, None, None, WD_A10, A10_SWAP),
    Row(0x1650, "A23", 0, 0x1000, (0x46E00, 0x200), 64 * KiB,
        SID_A10, NO_RVBAR, None, None, WD_H3, AR100_SWAP),
    Row(0x1633, "A31", 0, 0x1000, (0x22E00, 0x200), 32 * KiB,
        NO_SID, NO_RVBAR, None, None, WD_H3, A31_SWAP),
    Row(0x1667, "A33", 0, 0x1000, (0x46E00, 0x200), 32 * KiB,
        SID_A10, NO_RVBAR, None, None, WD_H3, AR100_SWAP),
    Row(0x1689, "A64", 0x10000, 0x11000, (0x31200, 0x200), 140 * KiB,
        SID_H3, (0x017000A0, None, None), None, 0x40004, WD_H3, A64_SWAP),
    Row(0x1639, "A80", 0x10000, 0x11000, (0x23400, 0x200), 40 * KiB,
        (0x01C0E000, 0x200), NO_RVBAR, None, None, WD_A80, A80_SWAP),
    Row(0x1663, "F1C100s", 0, 0x1000, (0xB400, 0x200), 32 * KiB,
        NO_SID, NO_RVBAR, None, None, WD_H3, F1C100S_SWAP),
    Row(0x1673, "A83T", 0, 0x1000, (0x46E00, 0x200), 32 * KiB,
        SID_H3, NO_RVBAR, 0x44000, None, WD_H3, AR100_SWAP),
    Row(0x1680, "H3", 0, 0x1000, (0xA200, 0x200), 108 * KiB,
        SID_H3, NO_RVBAR, 0x8000, 0x40004, WD_H3, A10_SWAP, SID_FIX),
    Row(0x1681, "V3s", 0, 0x1000, (0xA200, 0x200), 60 * KiB,
        SID_A10, NO_RVBAR, 0x8000, None, WD_H3, A10_SWAP),
    Row(0x1708, "T7", 0x20000, 0x21000, (0x4E200, 0x200), 184 * KiB,
        SID_H6, NO_RVBAR, None, None, WD_H6, T7_SWAP),
    Row(0x1718, "H5", 0x10000, 0x11000, (0x31200, 0x200), 140 * KiB,
        SID_H3, (0x017000A0, None, None), None, 0x40004, WD_H3, A64_SWAP),
    Row(0x1701, "R40", 0, 0x1000, (0xA200, 0x200), 48 * KiB,
        (0x01C1B000, 0x200), NO_RVBAR, None, None, WD_A10, A10_SWAP),
    Row(0x1719, "A63", 0x20000, 0x21000, (0x42200, 0x200), 144 * KiB,
        SID_H6, (0x09010040, None, None), None, None, WD_H6, H6_SWAP),
    Row(0x1728, "H6", 0x20000, 0x21000, (0x42200, 0x200), 144 * KiB,
        SID_H6, (0x09010040, None, None), None, 0x100004, WD_H6, H6_SWAP),
    Row(0x1816, "V536", 0x20000, 0x21000, (0x2A200, 0x200), 228 * KiB,
        SID_H6, NO_RVBAR, None, None, WD_H6, V831_SWAP),
    Row(0x1817, "V831", 0x20000, 0x21000, (0x2A200, 0x200), 228 * KiB,
        SID_H6, NO_RVBAR, None, None, WD_H6, V831_SWAP),
    Row(0x1823, "H616", 0x20000, 0x21000, (0x53A00, 0x200), 207 * KiB,
        SID_H6, (0x09010040, 0x08100040, 0x03000024), None, None, WD_H6, H616_SWAP),
    Row(0x1851, "R329", 0x100000, 0x101000, (0x13BA00, 0x200), 1856 * KiB,
        SID_H6, (0x08100040, None, None), 0x130000, None, WD_H6, R329_SWAP),
    Row(0x1886, "V853", 0x20000, 0x21000, (0x3A200, 0x200), 132 * KiB,
        SID_H6, NO_RVBAR, None, None, WD_V853, V831_SWAP, ICACHE),
    Row(0x1859, "R528", 0x20000, 0x21000, (0x3A200, 0x200), 160 * KiB,
        SID_H6, NO_RVBAR, None, None, WD_V853, V831_SWAP, ICACHE),
    Row(0x1721, "V5", 0x20000, 0x21000, (0x42200, 0x200), 136 * KiB,
        SID_H6, NO_RVBAR, None, None, WD_H6, H6_SWAP),
    Row(0x1890, "A523", 0x44000, 0x45000, (0x40000, 0x200), 96 * KiB,
        SID_H6, (0x08000040, None, None), None, None, WD_A523, A523_SWAP, ICACHE),
    Row(0x1855, "A133", 0x20000, 0x21000, (0x40400, 0x200), 148 * KiB,
        SID_H6, (0x08100040, None, None), None, 0x100004, WD_H6, A133_SWAP),
)  # fmt: skip


def _as_row(soc: SocInfo) -> Row:
    assert soc.watchdog is not None
    flags = {"l2": soc.needs_l2_enable, "icache": soc.needs_icache_fix}
    flags["sid_fix"] = soc.sid_needs_registers
    return Row(
        soc.soc_id,
        soc.name,
        soc.spl_addr,
        soc.scratch_addr,
        (soc.thunk_addr, soc.thunk_size),
        soc.sram_size,
        (soc.sid_base, soc.sid_offset),
        (soc.rvbar_reg, soc.rvbar_reg_alt, soc.ver_reg),
        soc.mmu_tt_addr,
        soc.smc_probe_addr,
        (soc.watchdog.register, soc.watchdog.value),
        tuple((b.rom, b.spare, b.size) for b in soc.swap_buffers),
        frozenset(name for name, on in flags.items() if on),
    )


def test_same_socs_in_the_same_order_as_soc_info_c():
    assert [soc.name for soc in SOCS] == [row.name for row in SOC_INFO_C]


@pytest.mark.parametrize("row", SOC_INFO_C, ids=lambda row: row.name)
def test_every_fact_matches_soc_info_c(row):
    soc = soc_by_id(row.soc_id)
    assert soc is not None, f"{row.name} (0x{row.soc_id:04x}) is missing"
    assert _as_row(soc) == row


def test_ids_are_unique():
    assert len({soc.soc_id for soc in SOCS}) == len(SOCS)


def test_a20_facts():
    a20 = soc_by_id(0x1651)
    assert a20 is not None and a20.name == "A20"
    assert a20.rom_state_ranges == ((0x1C00, 0x2000), (0x5C00, 0x7000), (0x7C00, 0x8000))
    assert (a20.spl_addr, a20.scratch_addr, a20.thunk_addr) == (0, 0x1000, 0xA200)
    assert not a20.is_arm64


def test_arm64_is_what_has_an_rvbar():
    arm64 = {soc.name for soc in SOCS if soc.is_arm64}
    assert arm64 == {"A64", "H5", "A63", "H6", "H616", "R329", "A523", "A133"}


def test_new_socs_keep_their_scratch_bottom_out_of_the_rom_state():
    for name, rom_state in (("A133", (0x21200, 0x21400)), ("A523", (0x45200, 0x45400))):
        soc = soc_by_name(name)
        assert soc is not None and soc.rom_state_ranges == (rom_state,)


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


# The sunxi-fel installed ------------------------------------------------------------------

LIST_SOCS_LINE = re.compile(r"^([0-9a-fA-F]{4}): (\S+)$")


def parse_list_socs(text: str) -> dict[int, str]:
    """``sunxi-fel --list-socs``: a "SoCID name" title, then "%04x: %s" lines (fel.c)."""
    found = (LIST_SOCS_LINE.match(line.strip()) for line in text.splitlines())
    return {int(m.group(1), 16): m.group(2) for m in found if m}


# Enough of ELF64 (little-endian) to read R_*_RELATIVE relocations of a PIE.
Elf64Header = cs.Struct(
    "magic" / cs.Const(b"\x7fELF\x02\x01"),
    cs.Padding(0x28 - 6),
    "shoff" / cs.Int64ul,
    cs.Padding(0x3A - 0x30),
    "shentsize" / cs.Int16ul,
    "shnum" / cs.Int16ul,
)
Elf64Section = cs.Struct(
    "name" / cs.Int32ul,
    "type" / cs.Int32ul,
    "flags" / cs.Int64ul,
    "addr" / cs.Int64ul,
    "offset" / cs.Int64ul,
    "size" / cs.Int64ul,
)
Elf64Rela = cs.Struct("offset" / cs.Int64ul, "info" / cs.Int64ul, "addend" / cs.Int64sl)
SHT_RELA, SHT_NOBITS = 4, 8
RELATIVE = {8, 1027}  # R_X86_64_RELATIVE, R_AARCH64_RELATIVE
SOC_NAME = re.compile(rb"[A-Z][0-9A-Za-z+]{1,7}")


def compiled_soc_table(binary: bytes) -> dict[int, str]:
    """(soc_id, name) of the soc_info_table compiled into a PIE sunxi-fel.

    Each record starts with u32 soc_id, then (8-aligned) the name pointer, which
    a PIE fills in at load time from a RELATIVE relocation: find those pointing
    at a short SoC-like name and read the id 8 bytes before the pointer.
    """
    try:
        header = Elf64Header.parse(binary)
        sections = [
            Elf64Section.parse(binary[header.shoff + i * header.shentsize :])
            for i in range(header.shnum)
        ]
    except cs.ConstructError:
        return {}

    def file_offset(address: int) -> int | None:
        for s in sections:
            if s.type != SHT_NOBITS and s.addr and s.addr <= address < s.addr + s.size:
                return int(address - s.addr + s.offset)
        return None

    table: dict[int, str] = {}
    for section in (s for s in sections if s.type == SHT_RELA):
        for at in range(section.offset, section.offset + section.size, Elf64Rela.sizeof()):
            rela = Elf64Rela.parse(binary[at:])
            name_at, id_at = file_offset(rela.addend), file_offset(rela.offset - 8)
            if rela.info & 0xFFFFFFFF not in RELATIVE or name_at is None or id_at is None:
                continue
            name = binary[name_at : binary.find(b"\0", name_at)]
            soc_id = cs.Int32ul.parse(binary[id_at : id_at + 4])
            if 0x1600 <= soc_id <= 0x1FFF and SOC_NAME.fullmatch(name):
                table[soc_id] = name.decode()
    return table


def installed_sunxi_fel_socs() -> dict[int, str]:
    """What the installed sunxi-fel knows: --list-socs, or the table compiled into it."""
    if not SUNXI_FEL.exists():
        pytest.skip(f"{SUNXI_FEL} is not installed (apt-get install sunxi-tools)")
    listed = subprocess.run(
        [SUNXI_FEL, "--list-socs"], capture_output=True, text=True, timeout=10, check=False
    )
    if listed.returncode == 0:
        return parse_list_socs(listed.stdout)
    # Debian's 1.4.2+git20221128 predates --list-socs ("Invalid option --list-socs"):
    # its only listing of SoCs is the table compiled into the binary.
    compiled = compiled_soc_table(SUNXI_FEL.read_bytes())
    if not compiled:
        pytest.skip(
            f"{SUNXI_FEL} has no --list-socs ({listed.stderr.strip()}) and no SoC table "
            "felboot can read from the binary"
        )
    return compiled


def test_every_soc_the_installed_sunxi_fel_knows_has_the_same_id_here():
    socs = installed_sunxi_fel_socs()
    assert socs
    for soc_id, name in socs.items():
        soc = soc_by_id(soc_id)
        assert soc is not None, f"sunxi-fel knows {name} (0x{soc_id:04x}), felboot does not"
        assert soc.name == name


def test_list_socs_output_as_fel_c_prints_it():
    text = "SoCID name\n1623: A10\n1625: A13\n1890: A523\n"
    assert parse_list_socs(text) == {0x1623: "A10", 0x1625: "A13", 0x1890: "A523"}
