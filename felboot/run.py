"""`felboot run`, `plan` and `script`: from build outputs to a plan, a boot script and a boot.

The order is what makes a failed run cheap: every input is read and checked,
and (when the DRAM size is known up front) the whole plan is made, before a
single byte goes to the board. Then: SPL (DRAM comes up) -> U-Boot placed ->
images written at their planned addresses -> boot.scr written -> its address
handed to U-Boot through the SPL header -> U-Boot started.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from felboot import boot
from felboot.boards import BoardProfile, debian_dtb_for, load_board, load_board_file
from felboot.boards.uboot_lookup import (
    DtbIdentity,
    UBootChoice,
    UBootLookupError,
    find_uboot,
    profile_for_dtb,
    read_dtb_identity,
)
from felboot.bootscript import (
    FEL,
    SCRIPT_FILE,
    LoadMethod,
    build_boot_scr,
    media_file_name,
    render_boot_cmd,
)
from felboot.domains import DomU
from felboot.dram import PROBE_WINDOW, DramInfo
from felboot.errors import ImageError, PlanError, UsageError
from felboot.images import file_size, installed_kernel_config, load
from felboot.images.dtb import DeviceTree, parse_dtb
from felboot.images.initrd import parse_initrd
from felboot.images.kernel import KernelImage, parse_kernel
from felboot.images.uboot import UBootBundle, load_uboot, soc_hint
from felboot.images.uimage import LegacyImage
from felboot.images.xen import vpl011_console_lines
from felboot.inputs_check import (
    check_dom0_kernel,
    check_domu_kernels,
    check_dtb_soc,
    check_slots,
    check_uboot_board,
)
from felboot.plan import (
    DEFAULT_SCRIPT_ADDRESS,
    DEFAULT_UBOOT_SIZE,
    MAX_DRAM,
    UBOOT_LOAD_ADDRESS,
    XEN_DEFAULT_DOM0_MEM,
    Dom0Mem,
    DomUImages,
    Plan,
    board_soc,
    parse_dom0_mem,
)
from felboot.plan import make_plan as plan_images
from felboot.progress import TransferProgress
from felboot.soc import SocInfo, soc_by_name
from felboot.units import format_size

if TYPE_CHECKING:
    from felboot.fel import FelDevice

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
    uboot_for_other_board: bool = False  # a U-Boot built for another board: warn only
    uboot_dirs: tuple[Path, ...] = ()  # the config's uboot_path: searched after FELBOOT_UBOOT_PATH
    domus: tuple[DomU, ...] = ()  # dom0less domUs (--domu), domU1 first
    no_dom0: bool = False  # dom0less only: Xen, the DTB and the domUs
    passthrough: tuple[str, ...] = ()  # host DTB nodes marked xen,passthrough (--passthrough)
    # An ImageBuilder config's MEMORY_START, MEMORY_END and where they were given: checked
    # against the board's DRAM once the plan is made.
    memory: tuple[int, int, str] | None = None
    warnings: tuple[str, ...] = ()  # about the request itself (an ImageBuilder config's keys)


@dataclass(frozen=True)
class RunInputs:
    """Every input read and checked: nothing here needs the device."""

    board: BoardProfile
    uboot: UBootBundle | None
    xen: KernelImage | None
    kernel: KernelImage | None  # None: --no-dom0
    dtb: DeviceTree
    initrd: bytes | None
    initrd_source: str | None
    warnings: tuple[str, ...] = ()  # pairs that may not boot (logged, and for the API)
    uboot_choice: UBootChoice | None = None  # which files and why (summary, --json)
    domus: tuple[DomUImages, ...] = ()

    @property
    def kernel_file_size(self) -> int:
        return self.kernel.file_size if self.kernel is not None else 0


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


def load_profile(request: RunRequest, dtb: DtbIdentity | None = None) -> BoardProfile:
    """--board-file, else --board, else the profile the DTB's compatible picks."""
    if request.board_file is not None:
        return load_board_file(request.board_file)
    if request.board is not None:
        return load_board(request.board)
    if dtb is None:
        raise UsageError(
            "no board named and no DTB to tell it: pass --board NAME (see 'felboot boards'), "
            "--board-file or the DTB"
        )
    return profile_for_dtb(dtb)


