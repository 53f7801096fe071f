"""`felboot run`, `plan` and `script`: from build outputs to a plan, a boot script and a boot.

The order is what makes a failed run cheap: every input is read and checked,
and (when the DRAM size is known up front) the whole plan is made, before a
single byte goes to the board. Then: SPL (DRAM comes up) -> U-Boot placed ->
images written at their planned addresses -> boot.scr written -> its address
handed to U-Boot through the SPL header -> U-Boot started.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from felboot.boards import BoardProfile, load_board, load_board_file
from felboot.bootscript import build_boot_scr, render_boot_cmd
from felboot.errors import ImageError, UsageError
from felboot.images import load
from felboot.images.dtb import DeviceTree, parse_dtb
from felboot.images.kernel import KernelImage, parse_kernel
from felboot.images.uboot import UBootBundle, load_uboot, soc_hint
from felboot.images.uimage import LegacyImage
from felboot.plan import DEFAULT_SCRIPT_ADDRESS, DEFAULT_UBOOT_SIZE, UBOOT_LOAD_ADDRESS, Plan
from felboot.plan import make_plan as plan_images

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRequest:
    """What the user asked for, with numbers already parsed (the CLI builds this)."""

    board: str | None = None
    board_file: Path | None = None
    uboot: tuple[Path, ...] = ()
    xen: Path | None = None
    kernel: Path | None = None
    dtb: Path | None = None
    initrd: Path | None = None
    dram_size: int | None = None
    layout: str = "safe"
    reserve_top: int | None = None
    xen_args: str = ""
    dom0_args: str = ""
    dom0_mem: str | None = None
    no_xen: bool = False
    compress: bool = True
    script_address: int = DEFAULT_SCRIPT_ADDRESS
    need_uboot: bool = True  # `plan` and `script` can do without one


@dataclass(frozen=True)
class RunInputs:
    """Every input read and checked: nothing here needs the device."""

    board: BoardProfile
    uboot: UBootBundle | None
    xen: KernelImage | None
    kernel: KernelImage
    dtb: DeviceTree
    initrd: bytes | None
    initrd_source: str | None


@dataclass(frozen=True)
class BootScript:
    text: str
    image: bytes  # boot.scr: the mkimage script image U-Boot sources


@dataclass
class Prepared:
    """Inputs, the plan when the DRAM size was known before the SPL, and its script."""

    inputs: RunInputs
    plan: Plan | None
    script: BootScript | None
    notes: list[str] = field(default_factory=list)


def load_profile(request: RunRequest) -> BoardProfile:
    if request.board_file is not None:
        return load_board_file(request.board_file)
    if request.board is None:
        raise UsageError("no board named: pass --board NAME (see 'felboot boards') or --board-file")
    return load_board(request.board)


def uboot_paths(request: RunRequest, board: BoardProfile) -> tuple[Path, ...]:
    """--uboot, else the profile's Debian path when it is installed."""
    if request.uboot:
        return request.uboot
    if board.uboot and all(path.exists() for path in board.uboot):
        return board.uboot
    where = f" (the profile names {', '.join(map(str, board.uboot))}, not installed)"
    raise UsageError(
        f"no U-Boot for {board.name}{where if board.uboot else ''}: pass --uboot "
        "u-boot-sunxi-with-spl.bin (or --uboot sunxi-spl.bin --uboot u-boot.itb on arm64)"
    )


def check_uboot_matches_board(bundle: UBootBundle, board: BoardProfile) -> None:
    hint = soc_hint(bundle)
    if hint is not None and hint.lower() != board.soc.lower():
        raise ImageError(
            f"{bundle.spl_source} is built for the {hint} ({bundle.dt_name}), but board "
            f"{board.name} has an {board.soc}: pass the U-Boot built for this board"
        )


def load_inputs(request: RunRequest) -> RunInputs:
    """Read and check every file named in the request."""
    board = load_profile(request)
    bundle = None
    if request.need_uboot or request.uboot or board.uboot:
        try:
            bundle = load_uboot(uboot_paths(request, board))
        except UsageError:
            if request.need_uboot:
                raise
        if bundle is not None:
            check_uboot_matches_board(bundle, board)
    if request.kernel is None or request.dtb is None:
        raise UsageError("name the kernel and the DTB: felboot run --board NAME XEN KERNEL DTB")
    xen = None
    if not request.no_xen:
        if request.xen is None:
            raise UsageError("no Xen image given: pass XEN KERNEL DTB, or --no-xen KERNEL DTB")
        xen = parse_kernel(load(request.xen), str(request.xen), "Xen")
    kernel = parse_kernel(load(request.kernel), str(request.kernel), "kernel")
    dtb = parse_dtb(load(request.dtb), str(request.dtb))
    initrd = load(request.initrd) if request.initrd is not None else None
    return RunInputs(
        board=board,
        uboot=bundle,
        xen=xen,
        kernel=kernel,
        dtb=dtb,
        initrd=initrd,
        initrd_source=str(request.initrd) if request.initrd is not None else None,
    )


