"""Which board and which U-Boot build a DTB is for, from the names the files carry.

A DTB names its board in its first ``compatible`` entry ("cubietech,cubieboard2")
and in ``model``; its file name is, for kernel-built trees, the DT source name
("sun7i-a20-cubieboard2.dtb"). A sunxi U-Boot build names the board it was
built for in the SPL header's DT name (v0.2+, the same source name) and, on
arm64, in the FIT's configuration and device-tree descriptions, which its SPL
chooses among (board/sunxi/board.c board_fit_config_name_match: Pine64 by DRAM
size, PinePhone by a GPIO). So a build matches a DTB when one of its DT names
says the same board.

Builds are looked for in the directories of ``FELBOOT_UBOOT_PATH`` (colon-
separated, searched first), then in Debian's ``/usr/lib/u-boot/BOARD/``
(u-boot-sunxi's README.Debian). Each directory is a build itself or holds one
per subdirectory. The lookup reads only what it compares: at most 64 KiB of
each SPL, and of a FIT the small properties of its tree (its image data is
skipped with seeks). The chosen build is then loaded and checked in full by
felboot.images.uboot.load_uboot.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import construct as cs

from felboot.boards import BoardProfile, list_boards, load_board
from felboot.errors import FelbootError, UsageError
from felboot.images import reading
from felboot.images.devicetree import FDT_HEADER_SIZE, FDT_MAGIC, FdtHeader
from felboot.images.dtb import DeviceTree, parse_dtb
from felboot.images.spl import parse_spl
from felboot.images.uboot import SOC_BY_DT_PREFIX, main_offset_for, soc_from_dt_name
from felboot.soc import soc_by_name

log = logging.getLogger(__name__)

ENV_PATH = "FELBOOT_UBOOT_PATH"
DEBIAN_UBOOT_DIR = Path("/usr/lib/u-boot")  # u-boot-sunxi's README.Debian: /usr/lib/u-boot/BOARD/
SPL_READ_LIMIT = 64 << 10  # every sunxi SPL and its DT name fit in it (the SRAM A1 limit is less)
DTB_READ_LIMIT = 16 << 20  # kernel DTBs are tens of KiB; a bigger "DTB" is not read here
WITH_SPL_GLOB = "u-boot-sunxi-with-spl*.bin"  # the build's name, and copies named -BOARD.bin
SPL_NAME = "sunxi-spl.bin"
FIT_NAMES = ("u-boot-sunxi-with-spl.fit.itb", "u-boot.itb")  # Debian's, U-Boot's build tree's

# FDT structure block tokens (devicetree specification v0.4, 5.4.1), big-endian.
FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END = 1, 2, 3, 4, 9
FdtToken = cs.Int32ub
FdtPropHeader = cs.Struct("len" / cs.Int32ub, "nameoff" / cs.Int32ub)
_NAME_PROPERTY_LIMIT = 256  # descriptions and types are short; longer values are data
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


class UBootLookupError(UsageError):
    """No U-Boot build, or several, for the board: the user passes --uboot."""


# The DTB's side ----------------------------------------------------------------------


@dataclass(frozen=True)
class DtbIdentity:
    """What a DTB says about its board."""

    source: Path
    compatible: tuple[str, ...]
    model: str | None

    @classmethod
    def of(cls, path: Path, tree: DeviceTree) -> DtbIdentity:
        """The identity of a DTB already parsed (no second read of the file)."""
        return cls(path, tree.compatible, tree.model)

    @property
    def board_compatible(self) -> str | None:
        return self.compatible[0] if self.compatible else None

    def describe(self) -> str:
        return f"{self.source} ({', '.join(self.compatible) or 'no compatible'})"


def read_dtb_identity(path: Path) -> DtbIdentity:
    """``compatible`` and ``model`` of the DTB at ``path`` (reads the header, then the tree)."""
    with reading(f"DTB {path}"), path.open("rb") as handle:
        head = handle.read(FDT_HEADER_SIZE)
        size = FdtHeader.parse(head).totalsize if len(head) == FDT_HEADER_SIZE else 0
        data = head + handle.read(max(0, min(size, DTB_READ_LIMIT) - len(head)))
    tree = parse_dtb(data, str(path))  # names the file when it is not a DTB or is cut short
    return DtbIdentity.of(path, tree)


def dtb_soc(identity: DtbIdentity) -> str | None:
    """The SoC ("A20") of the DTB's "allwinner,sun7i-a20"-style compatible, or None."""
    for entry in identity.compatible:
        vendor, _, name = entry.partition(",")
        if vendor == "allwinner":
            soc_name = soc_from_dt_name(name)
            soc = soc_by_name(soc_name) if soc_name else None
            if soc is not None:
                return soc.name
    return None


def _dt_stem(dt_name: str) -> str:
    """ "allwinner/sun50i-a64-pine64.dtb" -> "sun50i-a64-pine64"."""
    stem = dt_name.strip().lower().rsplit("/", 1)[-1]
    return stem[: -len(".dtb")] if stem.endswith(".dtb") else stem


