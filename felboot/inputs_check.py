"""Inputs that belong together, checked pairwise before a byte goes to the board. Pure.

Each check raises an ImageError naming both sides when the pair cannot boot,
or returns a warning when the user may know better (a custom board's DTB, a
kernel whose build felboot cannot see). run.load_inputs calls them all once
every file has been parsed.

The pairs:

* the DTB's SoC (root ``compatible`` "allwinner,sun7i-a20" ...) vs the board profile's SoC;
* the board U-Boot's SPL was built for (its DT name, "sun7i-a20-cubietruck") vs the DTB
  (file name, board ``compatible``) and vs the profile's ``dtb``;
* Xen and Linux in their slots (felboot.images.xen tells them apart);
* the dom0 kernel's build configuration (felboot.images.kconfig) vs running under Xen.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePath

from felboot.boards import BoardProfile
from felboot.errors import ImageError
from felboot.images.dtb import DeviceTree
from felboot.images.kconfig import KernelConfig, debian_flavour
from felboot.images.kernel import KernelImage
from felboot.images.uboot import SOC_BY_DT_PREFIX, UBootBundle, soc_from_dt_name
from felboot.images.xen import image_kind, xen_version
from felboot.plan import DomUImages
from felboot.soc import soc_by_name

# The last root compatible names the SoC (devicetree specification, "compatible":
# most specific first). These vendors make SoCs other than Allwinner's, so a DTB
# ending in one of them is for another vendor's chip, not a custom sunxi board.
OTHER_SOC_VENDORS = frozenset(
    (
        "amlogic", "arm", "brcm", "fsl", "hisilicon", "marvell", "mediatek", "nvidia",
        "nxp", "qcom", "renesas", "rockchip", "samsung", "socionext", "st", "ti", "xlnx",
    )
)  # fmt: skip

# DT names one SPL serves besides its own: U-Boot's board/sunxi/board.c
# (board_fit_config_name_match) turns "-pine64-plus" into "sun50i-a64-pine64"
# on a 512 MiB board, and picks the PinePhone revision from GPIO inputs.
SPL_ALSO_SERVES = {
    "sun50i-a64-pine64-plus": ("sun50i-a64-pine64",),
    "sun50i-a64-pinephone-1.2": ("sun50i-a64-pinephone-1.0", "sun50i-a64-pinephone-1.1"),
}


def _same_soc(left: str, right: str) -> bool:
    """Names of one die (H2+ is an H3, R8 an A13) compare equal, as the FEL id does."""
    a, b = soc_by_name(left), soc_by_name(right)
    if a is None or b is None:
        return left.lower() == right.lower()
    return a.soc_id == b.soc_id


def _quoted(values: Iterable[str]) -> str:
    """As a .dts writes them: "cubietech,cubieboard2", "allwinner,sun7i-a20"."""
    return ", ".join(f'"{value}"' for value in values)


def dtb_socs(dtb: DeviceTree) -> list[str]:
    """The SoCs the DTB's root compatible names ("allwinner,sun7i-a20" -> "A20")."""
    socs = []
    for entry in dtb.compatible:
        vendor, _, name = entry.partition(",")
        soc = soc_from_dt_name(name) if vendor == "allwinner" else None
        if soc is not None:
            socs.append(soc)
    return socs


def check_dtb_soc(dtb: DeviceTree, board: BoardProfile) -> list[str]:
    """The DTB must be for the board's SoC: an H3 or TI DTB on an A20 board is refused."""
    socs = dtb_socs(dtb)
    if any(_same_soc(soc, board.soc) for soc in socs):
        return []
    compatible = _quoted(dtb.compatible)
    if socs:
        raise ImageError(
            f"DTB {dtb.source} is for an {socs[0]} (compatible {compatible}), but board "
            f"{board.name} has an {board.soc}: pass the {board.soc} board's DTB, or the "
            f"--board for an {socs[0]}"
        )
    vendor = dtb.compatible[-1].partition(",")[0] if dtb.compatible else ""
    if vendor in OTHER_SOC_VENDORS:
        raise ImageError(
            f"DTB {dtb.source} is for another vendor's SoC (compatible {compatible}), not "
            f"the {board.soc} of board {board.name}: pass the board's sunxi DTB"
        )
    return [
        f"DTB {dtb.source} names no Allwinner SoC (compatible {compatible or 'none'}): "
        f"felboot cannot check that it is for the {board.soc} of board {board.name}"
    ]


