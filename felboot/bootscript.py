"""Plan -> boot.cmd text -> boot.scr bytes, pure.

The script follows the Xen wiki's Allwinner recipe, corrected by what booting
Debian's Xen 4.17 showed (fel.md, "Boot-recipe pitfalls"):

* ``fdt_high`` all ones tells bootz/booti to leave the DTB where it is; a
  32-bit U-Boot needs 0xffffffff, a 64-bit one 0xffffffffffffffff;
* the DTB gets room (``fdt resize``) for what the script adds under /chosen:
  Xen's command line (``xen,xen-bootargs``) and one node per module with
  ``compatible``, ``reg`` (address and size, one cell each: /chosen gets
  #address-cells = #size-cells = 1) and, for the kernel, dom0's ``bootargs``;
* ``dtuart=`` names a node that exists in this DTB (taken from its
  stdout-path or serial0 alias), unless the user's Xen arguments name one.

U-Boot's hush treats ``#`` at the start of a word as a comment, hence
``\\#address-cells``. Without Xen the kernel is started directly and its
command line goes through ``setenv bootargs``: bootz/booti copy that variable
into /chosen/bootargs and would overwrite a value set with ``fdt set``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

from felboot.errors import ImageError, PlanError, UsageError
from felboot.images.uimage import build_script_image
from felboot.plan import DTB_GROWTH, DomainPlan, Plan, Region
from felboot.units import format_size

SCRIPT_NAME = "felboot boot script"  # the uImage name field
SCRIPT_FILE = "boot.scr"  # the file name in an output directory, a TFTP root or an SD card
_LEGACY_HEADER = 64
_PART_TABLE = 8  # one part length and the terminating zero

FDT_HIGH_32 = "0xffffffff"
FDT_HIGH_64 = "0xffffffffffffffff"

# Xen's device-tree boot document (docs/misc/arm/device-tree/booting.txt).
KERNEL_COMPATIBLE = ('"multiboot,kernel"', '"multiboot,module"')
RAMDISK_COMPATIBLE = ('"multiboot,ramdisk"', '"multiboot,module"')
DEVICE_TREE_COMPATIBLE = ('"multiboot,device-tree"', '"multiboot,module"')
DOMAIN_COMPATIBLE = '"xen,domain"'
PASSTHROUGH_PROPERTY = "xen,passthrough"  # docs/misc/arm/passthrough.txt, on host nodes

_FORBIDDEN = {'"': "a double quote", "\\": "a backslash", "$": "a dollar sign"}


def _check_args(text: str, what: str) -> str:
    """Command lines go inside double quotes: refuse what hush would interpret."""
    for char, label in _FORBIDDEN.items():
        if char in text:
            raise UsageError(
                f"{what} {text!r} contains {label}, which the boot script cannot carry"
            )
    if "\n" in text or "\r" in text or not text.isascii():
        raise UsageError(f"{what} {text!r}: use one line of ASCII")
    return " ".join(text.split())


def _xen_args(plan: Plan, xen_args: str) -> str:
    args = _check_args(xen_args, "Xen arguments")
    if "dtuart=" in args:
        return args
    if plan.console_uart is None:
        raise ImageError(plan.console_problem or "the DTB names no console UART")
    return f"{args} dtuart={plan.console_uart}".strip()


def _hex(value: int) -> str:
    return f"0x{value:08x}"


def comment_text(text: str) -> str:
    """``text`` as printable ASCII for a boot.cmd comment (boot.scr is ASCII, as mkimage's is).

    Printable ASCII stays, a backslash doubles; a control character or a byte
    of a name that was not UTF-8 (argv's surrogateescape) becomes \\xNN, any
    other character \\uNNNN or \\UNNNNNNNN. So a newline in a file name cannot
    end the comment and start a command.
    """
    out = []
    for char in text:
        code = ord(char)
        if char == "\\":
            out.append("\\\\")
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        else:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    return "".join(out)


def _header(plan: Plan, load: LoadMethod) -> list[str]:
    what = "Linux without Xen" if plan.no_xen else "Xen" if plan.no_dom0 else "Xen and dom0"
    if plan.domains:
        what += f" and {len(plan.domains)} dom0less domU(s)"
    lines = [
        f"# felboot boot script: {what} on {plan.board} ({plan.soc}, "
        f"{format_size(plan.dram_size)} DRAM), layout {plan.layout}",
        "# Written by felboot; U-Boot runs it with `source` after a FEL boot."
        if not load.loads
        else f"# Written by felboot; at the U-Boot prompt: {load.prompt_commands(plan)}",
    ]
    width = max([7, *(len(region.name) for region in plan.regions)])
    for region in plan.regions:
        name = PurePath(region.source).name if region.source else "-"
        note = " (gzip)" if region.name == "kernel" and plan.kernel_gzipped else ""
        lines.append(
            f"#   {region.name:<{width}} {_hex(region.start)}-{_hex(region.end)}  "
            f"{region.size:#x} bytes  {name}{note}"
        )
    return [comment_text(line) for line in lines]


@dataclass(frozen=True)
class LoadMethod:
    """How the script gets the images: ``fel`` (already in DRAM), or loaded by U-Boot itself."""

    kind: str  # "fel", "tftp", "mmc" or "usb"
    device: str = "0:1"  # DEV:PART for mmc and usb

    @property
    def loads(self) -> bool:
        return self.kind != "fel"

    def command(self, address: int, name: str) -> str:
        if self.kind == "tftp":
            return f"tftpboot {_hex(address)} {name}"
        return f"load {self.kind} {self.device} {_hex(address)} {name}"

    def prompt_commands(self, plan: Plan) -> str:
        """What to type at the U-Boot prompt: load this boot.scr, then run it."""
        typed = [
            self.command(plan.script_address, SCRIPT_FILE),
            f"source {_hex(plan.script_address)}",
        ]
        if self.kind == "usb":
            typed.insert(0, "usb start")
        return "; ".join(typed)


FEL = LoadMethod("fel")
LOAD_KINDS = ("fel", "tftp", "mmc", "usb")
_DEV_PART = re.compile(r"[0-9]+:[0-9]+")


def parse_load(text: str) -> LoadMethod:
    """--load fel|tftp|mmc[:DEV:PART]|usb[:DEV:PART] (the default DEV:PART is 0:1)."""
    kind, _, device = text.partition(":")
    if kind not in LOAD_KINDS or (
        device and (kind in ("fel", "tftp") or not _DEV_PART.fullmatch(device))
    ):
        raise UsageError(
            f"--load {text!r}: write fel, tftp, mmc[:DEV:PART] or usb[:DEV:PART] (e.g. mmc:0:1)"
        )
    return LoadMethod(kind, device or "0:1")


def media_file_name(region: Region) -> str:
    """The file a loading script reads for ``region`` (its payload, as planned: a gzip'ed
    dom0 kernel is the gzip): the region's name, unique within the plan."""
    return region.name


def _size_variable(region: Region) -> str:
    return f"felboot_{region.name.replace('-', '_')}_size"


def _sizes(plan: Plan, load: LoadMethod) -> dict[str, str]:
    """Each region's size as the script writes it: a number for FEL, else the size U-Boot
    read. ${filesize} is hex without 0x (U-Boot's env_set_hex), and `fdt set` reads cells
    with base 0, hence the 0x in front."""
    if not load.loads:
        return {region.name: f"{region.size:#x}" for region in plan.regions}
    return {region.name: f"0x${{{_size_variable(region)}}}" for region in plan.regions}


def _load_lines(plan: Plan, load: LoadMethod) -> list[str]:
    """Load every image at its planned address; refuse one larger than its slot."""
    lines = [f"# Load the images ({load.kind}) at the plan's addresses."]
    if load.kind == "usb":
        lines.append("usb start")
    for region in plan.regions:
        room = region.end - region.start
        if region.name == "dtb":  # the DTB grows in its slot: fdt resize and bootz/booti's pad
            room -= DTB_GROWTH
        lines += [
            load.command(region.start, media_file_name(region)),
            f"setenv {_size_variable(region)} ${{filesize}}",
            f"if itest 0x${{filesize}} -gt {room:#x}; then echo felboot: {region.name} is larger "
            f"than its {room:#x}-byte slot, run felboot script again; exit; fi",
        ]
    return lines


def _module(index: int, region: Region, compatible: tuple[str, ...], size: str) -> list[str]:
    node = f"/chosen/module@{index}"
    return [
        f"fdt mknode /chosen module@{index}",
        f"fdt set {node} compatible {' '.join(compatible)}",
        f"fdt set {node} reg <{_hex(region.start)} {size}>",
    ]


def _domain(domain: DomainPlan, sizes: dict[str, str] | None = None) -> list[str]:
    """A dom0less domU's node, as booting.txt ("Creating Multiple Domains directly from Xen")
    specifies it: compatible "xen,domain"; #address-cells/#size-cells for the modules' reg
    (1 and 1, as /chosen: every address here is below 4 GiB); memory, "a 64-bit integer" of
    KiB, as two cells; cpus; vpl011 as an empty property; then one module@ADDR per image."""
    node = f"/chosen/{domain.name}"
    kib = domain.mem >> 10
    lines = [
        f"# {domain.name}: {format_size(domain.mem)}, {domain.vcpus} vCPU(s)"
        + (", console on vpl011" if domain.vpl011 else ""),
        f"fdt mknode /chosen {domain.name}",
        f"fdt set {node} compatible {DOMAIN_COMPATIBLE}",
        f"fdt set {node} \\#address-cells <1>",
        f"fdt set {node} \\#size-cells <1>",
        f"fdt set {node} memory <{kib >> 32:#x} {kib & 0xFFFFFFFF:#x}>",
        f"fdt set {node} cpus <{domain.vcpus}>",
    ]
    if domain.vpl011:
        lines.append(f"fdt set {node} vpl011")
    kinds = (
        (domain.kernel, KERNEL_COMPATIBLE),
        (domain.ramdisk, RAMDISK_COMPATIBLE),
        (domain.dtb, DEVICE_TREE_COMPATIBLE),
    )
    for region, compatible in kinds:
        if region is None:
            continue
        size = sizes[region.name] if sizes else f"{region.size:#x}"
        module = f"module@{region.start:x}"
        lines += [
            f"fdt mknode {node} {module}",
            f"fdt set {node}/{module} compatible {' '.join(compatible)}",
            f"fdt set {node}/{module} reg <{_hex(region.start)} {size}>",
        ]
        if region is domain.kernel and domain.args:  # bootargs is optional (booting.txt)
            args = _check_args(domain.args, f"{domain.name} arguments")
            lines.append(f'fdt set {node}/{module} bootargs "{args}"')
    return lines


def _xen_body(
    plan: Plan, xen_args: str, dom0_args: str, uboot_is_64bit: bool, sizes: dict[str, str]
) -> list[str]:
    xen, dtb, initrd = plan.xen, plan.dtb, plan.initrd
    lines = [
        "# Keep the DTB in place when booting (all ones: this U-Boot's word size).",
        f"setenv fdt_high {FDT_HIGH_64 if uboot_is_64bit else FDT_HIGH_32}",
        f"fdt addr {_hex(dtb.start)}",
        f"fdt resize {plan.dtb_room:#x}",
    ]
    if not plan.dtb_has_chosen:
        lines.append("fdt mknode / chosen")
    lines += [
        "fdt set /chosen \\#address-cells <1>",
        "fdt set /chosen \\#size-cells <1>",
        f'fdt set /chosen xen,xen-bootargs "{xen_args}"',
    ]
    if not plan.no_dom0:
        lines += [
            "# Module names from Xen's booting.txt; the wiki recipe's \"xen,linux-zimage\"",
            '# "xen,multiboot-module" are the older arm32 names, still accepted.',
            *_module(0, plan.kernel, KERNEL_COMPATIBLE, sizes["kernel"]),
            f'fdt set /chosen/module@0 bootargs "{dom0_args}"',
        ]
        if initrd is not None:
            lines += _module(1, initrd, RAMDISK_COMPATIBLE, sizes["initrd"])
    if plan.passthrough:
        lines.append(
            "# Host devices Xen keeps from dom0 for a domU (ImageBuilder's PASSTHROUGH_PATHS)"
        )
    for path in plan.passthrough:
        lines.append(f"fdt set {_check_args(path, 'pass-through path')} {PASSTHROUGH_PROPERTY}")
    for domain in plan.domains:
        lines += _domain(domain, sizes)
    lines.append(f"{plan.boot_command} {_hex(xen.start)} - {_hex(dtb.start)}")
    return lines


def _linux_body(plan: Plan, dom0_args: str, sizes: dict[str, str]) -> list[str]:
    dtb, kernel, initrd = plan.dtb, plan.kernel, plan.initrd
    ramdisk = f"{_hex(initrd.start)}:{sizes['initrd']}" if initrd is not None else "-"
    return [
        "# bootz/booti copy $bootargs into /chosen/bootargs.",
        f'setenv bootargs "{dom0_args}"',
        f"{plan.boot_command} {_hex(kernel.start)} {ramdisk} {_hex(dtb.start)}",
    ]


def render_boot_cmd(
    plan: Plan,
    *,
    xen_args: str,
    dom0_args: str,
    uboot_is_64bit: bool,
    load: LoadMethod = FEL,
) -> str:
    """The boot.cmd text for ``plan``; ``dom0_args`` is the kernel's command line.

    With a ``load`` other than fel the script first loads every image itself (from the
    files media_file_name names) and takes the sizes from what it loaded."""
    kernel_args = _check_args(
        dom0_args, "dom0 arguments" if not plan.no_xen else "kernel arguments"
    )
    sizes = _sizes(plan, load)
    if plan.no_xen:
        body = _linux_body(plan, kernel_args, sizes)
    else:
        body = _xen_body(plan, _xen_args(plan, xen_args), kernel_args, uboot_is_64bit, sizes)
    loading = _load_lines(plan, load) if load.loads else []
    text = "\n".join([*_header(plan, load), *loading, *body]) + "\n"
    image_size = _LEGACY_HEADER + _PART_TABLE + len(text)
    if image_size > plan.script_room:
        raise PlanError(
            f"boot script of {image_size} bytes does not fit the {plan.script_room} bytes "
            f"reserved at {_hex(plan.script_address)}: shorten the command lines"
        )
    return text


def build_boot_scr(text: str, timestamp: int) -> bytes:
    """The boot.scr image of ``text``, byte-identical to mkimage's (SOURCE_DATE_EPOCH=timestamp)."""
    return build_script_image(text.encode("ascii"), name=SCRIPT_NAME, timestamp=timestamp)
