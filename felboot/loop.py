"""The desk loop: boot, wait for the board to come back in FEL, boot the files as they are now.

One round (``run_loop``):

1. wait for the board (``DeviceSource.wait_for_board``) and ask who it is (SoC, SID);
2. wait until no input file is still being written (size and mtime equal in two
   looks ``SETTLE_SECONDS`` apart), read and check everything anew (``run.prepare``
   for `run`, the U-Boot files for `uboot`), and say which files changed since the
   last round (size, mtime and SHA-256);
3. boot, timing each phase (SPL, upload, start) on the device's own calls;
4. the ``watch`` hook (the console check of issue 11) and ``on_round`` with the
   round's report (``format_round`` makes its one line);
5. wait for the board to leave FEL (``DeviceSource.wait_gone``).

The first round is `felboot run` (or `uboot`) itself: any error ends the loop. In
later rounds an error ends the round: a file that does not check is waited on
until it changes (the board stays in FEL, nothing was sent), a failed boot waits
for the board to go and come back. Ctrl-C (KeyboardInterrupt) is never caught
here: the open device is closed on the way out and the CLI says one line.

Across rounds a board is selected by its port path or SID, never by bus:address
(it gets a new address each time it enters FEL): ``usb:BUS:ADDR`` and a plain
``usb`` are pinned to the first round's port path (or SID), and the round says so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from felboot.devices import (
    POLL_INTERVAL,
    ReplaySpec,
    SimSpec,
    SystemUsbBus,
    UsbBus,
    UsbSelector,
    open_transport,
    parse_device_spec,
    read_sid,
)
from felboot.errors import DeviceGone, FelbootError, UsageError
from felboot.fel import FelDevice
from felboot.progress import TransferProgress
from felboot.transport import Transport, UsbDeviceInfo
from felboot.units import format_seconds, format_size

if TYPE_CHECKING:
    from felboot.boot import Write
    from felboot.fel import Progress
    from felboot.run import Prepared, RunReport, RunRequest
    from felboot.sim import SimBoard, SimConfig

log = logging.getLogger(__name__)

SETTLE_SECONDS = 0.5  # between the two looks at a file that may still be written
QUIET_SECONDS = 2.0  # a file untouched this long before the first look needs no second one
CHANGE_POLL_SECONDS = 1.0  # looks at the files while a round waits for a fix


# Time and files, injectable -------------------------------------------------------------


class Clock(Protocol):
    """What the loop needs of time; tests pass one whose sleep only moves the hands."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...  # wall clock: file mtimes are compared with it

    def process_time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def process_time(self) -> float:
        return time.process_time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class FileLook:
    """What stat() says of a file: enough to see it is still being written."""

    size: int
    mtime_ns: int


Stat = Callable[[Path], "FileLook | None"]  # None: the file is not there


def stat_file(path: Path) -> FileLook | None:
    try:
        result = path.stat()
    except OSError:
        return None
    return FileLook(result.st_size, result.st_mtime_ns)


@dataclass(frozen=True)
class Fingerprint:
    """A file as a round booted it; None fields: the file was not there."""

    size: int | None
    mtime_ns: int | None
    sha256: str | None


def fingerprint(path: Path, look: FileLook | None) -> Fingerprint:
    if look is None:
        return Fingerprint(None, None, None)
    digest = hashlib.sha256()
    try:
        with path.open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return Fingerprint(None, None, None)  # gone between stat and read: prepare says so
    return Fingerprint(look.size, look.mtime_ns, digest.hexdigest())


def changed_files(
    before: dict[Path, Fingerprint] | None, now: dict[Path, Fingerprint]
) -> tuple[str, ...] | None:
    """The files whose size, mtime or content differ from the last round (None: first round).

    A file only touched (same bytes, new mtime) is named "NAME (touched)": it was
    rebuilt to the same result, worth knowing when the board behaves differently.
    """
    if before is None:
        return None
    names = []
    for path, print_ in now.items():
        old = before.get(path)
        if old is None or old.sha256 != print_.sha256 or old.size != print_.size:
            names.append(path.name)
        elif old.mtime_ns != print_.mtime_ns:
            names.append(f"{path.name} (touched)")
    return tuple(names)


# Where boards come from ------------------------------------------------------------------


