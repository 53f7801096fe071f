"""The command line's contract: results on stdout, one error line on stderr, exit codes."""

import subprocess
import sys

import pytest

from felboot.cli import main
from tests.support import run_cli as run


def assert_one_line_error(code, err, *fragments):
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("felboot: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def test_unparseable_address(capsys):
    code, _, err = run(capsys, "--device", "sim", "hexdump", "0xZZ", "16")
    assert_one_line_error(code, err, "'0xZZ'", "0x7ea00000")


def test_missing_file_is_named_before_any_device_is_opened(capsys, tmp_path):
    missing = tmp_path / "nope.bin"
    code, _, err = run(capsys, "--device", "usb:9:9", "write", "0x2000", str(missing))
    assert_one_line_error(code, err, str(missing), "no such file")


def test_odd_write_arguments(capsys, tmp_path):
    code, _, err = run(capsys, "write", "0x2000")
    assert_one_line_error(code, err, "'0x2000' has no partner")


def test_range_wrapping_past_4g(capsys, tmp_path):
    blob = tmp_path / "blob"
    blob.write_bytes(bytes(64))
    code, _, err = run(capsys, "write", "0xffffffe0", str(blob))
    assert_one_line_error(code, err, "0xffffffe0", "past 4 GiB")


def test_unknown_device_spec(capsys):
    code, _, err = run(capsys, "--device", "bluetooth", "version")
    assert_one_line_error(code, err, "bluetooth")


def test_no_board_says_how_to_enter_fel(capsys):
    code, _, err = run(capsys, "--device", "usb", "version")
    assert_one_line_error(code, err, "FEL")


def test_writel_value_too_wide(capsys):
    code, _, err = run(capsys, "--device", "sim", "writel", "0x01c20c94", "0x100000000")
    assert_one_line_error(code, err, "0x100000000", "32 bits")


def test_no_command_prints_help(capsys):
    code, out, _ = run(capsys)
    assert code == 2 and "commands" in out


@pytest.mark.parametrize("argv", [["--help"], ["write", "--help"]])
def test_help_runs_in_a_fresh_interpreter(argv):
    result = subprocess.run(
        [sys.executable, "-m", "felboot", *argv], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and "usage: felboot" in result.stdout


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys; from felboot.cli import build_parser; build_parser(); "
        "heavy = {'usb', 'unicorn', 'tqdm', 'construct'} & set(sys.modules); print(sorted(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]"


def test_unreadable_inputs_read_alike_in_every_command(capsys, tmp_path):
    """One file reader: the same missing-file wording for write and for uboot --script."""
    code, _, err = run(capsys, "write", "0x2000", str(tmp_path))
    assert_one_line_error(code, err, f"file {tmp_path} is a directory: name a file")
    script = f"{tmp_path / 'boot.scr'}@0x43100000"
    code, _, err = run(
        capsys, "uboot", "fixtures/images/u-boot-sunxi-with-spl-a20.bin", "--script", script
    )
    assert_one_line_error(code, err, f"boot script {tmp_path / 'boot.scr'}: no such file")


def test_missing_run_input_is_named_by_its_role(capsys, tmp_path):
    payloads = "fixtures/payloads/"
    code, _, err = run(
        capsys, "plan", "--board", "cubieboard2", str(tmp_path / "xen"),
        payloads + "zImage-arm32", payloads + "sun7i-a20-felboot-test.dtb",
    )  # fmt: skip
    assert_one_line_error(code, err, f"Xen {tmp_path / 'xen'}: no such file")


def test_socs_lists_the_table_without_a_device(capsys):
    code, out, err = run(capsys, "--device", "usb:9:9", "socs")
    assert code == 0 and not err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["id", "name", "aliases"]
    h616 = next(line for line in lines if " H616 " in line)
    assert h616.split()[:6] == ["1823", "H616", "-", "AArch64", "0x40000000", "0x020000"]
    assert h616.endswith("202.5 KiB (0x32a00)")  # up to the swap buffer's spare at 0x52a00
    r528 = next(line for line in lines if " R528 " in line)
    assert "D1, D1s, T113-S3" in r528 and "AArch32" in r528


def test_socs_json(capsys):
    import json

    from felboot.soc import SOCS

    code, out, _ = run(capsys, "--json", "socs")
    rows = json.loads(out)["socs"]
    assert code == 0 and [row["name"] for row in rows] == [soc.name for soc in SOCS]
    a523 = next(row for row in rows if row["name"] == "A523")
    assert a523 == {
        "soc_id": 0x1890,
        "name": "A523",
        "aliases": [],
        "starts_aarch64": True,
        "dram_base": 0x40000000,
        "spl_addr": 0x44000,
        "spl_size_limit": 96 * 1024,
        "spl_limit_set_by": "96 KiB of SRAM",
    }


def test_a_fourth_image_file_is_refused_with_a_pointer_to_initrd(
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = ["xen", "zImage", "board.dtb", "initrd.cpio"]  # the recipe's order, initrd last
    code = main(["plan", "--board", "cubieboard2", *files])
    assert code == 2
    err = capsys.readouterr().err
    assert err == (
        "felboot: error: expected XEN KERNEL DTB, got 4 file(s): xen zImage board.dtb "
        "initrd.cpio; an initrd goes with --initrd initrd.cpio\n"
    )


def test_a_missing_kernel_without_a_dtb_is_named_as_the_missing_file(
    capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    # With the DTB left out felboot looks for it beside the kernel: a typo in the kernel's
    # version must not read as a missing DTB.
    kernel = tmp_path / "vmlinuz-6.1.0-50-armmp-lpae"
    code = main(["plan", "--board", "cubieboard2", "xen", str(kernel)])
    assert code == 2
    assert capsys.readouterr().err == f"felboot: error: kernel {kernel}: no such file\n"
