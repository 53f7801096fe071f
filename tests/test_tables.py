"""The one table of `plan`, `run --dry-run` and `run`, and the size style (golden text per layout).

FELBOOT_UPDATE_GOLDEN=1 rewrites fixtures/golden/tables/ (review the diff).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from felboot.cli import main
from felboot.units import format_size
from tests.support import ROOT, fixture_script

GOLDEN = ROOT / "fixtures" / "golden" / "tables"
A20 = [
    "--board", "cubieboard2", "--uboot", "fixtures/images/u-boot-sunxi-with-spl-a20.bin",
    "--initrd", "fixtures/payloads/initrd.img", "fixtures/payloads/xen-arm32.zimage",
    "fixtures/payloads/zImage-arm32", "fixtures/payloads/sun7i-a20-felboot-test.dtb",
]  # fmt: skip
A64 = [
    "--board", "pine64-plus", "--uboot", "fixtures/images/u-boot-sunxi-with-spl-a64.bin",
    "fixtures/payloads/xen-arm64.Image", "fixtures/payloads/Image-arm64",
    "fixtures/payloads/sun50i-a64-felboot-test.dtb",
]  # fmt: skip
LAYOUTS = {
    "plan-a20": ["plan", *A20],
    "plan-a20-verbose": ["-v", "plan", *A20],
    "dry-run-a20": ["--device", "sim", "run", "--dry-run", *A20],
    "run-a20": ["--device", "sim", "run", *A20],
    "run-a64-gzip": ["--device", "sim:soc=a64,dram=2G", "run", *A64],
}
normalise_timings = fixture_script("record_transcripts").normalise_timings


def output(capsys: pytest.CaptureFixture[str], monkeypatch: Any, argv: list[str]) -> str:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return normalise_timings(out)


@pytest.mark.parametrize("name", LAYOUTS)
def test_golden_text(capsys: pytest.CaptureFixture[str], monkeypatch: Any, name: str) -> None:
    text = output(capsys, monkeypatch, LAYOUTS[name])
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("FELBOOT_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


def table(text: str) -> list[str]:
    lines = text.splitlines()
    heading = ["start", "end", "region"]
    first = next(i for i, line in enumerate(lines) if line.split()[:3] == heading)
    rows = []
    for line in lines[first:]:
        if not line.startswith("  0x") and rows:
            break
        rows.append(line)
    return rows


@pytest.mark.parametrize("name", LAYOUTS)
def test_rows_are_sorted_and_aligned(
    capsys: pytest.CaptureFixture[str], monkeypatch: Any, name: str
) -> None:
    header, *rows = table(output(capsys, monkeypatch, LAYOUTS[name]))
    starts = [int(row.split()[0], 16) for row in rows]
    assert starts == sorted(starts)
    for column in ("end", "region", "data"):  # left-aligned columns start where the header's do
        at = header.index(column)
        assert all(row[at - 2 : at] == "  " and row[at] != " " for row in rows), column
    room_end = header.index("room") + len("room")
    assert all(row[room_end - 1] != " " and row[room_end] == " " for row in rows)


def test_names_are_not_cut(capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> None:
    rows = table(output(capsys, monkeypatch, LAYOUTS["run-a20"]))
    assert any("  U-Boot felboot fixture  " in row for row in rows)
    assert any("U-Boot after relocation (code, malloc, video, stack)" in row for row in rows)


def test_probe_words_only_with_verbose(
    capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    quiet = output(capsys, monkeypatch, LAYOUTS["plan-a20"])
    verbose = output(capsys, monkeypatch, LAYOUTS["plan-a20-verbose"])
    assert "SPL DRAM probe" not in quiet and "-v lists them" in quiet
    assert len(re.findall(r"SPL DRAM probe \d", verbose)) == 6


def test_plan_shows_the_command_lines_and_run_the_board_time_and_rate(
    capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    plan = output(capsys, monkeypatch, LAYOUTS["plan-a20"]).splitlines()
    assert "Xen command line:  console=dtuart dom0_mem=512M" in plan
    assert any(line.startswith("dom0 command line:  console=hvc0") for line in plan)
    run = output(capsys, monkeypatch, LAYOUTS["run-a64-gzip"]).splitlines()
    assert run[-3] == "Board: sim A64 (2048 MiB)"
    assert run[-2].startswith("Time: find <time> s, SPL <time> s, upload <time> s, start")
    assert run[-1] == "Sent 214.7 KiB at <time>/s for 328.3 KiB of input."
    assert any("141.5 KiB (gzip of 256 KiB)" in line for line in run)


@pytest.mark.parametrize(
    "size, text",
    [
        (884_744, "864 KiB"),  # not "864.0 KiB"
        (1 << 30, "1 GiB"),
        (32_925_286, "31.4 MiB"),
        (917_512, "896 KiB"),
        (1536, "1.5 KiB"),
        ((1 << 20) - 1, "1 MiB"),  # rounds into the next unit, not "1024 KiB"
        (1023, "1023 bytes"),
        (0, "0 bytes"),
    ],
)
def test_one_size_style(size: int, text: str) -> None:
    assert format_size(size) == text


def test_golden_directory_has_no_stale_files() -> None:
    assert sorted(p.stem for p in Path(GOLDEN).glob("*.txt")) == sorted(LAYOUTS)


def test_the_board_line_names_port_and_sid_when_known() -> None:
    from felboot.commands.xen import known_sid
    from felboot.run import board_seen

    class Device:
        class transport:  # stands in for a Transport instance
            description = "usb 1:7 (port 1-1.2)"

    seen = board_seen(Device(), known_sid("usb:sid=" + "02c00081" * 4))  # type: ignore[arg-type]
    assert (seen.port, seen.sid) == ("1-1.2", "02c00081:02c00081:02c00081:02c00081")
    assert known_sid("usb:1:7") is None and known_sid("sim") is None
