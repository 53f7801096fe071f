"""Xen + dom0: boards, plan, script, run."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from felboot.commands import desk
from felboot.commands.common import (
    device_specs,
    emit,
    json_document,
    log,
    open_device,
    print_warnings,
    several_boards,
)
from felboot.errors import UsageError
from felboot.units import format_rate, format_seconds, format_size, parse_number


def run_request(args: argparse.Namespace, need_uboot: bool) -> Any:
    """The parsed command line as a RunRequest (numbers parsed here, at the edge)."""
    from felboot.domains import parse_domus
    from felboot.run import RunRequest

    imported = imagebuilder_layer(args)
    images = list(args.images)
    domus = parse_domus(getattr(args, "domu", None) or [])
    no_dom0 = bool(getattr(args, "no_dom0", False))
    if imported is not None:
        from_file = imported.config
        if not imported.given("images"):
            files = [from_file.xen, from_file.kernel, from_file.dtb]
            images = [str(path) for path in files if path is not None]
            no_dom0 = no_dom0 or from_file.no_dom0
        if from_file.domus and not imported.given("domu"):  # the file beats felboot.toml
            domus = from_file.domus
    if no_dom0 and args.no_xen:
        raise UsageError("--no-dom0 boots Xen's domUs and --no-xen boots Linux alone: pick one")
    if no_dom0:
        if len(images) != 2:
            raise UsageError(
                f"expected XEN DTB with --no-dom0, got {len(images)} file(s): "
                f"{' '.join(images) or 'none'}"
            )
        images.insert(1, "")  # no dom0 kernel
    expected = 2 if args.no_xen else 3
    # One fewer: no DTB, which a named board then takes from the kernel's Debian package.
    if len(images) not in (expected, expected - 1):
        shape = "KERNEL DTB" if args.no_xen else "XEN KERNEL DTB"
        # One too many is most often an initrd given in place, as the wiki's recipe lists it.
        hint = (
            f"; an initrd goes with --initrd {images[-1]}"
            if len(images) == expected + 1
            else " (with --board NAME and Debian's /boot/vmlinuz-VERSION the DTB may be left out)"
        )
        raise UsageError(
            f"expected {shape}, got {len(images)} file(s): {' '.join(images) or 'none'}{hint}"
        )
    xen = None if args.no_xen else Path(images.pop(0))
    request = RunRequest(
        board=args.board,
        board_file=Path(args.board_file) if args.board_file else None,
        uboot=tuple(Path(path) for path in args.uboot),
        xen=xen,
        kernel=Path(images[0]) if images[0] else None,
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
        uboot_dirs=config.uboot_dirs() if (config := getattr(args, "felboot_config", None)) else (),
        domus=domus,
        no_dom0=no_dom0,
        passthrough=tuple(getattr(args, "passthrough", None) or ()),
    )
    return imported.apply(request) if imported is not None else request


@dataclass(frozen=True)
class ImportedConfig:
    """An ImageBuilder config (--from-imagebuilder) and what the command line gave itself."""

    config: Any  # felboot.imagebuilder.ImageBuilderConfig
    from_command_line: frozenset[str]  # dests the user gave (they override the file)

    def given(self, dest: str) -> bool:
        return dest in self.from_command_line

    def apply(self, request: Any) -> Any:
        """The file's values where the command line gave none (images are done already)."""
        import dataclasses

        from_file, changes = self.config, {}
        if from_file.initrd is not None and not self.given("initrd"):
            changes["initrd"] = from_file.initrd
        if from_file.xen_args is not None and not self.given("xen_args"):
            changes["xen_args"] = from_file.xen_args
        if from_file.dom0_args is not None and not self.given("dom0_args"):
            changes["dom0_args"] = from_file.dom0_args
        if from_file.dom0_mem is not None and not self.given("dom0_mem"):
            changes["dom0_mem"] = from_file.dom0_mem
        if from_file.passthrough and not self.given("passthrough"):
            changes["passthrough"] = from_file.passthrough
        return dataclasses.replace(
            request,
            memory=from_file.memory,
            warnings=(*request.warnings, *from_file.warnings),
            **changes,
        )


