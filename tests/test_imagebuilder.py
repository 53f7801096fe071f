"""ImageBuilder config import (issue 14, item 4): the file read as data (never run), every
key mapped onto felboot's request, bad lines named with file:line, the command line over
the file. The keys and their meaning: ImageBuilder's README (xen-project/imagebuilder)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from felboot.cli import main
from felboot.domains import DEFAULT_MEM, DomU
from felboot.imagebuilder import ImageBuilderError, map_config, parse_lines

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = ROOT / "fixtures" / "payloads"
MiB = 1 << 20

# The README's example, with its ZynqMP files (paths relative to the config).
README_EXAMPLE = """\
MEMORY_START="0x0"
MEMORY_END="0x80000000"
LOAD_CMD="tftpb"
BOOT_CMD="booti"

DEVICE_TREE="mpsoc.dtb"
XEN="xen"
XEN_CMD="console=dtuart dtuart=serial0 dom0_mem=1G dom0_max_vcpus=1 \
bootscrub=0 vwfi=native sched=null"
DOM0_KERNEL="Image-dom0"
DOM0_CMD="console=hvc0 earlycon=xen earlyprintk=xen clk_ignore_unused"
DOM0_RAMDISK="dom0-ramdisk.cpio"
DOM0_MEM=1024
DOM0_VCPUS=1

NUM_DOMUS=2
DOMU_KERNEL[0]="zynqmp-dom1/Image-domU"
DOMU_PASSTHROUGH_PATHS[0]="/axi/ethernet@ff0e0000 /axi/serial@ff000000"
DOMU_CMD[0]="console=ttyPS0 earlycon console=ttyPS0,115200 clk_ignore_unused \
rdinit=/sbin/init root=/dev/ram0 init=/bin/sh"
DOMU_RAMDISK[0]="zynqmp-dom1/domU-ramdisk.cpio"
DOMU_COLORS[0]="6-14"
DOMU_KERNEL[1]="zynqmp-dom2/Image-domU"
DOMU_RAMDISK[1]="zynqmp-dom2/domU-ramdisk.cpio"
DOMU_MEM[1]=512
DOMU_VCPUS[1]=1

UBOOT_SOURCE="boot.source"
UBOOT_SCRIPT="boot.scr"
"""


def test_the_readme_example_maps_onto_felboots_request() -> None:
    base = Path("/cfg")
    config = map_config(README_EXAMPLE, base / "config")
    assert (config.xen, config.kernel, config.dtb, config.initrd) == (
        base / "xen", base / "Image-dom0", base / "mpsoc.dtb", base / "dom0-ramdisk.cpio"
    )  # fmt: skip
    assert config.xen_args is not None and config.xen_args.startswith("console=dtuart dtuart=")
    assert config.dom0_args == "console=hvc0 earlycon=xen earlyprintk=xen clk_ignore_unused"
    assert config.dom0_mem is None  # XEN_CMD is set: ImageBuilder ignores DOM0_MEM then
    assert config.load == "tftp"
    assert config.memory == (0, 0x80000000, "/cfg/config:1 and /cfg/config:2")
    assert not config.no_dom0
    assert config.domus == (
        DomU(
            index=1,
            kernel=base / "zynqmp-dom1/Image-domU",
            ramdisk=base / "zynqmp-dom1/domU-ramdisk.cpio",
            mem=DEFAULT_MEM,
            args="console=ttyPS0 earlycon console=ttyPS0,115200 clk_ignore_unused "
            "rdinit=/sbin/init root=/dev/ram0 init=/bin/sh",
            passthrough=("/axi/ethernet@ff0e0000", "/axi/serial@ff000000"),
        ),
        DomU(
            index=2,
            kernel=base / "zynqmp-dom2/Image-domU",
            ramdisk=base / "zynqmp-dom2/domU-ramdisk.cpio",
            mem=512 * MiB,
            vcpus=1,
            args="console=ttyAMA0",  # ImageBuilder's default DOMU_CMD
        ),
    )
    (warning,) = config.warnings
    assert warning == (
        "/cfg/config: ImageBuilder keys felboot does not use, ignored: BOOT_CMD, "
        "DOMU_COLORS[0], UBOOT_SOURCE, UBOOT_SCRIPT, "
        "DOM0_MEM (XEN_CMD is set, as ImageBuilder ignores it then), "
        "DOM0_VCPUS (XEN_CMD is set, as ImageBuilder ignores it then)"
    )


def test_every_key_without_xen_cmd() -> None:
    text = """\
