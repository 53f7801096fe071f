"""`felboot doctor`: what stands between this user and a boot, and how to fix each.

Each check looks at one thing (libusb, the udev rule, the device node's
permission, the board and its SoC, a driver holding it, its USB link speed,
the configured files, pyserial and the console port) and gives one result:
``ok``, ``warn`` (a boot may work, or be slow), ``FAIL`` (a boot will not work
until it is fixed) or ``skip`` (nothing to look at: no board, no console
configured). Nothing here prints; the command handler does.

Everything the checks read comes through ``Host``: the filesystem root (so
/etc/udev, /dev/bus/usb and /sys live under a test's tmp directory), the USB
bus, the libusb loaders, who the user is and what they may open. The checks
send one FEL VERSION request per board (to name its SoC) and nothing else: a
board that doctor looked at is still in FEL, untouched.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from felboot.errors import FelbootError
from felboot.transport import (
    _LIBUSB_HINT,
    _UDEV_HINT,
    FEL_PRODUCT_ID,
    FEL_VENDOR_ID,
    UsbDeviceInfo,
    _bundled_libusb,
    _system_libusb,
)

if TYPE_CHECKING:
    from felboot.config import MergedConfig
    from felboot.devices import UsbBus

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"

RULE_FILE_NAME = "60-felboot.rules"
#: The rule line of udev/60-felboot.rules (a test keeps the two the same), for installs
#: from a wheel, which carry no udev/ directory.
FELBOOT_RULE = (
    'SUBSYSTEM=="usb", ATTR{idVendor}=="1f3a", ATTR{idProduct}=="efe8", '
    'TAG+="uaccess", MODE="0660", GROUP="plugdev"'
)
#: Where udev reads rules, highest priority first: a file in /etc masks one of the same name.
RULE_DIRS = ("etc/udev/rules.d", "run/udev/rules.d", "usr/lib/udev/rules.d", "lib/udev/rules.d")
# 73-seat-late.rules turns uaccess tags into ACLs: a tag set after it grants nothing.
SEAT_LATE_ORDER = 73
INSTALL_RULE = "install felboot's rule: sudo felboot udev --install (udev/README.md)"
CONSOLE_EXTRA = "pip install 'felboot[console]'"
DEBIAN_UBOOT_DIR = "usr/lib/u-boot"


@dataclass(frozen=True)
class CheckResult:
    """One line of `felboot doctor`."""

    name: str  # "libusb", "udev rule", "board usb:1:7", ...
    status: str  # OK, WARN, FAIL or SKIP
    detail: str  # what was found
    fix: str | None = None  # what to do about it

    @property
    def blocks(self) -> bool:
        return self.status == FAIL

    def line(self) -> str:
        text = f"{self.status:<4}  {self.name:<18} {self.detail}"
        return f"{text}: {self.fix}" if self.fix else text

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


def _can_read_write(path: Path) -> bool:
    return os.access(path, os.R_OK | os.W_OK)


def _import_serial() -> Any:
    import serial  # type: ignore[import-untyped, import-not-found, unused-ignore]

    return serial


def _group_name(gid: int) -> str:
    try:
        import grp

        return grp.getgrgid(gid).gr_name
    except (ImportError, KeyError):
        return str(gid)


def _system_bus() -> UsbBus:
    from felboot.devices import SystemUsbBus

    return SystemUsbBus()


@dataclass
class Host:
    """What the checks look at; the defaults are this machine, tests replace any of them."""

    root: Path = Path("/")
    bus: UsbBus = field(default_factory=_system_bus)
    libusb_loaders: Sequence[tuple[str, Callable[[], Any]]] = (
        ("system libusb-1.0", _system_libusb),
        ("bundled libusb-1.0 (libusb-package)", _bundled_libusb),
    )
    linux: bool = sys.platform.startswith("linux")
    is_root: bool = field(default_factory=lambda: hasattr(os, "geteuid") and os.geteuid() == 0)
    user: str = field(default_factory=lambda: os.environ.get("USER") or str(os.getuid()))
    groups: frozenset[int] = field(
        default_factory=lambda: frozenset((os.getegid(), *os.getgroups()))
    )
    can_read_write: Callable[[Path], bool] = _can_read_write
    group_name: Callable[[int], str] = _group_name
    import_serial: Callable[[], Any] = _import_serial
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def path(self, absolute: str | Path) -> Path:
        """``absolute`` (a host path) under ``root``."""
        return self.root / str(absolute).lstrip("/")


# The USB side -------------------------------------------------------------------------


def check_libusb(host: Host) -> tuple[CheckResult, bool]:
    """Which libusb loads (the order transport.load_backend tries), and whether any does."""
    for name, loader in host.libusb_loaders:
        try:
            backend = loader()
        except ImportError as error:  # pyusb itself missing: nothing below can work
            return CheckResult(
                "libusb", FAIL, f"pyusb not installed ({error})", "pip install pyusb"
            ), False
        if backend is not None:
            library = getattr(getattr(backend, "lib", None), "_name", None)
            where = f" ({library})" if library else ""
            return CheckResult("libusb", OK, f"{name}{where}"), True
    return CheckResult("libusb", FAIL, "no libusb-1.0 loads", _LIBUSB_HINT), False


def rule_line(text: str) -> str | None:
    """The first rule of a rules file that matches the FEL vendor and product ids."""
    vendor, product = f"{FEL_VENDOR_ID:04x}", f"{FEL_PRODUCT_ID:04x}"
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and vendor in line.lower() and product in line.lower():
            return line
    return None


def shipped_rule() -> str:
    """felboot's rule line as the package ships it (felboot/data/, what `felboot udev` prints)."""
    from felboot.commands.udev import rule_text

    return rule_line(rule_text()) or FELBOOT_RULE


