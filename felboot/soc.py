"""The SoC table: one record per Allwinner SoC whose boot ROM felboot knows.

Facts (addresses, sizes, quirks) are those of sunxi-tools' soc_info.c at commit
d7bbd172a5da601a08f94479de308c6fb714a19a (the same SoCs, in the same order, with
every field checked against it). Not from soc_info.c: ``dram_base`` (fel.c assumes
0x40000000 everywhere; the A80 and F1C100s values are felboot's earlier ones),
``rom_state`` (felboot's own, see _above_scratch) and ``dram_window`` (the SoCs' memory
maps, see there). The record layout is ours.
Data only: no I/O and no behaviour beyond look-ups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KiB = 1024
_HIGH_ROM_DRAM_END = 0xC0000000  # see SocInfo.dram_window


@dataclass(frozen=True)
class SwapBuffer:
    """A range the boot ROM itself uses (``rom``) and where its contents are parked (``spare``)."""

    rom: int
    spare: int
    size: int

    @property
    def rom_end(self) -> int:
        return self.rom + self.size


@dataclass(frozen=True)
class Watchdog:
    """Writing ``value`` to ``register`` resets the SoC."""

    register: int
    value: int


@dataclass(frozen=True)
class SidSection:
    """A named range of the SID e-fuses (``sid-dump``): byte offset from the key, size in bits."""

    name: str
    offset: int
    size_bits: int

    @property
    def words(self) -> int:
        return self.size_bits // 32


@dataclass(frozen=True)
class SocInfo:
    soc_id: int
    name: str
    scratch_addr: int  # where thunks and small buffers may go
    thunk_addr: int  # where the SPL thunk goes (inside the SRAM the SPL may not use)
    thunk_size: int
    swap_buffers: tuple[SwapBuffer, ...]
    sram_size: int  # how large an SPL the ROM's SRAM holds
    watchdog: Watchdog | None
    spl_addr: int = 0x0
    dram_base: int = 0x40000000
    sid_base: int | None = None  # None: the SoC has no SID, or its address is not known
    sid_offset: int = 0x0
    sid_needs_registers: bool = False  # read the e-fuses through SID_PRCTL (H3 erratum)
    rvbar_reg: int | None = None  # set: the SoC can be switched to AArch64 via RMR
    # H616: a second die (sold as H618, T507 or H616) has RVBAR at rvbar_reg_alt;
    # it reports itself by a non-zero low byte in ver_reg (see boot.rvbar_register).
    rvbar_reg_alt: int | None = None
    ver_reg: int | None = None
    mmu_tt_addr: int | None = None  # set: the ROM's MMU table lives here (else read TTBR0)
    smc_probe_addr: int | None = None  # a zero word here means "issue smc #0 first"
    needs_l2_enable: bool = False
    needs_icache_fix: bool = False
    aliases: tuple[str, ...] = field(default=())
    # Set where the ROM's live state is narrower than the swap buffers (see _SCRATCH_IN_IRQ_STACK).
    rom_state: tuple[tuple[int, int], ...] | None = None

    @property
    def rom_state_ranges(self) -> tuple[tuple[int, int], ...]:
        """[start, end) ranges of SRAM the ROM relies on while in FEL: writing them kills FEL."""
        if self.rom_state is not None:
            return self.rom_state
        return tuple((b.rom, b.rom_end) for b in self.swap_buffers)

    @property
    def is_arm64(self) -> bool:
        """True when felboot starts AArch64 code on it (RVBAR + RMR); T7 has no known RVBAR."""
        return self.rvbar_reg is not None

    @property
    def dram_window(self) -> tuple[int, int]:
        """[start, end) of the addresses DRAM can occupy; larger chips alias inside it.

        SoCs with SRAM at 0 (spl_addr 0) keep the boot ROM at 0xFFFF0000 and decode DRAM
        up to 0xC0000000 (the "Memory Mapping" tables of the A20 User Manual and the H3
        Datasheet: DRAM 0x40000000-0xBFFFFFFF, 2 GiB); the others map the ROM at 0 and DRAM
        up to 4 GiB (A64 User Manual: 0x40000000-0xFFFFFFFF, 3 GiB, the size U-Boot's
        dram_init() in board/sunxi/board.c caps at: SUNXI_DRAM_MAX_SIZE 0xC0000000 on sun50i).
        The device model uses the same window (felboot.sim.layout.dram_window).
        """
        high_rom = self.spl_addr == 0
        end = _HIGH_ROM_DRAM_END if high_rom and self.dram_base < _HIGH_ROM_DRAM_END else 1 << 32
        return (self.dram_base, end)


# Swap-buffer tables (rom range, spare range, size), shared by related SoCs.
_A10_A13_A20_SWAP = (
    SwapBuffer(0x1C00, 0xA400, 0x0400),  # IRQ stack
    SwapBuffer(0x5C00, 0xA800, 0x1400),  # ROM stack
    SwapBuffer(0x7C00, 0xBC00, 0x0400),  # ROM state; overwriting it kills FEL
)
_A31_SWAP = (
    SwapBuffer(0x1800, 0x20000, 0x0800),
    SwapBuffer(0x5C00, 0x20800, 0x8000 - 0x5C00),
)
_A64_SWAP = (
    SwapBuffer(0x11C00, 0x31400, 0x0400),
    SwapBuffer(0x15C00, 0x31800, 0x1400),
    SwapBuffer(0x17C00, 0x32C00, 0x0400),
)
_AR100_SWAP = (  # spare range is the OpenRISC core's SRAM A2
    SwapBuffer(0x1800, 0x44000, 0x0800),
    SwapBuffer(0x5C00, 0x44800, 0x8000 - 0x5C00),
)
_A80_SWAP = (
    SwapBuffer(0x11800, 0x20000, 0x0800),
    SwapBuffer(0x15400, 0x20800, 0x18000 - 0x15400),
)
_H6_SWAP = (
    SwapBuffer(0x21C00, 0x42400, 0x0400),
    SwapBuffer(0x25C00, 0x42800, 0x1400),
    SwapBuffer(0x27C00, 0x43C00, 0x0400),
)
_T7_SWAP = (  # like H6 (SRAM A1 at 0x20000), parked at the end of SRAM C
    SwapBuffer(0x21C00, 0x4E400, 0x0400),
    SwapBuffer(0x25C00, 0x4E800, 0x1400),
    SwapBuffer(0x27C00, 0x4FC00, 0x0400),
)
_V831_SWAP = (SwapBuffer(0x21000, 0x38000, 0x1000),)
_H616_SWAP = (SwapBuffer(0x21000, 0x52A00, 0x1000),)
_A133_SWAP = (SwapBuffer(0x21000, 0x40000, 0x0400),)
_A523_SWAP = (SwapBuffer(0x45000, 0x40200, 0x0400),)  # spare lies below spl_addr (0x44000)
_R329_SWAP = (SwapBuffer(0x101000, 0x13BC00, 0x0400),)
_F1C100S_SWAP = (
    SwapBuffer(0x1C00, 0x9000, 0x0400),
    SwapBuffer(0x5C00, 0x9400, 0x1400),
    SwapBuffer(0x7C00, 0xA800, 0x0400),
)


# On V536/V831/V853/R528/H616 (buffer 0x21000-0x21FFF), R329 (0x101000-0x1013FF), A133
# (0x21000-0x213FF) and A523 (0x45000-0x453FF) the scratch address is the bottom of the
# swap buffer that holds the ROM's IRQ stack. FEL takes no interrupts, so sunxi-tools runs
# its thunks there (soc_info.c: scratch_addr == buf1); an H618 reports sp_irq=0x21400
# (sunxi-fel -v, Orange Pi Zero3), the top of that first KiB. We allow the same bottom
# (1 KiB; 512 bytes where the whole buffer is 1 KiB) and keep the rest protected; the
# whole buffer is still swapped around the SPL.
def _above_scratch(buffers: tuple[SwapBuffer, ...], room: int) -> tuple[tuple[int, int], ...]:
    first, *rest = buffers
    return ((first.rom + room, first.rom_end), *((b.rom, b.rom_end) for b in rest))


_V831_ROM_STATE = _above_scratch(_V831_SWAP, 0x400)
_H616_ROM_STATE = _above_scratch(_H616_SWAP, 0x400)
_R329_ROM_STATE = _above_scratch(_R329_SWAP, 0x200)
_A133_ROM_STATE = _above_scratch(_A133_SWAP, 0x200)
_A523_ROM_STATE = _above_scratch(_A523_SWAP, 0x200)


_WD_A10 = Watchdog(0x01C20C94, 3)
_WD_H3 = Watchdog(0x01C20CB8, 1)
_WD_A80 = Watchdog(0x06000CB8, 1)
_WD_H6 = Watchdog(0x030090B8, 1)
_WD_V853 = Watchdog(0x020500B8, 0x16AA0001)
_WD_A523 = Watchdog(0x02050008, 0x16AA0001)

# Every record: soc_info.c's soc_info_table at d7bbd172 (same order, as --list-socs prints it).
SOCS: tuple[SocInfo, ...] = (
    SocInfo(0x1623, "A10", 0x1000, 0xA200, 0x200, _A10_A13_A20_SWAP, 48 * KiB, _WD_A10,
            sid_base=0x01C23800, needs_l2_enable=True),
    SocInfo(0x1625, "A13", 0x1000, 0xA200, 0x200, _A10_A13_A20_SWAP, 48 * KiB, _WD_A10,
            sid_base=0x01C23800, needs_l2_enable=True, aliases=("A10s", "R8")),
    SocInfo(0x1651, "A20", 0x1000, 0xA200, 0x200, _A10_A13_A20_SWAP, 48 * KiB, _WD_A10,
            sid_base=0x01C23800),
    SocInfo(0x1650, "A23", 0x1000, 0x46E00, 0x200, _AR100_SWAP, 64 * KiB, _WD_H3,
            sid_base=0x01C23800),
    SocInfo(0x1633, "A31", 0x1000, 0x22E00, 0x200, _A31_SWAP, 32 * KiB, _WD_H3),
    SocInfo(0x1667, "A33", 0x1000, 0x46E00, 0x200, _AR100_SWAP, 32 * KiB, _WD_H3,
            sid_base=0x01C23800, aliases=("R16",)),
    SocInfo(0x1689, "A64", 0x11000, 0x31200, 0x200, _A64_SWAP, 140 * KiB, _WD_H3,
            spl_addr=0x10000, sid_base=0x01C14000, sid_offset=0x200,
            rvbar_reg=0x017000A0, smc_probe_addr=0x40004),
    SocInfo(0x1639, "A80", 0x11000, 0x23400, 0x200, _A80_SWAP, 40 * KiB, _WD_A80,
            spl_addr=0x10000, dram_base=0x20000000, sid_base=0x01C0E000, sid_offset=0x200),
    SocInfo(0x1663, "F1C100s", 0x1000, 0xB400, 0x200, _F1C100S_SWAP, 32 * KiB, _WD_H3,
            dram_base=0x80000000),
    SocInfo(0x1673, "A83T", 0x1000, 0x46E00, 0x200, _AR100_SWAP, 32 * KiB, _WD_H3,
            sid_base=0x01C14000, sid_offset=0x200, mmu_tt_addr=0x44000),
    SocInfo(0x1680, "H3", 0x1000, 0xA200, 0x200, _A10_A13_A20_SWAP, 108 * KiB, _WD_H3,
            sid_base=0x01C14000, sid_offset=0x200, sid_needs_registers=True,
            mmu_tt_addr=0x8000, smc_probe_addr=0x40004, aliases=("H2+",)),
    SocInfo(0x1681, "V3s", 0x1000, 0xA200, 0x200, _A10_A13_A20_SWAP, 60 * KiB, _WD_H3,
            sid_base=0x01C23800, mmu_tt_addr=0x8000),
    SocInfo(0x1708, "T7", 0x21000, 0x4E200, 0x200, _T7_SWAP, 184 * KiB, _WD_H6,
            spl_addr=0x20000, sid_base=0x03006000, sid_offset=0x200),
    SocInfo(0x1718, "H5", 0x11000, 0x31200, 0x200, _A64_SWAP, 140 * KiB, _WD_H3,
            spl_addr=0x10000, sid_base=0x01C14000, sid_offset=0x200,
            rvbar_reg=0x017000A0, smc_probe_addr=0x40004),
    SocInfo(0x1701, "R40", 0x1000, 0xA200, 0x200, _A10_A13_A20_SWAP, 48 * KiB, _WD_A10,
            sid_base=0x01C1B000, sid_offset=0x200),
    SocInfo(0x1719, "A63", 0x21000, 0x42200, 0x200, _H6_SWAP, 144 * KiB, _WD_H6,
            spl_addr=0x20000, sid_base=0x03006000, sid_offset=0x200, rvbar_reg=0x09010040),
    SocInfo(0x1728, "H6", 0x21000, 0x42200, 0x200, _H6_SWAP, 144 * KiB, _WD_H6,
            spl_addr=0x20000, sid_base=0x03006000, sid_offset=0x200, rvbar_reg=0x09010040,
            smc_probe_addr=0x100004),
    SocInfo(0x1816, "V536", 0x21000, 0x2A200, 0x200, _V831_SWAP, 228 * KiB, _WD_H6,
            spl_addr=0x20000, sid_base=0x03006000, sid_offset=0x200,
            rom_state=_V831_ROM_STATE),
    SocInfo(0x1817, "V831", 0x21000, 0x2A200, 0x200, _V831_SWAP, 228 * KiB, _WD_H6,
            spl_addr=0x20000, sid_base=0x03006000, sid_offset=0x200,
            rom_state=_V831_ROM_STATE),
    SocInfo(0x1823, "H616", 0x21000, 0x53A00, 0x200, _H616_SWAP, 207 * KiB, _WD_H6,
            spl_addr=0x20000, sid_base=0x03006000, sid_offset=0x200, rvbar_reg=0x09010040,
            rvbar_reg_alt=0x08100040, ver_reg=0x03000024,
            rom_state=_H616_ROM_STATE),
    SocInfo(0x1851, "R329", 0x101000, 0x13BA00, 0x200, _R329_SWAP, 1856 * KiB, _WD_H6,
            spl_addr=0x100000, sid_base=0x03006000, sid_offset=0x200,
            rvbar_reg=0x08100040, mmu_tt_addr=0x130000,
            rom_state=_R329_ROM_STATE),
    SocInfo(0x1886, "V853", 0x21000, 0x3A200, 0x200, _V831_SWAP, 132 * KiB, _WD_V853,
            spl_addr=0x20000, sid_base=0x03006000, sid_offset=0x200, needs_icache_fix=True,
            rom_state=_V831_ROM_STATE),
    SocInfo(0x1859, "R528", 0x21000, 0x3A200, 0x200, _V831_SWAP, 160 * KiB, _WD_V853,
            spl_addr=0x20000, sid_base=0x03006000, sid_offset=0x200, needs_icache_fix=True,
            aliases=("D1", "D1s", "T113-S3"),
            rom_state=_V831_ROM_STATE),
    SocInfo(0x1721, "V5", 0x21000, 0x42200, 0x200, _H6_SWAP, 136 * KiB, _WD_H6,
            spl_addr=0x20000, sid_base=0x03006000, sid_offset=0x200),
    SocInfo(0x1890, "A523", 0x45000, 0x40000, 0x200, _A523_SWAP, 96 * KiB, _WD_A523,
            spl_addr=0x44000, sid_base=0x03006000, sid_offset=0x200,
            rvbar_reg=0x08000040, needs_icache_fix=True,
            rom_state=_A523_ROM_STATE),
    SocInfo(0x1855, "A133", 0x21000, 0x40400, 0x200, _A133_SWAP, 148 * KiB, _WD_H6,
            spl_addr=0x20000, sid_base=0x03006000, sid_offset=0x200,
            rvbar_reg=0x08100040, smc_probe_addr=0x100004,
            rom_state=_A133_ROM_STATE),
)  # fmt: skip

# SID maps: soc_info.c's sid_section tables at d7bbd172 (name, byte offset, size in bits),
# printed by `felboot sid-dump` as by `sunxi-fel sid-dump`.
_R40_SID = (  # r40_sid_maps
    SidSection("chipid", 0x000, 128),
    SidSection("in", 0x010, 256),
    SidSection("ssk", 0x030, 128),
    SidSection("thermal", 0x040, 32),
    SidSection("ft_zone", 0x044, 64),
    SidSection("tvout", 0x04C, 128),
    SidSection("rssk", 0x05C, 256),
    SidSection("hdcp_hash", 0x07C, 128),
    SidSection("reserved", 0x090, 896),
)
_H3_SID = (  # h3_sid_maps
    SidSection("chipid", 0x000, 128),
    SidSection("oem_program", 0x010, 32),
    SidSection("nv1", 0x014, 32),
    SidSection("nv2", 0x018, 64),
    SidSection("rsakey_hash", 0x020, 160),
    SidSection("thermal", 0x034, 64),
    SidSection("renewability", 0x03C, 64),
    SidSection("huk", 0x044, 256),
    SidSection("rotpk_hash", 0x064, 256),
    SidSection("ssk", 0x084, 128),
    SidSection("rssk", 0x094, 256),
    SidSection("hdcp_hash", 0x0B4, 128),
    SidSection("ek_hash", 0x0C4, 128),
    SidSection("sn", 0x0D4, 192),
    SidSection("nv2_backup", 0x0EC, 64),
    SidSection("lcjs", 0x0F4, 32),
    SidSection("debug", 0x0F8, 32),
    SidSection("chip_config", 0x0FC, 32),
)
_H6_SID = (  # h6_sid_maps
    SidSection("chipid", 0x000, 128),
    SidSection("brom_config", 0x010, 32),
    SidSection("thermal", 0x014, 64),
    SidSection("tf_zone", 0x01C, 128),
    SidSection("oem_program", 0x02C, 96),
    SidSection("mac-addr", 0x038, 64),
    SidSection("write_protect", 0x040, 32),
    SidSection("read-protect", 0x044, 32),
    SidSection("lcjs", 0x048, 32),
    SidSection("attr", 0x04C, 32),
    SidSection("huk", 0x050, 96),
    SidSection("vendor_id", 0x05C, 32),
    SidSection("huk2", 0x060, 128),
    SidSection("rotpk_hash", 0x070, 256),
    SidSection("ssk", 0x090, 128),
    SidSection("rssk", 0x0A0, 256),
    SidSection("hdcp_hash", 0x0C0, 128),
    SidSection("ek_hash", 0x0D0, 128),
    SidSection("sn", 0x0E0, 192),
    SidSection("nv1", 0x0F8, 32),
    SidSection("nv2", 0x0FC, 224),
    SidSection("hdcp_pkf", 0x118, 128),
    SidSection("hdcp_duk", 0x128, 128),
    SidSection("backup_key", 0x138, 576),
    SidSection("sck0", 0x180, 256),
    SidSection("sck0_mask", 0x1A0, 256),
    SidSection("sck1", 0x1C0, 256),
    SidSection("sck1_mask", 0x1E0, 256),
)
_T7_SID = (  # t7_sid_maps
    SidSection("chipid", 0x000, 128),
    SidSection("brom_config", 0x010, 32),
    SidSection("thermal", 0x014, 96),
    SidSection("tf_zone", 0x020, 128),
    SidSection("oem", 0x030, 128),
    SidSection("jtag-security", 0x048, 32),
    SidSection("jtag-attr", 0x04C, 32),
    SidSection("in", 0x050, 192),
    SidSection("operator-id", 0x068, 32),
    SidSection("id", 0x06C, 32),
    SidSection("rotpk", 0x070, 256),
    SidSection("ssk", 0x090, 128),
    SidSection("rssk", 0x0A0, 256),
    SidSection("reserved", 0x0C0, 128),
    SidSection("ek_hash", 0x0D0, 128),
    SidSection("sn", 0x0E0, 192),
    SidSection("nv1", 0x0F8, 32),
    SidSection("nv2", 0x0FC, 224),
    SidSection("reserved2", 0x118, 320),
)
_GENERIC_2K_SID = (  # generic_2k_sid_maps
    SidSection("chipid", 0x000, 128),
    SidSection("unknown", 0x010, 1920),
)

#: soc_info.c's .sid_sections per SoC (A10, A13, A31 and F1C100s have none there).
SID_SECTIONS: dict[str, tuple[SidSection, ...]] = {
    "A20": _GENERIC_2K_SID,
    "A23": _GENERIC_2K_SID,
    "A33": _GENERIC_2K_SID,
    "A64": _H3_SID,
    "A80": _GENERIC_2K_SID,
    "A83T": _GENERIC_2K_SID,
    "H3": _H3_SID,
    "V3s": _GENERIC_2K_SID,
    "T7": _T7_SID,
    "H5": _H3_SID,
    "R40": _R40_SID,
    "A63": _GENERIC_2K_SID,
    "H6": _H6_SID,
    "V536": _GENERIC_2K_SID,
    "V831": _GENERIC_2K_SID,
    "H616": _GENERIC_2K_SID,
    "R329": _GENERIC_2K_SID,
    "V853": _GENERIC_2K_SID,
    "R528": _GENERIC_2K_SID,
    "V5": _GENERIC_2K_SID,
    "A523": _GENERIC_2K_SID,
    "A133": _GENERIC_2K_SID,
}


# For a SoC the table does not know: a ROM like A10/A20/A31 without SRAM beyond
# 0x8000. Enough for plain read/write/exec; the boot chain refuses it.
GENERIC = SocInfo(
    0x0000, "generic", 0x1000, 0x5680, 0x180, (SwapBuffer(0x1C00, 0x5800, 0x400),), 0, None
)

_BY_ID = {soc.soc_id: soc for soc in SOCS}
_BY_NAME = {name.lower(): soc for soc in SOCS for name in (soc.name, *soc.aliases)}


def soc_by_id(soc_id: int) -> SocInfo | None:
    """The record for a VERSION answer's SoC id, or None when unknown."""
    return _BY_ID.get(soc_id)


def soc_by_name(name: str) -> SocInfo | None:
    """The record for a name like "a20" or "H2+" (case-insensitive), or None."""
    return _BY_NAME.get(name.lower())


def sid_sections(soc: SocInfo) -> tuple[SidSection, ...]:
    """The SoC's SID map, or () when soc_info.c has none for it."""
    return SID_SECTIONS.get(soc.name, ())


def soc_label(soc_id: int) -> str:
    """ "A20" for a known id, "unknown SoC 0x1234" otherwise."""
    soc = soc_by_id(soc_id)
    return soc.name if soc else f"unknown SoC 0x{soc_id:04x}"