def uboot_paths(
    request: RunRequest, board: BoardProfile, dtb: DtbIdentity | None = None
) -> UBootChoice:
    """--uboot, else the profile's Debian build when installed, else the build matching the DTB."""
    if request.uboot:
        return UBootChoice(request.uboot, "given with --uboot")
    if profile_uboot_installed(board):
        return UBootChoice(board.uboot, f"the {board.name} profile's build")
    if dtb is not None:
        return find_uboot(board, dtb, configured=request.uboot_dirs)
    where = f" (the profile names {', '.join(map(str, board.uboot))}, not installed)"
    raise UBootLookupError(
        f"no U-Boot for {board.name}{where if board.uboot else ''}: pass --uboot "
        "u-boot-sunxi-with-spl.bin (or --uboot sunxi-spl.bin --uboot u-boot.itb on arm64)"
    )


def profile_uboot_installed(board: BoardProfile) -> bool:
    return bool(board.uboot) and all(path.exists() for path in board.uboot)


def check_uboot_matches_board(bundle: UBootBundle, board: BoardProfile) -> None:
    hint = soc_hint(bundle)
    soc = soc_by_name(hint) if hint is not None else None  # "H2+" is an H3 to FEL and to us
    if hint is not None and (soc.name if soc else hint).lower() != board.soc.lower():
        raise ImageError(
            f"{bundle.spl_source} is built for the {hint} ({bundle.dt_name}), but board "
            f"{board.name} has an {board.soc}: pass the U-Boot built for this board"
        )


def load_inputs(request: RunRequest) -> RunInputs:
    """Read and check every file named in the request.

    The images are checked against the board first (a DTB of another SoC is
    named as such, not as "no U-Boot matches it"), then U-Boot is found and
    checked against both.
    """
    # The DTB is read first only when it has to tell the board.
    named = request.board is not None or request.board_file is not None
    dtb_identity = None if named or request.dtb is None else read_dtb_identity(request.dtb)
    board = load_profile(request, dtb_identity)
    if request.kernel is not None and request.dtb is None:
        request = dataclasses.replace(request, dtb=dtb_beside_kernel(request.kernel, board))
    if request.no_dom0 and request.dtb is None:
        raise UsageError("name the DTB: felboot run --no-dom0 --domu ... XEN DTB")
    if (request.kernel is None and not request.no_dom0) or request.dtb is None:
        raise UsageError("name the kernel and the DTB: felboot run --board NAME XEN KERNEL DTB")
    limit, why = input_limit(board)
    xen = None
    if not request.no_xen:
        if request.xen is None:
            raise UsageError("no Xen image given: pass XEN KERNEL DTB, or --no-xen KERNEL DTB")
        xen = parse_kernel(
            load(request.xen, "Xen", limit=limit, limit_why=why), str(request.xen), "Xen"
        )
    kernel = None
    if request.kernel is not None and not request.no_dom0:
        kernel_data = load(request.kernel, "kernel", limit=limit, limit_why=why)
        kernel = parse_kernel(kernel_data, str(request.kernel), "kernel")
    dtb = parse_dtb(load(request.dtb, "DTB", limit=limit, limit_why=why), str(request.dtb))
    domus = tuple(load_domu(domu, limit, why) for domu in request.domus)
    check_domu_kernels(xen, domus)
    initrd = None
    if request.initrd is not None and not request.no_dom0:
        ramdisk = parse_initrd(
            load(request.initrd, "initrd", limit=limit, limit_why=why), str(request.initrd)
        )
        if ramdisk.unwrapped_from:
            log.info(
                "initrd %s: %s unwrapped (CRCs checked)", request.initrd, ramdisk.unwrapped_from
            )
        initrd = ramdisk.data
    warnings = [*request.warnings, *check_dtb_soc(dtb, board)]
    if kernel is not None and request.kernel is not None:
        check_slots(xen, kernel, no_xen=request.no_xen)
        config = installed_kernel_config(request.kernel, kernel)
        warnings += check_dom0_kernel(kernel, config, request.kernel.name, no_xen=request.no_xen)

    looks_up = not request.uboot and not profile_uboot_installed(board)
    if looks_up and dtb_identity is None:
        dtb_identity = DtbIdentity.of(request.dtb, dtb)  # the DTB is already read and parsed
    bundle, uboot_choice = None, None
    try:
        uboot_choice = uboot_paths(request, board, dtb_identity)
    except UBootLookupError:
        if request.need_uboot:  # `plan` and `script` do without; files given are checked below
            raise
    if uboot_choice is not None:
        bundle = load_uboot(uboot_choice.paths)
        check_uboot_matches_board(bundle, board)
        warnings += check_uboot_board(
            bundle, dtb, board, other_board_ok=request.uboot_for_other_board
        )
    return RunInputs(
        board=board,
        uboot=bundle,
        xen=xen,
        kernel=kernel,
        dtb=dtb,
        initrd=initrd,
        initrd_source=str(request.initrd) if request.initrd is not None else None,
        warnings=tuple(warnings),
        uboot_choice=uboot_choice,
        domus=domus,
    )