def _board_parts(dt_name: str) -> set[str]:
    """The DT name's board, with and without the SoC: {"olinuxino-lime2", "a20-olinuxino-lime2"}."""
    stem = _dt_stem(dt_name)
    parts = set()
    family, _, after_family = stem.partition("-")  # "sun7i" | "a20-olinuxino-lime2"
    if family.startswith("sun") and after_family:
        parts.add(after_family)
    for prefix, _soc in SOC_BY_DT_PREFIX:
        if stem.startswith(prefix + "-"):
            parts.add(stem[len(prefix) + 1 :])
    return parts


def _squeeze(text: str) -> str:
    return _NOT_ALNUM.sub("", text.lower())


# How strongly a DT name matches a DTB, best first.
BY_COMPATIBLE, BY_FILE_NAME, BY_MODEL = 0, 1, 2


def match_reason(dt_name: str, identity: DtbIdentity) -> tuple[int, str] | None:
    """(strength, what matched) when ``dt_name`` is the DTB's board, else None."""
    parts = _board_parts(dt_name)
    board = identity.board_compatible
    if board and board.partition(",")[2].lower() in parts:
        return BY_COMPATIBLE, board
    if _dt_stem(identity.source.name) == _dt_stem(dt_name):
        return BY_FILE_NAME, f"the file name {identity.source.name}"
    model = _squeeze(identity.model or "")
    if model and any(len(part) > 3 and model.endswith(_squeeze(part)) for part in parts):
        return BY_MODEL, f"the model {identity.model!r}"
    return None


# The profile -------------------------------------------------------------------------


def profile_for_dtb(identity: DtbIdentity) -> BoardProfile:
    """The named board whose ``dtb`` is this DTB's board, else the family of the DTB's SoC."""
    soc = dtb_soc(identity)
    if soc is None:
        raise UsageError(
            f"{identity.describe()} names no Allwinner SoC felboot knows: pass --board NAME "
            "(see 'felboot boards') or --board-file"
        )
    best: dict[int, list[BoardProfile]] = {}
    for board in list_boards():
        if board.is_family or board.soc != soc or not board.dtb:
            continue
        found = match_reason(board.dtb, identity)
        if found is not None:
            best.setdefault(found[0], []).append(board)
    if best:
        boards = best[min(best)]
        if len(boards) == 1:
            return boards[0]
        log.info("%s fits boards %s: using the %s family", identity.source, boards, soc)
    try:
        return load_board(soc.lower())
    except UsageError:
        raise UsageError(
            f"{identity.describe()} is for an {soc}, which has no board profile: pass "
            "--board-file (see 'felboot boards')"
        ) from None


# The builds --------------------------------------------------------------------------


@dataclass(frozen=True)
class UBootBuild:
    """One U-Boot build on disk and the DT names it carries (the SPL's first)."""

    paths: tuple[Path, ...]  # (u-boot-sunxi-with-spl.bin,) or (sunxi-spl.bin, FIT)
    soc: str | None
    dt_names: tuple[str, ...]

    def describe(self, root: Path | None = None) -> str:
        """ "Cubieboard2/u-boot-sunxi-with-spl.bin (sun7i-a20-cubieboard2)", relative to root."""
        files = " + ".join(
            str(path.relative_to(root) if root and path.is_relative_to(root) else path)
            for path in self.paths
        )
        return f"{files} ({self.dt_names[0] if self.dt_names else 'no DT name'})"


@dataclass(frozen=True)
class UBootChoice:
    """The U-Boot files a run uses and why those."""

    paths: tuple[Path, ...]
    why: str  # "given with --uboot", "matches cubietech,cubieboard2", ...

    def summary(self) -> str:
        return f"U-Boot: {' + '.join(map(str, self.paths))}, {self.why}"


def search_dirs(
    environ: dict[str, str] | None = None, configured: Sequence[Path] = ()
) -> tuple[Path, ...]:
    """Where builds are looked for, in order: FELBOOT_UBOOT_PATH, the config's
    ``uboot_path`` (``configured``), Debian's /usr/lib/u-boot."""
    env = os.environ if environ is None else environ
    user = tuple(Path(entry) for entry in env.get(ENV_PATH, "").split(":") if entry)
    return (*user, *configured, DEBIAN_UBOOT_DIR)


def _read_at(handle: BinaryIO, offset: int, size: int) -> bytes:
    handle.seek(offset)
    return handle.read(size)


def _fdt_string(strings: bytes, offset: int) -> str:
    end = strings.find(b"\0", offset)
    return strings[offset : end if end >= 0 else len(strings)].decode("ascii", "replace")


