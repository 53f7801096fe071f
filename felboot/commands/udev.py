"""`felboot udev [--install]`: the udev rule that ships inside the package.

`felboot udev` prints felboot/data/60-felboot.rules (udev/60-felboot.rules in the
repository is a link to it); `felboot udev --install` writes it to
/etc/udev/rules.d/ and reloads udev, as `uuu -udev` and `snagrecover --udev` offer.
`--root DIR` puts the file under DIR instead (a test, an image being prepared),
and then udev is left alone unless `--reload` asks for it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from felboot.commands.common import emit, print_warnings
from felboot.errors import UsageError

AddCommand = Callable[..., argparse.ArgumentParser]  # cli._add(subparsers, name, handler, help)

RULE_NAME = "60-felboot.rules"
RULES_DIR = Path("etc/udev/rules.d")
#: What --install runs after writing the file: udev rereads its rules, then replays the "add"
#: of the FEL boards already plugged in, so they get the new permissions without a replug.
RELOAD_COMMANDS = (
    ("udevadm", "control", "--reload"),
    ("udevadm", "trigger", "--subsystem-match=usb", "--attr-match=idVendor=1f3a"),
)


def rule_text() -> str:
    """The rules file as the package ships it."""
    return (resources.files("felboot") / "data" / RULE_NAME).read_text(encoding="utf-8")


def rule_lines(text: str) -> list[str]:
    """The rules of a rules file, without comments and blank lines."""
    stripped = (line.strip() for line in text.splitlines())
    return [line for line in stripped if line and not line.startswith("#")]


def cmd_udev(args: argparse.Namespace) -> int:
    text = rule_text()
    if not args.install and (args.root is not None or args.reload is not None):
        given = "--root" if args.root is not None else "--reload" if args.reload else "--no-reload"
        raise UsageError(f"{given} goes with --install: felboot udev --install {given} ...")
    if not args.install:
        target = Path("/") / RULES_DIR / RULE_NAME
        emit(
            args, {"name": RULE_NAME, "install_path": str(target), "rules": rule_lines(text)}, None
        )
        if not args.json:
            sys.stdout.write(text)
        return 0
    root = Path(args.root) if args.root else Path("/")
    target = root / RULES_DIR / RULE_NAME
    changed = install_rule(target, text, _again(args))
    reload = args.reload if args.reload is not None else root.resolve() == Path("/")
    ran: list[str] = []
    warnings: list[str] = []
    if reload:
        ran, warnings = reload_udev()
    what = "installed" if changed else "already installed, unchanged:"
    lines = [f"{what} {target}"]
    lines += [f"ran {command}" for command in ran]
    if not reload:
        lines.append(f"udev not reloaded: the root is {root}, not / (--reload reloads it anyway)")
    elif not warnings:
        lines.append(
            "if felboot still cannot open the board, replug it or put it in FEL mode again"
        )
    emit(
        args,
        {"path": str(target), "changed": changed, "reloaded": ran, "warnings": warnings},
        "\n".join(lines),
    )
    print_warnings(warnings)
    return 0


def _again(args: argparse.Namespace) -> str:
    """The command line that runs this install as root (sudo may not find a venv's felboot)."""
    words = [sys.executable, "-m", "felboot", "udev", "--install"]
    if args.root:
        words += ["--root", args.root]
    return "sudo " + shlex.join(words)


def install_rule(target: Path, text: str, as_root: str) -> bool:
    """Write ``text`` to ``target`` (mode 0644) unless it holds it already; True if written.

    Written to a temporary file beside it and renamed, so udev never reads half a file.
    """
    try:
        if target.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    except OSError as error:
        raise _cannot_write(target, error, as_root) from None
    temporary: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{RULE_NAME}.", dir=target.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
        temporary = None
    except OSError as error:
        raise _cannot_write(target, error, as_root) from None
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
    return True


def _cannot_write(target: Path, error: OSError, as_root: str) -> UsageError:
    reason = error.strerror or str(error)
    if isinstance(error, PermissionError):
        return UsageError(
            f"cannot write {target}: {reason}: installing the udev rule needs root: {as_root}",
            culprit=str(target),
        )
    return UsageError(f"cannot write {target}: {reason}", culprit=str(target))


def reload_udev() -> tuple[list[str], list[str]]:
    """Run RELOAD_COMMANDS: (the commands that ran, warnings for those that could not)."""
    udevadm = shutil.which("udevadm")
    if udevadm is None:
        return [], ["udevadm not found: the rule applies once udev starts; then replug the board"]
    ran: list[str] = []
    for command in RELOAD_COMMANDS:
        words = [udevadm, *command[1:]]
        shown = shlex.join(command)
        try:
            result = subprocess.run(words, capture_output=True, text=True, check=False)
        except OSError as error:
            return ran, [f"{shown} could not run: {error.strerror}"]
        if result.returncode != 0:
            said = result.stderr.strip().splitlines()
            detail = f": {said[-1]}" if said else ""
            return ran, [
                f"{shown} failed (exit {result.returncode}){detail}: the rule is in place and "
                "applies once udev runs; then replug the board"
            ]
        ran.append(shown)
    return ran, []


def register(subparsers: Any, add: AddCommand) -> None:
    """`felboot udev`, through cli's ``_add``."""
    p = add(
        subparsers,
        "udev",
        cmd_udev,
        "print the udev rule that lets users open FEL boards, or --install it",
        "Prints felboot's udev rule (1f3a:efe8: uaccess for the user at the seat, group "
        "plugdev otherwise, USB autosuspend off). With --install, as root, writes it to "
        "/etc/udev/rules.d/60-felboot.rules and runs `udevadm control --reload` and "
        "`udevadm trigger --subsystem-match=usb --attr-match=idVendor=1f3a`.",
    )
    p.add_argument(
        "--install",
        action="store_true",
        help="write the rule to /etc/udev/rules.d/ and reload udev (needs root)",
    )
    p.add_argument(
        "--root",
        metavar="DIR",
        help="install under DIR instead of / (DIR/etc/udev/rules.d/); udev is then not reloaded",
    )
    p.add_argument(
        "--reload",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="reload udev after --install (the default only when the root is /)",
    )