def load_domu(domu: DomU, limit: int, why: str) -> DomUImages:
    """A domU's kernel, ramdisk and partial DTB read and checked; errors name the domU."""
    name = domu.name
    kernel = parse_kernel(
        load(domu.kernel, f"{name} kernel", limit=limit, limit_why=why),
        str(domu.kernel),
        f"{name} kernel",
    )
    ramdisk = None
    if domu.ramdisk is not None:
        ramdisk = parse_initrd(
            load(domu.ramdisk, f"{name} ramdisk", limit=limit, limit_why=why),
            str(domu.ramdisk),
            f"{name} ramdisk",
        ).data
    partial = None
    if domu.dtb is not None:
        partial = parse_dtb(
            load(domu.dtb, f"{name} partial DTB", limit=limit, limit_why=why), str(domu.dtb)
        )
    return DomUImages(
        domu,
        kernel,
        ramdisk,
        str(domu.ramdisk) if domu.ramdisk is not None else None,
        partial,
    )


def dtb_beside_kernel(kernel: Path, board: BoardProfile) -> Path:
    """The DTB a named board uses, from the Debian package of ``kernel`` (no DTB given)."""
    file_size(kernel, "kernel")  # a kernel that is not there is the problem, not its DTB
    found = debian_dtb_for(kernel, board)
    if found is not None:
        log.info("DTB: %s (board %s, from the package of %s)", found, board.name, kernel)
        return found
    if board.dtb is None:
        why = f"board {board.name} names no DTB (a SoC family profile)"
    else:
        why = f"no {board.dtb} from the Debian package of {kernel.name}"
    raise UsageError(f"no DTB given and {why}: pass XEN KERNEL DTB")


def input_limit(board: BoardProfile) -> tuple[int, str]:
    """The largest input file worth reading: what the board's DRAM window can hold.

    Every image goes into DRAM, and a sunxi DRAM controller decodes at most
    dram.PROBE_WINDOW (2 GiB) from dram_base below 4 GiB. The profile's DRAM
    size is not the limit: the SPL's measurement may still say more.
    """
    window = min(PROBE_WINDOW, (1 << 32) - board.dram_base)
    return window, f"the {board.soc}'s DRAM window"


