"""felboot doctor: each check's line on a fake host (root, bus, user), and one real run."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest

from felboot import doctor
from felboot.commands import desk
from felboot.config import MergedConfig, Setting, load_config
from felboot.doctor import FAIL, OK, SKIP, WARN, CheckResult, Host, run_checks
from felboot.errors import PermissionDenied
from felboot.transport import Transport, UsbDeviceInfo

BOARD = UsbDeviceInfo(1, 7, "1-1.2")


class FakeBus:
    """Boards on a bus that answer as the device model does (an A20), or fail to open."""

    def __init__(self, boards: list[UsbDeviceInfo], error: Exception | None = None) -> None:
        self.boards = boards
        self.error = error
        self.opened: list[UsbDeviceInfo] = []

    def find(self) -> list[UsbDeviceInfo]:
        return list(self.boards)

    def open(self, info: UsbDeviceInfo) -> Transport:
        from felboot.sim import open_sim

        self.opened.append(info)
        if self.error is not None:
            raise self.error
        return open_sim("soc=a20")


def no_serial() -> Any:
    raise ImportError("No module named 'serial'")


def make_host(root: Path, **changes: Any) -> Host:
    defaults: dict[str, Any] = {
        "root": root,
        "bus": FakeBus([]),
        "libusb_loaders": [("system libusb-1.0", lambda: object())],
        "linux": True,
        "is_root": False,
        "user": "me",
        "groups": frozenset({1000}),
        "can_read_write": lambda path: True,
        "group_name": lambda gid: "plugdev",
        "import_serial": no_serial,
        "environ": {},
    }
    defaults.update(changes)
    return Host(**defaults)


def config_of(**values: Any) -> MergedConfig:
    return MergedConfig(
        {key: Setting(value, "./felboot.toml") for key, value in values.items()},
        None,
        Path("/nowhere/config.toml"),
        False,
    )


def by_name(results: list[CheckResult], name: str) -> CheckResult:
    return next(result for result in results if result.name == name)


def install_rule(root: Path, directory: str = "etc/udev/rules.d", text: str | None = None) -> Path:
    folder = root / directory
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "60-felboot.rules"
    path.write_text(text if text is not None else f"# felboot\n{doctor.FELBOOT_RULE}\n")
    return path


def board_in_sysfs(root: Path, speed: str = "480", driver: str | None = None) -> Path:
    device = root / "sys/bus/usb/devices/1-1.2"
    (device / "1-1.2:1.0").mkdir(parents=True)
    (device / "busnum").write_text("1\n")
    (device / "devnum").write_text("7\n")
    (device / "speed").write_text(f"{speed}\n")
    if driver:
        target = root / "sys/bus/usb/drivers" / driver
        target.mkdir(parents=True)
        (device / "1-1.2:1.0" / "driver").symlink_to(target)
    node = root / "dev/bus/usb/001/007"
    node.parent.mkdir(parents=True)
    node.write_bytes(b"")
    node.chmod(0o660)
    return device


LINE = re.compile(r"^(ok|warn|FAIL|skip) {1,3} \S.*$")


# The whole run -----------------------------------------------------------------------


def test_a_good_setup_is_all_ok(tmp_path: Path) -> None:
    install_rule(tmp_path)
    board_in_sysfs(tmp_path)
    uboot = tmp_path / "u-boot-sunxi-with-spl.bin"
    uboot.write_bytes(b"x")
    console = tmp_path / "dev/ttyUSB0"
    console.write_bytes(b"")
    bus = FakeBus([BOARD])
    host = make_host(
        tmp_path, bus=bus, import_serial=lambda: type("serial", (), {"VERSION": "3.5"})
    )
    config = config_of(uboot=(uboot,), console="/dev/ttyUSB0,1500000", device="usb:port=1-1.2")
    results = run_checks(host, config)
    lines = [result.line() for result in results]
    assert all(LINE.match(line) for line in lines), lines
    assert [r.status for r in results if r.status not in (OK, SKIP)] == []
    assert by_name(results, "board usb:1:7").detail == "A20 in FEL (port 1-1.2)"
    assert by_name(results, "link speed usb:1:7").detail == "480 Mbit/s"
    assert by_name(results, "device").detail == "usb:port=1-1.2 picks usb 1:7 (port 1-1.2)"
    assert by_name(results, "console").detail == "/dev/ttyUSB0 at 1500000 8N1 (./felboot.toml)"
    assert by_name(results, "pyserial").detail == "pyserial 3.5"
    assert doctor.exit_code(results) == 0
    assert bus.opened == [BOARD]  # one open, for the VERSION request


def test_no_board_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    install_rule(tmp_path)
    results = run_checks(make_host(tmp_path), config_of())
    board = by_name(results, "board")
    assert board.status == WARN
    assert board.line().startswith("warn  board              no board in FEL mode (USB 1f3a:efe8)")
    assert "hold FEL" in (board.fix or "")
    assert not any(result.name.startswith("permission") for result in results)
    assert doctor.exit_code(results) == 0


def test_results_as_json(tmp_path: Path) -> None:
    result = CheckResult("libusb", FAIL, "no libusb-1.0 loads", "install it")
    assert json.loads(json.dumps(result.to_dict())) == {
        "check": "libusb",
        "status": "FAIL",
        "detail": "no libusb-1.0 loads",
        "fix": "install it",
    }
    assert result.line() == "FAIL  libusb             no libusb-1.0 loads: install it"


# libusb --------------------------------------------------------------------------------


def test_libusb_system_bundled_or_none(tmp_path: Path) -> None:
    lib = type("lib", (), {"_name": "libusb-1.0.so.0"})
    backend = type("backend", (), {"lib": lib})
    host = make_host(tmp_path, libusb_loaders=[("system libusb-1.0", lambda: backend)])
    assert doctor.check_libusb(host)[0].detail == "system libusb-1.0 (libusb-1.0.so.0)"
    host = make_host(
        tmp_path, libusb_loaders=[("system", lambda: None), ("bundled (libusb-package)", object)]
    )
    assert doctor.check_libusb(host) == (
        CheckResult("libusb", OK, "bundled (libusb-package)"),
        True,
    )

    host = make_host(tmp_path, libusb_loaders=[("system", lambda: None), ("bundled", lambda: None)])
    results = run_checks(host, config_of())
    libusb = by_name(results, "libusb")
    assert libusb.status == FAIL and "apt install libusb-1.0-0" in (libusb.fix or "")
    assert by_name(results, "board").status == SKIP  # no bus to look at
    assert doctor.exit_code(results) == 1


def test_pyusb_missing(tmp_path: Path) -> None:
    def loader() -> Any:
        raise ImportError("No module named 'usb'")

    result, usable = doctor.check_libusb(make_host(tmp_path, libusb_loaders=[("system", loader)]))
    assert not usable and result.line().endswith(": pip install pyusb")


def test_the_default_loaders_are_transports() -> None:
    from felboot import transport

    loaders = [loader for _, loader in Host(bus=FakeBus([])).libusb_loaders]
    assert loaders == [transport._system_libusb, transport._bundled_libusb]


# udev ----------------------------------------------------------------------------------


def test_udev_rule_installed_missing_or_different(tmp_path: Path) -> None:
    assert doctor.check_udev(make_host(tmp_path)).status == FAIL
    assert "sudo felboot udev --install" in (doctor.check_udev(make_host(tmp_path)).fix or "")
    root = doctor.check_udev(make_host(tmp_path, is_root=True))
    assert (root.status, root.detail) == (
        WARN,
        "no rule for 1f3a:efe8 (root needs none; other users do)",
    )

    install_rule(tmp_path, "usr/lib/udev/rules.d")
    assert doctor.check_udev(make_host(tmp_path)) == CheckResult(
        "udev rule", OK, "/usr/lib/udev/rules.d/60-felboot.rules (felboot's rule)"
    )
    # /etc masks /usr/lib: an edited copy there is what udev reads.
    install_rule(
        tmp_path,
        text='SUBSYSTEM=="usb", ATTRS{idVendor}=="1F3A", ATTRS{idProduct}=="EFE8", MODE="0666"\n',
    )
    other = doctor.check_udev(make_host(tmp_path))
    assert other == CheckResult(
        "udev rule", OK, "/etc/udev/rules.d/60-felboot.rules (not felboot's, grants access)"
    )


def test_udev_rule_of_sunxi_tools_grants_a_group(tmp_path: Path) -> None:
    rule = 'SUBSYSTEM=="usb", ATTR{idVendor}=="1f3a", ATTR{idProduct}=="efe8", GROUP="sunxi-fel"'
    folder = tmp_path / "usr/lib/udev/rules.d"
    folder.mkdir(parents=True)
    (folder / "60-sunxi-tools.rules").write_text(rule + "\n")
    result = doctor.check_udev(make_host(tmp_path))
    assert result.line().startswith(
        "warn  udev rule          /usr/lib/udev/rules.d/60-sunxi-tools.rules lets group "
        "sunxi-fel open FEL boards: be in it (sudo usermod -aG sunxi-fel me, log in again), "
        "or install felboot's rule: sudo felboot udev --install"
    )
    assert doctor.check_udev(make_host(tmp_path, is_root=True)).status == OK
    (folder / "60-sunxi-tools.rules").write_text(rule.replace(', GROUP="sunxi-fel"', "") + "\n")
    assert doctor.check_udev(make_host(tmp_path)).status == WARN


def test_udev_uaccess_after_seat_late_grants_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "etc/udev/rules.d"
    folder.mkdir(parents=True)
    (folder / "99-sunxi.rules").write_text(
        'SUBSYSTEM=="usb", ATTR{idVendor}=="1f3a", ATTR{idProduct}=="efe8", TAG+="uaccess"\n'
    )
    result = doctor.check_udev(make_host(tmp_path))
    assert result.status == WARN and "after 73-seat-late.rules" in result.detail


def test_the_rule_copy_is_the_shipped_rule() -> None:
    shipped = Path(__file__).resolve().parents[1] / "udev" / "60-felboot.rules"
    assert doctor.rule_line(shipped.read_text()) == doctor.FELBOOT_RULE


# The board's node, driver, speed and SoC -----------------------------------------------


def test_node_permission(tmp_path: Path) -> None:
    board_in_sysfs(tmp_path)
    denied = make_host(tmp_path, can_read_write=lambda path: False)
    result = doctor.check_node(denied, BOARD)
    assert result.status == FAIL
    assert result.detail == (
        "/dev/bus/usb/001/007 (-rw-rw----, group plugdev) is not readable and writable by me"
    )
    assert (result.fix or "").startswith("sudo usermod -aG plugdev me, then log out and in again")
    member = make_host(
        tmp_path,
        can_read_write=lambda path: False,
        groups=frozenset({0, 1000, (tmp_path / "dev/bus/usb/001/007").stat().st_gid}),
    )
    assert "install the udev rule" in (doctor.check_node(member, BOARD).fix or "")
    assert doctor.check_node(make_host(tmp_path), BOARD).detail == (
        "/dev/bus/usb/001/007 is readable and writable by me"
    )
    assert doctor.check_node(make_host(tmp_path, is_root=True), BOARD).status == OK
    assert doctor.check_node(make_host(tmp_path / "empty"), BOARD).status == WARN


def test_a_driver_holding_the_board(tmp_path: Path) -> None:
    device = board_in_sysfs(tmp_path / "a", driver="usbfs")
    held = doctor.check_driver(make_host(tmp_path / "a"), BOARD, device)
    assert (
        held.status == FAIL and held.detail == "another program holds interface 1-1.2:1.0 (usbfs)"
    )
    device = board_in_sysfs(tmp_path / "b", driver="usb-storage")
    kernel = doctor.check_driver(make_host(tmp_path / "b"), BOARD, device)
    assert kernel.status == WARN and "felboot detaches it" in (kernel.fix or "")
    device = board_in_sysfs(tmp_path / "c")
    assert doctor.check_driver(make_host(tmp_path / "c"), BOARD, device).status == OK
    assert doctor.check_driver(make_host(tmp_path), BOARD, None).status == SKIP


def test_link_speed(tmp_path: Path) -> None:
    full = doctor.check_speed(BOARD, board_in_sysfs(tmp_path / "a", speed="12"))
    assert full.status == WARN and full.detail.startswith("full speed (12 Mbit/s)")
    assert doctor.check_speed(BOARD, board_in_sysfs(tmp_path / "b")).status == OK
    assert doctor.check_speed(BOARD, None).status == SKIP
    host = make_host(tmp_path / "b")
    assert doctor.sysfs_device(host, BOARD) == tmp_path / "b/sys/bus/usb/devices/1-1.2"
    assert doctor.sysfs_device(host, UsbDeviceInfo(2, 3)) is None


def test_board_that_does_not_answer_or_is_unknown(tmp_path: Path, monkeypatch) -> None:
    error = PermissionDenied(
        "cannot open usb 1:7 (port 1-1.2): permission denied: install the rule"
    )
    host = make_host(tmp_path, bus=FakeBus([BOARD], error))
    result = doctor.check_board(host, BOARD)
    assert result.line() == (
        "FAIL  board usb:1:7      in FEL (port 1-1.2) but does not answer: " + str(error)
    )
    monkeypatch.setattr("felboot.soc.soc_by_id", lambda soc_id: None)
    unknown = doctor.check_board(make_host(tmp_path, bus=FakeBus([BOARD])), BOARD)
    assert unknown.status == FAIL and unknown.detail == (
        "in FEL (port 1-1.2), SoC id 0x1651 is not one felboot knows"
    )


def test_device_selection(tmp_path: Path) -> None:
    two = [BOARD, UsbDeviceInfo(1, 9, "1-1.3")]
    several = doctor.check_selection(two, "usb")
    assert several.status == WARN and several.fix == (
        'set device = "usb:port=1-1.2" in felboot.toml, or FELBOOT_DEVICE'
    )
    none = doctor.check_selection(two, "usb:port=2-1")
    assert (
        none.status == FAIL
        and none.detail == "usb:port=2-1 matches none of usb:port=1-1.2, usb:port=1-1.3"
    )
    assert doctor.check_selection(two, "sim").status == OK
    assert doctor.check_selection(two, "usb:1:9").detail == "usb:1:9 picks usb 1:9 (port 1-1.3)"


# The configured files --------------------------------------------------------------------


def test_uboot(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    missing = doctor.check_uboot(host, config_of(uboot=(tmp_path / "u-boot.bin",)))
    assert missing.line() == (
        f"FAIL  U-Boot             {tmp_path}/u-boot.bin (./felboot.toml) does not exist: "
        "build U-Boot, or fix uboot in that file"
    )
    bad_board = doctor.check_uboot(host, config_of(board="cubieboard9"))
    assert bad_board.status == FAIL and "unknown board 'cubieboard9'" in (bad_board.fix or "")
    nothing = doctor.check_uboot(host, config_of())
    assert nothing.status == WARN and "apt install u-boot-sunxi" in (nothing.fix or "")
    absent = doctor.check_uboot(host, config_of(uboot_path=(tmp_path / "builds",)))
    assert absent.status == WARN and absent.detail.startswith(f"uboot_path {tmp_path}/builds")
    (tmp_path / "usr/lib/u-boot").mkdir(parents=True)
    found = doctor.check_uboot(host, config_of())
    assert found.status == OK and found.detail.endswith(f"from {tmp_path}/usr/lib/u-boot")


def test_images(tmp_path: Path) -> None:
    assert doctor.check_images(config_of()).status == SKIP
    (tmp_path / "xen").write_bytes(b"x")
    result = doctor.check_images(config_of(xen=tmp_path / "xen", kernel=tmp_path / "zImage"))
    assert result.status == FAIL and result.detail == (
        f"kernel {tmp_path}/zImage (./felboot.toml) does not exist"
    )
    assert doctor.check_images(config_of(xen=tmp_path / "xen")).detail == "xen present"


def test_pyserial_and_the_console_port(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    assert doctor.check_pyserial(host, config_of()).status == SKIP
    needed = doctor.check_pyserial(host, config_of(console="/dev/ttyUSB0"))
    assert needed.status == FAIL and needed.fix == "pip install 'felboot[console]'"
    assert doctor.check_console(host, config_of()).status == SKIP

    gone = doctor.check_console(host, config_of(console="/dev/ttyUSB0"))
    assert gone.status == FAIL and gone.detail == "/dev/ttyUSB0 (./felboot.toml) does not exist"
    baud = doctor.check_console(host, config_of(console="/dev/ttyUSB0,fast"))
    assert baud.status == FAIL and baud.detail.endswith("baud rate 'fast' is not a number")
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev/ttyUSB0").write_bytes(b"")
    denied = make_host(
        tmp_path, can_read_write=lambda path: False, group_name=lambda gid: "dialout"
    )
    locked = doctor.check_console(denied, config_of(console="/dev/ttyUSB0"))
    assert locked.status == FAIL and (locked.fix or "").startswith("sudo usermod -aG dialout me")
    assert doctor.check_console(host, config_of(console="/dev/ttyUSB0")).status == OK
    assert doctor.check_console(host, config_of(console="rfc2217://lab:4000")).status == SKIP


# The command ------------------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    """felboot's own parser (cli.py wires --config and desk.register)."""
    from felboot.cli import build_parser

    return build_parser().parse_args(argv)