class DeviceSource(Protocol):
    """Boards as they enter FEL, one per round."""

    def wait_for_board(self) -> Transport:
        """Block until the board is in FEL and return it opened (errors: as --device says)."""
        ...

    def wait_gone(self, transport: Transport) -> None:
        """Close ``transport`` and block until that board has left FEL."""
        ...

    def notes(self) -> list[str]:
        """What the source decided since the last call (a selection carried over), once."""
        ...


class UsbDeviceSource:
    """Boards on a USB bus (the machine's, or a model of one), selected as --device says.

    The first round opens as `felboot run` does (``wait`` as --wait: None looks once,
    several boards and no selection is an error); later rounds wait for ever, by
    port path or SID.
    """

    def __init__(
        self,
        selector: UsbSelector,
        *,
        wait: float | None = None,
        bus: UsbBus | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.selector = selector
        self._wait = wait
        self._bus = _WatchedBus(bus or SystemUsbBus())
        self._clock = clock or SystemClock()
        self._opened: dict[int, UsbDeviceInfo] = {}  # id(transport) -> where it was found
        self._notes: list[str] = []
        self._rounds = 0

    def wait_for_board(self) -> Transport:
        wait = self._wait if self._rounds == 0 else float("inf")
        if self._rounds:
            log.info("waiting for %s to enter FEL (reset it with FEL held)", self.selector)
        self._bus.last_opened = None
        transport = open_transport(str(self.selector), wait=wait, bus=self._bus)
        try:
            info = self._bus.last_opened
            if info is not None:
                self._opened[id(transport)] = info
                if self._rounds == 0:
                    self._pin(info, transport)
        except BaseException:
            transport.close()
            raise
        self._rounds += 1
        return transport

    def wait_gone(self, transport: Transport) -> None:
        transport.close()
        info = self._opened.pop(id(transport), None)
        if info is None:
            return
        log.info("waiting for %s to leave FEL", info.description)
        while any(
            seen.bus == info.bus and seen.address == info.address for seen in self._bus.find()
        ):
            self._clock.sleep(POLL_INTERVAL)

    def notes(self) -> list[str]:
        notes, self._notes = self._notes, []
        return notes

    def _pin(self, info: UsbDeviceInfo, transport: Transport) -> None:
        """After the first round: select by what survives re-enumeration."""
        selector = self.selector
        if selector.port_path is not None or selector.sid is not None:
            return
        if info.port_path is not None:
            pinned = UsbSelector(port_path=info.port_path)
        else:
            sid = _sid_of(transport)
            if sid is None:
                self._note(
                    f"{info.description} tells neither its port path nor its SID: later rounds "
                    "take the only FEL board on the bus"
                )
                self.selector = UsbSelector()
                return
            pinned = UsbSelector(sid=sid.replace(":", ""))
        why = "a new bus address every time it enters FEL" if selector.bus is not None else ""
        was = f"{selector} (the board gets {why})" if why else f"{selector} (any board)"
        self._note(f"next rounds select --device {pinned}, was {was}")
        self.selector = pinned

    def _note(self, text: str) -> None:
        log.info("%s", text)
        self._notes.append(text)


class _WatchedBus:
    """A UsbBus that remembers which device it opened last (devices.py does not say)."""

    def __init__(self, inner: UsbBus) -> None:
        self._inner = inner
        self.last_opened: UsbDeviceInfo | None = None

    def find(self) -> list[UsbDeviceInfo]:
        return self._inner.find()

    def open(self, info: UsbDeviceInfo) -> Transport:
        transport = self._inner.open(info)
        self.last_opened = info
        return transport


def _sid_of(transport: Transport) -> str | None:
    try:
        return read_sid(FelDevice(transport))
    except FelbootError as error:
        log.warning("%s: cannot read its SID: %s", transport.description, error)
        return None


# The device model as a bus ------------------------------------------------------------------


@dataclass
class _Socket:
    port_path: str
    board: SimBoard
    address: int
    absent_for: int = 0  # looks at the bus left before the board is back
    boards: list[SimBoard] = field(default_factory=list)  # every board this socket had


class SimBus:
    """A USB bus of model boards (port path -> SimConfig), for `--device sim --loop` and tests.

    A board that left FEL (U-Boot started) is absent from ``absent_looks`` looks
    at the bus, then a NEW SimBoard (fresh ROM state, DRAM down) is there at the
    next bus address: what reset with FEL held does to a real board. A hung board
    stays listed until ``power_cycle``.
    """

    def __init__(
        self,
        ports: Mapping[str, SimConfig],
        *,
        bus: int = 1,
        first_address: int = 5,
        absent_looks: int = 1,
    ) -> None:
        self.configs = dict(ports)
        self.bus = bus
        self.absent_looks = max(1, absent_looks)
        self._next_address = first_address
        self.sockets = [self._socket(port) for port in self.configs]

    def _socket(self, port_path: str) -> _Socket:
        socket = _Socket(port_path, self._new_board(port_path), self._address())
        socket.boards.append(socket.board)
        return socket

    def _new_board(self, port_path: str) -> SimBoard:
        from felboot.sim import SimBoard

        return SimBoard(self.configs[port_path])

    def _address(self) -> int:
        address, self._next_address = self._next_address, self._next_address + 1
        return address

    def _replug(self, socket: _Socket) -> None:
        socket.board = self._new_board(socket.port_path)
        socket.boards.append(socket.board)
        socket.address = self._address()
        socket.absent_for = 0

    def power_cycle(self, port_path: str) -> None:
        """Power the board on ``port_path`` up again in FEL (after a hang)."""
        for socket in self.sockets:
            if socket.port_path == port_path:
                self._replug(socket)

    def find(self) -> list[UsbDeviceInfo]:
        found = []
        for socket in self.sockets:
            if socket.absent_for:
                socket.absent_for -= 1
                if socket.absent_for:
                    continue
                self._replug(socket)
            elif socket.board.left_fel:
                socket.absent_for = self.absent_looks
                continue
            found.append(UsbDeviceInfo(self.bus, socket.address, socket.port_path))
        return found

    def open(self, info: UsbDeviceInfo) -> Transport:
        from felboot.sim import SimTransport

        for socket in self.sockets:
            if socket.address == info.address and not socket.absent_for:
                transport = SimTransport(socket.board)
                transport.description = f"{info.description} {socket.board.name}"
                return transport
        raise DeviceGone(f"{info.description} is no longer on the bus: put the board in FEL again")


def device_source(
    spec: str, *, wait: float | None = None, clock: Clock | None = None, bus: UsbBus | None = None
) -> UsbDeviceSource:
    """The DeviceSource a --device value names: USB, or the model as a one-board bus."""
    parsed = parse_device_spec(spec)
    if isinstance(parsed, ReplaySpec):
        raise UsageError(
            f"--device {spec}: a transcript holds one session and cannot come back in FEL: "
            "--loop needs --device usb... or sim"
        )
    if isinstance(parsed, SimSpec):
        from felboot.sim.options import parse_options

        return UsbDeviceSource(
            UsbSelector(),
            wait=wait,
            bus=SimBus({"1-1": parse_options(parsed.options)}),
            clock=clock,
        )
    return UsbDeviceSource(parsed, wait=wait, bus=bus, clock=clock)


# What a round boots ----------------------------------------------------------------------


@dataclass(frozen=True)
class UBootRequest:
    """`felboot uboot` as the loop repeats it: the files, read anew every round."""

    files: tuple[Path, ...]
    writes: tuple[tuple[Path, int], ...] = ()  # --write FILE@ADDR
    script: tuple[Path, int] | None = None  # --script FILE@ADDR


@dataclass(frozen=True)
class BootDone:
    bytes_sent: int
    run: RunReport | None = None  # `run` rounds: the full report (summary, --json, watch)


class _Job(Protocol):
    def paths(self) -> list[Path]: ...

    def prepare(self) -> Any: ...

    def paths_used(self, prepared: Any) -> list[Path]: ...

    def upload_total(self, prepared: Any) -> int: ...

    def boot(self, device: FelDevice, prepared: Any, progress: TransferProgress) -> BootDone: ...


class _RunJob:
    def __init__(self, request: RunRequest) -> None:
        self.request = request

    def paths(self) -> list[Path]:
        request = self.request
        named = (request.board_file, *request.uboot, request.xen, request.kernel, request.dtb)
        return [path for path in (*named, request.initrd) if path is not None]

    def prepare(self) -> Prepared:
        from felboot.run import prepare

        return prepare(self.request)

    def paths_used(self, prepared: Prepared) -> list[Path]:
        """Also the files prepare found itself: the U-Boot lookup's, the DTB beside the kernel."""
        inputs = prepared.inputs
        found = list(inputs.uboot_choice.paths) if inputs.uboot_choice else []
        return _unique([*self.paths(), *found, Path(inputs.dtb.source)])

    def upload_total(self, prepared: Prepared) -> int:
        from felboot.run import upload_size

        return upload_size(prepared)

    def boot(self, device: FelDevice, prepared: Prepared, progress: TransferProgress) -> BootDone:
        from felboot.run import execute

        report = execute(device, prepared, self.request, progress)
        return BootDone(progress.done, report)


@dataclass(frozen=True)
class _UBootPrepared:
    bundle: Any  # felboot.images.uboot.UBootBundle
    writes: list[Write]
    script: tuple[int, bytes] | None


class _UBootJob:
    def __init__(self, request: UBootRequest) -> None:
        self.request = request

    def paths(self) -> list[Path]:
        request = self.request
        extra = [path for path, _ in request.writes]
        return _unique([*request.files, *extra, *([request.script[0]] if request.script else [])])

    def prepare(self) -> _UBootPrepared:
        from felboot.images import load
        from felboot.images.uboot import load_uboot

        request = self.request
        bundle = load_uboot(list(request.files))
        writes = [(address, load(path, "file"), str(path)) for path, address in request.writes]
        script = None
        if request.script is not None:
            path, address = request.script
            script = (address, load(path, "boot script"))
        return _UBootPrepared(bundle, writes, script)

    def paths_used(self, prepared: _UBootPrepared) -> list[Path]:
        return self.paths()

    def upload_total(self, prepared: _UBootPrepared) -> int:
        total = sum(len(data) for _, data, _ in prepared.writes)
        total += len(prepared.script[1]) if prepared.script else 0
        return total + prepared.bundle.spl.length + prepared.bundle.main_size

    def boot(
        self, device: FelDevice, prepared: _UBootPrepared, progress: TransferProgress
    ) -> BootDone:
        from felboot.boot import boot_uboot

        boot_uboot(
            device,
            prepared.bundle,
            writes=prepared.writes,
            script=prepared.script,
            progress=progress,
        )
        return BootDone(progress.done)


def _unique(paths: Sequence[Path]) -> list[Path]:
    return list(dict.fromkeys(paths))


# Timing the phases on the device's own calls ---------------------------------------------------


class TimedFelDevice(FelDevice):
    """A FelDevice that notes when a boot moves from one phase to the next.

    The boot chain's shape gives the marks: the first counted write once DRAM is
    up starts the upload (U-Boot, images, script); the first uncounted write or
    the jump after that starts the start phase (script handoff, RMR, EXEC).
    """

    def __init__(self, transport: Transport, clock: Clock) -> None:
        super().__init__(transport)
        self._clock = clock
        self.upload_at: float | None = None
        self.start_at: float | None = None

    def write(
        self,
        address: int,
        data: bytes | bytearray | memoryview,
        progress: Progress | None = None,
    ) -> None:
        if self.dram_up:
            if progress is not None and self.upload_at is None:
                self.upload_at = self._clock.monotonic()
            elif progress is None and self.upload_at is not None and self.start_at is None:
                self.start_at = self._clock.monotonic()
        super().write(address, data, progress)

    def jump(self, address: int) -> None:
        if self.start_at is None:
            self.start_at = self._clock.monotonic()
        super().jump(address)


@dataclass(frozen=True)
class Phases:
    """Seconds per phase of a round; None: the round did not get there."""

    detect: float | None = None  # opened -> SoC known, secure state, SID read
    check: float | None = None  # files settled, read and checked (felboot's own work)
    spl: float | None = None
    upload: float | None = None
    start: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {
            key: None if value is None else round(value, 3)
            for key, value in dataclasses.asdict(self).items()
        }


def _phases(
    device: TimedFelDevice, began: float, ended: float, detect: float, check: float
) -> Phases:
    upload_at = device.upload_at if device.upload_at is not None else ended
    start_at = device.start_at if device.start_at is not None else ended
    return Phases(detect, check, upload_at - began, start_at - upload_at, ended - start_at)


# One round, and the loop ------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundReport:
    """What one round did: ``format_round`` makes the line, ``to_dict`` the --json record."""

    number: int
    board: str  # the transport's description: "usb 1:9 (port 1-1.2)"
    sid: str | None
    changed: tuple[str, ...] | None  # None: the first round (nothing to compare with)
    phases: Phases
    bytes_sent: int = 0
    error: str | None = None  # the round failed: what felboot said
    verdict: str | None = None  # the watch hook's one-line verdict (console check)
    notes: tuple[str, ...] = ()
    waited: float = 0.0  # seconds the round waited for the board (the user's part)
    settled: float = 0.0  # seconds it waited for files still being written
    cpu: float = 0.0  # host CPU of the round (time.process_time), without the waits
    run: RunReport | None = field(default=None, compare=False)

    @property
    def booted(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "round": self.number,
            "board": self.board,
            "sid": self.sid,
            "changed": None if self.changed is None else list(self.changed),
            "phases": self.phases.to_dict(),
            "bytes_sent": self.bytes_sent,
            "error": self.error,
            "verdict": self.verdict,
            "notes": list(self.notes),
            "waited": round(self.waited, 3),
            "settled": round(self.settled, 3),
            "cpu": round(self.cpu, 3),
        }


def format_round(report: RoundReport) -> str:
    """One line per round: number, board, what changed, phase times, bytes (or the error)."""
    board = report.board + (f" sid {report.sid}" if report.sid else "")
    if report.changed is None:
        changed = "first round"
    else:
        changed = "changed: " + (", ".join(report.changed) if report.changed else "nothing")
    parts = [f"round {report.number}", board, changed]
    phases = report.phases
    for name, value in (
        ("detect", phases.detect),
        ("check", phases.check),
        ("SPL", phases.spl),
        ("upload", phases.upload),
        ("start", phases.start),
    ):
        if value is not None:
            parts.append(f"{name} {format_seconds(value)}")
    if report.settled:
        parts.append(f"waited {format_seconds(report.settled)} for files still being written")
    if report.error is None:
        parts.append(f"sent {format_size(report.bytes_sent)}")
    else:
        parts.append(f"failed: {report.error}")
    if report.verdict:
        parts.append(report.verdict)
    parts.extend(report.notes)
    return "  ".join(parts)


Watch = Callable[[RoundReport], "str | None"]  # the round's verdict, e.g. the console check's
OnRound = Callable[[RoundReport], None]
ProgressFactory = Callable[[int], AbstractContextManager[TransferProgress]]


@contextmanager
def no_progress(total: int) -> Iterator[TransferProgress]:
    yield TransferProgress(None)


class _Round:
    """State the rounds share: the files as last booted, the clock, the file looks."""

    def __init__(self, job: _Job, clock: Clock, stat: Stat) -> None:
        self.job = job
        self.clock = clock
        self.stat = stat
        self.booted: dict[Path, Fingerprint] | None = None  # the last round that got so far
        self.watched = job.paths()

    def settle(self) -> tuple[dict[Path, FileLook | None], float]:
        """Look at the files until none is being written; the looks and the seconds waited.

        A file written to in the last QUIET_SECONDS, or not there (a build may be
        about to write it), is looked at again SETTLE_SECONDS later; it has settled
        when both looks agree.
        """
        clock, began = self.clock, self.clock.monotonic()
        looks = {path: self.stat(path) for path in self.watched}
        warned: set[Path] = set()
        while True:
            quiet_since = (clock.time() - QUIET_SECONDS) * 1e9
            unsure = [
                path for path, look in looks.items() if look is None or look.mtime_ns > quiet_since
            ]
            if not unsure:
                return looks, self._waited(began, warned)
            clock.sleep(SETTLE_SECONDS)
            again = {path: self.stat(path) for path in self.watched}
            moving = [path for path in unsure if again[path] != looks[path]]
            if not moving:
                return again, self._waited(began, warned)
            for path in moving:
                if path not in warned:
                    warned.add(path)
                    log.warning("waiting for %s: still being written", path.name)
            looks = again

    def _waited(self, began: float, warned: set[Path]) -> float:
        """Seconds waited for files seen moving (the second look at a quiet file is the check's)."""
        return self.clock.monotonic() - began if warned else 0.0

    def prepare(self) -> tuple[Any, dict[Path, Fingerprint], float]:
        """Settle, prepare, fingerprint; again when a file moved while prepare read it."""
        waited = 0.0
        while True:
            looks, seconds = self.settle()
            waited += seconds
            prepared = self.job.prepare()
            used = self.job.paths_used(prepared)
            after = {path: self.stat(path) for path in used}
            if all(after[path] == look for path, look in looks.items() if path in after):
                self.watched = used  # the files prepare found itself count from now on
                prints = {path: fingerprint(path, after[path]) for path in used}
                return prepared, prints, waited
            log.warning("an input changed while it was read: reading the files again")

    def wait_for_change(self) -> None:
        """After a round whose files did not check: until one of them changes."""
        first = {path: self.stat(path) for path in self.watched}
        log.info("waiting for a change to %s", ", ".join(path.name for path in self.watched))
        while {path: self.stat(path) for path in self.watched} == first:
            self.clock.sleep(CHANGE_POLL_SECONDS)


def run_loop(
    request: RunRequest | UBootRequest,
    source: DeviceSource,
    *,
    rounds: int | None = None,
    on_round: OnRound | None = None,
    watch: Watch | None = None,
    progress: ProgressFactory = no_progress,
    clock: Clock | None = None,
    stat: Stat = stat_file,
) -> list[RoundReport]:
    """Boot ``request`` on every board ``source`` brings, ``rounds`` times (None: until Ctrl-C).

    ``on_round`` gets each round's report as soon as the round is over (print
    ``format_round(report)``), before the loop waits for the board to leave;
    ``watch`` runs after each boot and returns the round's verdict line (the
    console check); ``progress`` makes each round's progress report from its byte
    total (``lambda total: progress_bar(total, "upload", quiet)``). Returns the
    reports. Errors of the first round and of the source are raised; a later
    round's error is its report's ``error``.
    """
    from felboot.run import RunRequest

    job: _Job = _RunJob(request) if isinstance(request, RunRequest) else _UBootJob(request)
    state = _Round(job, clock or SystemClock(), stat)
    reports: list[RoundReport] = []
    while rounds is None or len(reports) < rounds:
        waiting = state.clock.monotonic()
        transport = source.wait_for_board()
        try:
            report, board_must_return = _one_round(
                len(reports) + 1, state, transport, waiting, source.notes(), watch, progress
            )
            reports.append(report)
            if on_round is not None:
                on_round(report)
            if rounds is not None and len(reports) >= rounds:
                break
            if board_must_return:
                source.wait_gone(transport)
            else:
                transport.close()  # nothing was sent: the board waits in FEL for the fix
                state.wait_for_change()
        finally:
            # Also on Ctrl-C and on the first round's error: nothing stays claimed
            # (closing twice is allowed: Transport.close).
            transport.close()
    return reports


def _one_round(
    number: int,
    state: _Round,
    transport: Transport,
    waiting: float,
    notes: Sequence[str],
    watch: Watch | None,
    progress: ProgressFactory,
) -> tuple[RoundReport, bool]:
    """One round on an opened board: its report, and whether the board has to leave FEL and
    come back before the next (False: the files did not check and nothing was sent)."""
    clock = state.clock
    found = clock.monotonic()
    cpu_began = clock.process_time()
    report = RoundReport(
        number, transport.description, None, None, Phases(), notes=tuple(notes),
        waited=found - waiting,
    )  # fmt: skip
    device = TimedFelDevice(transport, clock)
    in_files = False
    try:
        sid = _identify(device)
        detect = clock.monotonic() - found
        report = dataclasses.replace(report, sid=sid, phases=Phases(detect=detect))
        identified = clock.monotonic()
        in_files = True
        prepared, prints, settled = state.prepare()
        in_files = False
        check = clock.monotonic() - identified - settled
        report = dataclasses.replace(
            report,
            changed=changed_files(state.booted, prints),
            settled=settled,
            phases=Phases(detect=detect, check=check),
        )
        state.booted = prints
        began = clock.monotonic()
        with progress(state.job.upload_total(prepared)) as counter:
            try:
                done = state.job.boot(device, prepared, counter)
            finally:  # a failed boot still says how far it got
                phases = _phases(device, began, clock.monotonic(), detect, check)
                report = dataclasses.replace(report, phases=phases, bytes_sent=counter.done)
        report = dataclasses.replace(report, run=done.run)
    except FelbootError as error:
        if number == 1:
            raise
        log.info("round %d failed: %s", number, error)
        report = dataclasses.replace(report, error=str(error))
    report = dataclasses.replace(report, cpu=clock.process_time() - cpu_began)
    if watch is not None and report.booted:
        try:
            report = dataclasses.replace(report, verdict=watch(report))
        except FelbootError as error:
            report = dataclasses.replace(report, verdict=f"watch failed: {error}")
    return report, not in_files


def _identify(device: FelDevice) -> str | None:
    """SoC (the boot needs it anyway), the secure state (as every command), and the SID."""
    device.version()
    device.apply_smc_workaround()
    try:
        return read_sid(device)
    except FelbootError as error:
        log.warning("%s: cannot read its SID: %s", device.transport.description, error)
        return None
