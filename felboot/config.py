"""The project config (``felboot.toml``), the user config and the environment, merged.

Where values come from, lowest first; a higher layer replaces a value (lists too,
they are not joined):

1. the user file, ``config.toml`` in platformdirs' ``user_config_dir("felboot")``
   (``~/.config/felboot/config.toml`` on Linux): defaults for every project, such as
   the device, the U-Boot search path and the console;
2. the project file: ``--config FILE``, else the first ``felboot.toml`` in the
   working directory or a parent. The walk up stops at the first directory that
   is a VCS root (holds ``.git``, ``.hg``, ``.svn``, ``.jj``, ``_darcs``, ``.fossil``
   or ``.bzr``; that directory is still searched), else at the filesystem root:
   a ``felboot.toml`` above a checkout belongs to another project, and
   defaults for every project belong in the user file;
3. the environment: ``FELBOOT_DEVICE``, ``FELBOOT_BOARD``, ``FELBOOT_CONSOLE`` (an
   empty variable counts as unset);
4. the command line (``apply_to_args``).

Both files hold the same flat table of keys (``KEYS``). Paths in a file are
relative to the directory of that file (``~`` is expanded). A key felboot does
not know, or a value of the wrong type, is an error naming the file, the key and
the type it takes: a misspelt key silently ignored would boot the wrong image.

``uboot_path`` lists directories searched for U-Boot builds after those of
``FELBOOT_UBOOT_PATH`` (which adds to it, as before) and before ``/usr/lib/u-boot``.

"Not given on the command line" (``apply_to_args``): an option the user did not
give is ``None`` in the parsed arguments, or ``[]`` for a repeatable
(``action="append"``) one, so every option a config can fill is declared with
``default=None`` (``default=[]`` for append; the real default then comes from
``defaults``), and the image positional takes ``nargs="*"`` (an empty list: not
given). Neither can come from a command line (an append option given holds a
value), so ``--layout safe`` given on purpose still
beats ``layout = "recipe"`` in a file, which comparing against the parser's
default could not tell apart. An attribute the parsed arguments do not have at
all (a command without that option) is left alone.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from felboot.domains import DomU, domu_from_table
from felboot.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - pyproject: tomli on 3.10
    import tomli as tomllib  # type: ignore[import-not-found]

log = logging.getLogger(__name__)

PROJECT_FILE_NAME = "felboot.toml"
USER_FILE_NAME = "config.toml"
VCS_MARKERS = (".git", ".hg", ".svn", ".jj", "_darcs", ".fossil", ".bzr")

ENVIRONMENT = {"device": "FELBOOT_DEVICE", "board": "FELBOOT_BOARD", "console": "FELBOOT_CONSOLE"}


class ConfigError(UsageError):
    """A config file that cannot be read, is not TOML, or holds a bad key or value."""


@dataclass(frozen=True)
class Kind:
    """What a key takes: how it is checked and converted, and how the type is named."""

    name: str  # in messages: "a string", "a path or a list of paths", ...
    check: Callable[[Any], bool]
    is_path: bool = False
    is_list: bool = False  # a single value is taken as a list of one
    choices: tuple[str, ...] = ()
    # For values that are more than a string: (file, key, value) -> the Setting's value.
    convert: Callable[[Path, str, Any], Any] | None = None


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_str_or_list(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(item, str) for item in value)
    )


def _is_number(value: Any) -> bool:
    # TOML booleans are ints to Python: true is not a time-out.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _is_size(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_tables(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _domus(file: Path, key: str, tables: list[dict[str, Any]]) -> tuple[DomU, ...]:
    """[[domu]] tables, in order, as DomU records (checked as --domu checks them)."""
    records = []
    for index, table in enumerate(tables, start=1):
        what = f"config file {file}: [[{key}]] {index} (domU{index})"
        try:
            records.append(domu_from_table(table, index, what, file.parent))
        except UsageError as error:  # the --domu checks' message, naming file and table
            raise ConfigError(str(error)) from None
    return tuple(records)


STRING = Kind("a string", _is_str)
PATH = Kind("a path (a string)", _is_str, is_path=True)
PATHS = Kind("a path or a list of paths", _is_str_or_list, is_path=True, is_list=True)
STRINGS = Kind("a string or a list of strings", _is_str_or_list, is_list=True)
SECONDS = Kind("a number of seconds above 0", _is_number)
SIZE = Kind('a size: an integer or a string such as "128M"', _is_size)
LAYOUT = Kind('"safe" or "recipe"', _is_str, choices=("safe", "recipe"))
BOOLEAN = Kind("true or false", _is_bool)
DOMUS = Kind(
    "[[domu]] tables (kernel, ramdisk, mem, vcpus, args, vpl011, dtb, passthrough)",
    _is_tables,
    convert=_domus,
)

#: Every key a config file may hold, in the order `felboot config show` prints them.
KEYS: dict[str, Kind] = {
    "device": STRING,
    "board": STRING,
    "uboot": PATHS,
    "uboot_path": PATHS,
    "xen": PATH,
    "kernel": PATH,
    "dtb": PATH,
    "initrd": PATH,
    "xen_args": STRING,
    "dom0_args": STRING,
    "dom0_mem": STRING,
    "layout": LAYOUT,
    "reserve_top": SIZE,
    "domu": DOMUS,
    "no_dom0": BOOLEAN,
    "passthrough": STRINGS,
    "console": STRING,  # PORT[,BAUD]: a device name, not a file path (COM3 is no file)
    "console_log": PATH,
    "expect": STRINGS,
    "timeout": SECONDS,
    "fail_on": STRINGS,
}

#: Config key -> argparse dest, for the keys that are plain options of `run`.
#: xen/kernel/dtb fill the image positional together; uboot_path is no option.
OPTION_DESTS = {
    "device": "device",
    "board": "board",
    "uboot": "uboot",
    "initrd": "initrd",
    "xen_args": "xen_args",
    "dom0_args": "dom0_args",
    "dom0_mem": "dom0_mem",
    "layout": "layout",
    "reserve_top": "reserve_top",
    "domu": "domu",
    "no_dom0": "no_dom0",
    "passthrough": "passthrough",
    "console": "console",
    "console_log": "console_log",
    "expect": "expect",
    "timeout": "timeout",
    "fail_on": "fail_on",
}

#: What an option is when neither the command line nor a config gives it: the
#: defaults cli.py declares today, to move here when the options become default=None.
RUN_DEFAULTS: dict[str, Any] = {
    "device": "usb",
    "uboot": [],
    "layout": "safe",
    "xen_args": "",
    "dom0_args": "",
}


@dataclass(frozen=True)
class Setting:
    """One value and where it came from ("./felboot.toml", "FELBOOT_BOARD", ...)."""

    value: Any  # a str, Path, float/int, or a tuple of str/Path for list keys
    source: str


@dataclass(frozen=True)
class MergedConfig:
    """The merged values, each with its source, and which files were looked for."""

    settings: Mapping[str, Setting]
    project_file: Path | None  # the felboot.toml (or --config FILE) read, if any
    user_file: Path  # where the user file is looked for (read when it exists)
    user_file_found: bool
    searched: tuple[Path, ...] = ()  # the directories looked in for felboot.toml

    def __contains__(self, key: object) -> bool:
        return key in self.settings

    def get(self, key: str, default: Any = None) -> Any:
        setting = self.settings.get(key)
        return default if setting is None else setting.value

    def source(self, key: str) -> str | None:
        setting = self.settings.get(key)
        return None if setting is None else setting.source

    def uboot_dirs(self) -> tuple[Path, ...]:
        """The config's U-Boot search directories (after FELBOOT_UBOOT_PATH's)."""
        return tuple(self.get("uboot_path", ()))

    def to_dict(self) -> dict[str, Any]:
        """For `felboot --json config show`: {key: {value, source}} plus the files."""
        return {
            "project_file": str(self.project_file) if self.project_file else None,
            "user_file": str(self.user_file),
            "user_file_found": self.user_file_found,
            "values": {
                key: {"value": _plain(setting.value), "source": setting.source}
                for key, setting in self.settings.items()
            },
        }


def _plain(value: Any) -> Any:
    if isinstance(value, DomU):  # a [[domu]] table: its --domu text
        return value.spec()
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return str(value) if isinstance(value, Path) else value


# Reading files ----------------------------------------------------------------------

_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def read_file(path: Path, source: str) -> dict[str, Setting]:
    """One config file, checked: {key: Setting}. ConfigError naming the file otherwise."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist: check the --config path") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory: name the TOML file") from None
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"config file {path} is not TOML: not UTF-8 text (byte {error.start})"
        ) from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        where = _TOML_POSITION.search(message)
        reason = _TOML_POSITION.sub("", message).strip()
        at = f"line {where[1]}, column {where[2]}: " if where else ""
        raise ConfigError(f"config file {path} is not TOML: {at}{reason}") from None
    return {key: Setting(_check(path, key, value), source) for key, value in table.items()}


