"""Command line: argument parsing and printing only.

Every command handler takes the parsed arguments and returns an exit code.
FelbootError is turned into one line on stderr and the error's exit code; any
other exception is a bug and says so (``--debug`` shows the traceback).
Heavy modules (pyusb, unicorn, tqdm, construct users) are imported inside the
handlers so that ``felboot --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from felboot import __version__
from felboot.commands import bootchain, memory, socs, xen
from felboot.errors import FelbootError

if TYPE_CHECKING:
    pass

log = logging.getLogger("felboot")

Handler = Callable[[argparse.Namespace], int]


def add_run_arguments(parser: argparse.ArgumentParser, *, device: bool) -> None:
    parser.add_argument(
        "images", nargs="+", metavar="FILE", help="XEN KERNEL DTB (--no-xen: KERNEL DTB)"
    )
    board = parser.add_mutually_exclusive_group()
    board.add_argument(
        "--board",
        help="board or SoC family profile (see 'felboot boards'); default: the one the DTB's "
        "compatible names",
    )
    board.add_argument("--board-file", metavar="FILE", help="a board profile of your own (TOML)")
    parser.add_argument(
        "--uboot",
        action="append",
        default=[],
        metavar="FILE",
        help="u-boot-sunxi-with-spl.bin, or twice: sunxi-spl.bin and the U-Boot .itb "
        "(default: the profile's Debian build, else the build whose DT name matches the DTB, "
        "in $FELBOOT_UBOOT_PATH, then /usr/lib/u-boot)",
    )
    parser.add_argument(
        "--uboot-for-other-board",
        action="store_true",
        help="use a U-Boot built for another board of the same SoC (a warning, not an error)",
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


INSPECT_JSON_HELP = """\
felboot --json inspect FILE... prints one object per file (a list for several).
Every number is a plain int (addresses, ids, checksums and sizes; no hex strings).
Always: path, size, kind, problems (list of str), warnings (list of str).
kind and its keys:
  spl               spl: {length, checksum, checksum_ok, spl_version, uboot_version,
                    dt_name, soc, soc_id, dram_size_mib, has_fel_script_fields}
  u-boot-with-spl   spl as above, main_offset, main (a legacy-image or fit object)
  legacy-image      name, type, os, arch, compression, load, entry, data_size, timestamp,
                    header_crc_ok, data_crc_ok; uboot_version (U-Boot), payload_format
                    (ramdisk), script (the text of a boot script)
  fit               description, fdt_size, default, selected, uboot_version,
                    images: {name: {description, type, arch, os, compression, load,
                    entry, size, external}}, configurations: {name: {description,
                    firmware, loadables, fdt, soc}}
  zImage, Image, gzip-Image
                    type, arch ("arm"/"arm64"), file_size, load_size, compressed,
                    text_offset, flags, place_anywhere (arm64), os ("Xen"/"Linux"/null:
                    neither's markers), xen_version, xen_markers, linux_version; not Xen:
                    xen_support (CONFIG_XEN, true/false/null), config_source; arm32 not
                    Xen: lpae (true/false/null), lpae_source
  dtb               totalsize, model, compatible, console (Xen's dtuart path), board,
                    soc, soc_compatible, soc_id
  ramdisk           compression (zstd, gzip, xz, lz4, lzma, bzip2, lzo, cpio)
  unknown           magic (the first 8 bytes, hex)
"""


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

    _add(sub, "list", memory.cmd_list, "list boards in FEL mode (bus:addr, port, SoC, SID)")
    _add(sub, "version", memory.cmd_version, "show the SoC and boot ROM version")
    _add(sub, "sid", memory.cmd_sid, "show the SoC's unique id (SID e-fuses)")
    p = _add(sub, "read", memory.cmd_read, "read memory to a file ('-' for stdout)")
    p.add_argument("address")
    p.add_argument("length")
    p.add_argument("file")
    p = _add(sub, "write", memory.cmd_write, "write files to memory (one progress bar for all)")
    p.add_argument("pairs", nargs="+", metavar="ADDR FILE", help="address and file, repeated")
    p = _add(sub, "hexdump", memory.cmd_hexdump, "print memory as a hex dump")
    p.add_argument("address")
    p.add_argument("length")
    p = _add(sub, "exec", memory.cmd_exec, "call ARM code at ADDR (it must return with bx lr)")
    p.add_argument("address")
    p.add_argument(
        "--no-return",
        action="store_true",
        help="the code does not return to FEL (a bare-metal program): do not wait for it",
    )
    p = _add(sub, "readl", memory.cmd_readl, "read a 32-bit register")
    p.add_argument("address")
    p = _add(sub, "writel", memory.cmd_writel, "write a 32-bit register")
    p.add_argument("address")
    p.add_argument("value")
    _add(sub, "reset", memory.cmd_reset, "reset the board through the watchdog")
    p = _add(
        sub,
        "inspect",
        bootchain.cmd_inspect,
        "show what felboot sees in image files (no device needed)",
        "For each file: Xen or Linux (zImage, Image, gzip'ed Image; arm32/arm64; LPAE when "
        "it can tell), the board and SoC a DTB is for and the UART Xen's dtuart would use, "
        "the board an SPL or u-boot-sunxi-with-spl.bin is for (DT name, SoC, SPL version, "
        "FIT configurations), a legacy image's type, and problems. Exits 1 when a file has "
        "problems (warnings do not count).",
    )
    # The JSON shape, kept in the help so scripts can rely on it without reading code.
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = INSPECT_JSON_HELP
    p.add_argument("files", nargs="+", metavar="FILE")
    _add(sub, "boards", xen.cmd_boards, "list the board profiles")
    _add(
        sub,
        "socs",
        socs.cmd_socs,
        "list the SoCs felboot knows, like sunxi-fel --list-socs (no device needed)",
        "Each SoC's id, name and aliases, whether it boots arm64 (RVBAR + RMR), its DRAM "
        "base, and where its SPL goes and how large it may be.",
    )
    p = _add(
        sub,
        "plan",
        xen.cmd_plan,
        "show where Xen, dom0, the initrd and the DTB would go (no device needed)",
    )
    add_run_arguments(p, device=False)
    p = _add(
        sub,
        "run",
        xen.cmd_run,
        "boot Xen and dom0 (or Linux with --no-xen): SPL, U-Boot, images, boot script, start",
    )
    add_run_arguments(p, device=True)
    p.add_argument("--dry-run", action="store_true", help="plan and print, send nothing")
    p.add_argument("--save-script", metavar="DIR", help="also write boot.cmd and boot.scr to DIR")
    p = _add(sub, "spl", bootchain.cmd_spl, "run an SPL: DRAM comes up, the board stays in FEL")
    p.add_argument("file", help="sunxi-spl.bin or u-boot-sunxi-with-spl.bin")
    p = _add(
        sub,
        "uboot",
        bootchain.cmd_uboot,
        "run the SPL, place U-Boot and extra files, hand over a boot script, start U-Boot",
    )
    p.add_argument(
        "files", nargs="+", metavar="FILE", help="u-boot-sunxi-with-spl.bin, or SPL and .itb"
    )
    p.add_argument("--script", metavar="FILE@ADDR", help="boot.scr (or #=uEnv text) for U-Boot")
    p.add_argument(
        "--write", action="append", default=[], metavar="FILE@ADDR", help="extra file to load"
    )
    _add(
        sub,
        "info",
        bootchain.cmd_info,
        "SoC, SID, and the SPL header left in SRAM (DRAM size, script)",
    )
    p = _add(
        sub, "script", xen.cmd_script, "write boot.cmd and boot.scr for a plan (no device needed)"
    )
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
