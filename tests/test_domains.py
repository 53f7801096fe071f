"""dom0less domUs and pass-through (issue 14, items 1-2): --domu parsing, the planner's
placement and checks, and each node and property the boot script writes, against Xen's
docs/misc/arm/device-tree/booting.txt (Xen 4.17: "Creating Multiple Domains directly from
Xen", "Device Assignment")."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from felboot.bootscript import render_boot_cmd
from felboot.cli import main
from felboot.domains import SOC_CPUS, DomU, parse_domu
from felboot.errors import PlanError, UsageError
from tests.test_bootscript import A20, A20_PASS, A64, domu_images, plan_for

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = ROOT / "fixtures" / "payloads"
MiB = 1 << 20


# --domu parsing ----------------------------------------------------------------------------


def test_full_spec_parses_into_a_domu() -> None:
    domu = parse_domu(
        'kernel=Image,ramdisk=r.cpio,mem=256M,vcpus=1,args="console=ttyAMA0 ip=a,b",'
        "vpl011=yes,dtb=partial.dtb,passthrough=/soc/ethernet@1c50000",
        1,
    )
    assert domu == DomU(
        index=1,
        kernel=Path("Image"),
        ramdisk=Path("r.cpio"),
        mem=256 * MiB,
        vcpus=1,
        args="console=ttyAMA0 ip=a,b",
        vpl011=True,
        dtb=Path("partial.dtb"),
        passthrough=("/soc/ethernet@1c50000",),
    )
    assert domu.name == "domU1"


def test_bare_kernel_and_the_defaults() -> None:
    domu = parse_domu("Image", 2)
    assert (domu.name, domu.kernel, domu.mem, domu.vcpus, domu.vpl011) == (
        "domU2", Path("Image"), 128 * MiB, 1, True
    )  # fmt: skip
    assert parse_domu("Image,passthrough=/a;/b,passthrough=/c", 1).passthrough == ("/a", "/b", "/c")
    assert not parse_domu("Image,vpl011=no", 1).vpl011


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ramdisk=r", "--domu domU1: no kernel: write kernel=FILE"),
        ("Image,colour=blue", "--domu domU1: unknown key 'colour'"),
        ("Image,mem=lots", "--domu domU1: mem='lots' is not a size: write e.g. 256M"),
        ("Image,mem=1000", "--domu domU1: mem='1000' is not a positive whole number of KiB"),
        ("Image,vcpus=0", "--domu domU1: vcpus='0' is not a whole number from 1"),
        ("Image,vcpus=two", "--domu domU1: vcpus='two' is not a whole number from 1"),
        ("Image,vpl011=maybe", "--domu domU1: vpl011='maybe' is not yes or no"),
        ('Image,args="open', "--domu domU1: the double quote at offset 11 is never closed"),
        ('Image,args="a"b', "--domu domU1: 'b' follows a closing double quote"),
        ('Image,args=a"b"', "--domu domU1: 'a\"b\"' has a double quote inside it"),
        ("Image,mem=1M,mem=2M", "--domu domU1: mem= is given twice ('1M' and '2M')"),
        ("Image,passthrough=soc/eth", "--domu domU1: passthrough='soc/eth' is not an absolute"),
        ("Image,ramdisk", "--domu domU1: 'ramdisk' is not key=value"),
    ],
)
def test_domu_option_that_does_not_parse(spec: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_domu(spec, 1)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


# The plan --------------------------------------------------------------------------------


def test_domu_modules_go_below_xen_and_leave_dom0_where_it_was() -> None:
    alone = plan_for("cubieboard2", **A20)  # type: ignore[arg-type]
    spec = "kernel=zImage-arm32,ramdisk=initrd.img,mem=128M"
    plan = plan_for("cubieboard2", **A20, domus=[domu_images(spec, 1)])  # type: ignore[arg-type]
    for name in ("xen", "dtb", "initrd", "kernel"):
        assert plan.region(name) == alone.region(name)
    kernel, ramdisk = plan.region("domU1-kernel"), plan.region("domU1-initrd")
    assert kernel is not None and ramdisk is not None
    assert kernel.end == plan.xen.start and kernel.start % (2 * MiB) == 0
    assert kernel.end - kernel.start == 8 * MiB and ramdisk.end == kernel.start
    (domain,) = plan.domains
    assert (domain.name, domain.mem, domain.kernel, domain.ramdisk) == (
        "domU1", 128 * MiB, kernel, ramdisk
    )  # fmt: skip
    data = json.loads(plan.to_json())
    assert data["domains"][0]["kernel"] == "domU1-kernel"


def test_no_dom0_places_no_dom0_kernel_and_writes_no_module_0() -> None:
    plan = plan_for("cubieboard2", **A20, no_dom0=True, domus=[domu_images("zImage-arm32", 1)])  # type: ignore[arg-type]
    assert [r.name for r in plan.regions] == ["domU1-kernel", "xen", "dtb"]
    text = render_boot_cmd(plan, xen_args="", dom0_args="x", uboot_is_64bit=False)
    assert "module@0" not in text and "/chosen/domU1" in text
    with pytest.raises(PlanError, match="--no-dom0 without a --domu boots nothing"):
        plan_for("cubieboard2", **A20, no_dom0=True)  # type: ignore[arg-type]


def node_lines(text: str, node: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(rf"fdt \w+ {re.escape(node)}\b", line)]


def test_each_domain_node_and_property_as_booting_txt_specifies() -> None:
    spec = 'kernel=zImage-arm32,ramdisk=initrd.img,mem=128M,vcpus=2,args="console=ttyAMA0"'
    plan = plan_for("cubieboard2", **A20_PASS, domus=[
        domu_images(spec + ",dtb=domu-ethernet-partial.dtb", 1)
    ])  # type: ignore[arg-type]  # fmt: skip
    text = render_boot_cmd(plan, xen_args="", dom0_args="", uboot_is_64bit=False)
    (domain,) = plan.domains
    assert domain.ramdisk is not None and domain.dtb is not None
    k, r, d = domain.kernel, domain.ramdisk, domain.dtb
    kc, rc = '"multiboot,kernel" "multiboot,module"', '"multiboot,ramdisk" "multiboot,module"'
    dc = '"multiboot,device-tree" "multiboot,module"'
    assert node_lines(text, "/chosen/domU1") == [
        # "For each domain to be created there needs to be one node under /chosen"
        # compatible: 'For domUs: "xen,domain"'
        'fdt set /chosen/domU1 compatible "xen,domain"',
        # "Both #address-cells and #size-cells need to be specified" (the modules' reg)
        "fdt set /chosen/domU1 \\#address-cells <1>",
        "fdt set /chosen/domU1 \\#size-cells <1>",
        # memory: "A 64-bit integer specifying the amount of kilobytes of RAM": 128 MiB
        "fdt set /chosen/domU1 memory <0x0 0x20000>",
        # cpus: "An integer specifying the number of vcpus"
        "fdt set /chosen/domU1 cpus <2>",
        # vpl011: "An empty property"
        "fdt set /chosen/domU1 vpl011",
        # kernel sub-node: "multiboot,kernel", "multiboot,module"; reg; bootargs
        f"fdt mknode /chosen/domU1 module@{k.start:x}",
        f"fdt set /chosen/domU1/module@{k.start:x} compatible {kc}",
        f"fdt set /chosen/domU1/module@{k.start:x} reg <0x{k.start:08x} 0x30000>",
        f'fdt set /chosen/domU1/module@{k.start:x} bootargs "console=ttyAMA0"',
        # ramdisk sub-node: "multiboot,ramdisk", "multiboot,module"; reg
        f"fdt mknode /chosen/domU1 module@{r.start:x}",
        f"fdt set /chosen/domU1/module@{r.start:x} compatible {rc}",
        f"fdt set /chosen/domU1/module@{r.start:x} reg <0x{r.start:08x} 0x30000>",
        # Device Assignment: the dtb sub-node, "multiboot,device-tree" and "multiboot,module"
        f"fdt mknode /chosen/domU1 module@{d.start:x}",
        f"fdt set /chosen/domU1/module@{d.start:x} compatible {dc}",
        f"fdt set /chosen/domU1/module@{d.start:x} reg <0x{d.start:08x} {d.size:#x}>",
    ]
    assert "fdt mknode /chosen domU1" in text.splitlines()
    # The node is made after /chosen's own cells are set, and before the boot command.
    body = text.splitlines()
    assert body.index("fdt set /chosen \\#size-cells <1>") < body.index("fdt mknode /chosen domU1")
    assert body[-1].startswith("bootz ")


def test_memory_above_4_tib_of_kib_uses_the_high_cell() -> None:
    from felboot.bootscript import _domain
    from felboot.plan import DomainPlan, Region

    region = Region("domU1-kernel", 0x50000000, 0x50800000, 0x100, "k", None)
    big = DomainPlan("domU1", 1 << 42, 1, "", False, region, None, None, ())
    assert "fdt set /chosen/domU1 memory <0x1 0x0>" in _domain(big)
    assert not any("vpl011" in line for line in _domain(big))
    assert not any("bootargs" in line for line in _domain(big))  # optional, left out when empty


def test_passthrough_paths_are_marked_on_the_host_dtb() -> None:
    spec = "zImage-arm32,passthrough=/soc/ethernet@1c50000"
    plan = plan_for(
        "cubieboard2", **A20_PASS, domus=[domu_images(spec, 1)], passthrough=["/soc/serial@1c28000"]
    )  # type: ignore[arg-type]
    assert plan.passthrough == ("/soc/serial@1c28000", "/soc/ethernet@1c50000")
    text = render_boot_cmd(plan, xen_args="", dom0_args="", uboot_is_64bit=False)
    assert "fdt set /soc/ethernet@1c50000 xen,passthrough\n" in text
    assert "fdt set /soc/serial@1c28000 xen,passthrough\n" in text


# Bad input: one line naming the domU and the value ------------------------------------------


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text
    return text


def test_passthrough_path_the_dtb_lacks() -> None:
    spec = "zImage-arm32,passthrough=/soc/ethernet@1c50000"
    with pytest.raises(PlanError) as info:
        plan_for("cubieboard2", **A20, domus=[domu_images(spec, 1)])  # type: ignore[arg-type]
    assert one_line(info.value) == (
        f"domU1: passthrough=/soc/ethernet@1c50000: {PAYLOADS / A20['dtb']} has no such node: "
        "name a path that exists in the DTB given"
    )
    with pytest.raises(PlanError, match=r"^--passthrough /soc/nothing: .* has no such node"):
        plan_for("cubieboard2", **A20, passthrough=["/soc/nothing"])  # type: ignore[arg-type]


def test_partial_dtb_without_a_passthrough_node() -> None:
    spec = f"zImage-arm32,dtb={A20['dtb']}"
    with pytest.raises(PlanError) as info:
        plan_for("cubieboard2", **A20, domus=[domu_images(spec, 1)])  # type: ignore[arg-type]
    assert one_line(info.value).startswith(
        f"domU1: dtb={PAYLOADS / A20['dtb']} has no /passthrough node"
    )


def test_more_vcpus_than_the_soc_has() -> None:
    with pytest.raises(PlanError) as info:
        plan_for("cubieboard2", **A20, domus=[domu_images("zImage-arm32,vcpus=3", 1)])  # type: ignore[arg-type]
    assert one_line(info.value) == (
        "domU1: vcpus=3 is more than the 2 CPUs of the A20 on cubieboard2: pass vcpus=2 or fewer"
    )


def test_domu_memory_that_does_not_fit() -> None:
    domus = [domu_images("zImage-arm32,mem=256M", 1), domu_images("zImage-arm32,mem=300M", 2)]
    with pytest.raises(PlanError) as info:
        plan_for("cubieboard2", **A20, domus=domus)  # type: ignore[arg-type]
    assert one_line(info.value) == (
        "domU2: mem=300M does not fit: with dom0 and the domUs before it the domains ask "
        "1068 MiB of the 1024 MiB of DRAM cubieboard2 has, and Xen keeps 32 MiB for itself: "
        "give domU2 less memory"
    )


def test_domu_modules_that_do_not_fit() -> None:
    # 0x77000000 .. the U-Boot load area's end (0x4a100000) leaves ~750 MiB: 100 kernels of
    # 8 MiB do not fit.
    domus = [domu_images("zImage-arm32,mem=1M", i) for i in range(1, 101)]
    with pytest.raises(PlanError) as info:
        plan_for("cubieboard2", **A20, domus=domus)  # type: ignore[arg-type]
    message = one_line(info.value)
    assert re.match(r"domU\d+ kernel .*zImage-arm32 \(zImage\) needs 192 KiB .* but only", message)


def test_arm32_xen_refuses_an_arm64_domu() -> None:
    with pytest.raises(PlanError, match=r"^domU1: kernel .*Image-arm64 is an arm64 Image"):
        plan_for("cubieboard2", **A20, domus=[domu_images("Image-arm64", 1)])  # type: ignore[arg-type]


def test_arm64_domu_on_pine64() -> None:
    plan = plan_for("pine64-plus", **A64, domus=[domu_images("Image-arm64.gz,vcpus=4", 1)])  # type: ignore[arg-type]
    assert plan.domains[0].kernel.start % (2 * MiB) == 0


def test_soc_cpu_counts_match_debians_device_trees() -> None:
    """SOC_CPUS against the /cpus nodes of the DTBs Debian's kernels ship, where installed."""
    from felboot.images.dtb import parse_dtb

    checked = 0
    for soc, name in (("A20", "sun7i-a20-cubieboard2.dtb"), ("H3", "sun8i-h3-orangepi-pc.dtb"),
                      ("A64", "allwinner/sun50i-a64-pine64-plus.dtb")):  # fmt: skip
        for path in sorted(Path("/usr/lib").glob(f"linux-image-*/{name}")):
            tree = parse_dtb(path.read_bytes(), str(path))._require_tree().find("/cpus")
            assert tree is not None
            cpus = [child for child in tree.children if child.startswith("cpu@")]
            assert len(cpus) == SOC_CPUS[soc], path
            checked += 1
    if not checked:
        pytest.skip("no Debian kernel DTBs installed")


