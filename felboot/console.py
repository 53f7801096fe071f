"""The board's serial console: open it before the start, stream it after, check it.

``--console PORT[,BAUD]`` (115200 8N1 unless told) is opened before a single
byte goes to the board, so a missing or busy port costs nothing and the
SPL's first lines are not lost: a reader thread takes every byte from then on
(the kernel's tty buffer is only a few KiB, and a long upload or a loop's wait
between rounds would overflow it), writes it to ``--console-log`` as it came,
and queues the decoded lines with the time they arrived. ``watch`` then shows
them on a text sink the CLI passes in and feeds them to expect.Watcher.

pyserial is the optional extra ``felboot[console]``; it is imported only when
a console is opened, so ``felboot --help`` never loads it. PORT may also be a
pyserial URL (``socket://HOST:PORT`` for a ser2net lab, ``loop://``).
"""

from __future__ import annotations

import argparse
import codecs
import errno
import grp
import importlib
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, TextIO

from felboot.errors import DeviceError, PermissionDenied, UsageError
from felboot.expect import Check, Verdict, Watcher, make_check

log = logging.getLogger(__name__)

DEFAULT_BAUD = 115200  # what U-Boot, Xen and Linux use on sunxi UART0 (README, run summary)
READ_TIMEOUT = 0.05  # the reader thread wakes this often to see whether to stop
POLL = 0.05  # how long a quiet line may wait before its unfinished part is shown
QUEUE_LIMIT = 100_000  # lines kept unread (a chatty dom0 between loop rounds); oldest dropped


@dataclass(frozen=True)
class ConsoleSpec:
    port: str
    baud: int = DEFAULT_BAUD

    @property
    def is_url(self) -> bool:
        return "://" in self.port

    def __str__(self) -> str:
        return f"{self.port},{self.baud}"


def parse_console_spec(text: str) -> ConsoleSpec:
    """PORT[,BAUD] -> ConsoleSpec; the framing is always 8N1."""
    port, comma, baud_text = text.rpartition(",")
    if not comma:
        port, baud_text = text, ""
    if not port:
        raise UsageError(f"--console {text!r}: name the port, e.g. --console /dev/ttyUSB0,115200")
    if not baud_text:
        return ConsoleSpec(port)
    try:
        baud = int(baud_text)
    except ValueError:
        baud = 0
    if baud <= 0:
        raise UsageError(
            f"--console {text!r}: baud rate {baud_text!r} is not a number: "
            f"write PORT,BAUD, e.g. {port},{DEFAULT_BAUD}"
        )
    return ConsoleSpec(port, baud)


@dataclass(frozen=True)
class ConsoleLine:
    """One line as it arrived (text without the newline), or a round marker."""

    text: str
    monotonic: float  # when its last byte arrived (time.monotonic)
    wall: float  # the same, as time.time()
    shown: int = 0  # characters already handed out as an unfinished line
    complete: bool = True
    marker: bool = False  # "--- round 2 ---": felboot's, not the board's


class SerialPort(Protocol):
    """What the console needs of a pyserial port (tests may pass their own)."""

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def close(self) -> None: ...


def pyserial() -> Any:
    """The serial module, imported only now (it is an optional extra)."""
    try:
        return importlib.import_module("serial")
    except ImportError:
        raise UsageError("--console needs pyserial: pip install 'felboot[console]'") from None


def open_port(spec: ConsoleSpec) -> SerialPort:
    """The port opened 8N1 at spec.baud, exclusively; each failure named with its fix."""
    serial = pyserial()
    port = spec.port
    if not spec.is_url and not os.path.exists(port):
        raise DeviceError(
            f"console {port}: no such port: plug in the USB-serial adapter and check "
            "the name (ls /dev/ttyUSB* /dev/ttyACM*)"
        )
    try:
        opened: SerialPort = serial.serial_for_url(
            port,
            baudrate=spec.baud,
            bytesize=8,
            parity="N",
            stopbits=1,
            timeout=READ_TIMEOUT,
            exclusive=None if spec.is_url else True,  # flock: a second reader is refused
        )
    except ValueError as error:  # pyserial: a baud rate or URL it cannot take
        raise UsageError(f"--console {spec}: {error}") from None
    except serial.SerialException as error:
        raise port_error(port, error) from None
    return opened