def _split_dt_name(dt_name: str) -> tuple[str, str] | None:
    """ "sun7i-a20-cubietruck" -> ("sun7i-a20", "cubietruck"); None for other names."""
    name = dt_name.lower().rsplit("/", 1)[-1]
    for prefix, _soc in SOC_BY_DT_PREFIX:
        if name.startswith(prefix + "-") and len(name) > len(prefix) + 1:
            return prefix, name[len(prefix) + 1 :]
    return None


def _compatible_boards(dtb: DeviceTree, prefix: str) -> set[str]:
    """Board words of the compatible: "olimex,a20-olinuxino-lime" -> also "olinuxino-lime"."""
    short = prefix.split("-", 1)[-1] + "-"  # "sun7i-a20" -> "a20-"
    boards = set()
    for entry in dtb.compatible:
        vendor, _, board = entry.lower().partition(",")
        if vendor == "allwinner" or not board:
            continue
        boards.add(board)
        if board.startswith(short):
            boards.add(board[len(short) :])
    return boards


def dtb_board_matches(dt_name: str, dtb: DeviceTree) -> bool | None:
    """Is the DTB for the board named ``dt_name``? None when the DTB cannot tell.

    Debian installs each DTB under its DT name (sun7i-a20-cubieboard2.dtb), and
    the board part of that name mostly matches the board compatible
    ("cubietech,cubieboard2"). A DTB whose file name and compatible agree on a
    board is for that board; a renamed or custom DTB only says "don't know".
    """
    wanted = _split_dt_name(dt_name)
    if wanted is None:
        return None
    names = {dt_name.lower(), *SPL_ALSO_SERVES.get(dt_name.lower(), ())}
    stem = PurePath(dtb.source).stem.lower()
    if stem in names:
        return True
    compatible = _compatible_boards(dtb, wanted[0])
    for name in names:
        split = _split_dt_name(name)
        if split is not None and split[1] in compatible:
            return True
    own = _split_dt_name(stem)
    if own is not None and own[1] in _compatible_boards(dtb, own[0]):
        return False  # the DTB names a board, consistently, and it is another one
    return None


def check_uboot_board(
    bundle: UBootBundle, dtb: DeviceTree, board: BoardProfile, *, other_board_ok: bool = False
) -> list[str]:
    """U-Boot's SPL must be built for the board of the DTB and of the profile.

    An SPL sets up DRAM for the board it was built for; another board's SPL may
    not bring the DRAM up at all. Only boards of the same SoC get here: other
    SoCs are refused by the SoC checks. ``other_board_ok`` (the user knows the
    two boards share their DRAM setup, or QEMU, which models no DRAM timing)
    turns the refusal into a warning.
    """
    dt_name = bundle.dt_name
    if dt_name is None or _split_dt_name(dt_name) is None:
        return []
    spl_soc = soc_from_dt_name(dt_name)
    if spl_soc is None or not _same_soc(spl_soc, board.soc):
        return []  # a SoC mismatch: check_uboot_matches_board's and check_dtb_soc's to say
    uboot = f"U-Boot {bundle.spl_source} is built for {dt_name}"
    match = dtb_board_matches(dt_name, dtb)
    if match is False:
        other = _quoted(dtb.compatible)
        mismatch = f"{uboot}, but DTB {dtb.source} is for another board (compatible {other})"
        if other_board_ok:
            return [mismatch]
        raise ImageError(
            f"{mismatch}: pass the U-Boot and the DTB of the same board "
            "(--uboot-for-other-board if you know this U-Boot runs it)"
        )
    profile_dtb = PurePath(board.dtb).stem.lower() if board.dtb and not board.is_family else None
    served = {dt_name.lower(), *SPL_ALSO_SERVES.get(dt_name.lower(), ())}
    if profile_dtb is None or profile_dtb in served:
        return []
    if match:  # U-Boot and DTB agree: the profile (DRAM size, display) is the odd one out
        return [
            f"{uboot} like DTB {dtb.source}, but board profile {board.name} is for "
            f"{profile_dtb}: pass the --board of that board"
        ]
    # The DTB cannot tell (a custom or renamed one): the profile is the only other witness.
    return [
        f"{uboot}, but board profile {board.name} is for {profile_dtb}: pass "
        f"{board.name}'s U-Boot (--uboot) unless the two boards share their DRAM setup"
    ]


