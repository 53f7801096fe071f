"""felboot.config: files found and merged, precedence, relative paths, every bad config."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from felboot.config import (
    KEYS,
    ConfigError,
    apply_to_args,
    find_project_file,
    load_config,
    show_lines,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    write(
        root / "felboot.toml",
        'board = "cubieboard2"\nxen = "build/xen"\nkernel = "build/zImage"\n'
        'dtb = "../dtbs/a20.dtb"\nuboot = "u-boot-sunxi-with-spl.bin"\n'
        'expect = ["Xen", "login:"]\ntimeout = 90\nreserve_top = "64M"\n',
    )
    return root


def load(cwd: Path, explicit: Path | None = None, environ=None, user: Path | None = None):
    return load_config(
        cwd, explicit, environ or {}, user_file=user or cwd / "no-user-file" / "config.toml"
    )


def run_args(**given: object) -> argparse.Namespace:
    """What the lead's parser gives when nothing is typed: None (not given), images []."""
    values: dict[str, object] = dict.fromkeys(
        (
            "device",
            "board",
            "board_file",
            "uboot",
            "initrd",
            "xen_args",
            "dom0_args",
            "dom0_mem",
            "layout",
            "reserve_top",
            "console",
            "console_log",
            "expect",
            "timeout",
            "fail_on",
        )
    )
    values.update(images=[], no_xen=False)
    values.update(given)
    return argparse.Namespace(**values)


# Finding and merging -----------------------------------------------------------------


def test_paths_are_relative_to_the_file_not_the_working_directory(project: Path) -> None:
    sub = project / "src" / "deep"
    sub.mkdir(parents=True)
    config = load(sub)
    assert config.project_file == project / "felboot.toml"
    assert config.get("xen") == project / "build" / "xen"
    assert config.get("dtb") == project.parent / "dtbs" / "a20.dtb"  # ".." normalised
    assert config.get("uboot") == (project / "u-boot-sunxi-with-spl.bin",)  # one -> a list
    assert config.get("expect") == ("Xen", "login:")
    assert config.source("board") == "../../felboot.toml"
    assert load(project).source("board") == "./felboot.toml"


def test_the_walk_up_stops_at_the_vcs_root(tmp_path: Path) -> None:
    write(tmp_path / "felboot.toml", 'board = "bananapi"\n')
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "src").mkdir()
    found, searched = find_project_file(repo / "src")
    assert found is None
    assert searched == (repo / "src", repo)
    # Without a VCS root the walk goes on to the parent's file.
    plain = tmp_path / "plain" / "src"
    plain.mkdir(parents=True)
    assert find_project_file(plain)[0] == tmp_path / "felboot.toml"


def test_precedence_user_file_project_file_environment_command_line(
    project: Path, tmp_path: Path
) -> None:
    user = write(
        tmp_path / "xdg" / "felboot" / "config.toml",
        'device = "usb:port=1-1.2"\nboard = "bananapi"\nconsole = "/dev/ttyUSB0"\n'
        'uboot_path = ["builds"]\nlayout = "recipe"\n',
    )
    config = load(project, user=user)
    assert config.get("device") == "usb:port=1-1.2"  # only in the user file
    assert config.source("device") == str(user)
    assert config.get("board") == "cubieboard2"  # the project file beats the user file
    assert config.uboot_dirs() == (user.parent / "builds",)  # relative to the user file

    environ = {"FELBOOT_BOARD": "lamobo-r1", "FELBOOT_CONSOLE": "", "FELBOOT_DEVICE": "sim"}
    config = load(project, environ=environ, user=user)
    assert (config.get("board"), config.source("board")) == ("lamobo-r1", "FELBOOT_BOARD")
    assert config.get("device") == "sim"
    assert config.source("console") == str(user)  # an empty variable counts as unset

    args = apply_to_args(config, run_args(board="orangepi-pc", layout="safe"))
    assert args.board == "orangepi-pc"  # the command line beats the environment
    assert args.layout == "safe"  # given on purpose, though it is the default
    assert args.device == "sim"
    assert args.console == "/dev/ttyUSB0"