def port_error(port: str, error: Exception) -> DeviceError:
    """pyserial's SerialException (an OSError with the errno) as one line with the fix."""
    code = getattr(error, "errno", None)
    if code in (errno.EACCES, errno.EPERM):
        group = port_group(port)
        return PermissionDenied(
            f"console {port}: permission denied: add yourself to the {group} group "
            f"(sudo usermod -aG {group} $USER, then log in again)"
        )
    if code in (errno.EBUSY, errno.EAGAIN):  # EAGAIN: pyserial's flock found another holder
        return DeviceError(
            f"console {port} is busy: another program has it open (fuser -v {port} "
            "names it: close its minicom/screen/picocom)"
        )
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return DeviceError(
            f"console {port}: the port went away: plug the USB-serial adapter back in"
        )
    if code == errno.ENOTTY or "Inappropriate ioctl" in str(error):
        return DeviceError(f"console {port} is not a serial port: name a tty, e.g. /dev/ttyUSB0")
    return DeviceError(f"console {port}: cannot open it ({error}): check the adapter and the name")


def port_group(port: str) -> str:
    """The group that may open the port (dialout on Debian), for the fix."""
    try:
        return grp.getgrgid(os.stat(port).st_gid).gr_name
    except (OSError, KeyError):
        return "dialout"


