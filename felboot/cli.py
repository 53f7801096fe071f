"""Command line: argument parsing and printing only.

Every command handler takes the parsed arguments and returns an exit code.
FelbootError is turned into one line on stderr and the error's exit code; any
other exception is a bug and says so (``--debug`` shows the traceback).
Heavy modules (pyusb, unicorn, tqdm, construct users) are imported inside the
handlers so that ``felboot --help`` stays fast.
"""

from __future__ import annotations

import argparse
import codecs
import errno
import json
import logging
import math
import os
import re
import select
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from felboot import __version__
from felboot.errors import FelbootError, UsageError

log = logging.getLogger("felboot")

Handler = Callable[[argparse.Namespace], int]


def add_run_arguments(parser: argparse.ArgumentParser, *, device: bool) -> None:
    parser.add_argument(
        "images",
        nargs="*",
        metavar="FILE",
        help="XEN KERNEL DTB (--no-xen: KERNEL DTB); default: xen, kernel, dtb of felboot.toml",
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
        default=None,
        help="safe (default): clear of U-Boot's memory; recipe: the Xen wiki's addresses",
    )
    parser.add_argument(
        "--reserve-top", metavar="SIZE", help="DRAM kept free below the top for U-Boot (128M)"
    )
    parser.add_argument(
        "--xen-args",
        default=None,
        help="added to the profile's Xen command line (an option named in both: yours)",
    )
    parser.add_argument(
        "--dom0-args", default=None, help="added to the profile's dom0 command line"
    )
    parser.add_argument("--dom0-mem", metavar="SIZE", help="dom0_mem= for Xen, e.g. 512M")
    parser.add_argument("--no-xen", action="store_true", help="boot KERNEL DTB without Xen")
    parser.add_argument(
        "--domu",
        action="append",
        default=[],
        metavar="SPEC",
        help="a dom0less domU (repeatable): kernel=FILE[,ramdisk=FILE][,mem=256M][,vcpus=1]"
        '[,args="..."][,vpl011=yes|no][,dtb=PARTIAL.dtb][,passthrough=/dt/path]; a value in '
        "double quotes may hold commas",
    )
    parser.add_argument(
        "--no-dom0",
        action="store_true",
        default=None,  # None: not given, so felboot.toml's no_dom0 may fill it
        help="dom0less only: XEN DTB and the --domu domains",
    )
    parser.add_argument(
        "--passthrough",
        action="append",
        default=[],
        metavar="PATH",
        help="mark this host DTB node xen,passthrough (repeatable; checked to exist)",
    )
    parser.add_argument(
        "--from-imagebuilder",
        metavar="CONFIG",
        help="take the images, command lines and domUs from an ImageBuilder config (read as "
        "data, never run); options given here override it",
    )
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
felboot --json inspect FILE... prints {"schema": 1, "files": [...]}, one object per file.
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

WAIT_HELP = (
    "wait for the board to appear (press the FEL button now): --wait alone waits forever, "
    "--wait 30 up to 30 s"
)
# A number right after --wait is its value; anything else is the next argument
# (the command, an option, a file): `felboot --wait run ...` waits forever.
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?|[+-]?(nan|inf|infinity)", re.IGNORECASE)
_WAIT_FOREVER = ""  # what main() turns a bare --wait into: --wait=


class ArgumentError(Exception):
    """argparse refused the command line; the message is argparse's, exit code 2."""


class DeviceOption(argparse.Action):
    """--device: the last one given is args.device; all of them, in order, args.devices.

    Before the command they go to ``devices``, after it to ``devices_after`` (the
    subcommand's namespace would replace the list); common.device_specs joins them.
    """

    def __init__(self, *args: Any, list_dest: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.list_dest = list_dest

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        setattr(
            namespace, self.list_dest, [*(getattr(namespace, self.list_dest, None) or []), values]
        )


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose refusals are one line (the house rule), not usage + message."""

    def error(self, message: str) -> NoReturn:
        unknown = message.removeprefix("unrecognized arguments: ").split()
        if message.startswith("unrecognized arguments: ") and "--load" in unknown:
            # run and plan load over FEL; only `script` writes for other media.
            raise ArgumentError(
                f"{message}: only 'felboot script' takes --load (run always loads over FEL); "
                "'felboot script --load tftp|mmc|usb -o DIR' writes a boot.scr that loads "
                "the images itself"
            )
        raise ArgumentError(f"{message} (see '{self.prog} --help')")


def wait_seconds(text: str) -> float:
    """--wait's value: a finite number of seconds >= 0; "" (a bare --wait) is forever."""
    if text == _WAIT_FOREVER:
        return math.inf
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds: give one such as 30, or leave it out to "
            "wait forever"
        )
    return seconds