def test_apply_fills_what_was_not_given_and_the_images(project: Path) -> None:
    config = load(project)
    args = apply_to_args(config, run_args(), types={"timeout": float})
    assert args.images == [
        str(project / "build/xen"),
        str(project / "build/zImage"),
        str(project.parent / "dtbs/a20.dtb"),
    ]
    assert args.uboot == [str(project / "u-boot-sunxi-with-spl.bin")]
    assert args.reserve_top == "64M"
    assert args.timeout == 90.0 and isinstance(args.timeout, float)
    assert args.expect == ["Xen", "login:"]
    assert (args.layout, args.xen_args, args.device) == ("safe", "", "usb")  # defaults
    assert args.initrd is None and args.fail_on is None  # neither given nor configured
    assert apply_to_args(config, run_args()).timeout == "90"  # as a command line gives it
    # An append option's default [] is "not given" too: append never yields [].
    assert apply_to_args(config, run_args(expect=[])).expect == ["Xen", "login:"]
    assert apply_to_args(config, run_args(expect=["x"])).expect == ["x"]

    given = apply_to_args(config, run_args(images=["a", "b", "c"], uboot=["mine.bin"]))
    assert given.images == ["a", "b", "c"] and given.uboot == ["mine.bin"]
    no_xen = apply_to_args(config, run_args(no_xen=True))
    assert no_xen.images == [str(project / "build/zImage"), str(project.parent / "dtbs/a20.dtb")]
    # --board-file on the command line: no configured board name to conflict with it.
    assert apply_to_args(config, run_args(board_file="my.toml")).board is None
    # A command without run's options keeps its namespace as it is.
    bare = apply_to_args(config, argparse.Namespace(device=None, address="0x0"))
    assert vars(bare) == {"device": "usb", "address": "0x0"}


def test_images_half_configured_are_named(tmp_path: Path) -> None:
    write(tmp_path / "felboot.toml", 'dtb = "a.dtb"\n')
    with pytest.raises(ConfigError, match=r"\./felboot\.toml names dtb but no kernel"):
        apply_to_args(load(tmp_path), run_args())
    write(tmp_path / "felboot.toml", 'kernel = "zImage"\n')
    with pytest.raises(ConfigError, match=r"names no xen: add xen = .* --no-xen"):
        apply_to_args(load(tmp_path), run_args())
    assert apply_to_args(load(tmp_path), run_args(no_xen=True)).images == [str(tmp_path / "zImage")]


def test_explicit_file_replaces_the_search(project: Path, tmp_path: Path) -> None:
    other = write(tmp_path / "elsewhere" / "lab.toml", 'board = "a20"\n')
    config = load(project, explicit=other)
    assert config.project_file == other
    assert config.get("board") == "a20" and "xen" not in config


def test_show_lines_say_where_each_value_came_from(project: Path) -> None:
    lines = show_lines(load(project, environ={"FELBOOT_DEVICE": "usb:1:7"}))
    assert lines[0] == f"# project file: {project / 'felboot.toml'}"
    assert lines[1].endswith("(none)")
    board = next(line for line in lines if line.startswith("board"))
    assert board.split() == ["board", "=", "cubieboard2", "(./felboot.toml)"]
    assert any(line.split()[-1] == "(FELBOOT_DEVICE)" for line in lines)
    assert any(line.startswith("expect = [Xen, login:]") for line in lines)
    # Keys in KEYS order, so the output reads the same every time.
    shown = [line.split()[0] for line in lines if not line.startswith("#")]
    assert shown == [key for key in KEYS if key in shown]