def test_a_broken_config_is_a_failed_check_for_doctor_only(tmp_path: Path) -> None:
    (tmp_path / "felboot.toml").write_text("kernal = 'zImage'\n")
    args = parse(["doctor"])
    desk.configure(args, cwd=tmp_path, environ={}, user_file=tmp_path / "none.toml")
    assert args.felboot_config is None and args.device == "usb"
    results = run_checks(make_host(tmp_path), args.felboot_config, args.config_error)
    config = by_name(results, "config")
    assert config.status == FAIL and "unknown key 'kernal'" in (config.fix or "")
    assert doctor.exit_code(results) == 1
    with pytest.raises(desk.ConfigError, match="unknown key 'kernal'"):
        desk.configure(parse(["config", "show"]), cwd=tmp_path, environ={})


def test_config_show_command(tmp_path: Path, capsys) -> None:
    (tmp_path / "felboot.toml").write_text("board = 'cubieboard2'\n")
    for argv in (["config"], ["config", "show"], ["--config", "felboot.toml", "config", "show"]):
        args = parse(argv)
        desk.configure(args, cwd=tmp_path, environ={}, user_file=tmp_path / "none.toml")
        assert args.handler(args) == 0
        assert "board = cubieboard2   (./felboot.toml)" in capsys.readouterr().out.splitlines()
    args = parse(["--json", "config", "show"])
    desk.configure(args, cwd=tmp_path, environ={"FELBOOT_DEVICE": "sim"}, user_file=tmp_path / "n")
    assert args.handler(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["values"]["device"] == {"value": "sim", "source": "FELBOOT_DEVICE"}
    assert load_config(tmp_path, None, {}, user_file=tmp_path / "n").get("board") == "cubieboard2"


def test_doctor_on_this_machine(tmp_path: Path, capsys, monkeypatch) -> None:
    """The real host (whatever it has): only the shape is asserted."""
    monkeypatch.chdir(tmp_path)  # no project file from the checkout
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    args = parse(["doctor"])
    code = args.handler(args)
    lines = capsys.readouterr().out.splitlines()
    assert code in (0, 1)
    assert all(LINE.match(line) for line in lines), lines
    names = [line.split()[1] for line in lines]
    assert names[:3] == ["config", "libusb", "udev"]
    assert {"U-Boot", "images", "pyserial", "console"} <= set(names)
    assert code == (1 if any(line.startswith("FAIL") for line in lines) else 0)

    args = parse(["--json", "doctor"])
    assert args.handler(args) == code
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is (code == 0)
    assert all(set(check) == {"check", "status", "detail", "fix"} for check in data["checks"])
    assert len(data["checks"]) == len(lines)