def split_wait(argv: Sequence[str]) -> list[str]:
    """--wait takes the next word only when it is a number: `--wait run` is --wait, then run."""
    words = list(argv)
    out: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--":
            out += words[index - 1 :]
            break
        if word != "--wait":
            out.append(word)
        elif index < len(words) and _NUMBER.fullmatch(words[index]):
            out.append(f"--wait={words[index]}")
            index += 1
        else:
            out.append(f"--wait={_WAIT_FOREVER}")
    return out


def global_options(*, after_command: bool) -> argparse.ArgumentParser:
    """The options every command takes, before or after its name.

    The copy each command's parser gets has no defaults (SUPPRESS), so a value
    given before the command survives; -v counts into its own field, added up
    in main(), so `-v run -v` is -vv.
    """
    parser = Parser(add_help=False)
    group = parser.add_argument_group("global options (before or after the command)")

    def default(value: object) -> object:
        return argparse.SUPPRESS if after_command else value

    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        dest="verbose_after" if after_command else "verbose",
        default=default(0),
        help="log what felboot does (felboot: info: ...); -vv also each FEL request",
    )
    group.add_argument(
        "-q", "--quiet", action="store_true", default=default(False), help="no progress output"
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="show tracebacks on errors",
    )
    group.add_argument(
        "--json", action="store_true", default=default(False), help="print results as JSON"
    )
    group.add_argument(
        "--config",
        metavar="FILE",
        default=default(None),
        help="project config instead of the felboot.toml found from here upwards",
    )
    group.add_argument(
        "--device",
        action=DeviceOption,
        list_dest="devices_after" if after_command else "devices",
        default=default(None),  # config.RUN_DEFAULTS: "usb" unless felboot.toml says otherwise
        metavar="SPEC",
        help="usb (default: the only FEL board), usb:BUS:ADDR, usb:port=1-1.2, usb:sid=HEX, "
        "sim[:soc=a20,dram=1G] (built-in device model), replay:FILE (a recorded transcript); "
        "run: repeat it to boot several boards at once",
    )
    group.add_argument(
        "--all",
        action="store_true",
        dest="all_devices",
        default=default(False),
        help="run: boot every FEL board on the bus at once",
    )
    group.add_argument(
        "--wait",
        nargs="?",
        type=wait_seconds,
        const=math.inf,
        default=default(None),
        metavar="SECONDS",
        help=WAIT_HELP,
    )
    group.add_argument(
        "--record",
        metavar="FILE",
        default=default(None),
        help="record every USB transfer of this run to FILE (written under a temporary name, "
        "renamed at the end, kept when the run fails)",
    )
    group.add_argument(
        "--force",
        action="store_true",
        default=default(False),
        help="let --record replace an existing file",
    )
    if not after_command:
        add_sunxi_fel_options(parser)
    return parser


_BUS_DEV = re.compile(r"(\d{1,3}):(\d{1,3})")


def bus_dev_device(text: str) -> str:
    """sunxi-fel's -d BUS:DEVNUM as a --device spec."""
    match = _BUS_DEV.fullmatch(text)
    if not match or int(match[1]) == 0 or int(match[2]) == 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not BUS:DEVNUM: give it as 'felboot list' shows it, e.g. -d 1:7"
        )
    return f"usb:{text}"


def sid_device(text: str) -> str:
    """sunxi-fel's --sid SID as a --device spec (checked by devices.parse_device_spec)."""
    return f"usb:sid={text}"


