"""The ``--device sim:soc=a20,dram=1G,sid=...`` options of the device model.

Parsed once, at the edge, into a SimConfig of plain ints and records.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import construct as cs

from felboot.errors import UsageError
from felboot.sim.layout import Die, dies_of, dram_window
from felboot.soc import SOCS, SocInfo, soc_by_name
from felboot.units import parse_number

DEFAULT_SOC = "a20"
DEFAULT_DRAM = "1G"
MIN_DRAM = 16 << 20
SID_HEX_DIGITS = 32

#: The 16 SID bytes as the e-fuses hold them: four little-endian words. sunxi-fel
#: prints them as four 8-digit words, and so does the ``sid=`` option.
SidWords = cs.Array(4, cs.Int32ul)

_VALID_KEYS = ("soc", "dram", "sid", "fel", "die")
#: fel=nonsecure: a board fused for secure boot, whose ROM starts FEL in the
#: non-secure state until an `smc #0` (sunxi-tools fel.c, aw_apply_smc_workaround()).
_FEL_STATES = ("secure", "nonsecure")
_EXAMPLE = "--device sim:soc=h3,dram=512M"


@dataclass(frozen=True)
class SimConfig:
    soc: SocInfo
    dram_size: int
    sid: tuple[int, int, int, int]
    nonsecure_fel: bool = False
    die: Die | None = None  # None: the SoC's first (or only) die

    @property
    def sid_bytes(self) -> bytes:
        return bytes(SidWords.build(list(self.sid)))


def default_sid(soc: SocInfo) -> tuple[int, int, int, int]:
    """A fixed, plausible SID per SoC: the first word carries the SoC id like real parts do."""
    rng = random.Random(soc.soc_id)
    return (
        (soc.soc_id << 16) | rng.getrandbits(16),
        rng.getrandbits(32),
        rng.getrandbits(32),
        rng.getrandbits(32),
    )


def _known_socs() -> str:
    return ", ".join(soc.name for soc in SOCS)


def _parse_soc(value: str) -> SocInfo:
    soc = soc_by_name(value)
    if soc is None:
        raise UsageError(
            f"sim option soc={value!r} is not a known SoC; use one of: {_known_socs()}"
        )
    return soc


def _parse_dram(value: str, soc: SocInfo, window: int) -> int:
    size = parse_number(value, "sim option dram")
    if size < MIN_DRAM or size & (size - 1) or size > window:
        raise UsageError(
            f"sim option dram={value!r}: DRAM size must be a power of two from 16M up to "
            f"{window >> 20}M (the {soc.name} DRAM window), e.g. dram=512M"
        )
    return size


def _parse_sid(value: str) -> tuple[int, int, int, int]:
    digits = value.replace(":", "").replace(" ", "")
    if len(digits) != SID_HEX_DIGITS or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise UsageError(
            f"sim option sid={value!r}: write the SID as {SID_HEX_DIGITS} hex digits "
            "(four 32-bit words, as sunxi-fel prints them)"
        )
    w = [int(digits[i : i + 8], 16) for i in range(0, SID_HEX_DIGITS, 8)]
    return (w[0], w[1], w[2], w[3])


def parse_options(options: str) -> SimConfig:
    """Turn ``"soc=h3,dram=512M"`` into a SimConfig; every key is optional."""
    values: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in options.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in _VALID_KEYS:
            raise UsageError(
                f"sim option {item!r} is not understood: valid keys are "
                f"{', '.join(k + '=' for k in _VALID_KEYS)} (e.g. {_EXAMPLE})"
            )
        values[key] = value.strip()
    soc = _parse_soc(values.get("soc", DEFAULT_SOC))
    window = dram_window(soc)
    dram = _parse_dram(values.get("dram", DEFAULT_DRAM), soc, window.end - window.start)
    sid = _parse_sid(values["sid"]) if "sid" in values else default_sid(soc)
    return SimConfig(
        soc=soc,
        dram_size=dram,
        sid=sid,
        nonsecure_fel=_parse_fel(values.get("fel"), soc),
        die=_parse_die(values.get("die"), soc),
    )


def _parse_die(value: str | None, soc: SocInfo) -> Die | None:
    """die=h618 (or t507, h616): which of the SoC's dies the board has."""
    if value is None:
        return None
    dies = dies_of(soc)
    die = dies.get(value.lower())
    if die is None:
        known = ", ".join(f"die={name}" for name in dies) or "no die= option"
        raise UsageError(f"sim option die={value!r} is not a die of the {soc.name}: use {known}")
    return die


def _parse_fel(value: str | None, soc: SocInfo) -> bool:
    """True for fel=nonsecure, which only SoCs with an SMC probe word can start in."""
    if value is None:
        return False
    if value not in _FEL_STATES:
        raise UsageError(f"sim option fel={value!r}: use fel=secure or fel=nonsecure")
    if value == "nonsecure" and soc.smc_probe_addr is None:
        raise UsageError(
            f"sim option fel=nonsecure: the {soc.name} ROM never starts FEL non-secure; "
            "use it with a64, h3, h5 or h6"
        )
    return value == "nonsecure"
