"""felboot.boards.uboot_lookup: the board and the U-Boot build a DTB is for.

With the repository's fixtures as a FELBOOT_UBOOT_PATH directory, and with
Debian's u-boot-sunxi builds in /usr/lib/u-boot (skipped when not installed).
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import fdt
import pytest

from felboot.boards import load_board
from felboot.boards import uboot_lookup as lookup
from felboot.boards.uboot_lookup import (
    BY_COMPATIBLE,
    BY_FILE_NAME,
    BY_MODEL,
    DtbIdentity,
    UBootLookupError,
    builds_in,
    dtb_soc,
    find_uboot,
    fit_dt_names,
    match_reason,
    profile_for_dtb,
    read_build,
    read_dtb_identity,
)
from felboot.cli import main
from felboot.errors import UsageError
from felboot.run import RunRequest, load_inputs
from tests.support import IMAGES, PAYLOADS

DEBIAN = Path("/usr/lib/u-boot")
NO_DEBIAN = "Debian's u-boot-sunxi (/usr/lib/u-boot) is not installed"
A20_DTB = PAYLOADS / "sun7i-a20-felboot-test.dtb"
RUN_FILES = [str(PAYLOADS / "xen-arm32.zimage"), str(PAYLOADS / "zImage-arm32")]


def identity(*compatible: str, name: str = "board.dtb", model: str | None = None) -> DtbIdentity:
    return DtbIdentity(Path(name), compatible, model)


def board_dtb(tmp_path: Path, *compatible: str, name: str = "board.dtb") -> Path:
    """The fixture A20 tree (its console and all) with another compatible."""
    tree = fdt.parse_dtb(A20_DTB.read_bytes())
    tree.root.remove_property("compatible")
    tree.root.append(fdt.PropStrings("compatible", *compatible))
    path = tmp_path / name
    path.write_bytes(tree.to_dtb(version=17))
    return path


@pytest.fixture
def fixtures_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """FELBOOT_UBOOT_PATH = fixtures/images, and no Debian directory behind it."""
    monkeypatch.setenv(lookup.ENV_PATH, str(IMAGES))
    monkeypatch.setattr(lookup, "DEBIAN_UBOOT_DIR", tmp_path / "no-debian")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("felboot: error: ") and "Traceback" not in err
    return lines[0]


# Names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dt_name", "compatible", "expected"),
    [
        ("sun7i-a20-cubieboard2", "cubietech,cubieboard2", True),
        ("sun7i-a20-olinuxino-lime2", "olimex,a20-olinuxino-lime2", True),  # SoC in the board
        ("sun7i-a20-olinuxino-lime2-emmc", "olimex,a20-olinuxino-lime2", False),
        ("allwinner/sun50i-a64-pine64", "pine64,pine64", True),
        ("sun50i-a64-pine64-plus", "pine64,pine64", False),
        ("sun4i-a10-cubieboard", "cubietech,a10-cubieboard", True),
        ("sun7i-a20-cubietruck", "cubietech,cubieboard2", False),
    ],
)
def test_a_dt_name_matches_the_board_compatible(dt_name, compatible, expected) -> None:
    found = match_reason(dt_name, identity(compatible))
    assert (found == (BY_COMPATIBLE, compatible)) == expected


def test_file_name_then_model_when_the_compatible_says_nothing() -> None:
    by_name = identity("felboot,a20-test", name="/x/sun7i-a20-cubieboard2.dtb")
    assert match_reason("sun7i-a20-cubieboard2", by_name) == (
        BY_FILE_NAME,
        "the file name sun7i-a20-cubieboard2.dtb",
    )
    by_model = identity("felboot,a20-test", model="Olimex A20-OLinuXino-LIME2")
    assert match_reason("sun7i-a20-olinuxino-lime2", by_model) == (
        BY_MODEL,
        "the model 'Olimex A20-OLinuXino-LIME2'",
    )
    assert match_reason("sun7i-a20-olinuxino-lime2-emmc", by_model) is None


@pytest.mark.parametrize(
    ("compatible", "soc"),
    [
        (("cubietech,cubieboard2", "allwinner,sun7i-a20"), "A20"),
        (("xunlong,orangepi-pc", "allwinner,sun8i-h3"), "H3"),
        (("xunlong,orangepi-zero", "allwinner,sun8i-h2-plus"), "H3"),  # H2+ is an H3 die
        (("pine64,pine64-plus", "allwinner,sun50i-a64"), "A64"),
        (("xunlong,orangepi-pc2", "allwinner,sun50i-h5"), "H5"),
        (("ti,am335x-bone", "ti,am33xx"), None),
    ],
)
def test_dtb_soc(compatible, soc) -> None:
    assert dtb_soc(identity(*compatible)) == soc


# Profiles ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("compatible", "profile"),
    [
        (("cubietech,cubietruck", "allwinner,sun7i-a20"), "cubietruck"),
        (("olimex,a20-olinuxino-lime2", "allwinner,sun7i-a20"), "a20-olinuxino-lime2"),
        (("olimex,a20-olinuxino-lime2-emmc", "allwinner,sun7i-a20"), "a20"),
        (("felboot,a20-test", "allwinner,sun7i-a20"), "a20"),
        (("xunlong,orangepi-pc", "allwinner,sun8i-h3"), "orangepi-pc"),
        (("friendlyarm,nanopi-neo", "allwinner,sun8i-h3"), "h3"),
        (("pine64,pine64-plus", "allwinner,sun50i-a64"), "pine64-plus"),
        (("pine64,pine64", "allwinner,sun50i-a64"), "a64"),
        (("xunlong,orangepi-pc2", "allwinner,sun50i-h5"), "orangepi-pc2"),
        (("friendlyarm,nanopi-neo2", "allwinner,sun50i-h5"), "h5"),
    ],
)
def test_the_dtb_picks_the_named_board_else_the_family(compatible, profile) -> None:
    assert profile_for_dtb(identity(*compatible)).name == profile


def test_the_named_board_must_be_of_the_dtb_soc() -> None:
    # A cubietruck file name on an H3 tree: the H3 family, not the A20 board.
    found = identity("felboot,h3", "allwinner,sun8i-h3", name="sun7i-a20-cubietruck.dtb")
    assert profile_for_dtb(found).name == "h3"


@pytest.mark.parametrize(
    ("compatible", "fragment"),
    [
        (("cubietech,a10-cubieboard", "allwinner,sun4i-a10"), "is for an A10"),
        (("ti,am335x-bone", "ti,am33xx"), "names no Allwinner SoC"),
        ((), "no compatible"),
    ],
)
def test_a_dtb_without_profile_is_one_line_naming_its_compatible(compatible, fragment) -> None:
    with pytest.raises(UsageError) as info:
        profile_for_dtb(identity(*compatible, name="x.dtb"))
    message = str(info.value)
    assert "\n" not in message and fragment in message and "x.dtb" in message
    assert "felboot boards" in message
    for entry in compatible:
        assert entry in message


def test_reading_the_identity_names_a_bad_dtb(tmp_path: Path) -> None:
    assert read_dtb_identity(A20_DTB).compatible == ("felboot,a20-test", "allwinner,sun7i-a20")
    not_dtb = tmp_path / "zImage"
    not_dtb.write_bytes(bytes(64))
    with pytest.raises(Exception, match=r"zImage: not a device tree"):
        read_dtb_identity(not_dtb)
    with pytest.raises(UsageError, match=r"DTB .*missing.dtb: no such file"):
        read_dtb_identity(tmp_path / "missing.dtb")


# Builds -----------------------------------------------------------------------------


def test_the_fixture_builds_and_their_dt_names() -> None:
    builds = {build.paths[0].name: build for build in builds_in(IMAGES)}
    assert {name: (b.soc, b.dt_names) for name, b in builds.items()} == {
        "u-boot-sunxi-with-spl-a20.bin": ("A20", ("sun7i-a20-cubietruck",)),
        # The FIT after the SPL adds the other Pine64's configuration (DRAM-size quirk).
        "u-boot-sunxi-with-spl-a64.bin": ("A64", ("sun50i-a64-pine64-plus", "sun50i-a64-pine64")),
        "u-boot-sunxi-with-spl-h3.bin": ("H3", ("sun8i-h3-orangepi-pc",)),
        "u-boot-sunxi-with-spl-h5.bin": ("H5", ("sun50i-h5-orangepi-pc2",)),
    }


def test_an_spl_with_its_fit_apart(tmp_path: Path) -> None:
    shutil.copy(IMAGES / "spl-v3-a64.bin", tmp_path / "sunxi-spl.bin")
    shutil.copy(IMAGES / "u-boot-a64.itb", tmp_path / "u-boot.itb")  # external data
    (build,) = builds_in(tmp_path)
    assert build.paths == (tmp_path / "sunxi-spl.bin", tmp_path / "u-boot.itb")
    assert build.dt_names == ("sun50i-a64-pine64-plus", "sun50i-a64-pine64")


def test_broken_and_foreign_files_are_skipped(tmp_path: Path) -> None:
    shutil.copy(IMAGES / "broken-spl-egon-bad.bin", tmp_path / "u-boot-sunxi-with-spl.bin")
    board = tmp_path / "Board"
    board.mkdir()
    shutil.copy(IMAGES / "u-boot-sunxi-with-spl-h3.bin", board / "u-boot-sunxi-with-spl.bin")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "u-boot.bin").write_bytes(b"not sunxi")
    assert [build.dt_names for build in builds_in(tmp_path)] == [("sun8i-h3-orangepi-pc",)]
    assert list(builds_in(tmp_path / "absent")) == []


class CountingReader(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


def test_the_fit_walk_skips_image_data() -> None:
    data = (IMAGES / "u-boot-sunxi-with-spl-a64.bin").read_bytes()[0x8000:]  # embedded data
    reader = CountingReader(data)
    assert fit_dt_names(reader, 0) == ("sun50i-a64-pine64", "sun50i-a64-pine64-plus")
    assert reader.bytes_read < len(data) // 2


@pytest.mark.skipif(not DEBIAN.is_dir(), reason=NO_DEBIAN)
def test_debian_fits_are_walked_not_read() -> None:
    fits = sorted(DEBIAN.glob("*/u-boot-sunxi-with-spl.fit.itb"))
    if not fits:
        pytest.skip("u-boot-sunxi:arm64 is not installed")
    for fit in fits:
        reader = CountingReader(fit.read_bytes())
        names = fit_dt_names(reader, 0)
        assert names and all(name.startswith("sun50i-") for name in names), fit
        assert reader.bytes_read < 16 << 10, fit  # of ~700 KiB


# The lookup -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "compatible", "fixture"),
    [
        ("a20", "cubietech,cubietruck", "u-boot-sunxi-with-spl-a20.bin"),
        ("h3", "xunlong,orangepi-pc", "u-boot-sunxi-with-spl-h3.bin"),
        ("a64", "pine64,pine64", "u-boot-sunxi-with-spl-a64.bin"),  # by the FIT's config
        ("a64", "pine64,pine64-plus", "u-boot-sunxi-with-spl-a64.bin"),
        ("h5", "xunlong,orangepi-pc2", "u-boot-sunxi-with-spl-h5.bin"),
    ],
)
def test_the_fixture_build_for_each_family(family, compatible, fixture) -> None:
    choice = find_uboot(load_board(family), identity(compatible, "x"), [IMAGES])
    assert choice.paths == (IMAGES / fixture,)
    assert choice.why == f"matches {compatible}"
    assert choice.summary() == f"U-Boot: {IMAGES / fixture}, matches {compatible}"


def test_only_builds_for_the_board_soc_count() -> None:
    # The H3 fixture is for orangepi-pc, but an A20 board cannot use it.
    with pytest.raises(UBootLookupError, match="no A20 U-Boot build matches"):
        find_uboot(load_board("a20"), identity("xunlong,orangepi-pc"), [IMAGES])


def test_no_match_is_one_line_with_the_candidates(tmp_path: Path) -> None:
    with pytest.raises(UBootLookupError) as info:
        find_uboot(load_board("a20"), read_dtb_identity(A20_DTB), [IMAGES, tmp_path])
    message = str(info.value)
    assert "\n" not in message
    assert str(A20_DTB) in message and "felboot,a20-test" in message
    assert f"{IMAGES / 'u-boot-sunxi-with-spl-a20.bin'} (sun7i-a20-cubietruck)" in message
    assert "orangepi-pc" not in message  # other SoCs are not candidates
    assert message.endswith("pass --uboot FILE, or add its directory to FELBOOT_UBOOT_PATH")


def test_several_matches_are_one_line_naming_each(tmp_path: Path) -> None:
    for name in ("mine", "yours"):
        (tmp_path / name).mkdir()
        shutil.copy(IMAGES / "u-boot-sunxi-with-spl-a20.bin", tmp_path / name)
    with pytest.raises(UBootLookupError) as info:
        find_uboot(load_board("a20"), identity("cubietech,cubietruck"), [tmp_path])
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"2 U-Boot builds in {tmp_path} match board.dtb")
    assert "mine/u-boot-sunxi-with-spl-a20.bin (sun7i-a20-cubietruck)" in message
    assert "yours/u-boot-sunxi-with-spl-a20.bin (sun7i-a20-cubietruck)" in message
    assert message.endswith("pick one with --uboot FILE")


def test_a_compatible_match_beats_a_file_name_match(tmp_path: Path) -> None:
    found = identity("cubietech,cubietruck", name="sun8i-h3-orangepi-pc.dtb")
    choice = find_uboot(load_board("a20"), found, [IMAGES])
    assert choice.why == "matches cubietech,cubietruck"


def test_felboot_uboot_path_is_searched_first(monkeypatch, tmp_path: Path) -> None:
    mine, debian = tmp_path / "mine", tmp_path / "debian" / "Cubietruck"
    for where in (mine, debian):
        where.mkdir(parents=True)
        shutil.copy(IMAGES / "u-boot-sunxi-with-spl-a20.bin", where / "u-boot-sunxi-with-spl.bin")
    monkeypatch.setattr(lookup, "DEBIAN_UBOOT_DIR", tmp_path / "debian")
    monkeypatch.setenv(lookup.ENV_PATH, f"{tmp_path / 'absent'}::{mine}")
    assert lookup.search_dirs() == (tmp_path / "absent", mine, tmp_path / "debian")
    choice = find_uboot(load_board("a20"), identity("cubietech,cubietruck"))
    assert choice.paths == (mine / "u-boot-sunxi-with-spl.bin",)
    monkeypatch.delenv(lookup.ENV_PATH)
    choice = find_uboot(load_board("a20"), identity("cubietech,cubietruck"))
    assert choice.paths == (debian / "u-boot-sunxi-with-spl.bin",)


# Debian's builds --------------------------------------------------------------------

# (family, the board's compatible, Debian's directory)
DEBIAN_BOARDS = [
    ("a20", "cubietech,cubieboard2", "Cubieboard2"),
    ("a20", "cubietech,cubietruck", "Cubietruck"),
    ("a20", "lemaker,bananapi", "Bananapi"),
    ("a20", "lamobo,lamobo-r1", "Lamobo_R1"),
    ("a20", "olimex,a20-olinuxino-lime2", "A20-OLinuXino-Lime2"),
    ("a20", "olimex,a20-olinuxino-lime2-emmc", "A20-OLinuXino-Lime2-eMMC"),
    ("h3", "xunlong,orangepi-plus", "orangepi_plus"),
    ("h3", "xunlong,orangepi-zero", "orangepi_zero"),  # an H2+ build on the H3 family
    ("a64", "pine64,pine64-plus", "pine64_plus"),
    ("a64", "pine64,pine64", "pine64_plus"),
    ("a64", "pine64,pinephone-1.1", "pinephone"),
    ("h5", "friendlyarm,nanopi-neo2", "nanopi_neo2"),
]


@pytest.mark.skipif(not DEBIAN.is_dir(), reason=NO_DEBIAN)
@pytest.mark.parametrize(("family", "compatible", "directory"), DEBIAN_BOARDS)
def test_debian_build_for_a_board(family, compatible, directory) -> None:
    if not (DEBIAN / directory).is_dir():
        pytest.skip(f"{DEBIAN / directory} is not installed")
    choice = find_uboot(load_board(family), identity(compatible, "x"), [DEBIAN])
    assert choice.paths[0].parent == DEBIAN / directory
    assert choice.why == f"matches {compatible}"


@pytest.mark.skipif(not DEBIAN.is_dir(), reason=NO_DEBIAN)
def test_debian_builds_are_read_by_their_headers() -> None:
    builds = list(builds_in(DEBIAN))
    assert len(builds) >= 20
    by_dir = {build.paths[0].parent.name: build for build in builds}
    if "Cubieboard2" in by_dir:
        assert by_dir["Cubieboard2"].dt_names == ("sun7i-a20-cubieboard2",)
        assert by_dir["Cubieboard2"].soc == "A20"
    if "pine64_plus" in by_dir:
        assert by_dir["pine64_plus"].paths[1].name == "u-boot-sunxi-with-spl.fit.itb"
    # Each build read alone gives the same answer as the directory walk.
    for build in builds[:3]:
        assert read_build(build.paths) == build


@pytest.mark.skipif(not DEBIAN.is_dir(), reason=NO_DEBIAN)
def test_every_named_profile_with_a_debian_build_is_found_by_its_dtb(tmp_path: Path) -> None:
    """The named board's own path and the lookup from its DTB's name agree."""
    from felboot.boards import list_boards

    checked = 0
    for board in list_boards():
        if board.is_family or not board.uboot or not board.uboot[0].exists() or not board.dtb:
            continue
        dtb = identity("felboot,test", name=Path(board.dtb).name)  # the file name only
        choice = find_uboot(load_board(board.soc.lower()), dtb, [DEBIAN])
        assert choice.paths == board.uboot, board.name
        checked += 1
    assert checked


# load_inputs and the command line ---------------------------------------------------


def test_load_inputs_finds_uboot_for_a_family(fixtures_only, tmp_path: Path) -> None:
    dtb = board_dtb(tmp_path, "cubietech,cubietruck", "allwinner,sun7i-a20")
    request = RunRequest(board="a20", xen=Path(RUN_FILES[0]), kernel=Path(RUN_FILES[1]), dtb=dtb)
    inputs = load_inputs(request)
    assert inputs.uboot is not None and inputs.uboot.dt_name == "sun7i-a20-cubietruck"
    assert inputs.uboot_choice is not None
    assert inputs.uboot_choice.why == "matches cubietech,cubietruck"


def test_load_inputs_without_board_takes_the_dtb_profile(fixtures_only, tmp_path: Path) -> None:
    dtb = board_dtb(tmp_path, "xunlong,orangepi-pc", "allwinner,sun8i-h3")
    request = RunRequest(xen=Path(RUN_FILES[0]), kernel=Path(RUN_FILES[1]), dtb=dtb)
    inputs = load_inputs(request)
    assert inputs.board.name == "orangepi-pc"  # named board preferred; it has no Debian build
    assert inputs.uboot_choice is not None
    assert inputs.uboot_choice.paths == (IMAGES / "u-boot-sunxi-with-spl-h3.bin",)


def test_a_named_board_keeps_its_own_build(monkeypatch, tmp_path: Path) -> None:
    own = tmp_path / "u-boot-sunxi-with-spl.bin"
    shutil.copy(IMAGES / "u-boot-sunxi-with-spl-a20.bin", own)
    profile = tmp_path / "mine.toml"
    profile.write_text(f'soc = "A20"\ndram_size = "1G"\nuboot = "{own}"\n')
    monkeypatch.setenv(lookup.ENV_PATH, str(IMAGES))
    request = RunRequest(
        board_file=profile, xen=Path(RUN_FILES[0]), kernel=Path(RUN_FILES[1]), dtb=A20_DTB
    )
    choice = load_inputs(request).uboot_choice
    assert (
        choice is not None and choice.paths == (own,) and choice.why == "the mine profile's build"
    )


def test_plan_without_a_match_plans_without_uboot(fixtures_only, capsys) -> None:
    code, out, _ = run_cli(
        capsys, "plan", "--board", "a20", "--dram-size", "1G", *RUN_FILES, str(A20_DTB)
    )
    assert code == 0 and "xen" in out
    code, _, err = run_cli(
        capsys, "--device", "sim", "run", "--board", "a20", *RUN_FILES, str(A20_DTB)
    )
    line = one_error_line(err)
    assert "no A20 U-Boot build matches" in line and "felboot,a20-test" in line
    assert "u-boot-sunxi-with-spl-a20.bin (sun7i-a20-cubietruck)" in line


@pytest.mark.parametrize("command", ["plan", "script", "run --dry-run", "run"])
@pytest.mark.parametrize(
    ("uboot", "fragment"),
    [
        (["{tmp}/missing.bin"], "missing.bin: no such file"),
        (["{tmp}"], "is a directory: name a file"),
        (["{a20}", "{a20}", "{a20}"], "got 3"),
        (["{h3}"], "built for the H3"),
    ],
)
def test_uboot_given_is_checked_by_every_command(capsys, tmp_path, command, uboot, fragment):
    files = {
        "tmp": str(tmp_path),
        "a20": str(IMAGES / "u-boot-sunxi-with-spl-a20.bin"),
        "h3": str(IMAGES / "u-boot-sunxi-with-spl-h3.bin"),
    }
    argv = ["--device", "sim", *command.split(), "--board", "cubieboard2"]
    if command == "script":
        argv += ["-o", str(tmp_path / "out")]
    for path in uboot:
        argv += ["--uboot", path.format(**files)]
    _, out, err = run_cli(capsys, *argv, *RUN_FILES, str(A20_DTB))
    assert fragment in one_error_line(err)
    assert "dry run" not in out and not (tmp_path / "out").exists()


def test_headline_on_the_model_with_the_fixture_uboot(fixtures_only, capsys, tmp_path) -> None:
    """felboot --device sim run --board a20 XEN KERNEL DTB, the DTB naming a Cubietruck."""
    dtb = board_dtb(tmp_path, "cubietech,cubietruck", "allwinner,sun7i-a20")
    code, out, err = run_cli(
        capsys, "--device", "sim", "run", "--board", "a20", *RUN_FILES, str(dtb)
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].endswith("U-Boot started, the board has left FEL")
    assert lines[1] == (
        f"U-Boot: {IMAGES / 'u-boot-sunxi-with-spl-a20.bin'}, matches cubietech,cubietruck"
    )


def test_headline_without_board_on_the_model(fixtures_only, capsys, tmp_path) -> None:
    """felboot --device sim run XEN KERNEL DTB: the DTB names the board and the build."""
    dtb = board_dtb(tmp_path, "cubietech,cubietruck", "allwinner,sun7i-a20")
    code, out, err = run_cli(capsys, "--device", "sim", "--json", "run", *RUN_FILES, str(dtb))
    assert code == 0, err
    import json

    report = json.loads(out)
    assert report["plan"]["board"] == "cubietruck"
    # No Debian directory here: the profile's /usr/lib/u-boot path may be installed or not.
    assert report["uboot"]["why"] in (
        "the cubietruck profile's build",
        "matches cubietech,cubietruck",
    )
    assert report["uboot"]["files"]


@pytest.mark.skipif(not DEBIAN.is_dir(), reason=NO_DEBIAN)
def test_headline_on_the_model_with_debian_uboot(monkeypatch, capsys, tmp_path) -> None:
    """The family profile and Debian's builds: the Cubietruck build is the one."""
    monkeypatch.delenv(lookup.ENV_PATH, raising=False)
    if not (DEBIAN / "Cubietruck").is_dir():
        pytest.skip("Debian's Cubietruck U-Boot is not installed")
    dtb = board_dtb(tmp_path, "cubietech,cubietruck", "allwinner,sun7i-a20")
    code, out, err = run_cli(
        capsys, "--device", "sim", "run", "--board", "a20", *RUN_FILES, str(dtb)
    )
    assert code == 0, err
    assert out.splitlines()[1] == (
        f"U-Boot: {DEBIAN / 'Cubietruck' / 'u-boot-sunxi-with-spl.bin'}, "
        "matches cubietech,cubietruck"
    )


