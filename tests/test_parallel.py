"""Several boards at once: `felboot run` with --device twice or --all, and the refusals."""

from __future__ import annotations

import json

import pytest

from felboot import devices
from felboot.cli import main
from felboot.loop import SimBus
from felboot.sim.options import parse_options
from tests.test_run import IMAGES, PAYLOADS

A20_RUN = [
    "run",
    "--board",
    "a20",
    "--uboot",
    str(IMAGES / "u-boot-sunxi-with-spl-a20.bin"),
    str(PAYLOADS / "xen-arm32.zimage"),
    str(PAYLOADS / "zImage-arm32"),
    str(PAYLOADS / "sun7i-a20-felboot-test.dtb"),
]


@pytest.fixture
def bus(monkeypatch):
    """Two model A20 boards on ports 1-1 (usb:1:5) and 1-2 (usb:1:6), as the system's bus."""
    model = SimBus({"1-1": parse_options("soc=a20"), "1-2": parse_options("soc=a20,dram=2G")})
    monkeypatch.setattr(devices, "SystemUsbBus", lambda: model)
    return model


def test_two_model_boards_one_failing(capsys):
    # The H3 board does not fit the A20 profile: it fails, the other boots all the same.
    code = main(["--device", "sim", "--device", "sim:soc=h3", *A20_RUN])
    out, err = capsys.readouterr()
    assert code == 2  # the failing board's exit code (a UsageError: the wrong board)
    header, ok, failed = out.splitlines()
    assert header.split() == ["board", "port", "SID", "result", "time"]
    assert ok.startswith("sim A20 (1024 MiB)") and " ok " in ok
    assert failed.startswith("sim:soc=h3") and "failed (exit 2)" in failed
    assert "16802f2a:" in failed  # its SID was read before the run refused it
    assert "sim: ok: DRAM 1 GiB (probed), U-Boot started" in err
    assert "sim:soc=h3: failed (exit 2): the board in FEL mode is an H3" in err
    assert "sim: upload: " in err  # plain progress lines, prefixed with the board


def test_two_model_boards_json(capsys):
    code = main(["--json", "--device", "sim", *A20_RUN, "--device", "sim:soc=a20,dram=2G"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["schema"] == 1
    first, second = document["boards"]
    assert [first["device"], second["device"]] == ["sim", "sim:soc=a20,dram=2G"]
    assert first["result"] == second["result"] == "ok"
    assert first["exit_code"] == 0 and first["error"] is None
    assert first["run"]["device"]["description"] == "sim A20 (1024 MiB)"


def test_all_boots_every_board_on_the_bus_by_port(bus, capsys):
    code = main(["--all", *A20_RUN])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = out.splitlines()[1:]
    assert [row.split("  ")[0] for row in rows] == [
        "usb 1:5 (port 1-1) sim A20",
        "usb 1:6 (port 1-2) sim A20",
    ]
    assert [row.split()[6] for row in rows] == ["1-1", "1-2"]  # the port column
    assert all(" ok " in row for row in rows)
    assert "1-1: upload: " in err and "1-2: ok: DRAM 2 GiB" in err
    assert all(socket.boards[0].left_fel for socket in bus.sockets)


def test_the_same_board_twice_is_refused_and_nothing_sent(bus, capsys):
    code = main(["--device", "usb:1:5", "--device", "usb:port=1-1", *A20_RUN])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err == (
        "felboot: error: --device usb:1:5 and --device usb:port=1-1 name the same board "
        "(usb 1:5 (port 1-1)): give each board once\n"
    )
    assert not any(socket.board.events for socket in bus.sockets)


def test_a_spec_matching_nothing_is_named_and_nothing_sent(bus, capsys):
    code = main(["--device", "usb:port=1-1", "--device", "usb:port=3-4", *A20_RUN])
    _, err = capsys.readouterr()
    assert code == 3
    assert err.startswith("felboot: error: --device usb:port=3-4 matches no FEL board (found: ")
    assert err.count("\n") == 1
    assert not any(socket.board.events for socket in bus.sockets)


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["--device", "sim", "--device", "sim"], "--device sim and --device sim name the same"),
        (["--all", "--device", "sim"], "--all and --device both name boards"),
        (["--device", "usb", "--device", "sim"], "--device usb among several boards"),
        (["--device", "sim", "--device", "sim:soc=h3", "--record", "x"], "--record writes one"),
    ],
)
def test_several_boards_refusals_are_one_line(words, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main([*words, *A20_RUN])
    _, err = capsys.readouterr()
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_commands_that_boot_one_board_refuse_several(capsys):
    code = main(["--device", "sim", "--device", "sim:soc=h3", "version"])
    _, err = capsys.readouterr()
    assert code == 2
    assert "only 'run' boots several boards at once; give one --device for 'version'" in err