def uboot_range(bundle: UBootBundle | None, board: BoardProfile) -> tuple[int, int]:
    """Where U-Boot proper sits in DRAM until it relocates itself (boot.py's placement)."""
    if bundle is None:
        return (UBOOT_LOAD_ADDRESS, UBOOT_LOAD_ADDRESS + DEFAULT_UBOOT_SIZE)
    boot.check_uboot_in_dram(board_soc(board), bundle)  # so in_dram below is never empty
    in_dram = [
        (start, end)
        for _, start, end in boot.uboot_regions(bundle, None)
        if start >= board.dram_base
    ]
    low, high = min(start for start, _ in in_dram), max(end for _, end in in_dram)
    if bundle.is_fit:
        # The DTB placed after U-Boot can be another one once the DRAM size is known
        # (Pine64 vs Pine64+): keep a generous tail for it.
        high += DEFAULT_UBOOT_SIZE
    return (low, high)


def make_plan(inputs: RunInputs, request: RunRequest, dram_size: int) -> Plan:
    plan = plan_images(
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
        uboot_range=uboot_range(inputs.uboot, inputs.board),
        no_xen=request.no_xen,
        gzip_kernel=None if request.compress else False,
        dom0_mem=dom0_mem(inputs, request),
        domus=inputs.domus,
        no_dom0=request.no_dom0,
        passthrough=request.passthrough,
    )
    if request.memory is not None:
        check_memory_range(plan, request.memory)
    return plan


def check_memory_range(plan: Plan, memory: tuple[int, int, str]) -> None:
    """An ImageBuilder config's MEMORY_START/END against the board's DRAM and the plan."""
    start, end, where = memory
    if start != plan.dram_base:
        raise PlanError(
            f"{where}: MEMORY_START=0x{start:x}, but DRAM on {plan.board} starts at "
            f'0x{plan.dram_base:08x}: write MEMORY_START="0x{plan.dram_base:x}"'
        )
    if end > plan.dram_top:
        raise PlanError(
            f"{where}: MEMORY_END=0x{end:x} is above the top of the {format_size(plan.dram_size)} "
            f"of DRAM on {plan.board} (0x{plan.dram_top:08x}): write MEMORY_END="
            f'"0x{plan.dram_top:x}" or pass --dram-size'
        )
    above = [region for region in plan.regions if region.end > end]
    if above:
        region = above[-1]
        raise PlanError(
            f"{where}: felboot's plan puts {region.name} at 0x{region.start:08x}-"
            f"0x{region.end:08x}, above MEMORY_END=0x{end:x}: pass --dram-size "
            f"{(end - start) >> 20}M (or a larger --reserve-top) so the "
            "images stay below it"
        )


def dom0_mem(inputs: RunInputs, request: RunRequest) -> Dom0Mem | None:
    """Xen's dom0_mem as the boot script passes it (Xen takes the last one), and its source."""
    if request.no_xen or request.no_dom0:
        return None
    xen_args, _ = command_lines(inputs, request)
    values = [word[len("dom0_mem=") :] for word in xen_args.split() if word.startswith("dom0_mem=")]
    if not values:
        return Dom0Mem(XEN_DEFAULT_DOM0_MEM, "512M", "Xen's default (no dom0_mem= given)")
    if request.dom0_mem:
        source = "--dom0-mem"
    elif "dom0_mem=" in request.xen_args:
        source = "--xen-args"
    else:
        source = f"profile {inputs.board.name} ({inputs.board.source})"
    return parse_dom0_mem(values[-1], source)


def _option_name(word: str) -> str:
    return word.split("=", 1)[0]


def command_lines(inputs: RunInputs, request: RunRequest) -> tuple[str, str]:
    """Xen's and dom0's command lines: profile defaults, then what the user added.

    Xen applies its options in order, the last one of a name winning, so a profile
    option the user also gives (console=, dom0_mem=, dtuart=: ImageBuilder's XEN_CMD
    names them all) is dropped rather than shown twice; the result is the same line
    to Xen. Linux may take an option more than once (console=), so for dom0 only a
    word the user repeats exactly is dropped from the profile's."""
    board = inputs.board
    user_xen = request.xen_args.split()
    if request.dom0_mem:
        user_xen = [w for w in user_xen if _option_name(w) != "dom0_mem"]
        user_xen.append(f"dom0_mem={request.dom0_mem}")
    given = {_option_name(word) for word in user_xen}
    profile_xen = [w for w in board.xen_args.split() if _option_name(w) not in given]
    xen_args = " ".join([*profile_xen, *user_xen])
    base = board.linux_args if request.no_xen else board.dom0_args
    user_dom0 = request.dom0_args.split()
    dom0_args = " ".join([*(w for w in base.split() if w not in user_dom0), *user_dom0])
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


