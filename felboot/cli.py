"""Command line: argument parsing and printing only.

Every command handler takes the parsed arguments and returns an exit code.
FelbootError is turned into one line on stderr and the error's exit code; any
other exception is a bug and says so (``--debug`` shows the traceback).
Heavy modules (pyusb, unicorn, tqdm, construct users) are imported inside the
handlers so that ``felboot --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from felboot import __version__
from felboot.errors import FelbootError, UsageError
from felboot.units import parse_number

if TYPE_CHECKING:
    from felboot.fel import FelDevice

log = logging.getLogger("felboot")

Handler = Callable[[argparse.Namespace], int]


# Helpers shared by handlers -------------------------------------------------


def read_input_file(path: str, what: str = "file") -> bytes:
    """Read a user-named file, or raise a UsageError that names it."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{what} {path} is a directory: name a file") from None
    except OSError as error:
        raise UsageError(f"cannot read {what} {path}: {error.strerror}") from None


def write_output_file(path: str, data: bytes | bytearray) -> None:
    try:
        if path == "-":
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            Path(path).write_bytes(data)
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror}") from None


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print a result: JSON with --json, else the human text."""
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(text)


@contextmanager
def open_device(args: argparse.Namespace) -> Iterator[FelDevice]:
    """The FelDevice selected by --device/--wait/--record, closed afterwards."""
    from felboot.devices import open_transport
    from felboot.fel import FelDevice
    from felboot.transcript import ReplayTransport

    record = Path(args.record) if args.record else None
    if args.wait and not args.quiet:
        limit = "" if args.wait == float("inf") else f" (up to {args.wait:g} s)"
        print(f"waiting for a board in FEL mode{limit}: press its FEL button now", file=sys.stderr)
    note = "felboot " + " ".join(sys.argv[1:]) if record else None
    transport = open_transport(args.device, wait=args.wait, record=record, note=note)
    try:
        yield FelDevice(transport)
        if isinstance(transport, ReplayTransport):
            transport.finish()  # a replay that stops short of its transcript diverged too
    finally:
        transport.close()


def hexdump_lines(address: int, data: bytes | bytearray) -> Iterator[str]:
    for offset in range(0, len(data), 16):
        row = data[offset : offset + 16]
        hex_part = " ".join(f"{byte:02x}" for byte in row).ljust(47)
        text = "".join(chr(byte) if 0x20 <= byte < 0x7F else "." for byte in row)
        yield f"{address + offset:08x}: {hex_part}  {text}"


# Everyday FEL commands ---------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from felboot.devices import NO_DEVICE, list_devices

    listings = list_devices()
    if args.json:
        print(json.dumps([listing.to_dict() for listing in listings], indent=2))
    elif not listings:
        print(NO_DEVICE)
    else:
        for listing in listings:
            print(listing.summary())
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    from felboot.soc import soc_label

    with open_device(args) as device:
        version = device.version()
    data = {
        "device": device.transport.description,
        "soc": soc_label(version.soc_id),
        "soc_id": version.soc_id,
        "firmware": version.firmware,
        "protocol": version.protocol,
        "scratchpad": version.scratchpad,
    }
    text = (
        f"{data['soc']} (SoC id 0x{version.soc_id:04x}) on {data['device']}: "
        f"FEL protocol {version.protocol}, firmware {version.firmware}, "
        f"scratchpad 0x{version.scratchpad:x}"
    )
    emit(args, data, text)
    return 0


def cmd_sid(args: argparse.Namespace) -> int:
    from felboot.devices import format_sid

    with open_device(args) as device:
        sid = format_sid(device.sid())
    emit(args, {"sid": sid}, sid)
    return 0


def cmd_read(args: argparse.Namespace) -> int:
    from felboot.progress import progress_bar

    address = parse_number(args.address, "address")
    length = parse_number(args.length, "length")
    with open_device(args) as device, progress_bar(length, "read", args.quiet) as progress:
        data = device.read(address, length, progress)
    write_output_file(args.file, data)
    return 0


def parse_address_file_pairs(words: Sequence[str]) -> list[tuple[int, str, bytes]]:
    """ADDR FILE [ADDR FILE ...] -> (address, name, contents), all read before any transfer."""
    if len(words) % 2:
        raise UsageError(
            f"'{words[-1]}' has no partner: give address and file in pairs, e.g. 0x2000 spl.bin"
        )
    pairs = []
    for address_text, name in zip(words[0::2], words[1::2], strict=True):
        address = parse_number(address_text, "address")
        pairs.append((address, name, read_input_file(name)))
    return pairs


def cmd_write(args: argparse.Namespace) -> int:
    from felboot.fel import check_range
    from felboot.progress import progress_bar

    pairs = parse_address_file_pairs(args.pairs)
    for address, _name, data in pairs:
        check_range(address, len(data))
    total = sum(len(data) for _, _, data in pairs)
    with open_device(args) as device:
        for address, _name, data in pairs:  # refuse every unsafe range before sending any
            device.refuse_rom_state(address, len(data))
        with progress_bar(total, "write", args.quiet) as progress:
            for address, name, data in pairs:
                log.info("writing %s (%d bytes) to 0x%08x", name, len(data), address)
                device.write(address, data, progress)
    return 0


def cmd_hexdump(args: argparse.Namespace) -> int:
    address = parse_number(args.address, "address")
    length = parse_number(args.length, "length")
    with open_device(args) as device:
        data = device.read(address, length)
    for line in hexdump_lines(address, data):
        print(line)
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    address = parse_number(args.address, "address")
    with open_device(args) as device:
        device.execute(address)
    return 0


def cmd_readl(args: argparse.Namespace) -> int:
    address = parse_number(args.address, "address")
    with open_device(args) as device:
        value = device.readl(address)
    emit(args, {"address": address, "value": value}, f"0x{value:08x}")
    return 0


def cmd_writel(args: argparse.Namespace) -> int:
    address = parse_number(args.address, "address")
    value = parse_number(args.value, "value")
    if value >= 1 << 32:
        raise UsageError(f"value {args.value} does not fit in 32 bits")
    with open_device(args) as device:
        device.writel(address, value)
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    with open_device(args) as device:
        device.reset()
    print("reset requested through the watchdog: the board reboots from its boot media")
    return 0


# Images (no device) ------------------------------------------------------------


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


def cmd_inspect(args: argparse.Namespace) -> int:
    from felboot.images.identify import describe_file

    reports = [describe_file(Path(name)) for name in args.files]
    if args.json:
        print(json.dumps(reports if len(reports) > 1 else reports[0], indent=2))
    else:
        for report in reports:
            print("\n".join(tree_lines(report)))
    problems = [problem for report in reports for problem in report.get("problems", [])]
    for problem in problems:
        print(f"felboot: problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


# Xen + dom0 planning and booting --------------------------------------------------


def run_request(args: argparse.Namespace, need_uboot: bool) -> Any:
    """The parsed command line as a RunRequest (numbers parsed here, at the edge)."""
    from felboot.run import RunRequest

    images = list(args.images)
    expected = 2 if args.no_xen else 3
    if len(images) != expected:
        shape = "KERNEL DTB" if args.no_xen else "XEN KERNEL DTB"
        raise UsageError(f"expected {shape}, got {len(images)} file(s): {' '.join(images)}")
    xen = None if args.no_xen else Path(images.pop(0))
    return RunRequest(
        board=args.board,
        board_file=Path(args.board_file) if args.board_file else None,
        uboot=tuple(Path(path) for path in args.uboot),
        xen=xen,
        kernel=Path(images[0]),
        dtb=Path(images[1]),
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


def print_warnings(warnings: Sequence[str]) -> None:
    for warning in warnings:
        print(f"felboot: warning: {warning}", file=sys.stderr)


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


def cmd_plan(args: argparse.Namespace) -> int:
    from felboot.run import prepare, require_plan

    request = run_request(args, need_uboot=False)
    prepared = prepare(request)
    plan, _ = require_plan(prepared, prepared.inputs.board)
    print_warnings(plan.warnings)
    if args.json:
        print(plan.to_json())
    else:
        print("\n".join(plan_table(plan)))
    return 0


def cmd_script(args: argparse.Namespace) -> int:
    from felboot.run import prepare, require_plan, save_script

    prepared = prepare(run_request(args, need_uboot=False))
    plan, script = require_plan(prepared, prepared.inputs.board)
    print_warnings(plan.warnings)
    text_path, image_path = save_script(script, Path(args.output))
    print(f"wrote {text_path} and {image_path} (load boot.scr at 0x{plan.script_address:08x})")
    return 0


def run_summary(report: Any) -> Iterator[str]:
    from felboot.run import expected_console
    from felboot.units import format_size

    plan = report.plan
    yield f"{report.dram} - U-Boot started; the board has left FEL"
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

    request = run_request(args, need_uboot=not args.dry_run)
    prepared = prepare(request)
    if args.dry_run:
        plan, script = require_plan(prepared, prepared.inputs.board)
        print_warnings(plan.warnings)
        if args.save_script:
            save_script(script, Path(args.save_script))
        if args.json:
            print(plan.to_json())
        else:
            print("\n".join(plan_table(plan)))
            print("dry run: nothing was sent to a device")
        return 0
    if prepared.plan is not None:
        print_warnings(prepared.plan.warnings)
    with (
        open_device(args) as device,
        progress_bar(upload_size(prepared), "upload", args.quiet) as progress,
    ):
        report = execute(device, prepared, request, progress)
    if prepared.plan is None:
        print_warnings(report.plan.warnings)
    if args.save_script:
        save_script(report.script, Path(args.save_script))
    for note in report.notes:
        log.info("%s", note)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print("\n".join(run_summary(report)))
    return 0


# FEL boot chain -------------------------------------------------------------------------


def parse_file_at(text: str, what: str) -> tuple[str, int]:
    """FILE@ADDR -> (file, address)."""
    name, at, address = text.rpartition("@")
    if not at or not name:
        raise UsageError(f"{what} {text!r}: write it as FILE@ADDR, e.g. boot.scr@0x43100000")
    return name, parse_number(address, f"address of {name}")


def cmd_spl(args: argparse.Namespace) -> int:
    from felboot.boot import run_spl
    from felboot.images import load
    from felboot.images.spl import parse_spl
    from felboot.progress import progress_bar

    spl = parse_spl(load(Path(args.file)), args.file)
    with open_device(args) as device, progress_bar(spl.length, "SPL", args.quiet) as progress:
        result = run_spl(device, spl, progress=progress)
    emit(
        args,
        {"dram_size": result.dram.size, "dram_source": result.dram.source},
        f"SPL done, the board is back in FEL: {result.dram}",
    )
    return 0


def cmd_uboot(args: argparse.Namespace) -> int:
    from felboot.boot import boot_uboot
    from felboot.images.uboot import load_uboot
    from felboot.progress import progress_bar

    bundle = load_uboot([Path(name) for name in args.files])
    writes = []
    for item in args.write:
        name, address = parse_file_at(item, "--write")
        writes.append((address, read_input_file(name), name))
    script = None
    if args.script:
        name, address = parse_file_at(args.script, "--script")
        script = (address, read_input_file(name, "boot script"))
    total = sum(len(data) for _, data, _ in writes) + (len(script[1]) if script else 0)
    with (
        open_device(args) as device,
        progress_bar(total + len(bundle.spl.data) + 1024 * 1024, "upload", args.quiet) as progress,
    ):
        result = boot_uboot(device, bundle, writes=writes, script=script, progress=progress)
    emit(
        args,
        {"dram_size": result.dram.size, "dram_source": result.dram.source},
        f"{result.dram}; U-Boot started, the board has left FEL",
    )
    return 0


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
    text = "\n".join(tree_lines(data))
    emit(args, data, text)
    return 0


def add_run_arguments(parser: argparse.ArgumentParser, *, device: bool) -> None:
    parser.add_argument(
        "images", nargs="+", metavar="FILE", help="XEN KERNEL DTB (--no-xen: KERNEL DTB)"
    )
    board = parser.add_mutually_exclusive_group(required=True)
    board.add_argument("--board", help="board or SoC family profile (see 'felboot boards')")
    board.add_argument("--board-file", metavar="FILE", help="a board profile of your own (TOML)")
    parser.add_argument(
        "--uboot",
        action="append",
        default=[],
        metavar="FILE",
        help="u-boot-sunxi-with-spl.bin, or twice: sunxi-spl.bin and the U-Boot .itb "
        "(default: the profile's Debian build)",
    )
    parser.add_argument("--initrd", metavar="FILE", help="ramdisk for dom0 (or Linux)")
    parser.add_argument("--dram-size", metavar="SIZE", help="override the DRAM size (e.g. 1G)")
    parser.add_argument(
        "--layout",
        choices=("safe", "recipe"),
        default="safe",
        help="safe (default): clear of U-Boot's memory; recipe: the Xen wiki's addresses",
    )
    parser.add_argument(
        "--reserve-top", metavar="SIZE", help="DRAM kept free below the top for U-Boot (128M)"
    )
    parser.add_argument("--xen-args", default="", help="added to the profile's Xen command line")
    parser.add_argument("--dom0-args", default="", help="added to the profile's dom0 command line")
    parser.add_argument("--dom0-mem", metavar="SIZE", help="dom0_mem= for Xen, e.g. 512M")
    parser.add_argument("--no-xen", action="store_true", help="boot KERNEL DTB without Xen")
    parser.add_argument(
        "--no-compress",
        action="store_true",
        help="send an arm64 dom0 Image as it is (default: gzip, which Xen inflates)",
    )
    parser.add_argument(
        "--script-address",
        default=hex(0x43100000),
        metavar="ADDR",
        help="where boot.scr goes (default 0x43100000, Debian's fel_scriptaddr)",
    )


# Parser ------------------------------------------------------------------------


def _add(
    subparsers: Any, name: str, handler: Handler, help_text: str, description: str = ""
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help_text, description=description or help_text
    )
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="felboot",
        description="Boot Allwinner (sunxi) boards over USB FEL: SPL, U-Boot, Xen and dom0.",
        epilog="Numbers accept 0x.., decimal and K/M/G suffixes (0x7ea00000, 4096, 64K, 1G).",
    )
    parser.add_argument("--version", action="version", version=f"felboot {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument(
        "--device",
        default="usb",
        metavar="SPEC",
        help="usb (default: the only FEL board), usb:BUS:ADDR, usb:port=1-1.2, usb:sid=HEX, "
        "sim[:soc=a20,dram=1G] (built-in device model), replay:FILE (a recorded transcript)",
    )
    parser.add_argument(
        "--wait",
        nargs="?",
        type=float,
        const=float("inf"),
        default=None,
        metavar="SECONDS",
        help="wait for the board to appear (press the FEL button now); no value: wait forever",
    )
    parser.add_argument(
        "--record", metavar="FILE", help="record every USB transfer of this run to FILE"
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    _add(sub, "list", cmd_list, "list boards in FEL mode (bus:addr, port, SoC, SID)")
    _add(sub, "version", cmd_version, "show the SoC and boot ROM version")
    _add(sub, "sid", cmd_sid, "show the SoC's unique id (SID e-fuses)")
    p = _add(sub, "read", cmd_read, "read memory to a file ('-' for stdout)")
    p.add_argument("address")
    p.add_argument("length")
    p.add_argument("file")
    p = _add(sub, "write", cmd_write, "write files to memory (one progress bar for all)")
    p.add_argument("pairs", nargs="+", metavar="ADDR FILE", help="address and file, repeated")
    p = _add(sub, "hexdump", cmd_hexdump, "print memory as a hex dump")
    p.add_argument("address")
    p.add_argument("length")
    p = _add(sub, "exec", cmd_exec, "call ARM code at ADDR (it must return with bx lr)")
    p.add_argument("address")
    p = _add(sub, "readl", cmd_readl, "read a 32-bit register")
    p.add_argument("address")
    p = _add(sub, "writel", cmd_writel, "write a 32-bit register")
    p.add_argument("address")
    p.add_argument("value")
    _add(sub, "reset", cmd_reset, "reset the board through the watchdog")
    p = _add(
        sub,
        "inspect",
        cmd_inspect,
        "show what felboot sees in image files (no device needed)",
        "SPL header and checksum, DT name, U-Boot image or FIT configurations with their "
        "load/entry addresses, kernel/Xen/DTB kind and size. Exits 1 when a file has problems.",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    _add(sub, "boards", cmd_boards, "list the board profiles")
    p = _add(
        sub,
        "plan",
        cmd_plan,
        "show where Xen, dom0, the initrd and the DTB would go (no device needed)",
    )
    add_run_arguments(p, device=False)
    p = _add(
        sub,
        "run",
        cmd_run,
        "boot Xen and dom0 (or Linux with --no-xen): SPL, U-Boot, images, boot script, start",
    )
    add_run_arguments(p, device=True)
    p.add_argument("--dry-run", action="store_true", help="plan and print, send nothing")
    p.add_argument("--save-script", metavar="DIR", help="also write boot.cmd and boot.scr to DIR")
    p = _add(sub, "spl", cmd_spl, "run an SPL: DRAM comes up, the board stays in FEL")
    p.add_argument("file", help="sunxi-spl.bin or u-boot-sunxi-with-spl.bin")
    p = _add(
        sub,
        "uboot",
        cmd_uboot,
        "run the SPL, place U-Boot and extra files, hand over a boot script, start U-Boot",
    )
    p.add_argument(
        "files", nargs="+", metavar="FILE", help="u-boot-sunxi-with-spl.bin, or SPL and .itb"
    )
    p.add_argument("--script", metavar="FILE@ADDR", help="boot.scr (or #=uEnv text) for U-Boot")
    p.add_argument(
        "--write", action="append", default=[], metavar="FILE@ADDR", help="extra file to load"
    )
    _add(sub, "info", cmd_info, "SoC, SID, and the SPL header left in SRAM (DRAM size, script)")
    p = _add(sub, "script", cmd_script, "write boot.cmd and boot.scr for a plan (no device needed)")
    add_run_arguments(p, device=False)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="directory to write to")
    return parser


def configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    configure_logging(args.verbose)
    try:
        return int(args.handler(args))
    except FelbootError as error:
        if args.debug:
            raise
        print(f"felboot: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("felboot: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: say so in one line, traceback only on request
        if args.debug:
            raise
        print(
            f"felboot: internal error ({type(error).__name__}: {error}); this is a bug: "
            "rerun with --debug and report the traceback",
            file=sys.stderr,
        )
        return 70
