"""console.py: a pseudo-terminal pair stands in for the board's UART.

pyserial opens the slave's name as it would /dev/ttyUSB0; a writer thread
puts U-Boot's, Xen's and Linux's real boot lines into the master with small
delays, as a board would after the start.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import io
import os
import pty
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from felboot.console import (
    Console,
    ConsoleSpec,
    add_console_options,
    console_from_args,
    parse_console_spec,
    port_error,
    watch,
)
from felboot.errors import DeviceError, PermissionDenied, UsageError
from felboot.expect import EXIT_FAILED, EXIT_TIMED_OUT, Outcome, make_check

serial = pytest.importorskip("serial")

# As Debian's U-Boot 2023.01, Xen 4.17 and Linux 6.1 print them on UART0 (with CR LF).
BOOT = [
    b"U-Boot SPL 2023.01+dfsg-2 (Apr 04 2024 - 18:21:21 +0000)\r\n",
    b"DRAM: 1024 MiB\r\n",
    b"Trying to boot from FEL\r\n",
    b"U-Boot 2023.01+dfsg-2 (Apr 04 2024 - 18:21:21 +0000) Allwinner Technology\r\n",
    b"## Executing script at 43100000\r\n",
    b"Starting kernel ...\r\n",
    b"(XEN) Xen version 4.17.5-pre (Debian 4.17.5+23-ga4e5191dc0-1) debug=n\r\n",
    b"(XEN) *** LOADING DOMAIN 0 ***\r\n",
    b"(XEN) Loading d0 kernel from boot module @ 0000000048300000\r\n",
    b"[    0.000000] Booting Linux on physical CPU 0x0\r\n",
    b"[    0.000000] Linux version 6.1.0-57-armmp-lpae (debian-kernel@lists.debian.org)\r\n",
]
PANIC = [
    b'[    2.870000] VFS: Cannot open root device "mmcblk0p2" or unknown-block(0,0)\r\n',
    b"[    2.880000] Kernel panic - not syncing: VFS: Unable to mount root fs on "
    b"unknown-block(0,0)\r\n",
    b"[    2.890000] CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.1.0-57-armmp-lpae #1\r\n",
    b"[    2.900000] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs ]---\r\n",
]


@dataclasses.dataclass
class Uart:
    """The master side of a pty pair: the board's end of the cable."""

    master: int
    port: str

    def write(self, chunks: list[bytes], delay: float = 0.01) -> threading.Thread:
        def run() -> None:
            for chunk in chunks:
                os.write(self.master, chunk)
                time.sleep(delay)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


@pytest.fixture
def uart() -> Iterator[Uart]:
    master, slave = pty.openpty()
    try:
        yield Uart(master, os.ttyname(slave))
    finally:
        os.close(master)
        os.close(slave)


@pytest.fixture
def opened(uart: Uart) -> Iterator[Console]:
    console = Console(ConsoleSpec(uart.port))
    console.open()
    try:
        yield console
    finally:
        console.close()


def test_expect_xen_passes_on_a_real_boot(uart: Uart, opened: Console) -> None:
    out = io.StringIO()
    uart.write(BOOT)
    verdict = watch(opened, make_check(["xen"], timeout=5), out)
    assert verdict.outcome is Outcome.PASSED and verdict.exit_code == 0
    assert [s.line for s in verdict.seen] == [
        BOOT[6].decode().rstrip(),
        BOOT[7].decode().rstrip(),
        BOOT[9].decode().rstrip(),
    ]
    shown = out.getvalue().splitlines()
    assert shown[0] == BOOT[0].decode().rstrip()  # CR LF as a plain line on the terminal
    assert shown[-1] == BOOT[9].decode().rstrip()  # returns at the last expected line


def test_the_console_keeps_what_came_before_the_read(uart: Uart, opened: Console) -> None:
    # Opened before the start, read after: the SPL's lines during the upload are not lost.
    uart.write(BOOT[:3], delay=0).join()
    time.sleep(0.1)
    out = io.StringIO()
    uart.write(BOOT[3:])
    verdict = watch(opened, make_check(["^U-Boot SPL", "xen"], timeout=5), out)
    assert verdict.passed
    assert out.getvalue().startswith("U-Boot SPL 2023.01")


def test_expect_that_never_matches_times_out_with_the_last_lines(
    uart: Uart, opened: Console
) -> None:
    uart.write(BOOT[:6]).join()  # U-Boot starts the kernel, then nothing: a wrong Xen
    check = dataclasses.replace(make_check(["xen"], timeout=0.4), tail=3)
    verdict = watch(opened, check, io.StringIO())
    assert verdict.outcome is Outcome.TIMED_OUT and verdict.exit_code == EXIT_TIMED_OUT
    assert verdict.context == tuple(line.decode().rstrip() for line in BOOT[3:6])
    report = verdict.report()
    assert "timed out" in report[0] and r"\(XEN\) Xen version" in report[0]
    assert report[-1] == "  Starting kernel ..."


