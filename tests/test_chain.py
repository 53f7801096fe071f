"""Chained commands, as sunxi-fel runs them: one device session, state kept between steps."""

from __future__ import annotations

import json

import pytest

from felboot.cli import build_parser
from felboot.commands.chain import split_commands
from tests.support import IMAGES
from tests.support import run_cli as run

UBOOT = str(IMAGES / "u-boot-sunxi-with-spl-a20.bin")
SCRIPT = str(IMAGES / "boot.scr")
BX_LR = bytes.fromhex("1eff2fe1")


def split(*words):
    return split_commands(build_parser(), list(words))


# Splitting ---------------------------------------------------------------------------------


def test_the_issues_line_is_three_commands():
    line = ["spl", "u.bin", "write", "0x42000000", "f", "exec", "0x42000000"]
    assert split(*line) == [["spl", "u.bin"], ["write", "0x42000000", "f"], ["exec", "0x42000000"]]


def test_options_before_the_first_command_go_with_every_command():
    assert split("--device", "sim", "-v", "ver", "sid") == [
        ["--device", "sim", "-v", "version"],
        ["--device", "sim", "-v", "sid"],
    ]


def test_a_command_word_is_an_argument_until_the_command_has_its_arguments():
    assert split("write", "0x2000", "spl") == [["write", "0x2000", "spl"]]  # a file named spl
    assert split("read", "0", "16", "info") == [["read", "0", "16", "info"]]
    assert split("hexdump", "0", "16", "sid") == [["hexdump", "0", "16"], ["sid"]]


def test_write_takes_pairs_until_the_next_command():
    assert split("write", "1", "a", "2", "b", "exe", "1") == [
        ["write", "1", "a", "2", "b"],
        ["exec", "1"],
    ]


def test_option_values_stay_with_their_command():
    assert split("uboot", "u.bin", "--script", "s@0x43100000", "write", "1", "f") == [
        ["uboot", "u.bin", "--script", "s@0x43100000"],
        ["write", "1", "f"],
    ]
    assert split("exec", "0x2000", "--no-return") == [["exec", "0x2000", "--no-return"]]


def test_multiwrite_takes_its_count_of_pairs():
    assert split("multiwrite", "2", "1", "a", "2", "b", "sid") == [
        ["write", "1", "a", "2", "b"],
        ["sid"],
    ]


def test_commands_that_do_not_talk_to_a_board_are_left_alone():
    assert split("inspect", "a.bin", "spl") == [["inspect", "a.bin", "spl"]]
    assert split("--json", "plan", "x", "y", "z") == [["--json", "plan", "x", "y", "z"]]


# On the model: one session ---------------------------------------------------------------


def test_spl_then_write_then_hexdump_then_info_on_one_board(capsys, boards, tmp_path):
    data = tmp_path / "f.bin"
    data.write_bytes(b"hello felboot")
    code, out, err = run(
        capsys, "--device", "sim", "spl", UBOOT, "write", "0x42000000", data,
        "hex", "0x42000000", "16", "info",
    )  # fmt: skip
    assert code == 0, err
    assert len(boards) == 1  # one device, opened once
    assert "42000000: 68 65 6c 6c 6f 20 66 65 6c 62 6f 6f 74" in out
    assert "spl: ran and returned to FEL" in out
    assert [event.kind for event in boards[0].board.events].count("spl") == 1


def test_write_then_exec_in_sram_returns(capsys, boards, tmp_path):
    code_file = tmp_path / "bxlr.bin"
    code_file.write_bytes(BX_LR)
    code, _, err = run(capsys, "--device", "sim", "write", "0x2000", code_file, "exe", "0x2000")
    assert code == 0, err
    assert len(boards) == 1


def test_write_then_exec_in_dram_after_the_spl(capsys, boards, tmp_path):
    program = tmp_path / "prog.bin"
    program.write_bytes(BX_LR)
    code, _, err = run(
        capsys, "--device", "sim", "spl", UBOOT, "write", "0x42000000", program,
        "exec", "0x42000000", "--no-return",
    )  # fmt: skip
    assert code == 0, err
    events = boards[0].board.events
    assert events[-1].kind == "uboot_started" and events[-1].address == 0x42000000


def test_uboot_then_writes_loads_them_and_starts_at_the_end(capsys, boards, tmp_path):
    blob = tmp_path / "initrd"
    blob.write_bytes(b"ramdisk" * 100)
    code, out, err = run(
        capsys, "--device", "sim", "uboot", UBOOT, "write", "0x43300000", blob,
        "write", "0x43100000", SCRIPT,
    )  # fmt: skip
    assert code == 0, err
    board = boards[0].board
    assert board.events[-1].kind == "uboot_started"
    assert board.read_memory(0x43300000, 700) == blob.read_bytes()
    # The boot script was recognised and handed to U-Boot through the SPL header.
    from felboot.images.spl import SPL_HEADER_SIZE, describe_header_in_sram

    header = describe_header_in_sram(board.read_memory(0, SPL_HEADER_SIZE))
    assert header["fel_script_address"] == "0x43100000"
    assert "U-Boot started" in out


def test_json_is_one_object_per_step(capsys, boards):
    code, out, _ = run(capsys, "--device", "sim", "--json", "ver", "sid")
    assert code == 0
    decoder = json.JSONDecoder()
    first, end = decoder.raw_decode(out)
    second, _ = decoder.raw_decode(out[end:].lstrip())
    assert first["soc"] == "A20" and "sid" in second


def test_the_first_failing_step_ends_the_chain(capsys, boards):
    code, out, err = run(capsys, "--device", "sim", "hexdump", "0x42000000", "4", "sid")
    assert code == 3 and "DRAM works only once an SPL has run" in err
    assert out == ""


# Refusals, before anything is sent ---------------------------------------------------------


S = ["--device", "sim"]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([*S, "uboot", UBOOT, "hex", "0", "4"], "only 'write' steps may follow"),
        ([*S, "wdreset", "ver"], "leaves FEL at 'reset': put it last"),
        ([*S, "reset64", "0x40000000", "sid"], "leaves FEL at 'reset64'"),
        ([*S, "exec", "0x2000", "--no-return", "sid"], "leaves FEL at 'exec'"),
        ([*S, "spl", UBOOT, "uboot", UBOOT], "'uboot' runs the SPL itself"),
        (["ver", "sid", "--device", "sim:soc=h3"], None),  # given once, anywhere: fine
        (["ver", "--device", "sim:soc=h3", "sid", *S], "--device differs"),
        ([*S, "multiwrite", "x", "0x2000", "f"], "number of ADDR FILE pairs"),
    ],
)
def test_refused_chains_send_nothing(capsys, boards, argv, fragment):
    code, out, err = run(capsys, *argv)
    if fragment is None:
        assert code == 0, err
        assert "H3" in out and len(boards) == 1
        return
    assert code == 2, err
    assert fragment in err and len(err.strip().splitlines()) == 1
    assert boards == []  # refused before any device was opened