def add_sunxi_fel_options(parser: argparse.ArgumentParser) -> None:
    """sunxi-fel's options, before the command as there (fel.c main())."""
    group = parser.add_argument_group("sunxi-fel's options (before the command)")
    group.add_argument(
        "-l",
        "--list",
        action="store_true",
        dest="list_devices",
        help="list the boards in FEL mode and stop (felboot list)",
    )
    group.add_argument(
        "-d",
        "--dev",
        type=bus_dev_device,
        dest="device",
        metavar="BUS:DEVNUM",
        help="the board at this USB bus and device number (--device usb:BUS:DEVNUM)",
    )
    group.add_argument(
        "--sid",
        type=sid_device,
        dest="device",
        metavar="SID",
        help="the board with this SID (--device usb:sid=SID)",
    )
    group.add_argument(
        "-p",
        "--progress",
        action="store_true",
        help="accepted and ignored: felboot shows progress by default (-q hides it)",
    )


def _add(
    subparsers: Any, name: str, handler: Handler, help_text: str, description: str = ""
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help_text,
        description=description or help_text,
        parents=[global_options(after_command=True)],
    )
    parser.set_defaults(handler=handler, command_name=name)
    return parser


def build_parser() -> argparse.ArgumentParser:
    # Imported here, not at the top: a Ctrl-C during these imports is then inside main().
    from felboot.commands import bootchain, desk, memory, socs, udev, xen

    parser = Parser(
        prog="felboot",
        description="Boot Allwinner (sunxi) boards over USB FEL: SPL, U-Boot, Xen and dom0.",
        epilog="Numbers accept 0x.., decimal and K/M/G suffixes (0x7ea00000, 4096, 64K, 1G). "
        "sunxi-fel's spellings work too (ver, hex, exe, wdreset, multiwrite; 'felboot manpage' "
        "lists them), and the commands that talk to a board chain on one line, one device "
        "session: felboot spl u-boot-sunxi-with-spl.bin write 0x42000000 prog.bin exec 0x42000000",
        parents=[global_options(after_command=False)],
    )
    parser.add_argument("--version", action="version", version=f"felboot {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=Parser)

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
    add_sunxi_fel_commands(sub)
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
    add_desk_options(p)
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
    add_desk_options(p)
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
    p.add_argument(
        "--load",
        default="fel",
        metavar="fel|tftp|mmc[:DEV:PART]|usb[:DEV:PART]",
        help="fel (default): the images are placed over FEL; else the script loads each image "
        "itself and DIR gets them too (a TFTP root, or the card's first partition: 0:1)",
    )
    desk.register(sub, _add)
    udev.register(sub, _add)
    return parser


def add_sunxi_fel_commands(sub: Any) -> None:
    """The verbs sunxi-fel has and felboot's everyday set lacked (fel.c's usage text)."""
    from felboot.commands import completion, memory

    p = _add(sub, "dump", memory.cmd_dump, "print memory to stdout as raw bytes (sunxi-fel dump)")
    p.add_argument("address")
    p.add_argument("length")
    p = _add(sub, "fill", memory.cmd_fill, "fill memory with one byte value")
    p.add_argument("address")
    p.add_argument("length")
    p.add_argument("value", help="the byte, 0-0xff")
    p = _add(sub, "clear", memory.cmd_clear, "fill memory with zeros")
    p.add_argument("address")
    p.add_argument("length")
    p = _add(
        sub,
        "memmove",
        memory.cmd_memmove,
        "copy LEN bytes from SRC to DST on the device (overlap allowed; words where aligned)",
    )
    p.add_argument("dst", metavar="DST")
    p.add_argument("src", metavar="SRC")
    p.add_argument("size", metavar="LEN")
    p = _add(
        sub,
        "reset64",
        memory.cmd_reset64,
        "warm-reset an arm64 SoC into AArch64 at ADDR (RVBAR + RMR); the board leaves FEL",
    )
    p.add_argument("address")
    _add(sub, "sid-dump", memory.cmd_sid_dump, "print every SID e-fuse section (sunxi-fel's map)")
    _add(
        sub,
        "sid-registers",
        memory.cmd_sid_registers,
        "read the SID key through the SID controller's registers (the H3 method) on any SoC",
    )
    p = _add(
        sub,
        "completion",
        completion.cmd_completion,
        "print the shell completion script (needs argcomplete)",
        'Add eval "$(felboot completion bash)" to ~/.bashrc (zsh: ~/.zshrc with zsh; fish: '
        "felboot completion fish > ~/.config/fish/completions/felboot.fish).",
    )
    p.add_argument("shell", choices=completion.SHELLS)
    _add(
        sub,
        "manpage",
        completion.cmd_manpage,
        "print felboot(1), the man page made from this parser",
        "felboot manpage > felboot.1 && man ./felboot.1, or install it as "
        "/usr/local/share/man/man1/felboot.1",
    )


def add_desk_options(parser: argparse.ArgumentParser) -> None:
    """--loop and the serial console, for the commands that start a board (run, uboot)."""
    from felboot.console import add_console_options

    parser.add_argument(
        "--loop",
        nargs="?",
        type=int,
        const=0,
        default=None,
        metavar="N",
        help="boot again every time the board re-enters FEL (reset it with FEL held), with the "
        "files as they are then; N: stop after N rounds; Ctrl-C ends it",
    )
    add_console_options(parser)


# Logging ----------------------------------------------------------------------------

TRACE_LOGGER = "felboot.trace"  # one line per FEL request (felboot.fel), shown from -vv


class LogFormatter(logging.Formatter):
    """ "felboot: info: ...", the shape of felboot's own warning and error lines."""

    def format(self, record: logging.LogRecord) -> str:
        level = "trace" if record.name == TRACE_LOGGER else record.levelname.lower()
        text = f"felboot: {level}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is at the time (tests swap it between runs)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # a log line must never end the command
            self.handleError(record)


def configure_logging(verbosity: int) -> None:
    """-v: info, -vv: debug and the FEL request trace; warnings always."""
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logger = logging.getLogger("felboot")
    for handler in [h for h in logger.handlers if isinstance(h, StderrHandler)]:
        logger.removeHandler(handler)  # main() may run more than once in a process
    handler = StderrHandler()
    handler.setFormatter(LogFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)


# Output --------------------------------------------------------------------------------


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe (or socket) whose reader has gone: the `| head` case."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)  # POLLERR/POLLHUP are always reported
        events = poller.poll(0)
    except (AttributeError, OSError, ValueError):
        return True  # no way to tell (no poll, no file descriptor): take the usual cause
    return any(mask & (select.POLLERR | select.POLLHUP) for _, mask in events)


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush cannot fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):
        pass  # a stdout without a file descriptor (tests) has nothing to flush to the OS