def test_fail_on_ends_early_with_the_lines_around_it(uart: Uart, opened: Console) -> None:
    check = dataclasses.replace(make_check(["login"], timeout=30), grace=0.3)
    writer = uart.write([*BOOT, *PANIC])
    verdict = watch(opened, check, io.StringIO())  # long before the 30 s
    writer.join()
    assert verdict.outcome is Outcome.FAILED and verdict.exit_code == EXIT_FAILED
    assert verdict.failure is not None and "Unable to mount root fs" in verdict.failure.line
    context = "\n".join(verdict.context)
    assert "> [    2.880000] Kernel panic - not syncing" in context
    assert "VFS: Cannot open root device" in context  # before
    assert "---[ end Kernel panic" in context  # after
    assert verdict.seconds < 30


def test_a_login_prompt_without_newline_passes_and_is_shown(uart: Uart, opened: Console) -> None:
    out = io.StringIO()
    uart.write([*BOOT[9:], b"\r\nDebian GNU/Linux 12 debian ttyS0\r\n\r\n", b"debian login: "])
    verdict = watch(opened, make_check(["linux", "login"], timeout=5), out)
    assert verdict.passed
    assert verdict.seen[-1].line == "debian login: "
    assert out.getvalue().endswith("debian login: \n")  # the sink's line ended for the verdict


def test_the_log_keeps_raw_bytes_and_the_terminal_gets_replacements(
    uart: Uart, tmp_path: Path
) -> None:
    log = tmp_path / "console.log"
    raw = [b"U-Boot SPL 2023.01\r\n", b"garbage \xff\xfe at the wrong baud\r\n", b"\xe2\x82"]
    console = Console(ConsoleSpec(uart.port), log)
    console.open()
    try:
        uart.write([*raw, b"\xac end\r\n"]).join()
        out = io.StringIO()
        watch(console, make_check(["end$"], timeout=5), out)
    finally:
        console.close()
    assert log.read_bytes() == b"".join(raw) + b"\xac end\r\n"
    lines = out.getvalue().splitlines()
    assert lines[1] == "garbage \ufffd\ufffd at the wrong baud"
    assert lines[2] == "\u20ac end"  # a character split across two reads is still one


def test_timestamps_relative_and_wall(uart: Uart) -> None:
    for mode, pattern in (
        ("relative", r"\[\+ *\d+\.\d{3}\] U-Boot SPL"),
        ("wall", r"\[\d\d:\d\d:\d\d\.\d{3}\] U-Boot SPL"),
    ):
        console = Console(ConsoleSpec(uart.port), timestamps=mode)
        console.open()
        try:
            uart.write(BOOT[:1]).join()
            out = io.StringIO()
            watch(console, make_check(["SPL"], timeout=5), out)
        finally:
            console.close()
        assert re.fullmatch(pattern + r".*\n", out.getvalue()), (mode, out.getvalue())


