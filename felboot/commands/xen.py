"""Xen + dom0: boards, plan, script, run."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from felboot.commands.common import (
    log,
    open_device,
    print_warnings,
)
from felboot.errors import UsageError
from felboot.units import parse_number


def run_request(args: argparse.Namespace, need_uboot: bool) -> Any:
    """The parsed command line as a RunRequest (numbers parsed here, at the edge)."""
    from felboot.run import RunRequest

    images = list(args.images)
    expected = 2 if args.no_xen else 3
    # One fewer: no DTB, which a named board then takes from the kernel's Debian package.
    if len(images) not in (expected, expected - 1):
        shape = "KERNEL DTB" if args.no_xen else "XEN KERNEL DTB"
        raise UsageError(
            f"expected {shape}, got {len(images)} file(s): {' '.join(images) or 'none'} "
            "(with --board NAME and Debian's /boot/vmlinuz-VERSION the DTB may be left out)"
        )
    xen = None if args.no_xen else Path(images.pop(0))
    return RunRequest(
        board=args.board,
        board_file=Path(args.board_file) if args.board_file else None,
        uboot=tuple(Path(path) for path in args.uboot),
        xen=xen,
        kernel=Path(images[0]),
        dtb=Path(images[1]) if len(images) > 1 else None,
        initrd=Path(args.initrd) if args.initrd else None,
        dram_size=parse_number(args.dram_size, "DRAM size") if args.dram_size else None,
        layout=args.layout,
        reserve_top=parse_number(args.reserve_top, "reserve") if args.reserve_top else None,
        xen_args=args.xen_args,
        dom0_args=args.dom0_args,
        dom0_mem=args.dom0_mem,
        no_xen=args.no_xen,
        compress=not args.no_compress,
        script_address=parse_number(args.script_address, "script address"),
        need_uboot=need_uboot,
        uboot_for_other_board=args.uboot_for_other_board,
    )


def plan_table(plan: Any) -> Iterator[str]:
    from felboot.units import format_size

    yield (
        f"{plan.board} ({plan.soc}, {format_size(plan.dram_size)} DRAM at "
        f"0x{plan.dram_base:08x}), layout {plan.layout}, {plan.boot_command}"
    )
    rows = [(r, "write") for r in plan.regions] + [(r, "keep clear") for r in plan.reserved]
    for region, role in sorted(rows, key=lambda row: row[0].start):
        used = f"{format_size(region.size)} used" if role == "write" else role
        source = f"  {region.source}" if role == "write" and region.source else ""
        yield (
            f"  0x{region.start:08x}-0x{region.end:08x}  {region.name:<16} "
            f"{format_size(region.end - region.start):>9}  {used}{source}"
        )
    yield f"  boot.scr at 0x{plan.script_address:08x}"


def cmd_boards(args: argparse.Namespace) -> int:
    from felboot.boards import list_boards
    from felboot.units import format_size

    boards = list_boards()
    if args.json:
        rows = [
            {
                "name": b.name,
                "soc": b.soc,
                "dram_size": b.dram_size,
                "display": b.display,
                "uboot": [str(p) for p in b.uboot],
                "uboot_installed": bool(b.uboot) and all(p.exists() for p in b.uboot),
                "description": b.description,
            }
            for b in boards
        ]
        print(json.dumps(rows, indent=2))
        return 0
    for board in boards:
        dram = format_size(board.dram_size) if board.dram_size else "detect"
        installed = bool(board.uboot) and all(path.exists() for path in board.uboot)
        uboot = "U-Boot installed" if installed else "needs --uboot"
        print(f"{board.name:<22} {board.soc:<5} {dram:<8} {uboot:<16} {board.description}")
    return 0


def print_plan(args: argparse.Namespace, prepared: Any, plan: Any) -> None:
    """The plan as `plan` and `run --dry-run` show it: the U-Boot choice, then the table."""
    choice = prepared.inputs.uboot_choice
    if args.json:
        data = plan.to_dict()
        data["uboot"] = (
            {"files": [str(path) for path in choice.paths], "why": choice.why} if choice else None
        )
        print(json.dumps(data, indent=2))
        return
    if choice is not None:
        print(choice.summary())
    print("\n".join(plan_table(plan)))


def cmd_plan(args: argparse.Namespace) -> int:
    from felboot.run import prepare, require_plan

    request = run_request(args, need_uboot=False)
    prepared = prepare(request)
    plan, _ = require_plan(prepared, prepared.inputs.board)
    print_warnings((*prepared.inputs.warnings, *plan.warnings))
    print_plan(args, prepared, plan)
    return 0


def cmd_script(args: argparse.Namespace) -> int:
    from felboot.run import prepare, require_plan, save_script

    prepared = prepare(run_request(args, need_uboot=False))
    plan, script = require_plan(prepared, prepared.inputs.board)
    print_warnings((*prepared.inputs.warnings, *plan.warnings))
    text_path, image_path = save_script(script, Path(args.output))
    print(f"wrote {text_path} and {image_path} (load boot.scr at 0x{plan.script_address:08x})")
    return 0


def run_summary(report: Any) -> Iterator[str]:
    from felboot.run import expected_console
    from felboot.units import format_size

    plan = report.plan
    yield f"{report.dram} - U-Boot started; the board has left FEL"
    if report.uboot_line():
        yield report.uboot_line()
    for name, start, end in report.uboot.regions:
        yield f"  0x{start:08x}-0x{end:08x}  {name[:16]:<16} {format_size(end - start)}"
    for region in plan.regions:
        yield (
            f"  0x{region.start:08x}-0x{region.end:08x}  {region.name:<16} "
            f"{format_size(region.size)}  {region.source or ''}"
        )
    script_size = format_size(len(report.script.image))
    yield f"  0x{plan.script_address:08x}             {'boot.scr':<16} {script_size}"
    sent, given = format_size(report.bytes_written), format_size(report.input_bytes)
    gzip_note = ", the dom0 kernel gzip'ed" if plan.kernel_gzipped else ""
    yield f"Sent {sent} for {given} of input{gzip_note}. On the serial console (115200 8N1):"
    for line in expected_console(report):
        yield f"  - {line}"


def cmd_run(args: argparse.Namespace) -> int:
    from felboot.progress import progress_bar
    from felboot.run import execute, prepare, require_plan, save_script, upload_size

    # A dry run needs what the run needs: the same U-Boot lookup, the same refusals.
    request = run_request(args, need_uboot=True)
    prepared = prepare(request)
    print_warnings(prepared.inputs.warnings)
    if args.dry_run:
        plan, script = require_plan(prepared, prepared.inputs.board)
        print_warnings(plan.warnings)
        if args.save_script:
            save_script(script, Path(args.save_script))
        print_plan(args, prepared, plan)
        if not args.json:
            print("dry run: nothing was sent to a device")
        return 0
    if prepared.plan is not None:
        print_warnings(prepared.plan.warnings)
    with (
        open_device(args) as device,
        progress_bar(upload_size(prepared), "upload", args.quiet) as progress,
    ):
        report = execute(device, prepared, request, progress)
    if prepared.plan is None or report.plan is not prepared.plan:
        # Planned (again) once the SPL measured DRAM: these warnings are new.
        print_warnings(
            [
                w
                for w in report.plan.warnings
                if prepared.plan is None or w not in prepared.plan.warnings
            ]
        )
    if args.save_script:
        save_script(report.script, Path(args.save_script))
    for note in report.notes:
        log.info("%s", note)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print("\n".join(run_summary(report)))
    return 0