def _normal(rule: str) -> str:
    return ",".join(part.strip() for part in rule.split(","))


def find_fel_rules(host: Host) -> list[tuple[Path, str]]:
    """(file, rule) for each rules file udev would read that matches 1f3a:efe8."""
    seen: set[str] = set()
    seen_files: set[Path] = set()
    found = []
    for directory in RULE_DIRS:
        folder = host.path(directory)
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.rules")):
            real = path.resolve()
            if path.name in seen or real in seen_files:
                continue  # masked by a file of the same name in a higher directory
            seen.add(path.name)
            seen_files.add(real)
            try:
                line = rule_line(path.read_text(errors="replace"))
            except OSError:
                continue
            if line is not None:
                found.append((Path("/") / path.relative_to(host.root), line))
    return found


def check_udev(host: Host) -> CheckResult:
    name = "udev rule"
    if not host.linux:
        return CheckResult(name, SKIP, "not Linux: no udev")
    rules = find_fel_rules(host)
    ours = _normal(shipped_rule())
    for path, line in rules:
        if _normal(line) == ours:
            return CheckResult(name, OK, f"{path} (felboot's rule)")
    if rules:
        return _foreign_rule(host, *rules[0])
    if host.is_root:
        return CheckResult(
            name,
            WARN,
            "no rule for 1f3a:efe8 (root needs none; other users do)",
            INSTALL_RULE,
        )
    return CheckResult(
        name, FAIL, "no rule for 1f3a:efe8: only root may open FEL boards", INSTALL_RULE
    )


_GROUP = re.compile(r'GROUP\s*:?=\s*"([^"]+)"')
_MODE = re.compile(r'MODE\s*:?=\s*"0?([0-7]{3})"')


def _foreign_rule(host: Host, path: Path, line: str) -> CheckResult:
    """A 1f3a:efe8 rule that is not felboot's (sunxi-tools ships one): what it grants."""
    name = "udev rule"
    order = path.name.split("-", 1)[0]
    late = order.isdigit() and int(order) >= SEAT_LATE_ORDER
    if "uaccess" in line and late:
        return CheckResult(
            name,
            WARN,
            f"{path} tags 1f3a:efe8 uaccess after {SEAT_LATE_ORDER}-seat-late.rules, "
            "which grants nothing",
            f"rename it below {SEAT_LATE_ORDER} (felboot's is {RULE_FILE_NAME})",
        )
    mode = _MODE.search(line)
    if "uaccess" in line or (mode and mode[1].endswith("6")):
        return CheckResult(name, OK, f"{path} (not felboot's, grants access)")
    group = _GROUP.search(line)
    if group is None:
        return CheckResult(
            name, WARN, f"{path} has a rule for 1f3a:efe8 that is not felboot's", INSTALL_RULE
        )
    grants = f"{path} lets group {group[1]} open FEL boards"
    if host.is_root:
        return CheckResult(name, OK, f"{grants} (root needs none)")
    return CheckResult(
        name,
        WARN,
        grants,
        f"be in it (sudo usermod -aG {group[1]} {host.user}, log in again), or {INSTALL_RULE}",
    )


