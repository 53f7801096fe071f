"""Shell habits, in a real process: closed pipes, an unwritable stdout, file names in any
encoding, Ctrl-C at start-up and while waiting, readable -v/-vv lines."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from felboot.bootscript import comment_text

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = ROOT / "fixtures" / "payloads"
UBOOT = ROOT / "fixtures" / "images" / "u-boot-sunxi-with-spl-a20.bin"
SCRIPT = Path(sys.executable).with_name("felboot")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "felboot"]


def felboot(*argv, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("capture_output", True)
    return subprocess.run([*COMMAND, *argv], cwd=ROOT, check=False, **kwargs)


def into_closed_pipe(*argv: str) -> subprocess.CompletedProcess:
    """stdout is a pipe whose reader is already gone: every write fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return felboot(*argv, stdout=write_end, stderr=subprocess.PIPE, capture_output=False)
    finally:
        os.close(write_end)


# Pipes and stdout ------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["boards"], ["socs"], ["--device", "sim", "hexdump", "0x2000", "0x8000"], ["--help"]],
    ids=["boards", "socs", "hexdump", "help"],
)
def test_a_closed_pipe_ends_quietly_with_141(argv):
    result = into_closed_pipe(*argv)
    assert result.returncode == 141 or (argv == ["--help"] and result.returncode in (0, 141))
    assert result.stderr == b"", result.stderr