def make_script(
    plan: Plan, inputs: RunInputs, request: RunRequest, load: LoadMethod = FEL
) -> BootScript:
    xen_args, dom0_args = command_lines(inputs, request)
    text = render_boot_cmd(
        plan,
        xen_args=xen_args,
        dom0_args=dom0_args,
        uboot_is_64bit=inputs.board.uboot_is_64bit,
        load=load,
    )
    return BootScript(text=text, image=build_boot_scr(text, script_timestamp()))


def known_dram_size(inputs: RunInputs, request: RunRequest) -> int | None:
    """--dram-size, else the profile's; refused beyond the SoC's DRAM window."""
    board = inputs.board
    if request.dram_size is not None:
        size, source = request.dram_size, f"--dram-size {format_size(request.dram_size)}"
    elif board.dram_size is not None:
        size = board.dram_size
        source = f"dram_size {format_size(size)} of profile {board.name} ({board.source})"
    else:
        return None
    soc = board_soc(board)
    start, end = soc.dram_window
    if board.dram_base + size > end:
        raise UsageError(
            f"{source} is more than the {soc.name} can address: its DRAM window is "
            f"0x{start:08x}-0x{end - 1:08x} ({format_size(end - start)}); give the board's real "
            "size, or none to use the SPL's measurement"
        )
    return size


def prepare(request: RunRequest) -> Prepared:
    """Everything that can be decided without the device."""
    inputs = load_inputs(request)
    dom0 = dom0_mem(inputs, request)  # a bad dom0_mem= is refused even when DRAM is detected
    dram_size = known_dram_size(inputs, request)
    if dram_size is None:
        board = inputs.board
        most = min(MAX_DRAM, board_soc(board).dram_window[1] - board.dram_base)
        if dom0 is not None and dom0.size >= most:
            raise PlanError(
                f"{dom0.source}: dom0_mem={dom0.text} ({format_size(dom0.size)}) is not less "
                f"than the most DRAM U-Boot uses on the {board.soc} ({format_size(most)}), and "
                "Xen needs some for itself: pass a smaller --dom0-mem"
            )
        return Prepared(inputs, None, None, ["DRAM size: detected after the SPL has run"])
    plan = make_plan(inputs, request, dram_size)
    script = make_script(plan, inputs, request)
    if inputs.uboot is not None:  # as execute() does before the SPL, for plan/script/--dry-run
        soc = board_soc(inputs.board)
        boot.check_writes(soc, inputs.uboot, image_writes(plan), script_write(plan, script))
    return Prepared(inputs, plan, script)


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
        text_path, image_path = directory / "boot.cmd", directory / SCRIPT_FILE
        text_path.write_text(script.text)
        image_path.write_bytes(script.image)
    except OSError as error:
        raise UsageError(f"cannot write the boot script to {directory}: {error.strerror}") from None
    return text_path, image_path


def save_media(plan: Plan, directory: Path) -> list[Path]:
    """Every image of ``plan`` as the file a loading script reads (DIR is the TFTP root, or
    the first partition of the SD card or USB stick: boot.scr goes beside them)."""
    written = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for region in plan.regions:
            path = directory / media_file_name(region)
            path.write_bytes(region.payload)
            written.append(path)
    except OSError as error:
        raise UsageError(f"cannot write the images to {directory}: {error.strerror}") from None
    return written


# On the device --------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardSeen:
    """The board a run booted, as far as it is known without extra requests."""

    description: str  # the transport's: "usb 1:7 (port 1-1.2)", "sim A20 (1024 MiB)"
    port: str | None  # the USB port path, when the transport has one
    sid: str | None  # only when already known (a usb:sid= selection): reading costs a thunk

    def to_dict(self) -> dict[str, Any]:
        return {"description": self.description, "port": self.port, "sid": self.sid}


