"""FelbootDriver: labgrid's BootstrapProtocol for FEL boards, and whole felboot runs.

A board on this host (SunxiFELDevice, or a USBFlashableDevice matching
1f3a:efe8) is driven in-process through felboot's API. A board on an exporter
(NetworkUSBFlashableDevice: the exporter publishes only classes labgrid knows)
is driven by running ``felboot`` on the exporter through the resource's command
prefix (ssh), its files copied there first, the board picked by its port path.
Both return the same results (felboot's --json objects, docs/json.md).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attr
from labgrid.driver.common import Driver
from labgrid.exceptions import NoResourceFoundError
from labgrid.factory import target_factory
from labgrid.protocol import BootstrapProtocol
from labgrid.resource.common import NetworkResource
from labgrid.step import step
from labgrid.util.managedfile import ManagedFile

from felboot import errors
from felboot.devices import parse_device_spec
from felboot.errors import DeviceError, DeviceTimeout, FelbootError, UsageError
from felboot.labgrid.resource import FEL_IDS, check_match, names_fel_device
from felboot.units import parse_number

RESOURCES = ("SunxiFELDevice", "USBFlashableDevice", "NetworkUSBFlashableDevice")

# run_plan()'s keyword options: name -> (felboot run's option, kind of value)
RUN_OPTIONS: dict[str, tuple[str, str]] = {
    "board": ("--board", "text"),
    "board_file": ("--board-file", "file"),
    "uboot": ("--uboot", "files"),
    "dram_size": ("--dram-size", "size"),
    "layout": ("--layout", "text"),
    "reserve_top": ("--reserve-top", "size"),
    "xen_args": ("--xen-args", "text"),
    "dom0_args": ("--dom0-args", "text"),
    "dom0_mem": ("--dom0-mem", "text"),
    "compress": ("--no-compress", "bool"),  # False sends --no-compress
}


class ExporterError(FelbootError):
    """felboot could not be run on the exporter (ssh, not installed) or said nothing we read."""

    exit_code = 3


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _existing(path: Path | str, what: str) -> str:
    if not Path(path).is_file():
        raise UsageError(f"{what} {path}: no such file", culprit=str(path))
    return str(path)


def _size(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        return parse_number(value, name)
    raise UsageError(f"run_plan {name}={value!r}: give a size such as 1G or an int", culprit=name)


@target_factory.reg_driver
@attr.s(eq=False)
class FelbootDriver(Driver, BootstrapProtocol):
    """Boots U-Boot (``load``) or a whole felboot plan (``run_plan``) on a board in FEL.

    Attributes (environment file):
      image: the ``images:`` key of the U-Boot load() boots when given no file,
        and run_plan()'s U-Boot when it is given none
      board: felboot's board profile for run_plan() (default: the DTB's)
      device: a --device spec used instead of the resource's port, e.g.
        ``sim:soc=a20,dram=1G`` (felboot's device model) or ``replay:FILE``: for
        trying an environment without the board. The resource is still bound.
    """

    bindings = {"fel": set(RESOURCES)}  # noqa: RUF012 (labgrid reads the class attribute)

    image: str | None = attr.ib(default=None, converter=_optional_str)
    board: str | None = attr.ib(default=None, converter=_optional_str)
    device: str | None = attr.ib(default=None, converter=_optional_str)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        if self.device is not None:
            parse_device_spec(self.device)  # a bad spec in the environment file: refused now
        tool = self.target.env.config.get_tool("felboot") if self.target.env else None
        self.tool: str = str(tool or "felboot")  # labgrid < 24 returns None for an unset tool

    # labgrid's life cycle ----------------------------------------------------------

    def on_activate(self) -> None:
        self.check_resource()

    def on_deactivate(self) -> None:
        pass

    @property
    def remote(self) -> bool:
        """Whether the board is on an exporter (felboot runs there) rather than this host."""
        return isinstance(self.fel, NetworkResource)

    def _resource_name(self) -> str:
        name = f" {self.fel.name}" if self.fel.name else ""
        return f"{type(self.fel).__name__}{name} of target {self.target.name}"

    def check_resource(self) -> None:
        """Refuse a resource that is not a FEL board (a generic USB export bound by mistake)."""
        kind = type(self.fel).__name__
        if kind == "USBFlashableDevice":
            if not names_fel_device(self.fel.match):
                raise UsageError(
                    f"{self._resource_name()}: its match names no FEL device: add "
                    f"ID_VENDOR_ID: '{FEL_IDS[0]}' and ID_MODEL_ID: '{FEL_IDS[1]}'",
                    culprit=kind,
                )
            check_match(self.fel.match, self._resource_name())
        ids = (self.fel.vendor_id, self.fel.model_id)
        if None not in ids and tuple(f"{number:04x}" for number in ids) != FEL_IDS:
            raise UsageError(
                f"{self._resource_name()}: USB {ids[0]:04x}:{ids[1]:04x} is not a board in "
                f"FEL mode ({FEL_IDS[0]}:{FEL_IDS[1]}): bind FelbootDriver to the board's "
                "FEL resource",
                culprit=kind,
            )

    def device_spec(self) -> str:
        """felboot's --device for the board: its port path (never bus:devnum), or ``device``."""
        if self.device is not None:
            return self.device
        port = self.fel.path  # the usb_device's udev name, "1-1.2", here and as exported
        if not port:
            raise DeviceError(
                f"{self._resource_name()} is not available (the board is not in FEL): "
                "reset it with FEL held, or call wait_for_fel()"
            )
        return f"usb:port={port}"

    # The protocol and the plan -----------------------------------------------------

    @Driver.check_active
    @step(args=["filename"])
    def load(self, filename: str | None = None, *more: str) -> None:
        """Boot U-Boot as `felboot uboot` does: SPL (DRAM up), U-Boot, start; the board leaves FEL.

        ``filename``: u-boot-sunxi-with-spl.bin, or sunxi-spl.bin followed by
        u-boot.itb (arm64); None boots the ``image`` attribute's file.
        """
        files = self._uboot_files(filename, more)
        if self.remote:
            data = self._felboot(["uboot", *(self._on_exporter(path) for path in files)])
            size, source = data.get("dram_size", 0), data.get("dram_source")
        else:
            from felboot import api

            with api.open_device(self.device_spec()) as device:
                dram = api.boot_uboot(device, files)
            size, source = dram.size, dram.source
        self.logger.info("DRAM %d MiB (%s); U-Boot started, the board left FEL", size >> 20, source)

    @Driver.check_active
    @step(args=["xen", "kernel", "dtb", "initrd"])
    def run_plan(
        self,
        xen: str | Path | None,
        kernel: str | Path,
        dtb: str | Path,
        initrd: str | Path | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Run a whole felboot plan, as `felboot run`: SPL, U-Boot, Xen, dom0, DTB, script, start.

        ``xen`` None boots the kernel without Xen (--no-xen). ``options`` are
        felboot run's: board, board_file, uboot (a file or a list of two),
        dram_size and reserve_top (int or "1G"), layout, xen_args, dom0_args,
        dom0_mem, compress (False: --no-compress). Every file is checked before
        anything is sent. Returns what `felboot run --json` prints (docs/json.md).
        """
        values = self._run_values(options)
        images = [("Xen", xen), ("kernel", kernel), ("DTB", dtb), ("initrd", initrd)]
        named = {what: _existing(path, what) for what, path in images if path is not None}
        if self.remote:
            return self._felboot(self._run_arguments(named, values))
        from felboot import api

        ready = api.prepare(self._run_request(named, values))  # nothing is sent on a refusal
        with api.open_device(self.device_spec()) as device:
            report = api.run(device, ready)
        self.logger.info("booted %s: U-Boot started at 0x%08x", report.plan.boot_command,
                         report.uboot.entry)  # fmt: skip
        return report.to_dict()

    @Driver.check_active
    @step(args=["timeout"])
    def wait_for_fel(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the board to be in FEL and answer; DeviceTimeout."""
        deadline = time.monotonic() + timeout
        if self.device is None:  # udev (or the exporter's) says when it is on the bus
            try:
                self.target.await_resources([self.fel], timeout=timeout)
            except NoResourceFoundError:
                raise DeviceTimeout(
                    f"{self._resource_name()} did not appear within {timeout:g} s: "
                    "reset the board with FEL held",
                    culprit=self._resource_name(),
                ) from None
        left = max(deadline - time.monotonic(), 0.0)
        if self.remote:
            self._felboot(["version"], wait=left)
            return
        from felboot import api

        with api.wait_for_board(self.device_spec(), timeout=left):
            pass

    # Arguments -----------------------------------------------------------------------

    def _uboot_files(self, filename: str | None, more: Sequence[str]) -> list[str]:
        if filename is None:
            if self.image is None:
                raise UsageError(
                    f"FelbootDriver of target {self.target.name}: load() got no file and has "
                    "no image: pass the U-Boot, or set image: to a key of images:",
                    culprit="image",
                )
            filename = self.target.env.config.get_image_path(self.image)
        return [_existing(path, "U-Boot") for path in (filename, *more)]

    def _run_values(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` checked (names, types, files, sizes), with the driver's defaults."""
        for name in options:
            if name not in RUN_OPTIONS:
                raise UsageError(
                    f"run_plan: unknown option {name!r}: use {', '.join(RUN_OPTIONS)}",
                    culprit=name,
                )
        values = {name: value for name, value in options.items() if value is not None}
        if "board" not in values and "board_file" not in values and self.board is not None:
            values["board"] = self.board
        if "uboot" not in values and self.image is not None:
            values["uboot"] = self._uboot_files(None, ())
        for name, value in list(values.items()):
            kind = RUN_OPTIONS[name][1]
            if kind == "files":
                paths = [value] if isinstance(value, str | Path) else list(value)
                values[name] = [_existing(path, "U-Boot") for path in paths]
            elif kind == "file":
                values[name] = _existing(value, "board file")
            elif kind == "size":
                _size(value, name)  # refused here, passed on as given
            elif kind == "bool" and not isinstance(value, bool):
                raise UsageError(f"run_plan {name}={value!r}: give True or False", culprit=name)
            elif kind == "text" and not isinstance(value, str):
                raise UsageError(f"run_plan {name}={value!r}: give a string", culprit=name)
        return values

    def _run_request(self, named: dict[str, str], values: dict[str, Any]) -> Any:
        from felboot.api import RunRequest

        fields: dict[str, Any] = {}
        for name, value in values.items():
            kind = RUN_OPTIONS[name][1]
            if kind == "files":
                fields[name] = tuple(Path(path) for path in value)
            elif kind == "file":
                fields[name] = Path(value)
            elif kind == "size":
                fields[name] = _size(value, name)
            else:
                fields[name] = value
        return RunRequest(
            xen=Path(named["Xen"]) if "Xen" in named else None,
            no_xen="Xen" not in named,
            kernel=Path(named["kernel"]),
            dtb=Path(named["DTB"]),
            initrd=Path(named["initrd"]) if "initrd" in named else None,
            **fields,
        )

    def _run_arguments(self, named: dict[str, str], values: dict[str, Any]) -> list[str]:
        arguments = ["run"]
        for name, value in values.items():
            option, kind = RUN_OPTIONS[name]
            if kind == "files":
                for path in value:
                    arguments += [option, self._on_exporter(path)]
            elif kind == "file":
                arguments += [option, self._on_exporter(value)]
            elif kind == "bool":
                arguments += [] if value else [option]
            else:
                arguments += [option, f"0x{value:x}" if isinstance(value, int) else value]
        if "initrd" in named:
            arguments += ["--initrd", self._on_exporter(named["initrd"])]
        if "Xen" not in named:
            arguments.append("--no-xen")
        images = [named[what] for what in ("Xen", "kernel", "DTB") if what in named]
        return [*arguments, *(self._on_exporter(path) for path in images)]

    # On the exporter -----------------------------------------------------------------

    def _on_exporter(self, path: str) -> str:
        """Copy ``path`` to the exporter (labgrid's ManagedFile: skipped on a shared NFS)."""
        managed = ManagedFile(path, self.fel)
        managed.sync_to_resource()
        return str(managed.get_remote_path())

    def felboot_command(self, arguments: Sequence[str], *, wait: float | None = None) -> list[str]:
        """The command line that runs ``felboot ARGUMENTS`` on the exporter for this board."""
        command = [self.tool, "--json", "--quiet", "--device", self.device_spec()]
        if wait is not None:
            command += ["--wait", f"{wait:g}"]
        return list(self.fel.wrap_command([*command, *arguments]))

    def _felboot(self, arguments: Sequence[str], *, wait: float | None = None) -> dict[str, Any]:
        return self._execute(self.felboot_command(arguments, wait=wait))

    @step(args=["command"])
    def _execute(self, command: list[str]) -> dict[str, Any]:
        host = self.fel.host
        self.logger.debug("running %s", shlex.join(command))
        try:
            done = subprocess.run(command, capture_output=True, text=True, errors="replace")
        except OSError as error:
            raise ExporterError(
                f"cannot run {command[0]} to reach {host}: {error.strerror}", culprit=host
            ) from None
        for line in done.stderr.splitlines():
            self.logger.info("%s: %s", host, line)
        try:
            data = json.loads(done.stdout) if done.stdout.strip() else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            last = done.stderr.strip().splitlines()[-1:] or ["no output"]
            raise ExporterError(
                f"felboot on {host} failed (exit {done.returncode}): {last[0]}: check that "
                f"'{self.tool}' runs there (tools: felboot: in the environment file)",
                culprit=host,
            )
        data.pop("schema", None)
        failure = data.get("error")
        if done.returncode != 0 or isinstance(failure, dict):
            failure = failure if isinstance(failure, dict) else {}
            kind = getattr(errors, str(failure.get("kind")), None)
            cls: type[FelbootError] = FelbootError
            if isinstance(kind, type) and issubclass(kind, FelbootError):
                cls = kind  # the same class as in-process: the same exit_code
            message = failure.get("message") or f"exit {done.returncode}"
            raise cls(f"on {host}: {message}", culprit=failure.get("culprit"))
        return data
