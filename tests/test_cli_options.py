"""Global options where people put them: before or after the command, --wait with or without
seconds, one-line refusals, and the --json error object."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from felboot.cli import build_parser, split_wait
from tests.support import run_cli as run

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = "fixtures/payloads/"
XEN_INPUTS = [
    PAYLOADS + "xen-arm32.zimage",
    PAYLOADS + "zImage-arm32",
    PAYLOADS + "sun7i-a20-felboot-test.dtb",
]
UBOOT = "fixtures/images/u-boot-sunxi-with-spl-a20.bin"
GLOBAL_OPTIONS = ["-v", "--quiet", "--debug", "--json", "--device", "--wait", "--record", "--force"]


def parse(*argv: str):
    return build_parser().parse_args(split_wait(argv))


def felboot(*argv: str, **kwargs) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it."""
    script = Path(sys.executable).with_name("felboot")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "felboot"]
    return subprocess.run(
        [*command, *argv], capture_output=True, text=True, cwd=ROOT, check=False, **kwargs
    )


# Before or after the command -------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ("--device", "sim", "--json", "-q", "--debug", "--record", "t.jsonl", "version"),
        ("version", "--device", "sim", "--json", "-q", "--debug", "--record", "t.jsonl"),
        ("--device", "sim", "-q", "version", "--json", "--debug", "--record", "t.jsonl"),
    ],
    ids=["before", "after", "mixed"],
)
def test_global_options_work_before_and_after_the_command(argv):
    args = parse(*argv)
    assert (args.device, args.json, args.quiet, args.debug, args.record) == (
        "sim",
        True,
        True,
        True,
        "t.jsonl",
    )


def test_a_value_before_the_command_is_not_reset_by_the_command_parser():
    args = parse("--device", "sim", "--wait", "5", "--record", "x.jsonl", "-v", "version")
    assert (args.device, args.wait, args.record, args.verbose) == ("sim", 5.0, "x.jsonl", 1)
    defaults = parse("version")
    # --device is None until the config is applied ("not given"; config.RUN_DEFAULTS: "usb").
    assert (defaults.device, defaults.wait, defaults.record, defaults.json) == (
        None,
        None,
        None,
        False,
    )


def test_the_last_value_wins_as_argparse_does():
    assert parse("--device", "usb:1:2", "version", "--device", "sim").device == "sim"


def test_verbose_counts_on_both_sides(capsys):
    assert parse("-v", "version", "-v").verbose == 1  # parsed; main() adds the two up
    code, _, err = run(capsys, "-v", "--device", "sim", "version", "-v")
    assert code == 0 and "felboot: trace: FEL VERSION" in err  # -vv: the request trace


@pytest.mark.parametrize("name", sorted(build_parser()._subparsers._group_actions[0].choices))
def test_every_command_help_lists_the_global_options(name):
    parser = build_parser()._subparsers._group_actions[0].choices[name]
    text = parser.format_help()
    assert "global options (before or after the command)" in text
    for option in GLOBAL_OPTIONS:
        assert option in text, (name, option)


def test_readme_version_forms_run_on_the_model():
    for argv in (["--device", "sim", "version"], ["version", "--device", "sim"]):
        result = felboot(*argv)
        assert result.returncode == 0 and result.stdout.startswith("A20 (SoC id 0x1651)"), result
    as_json = felboot("version", "--device", "sim", "--json")
    assert as_json.returncode == 0 and json.loads(as_json.stdout)["soc_id"] == 0x1651


def test_readme_list_json_form_is_accepted():
    result = felboot("list", "--json")
    assert "unrecognized arguments" not in result.stderr
    assert json.loads(result.stdout)["schema"] == 1


# --wait ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "wait", "images"),
    [
        (("--wait", "run", "--board", "a20", *XEN_INPUTS), math.inf, XEN_INPUTS),
        (("--wait", "30", "run", *XEN_INPUTS), 30.0, XEN_INPUTS),
        (("--wait=2.5", "run", *XEN_INPUTS), 2.5, XEN_INPUTS),
        (("run", "--wait", *XEN_INPUTS), math.inf, XEN_INPUTS),
        (("run", "--wait", "30", *XEN_INPUTS), 30.0, XEN_INPUTS),
        (("run", *XEN_INPUTS, "--wait"), math.inf, XEN_INPUTS),
        (("run", "--wait", "--board", "a20", *XEN_INPUTS), math.inf, XEN_INPUTS),
        (("--wait", "0", "run", *XEN_INPUTS), 0.0, XEN_INPUTS),
    ],
    ids=["bare-then-command", "seconds", "equals", "after", "after-seconds", "last", "option", "0"],
)
def test_wait_alone_waits_forever_and_takes_only_a_number(argv, wait, images):
    args = parse(*argv)
    assert args.wait == wait and args.images == images


