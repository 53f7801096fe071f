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

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from felboot.devices import (
    DeviceListing,
    UsbSelector,
    list_devices,
    open_transport,
    parse_device_spec,
    read_sid,
    select_boards,
)
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
    "BoardResult",
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
    "run_boards",
    "select_boards",
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


# Several boards at once -------------------------------------------------------------

#: Makes the progress of one board's upload: (the board's label, bytes to send) -> progress.
ProgressFactory = Callable[[str, int], TransferProgress]


@dataclass(frozen=True)
class BoardResult:
    """What one board of :func:`run_boards` did: its report, or the error that stopped it."""

    spec: str  # the --device value it was opened by (pinned: usb:port=..., usb:sid=...)
    port: str | None  # its USB port path, when it has one
    sid: str | None  # "xxxxxxxx:..." when it could be read
    report: RunReport | None  # None: it failed
    error: FelbootError | None  # None: it booted
    seconds: float  # from the start of all boards to this one's end

    @property
    def label(self) -> str:
        """How progress lines and the summary name the board: its port path, else its spec."""
        return self.port or self.spec

    @property
    def exit_code(self) -> int:
        return 0 if self.error is None else self.error.exit_code

    def to_dict(self) -> dict[str, Any]:
        error = self.error
        return {
            "device": self.spec,
            "port": self.port,
            "sid": self.sid,
            "result": "ok" if error is None else "failed",
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 3),
            "error": None
            if error is None
            else {"message": str(error), "kind": type(error).__name__, "culprit": error.culprit},
            "run": self.report.to_dict() if self.report is not None else None,
        }


def board_label(spec: str) -> str:
    """A board's name in progress lines before it is opened: the port path, else the spec."""
    try:
        selector = parse_device_spec(spec)
    except FelbootError:
        return spec
    if isinstance(selector, UsbSelector) and selector.port_path is not None:
        return selector.port_path
    return spec


def run_boards(
    specs: Sequence[str],
    work: PreparedRun | RunRequest,
    *,
    wait: float | None = None,
    progress: ProgressFactory | None = None,
    done: Callable[[BoardResult], None] | None = None,
) -> list[BoardResult]:
    """Boot ``work`` on every board of ``specs`` at once, one thread per board.

    Use :func:`select_boards` first to refuse duplicates and unmatched specs and
    pin each board to its port path. A board that fails does not stop the
    others: its BoardResult carries the error. ``done`` is called (from the
    board's thread) as each board finishes. Results come in the order of ``specs``.
    """
    ready = work if isinstance(work, PreparedRun) else prepare(work)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, len(specs)), thread_name_prefix="felboot") as pool:
        futures = [
            pool.submit(_run_board, spec, ready, wait, progress, done, started) for spec in specs
        ]
        return [future.result() for future in futures]


def _run_board(
    spec: str,
    ready: PreparedRun,
    wait: float | None,
    progress: ProgressFactory | None,
    done: Callable[[BoardResult], None] | None,
    started: float,
) -> BoardResult:
    from felboot.run import board_seen, upload_size

    port = board_label(spec) if board_label(spec) != spec else None
    sid: str | None = None
    report: RunReport | None = None
    error: FelbootError | None = None
    try:
        with open_device(spec, wait=wait) as device:
            port = board_seen(device, None).port or port
            try:
                sid = read_sid(device)
            except FelbootError:
                sid = None  # the run says what is wrong with the board, if anything
            label = port or spec
            total = upload_size(ready.prepared)
            meter = progress(label, total) if progress is not None else TransferProgress()
            report = run(device, ready, meter, search_started=started, sid=sid)
    except FelbootError as failure:
        error = failure
    result = BoardResult(spec, port, sid, report, error, time.monotonic() - started)
    if done is not None:
        done(result)
    return result
