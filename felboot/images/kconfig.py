"""Kernel build configurations: the `config-VERSION` file beside a kernel, or IKCONFIG.

Two places say how a kernel was built:

* Debian (and most distributions) install ``/boot/config-VERSION`` next to
  ``/boot/vmlinuz-VERSION``: lines ``CONFIG_XEN=y``, ``CONFIG_FOO="text"`` and
  ``# CONFIG_ARM_LPAE is not set``.
* A kernel built with CONFIG_IKCONFIG embeds the same text gzip'ed between
  the markers "IKCFG_ST" and "IKCFG_ED" (kernel/configs.c, kernel/Makefile's
  config_data.gz). That is only found cheaply in an uncompressed image (an
  arm64 Image); in a zImage it is inside the compressed kernel and not looked
  for. Debian's 6.1 kernels are built without IKCONFIG.

Debian's kernel flavours are also in the file names: ``-armmp`` (ARMv7
multi-platform, short-descriptor page tables) vs ``-armmp-lpae`` (built with
CONFIG_ARM_LPAE=y), as the linux-image-armmp and -armmp-lpae packages say.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

from felboot.errors import ImageError

IKCONFIG_START = b"IKCFG_ST"
IKCONFIG_END = b"IKCFG_ED"
_LINE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
# Installed kernel names whose VERSION part names the config-VERSION beside them.
KERNEL_NAME_PREFIXES = ("vmlinuz-", "vmlinux-", "zImage-", "Image-")


@dataclass(frozen=True)
class KernelConfig:
    """A parsed kernel .config: option -> value ("y", "m", a string or number)."""

    source: str
    options: dict[str, str] = field(repr=False)

    def enabled(self, name: str) -> bool:
        """True for =y (built in): what Xen support and LPAE need, modules cannot do."""
        return self.options.get(name) == "y"


def parse_config(text: str, source: str) -> KernelConfig:
    options: dict[str, str] = {}
    recognised = 0
    for line in text.splitlines():
        line = line.strip()
        match = _LINE.match(line)
        if match:
            options[match.group(1)] = match.group(2).strip('"')
            recognised += 1
        elif _UNSET.match(line):
            recognised += 1
    if not recognised:
        raise ImageError(
            f"{source}: no CONFIG_ lines, not a kernel configuration: "
            "remove it or pass a kernel whose config-VERSION is intact"
        )
    return KernelConfig(source, options)


def embedded_config(data: bytes, source: str) -> KernelConfig | None:
    """The IKCONFIG text of an uncompressed kernel image; None when it has none."""
    start = data.find(IKCONFIG_START)
    if start < 0:
        return None
    body = data[start + len(IKCONFIG_START) :]
    end = body.find(IKCONFIG_END)
    if end >= 0:
        body = body[:end]
    try:
        text = zlib.decompressobj(wbits=31).decompress(body)
    except zlib.error:
        return None  # the marker string without config data after it (a debug string)
    return parse_config(text.decode("utf-8", errors="replace"), f"{source} (IKCONFIG)")


def config_name_for(kernel_name: str) -> str | None:
    """ "vmlinuz-6.1.0-57-armmp-lpae" -> "config-6.1.0-57-armmp-lpae"; None for other names."""
    for prefix in KERNEL_NAME_PREFIXES:
        if kernel_name.startswith(prefix) and len(kernel_name) > len(prefix):
            return "config-" + kernel_name[len(prefix) :]
    return None


def debian_flavour(kernel_name: str) -> str | None:
    """The Debian flavour in an installed kernel's name ("armmp", "armmp-lpae", "arm64")."""
    for flavour in ("armmp-lpae", "armmp", "arm64"):
        if kernel_name.endswith("-" + flavour):
            return flavour
    return None