def imagebuilder_layer(args: argparse.Namespace) -> ImportedConfig | None:
    """--from-imagebuilder FILE read and mapped, and which options the command line gave.

    felboot.toml and the defaults fill the options before the command runs
    (commands/desk.configure), so a value counts as the command line's when it is
    not what they would have put there; the file comes between the two. The one
    case this cannot tell: an option given with exactly the value felboot.toml (or
    the default, such as an empty --xen-args) has, which then yields to the file.
    For `script`, LOAD_CMD becomes --load when --load is left at fel.
    """
    name = getattr(args, "from_imagebuilder", None)
    if not name:
        return None
    from felboot.config import RUN_DEFAULTS, as_argument, config_images
    from felboot.imagebuilder import ImageBuilderError, map_config
    from felboot.images import reading

    path = Path(name)
    try:
        with reading(f"--from-imagebuilder {path}"):
            text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ImageBuilderError(
            f"--from-imagebuilder {path}: byte {error.start} is not UTF-8: is it the config?"
        ) from None
    imported = map_config(text, path)
    config = getattr(args, "felboot_config", None)

    def from_lower_layer(dest: str, value: Any) -> bool:
        if value in (None, [], ()):
            return True
        if config is not None and dest in config:
            return bool(value == as_argument(config.get(dest)))  # as apply_to_args set it
        return bool(dest in RUN_DEFAULTS and value == RUN_DEFAULTS[dest])

    given = {
        dest
        for dest in ("initrd", "xen_args", "dom0_args", "dom0_mem", "domu", "passthrough")
        if not from_lower_layer(dest, getattr(args, dest, None))
    }
    images = list(getattr(args, "images", []))
    if images and (config is None or images != config_images(config, no_xen=args.no_xen)):
        given.add("images")
    if imported.load is not None and getattr(args, "load", None) in (None, "fel"):
        args.load = imported.load
    return ImportedConfig(imported, frozenset(given))


PROBE_PREFIX = "SPL DRAM probe"  # plan.py's name for the words the SPL's DRAM probe touches


@dataclass(frozen=True)
class TableRow:
    start: int
    end: int | None  # None: no range (nothing claimed beyond the bytes)
    name: str
    room: int | None  # bytes the range claims
    data: str  # what goes there: a size, or "keep clear"
    source: str


def region_table(rows: Iterable[TableRow]) -> Iterator[str]:
    """The one table of `plan`, `run --dry-run` and `run`: by address, every column aligned."""
    header = ("start", "end", "region", "room", "data", "from")
    cells = [header] + [
        (
            f"0x{row.start:08x}",
            f"0x{row.end:08x}" if row.end is not None else "",
            row.name,
            format_size(row.room) if row.room is not None else "",
            row.data,
            row.source,
        )
        for row in sorted(rows, key=lambda row: (row.start, row.end or row.start))
    ]
    widths = [max(len(cell[i]) for cell in cells) for i in range(len(header))]
    right = {3}  # sizes line up on their unit
    for cell in cells:
        parts = [
            text.rjust(widths[i]) if i in right else text.ljust(widths[i])
            for i, text in enumerate(cell)
        ]
        yield ("  " + "  ".join(parts)).rstrip()


def plan_rows(
    plan: Any, script_size: int, kernel_file_size: int, uboot: Any, uboot_source: str, verbose: bool
) -> list[TableRow]:
    """The images, the script, U-Boot's parts (when known) and what is kept clear."""
    rows = []
    for region in plan.regions:
        data = format_size(region.size)
        if region.name == "kernel" and plan.kernel_gzipped:
            data += f" (gzip of {format_size(kernel_file_size)})"
        room = region.end - region.start
        rows.append(TableRow(region.start, region.end, region.name, room, data, region.source))
    if uboot is not None:
        for name, start, end in uboot.regions:
            rows.append(
                TableRow(start, end, name, end - start, format_size(end - start), uboot_source)
            )
    for region in plan.reserved:
        if region.name == "boot script":
            data, source = format_size(script_size), "boot.scr"
        elif region.name == "U-Boot load area" and uboot is not None:
            continue  # its parts are listed instead
        elif region.name.startswith(PROBE_PREFIX) and not verbose:
            continue  # a few words the SPL probes: -v lists them
        else:
            data, source = "keep clear", ""
        room = region.end - region.start
        rows.append(TableRow(region.start, region.end, region.name, room, data, source))
    return rows