def debian_file(pattern: str) -> Path:
    matches = sorted(Path("/").glob(pattern.lstrip("/")))
    if not matches:
        pytest.skip(f"Debian file {pattern} is not installed")
    return matches[-1]


@pytest.mark.skipif(not DEBIAN.is_dir(), reason=NO_DEBIAN)
@pytest.mark.parametrize("board", [["--board", "a20"], []])
def test_headline_with_debian_files(monkeypatch, capsys, board) -> None:
    """The issue's command with Debian's Xen, kernel, Cubieboard2 DTB and U-Boot."""
    monkeypatch.delenv(lookup.ENV_PATH, raising=False)
    xen = debian_file("/boot/xen-4.17-armhf")
    kernel = debian_file("/boot/vmlinuz-*-armmp-lpae")
    dtb = debian_file("/usr/lib/linux-image-*-armmp-lpae/sun7i-a20-cubieboard2.dtb")
    debian_file("/usr/lib/u-boot/Cubieboard2/u-boot-sunxi-with-spl.bin")
    argv = ["--device", "sim", "run", *board, str(xen), str(kernel), str(dtb)]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    why = "matches cubietech,cubieboard2" if board else "the cubieboard2 profile's build"
    assert out.splitlines()[1] == (
        f"U-Boot: /usr/lib/u-boot/Cubieboard2/u-boot-sunxi-with-spl.bin, {why}"
    )


def test_the_configs_uboot_path_is_searched_after_felboot_uboot_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # felboot.toml's uboot_path (relative to the file) finds the fixture Cubietruck build.
    builds = tmp_path / "builds"
    builds.mkdir()
    (builds / "u-boot-sunxi-with-spl.bin").write_bytes(
        (IMAGES / "u-boot-sunxi-with-spl-a20.bin").read_bytes()
    )
    (tmp_path / "felboot.toml").write_text('uboot_path = "builds"\n')
    dtb = board_dtb(tmp_path, "cubietech,cubietruck", "allwinner,sun7i-a20", name="ct.dtb")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FELBOOT_UBOOT_PATH", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    xen, kernel = str(PAYLOADS / "xen-arm32.zimage"), str(PAYLOADS / "zImage-arm32")
    assert main(["plan", "--board", "a20", "--dram-size", "1G", xen, kernel, str(dtb)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"U-Boot: {builds / 'u-boot-sunxi-with-spl.bin'}, matches cubietech,cubietruck"
