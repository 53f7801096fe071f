"""What every command handler shares: reading user files, printing results, opening the device."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from felboot.errors import UsageError
from felboot.units import parse_number

if TYPE_CHECKING:
    from felboot.fel import FelDevice

log = logging.getLogger("felboot")


def write_output_file(path: str, data: bytes | bytearray) -> None:
    """``data`` to the file ``path``, or to stdout for "-"."""
    try:
        if path == "-":
            sys.stdout.flush()  # text printed before stays before
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            Path(path).write_bytes(data)
    except BrokenPipeError:
        raise  # `| head`: the reader has what it wanted; cli ends quietly
    except OSError as error:
        name = "stdout" if path == "-" else path
        where = "to stdout" if path == "-" else path
        raise UsageError(f"cannot write {where}: {error.strerror}", culprit=name) from None


#: The version of every --json object (docs/json.md): raised only when a key is removed,
#: renamed or changes meaning; new keys do not raise it.
JSON_SCHEMA = 1


def json_document(data: dict[str, Any]) -> str:
    """One top-level --json object: "schema" first, then the command's keys."""
    return json.dumps({"schema": JSON_SCHEMA, **data}, indent=2)


def emit(args: argparse.Namespace, data: dict[str, Any], text: str | None) -> None:
    """Print a result: JSON with --json (one object, schema first), else the human text.

    ``text`` None prints nothing without --json (commands that are silent on success).
    """
    if args.json:
        print(json_document(data))
    elif text is not None:
        print(text)


def device_specs(args: argparse.Namespace) -> list[str]:
    """Every --device value given, before and after the command, in order (cli.DeviceOption)."""
    return [*(getattr(args, "devices", None) or []), *(getattr(args, "devices_after", None) or [])]


def several_boards(args: argparse.Namespace) -> bool:
    """Whether the command line names more than one board (--device twice, or --all)."""
    return bool(getattr(args, "all_devices", False)) or len(device_specs(args)) > 1


@contextmanager
def open_device(args: argparse.Namespace) -> Iterator[FelDevice]:
    """The FelDevice selected by --device/--wait/--record, closed afterwards."""
    session = getattr(args, "session", None)
    if session is not None:  # a step of a chained command line (commands/chain.py)
        yield session  # opened once for all steps; the chain closes it
        return
    if several_boards(args):
        given = "--all" if getattr(args, "all_devices", False) else "--device twice"
        raise UsageError(
            f"{given}: only 'run' boots several boards at once; give one --device for "
            f"'{getattr(args, 'command_name', 'this command')}'"
        )
    from felboot.api import open_device as open_selected

    if args.wait and not args.quiet:
        limit = "" if math.isinf(args.wait) else f" (up to {args.wait:g} s)"
        print(f"waiting for a board in FEL mode{limit}: press its FEL button now", file=sys.stderr)
    note = "felboot " + " ".join(sys.argv[1:]) if args.record else None
    with open_selected(
        args.device,
        wait=args.wait,
        record=args.record or None,
        note=note,
        overwrite=getattr(args, "force", False),
    ) as device:
        yield device


# The arguments that name files (cli.py's dests); FILE@ADDR values count by their FILE.
FILE_ARGUMENTS = (
    "images", "uboot", "initrd", "board_file", "file", "files", "pairs", "script", "write",
    "output", "save_script",
)  # fmt: skip


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:  # one of them does not exist (yet): compare the names
        return os.path.realpath(a) == os.path.realpath(b)


def check_record_path(args: argparse.Namespace) -> None:
    """Refuse a --record FILE that would destroy data, before anything is read or sent.

    Not the transcript being replayed, not a file the command reads or writes,
    and not an existing file unless --force says so (FIFOs and devices such as
    /dev/stdout are written in place and need no --force).
    """
    if not args.record:
        return
    record = Path(args.record)
    advice = "record to another file"
    device = str(args.device)
    if device.startswith("replay:") and _same_file(record, Path(device[len("replay:") :])):
        raise UsageError(
            f"--record {record} is the transcript being replayed: {advice}", culprit=str(record)
        )
    for dest in FILE_ARGUMENTS:
        value = getattr(args, dest, None)
        for name in [value] if isinstance(value, str) else value or []:
            path = Path(name.rpartition("@")[0] or name if dest in ("script", "write") else name)
            if _same_file(record, path):
                raise UsageError(
                    f"--record {record} is also a file this command uses ({name}): {advice}",
                    culprit=str(record),
                )
    if record.is_dir():
        raise UsageError(f"--record {record} is a directory: name a file", culprit=str(record))
    if record.is_file() and not args.force:
        raise UsageError(
            f"--record {record} exists: add --force to replace it, or {advice}",
            culprit=str(record),
        )


def tree_lines(data: Any, indent: int = 0) -> Iterator[str]:
    """A nested dict/list as indented "key: value" lines for humans."""
    pad = "  " * indent
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, (dict, list)) and value:
                yield f"{pad}{key}:"
                yield from tree_lines(value, indent + 1)
            else:
                yield f"{pad}{key}: {'-' if value is None or value == [] else value}"
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, dict):
                yield f"{pad}-"
                yield from tree_lines(item, indent + 1)
            else:
                yield f"{pad}- {item}"
    else:
        yield f"{pad}{data}"


def print_warnings(warnings: Sequence[str]) -> None:
    for warning in warnings:
        print(f"felboot: warning: {warning}", file=sys.stderr)


def parse_file_at(text: str, what: str) -> tuple[str, int]:
    """FILE@ADDR -> (file, address)."""
    name, at, address = text.rpartition("@")
    if not at or not name:
        raise UsageError(f"{what} {text!r}: write it as FILE@ADDR, e.g. boot.scr@0x43100000")
    return name, parse_number(address, f"address of {name}")