def plan_lines(
    plan: Any,
    *,
    script_size: int,
    kernel_file_size: int,
    xen_args: str | None,
    dom0_args: str,
    uboot: Any = None,
    uboot_source: str = "",
    verbose: bool = False,
) -> Iterator[str]:
    """The plan's heading, its table and the command lines (plan, run --dry-run and run)."""
    yield (
        f"{plan.board} ({plan.soc}, {format_size(plan.dram_size)} DRAM at "
        f"0x{plan.dram_base:08x}), layout {plan.layout}, {plan.boot_command}"
    )
    rows = plan_rows(plan, script_size, kernel_file_size, uboot, uboot_source, verbose)
    yield from region_table(rows)
    probes = [r for r in plan.reserved if r.name.startswith(PROBE_PREFIX)]
    if probes and not verbose:
        yield f"  (and {len(probes)} words the SPL's DRAM probe uses, kept clear: -v lists them)"
    if xen_args is not None:
        yield f"Xen command line:  {xen_args or '(empty)'}"
    if not plan.no_dom0:
        label = "Linux command line:" if xen_args is None else "dom0 command line: "
        yield f"{label} {dom0_args or '(empty)'}"
    yield from domain_lines(plan)


def domain_lines(plan: Any) -> Iterator[str]:
    """One line per dom0less domU (its memory, vCPUs, console, modules, pass-through)."""
    for path in plan.passthrough:
        yield f"pass-through:      {path} (xen,passthrough: kept from dom0)"
    for domain in plan.domains:
        modules = ", ".join(f"{r.name.split('-', 1)[1]} 0x{r.start:08x}" for r in domain.modules)
        console = "vpl011 console" if domain.vpl011 else "no console"
        yield (
            f"{domain.name}:{' ' * max(1, 18 - len(domain.name))}{format_size(domain.mem)}, "
            f"{domain.vcpus} vCPU{'s' if domain.vcpus > 1 else ''}, {console}; {modules}"
        )
        yield f"  command line:    {domain.args or '(empty)'}"


def cmd_boards(args: argparse.Namespace) -> int:
    from felboot.boards import list_boards

    boards = list_boards()
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
    lines = []
    for board, row in zip(boards, rows, strict=True):
        dram = format_size(board.dram_size) if board.dram_size else "detect"
        uboot = "U-Boot installed" if row["uboot_installed"] else "needs --uboot"
        lines.append(f"{board.name:<22} {board.soc:<5} {dram:<8} {uboot:<16} {board.description}")
    emit(args, {"boards": rows}, "\n".join(lines))
    return 0


def plan_document(prepared: Any, request: Any, plan: Any) -> dict[str, Any]:
    """`plan --json`: the plan with its command lines and the U-Boot choice."""
    from felboot.run import command_lines, plan_dict

    inputs = prepared.inputs
    xen_args, dom0_args = command_lines(inputs, request)
    data = plan_dict(plan, None if request.no_xen else xen_args, dom0_args, inputs.kernel_file_size)
    choice = inputs.uboot_choice
    data["uboot"] = (
        {"files": [str(path) for path in choice.paths], "why": choice.why} if choice else None
    )
    return data


def cmd_plan(args: argparse.Namespace) -> int:
    from felboot.run import command_lines, prepare, require_plan

    request = run_request(args, need_uboot=False)
    prepared = prepare(request)
    inputs = prepared.inputs
    plan, script = require_plan(prepared, inputs.board)
    print_warnings((*inputs.warnings, *plan.warnings))
    xen_args, dom0_args = command_lines(inputs, request)
    lines = [inputs.uboot_choice.summary()] if inputs.uboot_choice else []
    lines += plan_lines(
        plan,
        script_size=len(script.image),
        kernel_file_size=inputs.kernel_file_size,
        xen_args=None if request.no_xen else xen_args,
        dom0_args=dom0_args,
        verbose=args.verbose > 0,
    )
    emit(args, plan_document(prepared, request, plan), "\n".join(lines))
    return 0


