"""`felboot script --load tftp|mmc|usb` (issue 14, item 3): the script loads every image
itself at the plan's addresses, takes the sizes from ${filesize}, and DIR gets the images.
The golden scripts are in tests/test_bootscript.py's GOLDEN_CASES (*-load-*.boot.cmd)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from felboot.bootscript import LoadMethod, parse_load, render_boot_cmd
from felboot.cli import main
from felboot.errors import UsageError
from tests.test_bootscript import A20, plan_for

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = ROOT / "fixtures" / "payloads"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fel", LoadMethod("fel")),
        ("tftp", LoadMethod("tftp")),
        ("mmc", LoadMethod("mmc", "0:1")),
        ("mmc:1:2", LoadMethod("mmc", "1:2")),
        ("usb", LoadMethod("usb", "0:1")),
    ],
)
def test_parse_load(text: str, expected: LoadMethod) -> None:
    assert parse_load(text) == expected


@pytest.mark.parametrize("text", ["nfs", "mmc:1", "mmc:a:b", "tftp:0:1", ""])
def test_parse_load_refuses(text: str) -> None:
    with pytest.raises(UsageError, match=r"^--load .*: write fel, tftp, mmc\[:DEV:PART\]"):
        parse_load(text)


def test_every_image_is_loaded_and_its_size_comes_from_filesize() -> None:
    plan = plan_for("cubieboard2", **A20)  # type: ignore[arg-type]
    text = render_boot_cmd(
        plan, xen_args="", dom0_args="", uboot_is_64bit=False, load=LoadMethod("mmc", "0:1")
    )
    lines = text.splitlines()
    for region in plan.regions:
        assert f"load mmc 0:1 0x{region.start:08x} {region.name}" in lines
        index = lines.index(f"load mmc 0:1 0x{region.start:08x} {region.name}")
        assert lines[index + 1] == f"setenv felboot_{region.name}_size ${{filesize}}"
        assert lines[index + 2].startswith("if itest 0x${filesize} -gt ")
    kernel = plan.kernel
    assert (
        f"fdt set /chosen/module@0 reg <0x{kernel.start:08x} 0x${{felboot_kernel_size}}>" in lines
    )
    # Every load comes before the DTB is edited.
    assert max(i for i, line in enumerate(lines) if line.startswith("load ")) < lines.index(
        f"fdt addr 0x{plan.dtb.start:08x}"
    )
    dtb_check = lines[lines.index(f"load mmc 0:1 0x{plan.dtb.start:08x} dtb") + 2]
    assert "-gt 0x1ec000;" in dtb_check  # the 2 MiB slot less the room the script adds


def test_script_load_tftp_writes_the_images_into_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(PAYLOADS)
    code = main(["--json", "script", "--board", "cubieboard2", "--load", "tftp",
                 "--initrd", "initrd.img", "--domu", "zImage-arm32,mem=64M", "-o", str(tmp_path),
                 "xen-arm32.zimage", "zImage-arm32", "sun7i-a20-felboot-test.dtb"])  # fmt: skip
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["load"] == "tftp"
    names = sorted(Path(p).name for p in data["images"])
    assert names == ["domU1-kernel", "dtb", "initrd", "kernel", "xen"]
    assert (tmp_path / "xen").read_bytes() == (PAYLOADS / "xen-arm32.zimage").read_bytes()
    assert (tmp_path / "initrd").read_bytes() == (PAYLOADS / "initrd.img").read_bytes()
    text = (tmp_path / "boot.cmd").read_text()
    assert "tftpboot 0x" in text and (tmp_path / "boot.scr").is_file()
    # What to type at the prompt: in the JSON, and in the script's own header.
    address = f"0x{data['script_address']:08x}"
    assert data["uboot_commands"] == f"tftpboot {address} boot.scr; source {address}"
    assert (
        text.splitlines()[1]
        == f"# Written by felboot; at the U-Boot prompt: {data['uboot_commands']}"
    )


@pytest.mark.parametrize(
    ("load", "typed"),
    [
        ("mmc", "load mmc 0:1 {a} boot.scr; source {a}"),
        ("mmc:1:2", "load mmc 1:2 {a} boot.scr; source {a}"),
        ("usb", "usb start; load usb 0:1 {a} boot.scr; source {a}"),
    ],
)
def test_script_load_prints_the_prompt_commands(
    load: str, typed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(PAYLOADS)
    files = ["xen-arm32.zimage", "zImage-arm32", "sun7i-a20-felboot-test.dtb"]
    code = main(["script", "--board", "cubieboard2", *files, "-o", str(tmp_path), "--load", load])
    assert code == 0
    expected = typed.format(a="0x43100000")
    assert capsys.readouterr().out.endswith(f" and 3 images; at the U-Boot prompt: {expected}\n")


def test_script_load_fel_is_todays_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(PAYLOADS)
    files = ["xen-arm32.zimage", "zImage-arm32", "sun7i-a20-felboot-test.dtb"]
    assert main(["script", "--board", "cubieboard2", "-o", str(tmp_path / "a"), *files]) == 0
    assert main(["script", "--board", "cubieboard2", "--load", "fel", "-o", str(tmp_path / "b"),
                 *files]) == 0  # fmt: skip
    assert (tmp_path / "a" / "boot.cmd").read_text() == (tmp_path / "b" / "boot.cmd").read_text()
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["boot.cmd", "boot.scr"]


def test_script_load_tftp_says_to_bring_the_network_up_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(PAYLOADS)
    files = ["xen-arm32.zimage", "zImage-arm32", "sun7i-a20-felboot-test.dtb"]
    root = tmp_path / "tftp root"
    assert (
        main(["script", "--board", "cubieboard2", *files, "--load", "tftp", "-o", str(root)]) == 0
    )
    first, second = capsys.readouterr().out.splitlines()
    assert first.endswith("at the U-Boot prompt: tftpboot 0x43100000 boot.scr; source 0x43100000")
    assert second == (
        "first bring up the network: setenv autoload no; dhcp (or setenv ipaddr and serverip), "
        f"with {root} as the TFTP server's root"
    )


def test_run_with_load_points_at_script(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--device", "sim", "x", "k", "d", "--load", "tftp"])
    assert code == 2
    assert capsys.readouterr().err == (
        "felboot: error: unrecognized arguments: --load tftp: only 'felboot script' takes "
        "--load (run always loads over FEL); 'felboot script --load tftp|mmc|usb -o DIR' "
        "writes a boot.scr that loads the images itself\n"
    )
