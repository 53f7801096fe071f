"""felboot.boards: built-in profiles, family inheritance, user files and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from felboot import boards
from felboot.boards import BoardProfile, list_boards, load_board, load_board_file
from felboot.cli import main
from felboot.errors import UsageError
from tests.support import IMAGES, PAYLOADS

GiB = 1 << 30

BOARDS = {
    # name: (soc, arch, dram size, Debian U-Boot directory)
    "cubieboard2": ("A20", "arm", 1 * GiB, "Cubieboard2"),
    "cubietruck": ("A20", "arm", 2 * GiB, "Cubietruck"),
    "bananapi": ("A20", "arm", 1 * GiB, "Bananapi"),
    "lamobo-r1": ("A20", "arm", 1 * GiB, "Lamobo_R1"),
    "a20-olinuxino-lime2": ("A20", "arm", 1 * GiB, "A20-OLinuXino-Lime2"),
    "orangepi-pc": ("H3", "arm", 1 * GiB, None),
    "pine64-plus": ("A64", "arm64", 2 * GiB, "pine64_plus"),
    "orangepi-pc2": ("H5", "arm64", 1 * GiB, None),
}
FAMILIES = {
    "a20": ("A20", "arm"),
    "h3": ("H3", "arm"),
    "a64": ("A64", "arm64"),
    "h5": ("H5", "arm64"),
}


def write(tmp_path: Path, text: str, name: str = "myboard.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_list_boards_has_every_family_and_board() -> None:
    names = [board.name for board in list_boards()]
    assert names == sorted(names)
    assert set(names) == set(BOARDS) | set(FAMILIES)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_named_board(name: str) -> None:
    soc, arch, size, uboot_dir = BOARDS[name]
    board = load_board(name)
    assert isinstance(board, BoardProfile)
    assert (board.soc, board.arch, board.dram_size) == (soc, arch, size)
    assert board.dram_base == 0x40000000
    assert not board.is_family
    assert board.dtb is not None and board.dtb.endswith(".dtb")
    assert board.uboot_is_64bit == (arch == "arm64")
    if uboot_dir is None:
        assert board.uboot == ()
    elif arch == "arm":
        assert board.uboot == (Path(f"/usr/lib/u-boot/{uboot_dir}/u-boot-sunxi-with-spl.bin"),)
    else:
        assert board.uboot == (
            Path(f"/usr/lib/u-boot/{uboot_dir}/sunxi-spl.bin"),
            Path(f"/usr/lib/u-boot/{uboot_dir}/u-boot-sunxi-with-spl.fit.itb"),
        )


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_detects_dram(name: str) -> None:
    board = load_board(name)
    assert (board.soc, board.arch) == FAMILIES[name]
    assert board.dram_size is None
    assert board.is_family
    assert board.uboot == ()
    assert "console=dtuart" in board.xen_args and "dom0_mem=" in board.xen_args
    assert "console=hvc0" in board.dom0_args and "clk_ignore_unused" in board.dom0_args
    assert board.linux_args == "console=ttyS0,115200"


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_debian_uboot_paths_exist_when_installed(name: str) -> None:
    board = load_board(name)
    if not board.uboot:
        pytest.skip(f"{name}: Debian ships no U-Boot for it")
    if not board.uboot[0].parent.is_dir():
        pytest.skip(f"{board.uboot[0].parent} not installed (u-boot-sunxi)")
    for path in board.uboot:
        assert path.is_file(), path


def test_boards_inherit_command_lines_from_their_family() -> None:
    assert load_board("cubietruck").xen_args == load_board("a20").xen_args
    assert load_board("pine64-plus").dom0_args == load_board("a64").dom0_args


def test_names_are_forgiving() -> None:
    assert load_board("Lamobo_R1").name == "lamobo-r1"
    assert load_board(" CubieBoard2 ").name == "cubieboard2"


def test_unknown_board_lists_the_known_ones() -> None:
    with pytest.raises(UsageError) as info:
        load_board("raspberrypi")
    message = str(info.value)
    assert "'raspberrypi'" in message
    for name in (*BOARDS, *FAMILIES):
        assert name in message


def test_user_file_inherits_from_its_family(tmp_path: Path) -> None:
    path = write(tmp_path, 'soc = "A20"\ndram_size = "512M"\ndescription = "mine"\n')
    board = load_board_file(path)
    assert board.name == "myboard" and board.source == path
    assert board.dram_size == 512 << 20
    assert board.xen_args == load_board("a20").xen_args
    assert not board.is_family


def test_user_file_for_a_soc_without_family(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'soc = "R40"\ndram_base = 0x40000000\ndram_size = 0x80000000\n'
        'xen_args = "console=dtuart"\ndom0_args = "console=hvc0"\n'
        'uboot = "/srv/u-boot-sunxi-with-spl.bin"\ndisplay = false\n',
    )
    board = load_board_file(path)
    assert (board.soc, board.arch, board.dram_size, board.display) == ("R40", "arm", 2 * GiB, False)
    assert board.uboot == (Path("/srv/u-boot-sunxi-with-spl.bin"),)
    assert board.linux_args == "console=ttyS0,115200"  # the default


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('soc = "A20"\ndram_sise = "1G"\n', "unknown field 'dram_sise'"),
        ('soc = "A20"\ndisplay = "yes"\n', "field 'display' has the wrong type (str 'yes')"),
        ('soc = "A20"\ndram_base = true\n', "field 'dram_base' has the wrong type"),
        ('dram_size = "1G"\n', "field 'soc' is missing"),
        ('soc = "A99"\n', "field 'soc' = 'A99' is not a SoC felboot knows"),
        ('soc = "A20"\ndram_size = "lots"\n', "dram_size in"),
        ('soc = "A20"\ndram_size = "1000K"\n', "field 'dram_size' = '1000K' is not a whole"),
        ('soc = "A20"\ndram_base = 0x20000000\n', "field 'dram_base' = 0x20000000"),
        ('soc = "A64"\nuboot = "/x/u-boot-sunxi-with-spl.bin"\n', "field 'uboot'"),
        ('soc = "A20"\nuboot = ["/a", "/b"]\n', "field 'uboot'"),
        ('soc = "R40"\ndram_size = "1G"\n', "field 'dram_base' is missing and no R40 family"),
        ('soc = "A20"\ndram_size = \n', "not valid TOML"),
    ],
)
def test_bad_board_file_names_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as info:
        load_board_file(path)
    message = str(info.value)
    assert str(path) in message
    assert expected in message


def test_missing_board_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(UsageError, match=r"cannot read board file .*nope.toml"):
        load_board_file(path)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_a_named_board_is_picked_by_its_dtb(name: str) -> None:
    """The profile's dtb field is what a DTB of that name, without --board, leads to."""
    from felboot.boards.uboot_lookup import DtbIdentity, profile_for_dtb

    board = load_board(name)
    assert board.dtb is not None
    soc = {"A20": "sun7i-a20", "H3": "sun8i-h3", "A64": "sun50i-a64", "H5": "sun50i-h5"}
    dtb = DtbIdentity(Path(board.dtb), ("felboot,test", f"allwinner,{soc[board.soc]}"), None)
    assert profile_for_dtb(dtb).name == name