def cmd_script(args: argparse.Namespace) -> int:
    from felboot.bootscript import parse_load
    from felboot.run import make_script, prepare, require_plan, save_media, save_script

    request = run_request(args, need_uboot=False)  # first: an ImageBuilder LOAD_CMD sets --load
    load = parse_load(getattr(args, "load", None) or "fel")
    prepared = prepare(request)
    plan, script = require_plan(prepared, prepared.inputs.board)
    print_warnings((*prepared.inputs.warnings, *plan.warnings))
    images: list[Path] = []
    if load.loads:
        script = make_script(plan, prepared.inputs, request, load)
        images = save_media(plan, Path(args.output))
    text_path, image_path = save_script(script, Path(args.output))
    data: dict[str, Any] = {
        "boot_cmd": str(text_path),
        "boot_scr": str(image_path),
        "script_address": plan.script_address,
        "size": len(script.image),
    }
    text = f"wrote {text_path} and {image_path} (load boot.scr at 0x{plan.script_address:08x})"
    if load.loads:
        data["load"] = load.kind
        data["images"] = [str(path) for path in images]
        data["uboot_commands"] = load.prompt_commands(plan)
        text += f" and {len(images)} images; at the U-Boot prompt: {data['uboot_commands']}"
        if load.kind == "tftp":  # tftpboot needs ipaddr and serverip set
            text += (
                "\nfirst bring up the network: setenv autoload no; dhcp (or setenv ipaddr and "
                f"serverip), with {args.output} as the TFTP server's root"
            )
    emit(args, data, text)
    return 0


def report_lines(report: Any, *, verbose: bool = False) -> Iterator[str]:
    """What a run (or a dry run: no board, no timings) did, as the summary shows it."""
    from felboot.run import expected_console

    plan = report.plan
    if report.timings is not None:
        dram = f"DRAM {format_size(report.dram.size)} ({report.dram.source})"
        yield f"{dram}; U-Boot started, the board has left FEL"
    if report.uboot_line():
        yield report.uboot_line()
    choice = report.uboot_choice
    yield from plan_lines(
        plan,
        script_size=len(report.script.image),
        kernel_file_size=report.kernel_file_size,
        xen_args=report.xen_args,
        dom0_args=report.dom0_args,
        uboot=report.uboot,
        uboot_source=str(choice.paths[-1]) if choice else "",  # U-Boot proper's file
        verbose=verbose,
    )
    sent, given = format_size(report.bytes_written), format_size(report.input_bytes)
    if report.timings is None:
        yield f"Would send {sent} for {given} of input. Dry run: nothing was sent to a device."
        return
    yield "On the serial console (115200 8N1):"
    for line in expected_console(report):
        yield f"  - {line}"
    board = report.board
    port = f", port {board.port}" if board.port else ""
    sid = f", SID {board.sid}" if board.sid else ""
    yield f"Board: {board.description}{port}{sid}"
    t = report.timings
    yield (
        f"Time: find {format_seconds(t.find)}, SPL {format_seconds(t.spl)}, "
        f"upload {format_seconds(t.upload)}, start {format_seconds(t.start)}; "
        f"total {format_seconds(t.total)}"
    )
    rate = format_rate(report.bytes_written, t.total - t.find)
    yield f"Sent {sent} at {rate} for {given} of input."


def known_sid(spec: str) -> str | None:
    """The SID a usb:sid= selection names (already read to pick the board), else None."""
    from felboot.devices import UsbSelector, parse_device_spec

    selector = parse_device_spec(spec)
    if not isinstance(selector, UsbSelector) or selector.sid is None:
        return None
    return ":".join(selector.sid[i : i + 8] for i in range(0, 32, 8))


