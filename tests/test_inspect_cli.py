"""`felboot inspect`: readable text (golden files per fixture), --json, exit codes, Debian files.

FELBOOT_UPDATE_GOLDEN=1 rewrites fixtures/golden/inspect/ (review the diff).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from felboot.cli import main
from tests.support import run_cli as run

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "fixtures" / "golden" / "inspect"
UPDATE = os.environ.get("FELBOOT_UPDATE_GOLDEN") == "1"
# Every image and payload fixture, by its path from the repository root (the .dts sources aside).
FIXTURES = sorted(
    str(path.relative_to(ROOT))
    for folder in ("images", "payloads")
    for path in (ROOT / "fixtures" / folder).iterdir()
    if path.suffix != ".dts"
)
DECIMAL_ADDRESS = re.compile(r"\b(load|entry|offset|at)\b:? +[0-9]{3,}\b")


def golden_name(fixture: str) -> str:
    return fixture.removeprefix("fixtures/").replace("/", "--") + ".txt"


@pytest.fixture(autouse=True)
def _at_the_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # golden text names the files by their relative path


@pytest.mark.parametrize("fixture", FIXTURES)
def test_golden_text(capsys: pytest.CaptureFixture[str], fixture: str) -> None:
    code, out, err = run(capsys, "inspect", fixture)
    path = GOLDEN / golden_name(fixture)
    if UPDATE:
        path.write_text(out)
    assert out == path.read_text()
    problems = [line for line in out.splitlines() if line.startswith("  problem: ")]
    assert code == (1 if problems else 0)
    assert err.count("felboot: problem: ") == len(problems)


def test_golden_directory_has_no_stale_files() -> None:
    assert sorted(p.name for p in GOLDEN.glob("*.txt")) == sorted(map(golden_name, FIXTURES))


@pytest.mark.parametrize("fixture", FIXTURES)
def test_text_is_readable_not_python(capsys: pytest.CaptureFixture[str], fixture: str) -> None:
    _, out, _ = run(capsys, "inspect", fixture)
    assert not re.search(r"[{}\[\]]|\bTrue\b|\bFalse\b|\bNone\b", out), out
    assert not DECIMAL_ADDRESS.search(out), out


def test_json_keeps_the_data_and_numbers_are_ints(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--json", "inspect", "fixtures/images/u-boot-sunxi-with-spl-a64.bin")
    assert code == 0
    (info,) = json.loads(out)["files"]
    assert info["kind"] == "u-boot-with-spl"
    assert info["spl"]["soc_id"] == 0x1689
    assert info["main_offset"] == 0x8000
    assert info["main"]["images"]["atf"]["entry"] == 0x44000
    assert isinstance(info["spl"]["checksum"], int)
    assert info["problems"] == [] and info["warnings"] == []


def test_json_of_several_files_lists_them(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "--json", "inspect", "fixtures/payloads/zImage-arm32", "fixtures/images/boot.scr"
    )
    assert code == 0
    assert [item["kind"] for item in json.loads(out)["files"]] == ["zImage", "legacy-image"]


def test_json_and_problem_exit(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--json", "inspect", "fixtures/images/broken-spl-bad-checksum.bin")
    assert code == 1
    assert json.loads(out)["files"][0]["spl"]["checksum_ok"] is False
    assert "does not match the computed" in err


def test_one_bad_file_among_good_ones_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "inspect", "fixtures/images/spl-v2-a20.bin", "fixtures/payloads/initrd.img"
    )
    assert code == 1
    assert out.count("\n\n") == 1  # one blank line between the two reports
    assert err.strip().splitlines() == [
        "felboot: problem: fixtures/payloads/initrd.img: felboot does not recognise this file "
        "(first bytes 2488e084376d37bb)"
    ]


def test_warnings_do_not_fail(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "inspect", "fixtures/payloads/no-console.dtb")
    assert code == 0
    assert err.startswith("felboot: warning: fixtures/payloads/no-console.dtb: no /chosen")


def test_missing_file_is_one_error_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "inspect", str(tmp_path / "gone.itb"))
    assert code != 0
    assert err.strip().splitlines() == [f"felboot: error: {tmp_path / 'gone.itb'}: no such file"]


def test_help_documents_the_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["inspect", "--help"])
    out = capsys.readouterr().out
    assert "--json" in out and "plain int" in out


# Debian's real files (skipped when the packages are not installed) ---------------

BOOT = Path("/boot")


def first(pattern: str) -> Path | None:
    found = sorted(Path("/").glob(pattern.lstrip("/")))
    return found[0] if found else None


def inspect_text(capsys: pytest.CaptureFixture[str], path: Path | None, package: str) -> str:
    if path is None:
        pytest.skip(f"{package} is not installed")
    code, out, _ = run(capsys, "inspect", str(path))
    assert code == 0, out
    return out


def test_debian_xen_armhf(capsys: pytest.CaptureFixture[str]) -> None:
    out = inspect_text(capsys, first("/boot/xen-4.*-armhf"), "xen-hypervisor-4.17-armhf")
    assert re.search(r": Xen 4\.\d+ hypervisor, arm32 zImage\n", out)
    assert re.search(r"Xen markers: +xen,xen-4\.\d+, Xen version banner", out)
    assert re.search(r"load size: +1\.1 MiB \(1,1\d\d,\d\d\d bytes\)", out)  # bss included
    assert "bootz" in out


def test_debian_xen_arm64(capsys: pytest.CaptureFixture[str]) -> None:
    out = inspect_text(capsys, first("/boot/xen-4.*-arm64"), "xen-hypervisor-4.17-arm64")
    assert re.search(r": Xen 4\.\d+ hypervisor, arm64 Image\n", out)
    assert "booti" in out


def test_debian_lpae_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    out = inspect_text(capsys, first("/boot/vmlinuz-*-armmp-lpae"), "linux-image-armmp-lpae")
    # A zImage's Linux is compressed: felboot.images.xen knows it by its decompressor.
    try:
        import felboot.images.xen  # noqa: F401
    except ModuleNotFoundError:
        assert ": arm32 zImage: neither Xen's nor Linux' markers found\n" in out
    else:
        assert ": Linux kernel, arm32 zImage\n" in out
    assert re.search(r"LPAE: +yes \(", out)


def test_debian_arm64_kernel_is_not_taken_for_xen(capsys: pytest.CaptureFixture[str]) -> None:
    # Linux carries "xen,xen-" and "Xen version not found": neither is a Xen marker.
    out = inspect_text(capsys, first("/boot/vmlinuz-*-arm64"), "linux-image-arm64")
    assert ": Linux kernel, arm64 Image\n" in out
    assert re.search(r"Linux version: +\d+\.\d+\.\d+-\d+-arm64", out)


def test_debian_cubieboard2_dtb(capsys: pytest.CaptureFixture[str]) -> None:
    dtb = first("/usr/lib/linux-image-*-armmp*/sun7i-a20-cubieboard2.dtb")
    out = inspect_text(capsys, dtb, "linux-image-armmp-lpae")
    assert ": device tree for Cubietech Cubieboard2 (A20)\n" in out
    assert re.search(r"board: +cubietech,cubieboard2\n", out)
    assert re.search(r"SoC: +A20 \(FEL SoC id 0x1651\), from allwinner,sun7i-a20\n", out)
    assert re.search(r"Xen dtuart: +/soc/serial@1c28000\n", out)


def test_debian_cubieboard2_uboot(capsys: pytest.CaptureFixture[str]) -> None:
    path = first("/usr/lib/u-boot/Cubieboard2/u-boot-sunxi-with-spl.bin")
    out = inspect_text(capsys, path, "u-boot-sunxi:armhf")
    assert ": U-Boot with SPL for sun7i-a20-cubieboard2 (A20)\n" in out
    assert re.search(r"U-Boot version: +20\d\d\.\d\d", out)
    assert "U-Boot proper at 0x8000: U-Boot legacy image: U-Boot proper\n" in out
    assert re.search(r"load: +0x4a000000\n", out)


def test_debian_pine64_plus_fit(capsys: pytest.CaptureFixture[str]) -> None:
    path = first("/usr/lib/u-boot/pine64_plus/u-boot-sunxi-with-spl.fit.itb")
    out = inspect_text(capsys, path, "u-boot-sunxi:arm64")
    assert re.search(r"config-2: sun50i-a64-pine64-plus \(A64\); loads atf, ", out)
    assert re.search(r"atf: firmware, arm64, load 0x44000, entry 0x44000, ", out)


def test_debian_initrd_is_seen_as_compressed_data(capsys: pytest.CaptureFixture[str]) -> None:
    out = inspect_text(capsys, first("/boot/initrd.img-*"), "an initramfs in /boot")
    assert re.search(r": (zstd|gzip|xz|lz4|lzma|bzip2|lzo|cpio) data: an initrd\?", out)
