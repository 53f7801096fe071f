"""felboot's public Python API: what labgrid, lab controllers and the CLI itself call.

Everything here is typed and stable within a major version; anything else in
the package is private. The CLI (``felboot.commands``) uses these functions for
what another tool would need, so a script can do whatever the command line does::

    from felboot import RunRequest, open_device, prepare, run

    request = RunRequest(board="cubieboard2", uboot=(Path("u-boot-sunxi-with-spl.bin"),),
                         xen=Path("xen"), kernel=Path("zImage"), dtb=Path("board.dtb"))
    prepared = prepare(request)              # every file read and checked, nothing sent
    with open_device("usb:port=1-1.2", wait=30) as device:
        report = run(device, prepared)
    print(report.dram.size, report.timings.total)

Devices: :func:`open_device` returns an :class:`OpenedDevice`, a
:class:`~felboot.fel.FelDevice` that is also a context manager; use it in a
``with`` block, or call its ``close()`` (safe to call twice). Errors are
:class:`~felboot.errors.FelbootError` subclasses whose message is one line
naming the culprit and ``exit_code`` the CLI's exit status for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from felboot.devices import DeviceListing, list_devices, open_transport
from felboot.dram import DramInfo
from felboot.errors import (
    BootError,
    DeviceError,
    DeviceGone,
    DeviceTimeout,
    FelbootError,
    ImageError,
    PermissionDenied,
    PlanError,
    ProtocolError,
    TranscriptError,
    UsageError,
)
from felboot.fel import FelDevice
from felboot.plan import Plan
from felboot.progress import TransferProgress
from felboot.run import Prepared, RunReport, RunRequest, require_plan
from felboot.run import prepare as _prepare
from felboot.transport import Transport

__all__ = [
    "BootError",
    "DeviceError",
    "DeviceGone",
    "DeviceListing",
    "DeviceTimeout",
    "DramInfo",
    "FelDevice",
    "FelbootError",
    "ImageError",
    "OpenedDevice",
    "PermissionDenied",
    "PlanError",
    "Prepared",
    "PreparedRun",
    "ProtocolError",
    "RunReport",
    "RunRequest",
    "TranscriptError",
    "TransferProgress",
    "UsageError",
    "boot_uboot",
    "find_boards",
    "make_plan",
    "open_device",
    "prepare",
    "run",
    "wait_for_board",
]


class OpenedDevice(FelDevice):
    """A FelDevice that :func:`open_device` opened: close it, or use it as a context manager.

    Leaving the ``with`` block normally also checks that a replayed transcript
    (``replay:FILE``) was played to its end (TranscriptError otherwise).
    """

    def __init__(self, transport: Transport, spec: str) -> None:
        super().__init__(transport)
        #: The --device value it was opened by ("usb:port=1-1.2", "sim:soc=a20").
        self.spec = spec
        self._closed = False

    def close(self) -> None:
        """Release the USB device (or the model, or the transcript). Safe to call twice."""
        if not self._closed:
            self._closed = True
            self.transport.close()

    def finish(self) -> None:
        """End a clean session: a replay that stopped short of its transcript is an error."""
        from felboot.transcript import ReplayTransport

        if isinstance(self.transport, ReplayTransport):
            self.transport.finish()

    def __enter__(self) -> OpenedDevice:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if kind is None:
                self.finish()
        finally:
            self.close()


def open_device(
    spec: str = "usb",
    *,
    wait: float | None = None,
    record: Path | str | None = None,
    note: str | None = None,
    overwrite: bool = False,
) -> OpenedDevice:
    """Open the board ``spec`` names and bring it into the state every command expects.

    ``spec`` is a --device value: ``usb`` (the only FEL board), ``usb:BUS:ADDR``,
    ``usb:port=1-1.2``, ``usb:sid=HEX``, ``sim[:soc=a20,dram=1G]`` (the device
    model, needs the [sim] extra) or ``replay:FILE``. ``wait`` polls the bus for
    up to that many seconds (``math.inf``: forever; None or 0: look once).
    ``record`` writes a transcript of every transfer to that file (``note`` goes
    into its header; ``overwrite`` lets it replace an existing file).

    The result is a context manager; without ``with``, call ``close()``.
    Raises UsageError (bad spec), DeviceError (no such board, several, access).
    """
    transport = open_transport(
        spec,
        wait=wait,
        record=Path(record) if record is not None else None,
        note=note,
        replace=overwrite,
    )
    device = OpenedDevice(transport, spec)
    try:
        # Every session, as sunxi-fel does right after opening (fel.c main()).
        device.apply_smc_workaround()
    except BaseException:
        device.close()
        raise
    return device


def find_boards() -> list[DeviceListing]:
    """Every FEL board on the USB bus with its port path, SoC and SID (as `felboot list`).

    A board that cannot be asked (no permission, hung) is listed with its ``error``.
    """
    return list_devices()


def wait_for_board(spec: str = "usb", timeout: float | None = None) -> OpenedDevice:
    """Block until the board ``spec`` names is in FEL, and return it opened.

    ``timeout`` in seconds, None waits forever; DeviceError when it runs out.
    Select a board by port path or SID (``usb:port=1-1.2``), which survive the
    board re-enumerating, not by ``usb:BUS:ADDR``.
    """
    return open_device(spec, wait=float("inf") if timeout is None else timeout)


@dataclass(frozen=True)
class PreparedRun:
    """A RunRequest with every input read and checked: what :func:`run` boots."""

    request: RunRequest
    prepared: Prepared  # the inputs, and the plan and script when the DRAM size was known

    @property
    def plan(self) -> Plan | None:
        """The plan, or None when the DRAM size is measured on the board (planned after the SPL)."""
        return self.prepared.plan

    @property
    def warnings(self) -> tuple[str, ...]:
        """Pairs of inputs that may not boot (the CLI prints them as warnings)."""
        plan = self.prepared.plan
        return (*self.prepared.inputs.warnings, *(plan.warnings if plan is not None else ()))


def prepare(request: RunRequest) -> PreparedRun:
    """Read and check every file of ``request`` and plan it when the DRAM size is known.

    Nothing touches a device: a refusal here (ImageError, PlanError, UsageError)
    costs no upload, and a prepared run can boot many boards.
    """
    return PreparedRun(request, _prepare(request))


def make_plan(request: RunRequest) -> Plan:
    """The plan ``request`` makes without a device: where every image and the script go.

    The DRAM size must be known (``RunRequest.dram_size`` or the board profile),
    else UsageError; the same plan `felboot plan` prints.
    """
    prepared = _prepare(request)
    plan, _ = require_plan(prepared, prepared.inputs.board)
    return plan


def run(
    device: FelDevice,
    work: PreparedRun | RunRequest,
    progress: TransferProgress | None = None,
    *,
    sid: str | None = None,
    search_started: float | None = None,
) -> RunReport:
    """Boot ``work`` (a RunRequest, or what :func:`prepare` made of it) on ``device``.

    SPL (DRAM comes up; planned now if the size was not known) -> U-Boot ->
    images -> boot script -> U-Boot started: the board leaves FEL. ``progress``
    is called with the bytes of each transfer (None: no progress). ``sid``: the
    board's SID when the caller already knows it (for the report);
    ``search_started``: time.monotonic() when the caller began looking for the board.
    """
    from felboot.run import execute

    ready = work if isinstance(work, PreparedRun) else prepare(work)
    return execute(
        device,
        ready.prepared,
        ready.request,
        progress or TransferProgress(),
        search_started=search_started,
        sid=sid,
    )


def boot_uboot(
    device: FelDevice,
    files: Sequence[Path | str],
    writes: Sequence[tuple[Path | str, int]] = (),
    script: tuple[Path | str, int] | None = None,
    progress: TransferProgress | None = None,
) -> DramInfo:
    """SPL, U-Boot, the extra ``writes`` (file, address), the boot ``script`` handoff, start.

    ``files``: u-boot-sunxi-with-spl.bin, or sunxi-spl.bin and u-boot.itb. The
    script's address goes to U-Boot through the SPL header (fel_scriptaddr).
    Returns the DRAM the SPL brought up. Every file is read before anything is sent.
    """
    from felboot.boot import boot_uboot as boot_chain
    from felboot.images import load
    from felboot.images.uboot import load_uboot

    bundle = load_uboot([Path(name) for name in files])
    data = [(address, load(name, "file"), str(name)) for name, address in writes]
    handoff = (script[1], load(script[0], "boot script")) if script is not None else None
    result = boot_chain(
        device, bundle, writes=data, script=handoff, progress=progress or TransferProgress()
    )
    return result.dram