def test_wait_before_a_hex_address_is_forever_and_the_address_stays():
    args = parse("read", "--wait", "0x2000", "16", "-")
    assert args.wait == math.inf and args.address == "0x2000"


@pytest.mark.parametrize("value", ["nan", "inf", "-infinity", "-1", "-0.5", "=abc", "=1e999"])
def test_bad_wait_values_are_one_line(capsys, value):
    argv = [f"--wait{value}"] if value.startswith("=") else ["--wait", value]
    code, out, err = run(capsys, *argv, "version")
    assert code == 2 and not out
    (line,) = err.splitlines()
    assert line.startswith("felboot: error: argument --wait: ")
    assert "is not a number of seconds" in line and "leave it out to wait forever" in line


def test_readme_real_board_command_parses_and_dry_runs():
    """`felboot --wait run --board ...` (the README's form) once failed on 'run'."""
    result = felboot(
        "--wait", "run", "--dry-run", "--board", "cubieboard2", "--uboot", UBOOT, *XEN_INPUTS
    )
    assert result.returncode == 0, result.stderr
    assert "invalid float" not in result.stderr and "nothing was sent to a device" in result.stdout


DEBIAN = [
    Path("/boot/xen-4.17-armhf"),
    Path("/boot/vmlinuz-6.1.0-57-armmp-lpae"),
    Path("/usr/lib/linux-image-6.1.0-57-armmp-lpae/sun7i-a20-cubieboard2.dtb"),
]


@pytest.mark.skipif(not all(p.exists() for p in DEBIAN), reason="Debian's Xen and kernel")
def test_readme_real_board_command_with_debians_files():
    result = felboot("--wait", "run", "--dry-run", "--board", "cubieboard2", *map(str, DEBIAN))
    assert result.returncode == 0, result.stderr
    assert "nothing was sent to a device" in result.stdout


def test_wait_is_said_in_words_not_inf(capsys):
    from felboot.commands.common import open_device

    args = parse("--device", "sim", "--wait", "version")
    with open_device(args):
        pass
    assert "waiting for a board in FEL mode: press its FEL button now" in capsys.readouterr().err


# Errors: one line; with --json one object on stdout too ------------------------------


def test_argparse_refusals_are_one_line(capsys):
    code, out, err = run(capsys, "frobnicate")
    assert code == 2 and not out
    (line,) = err.splitlines()
    assert line.startswith("felboot: error: argument COMMAND: invalid choice: 'frobnicate'")
    assert line.endswith("(see 'felboot --help')")
    code, _, err = run(capsys, "hexdump", "0x2000")
    (line,) = err.splitlines()
    assert "the following arguments are required: length" in line
    assert "(see 'felboot hexdump --help')" in line


def test_json_error_is_one_object_on_stdout_besides_the_line(capsys):
    code, out, err = run(capsys, "--device", "bluetooth", "version", "--json")
    assert code == 2
    assert err.splitlines() == [f"felboot: error: {json.loads(out)['error']['message']}"]
    assert json.loads(out) == {
        "schema": 1,
        "error": {
            "message": json.loads(out)["error"]["message"],
            "exit_code": 2,
            "kind": "UsageError",
            "culprit": "bluetooth",
        },
    }
    assert out.count("\n") == 1  # one line: easy to split from a stream


def test_json_error_of_a_device_failure_carries_its_exit_code(capsys):
    code, out, _ = run(capsys, "--json", "--device", "sim", "hexdump", "0x42000000", "16")
    error = json.loads(out)["error"]
    assert code == 3 and error["exit_code"] == 3 and error["kind"] == "DeviceTimeout"
    assert "DRAM works only once an SPL has run" in error["message"]


def test_json_usage_error_names_the_option(capsys):
    code, out, _ = run(capsys, "--json", "--wait", "nan", "version")
    assert code == 2 and json.loads(out)["error"]["culprit"] == "--wait"


def test_no_json_no_object(capsys):
    code, out, err = run(capsys, "--device", "bluetooth", "version")
    assert code == 2 and out == "" and err.startswith("felboot: error: ")


# felboot list: no board is exit 3 (README, "Errors and exit codes") ----------------------


def test_list_finding_no_board_exits_3_and_still_prints_the_listing(capsys, monkeypatch):
    import felboot.devices

    monkeypatch.setattr(felboot.devices, "list_devices", lambda bus=None: [])
    code, out, _ = run(capsys, "list", "--json")
    assert code == 3 and json.loads(out) == {"schema": 1, "devices": []}