def test_show_lines_with_nothing_configured(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    lines = show_lines(load(tmp_path))
    assert lines[0] == f"# project file: none (no felboot.toml from {tmp_path} up to {tmp_path})"
    assert lines[-1] == "# no values set: felboot uses its defaults"


def test_to_dict_is_json_ready(project: Path) -> None:
    import json

    data = json.loads(json.dumps(load(project).to_dict()))
    assert data["values"]["uboot"] == {
        "value": [str(project / "u-boot-sunxi-with-spl.bin")],
        "source": "./felboot.toml",
    }


# Bad configs: one line naming the file, the key and what it takes -------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('kernal = "zImage"\n', r"unknown key 'kernal' \(did you mean 'kernel'\?\); the keys are"),
        ("[run]\nboard = 'a20'\n", r"unknown key 'run'"),
        ("board = 7\n", r"key 'board' takes a string, not an integer 7"),
        ("timeout = '30'\n", r"key 'timeout' takes a number of seconds above 0, not a string"),
        ("timeout = true\n", r"key 'timeout' takes a number .*, not a boolean True"),
        ("timeout = 0\n", r"key 'timeout' takes a number of seconds above 0, not an integer 0"),
        ("uboot = [1, 2]\n", r"key 'uboot' takes a path or a list of paths, not an array"),
        ("expect = {a = 1}\n", r"key 'expect' takes a string or a list of strings, not a table"),
        ("layout = 'wiki'\n", r"""key 'layout' takes "safe" or "recipe", not 'wiki'"""),
        ("reserve_top = 1.5\n", r"key 'reserve_top' takes a size: .*, not a float 1.5"),
        ("xen = ''\n", r"key 'xen' takes a path, not an empty string"),
    ],
)
def test_bad_keys_and_types(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "felboot.toml", text)
    with pytest.raises(ConfigError, match=message) as caught:
        load(tmp_path)
    assert str(caught.value).startswith(f"config file {path}: ")
    assert "\n" not in str(caught.value)


def test_not_toml_names_the_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "felboot.toml", 'board = "a20"\nkernel zImage\n')
    with pytest.raises(ConfigError) as caught:
        load(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"config file {path} is not TOML: line 2, column 8: ")
    assert "\n" not in message and "(at line" not in message


def test_not_utf8_is_not_toml(tmp_path: Path) -> None:
    write(tmp_path / "felboot.toml", "")
    (tmp_path / "felboot.toml").write_bytes(b"board = '\xff'\n")
    with pytest.raises(ConfigError, match=r"is not TOML: not UTF-8 text \(byte 9\)"):
        load(tmp_path)


def test_a_missing_explicit_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"config file {tmp_path}/nope.toml does not exist"):
        load(tmp_path, explicit=Path("nope.toml"))
    with pytest.raises(ConfigError, match=r"is a directory"):
        load(tmp_path, explicit=tmp_path)


def test_a_bad_user_file_is_named_too(tmp_path: Path) -> None:
    user = write(tmp_path / "xdg" / "config.toml", "device = 'usb:nonsense'\n")
    with pytest.raises(ConfigError, match=rf"^{user}: device 'usb:nonsense' is not a device"):
        load(tmp_path, user=user)
    with pytest.raises(ConfigError, match=r"^FELBOOT_DEVICE: device 'serial' is not a device"):
        load(tmp_path, environ={"FELBOOT_DEVICE": "serial"})


def test_default_user_file_is_under_the_xdg_config_dir(monkeypatch, tmp_path: Path) -> None:
    from felboot.config import default_user_file

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr("sys.platform", "linux")
    assert default_user_file() == tmp_path / "felboot" / "config.toml"


# dom0less domUs: [[domu]] tables -------------------------------------------------------


DOMU_PROJECT = """\
xen = "build/xen"
dtb = "build/board.dtb"
no_dom0 = true
passthrough = "/soc/ethernet@1c50000"

[[domu]]
kernel = "domU/Image"
ramdisk = "~/rootfs.cpio"
mem = "256M"
vcpus = 2
args = "console=ttyAMA0 a=b,c"
dtb = "domU/partial.dtb"
passthrough = ["/soc/ethernet@1c50000"]

[[domu]]
kernel = "domU/Image"
vpl011 = false
"""