class Console:
    """A serial console kept open across rounds: open(), read_line()/lines(), mark(), close()."""

    def __init__(
        self,
        spec: ConsoleSpec,
        log_path: Path | None = None,
        *,
        timestamps: str | None = None,  # None, "wall" or "relative"
    ) -> None:
        if timestamps not in (None, "wall", "relative"):
            raise UsageError(f"--timestamps {timestamps!r}: give relative or wall")
        self.spec = spec
        self.log_path = log_path
        self.timestamps = timestamps
        self.opened_at = 0.0
        self.clock_start = 0.0  # relative timestamps count from here: open, then each mark
        self.dropped = 0
        self._port: SerialPort | None = None
        self._log: IO[bytes] | None = None
        self._log_at_line_start = True
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ready = threading.Condition()
        self._queue: deque[ConsoleLine] = deque()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""
        self._partial_shown = 0
        self._partial_since = (0.0, 0.0)
        self._error: str | None = None

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def open(self, port: SerialPort | None = None) -> None:
        """Open the port (or take ``port``) and the log, and start reading."""
        if self._port is not None:
            return
        if self.log_path is not None:
            try:
                self._log = self.log_path.open("ab")
            except OSError as error:
                raise UsageError(
                    f"--console-log {self.log_path}: cannot write it ({error.strerror})"
                ) from None
        try:
            self._port = port if port is not None else open_port(self.spec)
        except BaseException:
            self._close_log()
            raise
        self.opened_at = self.clock_start = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._read_forever, name="console", daemon=True)
        self._thread.start()
        log.info("console %s open%s", self.spec, f", log {self.log_path}" if self._log else "")

    def __enter__(self) -> Console:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading and close the port and the log; the unread lines stay readable."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._port is not None:
            try:
                self._port.close()
            except Exception as error:  # a port gone with its adapter: nothing left to close
                log.debug("console %s: close: %s", self.spec.port, error)
            self._port = None
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _read_forever(self) -> None:
        port = self._port
        assert port is not None
        while not self._stop.is_set():
            try:
                data = port.read(max(1, port.in_waiting))
            except Exception as error:  # pyserial's SerialException, OSError: the port went away
                with self._ready:
                    self._error = str(error)
                    self._ready.notify_all()
                return
            if data:
                self._take(data, time.monotonic(), time.time())

    def _take(self, data: bytes, now: float, wall: float) -> None:
        with self._ready:
            if self._log is not None:
                self._log.write(data)
                self._log.flush()  # a crash, or a Ctrl-C, keeps what the board said
                self._log_at_line_start = data.endswith(b"\n")
            text = self._decoder.decode(data)
            if not self._partial:
                self._partial_since = (now, wall)
            *done, self._partial = (self._partial + text).split("\n")
            for line in done:
                self._push(ConsoleLine(line.rstrip("\r"), now, wall, self._partial_shown))
                self._partial_shown = 0
            if done and self._partial:
                self._partial_since = (now, wall)
            self._ready.notify_all()

    def _push(self, line: ConsoleLine) -> None:
        if len(self._queue) >= QUEUE_LIMIT:
            self._queue.popleft()
            self.dropped += 1
            if self.dropped == 1:
                log.warning("console %s: more than %d lines unread", self.spec.port, QUEUE_LIMIT)
        self._queue.append(line)

    def read_line(self, timeout: float) -> ConsoleLine | None:
        """The next complete line or marker, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._ready:
            while not self._queue:
                if self._error is not None:
                    raise DeviceError(
                        f"console {self.spec.port} stopped: {self._error}: check the "
                        "USB-serial adapter and its cable"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._thread is None:
                    return None
                self._ready.wait(remaining)
            line = self._queue.popleft()
        if line.marker:
            self.clock_start = line.monotonic
        return line

    def lines(self, timeout: float) -> list[ConsoleLine]:
        """Every line that arrives within ``timeout`` seconds (for a loop between rounds)."""
        deadline = time.monotonic() + timeout
        found = []
        while (line := self.read_line(max(0.0, deadline - time.monotonic()))) is not None:
            found.append(line)
            if time.monotonic() >= deadline:
                break
        return found

    def take_partial(self) -> ConsoleLine | None:
        """The unfinished last line (a prompt has no newline), marked as shown up to its end."""
        with self._ready:
            if self._queue or not self._partial:
                return None
            line = ConsoleLine(
                self._partial.rstrip("\r"),
                *self._partial_since,
                shown=self._partial_shown,
                complete=False,
            )
            self._partial_shown = len(self._partial)
            return line

    def mark(self, label: str) -> None:
        """End a round: what came so far belongs to it; the log and the stream get a marker."""
        now, wall = time.monotonic(), time.time()
        text = f"--- {label} ---"
        with self._ready:
            if self._partial:
                self._push(ConsoleLine(self._partial.rstrip("\r"), now, wall, self._partial_shown))
                self._partial, self._partial_shown = "", 0
            if self._log is not None:
                newline = b"" if self._log_at_line_start else b"\n"
                self._log.write(newline + text.encode() + b"\n")
                self._log.flush()
                self._log_at_line_start = True
            self._push(ConsoleLine(text, now, wall, marker=True))
            self._ready.notify_all()

    def prefix(self, line: ConsoleLine) -> str:
        """The timestamp a line is shown with (--timestamps), or nothing."""
        if self.timestamps == "wall":
            stamp = time.strftime("%H:%M:%S", time.localtime(line.wall))
            return f"[{stamp}.{int(line.wall * 1000) % 1000:03d}] "
        if self.timestamps == "relative":
            return f"[+{line.monotonic - self.clock_start:8.3f}] "
        return ""


def show(console: Console, line: ConsoleLine, out: TextIO) -> None:
    """A line on the sink: its new part only when a start was shown unfinished."""
    new = line.text[line.shown :]
    if line.complete and not new and line.shown and not line.marker:
        out.write("\n")
    elif line.complete or new:
        start = console.prefix(line) if line.shown == 0 else ""
        out.write(start + new + ("\n" if line.complete else ""))
    out.flush()


def watch(console: Console, check: Check, out: TextIO) -> Verdict:
    """Show the console on ``out`` and decide ``check``; call it after the board was started.

    Returns when every --expect pattern was seen, a --fail-on line (and the few
    after it) arrived, or check.timeout passed; with no timeout and nothing to
    expect it streams until Ctrl-C (KeyboardInterrupt is the caller's).
    """
    if not console.is_open:
        raise RuntimeError("watch() needs an open console: call console.open() first")
    started = time.monotonic()
    watcher = Watcher(check, started)
    deadline = None if check.timeout is None else started + check.timeout
    unfinished = False  # an unfinished line is on the sink: end it before returning
    while not watcher.done:
        now = time.monotonic()
        limits = [d for d in (deadline, watcher.grace_deadline()) if d is not None]
        if limits and now >= min(limits):
            break
        line = console.read_line(min([POLL, *(d - now for d in limits)]))
        if line is None:
            partial = console.take_partial()
            if partial is not None:
                show(console, partial, out)
                unfinished = unfinished or len(partial.text) > partial.shown
                watcher.feed_partial(partial.text, time.monotonic())
            continue
        show(console, line, out)
        unfinished = False
        if not line.marker:
            watcher.feed(line.text, line.monotonic)
    if unfinished:
        out.write("\n")
        out.flush()
    return watcher.verdict(time.monotonic())


# The command line --------------------------------------------------------------------


@dataclass(frozen=True)
class ConsoleSetup:
    """--console and the check, parsed; the console is not open yet."""

    console: Console
    check: Check


def add_console_options(parser: argparse.ArgumentParser) -> None:
    """--console, --console-log, --timestamps, --expect, --timeout, --fail-on."""
    group = parser.add_argument_group("serial console and boot checks")
    group.add_argument(
        "--console",
        metavar="PORT[,BAUD]",
        help=f"the board's UART, opened before the start and shown after (8N1, "
        f"{DEFAULT_BAUD} unless given); needs felboot[console]",
    )
    group.add_argument(
        "--console-log", metavar="FILE", help="append the console's raw bytes to FILE"
    )
    group.add_argument(
        "--timestamps",
        nargs="?",
        const="relative",
        choices=("relative", "wall"),
        help="prefix each console line with seconds since the console opened "
        "(or the round began), or with the wall clock",
    )
    group.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="REGEX",
        help="a pattern the console must show, in order (repeatable); presets: xen "
        "(Xen's banner, dom0 loading, Linux booting), linux, uboot, login",
    )
    group.add_argument(
        "--timeout",
        metavar="SECONDS",
        help="give up waiting for --expect after this long (default 120 with --expect)",
    )
    group.add_argument(
        "--fail-on",
        action="append",
        metavar="REGEX",
        help="end early on a line matching REGEX (repeatable; replaces the defaults "
        "'Kernel panic - not syncing', '(XEN) Panic on CPU', 'data abort': add them "
        "back with --fail-on default, drop all with --fail-on none)",
    )


def console_from_args(args: argparse.Namespace) -> ConsoleSetup | None:
    """The console and check the options ask for, or None; every value checked, no I/O."""
    spec_text = getattr(args, "console", None)
    expect = list(getattr(args, "expect", None) or [])
    fail_on = getattr(args, "fail_on", None)
    timeout_text = getattr(args, "timeout", None)
    log_text = getattr(args, "console_log", None)
    timestamps = getattr(args, "timestamps", None)
    if not spec_text:
        given = [
            name
            for name, value in (
                ("--expect", expect),
                ("--fail-on", fail_on),
                ("--timeout", timeout_text),
                ("--console-log", log_text),
                ("--timestamps", timestamps),
            )
            if value
        ]
        if given:
            raise UsageError(
                f"{given[0]} reads the serial console: add --console PORT[,BAUD], "
                "e.g. --console /dev/ttyUSB0"
            )
        return None
    spec = parse_console_spec(spec_text)
    timeout = None
    if timeout_text is not None:
        try:
            timeout = float(timeout_text)
        except ValueError:
            raise UsageError(
                f"--timeout {timeout_text!r} is not a number of seconds: e.g. --timeout 90"
            ) from None
    check = make_check(expect, fail_on, timeout)
    console = Console(spec, Path(log_text) if log_text else None, timestamps=timestamps)
    return ConsoleSetup(console, check)