def sysfs_device(host: Host, info: UsbDeviceInfo) -> Path | None:
    """The board's directory in /sys/bus/usb/devices (by bus and device number)."""
    devices = host.path("/sys/bus/usb/devices")
    if not devices.is_dir():
        return None
    for entry in sorted(devices.iterdir()):
        try:
            bus = int((entry / "busnum").read_text())
            address = int((entry / "devnum").read_text())
        except (OSError, ValueError):
            continue
        if (bus, address) == (info.bus, info.address):
            return entry
    return None


def check_node(host: Host, info: UsbDeviceInfo) -> CheckResult:
    """Read/write permission on /dev/bus/usb/BUS/ADDR for this user."""
    name = f"permission {info.spec}"
    node = f"/dev/bus/usb/{info.bus:03d}/{info.address:03d}"
    if not host.linux:
        return CheckResult(name, SKIP, "not Linux: no /dev/bus/usb")
    path = host.path(node)
    try:
        status = path.stat()
    except OSError:
        return CheckResult(
            name, WARN, f"{node} does not exist (no devtmpfs/udev here?)", "run felboot as root"
        )
    if host.is_root:
        return CheckResult(name, OK, f"{node}: running as root")
    if host.can_read_write(path):
        return CheckResult(name, OK, f"{node} is readable and writable by {host.user}")
    group = host.group_name(status.st_gid)
    mode = stat.filemode(status.st_mode)
    found = f"{node} ({mode}, group {group}) is not readable and writable by {host.user}"
    if status.st_mode & stat.S_IRWXG == (stat.S_IRGRP | stat.S_IWGRP) and (
        status.st_gid not in host.groups
    ):
        fix = f"sudo usermod -aG {group} {host.user}, then log out and in again; or {_UDEV_HINT}"
        return CheckResult(name, FAIL, found, fix)
    return CheckResult(name, FAIL, found, _UDEV_HINT)


def check_driver(host: Host, info: UsbDeviceInfo, sysfs: Path | None) -> CheckResult:
    """A driver bound to the board's interface: usbfs is another program, else a kernel driver."""
    name = f"driver {info.spec}"
    if sysfs is None:
        return CheckResult(name, SKIP, "not in /sys/bus/usb/devices: cannot tell")
    holders = []
    for interface in sorted(sysfs.glob(f"{sysfs.name}:*")):
        link = interface / "driver"
        if link.exists():
            holders.append((interface.name, link.resolve().name))
    if not holders:
        return CheckResult(name, OK, "no driver holds it")
    held, driver = holders[0]
    if driver == "usbfs":
        return CheckResult(
            name,
            FAIL,
            f"another program holds interface {held} (usbfs)",
            "close it (sunxi-fel, another felboot) and retry",
        )
    return CheckResult(
        name,
        WARN,
        f"kernel driver {driver} holds interface {held}",
        "felboot detaches it while it runs; blacklist the driver if it comes back",
    )


def check_speed(info: UsbDeviceInfo, sysfs: Path | None) -> CheckResult:
    """The link speed: FEL over a full-speed (12 Mbit/s) link is USB 1.1 slow."""
    name = f"link speed {info.spec}"
    try:
        speed = (sysfs / "speed").read_text().strip() if sysfs else None
    except OSError:
        speed = None
    if speed is None:
        return CheckResult(name, SKIP, "not in /sys/bus/usb/devices: cannot tell")
    if speed == "12":
        return CheckResult(
            name,
            WARN,
            "full speed (12 Mbit/s): FEL transfers crawl at USB 1.1 rates",
            "plug the board into a USB 2.0 port directly, without a hub or a USB 1.1 extender",
        )
    if speed == "1.5":
        return CheckResult(name, FAIL, "low speed (1.5 Mbit/s): no bulk transfers", "replug it")
    return CheckResult(name, OK, f"{speed} Mbit/s")