def check_slots(xen: KernelImage | None, kernel: KernelImage, *, no_xen: bool) -> None:
    """Xen in the Xen slot, Linux in the kernel slot; swapped arguments are named as such."""
    kernel_kind = image_kind(kernel)
    if no_xen or xen is None:
        if kernel_kind == "xen":
            raise ImageError(
                f"kernel {kernel.source} is Xen, but --no-xen boots the kernel alone: "
                "drop --no-xen and pass XEN KERNEL DTB"
            )
        return
    xen_kind = image_kind(xen)
    if xen_kind == "linux" and kernel_kind == "xen":
        raise ImageError(
            f"the Xen slot holds a Linux kernel ({xen.source}) and the kernel slot holds Xen "
            f"({kernel.source}): swap them (XEN KERNEL DTB)"
        )
    if xen_kind == "linux":
        raise ImageError(
            f"the Xen slot holds a Linux kernel ({xen.source}), not Xen: pass XEN KERNEL DTB, "
            "or --no-xen KERNEL DTB to boot Linux alone"
        )
    if kernel_kind == "xen":
        raise ImageError(
            f"the kernel slot holds Xen ({kernel.source}), not dom0's Linux kernel: pass "
            "XEN KERNEL DTB"
        )


# Xen 4.12 brought "Booting Multiple Domains from Device Tree" (docs/features/dom0less.pandoc,
# first in RELEASE-4.12.0): an older Xen ignores the /chosen/domUN nodes and starts dom0 only.
DOM0LESS_SINCE = (4, 12)


def check_domu_kernels(xen: KernelImage | None, domus: Iterable[DomUImages]) -> None:
    """Each domU kernel is a guest kernel, not Xen, and this Xen builds domUs at all."""
    domus = list(domus)
    for images in domus:
        if image_kind(images.kernel) == "xen":
            raise ImageError(
                f"{images.domu.name} kernel {images.kernel.source} is Xen, not a guest kernel: "
                f"pass the domU's Linux (kernel=FILE)"
            )
    if xen is None or not domus:
        return
    version = xen_version(xen)  # None: unknown, which is never an error (felboot.images.xen)
    if version is not None and version < DOM0LESS_SINCE:
        raise ImageError(
            f"Xen {xen.source} is Xen {version[0]}.{version[1]}, which has no dom0less domUs "
            "(Xen 4.12 added them): use Xen 4.12 or later, or leave out --domu"
        )


def check_dom0_kernel(
    kernel: KernelImage, config: KernelConfig | None, kernel_name: str, *, no_xen: bool
) -> list[str]:
    """A dom0 kernel needs Xen support built in; an arm32 one should be LPAE.

    CONFIG_XEN is what makes Linux a Xen guest on ARM (Linux arch/arm/Kconfig and
    arch/arm64/Kconfig, "Xen guest support on ARM"): without it the kernel never
    finds its console (hvc0) or the hypervisor, so it is refused.

    LPAE: the README says arm32 Xen needs an LPAE dom0, and felboot's proof
    (tests/test_qemu_e2e.py, Debian's Xen 4.17 with 6.1 -armmp-lpae) only ran
    LPAE kernels. Xen's own documentation found does not require it: the Xen
    wiki's Allwinner page (wiki.xenproject.org, "Xen ARM with Virtualization
    Extensions/Allwinner") asks only for CONFIG_XEN and the front/back-end
    drivers, and Linux's `config XEN` on arm32 does not depend on ARM_LPAE
    (Debian's non-LPAE -armmp build has CONFIG_XEN=y). So a non-LPAE dom0 is
    a warning, not an error.
    """
    if no_xen:
        return []
    if config is not None and not config.enabled("CONFIG_XEN"):
        raise ImageError(
            f"kernel {kernel.source} is built without CONFIG_XEN ({config.source}): it cannot "
            "run as dom0; pass a kernel with CONFIG_XEN=y (Debian's linux-image-armmp-lpae "
            "or -arm64), or --no-xen to boot it alone"
        )
    if kernel.arch != "arm":
        return []
    if config is not None:
        lpae = config.enabled("CONFIG_ARM_LPAE")
        why = f"{config.source} has no CONFIG_ARM_LPAE=y"
    else:
        flavour = debian_flavour(kernel_name)
        lpae = flavour != "armmp"
        why = "Debian's -armmp flavour is built without LPAE"
    if lpae:
        return []
    return [
        f"dom0 kernel {kernel.source} is not an LPAE kernel ({why}): arm32 Xen is proven "
        "here with LPAE dom0 kernels only; Debian's is linux-image-armmp-lpae"
    ]
