"""The boot chain and images: spl, uboot, info, inspect."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from felboot.commands import desk
from felboot.commands.common import (
    emit,
    open_device,
    parse_file_at,
    tree_lines,
)
from felboot.images import load
from felboot.units import format_size

if TYPE_CHECKING:
    from felboot.dram import DramInfo


def dram_text(dram: DramInfo) -> str:
    """ "DRAM 1 GiB (probed)": DramInfo in format_size's style."""
    return f"DRAM {format_size(dram.size)} ({dram.source})"


def cmd_spl(args: argparse.Namespace) -> int:
    from felboot.boot import run_spl
    from felboot.images.spl import parse_spl
    from felboot.progress import progress_bar

    spl = parse_spl(load(Path(args.file)), args.file)
    with open_device(args) as device, progress_bar(spl.length, "SPL", args.quiet) as progress:
        result = run_spl(device, spl, progress=progress)
    emit(
        args,
        {"dram_size": result.dram.size, "dram_source": result.dram.source},
        f"SPL done, the board is back in FEL: {dram_text(result.dram)}",
    )
    return 0


def cmd_uboot(args: argparse.Namespace) -> int:
    from felboot.boot import boot_uboot
    from felboot.images.uboot import load_uboot
    from felboot.progress import progress_bar

    setup = desk.console_setup(args)  # a bad port, baud or regex: refused before anything
    if args.loop is not None:
        from felboot.loop import UBootRequest

        loop_writes = tuple(
            (Path(name), address)
            for name, address in (parse_file_at(item, "--write") for item in args.write)
        )
        loop_script = None
        if args.script:
            name, address = parse_file_at(args.script, "--script")
            loop_script = (Path(name), address)
        files = tuple(Path(name) for name in args.files)
        return desk.loop_command(args, UBootRequest(files, loop_writes, loop_script), setup)
    bundle = load_uboot([Path(name) for name in args.files])
    writes = []
    for item in args.write:
        name, address = parse_file_at(item, "--write")
        writes.append((address, load(name, "file"), name))
    script = None
    if args.script:
        name, address = parse_file_at(args.script, "--script")
        script = (address, load(name, "boot script"))
    total = sum(len(data) for _, data, _ in writes) + (len(script[1]) if script else 0)
    total += bundle.spl.length + bundle.main_size
    with desk.opened(setup):  # the console is open before the board starts
        with open_device(args) as device, progress_bar(total, "upload", args.quiet) as progress:
            result = boot_uboot(device, bundle, writes=writes, script=script, progress=progress)
        emit(
            args,
            {
                "dram_size": result.dram.size,
                "dram_source": result.dram.source,
                "upload_bytes": total,
            },
            f"{dram_text(result.dram)}; U-Boot started, the board has left FEL",
        )
        sys.stdout.flush()  # the summary first, then the board's own lines
        return desk.console_verdict(args, setup)


def cmd_info(args: argparse.Namespace) -> int:
    from felboot.devices import format_sid
    from felboot.errors import DeviceError
    from felboot.images.spl import SPL_HEADER_SIZE, describe_header_in_sram
    from felboot.soc import soc_label

    with open_device(args) as device:
        version = device.version()
        soc = device.soc
        data: dict[str, Any] = {"soc": soc_label(version.soc_id), "soc_id": version.soc_id}
        try:
            data["sid"] = format_sid(device.sid())
        except DeviceError as error:
            data["sid"] = None
            data["sid_problem"] = str(error)
        if soc is not None:
            header = bytes(device.read(soc.spl_addr, SPL_HEADER_SIZE))
            data.update(describe_header_in_sram(header))
    # JSON keeps the plain int; people read SoC ids in hex, as sunxi-fel prints them.
    text = "\n".join(tree_lines({**data, "soc_id": f"0x{version.soc_id:04x}"}))
    emit(args, data, text)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from felboot.images.identify import describe_file, report_lines

    reports = [describe_file(Path(name)) for name in args.files]
    text = "\n\n".join("\n".join(report_lines(report)) for report in reports)
    emit(args, {"files": reports}, text)
    # Problems (and warnings) go to stderr too, so a script that reads only the
    # exit code and stderr still learns why it is 1.
    for report in reports:
        for warning in report.get("warnings", []):
            print(f"felboot: warning: {warning}", file=sys.stderr)
        for problem in report.get("problems", []):
            print(f"felboot: problem: {problem}", file=sys.stderr)
    return 1 if any(report.get("problems") for report in reports) else 0