def test_domu_tables_become_domains_with_paths_relative_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write(tmp_path / "proj" / "felboot.toml", DOMU_PROJECT)
    config = load(tmp_path / "proj" / "sub")
    first, second = config.get("domu")
    root = tmp_path / "proj"
    assert (first.index, first.kernel, first.ramdisk) == (
        1,
        root / "domU" / "Image",
        tmp_path / "home" / "rootfs.cpio",
    )
    assert (first.mem, first.vcpus, first.args, first.vpl011) == (
        256 << 20,
        2,
        "console=ttyAMA0 a=b,c",
        True,
    )
    assert (first.dtb, first.passthrough) == (
        root / "domU" / "partial.dtb",
        ("/soc/ethernet@1c50000",),
    )
    assert (second.index, second.mem, second.vcpus, second.vpl011) == (2, 128 << 20, 1, False)
    args = apply_to_args(config, run_args(domu=[], no_dom0=None, passthrough=[]))
    assert args.domu == [first, second]  # records, not text to parse again
    assert args.no_dom0 is True
    assert args.passthrough == ["/soc/ethernet@1c50000"]
    assert args.images == [str(root / "build" / "xen"), str(root / "build" / "board.dtb")]
    shown = "\n".join(show_lines(config))
    assert f"domu = ['kernel={root}/domU/Image,ramdisk=" in shown
    assert "vpl011=no'" in shown


def test_a_domu_given_on_the_command_line_replaces_the_tables(tmp_path: Path) -> None:
    write(tmp_path / "felboot.toml", DOMU_PROJECT)
    args = apply_to_args(load(tmp_path), run_args(domu=["Image"], no_dom0=None, passthrough=[]))
    assert args.domu == ["Image"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'domu = "Image"\n',
            r"key 'domu' takes \[\[domu\]\] tables \(kernel, ramdisk, .*\), not a string",
        ),
        (
            "[[domu]]\nkernal = 'Image'\n",
            r"\[\[domu\]\] 1 \(domU1\): unknown key 'kernal' \(keys: kernel,",
        ),
        ("[[domu]]\nmem = '256M'\n", r"\[\[domu\]\] 1 \(domU1\): no kernel: write kernel=FILE"),
        (
            "[[domu]]\nkernel = 'I'\n[[domu]]\nkernel = 'I'\nmem = '1.5K'\n",
            r"\[\[domu\]\] 2 \(domU2\): mem='1.5K' is not a size: write e.g. 256M",
        ),
        (
            "[[domu]]\nkernel = 'I'\nvcpus = 0\n",
            r"\(domU1\): vcpus='0' is not a whole number from 1",
        ),
        (
            "[[domu]]\nkernel = 'I'\nvpl011 = 'maybe'\n",
            r"\(domU1\): vpl011='maybe' is not yes or no",
        ),
        ("[[domu]]\nkernel = 'I'\nargs = 7\n", r"\(domU1\): args = 7 is not a string"),
        (
            "[[domu]]\nkernel = 'I'\npassthrough = 'soc/eth'\n",
            r"passthrough='soc/eth' is not an absolute",
        ),
        (
            "[[domu]]\nkernel = 'I'\npassthrough = [1]\n",
            r"passthrough takes a path or a list of paths",
        ),
        ("no_dom0 = 'yes'\n", r"key 'no_dom0' takes true or false, not a string 'yes'"),
    ],
)
def test_bad_domu_tables_name_the_file_the_table_and_the_value(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path / "felboot.toml", text)
    with pytest.raises(ConfigError, match=message) as caught:
        load(tmp_path)
    assert str(caught.value).startswith(f"config file {path}: ")
    assert "\n" not in str(caught.value)