def _check(path: Path, key: str, value: Any) -> Any:
    kind = KEYS.get(key)
    if kind is None:
        close = difflib.get_close_matches(key, KEYS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"config file {path}: unknown key {key!r}{hint}; the keys are {', '.join(KEYS)}"
        )
    if not kind.check(value):
        shown = "a table" if isinstance(value, dict) else f"{type_name(value)} {value!r}"
        raise ConfigError(f"config file {path}: key {key!r} takes {kind.name}, not {shown}")
    if kind.choices and value not in kind.choices:
        raise ConfigError(f"config file {path}: key {key!r} takes {kind.name}, not {value!r}")
    if kind.convert is not None:
        return kind.convert(path, key, value)
    if kind.is_list:
        items = [value] if isinstance(value, str) else list(value)
        if kind.is_path:
            return tuple(_path(path, key, item) for item in items)
        return tuple(items)
    if kind.is_path:
        return _path(path, key, value)
    return value


def _path(file: Path, key: str, value: str) -> Path:
    if not value:
        raise ConfigError(f"config file {file}: key {key!r} takes a path, not an empty string")
    # Relative to the file, so the project works from any subdirectory.
    return Path(os.path.normpath(file.parent / Path(value).expanduser()))


def type_name(value: Any) -> str:
    """The TOML name of a value's type, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


# Finding files ----------------------------------------------------------------------


def default_user_file() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("felboot")) / USER_FILE_NAME


def find_project_file(cwd: Path) -> tuple[Path | None, tuple[Path, ...]]:
    """The first felboot.toml from ``cwd`` upwards (see the module doc), and where it looked."""
    searched: list[Path] = []
    for directory in (cwd, *cwd.parents):
        searched.append(directory)
        candidate = directory / PROJECT_FILE_NAME
        if candidate.is_file():
            return candidate, tuple(searched)
        if any((directory / marker).exists() for marker in VCS_MARKERS):
            break
    return None, tuple(searched)


def project_source(path: Path, cwd: Path) -> str:
    """A project file as `config show` names it: "./felboot.toml", "../../felboot.toml"."""
    if cwd in path.parents:
        return "./" + str(path.relative_to(cwd))
    if path.parent in cwd.parents:
        return os.path.relpath(path, cwd)
    return str(path)


def user_source(path: Path, home: str | None) -> str:
    """The user file as `config show` names it: "~/.config/felboot/config.toml"."""
    if home and Path(home) in path.parents:
        return "~/" + str(path.relative_to(home))
    return str(path)


# Merging ----------------------------------------------------------------------------


def load_config(
    cwd: Path,
    explicit: Path | None,
    environ: Mapping[str, str],
    *,
    user_file: Path | None = None,
) -> MergedConfig:
    """The user file < the project file (``explicit``, else found from ``cwd``) < ``environ``.

    ``user_file`` replaces platformdirs' location (tests; a path that does not
    exist means no user file). An ``explicit`` file that does not exist is an
    error; a missing user or project file is not.
    """
    cwd = Path(os.path.abspath(cwd))
    home = environ.get("HOME")
    user = default_user_file() if user_file is None else user_file
    settings: dict[str, Setting] = {}
    user_found = user.is_file()
    if user_found:
        settings.update(read_file(user, user_source(user, home)))
    searched: tuple[Path, ...] = ()
    if explicit is not None:
        project: Path | None = Path(os.path.abspath(cwd / explicit.expanduser()))
    else:
        project, searched = find_project_file(cwd)
    if project is not None:
        settings.update(read_file(project, project_source(project, cwd)))
    for key, variable in ENVIRONMENT.items():
        value = environ.get(variable, "")
        if value:
            settings[key] = Setting(value, variable)
    if "device" in settings:
        _check_device(settings["device"])
    log.debug("config: project %s, user %s (found: %s)", project, user, user_found)
    return MergedConfig(settings, project, user, user_found, searched)


def _check_device(setting: Setting) -> None:
    from felboot.devices import VALID_FORMS, parse_device_spec

    try:
        parse_device_spec(setting.value)
    except UsageError:
        raise ConfigError(
            f"{setting.source}: device {setting.value!r} is not a device: use one of {VALID_FORMS}"
        ) from None


# The command line -------------------------------------------------------------------


def apply_to_args(
    config: MergedConfig,
    args: argparse.Namespace,
    defaults: Mapping[str, Any] = RUN_DEFAULTS,
    types: Mapping[str, Callable[[Any], Any]] | None = None,
) -> argparse.Namespace:
    """Fill each option the user did not give (None, []) from ``config``, else ``defaults``.

    Values go in as the command line would give them before argparse's ``type=``:
    strings (paths, sizes, seconds too), lists of strings for repeatable options.
    ``types`` maps a dest to the function its option's ``type=`` names, applied
    here too (to each item of a list). The image positional (``images``), when
    empty, takes the config's xen, kernel and dtb. Returns ``args``, changed in place.
    """
    types = types or {}
    for key, dest in OPTION_DESTS.items():
        if not hasattr(args, dest) or getattr(args, dest) not in (None, []):
            continue
        if key == "board" and getattr(args, "board_file", None):
            continue  # --board-file given: a configured board name would conflict with it
        if key in config:
            setattr(args, dest, as_argument(config.get(key), types.get(dest)))
            log.debug("%s from %s", dest, config.source(key))
        elif dest in defaults:
            default = defaults[dest]
            setattr(args, dest, list(default) if isinstance(default, list) else default)
    if hasattr(args, "images") and not args.images:
        args.images = config_images(
            config,
            no_xen=bool(getattr(args, "no_xen", False)),
            no_dom0=bool(getattr(args, "no_dom0", False)),
        )
    return args


def as_argument(value: Any, convert: Callable[[Any], Any] | None = None) -> Any:
    """A config value as the command line would have given it (what apply_to_args sets)."""

    def one(item: Any) -> Any:
        if isinstance(item, bool) or not isinstance(item, (str, Path, int, float)):
            return item  # a flag, or a record a config built (a DomU): no text form to parse
        text = str(item)  # paths, sizes, seconds: strings, as a command line gives them
        return convert(text) if convert is not None else text

    if isinstance(value, tuple):
        return [one(item) for item in value]
    return one(value)


def config_images(config: MergedConfig, *, no_xen: bool, no_dom0: bool = False) -> list[str]:
    """XEN KERNEL [DTB] (KERNEL [DTB] with no_xen, XEN DTB with no_dom0) from the config;
    [] when it names none."""
    named = [key for key in ("xen", "kernel", "dtb") if key in config]
    if not named:
        return []
    where = config.source(named[0])
    if no_dom0 and not no_xen:
        if "xen" not in config or "dtb" not in config:
            raise ConfigError(
                f'{where}: no_dom0 boots XEN DTB: add xen = "FILE" and dtb = "FILE" there '
                "or pass them on the command line"
            )
        return [str(config.get("xen")), str(config.get("dtb"))]
    if "kernel" not in config:
        raise ConfigError(
            f'{where} names {" and ".join(named)} but no kernel: add kernel = "FILE" there '
            "or pass the images on the command line"
        )
    if not no_xen and "xen" not in config:
        raise ConfigError(
            f'{where} names no xen: add xen = "FILE" there, pass --no-xen, '
            "or pass the images on the command line"
        )
    keys = ("kernel", "dtb") if no_xen else ("xen", "kernel", "dtb")
    return [str(config.get(key)) for key in keys if key in config]


# felboot config show ----------------------------------------------------------------


def format_value(value: Any) -> str:
    if isinstance(value, DomU):  # a [[domu]] table, shown as --domu would take it
        return repr(value.spec())
    if isinstance(value, tuple):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    if isinstance(value, str) and (value == "" or value != value.strip()):
        return repr(value)  # an empty or space-padded string would vanish in the line
    return str(value)


def show_lines(config: MergedConfig) -> list[str]:
    """`felboot config show`: the files, then "key = value   (source)" per value set."""
    if config.project_file is not None:
        project = str(config.project_file)
    elif config.searched:
        top = config.searched[-1]
        project = f"none (no {PROJECT_FILE_NAME} from {config.searched[0]} up to {top})"
    else:
        project = "none"
    user = f"{config.user_file}" + ("" if config.user_file_found else " (none)")
    lines = [f"# project file: {project}", f"# user file: {user}"]
    if not config.settings:
        lines.append("# no values set: felboot uses its defaults")
    ordered = [key for key in KEYS if key in config.settings]
    # Sources line up; a long value (a [[domu]] list) goes past the column, not the rest with it.
    width = min(
        60, max((len(f"{key} = {format_value(config.get(key))}") for key in ordered), default=0)
    )
    for key in ordered:
        text = f"{key} = {format_value(config.get(key))}"
        lines.append(f"{text:<{width}}   ({config.source(key)})")
    return lines