def fit_dt_names(handle: BinaryIO, base: int) -> tuple[str, ...]:
    """The configuration and flat_dt descriptions of the FIT at ``base`` (data skipped)."""
    header = FdtHeader.parse(_read_at(handle, base, FDT_HEADER_SIZE))
    if header.magic != FDT_MAGIC:
        return ()
    strings = _read_at(handle, base + header.off_dt_strings, header.size_dt_strings)
    handle.seek(base + header.off_dt_struct)
    struct_end = base + header.off_dt_struct + header.size_dt_struct
    path: list[str] = []
    props: dict[tuple[str, ...], dict[str, str]] = {}
    while True:
        token = FdtToken.parse(handle.read(4))
        if token == FDT_BEGIN_NODE:
            raw = b""
            while not raw.endswith(b"\0"):
                chunk = handle.read(4)  # the name is NUL-terminated and padded to 4 bytes
                if not chunk:
                    raise ValueError("FDT node name runs past the end of the file")
                raw += chunk
            path.append(raw.split(b"\0", 1)[0].decode("ascii", "replace"))
        elif token == FDT_END_NODE and path:
            path.pop()
        elif token == FDT_PROP:
            prop = FdtPropHeader.parse(handle.read(FdtPropHeader.sizeof()))
            padded = (prop.len + 3) & ~3
            name = _fdt_string(strings, prop.nameoff)
            if name in ("description", "type") and prop.len <= _NAME_PROPERTY_LIMIT:
                value = handle.read(padded)[: prop.len].rstrip(b"\0").decode("ascii", "replace")
                props.setdefault(tuple(path), {})[name] = value
            else:
                handle.seek(padded, os.SEEK_CUR)
        elif token == FDT_END or handle.tell() > struct_end:
            break
        elif token != FDT_NOP:
            raise ValueError(f"FDT token 0x{token:x}")
    configs = [p["description"] for key, p in props.items() if key[1:2] == ("configurations",)]
    dts = [
        p["description"]
        for key, p in props.items()
        if key[1:2] == ("images",) and p.get("type") == "flat_dt"
    ]
    return tuple(dict.fromkeys(name for name in (*configs, *dts) if name))


def read_build(paths: Sequence[Path]) -> UBootBuild:
    """A build's DT names: its SPL header's, then its FIT's (after the SPL, or apart)."""
    spl_path = paths[0]
    with spl_path.open("rb") as handle:
        spl = parse_spl(handle.read(SPL_READ_LIMIT), str(spl_path), verify_checksum=False)
        names = [spl.dt_name] if spl.dt_name else []
        if len(paths) == 1:
            names += fit_dt_names(handle, main_offset_for(spl))
    if len(paths) == 2:
        with paths[1].open("rb") as handle:
            names += fit_dt_names(handle, 0)
    soc_name = soc_from_dt_name(names[0]) if names else None
    soc = soc_by_name(soc_name) if soc_name else None
    return UBootBuild(tuple(paths), soc.name if soc else None, tuple(dict.fromkeys(names)))


def build_files(directory: Path) -> Iterator[tuple[Path, ...]]:
    """The builds in ``directory`` itself: each *with-spl*.bin, else an SPL with its FIT."""
    singles = sorted(directory.glob(WITH_SPL_GLOB))
    yield from ((path,) for path in singles if path.is_file())
    if not singles and (directory / SPL_NAME).is_file():
        fit = next((directory / n for n in FIT_NAMES if (directory / n).is_file()), None)
        if fit is not None:
            yield (directory / SPL_NAME, fit)


def builds_in(root: Path) -> Iterator[UBootBuild]:
    """Every readable sunxi build in ``root`` and its subdirectories (others are skipped)."""
    if not root.is_dir():
        return
    subdirs = sorted(entry for entry in root.iterdir() if entry.is_dir())
    for directory in (root, *subdirs):
        for paths in build_files(directory):
            try:
                yield read_build(paths)
            except (OSError, ValueError, cs.ConstructError, FelbootError) as error:
                log.debug("skipping %s: %s", " + ".join(map(str, paths)), error)


def find_uboot(
    board: BoardProfile,
    identity: DtbIdentity,
    dirs: Sequence[Path] | None = None,
    configured: Sequence[Path] = (),
) -> UBootChoice:
    """The one build for ``board``'s SoC that matches the DTB; the first directory with one wins.

    ``dirs`` replaces the whole search path; ``configured`` adds the config's directories.
    """
    roots = search_dirs(configured=configured) if dirs is None else tuple(dirs)
    seen: list[str] = []
    for root in roots:
        best: dict[int, list[tuple[UBootBuild, str]]] = {}
        for build in builds_in(root):
            if build.soc != board.soc:
                continue
            seen.append(build.describe(root if len(roots) == 1 else None))
            reasons = [r for r in (match_reason(n, identity) for n in build.dt_names) if r]
            if reasons:
                strength, what = min(reasons)
                best.setdefault(strength, []).append((build, what))
        if not best:
            continue
        found = best[min(best)]
        if len(found) == 1:
            build, what = found[0]
            return UBootChoice(build.paths, f"matches {what}")
        listed = "; ".join(build.describe(root) for build, _ in found)
        raise UBootLookupError(
            f"{len(found)} U-Boot builds in {root} match {identity.describe()}: {listed}: "
            "pick one with --uboot FILE"
        )
    where = ", ".join(map(str, roots))
    raise UBootLookupError(
        f"no {board.soc} U-Boot build matches {identity.describe()} (searched {where}; "
        f"{board.soc} builds there: {'; '.join(seen) or 'none'}): pass --uboot FILE, or add "
        f"its directory to {ENV_PATH}"
    )