def check_board(host: Host, info: UsbDeviceInfo) -> CheckResult:
    """One FEL VERSION request: the board answers, and felboot knows its SoC."""
    from felboot.fel import FelDevice
    from felboot.soc import soc_by_id

    name = f"board {info.spec}"
    where = f" (port {info.port_path})" if info.port_path else ""
    try:
        with host.bus.open(info) as transport:
            soc_id = FelDevice(transport).version().soc_id
    except FelbootError as error:
        return CheckResult(name, FAIL, f"in FEL{where} but does not answer", str(error))
    soc = soc_by_id(soc_id)
    if soc is None:
        return CheckResult(
            name,
            FAIL,
            f"in FEL{where}, SoC id 0x{soc_id:04x} is not one felboot knows",
            "see 'felboot socs'; report the id with the board's name",
        )
    return CheckResult(name, OK, f"{soc.name} in FEL{where}")


def usb_checks(host: Host, selected: str) -> Iterator[CheckResult]:
    """Boards on the bus and, for each, its node, driver, link speed and SoC."""
    try:
        found = host.bus.find()
    except FelbootError as error:
        yield CheckResult("board", FAIL, "cannot list USB devices", str(error))
        return
    if not found:
        yield CheckResult(
            "board",
            WARN,
            f"no board in FEL mode (USB {FEL_VENDOR_ID:04x}:{FEL_PRODUCT_ID:04x})",
            "hold FEL (or uboot) while powering on, then run felboot doctor again "
            "for the board's own checks",
        )
        return
    for info in found:
        sysfs = sysfs_device(host, info) if host.linux else None
        node = check_node(host, info)
        yield node
        yield check_driver(host, info, sysfs)
        yield check_speed(info, sysfs)
        yield check_board(host, info)
    yield check_selection(found, selected)


def check_selection(found: Sequence[UsbDeviceInfo], selected: str) -> CheckResult:
    """Whether --device (or the config's device) picks one of the boards found."""
    from felboot.devices import UsbSelector, parse_device_spec

    try:
        spec = parse_device_spec(selected)
    except FelbootError as error:
        return CheckResult("device", FAIL, f"{selected!r} is not a device", str(error))
    if not isinstance(spec, UsbSelector):
        return CheckResult("device", OK, f"{selected}: no USB board needed")
    if spec.sid is not None:
        return CheckResult("device", OK, f"{selected}: matched by SID when a command opens it")
    matches = [info for info in found if spec.matches(info)]
    listing = ", ".join(info.stable_spec for info in found)
    if not matches:
        return CheckResult(
            "device", FAIL, f"{selected} matches none of {listing}", "check it against felboot list"
        )
    if len(matches) > 1:
        return CheckResult(
            "device",
            WARN,
            f"{len(matches)} boards and {selected} picks none: {listing}",
            f'set device = "{matches[0].stable_spec}" in felboot.toml, or FELBOOT_DEVICE',
        )
    return CheckResult("device", OK, f"{selected} picks {matches[0].description}")


# The configured files -------------------------------------------------------------------


def _from(config: MergedConfig, key: str) -> str:
    return f" ({config.source(key)})"


def check_uboot(host: Host, config: MergedConfig) -> CheckResult:
    """The U-Boot a run would use: the configured files, the board's build or the search path."""
    from felboot.boards import load_board

    name = "U-Boot"
    if "uboot" in config:
        files: tuple[Path, ...] = config.get("uboot")
        missing = [path for path in files if not path.is_file()]
        if missing:
            return CheckResult(
                name,
                FAIL,
                f"{missing[0]}{_from(config, 'uboot')} does not exist",
                "build U-Boot, or fix uboot in that file",
            )
        return CheckResult(name, OK, " + ".join(map(str, files)) + _from(config, "uboot"))
    if "board" in config:
        try:
            board = load_board(config.get("board"))
        except FelbootError as error:
            return CheckResult(name, FAIL, f"board{_from(config, 'board')}", str(error))
        if board.uboot and all(path.is_file() for path in board.uboot):
            return CheckResult(
                name, OK, f"{' + '.join(map(str, board.uboot))} (the {board.name} profile's)"
            )
    dirs = [
        *(Path(entry) for entry in host.environ.get("FELBOOT_UBOOT_PATH", "").split(":") if entry),
        *config.uboot_dirs(),
        host.path(DEBIAN_UBOOT_DIR),
    ]
    present = [directory for directory in dirs if directory.is_dir()]
    absent = [str(directory) for directory in config.uboot_dirs() if not directory.is_dir()]
    if absent:
        return CheckResult(
            name,
            WARN,
            f"uboot_path {', '.join(absent)}{_from(config, 'uboot_path')} does not exist",
            "fix uboot_path there",
        )
    if not present:
        return CheckResult(
            name,
            WARN,
            f"none configured and none of {', '.join(map(str, dirs))} exists",
            "set uboot in felboot.toml, pass --uboot, or apt install u-boot-sunxi",
        )
    return CheckResult(
        name,
        OK,
        "none configured: run takes the build matching the DTB from "
        + ", ".join(map(str, present)),
    )


