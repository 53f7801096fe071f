"""U-Boot for FEL: the SPL plus U-Boot proper, from one file or two.

u-boot-sunxi-with-spl.bin is the SPL followed by U-Boot proper at
max(SPL length, 32 KiB) (arch/arm/mach-sunxi/board.c: "U-Boot proper is
located at least 32KB after the SPL, but will immediately follow the SPL if
that is bigger"). U-Boot proper is a legacy image (os U-Boot, type firmware)
on 32-bit boards, and a FIT (ATF, U-Boot, SCP, device trees) on arm64 boards;
Debian's arm64 packages ship the two halves as sunxi-spl.bin and
u-boot-sunxi-with-spl.fit.itb.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import construct as cs

from felboot.errors import ImageError, UsageError
from felboot.images import load
from felboot.images.devicetree import FDT_MAGIC
from felboot.images.fit import FitImage, parse_fit, select_config
from felboot.images.spl import EGON_MAGIC, MAGIC_OFFSET, SplImage, parse_spl
from felboot.images.uimage import (
    ARCH_ARM,
    ARCH_ARM64,
    LEGACY_MAGIC,
    TYPE_FIRMWARE,
    TYPE_STANDALONE,
    LegacyImage,
    parse_legacy_image,
)

MIN_MAIN_OFFSET = 0x8000

# Legacy images and FITs both start with a big-endian u32 magic.
LeadingMagic = cs.Int32ub

# Device-tree name prefixes -> SoC names that felboot.soc.soc_by_name knows.
SOC_BY_DT_PREFIX = (
    ("suniv-f1c100s", "F1C100s"),
    ("sun4i-a10", "A10"),
    ("sun5i-a10s", "A10s"),
    ("sun5i-a13", "A13"),
    ("sun5i-gr8", "R8"),
    ("sun5i-r8", "R8"),
    ("sun6i-a31s", "A31"),
    ("sun6i-a31", "A31"),
    ("sun7i-a20", "A20"),
    ("sun8i-a23", "A23"),
    ("sun8i-a33", "A33"),
    ("sun8i-r16", "R16"),
    ("sun8i-a83t", "A83T"),
    ("sun8i-h2-plus", "H2+"),
    ("sun8i-h3", "H3"),
    ("sun8i-r40", "R40"),
    ("sun8i-v40", "R40"),
    ("sun8i-s3", "V3s"),
    ("sun8i-v3s", "V3s"),
    ("sun8i-v3", "V3s"),
    ("sun8i-v831", "V831"),
    ("sun8i-v853", "V853"),
    ("sun8i-t113", "R528"),
    ("sun8i-r528", "R528"),
    ("sun20i-d1", "D1"),
    ("sun9i-a80", "A80"),
    ("sun50i-a64", "A64"),
    ("sun50i-h5", "H5"),
    ("sun50i-h6", "H6"),
    ("sun50i-h616", "H616"),
    ("sun50i-h618", "H616"),
    ("sun50i-h313", "H616"),
)
_WORD_END = re.compile(r"[-,.]|$")


@dataclass(frozen=True)
class UBootBundle:
    """An SPL and the U-Boot proper it loads; ``main_offset`` is None when they came apart."""

    spl: SplImage
    main: LegacyImage | FitImage
    main_offset: int | None
    spl_source: str
    main_source: str

    @property
    def is_fit(self) -> bool:
        return isinstance(self.main, FitImage)

    @property
    def main_size(self) -> int:
        """Bytes of U-Boot proper (every FIT image at most; the SPL picks one DTB of them)."""
        if isinstance(self.main, FitImage):
            return sum(len(image.data) for image in self.main.images.values())
        return len(self.main.data)

    @property
    def dt_name(self) -> str | None:
        return self.spl.dt_name


def main_offset_for(spl: SplImage) -> int:
    """Where U-Boot proper starts in u-boot-sunxi-with-spl.bin."""
    return max(spl.length, MIN_MAIN_OFFSET)


def _magic_at(data: bytes, offset: int) -> int | None:
    if len(data) < offset + LeadingMagic.sizeof():
        return None
    return int(LeadingMagic.parse(data[offset:]))


def _check_legacy_u_boot(image: LegacyImage, source: str) -> None:
    if image.image_type not in (TYPE_FIRMWARE, TYPE_STANDALONE) or image.arch not in (
        ARCH_ARM,
        ARCH_ARM64,
    ):
        raise ImageError(
            f"{source}: a legacy {image.arch_name} {image.type_name} image ({image.name!r}), "
            "not U-Boot proper (an ARM firmware image): pass u-boot.img or the -with-spl.bin"
        )


def parse_main(data: bytes, source: str) -> LegacyImage | FitImage:
    """U-Boot proper at the start of ``data``: a legacy image or a FIT."""
    magic = _magic_at(data, 0)
    if magic == LEGACY_MAGIC:
        image = parse_legacy_image(data, source)
        _check_legacy_u_boot(image, source)
        return image
    if magic == FDT_MAGIC:
        fit = parse_fit(data, source)
        if not fit.configurations:
            raise ImageError(f"{source}: a FIT without configurations, not U-Boot's FIT")
        return fit
    raise ImageError(
        f"{source}: not U-Boot proper (neither a legacy image nor a FIT at its start): "
        "pass u-boot.img, u-boot-sunxi-with-spl.fit.itb or u-boot-sunxi-with-spl.bin"
    )


def split_uboot_with_spl(data: bytes, source: str) -> UBootBundle:
    """Split u-boot-sunxi-with-spl.bin into its SPL and U-Boot proper."""
    spl = parse_spl(data, source)
    offset = main_offset_for(spl)
    if _magic_at(data, offset) not in (LEGACY_MAGIC, FDT_MAGIC):
        if len(data) <= offset:
            detail = f"the file ends at 0x{len(data):x}, it is an SPL alone"
        else:
            detail = "something else is there"
        raise ImageError(
            f"{source} holds no U-Boot after the SPL (expected a legacy image or FIT at "
            f"0x{offset:x}; {detail}): pass U-Boot proper too, or the -with-spl.bin"
        )
    main_source = f"{source} at 0x{offset:x}"
    return UBootBundle(
        spl=spl,
        main=parse_main(data[offset:], main_source),
        main_offset=offset,
        spl_source=source,
        main_source=main_source,
    )


def _is_spl(data: bytes) -> bool:
    return data[MAGIC_OFFSET : MAGIC_OFFSET + len(EGON_MAGIC)] == EGON_MAGIC


def load_uboot(paths: Sequence[Path]) -> UBootBundle:
    """One u-boot-sunxi-with-spl.bin, or an SPL and U-Boot proper in either order."""
    if len(paths) == 1:
        return split_uboot_with_spl(load(paths[0]), str(paths[0]))
    if len(paths) != 2:
        raise UsageError(
            f"expected U-Boot as one file (u-boot-sunxi-with-spl.bin) or two (SPL and "
            f"U-Boot proper), got {len(paths)}"
        )
    contents = [load(path) for path in paths]
    spl_side = [index for index, data in enumerate(contents) if _is_spl(data)]
    if len(spl_side) != 1:
        found = "both are" if spl_side else "neither is"
        raise ImageError(
            f"of {paths[0]} and {paths[1]}, {found} an eGON SPL: pass sunxi-spl.bin "
            "and U-Boot proper (u-boot.img or u-boot-sunxi-with-spl.fit.itb)"
        )
    spl_index = spl_side[0]
    spl_path, main_path = paths[spl_index], paths[1 - spl_index]
    return UBootBundle(
        spl=parse_spl(contents[spl_index], str(spl_path)),
        main=parse_main(contents[1 - spl_index], str(main_path)),
        main_offset=None,
        spl_source=str(spl_path),
        main_source=str(main_path),
    )


def soc_from_dt_name(dt_name: str) -> str | None:
    """ "sun7i-a20-cubietruck" -> "A20"; None for a name felboot cannot place."""
    name = dt_name.lower().rsplit("/", 1)[-1]
    for prefix, soc in SOC_BY_DT_PREFIX:
        if name.startswith(prefix) and _WORD_END.match(name, len(prefix)):
            return soc
    return None


def soc_hint(bundle: UBootBundle) -> str | None:
    """The SoC the bundle is built for, from the SPL's DT name or the FIT's configuration."""
    names: list[str] = []
    if bundle.spl.dt_name:
        names.append(bundle.spl.dt_name)
    if isinstance(bundle.main, FitImage):
        try:
            config = select_config(bundle.main, bundle.spl.dt_name)
        except ImageError:
            config = None
        if config is not None:
            if config.description:
                names.append(config.description)
            names.extend(
                image.description
                for image in bundle.main.images_of(config)
                if image.type == "flat_dt" and image.description
            )
    for name in names:
        soc = soc_from_dt_name(name)
        if soc is not None:
            return soc
    return None