def test_rounds_are_marked_in_the_stream_and_the_log(uart: Uart, tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    console = Console(ConsoleSpec(uart.port), log, timestamps="relative")
    console.open()
    try:
        uart.write(BOOT[:2]).join()
        out = io.StringIO()
        assert watch(console, make_check(["DRAM"], timeout=5), out).passed
        uart.write([b"a half-written line"]).join()
        time.sleep(0.1)
        console.mark("round 2")  # the unfinished line belongs to round 1
        uart.write(BOOT[:2]).join()
        assert watch(console, make_check(["DRAM"], timeout=5), out).passed
    finally:
        console.close()
    shown = out.getvalue().splitlines()
    assert shown[2].endswith("] a half-written line")
    assert shown[3] == "[+   0.000] --- round 2 ---"  # the clock restarts with the round
    assert shown[4].endswith("] U-Boot SPL 2023.01+dfsg-2 (Apr 04 2024 - 18:21:21 +0000)")
    assert b"a half-written line\n--- round 2 ---\nU-Boot SPL" in log.read_bytes()


def test_lines_collects_what_arrives_between_rounds(uart: Uart, opened: Console) -> None:
    uart.write(BOOT[:3], delay=0).join()
    lines = opened.lines(0.3)
    assert [line.text for line in lines] == [b.decode().rstrip() for b in BOOT[:3]]
    assert opened.read_line(0.01) is None


def test_a_port_that_goes_away_is_named(uart: Uart, opened: Console) -> None:
    os.close(uart.master)
    uart.master = os.open(os.devnull, os.O_RDONLY)  # for the fixture's close
    with pytest.raises(DeviceError, match=f"console {uart.port} stopped: .*adapter"):
        for _ in range(100):
            opened.read_line(0.05)


# Bad input: one line each, named, with the fix ------------------------------------------


def test_a_missing_port_is_named_with_the_fix() -> None:
    console = Console(ConsoleSpec("/dev/ttyUSB-felboot-none"))
    with pytest.raises(DeviceError, match=r"console /dev/ttyUSB-felboot-none: no such port: .*ls"):
        console.open()
    assert not console.is_open


def test_a_busy_port_is_named_with_fuser(uart: Uart, opened: Console) -> None:
    with pytest.raises(DeviceError, match=rf"console {uart.port} is busy: .*fuser -v {uart.port}"):
        Console(ConsoleSpec(uart.port)).open()


def test_a_file_that_is_not_a_tty_is_named(tmp_path: Path) -> None:
    path = tmp_path / "not-a-tty"
    path.write_bytes(b"")
    with pytest.raises(DeviceError, match=f"console {path} is not a serial port"):
        Console(ConsoleSpec(str(path))).open()


def test_permission_denied_names_the_group(uart: Uart) -> None:
    # Root opens any tty, so pyserial's error is made here as it raises it (serialposix.open).
    error = serial.SerialException(errno.EACCES, f"could not open port {uart.port}: denied")
    found = port_error(uart.port, error)
    assert isinstance(found, PermissionDenied)
    group = rf"console {uart.port}: permission denied: add yourself to the \S+ group"
    assert re.search(group, str(found))
    assert "usermod -aG" in str(found)


def test_a_log_that_cannot_be_written_is_named_before_the_port(uart: Uart, tmp_path: Path) -> None:
    log = tmp_path / "no-such-dir" / "console.log"
    with pytest.raises(UsageError, match=f"--console-log {log}: cannot write it"):
        Console(ConsoleSpec(uart.port), log).open()


@pytest.mark.parametrize(
    ("text", "port", "baud"),
    [
        ("/dev/ttyUSB0", "/dev/ttyUSB0", 115200),
        ("/dev/ttyUSB0,1500000", "/dev/ttyUSB0", 1500000),
        ("socket://lab:7001,115200", "socket://lab:7001", 115200),
    ],
)
def test_console_spec(text: str, port: str, baud: int) -> None:
    assert parse_console_spec(text) == ConsoleSpec(port, baud)


@pytest.mark.parametrize("baud", ["fast", "115k", "-9600", "0"])
def test_a_baud_that_is_not_a_number_is_named(baud: str) -> None:
    with pytest.raises(
        UsageError, match=f"--console '/dev/ttyUSB0,{baud}': baud rate '{baud}' is not a number"
    ):
        parse_console_spec(f"/dev/ttyUSB0,{baud}")


def test_without_pyserial_the_fix_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "serial", None)
    with pytest.raises(UsageError, match=re.escape("pip install 'felboot[console]'")):
        Console(ConsoleSpec("/dev/ttyUSB0")).open()


def test_pyserial_is_not_loaded_until_a_console_opens() -> None:
    code = (
        "import argparse, sys; from felboot import console; "
        "console.add_console_options(argparse.ArgumentParser()); "
        "console.console_from_args(argparse.Namespace(console='/dev/ttyUSB0')); "
        "assert 'serial' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# The options the CLI adds -----------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_console_options(parser)
    return parser.parse_args(argv)


def test_console_from_args_builds_the_console_and_the_check(tmp_path: Path) -> None:
    args = parse(
        "--console", "/dev/ttyS1,1500000", "--console-log", str(tmp_path / "c.log"),
        "--timestamps", "--expect", "xen", "--expect", "login", "--timeout", "90",
    )  # fmt: skip
    setup = console_from_args(args)
    assert setup is not None
    assert setup.console.spec == ConsoleSpec("/dev/ttyS1", 1500000)
    assert setup.console.log_path == tmp_path / "c.log"
    assert setup.console.timestamps == "relative"
    assert len(setup.check.expect) == 4 and setup.check.timeout == 90
    assert len(setup.check.fail_on) == 3  # the defaults
    assert not setup.console.is_open  # nothing opened yet


def test_no_console_no_setup() -> None:
    assert console_from_args(parse()) is None
    assert console_from_args(argparse.Namespace()) is None  # a parser without the options


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--expect", "xen"], "--expect reads the serial console: add --console"),
        (["--console", "/dev/ttyS0", "--expect", "(XEN"], "--expect '(XEN' is not a regular"),
        (["--console", "/dev/ttyS0", "--fail-on", "*oops"], "--fail-on '*oops' is not a regular"),
        (["--console", "/dev/ttyS0", "--timeout", "soon"], "--timeout 'soon' is not a number"),
        (["--console", "/dev/ttyS0,fast"], "baud rate 'fast' is not a number"),
    ],
)
def test_bad_options_are_one_line_each(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)) as caught:
        console_from_args(parse(*argv))
    assert "\n" not in str(caught.value)


def test_bad_timestamps_and_an_unopened_console() -> None:
    with pytest.raises(UsageError, match="--timestamps 'utc': give relative or wall"):
        Console(ConsoleSpec("/dev/ttyS0"), timestamps="utc")
    with pytest.raises(RuntimeError, match="open"):
        watch(Console(ConsoleSpec("/dev/ttyS0")), make_check(timeout=1), io.StringIO())
