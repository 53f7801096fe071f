"""Board profiles: what felboot needs to know about a board, as TOML data files.

Two kinds of file live next to this module:

* SoC families (``a20.toml``, ``h3.toml``, ``a64.toml``, ``h5.toml``): DRAM base,
  DRAM size "detect" (the SPL measures it and reports it in its header), and
  the default Xen and dom0 command lines;
* named boards (``cubieboard2.toml`` ...): the SoC, the known DRAM size, the
  Debian U-Boot build and the DTB name. Every field a board leaves out comes
  from the family file of its SoC (``soc = "A20"`` -> ``a20.toml``).

User profiles given as a path follow the same rules. Fields:

=============  =============================================================
description    one line for ``felboot boards``
soc            a SoC name from felboot.soc ("A20", "H3", "A64", "H5" ...)
dram_base      integer (TOML allows 0x40000000)
dram_size      "1G", "512M", an integer, or "detect"
display        true when U-Boot drives a display (it then keeps a framebuffer)
uboot          arm32: the u-boot-sunxi-with-spl.bin path; arm64: the pair
               [sunxi-spl.bin, u-boot-sunxi-with-spl.fit.itb]; absent: none known
dtb            the DTB's name below the kernel's dtb directory
xen_args       Xen's command line (the boot script adds dtuart= from the DTB)
dom0_args      dom0's command line
linux_args     the kernel's command line when it boots without Xen (--no-xen)
=============  =============================================================
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from felboot.errors import UsageError
from felboot.soc import soc_by_name
from felboot.units import parse_number

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the backport
    import tomli as tomllib  # type: ignore[import-not-found]  # pyproject: tomli on 3.10

DETECT = "detect"
DEFAULT_LINUX_ARGS = "console=ttyS0,115200"  # UART0 is ttyS0 on every sunxi SoC here

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "description": str,
    "soc": str,
    "dram_base": int,
    "dram_size": (int, str),
    "display": bool,
    "uboot": (str, list),
    "dtb": str,
    "xen_args": str,
    "dom0_args": str,
    "linux_args": str,
}
_REQUIRED = ("soc", "dram_base", "dram_size", "xen_args", "dom0_args")


@dataclass(frozen=True)
class BoardProfile:
    name: str
    description: str
    soc: str  # the SoC table's spelling: "A20"
    arch: str  # "arm" (bootz, 32-bit U-Boot) or "arm64" (booti, 64-bit U-Boot)
    dram_base: int
    dram_size: int | None  # None: detect (ask the SPL)
    display: bool
    uboot: tuple[Path, ...]  # () none known; (bin,) arm32; (spl, fit) arm64
    dtb: str | None
    xen_args: str
    dom0_args: str
    linux_args: str
    source: Path
    is_family: bool  # a SoC family profile rather than a named board

    @property
    def uboot_is_64bit(self) -> bool:
        return self.arch == "arm64"


def _builtin_dir() -> Path:
    return Path(str(resources.files(__name__)))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise UsageError(f"cannot read board file {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc}): fix the board file") from exc


def _check_types(path: Path, table: dict[str, Any]) -> None:
    for key, value in table.items():
        expected = _FIELDS.get(key)
        if expected is None:
            known = ", ".join(_FIELDS)
            raise UsageError(f"{path}: unknown field {key!r}: the fields are {known}")
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise UsageError(
                f"{path}: field {key!r} has the wrong type ({type(value).__name__} {value!r})"
            )


def _family_table(soc: str, path: Path) -> dict[str, Any]:
    family = _builtin_dir() / f"{soc.lower()}.toml"
    if not family.is_file() or family.resolve() == path.resolve():
        return {}
    table = _read_toml(family)
    _check_types(family, table)
    return table


def _dram_size(path: Path, value: int | str) -> int | None:
    if isinstance(value, int):
        size = value
    elif value.strip().lower() == DETECT:
        return None
    else:
        size = parse_number(value, f"dram_size in {path}")
    if size <= 0 or size % (1 << 20):
        raise UsageError(f"{path}: field 'dram_size' = {value!r} is not a whole number of MiB")
    return size


def _uboot(path: Path, value: str | list[Any] | None, arch: str) -> tuple[Path, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    wanted = 2 if arch == "arm64" else 1
    if len(items) != wanted or not all(isinstance(item, str) for item in items):
        shape = (
            "a list [sunxi-spl.bin, u-boot-sunxi-with-spl.fit.itb]"
            if arch == "arm64"
            else "one path to u-boot-sunxi-with-spl.bin"
        )
        raise UsageError(f"{path}: field 'uboot' = {value!r}: an {arch} board needs {shape}")
    return tuple(Path(item) for item in items)


def load_board_file(path: Path) -> BoardProfile:
    """A profile from a TOML file; fields it lacks come from its SoC's family file."""
    path = Path(path)
    own = _read_toml(path)
    _check_types(path, own)
    soc_name = own.get("soc")
    if soc_name is None:
        raise UsageError(f"{path}: field 'soc' is missing: name the SoC, e.g. soc = \"A20\"")
    soc = soc_by_name(soc_name)
    if soc is None:
        raise UsageError(f"{path}: field 'soc' = {soc_name!r} is not a SoC felboot knows")
    table = {**_family_table(soc.name, path), **own}
    for key in _REQUIRED:
        if key not in table:
            raise UsageError(f"{path}: field {key!r} is missing and no {soc.name} family sets it")
    arch = "arm64" if soc.is_arm64 else "arm"
    dram_base = table["dram_base"]
    if dram_base != soc.dram_base:
        raise UsageError(
            f"{path}: field 'dram_base' = 0x{dram_base:x}, but {soc.name} DRAM starts at "
            f"0x{soc.dram_base:x}"
        )
    return BoardProfile(
        name=path.stem,
        description=table.get("description", path.stem),
        soc=soc.name,
        arch=arch,
        dram_base=dram_base,
        dram_size=_dram_size(path, table["dram_size"]),
        display=table.get("display", True),
        uboot=_uboot(path, table.get("uboot"), arch),
        dtb=table.get("dtb"),
        xen_args=table["xen_args"],
        dom0_args=table["dom0_args"],
        linux_args=table.get("linux_args", DEFAULT_LINUX_ARGS),
        source=path,
        is_family=path.stem == soc.name.lower(),
    )


