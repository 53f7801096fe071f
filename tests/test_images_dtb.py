"""felboot.images.dtb: header checks and the console UART lookup."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import fdt
import pytest

from felboot.errors import ImageError
from felboot.images.devicetree import FDT_MAGIC as DTB_MAGIC
from felboot.images.devicetree import FdtHeader
from felboot.images.dtb import describe, parse_dtb

PAYLOADS = Path(__file__).resolve().parent.parent / "fixtures" / "payloads"


def fixture(name: str) -> tuple[bytes, str]:
    path = PAYLOADS / name
    return path.read_bytes(), str(path)


def build_dtb(properties: dict[str, dict[str, str]], nodes: tuple[str, ...] = ()) -> bytes:
    """A DTB with string properties per node path and extra empty nodes."""
    tree = fdt.FDT()
    for path, props in properties.items():
        for name, value in props.items():
            tree.set_property(name, value, path=path, create=True)
    for node in nodes:
        parent, _, name = node.rpartition("/")
        tree.add_item(fdt.Node(name), parent or "/", create=True)
    return bytes(tree.to_dtb(version=17))


def test_a20_fixture_fields() -> None:
    data, source = fixture("sun7i-a20-felboot-test.dtb")
    tree = parse_dtb(data, source)
    assert tree.totalsize == len(data)
    assert tree.compatible == ("felboot,a20-test", "allwinner,sun7i-a20")
    assert tree.model == "felboot test board (A20)"
    assert tree.has_chosen
    assert tree.data == data


def test_console_through_stdout_path_alias() -> None:
    tree = parse_dtb(*fixture("sun7i-a20-felboot-test.dtb"))
    assert tree.serial_path() == "/soc/serial@1c28000"


def test_console_through_stdout_path_with_options() -> None:
    tree = parse_dtb(*fixture("sun50i-a64-felboot-test.dtb"))
    assert tree.serial_path() == "/soc/serial@1c28000"


def test_console_through_serial0_alias_without_stdout_path() -> None:
    data = build_dtb(
        {"/aliases": {"serial0": "/soc/serial@1c28000"}, "/chosen": {"bootargs": "x"}},
        nodes=("/soc/serial@1c28000",),
    )
    assert parse_dtb(data, "alias.dtb").serial_path() == "/soc/serial@1c28000"


def test_no_console_names_the_file_and_the_way_out() -> None:
    data, source = fixture("no-console.dtb")
    tree = parse_dtb(data, source)
    assert not tree.has_chosen
    with pytest.raises(ImageError) as info:
        tree.serial_path()
    assert str(info.value) == (
        f"{source}: no /chosen/stdout-path and no serial0 alias: "
        "pass --xen-args 'dtuart=/path/to/uart'"
    )


def test_stale_alias_is_refused_because_the_node_is_missing() -> None:
    data, source = fixture("stale-console.dtb")
    with pytest.raises(ImageError) as info:
        parse_dtb(data, source).serial_path()
    message = str(info.value)
    assert message.startswith(f"{source}: ")
    assert "/soc@01c00000/serial@01c28000" in message and "not in the tree" in message


def test_stdout_path_naming_an_unknown_alias() -> None:
    data = build_dtb({"/chosen": {"stdout-path": "serial7:115200n8"}})
    with pytest.raises(ImageError, match=r"^odd.dtb: /chosen/stdout-path names 'serial7'"):
        parse_dtb(data, "odd.dtb").serial_path()


def test_bad_magic() -> None:
    with pytest.raises(
        ImageError, match=r"^board.dts: not a device tree \(magic 0x2f647473.*not the .dts"
    ):
        parse_dtb(b"/dts-v1/;\n/ { };\n" + bytes(40), "board.dts")


def test_truncated_dtb() -> None:
    data, _ = fixture("sun7i-a20-felboot-test.dtb")
    with pytest.raises(
        ImageError, match=r"^cut.dtb is truncated: .* says 698 bytes, the file has 256"
    ):
        parse_dtb(data[:0x100], "cut.dtb")


def test_too_short() -> None:
    with pytest.raises(ImageError, match=r"^x.dtb: only 4 bytes"):
        parse_dtb(bytes.fromhex("d00dfeed"), "x.dtb")


def test_damaged_structure_is_an_image_error() -> None:
    data, _ = fixture("sun7i-a20-felboot-test.dtb")
    header = FdtHeader.parse(data)
    broken = bytearray(data)
    broken[header.off_dt_struct : header.off_dt_struct + 4] = b"\xff\xff\xff\xff"
    with pytest.raises(ImageError, match=r"^broken.dtb: malformed device tree \(.*\): rebuild it"):
        parse_dtb(bytes(broken), "broken.dtb")


def test_file_longer_than_totalsize_is_fine() -> None:
    data, _ = fixture("sun7i-a20-felboot-test.dtb")
    tree = parse_dtb(data + bytes(0x1000), "padded.dtb")
    assert tree.totalsize == len(data)


def test_describe() -> None:
    info = describe(fixture("sun7i-a20-felboot-test.dtb")[0])
    assert info == {
        "type": "dtb",
        "totalsize": 0x2BA,
        "model": "felboot test board (A20)",
        "compatible": ["felboot,a20-test", "allwinner,sun7i-a20"],
        "console": "/soc/serial@1c28000",
    }
    no_console = describe(fixture("no-console.dtb")[0])
    assert no_console is not None and no_console["console"] is None
    assert describe((PAYLOADS / "zImage-arm32").read_bytes()) is None
    assert describe(b"") is None


def test_magic_constant() -> None:
    assert fixture("no-console.dtb")[0][:4] == DTB_MAGIC.to_bytes(4, "big")


@pytest.mark.skipif(shutil.which("dtc") is None, reason="dtc (device-tree-compiler) not installed")
@pytest.mark.parametrize("name", sorted(p.stem for p in PAYLOADS.glob("*.dts")))
def test_committed_dtbs_match_their_sources(name: str, tmp_path: Path) -> None:
    target = tmp_path / f"{name}.dtb"
    subprocess.run(
        ["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(target), str(PAYLOADS / f"{name}.dts")],
        check=True,
    )
    assert target.read_bytes() == (PAYLOADS / f"{name}.dtb").read_bytes()
