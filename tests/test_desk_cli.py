"""The desk loop, the console check and the project config as the CLI wires them (issue 11)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from felboot.cli import main
from tests.support import IMAGES, PAYLOADS, ROOT

pytest.importorskip("serial", reason="pyserial (felboot[console]) is not installed")

A20_UBOOT = str(IMAGES / "u-boot-sunxi-with-spl-a20.bin")
IMAGES_ARGS = [
    str(PAYLOADS / "xen-arm32.zimage"),
    str(PAYLOADS / "zImage-arm32"),
    str(PAYLOADS / "sun7i-a20-felboot-test.dtb"),
]
RUN = ["--device", "sim", "run", "--board", "a20", "--uboot", A20_UBOOT]

# What a board prints after felboot starts it (Debian's Xen 4.17 and Linux 6.1).
XEN_BOOT = [
    "U-Boot 2023.01+dfsg-2+deb12u3 (Jan 01 2023 - 00:00:00 +0000) Allwinner Technology",
    "(XEN) Xen version 4.17.5 (Debian 4.17.5+23-ga4e5191dc0-1) (gcc (Debian 12.2.0-14)) debug=n",
    "(XEN) *** LOADING DOMAIN 0 ***",
    "[    0.000000] Booting Linux on physical CPU 0x0",
]
PANIC = [*XEN_BOOT[:3], "[    1.234567] Kernel panic - not syncing: VFS: Unable to mount root fs"]


def uart(
    lines: list[str], delay: float = 0.05, *, repeat: bool = False
) -> tuple[str, threading.Thread]:
    """A pty standing in for the board's UART; a thread writes ``lines`` once it is opened.

    ``repeat``: a board stuck printing the same lines until felboot gives up, so the
    "last lines" a time-out shows never depend on how fast a loaded machine runs.
    """
    master, slave = pty.openpty()
    name = os.ttyname(slave)

    def board() -> None:
        time.sleep(0.5)  # felboot opens the port, boots the model, then reads
        while True:
            for line in lines:
                try:
                    os.write(master, (line + "\r\n").encode())
                except OSError:
                    return
                time.sleep(delay)
            if not repeat:
                return

    writer = threading.Thread(target=board, daemon=True)
    writer.start()
    return name, writer


def felboot(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "felboot", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_run_with_expect_xen_passes_on_the_boards_lines() -> None:
    port, _ = uart(XEN_BOOT)
    result = felboot(*RUN, "--console", port, "--expect", "xen", "--timeout", "10", *IMAGES_ARGS)
    assert result.returncode == 0, result.stderr
    assert "(XEN) *** LOADING DOMAIN 0 ***" in result.stdout  # the console, after the summary
    assert result.stdout.index("Sent ") < result.stdout.index("(XEN) Xen version")
    assert "console check passed" in result.stderr


def test_fail_on_ends_the_check_early_with_the_lines_around_it() -> None:
    port, _ = uart(PANIC)
    result = felboot(*RUN, "--console", port, "--expect", "xen", "--timeout", "10", *IMAGES_ARGS)
    assert result.returncode == 10, result.stderr
    assert "Kernel panic - not syncing" in result.stderr


def test_an_expectation_never_met_times_out_showing_the_last_lines() -> None:
    port, _ = uart(XEN_BOOT[:2], delay=0.2, repeat=True)
    result = felboot(*RUN, "--console", port, "--expect", "login", "--timeout", "3", *IMAGES_ARGS)
    assert result.returncode == 11, result.stderr
    assert "(XEN) Xen version 4.17.5" in result.stderr  # the last lines, to see where it stopped


@pytest.mark.parametrize(
    ("options", "culprit"),
    [
        (["--console", "/dev/felboot-no-such-tty"], "/dev/felboot-no-such-tty"),
        (["--console", "/dev/ttyS0,fast"], "fast"),
        (["--console", "/dev/ttyS0", "--expect", "(XEN"], "(XEN"),
        (["--expect", "xen"], "--console"),
    ],
)
def test_bad_console_input_is_one_line_before_anything_is_sent(
    options: list[str], culprit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*RUN, *options, *IMAGES_ARGS])
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1 and err.startswith("felboot: error: ")
    assert culprit in err and "Traceback" not in err


def test_loop_of_two_rounds_on_the_model_prints_one_line_per_round() -> None:
    result = felboot(*RUN, "--loop", "2", *IMAGES_ARGS)
    assert result.returncode == 0, result.stderr
    rounds = [line for line in result.stdout.splitlines() if line.startswith("round ")]
    assert [line.split()[1] for line in rounds] == ["1", "2"]
    assert "first round" in rounds[0] and "changed: nothing" in rounds[1]


def test_loop_refuses_record_and_dry_run(tmp_path: Path, capsys) -> None:
    record = ["--record", str(tmp_path / "t.jsonl")]
    assert main([*RUN, "--loop", *record, *IMAGES_ARGS]) == 2
    assert "--record writes one session" in capsys.readouterr().err
    assert main([*RUN, "--loop", "--dry-run", *IMAGES_ARGS]) == 2
    assert "--dry-run sends nothing" in capsys.readouterr().err


def test_run_takes_board_images_and_device_from_felboot_toml(tmp_path: Path) -> None:
    (tmp_path / "felboot.toml").write_text(
        f'device = "sim"\nboard = "a20"\nuboot = "{A20_UBOOT}"\n'
        f'xen = "{IMAGES_ARGS[0]}"\nkernel = "{IMAGES_ARGS[1]}"\ndtb = "{IMAGES_ARGS[2]}"\n'
    )
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    result = felboot("run", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "U-Boot started" in result.stdout and "zImage-arm32" in result.stdout
    # The command line overrides the file.
    override = felboot(
        "run", "--dry-run", "--dram-size", "1G", "--layout", "recipe", cwd=tmp_path, env=env
    )
    assert override.returncode == 0, override.stderr
    assert "layout recipe" in override.stdout