def test_head_reads_the_first_line_and_felboot_ends_quietly():
    producer = subprocess.Popen(
        [*COMMAND, "--device", "sim", "hexdump", "0x2000", "0x8000"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert producer.stdout is not None and producer.stderr is not None
    first = producer.stdout.readline()
    producer.stdout.close()  # what `head -1` does after its line
    err = producer.stderr.read()
    assert producer.wait(timeout=30) in (0, 141)  # 0 when everything fit in the pipe first
    assert first.startswith(b"00002000: ") and err == b""


def test_read_to_a_closed_pipe_is_quiet():
    result = into_closed_pipe("--device", "sim", "read", "0x2000", "0x8000", "-")
    assert result.returncode == 141 and result.stderr == b""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize(
    "argv",
    [
        ["boards"],
        ["--device", "sim", "hexdump", "0x2000", "0x8000"],
        ["--device", "sim", "read", "0x2000", "16", "-"],
    ],
    ids=["boards", "hexdump", "read"],
)
def test_a_full_stdout_is_an_error_that_names_it(argv):
    with open("/dev/full", "wb") as full:
        result = felboot(*argv, stdout=full, stderr=subprocess.PIPE, capture_output=False)
    assert result.returncode == 2
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith("felboot: error: cannot write to stdout: ")
    assert "No space left on device" in line


# File names in any encoding ------------------------------------------------------------


@pytest.fixture
def odd_names(tmp_path: Path) -> dict[str, Path]:
    dtb = (PAYLOADS / "sun7i-a20-felboot-test.dtb").read_bytes()
    unicode_dtb = tmp_path / "my dtb ü.dtb"
    unicode_dtb.write_bytes(dtb)
    raw = os.fsdecode(bytes(tmp_path) + b"/raw\xff name.dtb")  # not UTF-8: argv's bytes
    Path(raw).write_bytes(dtb)
    return {"unicode": unicode_dtb, "raw": Path(raw)}


def xen_inputs(dtb: Path) -> list[bytes]:
    return [bytes(PAYLOADS / "xen-arm32.zimage"), bytes(PAYLOADS / "zImage-arm32"), bytes(dtb)]


@pytest.mark.parametrize("which", ["unicode", "raw"])
@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
def test_plan_and_script_take_any_file_name(odd_names, tmp_path, which, locale):
    dtb = odd_names[which]
    env = {**os.environ, "LC_ALL": locale, "PYTHONUTF8": "0"}
    plan = felboot("plan", "--board", "cubieboard2", *xen_inputs(dtb), env=env)
    assert plan.returncode == 0, plan.stderr
    assert os.fsencode(dtb.name) in plan.stdout  # the name as it is on disk
    out = tmp_path / "out"
    script = felboot("script", "--board", "cubieboard2", "-o", out, *xen_inputs(dtb), env=env)
    assert script.returncode == 0, script.stderr
    text = (out / "boot.cmd").read_bytes()
    assert text.isascii()
    escaped = {"unicode": [b"my dtb \\u00fc.dtb"], "raw": [b"raw\\xff name.dtb"]}[which]
    if locale == "C":  # an ASCII locale: the two UTF-8 bytes of the u-umlaut are two bytes
        escaped.append(b"my dtb \\xc3\\xbc.dtb")
    assert any(name in text for name in escaped), text


def test_run_with_a_unicode_dtb_name_boots_on_the_model(odd_names):
    result = felboot(
        "--device", "sim", "run", "--board", "a20", "--uboot", UBOOT,
        *xen_inputs(odd_names["unicode"]),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr


def test_comment_text_keeps_printable_ascii_and_escapes_the_rest():
    assert comment_text("sun7i-a20-cubieboard2.dtb  0x1000 bytes") == (
        "sun7i-a20-cubieboard2.dtb  0x1000 bytes"
    )
    assert comment_text("my dtb ü.dtb") == "my dtb \\u00fc.dtb"
    assert comment_text("x\udcffy") == "x\\xffy"
    assert comment_text("a\nreset") == "a\\x0areset"  # cannot end the comment line
    assert comment_text("back\\slash \U0001f600") == "back\\\\slash \\U0001f600"


# Ctrl-C ---------------------------------------------------------------------------------


def test_ctrl_c_while_waiting_is_one_line_and_130():
    waiting = subprocess.Popen(
        [*COMMAND, "--wait", "--device", "usb:port=9-9", "version"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert waiting.stderr is not None
    first = waiting.stderr.readline()
    assert first.startswith("waiting for a board in FEL mode"), first
    time.sleep(0.3)  # inside the poll loop
    waiting.send_signal(signal.SIGINT)
    rest = waiting.stderr.read()
    assert waiting.wait(timeout=30) == 130
    assert rest == "felboot: interrupted\n"


def test_ctrl_c_while_waiting_under_json_is_also_an_object():
    waiting = subprocess.Popen(
        [*COMMAND, "--json", "--wait", "--device", "usb:port=9-9", "version"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert waiting.stderr is not None
    waiting.stderr.readline()
    time.sleep(0.3)
    waiting.send_signal(signal.SIGINT)
    out, _ = waiting.communicate(timeout=30)
    assert waiting.returncode == 130
    assert json.loads(out)["error"] == {
        "message": "interrupted",
        "exit_code": 130,
        "kind": "Interrupted",
        "culprit": None,
    }


START_UP_INTERRUPT = """
import os, signal, sys
import felboot.__main__ as entry

class InterruptTheImport:
    def find_spec(self, name, path=None, target=None):
        if name == "felboot.cli":
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while cli.py is being imported
        return None

sys.meta_path.insert(0, InterruptTheImport())
sys.argv = ["felboot", "socs"]
raise SystemExit(entry.main())
"""


def test_ctrl_c_during_start_up_is_one_line_and_130():
    result = subprocess.run(
        [sys.executable, "-c", START_UP_INTERRUPT], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 130
    assert result.stderr == "felboot: interrupted\n" and result.stdout == ""


# -v and -vv ------------------------------------------------------------------------


def test_verbose_lines_are_felboot_info_in_hex():
    result = felboot("-v", "--device", "sim", "spl", UBOOT, text=True)
    assert result.returncode == 0, result.stderr
    info = [line for line in result.stderr.splitlines() if "stack pointers" in line]
    assert info == ["felboot: info: A20: stack pointers: sp_irq=0x00002000, sp=0x00005df8"]
    assert "CpuState(" not in result.stderr and "INFO " not in result.stderr
    assert "felboot: trace:" not in result.stderr  # -v alone: no request trace


def test_very_verbose_traces_each_fel_request():
    result = felboot("-vv", "--device", "sim", "spl", UBOOT, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert "felboot: trace: FEL VERSION 0x00000000 length 0x0 (0)" in lines
    assert "felboot: trace: FEL READ    0x00008000 length 0x4000 (16384)" in lines  # MMU table
    cpu = next(line for line in lines if "cpu state" in line)
    assert cpu.startswith("felboot: debug: A20: cpu state: sctlr=0x00c53879 ttbr0=0x00008000")