IMAGE_KEYS = ("xen", "kernel", "dtb", "initrd")


def check_images(config: MergedConfig) -> CheckResult:
    """The configured images exist (a run reads and checks them in full before sending)."""
    named = [key for key in IMAGE_KEYS if key in config]
    if not named:
        return CheckResult("images", SKIP, "none configured (given on the command line)")
    for key in named:
        path: Path = config.get(key)
        if not path.is_file():
            return CheckResult(
                "images",
                FAIL,
                f"{key} {path}{_from(config, key)} does not exist",
                "build it, or fix the path there",
            )
    return CheckResult("images", OK, ", ".join(named) + " present")


def check_pyserial(host: Host, config: MergedConfig) -> CheckResult:
    try:
        serial = host.import_serial()
    except ImportError:
        if "console" in config:
            return CheckResult(
                "pyserial",
                FAIL,
                f"not installed, and a console is set{_from(config, 'console')}",
                CONSOLE_EXTRA,
            )
        return CheckResult(
            "pyserial", SKIP, "not installed (only --console needs it)", CONSOLE_EXTRA
        )
    return CheckResult("pyserial", OK, f"pyserial {getattr(serial, 'VERSION', '?')}")


def check_console(host: Host, config: MergedConfig) -> CheckResult:
    """The console port exists and this user may open it (not opened: DTR may reset a board)."""
    name = "console"
    if "console" not in config:
        return CheckResult(
            name,
            SKIP,
            "none configured",
            'console = "/dev/ttyUSB0" in felboot.toml, or FELBOOT_CONSOLE',
        )
    value: str = config.get("console")
    port, _, baud = value.partition(",")
    where = _from(config, "console")
    if baud and not baud.strip().isdigit():
        return CheckResult(
            name, FAIL, f"{value}{where}: baud rate {baud!r} is not a number", "write PORT,115200"
        )
    if not port.startswith("/"):
        return CheckResult(name, SKIP, f"{port}{where} is not a device file: not checked")
    path = host.path(port)
    if not path.exists():
        return CheckResult(
            name,
            FAIL,
            f"{port}{where} does not exist",
            "plug in the USB-serial adapter; ls /dev/serial/by-id shows the names to use",
        )
    if not host.is_root and not host.can_read_write(path):
        group = host.group_name(path.stat().st_gid)
        return CheckResult(
            name,
            FAIL,
            f"{port}{where} is not readable and writable by {host.user}",
            f"sudo usermod -aG {group} {host.user}, then log out and in again",
        )
    rate = baud.strip() or "115200"
    return CheckResult(name, OK, f"{port} at {rate} 8N1{where}")


# All of them ----------------------------------------------------------------------------


def run_checks(
    host: Host, config: MergedConfig | None, config_error: FelbootError | None = None
) -> list[CheckResult]:
    """Every check, in the order a boot meets them. ``config`` None: the config failed to load."""
    from felboot.config import MergedConfig

    results = []
    if config_error is not None:
        results.append(CheckResult("config", FAIL, "cannot be read", str(config_error)))
    if config is None:
        config = MergedConfig({}, None, Path("-"), False)
    elif config_error is None:
        files = [str(config.project_file)] if config.project_file else []
        files += [str(config.user_file)] if config.user_file_found else []
        results.append(CheckResult("config", OK, ", ".join(files) or "no config files (defaults)"))
    libusb, usable = check_libusb(host)
    results.append(libusb)
    results.append(check_udev(host))
    if usable:
        results.extend(usb_checks(host, config.get("device", "usb")))
    else:
        results.append(CheckResult("board", SKIP, "cannot look without libusb (above)"))
    results.append(check_uboot(host, config))
    results.append(check_images(config))
    results.append(check_pyserial(host, config))
    results.append(check_console(host, config))
    return results


def exit_code(results: Sequence[CheckResult]) -> int:
    """1 when any check blocks a boot, else 0 (warnings do not count)."""
    return 1 if any(result.blocks for result in results) else 0