def cmd_run(args: argparse.Namespace) -> int:
    from felboot import api
    from felboot.progress import progress_bar
    from felboot.run import dry_run_report, require_plan, save_script, upload_size

    # A dry run needs what the run needs: the same U-Boot lookup, the same refusals.
    request = run_request(args, need_uboot=True)
    setup = desk.console_setup(args)  # a bad port, baud or regex: refused before anything
    if several_boards(args):
        check_several(args, setup)
    if args.loop is not None:
        return desk.loop_command(args, request, setup)
    ready = api.prepare(request)
    prepared = ready.prepared
    print_warnings(prepared.inputs.warnings)
    verbose = args.verbose > 0
    if args.dry_run:
        plan, script = require_plan(prepared, prepared.inputs.board)
        print_warnings(plan.warnings)
        if args.save_script:
            save_script(script, Path(args.save_script))
        report = dry_run_report(prepared, request)
        emit(args, report.to_dict(), "\n".join(report_lines(report, verbose=verbose)))
        return 0
    if prepared.plan is not None:
        print_warnings(prepared.plan.warnings)
    if several_boards(args):
        return run_several(args, ready, setup)
    search_started = time.monotonic()
    with desk.opened(setup):  # the console is open before the board starts
        with (
            open_device(args) as device,
            progress_bar(upload_size(prepared), "upload", args.quiet) as progress,
        ):
            report = api.run(
                device,
                ready,
                progress,
                search_started=search_started,
                sid=known_sid(args.device),
            )
        return _run_done(args, prepared, report, setup)


def _run_done(args: argparse.Namespace, prepared: Any, report: Any, setup: Any) -> int:
    """After the start: new warnings, the saved script, the summary, then the console."""
    from felboot.run import save_script

    verbose = args.verbose > 0
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
    emit(args, report.to_dict(), "\n".join(report_lines(report, verbose=verbose)))
    sys.stdout.flush()  # the summary first, then the board's own lines
    return desk.console_verdict(args, setup)


# Several boards at once (--device twice, or --all) -----------------------------------


def check_several(args: argparse.Namespace, setup: Any) -> None:
    """What several boards at once cannot do, refused before anything is read or sent."""
    for given, why in (
        (args.loop is not None, "--loop watches one board"),
        (bool(args.record), "--record writes one board's session"),
        (setup is not None, "--console follows one board's serial line"),
        (bool(args.save_script), "--save-script writes one board's script"),
    ):
        if given:
            raise UsageError(f"{why}: give one --device with it, not several boards")


def run_several(args: argparse.Namespace, ready: Any, setup: Any) -> int:
    """Boot every board at once; one line per board as it ends, then one table.

    Exit status: 0 when every board booted, else the highest failing board's code.
    """
    from felboot import api
    from felboot.progress import PlainLines

    specs = api.select_boards(
        device_specs(args), every=bool(getattr(args, "all_devices", False)), wait=args.wait
    )
    lock = threading.Lock()

    def progress(label: str, total: int) -> api.TransferProgress:
        if args.quiet or args.json:
            return api.TransferProgress()
        # Plain lines, never bars: several bars on one terminal overwrite each other.
        return api.TransferProgress(lines=PlainLines(f"{label}: upload", total, sys.stderr, _now))

    def done(result: api.BoardResult) -> None:
        if args.json or args.quiet:
            return
        with lock:
            print(f"{result.label}: {result_text(result)}", file=sys.stderr, flush=True)

    if args.wait and not args.quiet:
        print(f"waiting for {len(specs)} boards in FEL mode: press their FEL buttons now",
              file=sys.stderr)  # fmt: skip
    results = api.run_boards(specs, ready, wait=args.wait, progress=progress, done=done)
    if args.json:
        print(json_document({"boards": [result.to_dict() for result in results]}))
    else:
        print("\n".join(summary_table(results)))
    return max((result.exit_code for result in results), default=0)


def _now() -> float:
    return time.monotonic()


def result_text(result: Any) -> str:
    """ "ok: DRAM 1 GiB, U-Boot started in 2.1 s" or "failed (exit 6): <the error>"."""
    if result.error is not None:
        return f"failed (exit {result.exit_code}): {result.error}"
    dram = result.report.dram
    return f"ok: DRAM {format_size(dram.size)} ({dram.source}), U-Boot started"


def summary_table(results: Iterable[Any]) -> Iterator[str]:
    """board, port, SID, result, time: one row per board, columns aligned."""
    header = ("board", "port", "SID", "result", "time")
    rows = [header] + [
        (
            result.report.board.description
            if result.report is not None and result.report.board is not None
            else result.spec,
            result.port or "-",
            result.sid or "-",
            "ok" if result.error is None else f"failed (exit {result.exit_code})",
            format_seconds(result.seconds),
        )
        for result in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        yield "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