_PORT_IN_DESCRIPTION = re.compile(r"\(port ([0-9.-]+)\)")


def board_seen(device: FelDevice, sid: str | None) -> BoardSeen:
    description = device.transport.description
    # Every USB transport (and a replay of one) names its port as UsbDeviceInfo.description
    # writes it; a Transport.port_path attribute would be better (transport.py, transcript.py).
    match = _PORT_IN_DESCRIPTION.search(description)
    return BoardSeen(description, match[1] if match else None, sid)


@dataclass(frozen=True)
class Timings:
    """Seconds spent in each phase of a run (time.monotonic, or the clock execute was given)."""

    find: float  # opening the device (with --wait: the wait) and asking who it is
    spl: float  # the SPL: upload, run, DRAM measured
    upload: float  # U-Boot, the images and the script
    start: float  # the script handed over, U-Boot started

    @property
    def total(self) -> float:
        return self.find + self.spl + self.upload + self.start

    def to_dict(self) -> dict[str, float]:
        values = {"find": self.find, "spl": self.spl, "upload": self.upload, "start": self.start}
        return {key: round(value, 3) for key, value in {**values, "total": self.total}.items()}


@dataclass(frozen=True)
class RunReport:
    """What a run did: for the summary, --json and the tests."""

    plan: Plan
    script: BootScript
    dram: DramInfo
    uboot: boot.UBootPlacement
    bytes_written: int
    input_bytes: int  # the same images as the files given: what compression saved
    notes: tuple[str, ...]
    uboot_choice: UBootChoice | None = None
    board: BoardSeen | None = None
    timings: Timings | None = None  # None: a dry run
    xen_args: str | None = None  # None: --no-xen
    dom0_args: str = ""
    kernel_file_size: int = 0  # the dom0 kernel as given (more than sent when gzip'ed)

    def uboot_line(self) -> str | None:
        return self.uboot_choice.summary() if self.uboot_choice else None

    def to_dict(self) -> dict[str, Any]:
        return report_dict(self, dry_run=self.timings is None)

    @property
    def rate(self) -> float | None:
        """Bytes per second from the first byte of the SPL to U-Boot's start (the link's speed)."""
        if self.timings is None:
            return None
        busy = self.timings.total - self.timings.find
        return self.bytes_written / busy if busy > 0 else None


def planned_uboot(bundle: UBootBundle, dram_size: int) -> boot.UBootPlacement:
    """Where U-Boot will go, as boot.load_uboot places it (for a dry run: no device)."""
    regions = boot.uboot_regions(bundle, dram_size >> 20)
    if isinstance(bundle.main, LegacyImage):
        main = bundle.main  # named as load_uboot names it
        return boot.UBootPlacement(
            [(main.name or "U-Boot", main.load, main.load + len(main.data))], main.entry, False
        )
    _, entry = boot.plan_fit(bundle.main, bundle.spl, dram_size >> 20)
    return boot.UBootPlacement(regions, entry, True)


def dry_run_report(prepared: Prepared, request: RunRequest) -> RunReport:
    """A run's report made without a device: what the run would send (board and timings None)."""
    inputs = prepared.inputs
    plan, script = require_plan(prepared, inputs.board)
    if inputs.uboot is None:  # load_inputs insists on it for a run
        raise UsageError("felboot run needs a U-Boot: pass --uboot")
    xen_args, dom0_args = command_lines(inputs, request)
    return RunReport(
        plan,
        script,
        DramInfo(plan.dram_size, "profile"),
        planned_uboot(inputs.uboot, plan.dram_size),
        upload_size(prepared),
        input_size(inputs),
        tuple(prepared.notes),
        uboot_choice=inputs.uboot_choice,
        xen_args=None if request.no_xen else xen_args,
        dom0_args=dom0_args,
        kernel_file_size=inputs.kernel_file_size,
    )