def _escape_unencodable(error: UnicodeError) -> tuple[str | bytes, int]:
    """Undecodable bytes of a file name go out as they came in; other misfits as \\x.. escapes."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    out = b""
    for char in error.object[error.start : error.end]:
        if 0xDC80 <= ord(char) <= 0xDCFF:  # surrogateescape's stand-in for one byte of argv
            out += bytes([ord(char) - 0xDC00])
        else:
            out += char.encode("ascii", "backslashreplace")
    return out, error.end


def _setup_streams() -> None:
    """Any file name prints, whatever its encoding (argv holds undecodable bytes as surrogates)."""
    codecs.register_error("felboot", _escape_unencodable)
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) in (
            "strict",
            "backslashreplace",
        ):
            reconfigure(errors="felboot")


def _json_requested(argv: Sequence[str]) -> bool:
    words = list(argv)
    return "--json" in (words[: words.index("--")] if "--" in words else words)


def _fail(
    line: str, message: str, code: int, *, as_json: bool, kind: str, culprit: str | None = None
) -> int:
    """The one line on stderr; with --json also one object on stdout (the error contract)."""
    print(f"felboot: {line}", file=sys.stderr)
    if as_json:
        from felboot.commands.common import JSON_SCHEMA

        error = {"message": message, "exit_code": code, "kind": kind, "culprit": culprit}
        print(json.dumps({"schema": JSON_SCHEMA, "error": error}), flush=True)
    return code


# Main ------------------------------------------------------------------------------

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as the shell reports a Ctrl-C'd command
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE: what the shell shows for git or cat in `| head`
EXIT_BUG = 70  # EX_SOFTWARE (sysexits.h)


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    as_json = _json_requested(words)
    debug = "--debug" in words
    try:
        _setup_streams()
        try:
            code = _main(words)
            try:
                sys.stdout.flush()  # here, not at exit: a closed pipe or a full disk is seen now
            except BrokenPipeError:
                raise
            except OSError as error:
                raise _StdoutFailed(error) from None
            return code
        except FelbootError as error:
            if debug:
                raise
            message = str(error)
            return _fail(
                f"error: {message}",
                message,
                error.exit_code,
                as_json=as_json,
                kind=type(error).__name__,
                culprit=error.culprit,
            )
        except BrokenPipeError:
            if not _stdout_reader_gone():
                raise
            _drop_stdout()
            return EXIT_PIPE_CLOSED
        except (_StdoutFailed, OSError) as error:
            cause = error.error if isinstance(error, _StdoutFailed) else error
            if not isinstance(error, _StdoutFailed) and not _stdout_failed(cause):
                raise
            _drop_stdout()
            message = f"cannot write to stdout: {cause.strerror}: check where it goes"
            print(f"felboot: error: {message}", file=sys.stderr)
            return UsageError.exit_code
    except KeyboardInterrupt:
        return _fail(
            "interrupted", "interrupted", EXIT_INTERRUPTED, as_json=as_json, kind="Interrupted"
        )
    except Exception as error:  # a bug: say so in one line, traceback only on request
        if debug:
            raise
        message = (
            f"internal error ({type(error).__name__}: {error}); this is a bug: "
            "rerun with --debug and report the traceback"
        )
        return _fail(message, message, EXIT_BUG, as_json=as_json, kind="InternalError")


class _StdoutFailed(Exception):
    """Flushing stdout failed (not a closed pipe): a full disk, /dev/full."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _stdout_failed(error: OSError) -> bool:
    """Whether ``error``, raised by a handler, is a write to stdout failing (full disk).

    Files felboot writes itself are named in their own errors; only a stdout
    that fills up mid-command reaches here as a bare OSError with no file name.
    """
    return error.filename is None and error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def _parse(parser: argparse.ArgumentParser, words: list[str]) -> argparse.Namespace:
    try:
        args = parser.parse_args(words)
    except ArgumentError as error:
        named = re.match(r"argument ([^:]+): ", str(error))
        raise UsageError(str(error), culprit=named[1] if named else None) from None
    args.verbose += getattr(args, "verbose_after", 0)
    if getattr(args, "list_devices", False):  # sunxi-fel's -l: list, whatever follows
        from felboot.commands import memory

        args.handler, args.command_name = memory.cmd_list, "list"
    return args


def _complete(parser: argparse.ArgumentParser) -> None:
    """Answer the shell's Tab (argcomplete's protocol, only when the shell asks)."""
    try:
        import argcomplete
    except ImportError:
        return  # no completions rather than an error in the middle of a command line
    argcomplete.autocomplete(parser)


def _main(words: list[str]) -> int:
    from felboot.commands import chain

    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:
        _complete(parser)
    segments = chain.split_commands(parser, split_wait(words))
    steps = [_parse(parser, segment) for segment in segments]
    args = steps[0]
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    # Each step carries the -v before the first command; the later ones add only their own.
    configure_logging(args.verbose + sum(getattr(s, "verbose_after", 0) for s in steps[1:]))
    from felboot.commands import desk
    from felboot.commands.common import check_record_path

    if len(steps) > 1:
        chain.share_session(steps)
    for step in steps:
        desk.configure(step)  # felboot.toml, the user file and FELBOOT_* fill what was not given
        check_record_path(step)
    if len(steps) > 1 and args.command_name != "list":
        return chain.run_chain(steps)
    return int(args.handler(args))