# a comment, then every key felboot maps
XEN=/abs/xen
DOM0_KERNEL='dom0 Image'
DOM0_RAMDISK=initrd.img   # a comment after a value
DOM0_CMD="console=ttyS0,115200"
DOM0_MEM=384
DOM0_VCPUS=2
DEVICE_TREE=board.dtb
XEN_PASSTHROUGH_PATHS="/soc/a /soc/b"
LOAD_CMD="load mmc 0:2"
MEMORY_START=0x40000000
MEMORY_END=0x80000000
NUM_DOMUS=1
DOMU_KERNEL[0]=domu/Image
DOMU_RAMDISK[0]=domu/r.cpio
DOMU_MEM[0]=64
DOMU_VCPUS[0]=2
DOMU_CMD[0]="console=ttyAMA0 quiet"
DOMU_PASSTHROUGH_DTB[0]=domu/part.dtb
DOMU_PASSTHROUGH_PATHS[0]=/soc/ethernet@1c50000
"""
    config = map_config(text, Path("dir/ib.cfg"))
    assert config.xen == Path("/abs/xen")  # absolute stays
    assert config.kernel == Path("dir/dom0 Image")
    assert config.initrd == Path("dir/initrd.img")
    assert config.dtb == Path("dir/board.dtb")
    assert config.dom0_args == "console=ttyS0,115200"
    assert config.dom0_mem == "384M"  # MB in ImageBuilder
    assert config.xen_args == "dom0_max_vcpus=2"
    assert config.passthrough == ("/soc/a", "/soc/b")
    assert config.load == "mmc:0:2"
    assert config.memory == (0x40000000, 0x80000000, "dir/ib.cfg:11 and dir/ib.cfg:12")
    (domu,) = config.domus
    assert domu == DomU(
        index=1,
        kernel=Path("dir/domu/Image"),
        ramdisk=Path("dir/domu/r.cpio"),
        mem=64 * MiB,
        vcpus=2,
        args="console=ttyAMA0 quiet",
        dtb=Path("dir/domu/part.dtb"),
        passthrough=("/soc/ethernet@1c50000",),
    )
    assert config.warnings == ()


@pytest.mark.parametrize(
    ("load", "expected"),
    [
        ("tftpb", "tftp"),
        ("tftpboot", "tftp"),
        ("load mmc 0:1", "mmc:0:1"),
        ("fatload usb 0:1", "usb:0:1"),
        ("ext4load mmc 1:2", "mmc:1:2"),
    ],
)
def test_load_cmd(load: str, expected: str) -> None:
    assert map_config(f'LOAD_CMD="{load}"\n', Path("c")).load == expected


def test_load_cmd_without_an_equivalent_is_a_warning() -> None:
    config = map_config('LOAD_CMD="load scsi 0:1"\n', Path("c"))
    assert config.load is None
    assert config.warnings == (
        "c:1: LOAD_CMD='load scsi 0:1' has no felboot equivalent (felboot script --load "
        "takes tftp, mmc[:DEV:PART] or usb[:DEV:PART]); ignored",
    )


def test_no_dom0_kernel_is_dom0less_and_the_last_assignment_wins() -> None:
    config = map_config(
        "XEN=xen\nDEVICE_TREE=a.dtb\nNUM_DOMUS=1\nDOMU_KERNEL[0]=one\nDOMU_KERNEL[0]=two\n",
        Path("c"),
    )
    assert config.no_dom0 and config.kernel is None
    assert config.domus[0].kernel == Path("two")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("XEN=xen\nrm -rf /\n", "ib.cfg:2: 'rm -rf /' is not KEY=value or KEY[N]=value"),
        ("export XEN=xen\n", "ib.cfg:1: 'export XEN=xen' is not KEY=value"),
        ('XEN="$HOME/xen"\n', "ib.cfg:1: '$HOME/xen' holds a $ expansion"),
        ('XEN="`pwd`/xen"\n', "ib.cfg:1: '`pwd`/xen' holds a command substitution"),
        ("XEN=$(pwd)/xen\n", "ib.cfg:1: '$(pwd)/xen' is not a plain value"),
        ('XEN="xen\n', "ib.cfg:1: the double quote is never closed"),
        ("XEN='xen\n", "ib.cfg:1: the single quote is never closed"),
        ("XEN=a b\n", "ib.cfg:1: 'b' follows the value"),
        ("\nDOM0_MEM=1G\n", "ib.cfg:2: DOM0_MEM='1G' is not a whole number from 1"),
        ("NUM_DOMUS=two\n", "ib.cfg:1: NUM_DOMUS='two' is not a whole number from 0"),
        ("NUM_DOMUS=1\nDOMU_KERNEL[0]=k\nDOMU_MEM[0]=0\n", "ib.cfg:3: DOMU_MEM[0]='0'"),
        ("NUM_DOMUS=1\nDOMU_KERNEL[0]=k\nDOMU_VCPUS[0]=x\n", "ib.cfg:3: DOMU_VCPUS[0]='x'"),
        ("NUM_DOMUS=2\nDOMU_KERNEL[0]=k\n", "ib.cfg:1: NUM_DOMUS=2 but no DOMU_KERNEL[1]"),
        ("NUM_DOMUS=1\nDOMU_KERNEL[1]=k\n", "ib.cfg:2: DOMU_KERNEL[1] is beyond NUM_DOMUS=1"),
        ("DOMU_KERNEL[0]=k\n", "ib.cfg:1: DOMU_KERNEL[0] but no NUM_DOMUS"),
        ("DOMU_KERNEL=k\n", "ib.cfg:1: write DOMU_KERNEL[N]=..."),
        ("XEN[0]=x\n", "ib.cfg:1: write XEN=..."),
        (
            "NUM_DOMUS=1\nDOMU_KERNEL[0]=k\nDOMU_PASSTHROUGH_PATHS[0]=soc/x\n",
            "ib.cfg:3: DOMU_PASSTHROUGH_PATHS[0] 'soc/x' is not an absolute device-tree path",
        ),
        ("MEMORY_START=0x40000000\n", "ib.cfg:1: MEMORY_START and MEMORY_END go together"),
        ("MEMORY_START=0x4\nMEMORY_END=lots\n", "ib.cfg:2: MEMORY_END='lots' is not an address"),
        ("MEMORY_START=0x8\nMEMORY_END=0x4\n", "ib.cfg:2: MEMORY_END=0x4 is not above"),
    ],
)
def test_bad_lines_are_named_with_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ImageBuilderError) as info:
        map_config(text, Path("ib.cfg"))
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_comments_and_blank_lines_only() -> None:
    assert parse_lines("# nothing\n\n   \n", "c") == {}


# Through the CLI ----------------------------------------------------------------------------


def _tree(tmp_path: Path, config: str) -> Path:
    """The A20 payloads beside an ImageBuilder config (its paths are relative to it)."""
    for name in ("xen-arm32.zimage", "zImage-arm32", "initrd.img",
                 "sun7i-a20-felboot-passthrough.dtb", "domu-ethernet-partial.dtb"):  # fmt: skip
        shutil.copy(PAYLOADS / name, tmp_path / name)
    path = tmp_path / "ib.cfg"
    path.write_text(config)
    return path


A20_CONFIG = """\
MEMORY_START="0x40000000"
MEMORY_END="0x80000000"
LOAD_CMD="tftpb"
DEVICE_TREE="sun7i-a20-felboot-passthrough.dtb"
XEN="xen-arm32.zimage"
DOM0_KERNEL="zImage-arm32"
DOM0_RAMDISK="initrd.img"
DOM0_CMD="console=hvc0 from=imagebuilder"
DOM0_MEM=256
DOM0_VCPUS=1
NUM_DOMUS=1
DOMU_KERNEL[0]="zImage-arm32"
DOMU_MEM[0]=64
DOMU_PASSTHROUGH_DTB[0]="domu-ethernet-partial.dtb"
DOMU_PASSTHROUGH_PATHS[0]="/soc/ethernet@1c50000"
UBOOT_SCRIPT="boot.scr"
"""


def test_plan_from_imagebuilder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _tree(tmp_path, A20_CONFIG)
    monkeypatch.chdir(tmp_path.parent)  # paths are the config's, not the working directory's
    code = main(["--json", "plan", "--board", "cubieboard2", "--from-imagebuilder", str(config)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    assert [d["name"] for d in data["domains"]] == ["domU1"]
    assert data["domains"][0]["mem"] == 64 * MiB
    assert data["domains"][0]["args"] == "console=ttyAMA0"
    assert data["passthrough"] == ["/soc/ethernet@1c50000"]
    assert {r["name"] for r in data["regions"]} >= {"xen", "kernel", "initrd", "dtb"}
    assert "dom0_mem=256M" in data["xen_args"] and "dom0_max_vcpus=1" in data["xen_args"]
    assert data["dom0_args"].endswith("console=hvc0 from=imagebuilder")
    assert captured.err.strip() == (
        f"felboot: warning: {config}: ImageBuilder keys felboot does not use, ignored: UBOOT_SCRIPT"
    )


def test_command_line_overrides_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _tree(tmp_path, A20_CONFIG)
    monkeypatch.chdir(PAYLOADS)
    code = main(["--json", "plan", "--board", "cubieboard2", "--from-imagebuilder", str(config),
                 "--dom0-mem", "300M", "--dom0-args", "mine", "--domu", "zImage-arm32,mem=32M",
                 "xen-arm32.zimage", "zImage-arm32", "sun7i-a20-felboot-test.dtb"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    assert "dom0_mem=300M" in data["xen_args"]
    assert data["dom0_args"].endswith("mine") and "imagebuilder" not in data["dom0_args"]
    assert [d["mem"] for d in data["domains"]] == [32 * MiB]
    dtb = next(r for r in data["regions"] if r["name"] == "dtb")
    assert dtb["source"] == "sun7i-a20-felboot-test.dtb"
    assert data["passthrough"] == []  # the command line's domU has none


def test_script_takes_load_cmd_unless_load_is_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _tree(tmp_path, A20_CONFIG)
    out = tmp_path / "out"
    code = main(["--json", "script", "--board", "cubieboard2", "--from-imagebuilder",
                 str(config), "-o", str(out)])  # fmt: skip
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["load"] == "tftp"
    assert "tftpboot 0x" in (out / "boot.cmd").read_text()
    assert (out / "domU1-dtb").read_bytes() == (PAYLOADS / "domu-ethernet-partial.dtb").read_bytes()
    code = main(["--json", "script", "--board", "cubieboard2", "--from-imagebuilder",
                 str(config), "--load", "mmc", "-o", str(tmp_path / "mmc")])  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out)["load"] == "mmc"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("0x40000000", "0x0"), "MEMORY_START=0x0, but DRAM on cubieboard2 starts at 0x40000000"),
        (("0x80000000", "0xc0000000"), "MEMORY_END=0xc0000000 is above the top of the 1 GiB"),
        (("0x80000000", "0x50000000"), "above MEMORY_END=0x50000000: pass --dram-size 256M"),
        (("DOMU_MEM[0]=64", "DOMU_MEM[0]=4096"), "domU1: mem=4096M does not fit"),
        (("/soc/ethernet@1c50000", "/soc/nothing"), "domU1: passthrough=/soc/nothing: "),
        (("DOM0_MEM=256", "DOM0_MEM=lots"), "ib.cfg:9: DOM0_MEM='lots' is not a whole number"),
    ],
)
def test_bad_config_through_run_is_one_line_and_nothing_is_sent(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: tuple[str, str],
    message: str,
) -> None:
    config = _tree(tmp_path, A20_CONFIG.replace(*change))
    uboot = ROOT / "fixtures" / "images" / "u-boot-sunxi-with-spl-a20.bin"
    code = main(["--device", "replay:/nonexistent.transcript", "run", "--board", "cubieboard2",
                 "--uboot", str(uboot), "--from-imagebuilder", str(config)])  # fmt: skip
    err = [line for line in capsys.readouterr().err.splitlines() if "warning" not in line]
    assert code != 0
    assert len(err) == 1 and message in err[0], err


def test_missing_config_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.cfg"
    assert main(["plan", "--board", "cubieboard2", "--from-imagebuilder", str(missing)]) != 0
    err = capsys.readouterr().err.strip()
    assert err == f"felboot: error: --from-imagebuilder {missing}: no such file"