# The DTB from the kernel's Debian package ---------------------------------------------------


def fake_debian_kernel(root: Path, version: str, dtb: str) -> Path:
    """/boot/vmlinuz-VERSION and /usr/lib/linux-image-VERSION/DTB, as Debian installs them."""
    package = root / f"linux-image-{version}" / dtb
    package.parent.mkdir(parents=True)
    package.write_bytes((PAYLOADS / "sun7i-a20-felboot-test.dtb").read_bytes())
    kernel = root / "boot" / f"vmlinuz-{version}"
    kernel.parent.mkdir(exist_ok=True)
    kernel.write_bytes((PAYLOADS / "zImage-arm32").read_bytes())
    return kernel


def test_debian_dtb_for_a_named_board_comes_from_the_kernels_package(tmp_path, monkeypatch):
    monkeypatch.setattr(boards, "DEBIAN_DTB_ROOT", tmp_path)
    kernel = fake_debian_kernel(tmp_path, "6.1.0-9-armmp-lpae", "sun7i-a20-cubieboard2.dtb")
    found = boards.debian_dtb_for(kernel, load_board("cubieboard2"))
    assert found == tmp_path / "linux-image-6.1.0-9-armmp-lpae" / "sun7i-a20-cubieboard2.dtb"
    assert boards.debian_dtb_for(kernel, load_board("cubietruck")) is None  # not installed
    assert boards.debian_dtb_for(kernel, load_board("a20")) is None  # a family names no DTB
    assert boards.debian_dtb_for(tmp_path / "zImage", load_board("cubieboard2")) is None


def test_plan_without_a_dtb_takes_the_named_boards_from_the_kernel_package(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(boards, "DEBIAN_DTB_ROOT", tmp_path)
    kernel = fake_debian_kernel(tmp_path, "6.1.0-9-armmp-lpae", "sun7i-a20-cubieboard2.dtb")
    xen = str(PAYLOADS / "xen-arm32.zimage")
    uboot = ["--uboot", str(IMAGES / "u-boot-sunxi-with-spl-a20.bin"), "--uboot-for-other-board"]
    assert main(["plan", "--board", "cubieboard2", *uboot, xen, str(kernel)]) == 0
    assert "linux-image-6.1.0-9-armmp-lpae/sun7i-a20-cubieboard2.dtb" in capsys.readouterr().out
    assert main(["plan", "--board", "a20", "--dram-size", "1G", xen, str(kernel)]) == 2
    err = capsys.readouterr().err
    assert err == (
        "felboot: error: no DTB given and board a20 names no DTB (a SoC family profile): "
        "pass XEN KERNEL DTB\n"
    )