def plan_dict(
    plan: Plan, xen_args: str | None, dom0_args: str, kernel_file_size: int
) -> dict[str, Any]:
    """The plan as `plan --json` and the run report carry it: with the command lines, and
    each region's ``gzip_of`` (the file's size when it went gzip'ed, else null)."""
    data = plan.to_dict()
    for region in data["regions"]:
        gzipped = plan.kernel_gzipped and region["name"] == "kernel"
        region["gzip_of"] = kernel_file_size if gzipped else None
    data["xen_args"] = xen_args
    data["dom0_args"] = dom0_args
    return data


def report_dict(report: RunReport, *, dry_run: bool) -> dict[str, Any]:
    """`run --json` and `run --dry-run --json`: the same keys; a dry run's device and timings
    are null, its dram and U-Boot placement the planned ones, upload_bytes what it would send."""
    choice = report.uboot_choice
    rate = report.rate
    return {
        "dry_run": dry_run,
        "device": report.board.to_dict() if report.board else None,
        "timings": report.timings.to_dict() if report.timings else None,
        "upload_bytes": report.bytes_written,
        "rate": round(rate) if rate is not None else None,
        "input_bytes": report.input_bytes,
        "dram": {"size": report.dram.size, "source": report.dram.source},
        "uboot": {
            "files": [str(p) for p in choice.paths] if choice else [],
            "why": choice.why if choice else None,
            "entry": report.uboot.entry,
            "aarch64": report.uboot.aarch64,
            "regions": [
                {"name": name, "start": start, "end": end}
                for name, start, end in report.uboot.regions
            ],
        },
        "script": {"address": report.plan.script_address, "size": len(report.script.image)},
        "notes": list(report.notes),
        "plan": plan_dict(report.plan, report.xen_args, report.dom0_args, report.kernel_file_size),
    }


def check_device_matches(soc: SocInfo, inputs: RunInputs) -> None:
    board = inputs.board
    if soc.name.lower() != board.soc.lower():
        raise UsageError(
            f"the board in FEL mode is an {soc.name}, but profile {board.name} is for an "
            f"{board.soc}: pick the right --board (see 'felboot boards') or --device"
        )


def image_writes(plan: Plan) -> list[boot.Write]:
    """(address, bytes, name) of every planned image, bottom up."""
    return [(region.start, region.payload, region.name) for region in plan.regions]


def script_write(plan: Plan, script: BootScript) -> tuple[int, bytes]:
    return (plan.script_address, script.image)


def upload_bytes(plan: Plan, script: BootScript) -> int:
    """What the plan sends after U-Boot: its images and the script."""
    return sum(region.size for region in plan.regions) + len(script.image)