def _known_names() -> list[str]:
    return sorted(entry.stem for entry in _builtin_dir().glob("*.toml"))


def load_board(name: str) -> BoardProfile:
    """A built-in profile by name ("cubieboard2", "a20"; "_" and case do not matter)."""
    wanted = name.strip().lower().replace("_", "-")
    if wanted not in _known_names():
        known = ", ".join(_known_names())
        raise UsageError(
            f"unknown board {name!r}: known boards are {known}; or pass a profile file path"
        )
    return load_board_file(_builtin_dir() / f"{wanted}.toml")


def list_boards() -> list[BoardProfile]:
    """Every built-in profile, families and boards, sorted by name."""
    return [load_board(name) for name in _known_names()]


#: Debian installs /boot/vmlinuz-VERSION and its DTBs in /usr/lib/linux-image-VERSION/
#: (`dpkg -S` of linux-image-6.1.0-*-armmp-lpae and -arm64).
DEBIAN_KERNEL_PREFIX = "vmlinuz-"
DEBIAN_DTB_ROOT = Path("/usr/lib")


def debian_dtb_for(kernel: Path, board: BoardProfile) -> Path | None:
    """The board's DTB from the same Debian kernel package as ``kernel``, when both exist."""
    if board.dtb is None or not kernel.name.startswith(DEBIAN_KERNEL_PREFIX):
        return None
    version = kernel.name[len(DEBIAN_KERNEL_PREFIX) :]
    candidate = DEBIAN_DTB_ROOT / f"linux-image-{version}" / board.dtb
    return candidate if candidate.is_file() else None