def uboot_range(bundle: UBootBundle | None) -> tuple[int, int]:
    """Where U-Boot proper sits in DRAM until it relocates itself."""
    if bundle is None:
        return (UBOOT_LOAD_ADDRESS, UBOOT_LOAD_ADDRESS + DEFAULT_UBOOT_SIZE)
    if isinstance(bundle.main, LegacyImage):
        return (bundle.main.load, bundle.main.load + len(bundle.main.data))
    fit = bundle.main
    spans = [
        (image.load, image.load + len(image.data))
        for image in fit.images.values()
        if image.load is not None and image.load >= UBOOT_LOAD_ADDRESS // 2
    ]
    if not spans:
        return (UBOOT_LOAD_ADDRESS, UBOOT_LOAD_ADDRESS + DEFAULT_UBOOT_SIZE)
    # U-Boot's DTB follows U-Boot proper: keep a generous tail for it.
    return (min(start for start, _ in spans), max(end for _, end in spans) + DEFAULT_UBOOT_SIZE)


def make_plan(inputs: RunInputs, request: RunRequest, dram_size: int) -> Plan:
    return plan_images(
        inputs.board,
        dram_size,
        inputs.xen,
        inputs.kernel,
        inputs.dtb,
        inputs.initrd,
        initrd_source=inputs.initrd_source,
        layout=request.layout,
        reserve_top=request.reserve_top,
        script_address=request.script_address,
        uboot_range=uboot_range(inputs.uboot),
        no_xen=request.no_xen,
        gzip_kernel=None if request.compress else False,
    )


def command_lines(inputs: RunInputs, request: RunRequest) -> tuple[str, str]:
    """Xen's and dom0's command lines: profile defaults, then what the user added."""
    board = inputs.board
    xen_args = " ".join(part for part in (board.xen_args, request.xen_args) if part)
    if request.dom0_mem:
        words = [w for w in xen_args.split() if not w.startswith("dom0_mem=")]
        xen_args = " ".join([*words, f"dom0_mem={request.dom0_mem}"])
    base = board.linux_args if request.no_xen else board.dom0_args
    dom0_args = " ".join(part for part in (base, request.dom0_args) if part)
    return xen_args, dom0_args


def script_timestamp() -> int:
    """SOURCE_DATE_EPOCH when set (reproducible scripts), else now."""
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value is None:
        return int(time.time())
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"SOURCE_DATE_EPOCH={value!r} is not a whole number of seconds") from None


def make_script(plan: Plan, inputs: RunInputs, request: RunRequest) -> BootScript:
    xen_args, dom0_args = command_lines(inputs, request)
    text = render_boot_cmd(
        plan, xen_args=xen_args, dom0_args=dom0_args, uboot_is_64bit=inputs.board.uboot_is_64bit
    )
    return BootScript(text=text, image=build_boot_scr(text, script_timestamp()))


def known_dram_size(inputs: RunInputs, request: RunRequest) -> int | None:
    return request.dram_size if request.dram_size is not None else inputs.board.dram_size


def prepare(request: RunRequest) -> Prepared:
    """Everything that can be decided without the device."""
    inputs = load_inputs(request)
    dram_size = known_dram_size(inputs, request)
    if dram_size is None:
        return Prepared(inputs, None, None, ["DRAM size: detected after the SPL has run"])
    plan = make_plan(inputs, request, dram_size)
    return Prepared(inputs, plan, make_script(plan, inputs, request))


def require_plan(prepared: Prepared, board: BoardProfile) -> tuple[Plan, BootScript]:
    """For commands without a device: the DRAM size must be known."""
    if prepared.plan is None or prepared.script is None:
        raise UsageError(
            f"the DRAM size of {board.name} is detected on the device: pass --dram-size "
            "(e.g. 1G) to plan without one"
        )
    return prepared.plan, prepared.script


def save_script(script: BootScript, directory: Path) -> tuple[Path, Path]:
    """Write DIR/boot.cmd and DIR/boot.scr."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        text_path, image_path = directory / "boot.cmd", directory / "boot.scr"
        text_path.write_text(script.text)
        image_path.write_bytes(script.image)
    except OSError as error:
        raise UsageError(f"cannot write the boot script to {directory}: {error.strerror}") from None
    return text_path, image_path