def execute(
    device: FelDevice,
    prepared: Prepared,
    request: RunRequest,
    progress: TransferProgress,
    *,
    clock: Callable[[], float] = time.monotonic,
    search_started: float | None = None,
    sid: str | None = None,
) -> RunReport:
    """SPL -> plan (if DRAM had to be detected) -> U-Boot -> images -> script -> start.

    ``search_started`` is the clock's time when the caller began to look for the
    device (the find phase includes that, and a --wait); ``sid`` the board's SID
    when the caller already knows it.
    """
    inputs = prepared.inputs
    bundle = inputs.uboot
    if bundle is None:  # load_inputs insists on it for a run; keep mypy and readers sure
        raise UsageError("felboot run needs a U-Boot: pass --uboot")
    began = clock() if search_started is None else search_started
    soc = boot.boot_soc(device)
    found = clock()
    check_device_matches(soc, inputs)
    boot.check_spl_suits(soc, bundle.spl)
    notes = list(prepared.notes)
    plan, script = prepared.plan, prepared.script
    if plan is not None and script is not None:
        boot.check_writes(soc, bundle, image_writes(plan), script_write(plan, script))

    known = known_dram_size(inputs, request)
    spl = boot.run_spl(device, bundle.spl, progress=progress, dram_size=known)
    notes.append(str(spl.dram))
    spl_done = clock()
    # The board's own measurement (SPL header, else the probe) wins over --dram-size and
    # the profile; "profile" means nothing was measured.
    measured = spl.dram.source != "profile"
    if plan is None or (measured and spl.dram.size != known):
        counted = upload_bytes(plan, script) if plan is not None and script is not None else 0
        if plan is not None and known is not None:
            said = "--dram-size says" if request.dram_size is not None else "the profile says"
            notes.append(
                f"{said} {known >> 20} MiB but the board has {spl.dram.size_mib} MiB "
                f"({spl.dram.source}): planned again for {spl.dram.size_mib} MiB"
            )
        plan = make_plan(inputs, request, spl.dram.size)
        script = make_script(plan, inputs, request)
        boot.check_writes(soc, bundle, image_writes(plan), script_write(plan, script))
        progress.grow(upload_bytes(plan, script) - counted)  # the bar's total counted the old plan
    assert script is not None  # set together with plan above

    placement, handed_off = boot.finish_boot(
        device,
        bundle,
        spl,
        writes=image_writes(plan),
        script=script_write(plan, script),
        progress=progress,
    )
    started = clock()
    # The last byte counted ends the upload; the handoff and the start follow it.
    uploaded = max(spl_done, min(progress.last_at or spl_done, started))
    timings = Timings(found - began, spl_done - found, uploaded - spl_done, started - uploaded)
    if not handed_off:
        notes.append(f"at the U-Boot prompt type: source 0x{plan.script_address:08x}")
    xen_args, dom0_args = command_lines(inputs, request)
    return RunReport(
        plan,
        script,
        spl.dram,
        placement,
        progress.done,
        input_size(inputs),
        tuple(notes),
        uboot_choice=inputs.uboot_choice,
        board=board_seen(device, sid),
        timings=timings,
        xen_args=None if request.no_xen else xen_args,
        dom0_args=dom0_args,
        kernel_file_size=inputs.kernel_file_size,
    )


def input_size(inputs: RunInputs) -> int:
    """Bytes of the inputs as given (SPL and U-Boot proper as the ROM and SPL would load them)."""
    total = inputs.kernel_file_size + inputs.dtb.totalsize + len(inputs.initrd or b"")
    for images in inputs.domus:
        total += len(images.kernel.data) + len(images.ramdisk or b"")
        total += images.dtb.totalsize if images.dtb is not None else 0
    if inputs.xen is not None:
        total += inputs.xen.file_size
    if inputs.uboot is not None:
        total += inputs.uboot.spl.length + inputs.uboot.main_size
    return total


def upload_size(prepared: Prepared) -> int:
    """Bytes a run sends that are known before the SPL: the progress bar's first total."""
    inputs = prepared.inputs
    total = 0
    if inputs.uboot is not None:
        total += inputs.uboot.spl.length + inputs.uboot.main_size
    if prepared.plan is not None and prepared.script is not None:
        total += upload_bytes(prepared.plan, prepared.script)
    return total


def expected_console(report: RunReport) -> list[str]:
    """What the serial console should show next, in order."""
    lines = ["U-Boot's banner, then 'DRAM: ...' and the boot script being sourced"]
    if report.plan.no_xen:
        lines.append("'Starting kernel ...', then Linux's 'Booting Linux on physical CPU 0x0'")
    else:
        lines.append("'Starting kernel ...', then Xen's banner ('Xen 4.x') and '(XEN) Loading d0'")
        if not report.plan.no_dom0:
            lines.append("dom0 on hvc0: '[    0.000000] Booting Linux on physical CPU 0x0'")
        for domain in report.plan.domains:
            number = int(domain.name.removeprefix("domU"))
            shown = vpl011_console_lines(report.plan.xen_version, number)
            where = f"as {shown}" if domain.vpl011 else "nowhere (no vpl011)"
            lines.append(f"'(XEN) *** LOADING DOMU', then {domain.name}'s console {where}")
    return lines