# Through the CLI --------------------------------------------------------------------------


def test_plan_shows_each_domain(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(PAYLOADS)
    code = main([
        "plan", "--board", "cubieboard2", "--domu",
        'kernel=zImage-arm32,ramdisk=initrd.img,mem=128M,args="console=ttyAMA0 x=a,b"',
        "--domu", "zImage-arm32,mem=64M,vpl011=no,passthrough=/soc/ethernet@1c50000",
        "xen-arm32.zimage", "zImage-arm32", "sun7i-a20-felboot-passthrough.dtb",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "pass-through:      /soc/ethernet@1c50000 (xen,passthrough: kept from dom0)" in out
    assert re.search(
        r"^domU1: +128 MiB, 1 vCPU, vpl011 console; kernel 0x[0-9a-f]{8}, initrd", out, re.M
    )
    assert "  command line:    console=ttyAMA0 x=a,b" in out
    assert re.search(r"^domU2: +64 MiB, 1 vCPU, no console; kernel 0x", out, re.M)
    assert re.search(r"^  domU1-kernel +", out, re.M) or "domU1-kernel" in out


def test_cli_no_dom0_takes_xen_and_dtb(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(PAYLOADS)
    out = str(tmp_path)
    code = main(["script", "--board", "cubieboard2", "--no-dom0", "--domu", "zImage-arm32",
                 "-o", out, "xen-arm32.zimage", "sun7i-a20-felboot-test.dtb"])  # fmt: skip
    assert code == 0
    text = (tmp_path / "boot.cmd").read_text()
    assert "module@0" not in text and "fdt mknode /chosen domU1" in text
    capsys.readouterr()
    code = main(["plan", "--board", "cubieboard2", "--no-dom0", "--domu", "zImage-arm32",
                 "xen-arm32.zimage", "zImage-arm32", "sun7i-a20-felboot-test.dtb"])  # fmt: skip
    assert code != 0
    assert "expected XEN DTB with --no-dom0, got 3 file(s)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--domu", "zImage-arm32,vcpus=5"], "domU1: vcpus=5 is more than the 2 CPUs"),
        (["--domu", "zImage-arm32,mem=2G"], "domU1: mem=2048M does not fit"),
        (["--domu", "zImage-arm32,speed=9"], "--domu domU1: unknown key 'speed'"),
        (["--domu", "zImage-arm32,passthrough=/soc/x"], "domU1: passthrough=/soc/x: "),
        (["--domu", "missing.img"], "missing.img"),
    ],
)
def test_bad_domu_on_the_command_line_is_one_line_and_nothing_is_sent(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(PAYLOADS)
    uboot = ROOT / "fixtures" / "images" / "u-boot-sunxi-with-spl-a20.bin"
    # --device sim would boot the model: the refusal comes before the device is even opened.
    code = main(["--device", "replay:/nonexistent.transcript", "run", "--board", "cubieboard2",
                 "--uboot", str(uboot), *extra,
                 "xen-arm32.zimage", "zImage-arm32", "sun7i-a20-felboot-test.dtb"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1 and message in err[0], err


def test_cli_takes_the_domus_and_no_dom0_from_felboot_toml(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".git").mkdir()  # the config search stops here
    (tmp_path / "felboot.toml").write_text(
        f'board = "cubieboard2"\nxen = "{PAYLOADS}/xen-arm32.zimage"\n'
        f'dtb = "{PAYLOADS}/sun7i-a20-felboot-test.dtb"\nno_dom0 = true\n'
        f'[[domu]]\nkernel = "{PAYLOADS}/zImage-arm32"\nmem = "64M"\nargs = "console=ttyAMA0"\n'
        f'[[domu]]\nkernel = "{PAYLOADS}/zImage-arm32"\nvpl011 = false\n'
    )
    monkeypatch.chdir(tmp_path)
    assert main(["plan"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^domU1: +64 MiB, 1 vCPU, vpl011 console; kernel 0x", out, re.M)
    assert re.search(r"^domU2: +128 MiB, 1 vCPU, no console; kernel 0x", out, re.M)
    assert not re.search(r"^dom0 command line", out, re.M)
    # --domu on the command line replaces the file's list, as every list option does.
    assert main(["plan", "--domu", f"{PAYLOADS}/zImage-arm32,mem=32M"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^domU1: +32 MiB", out, re.M) and "domU2" not in out
