"""Boot image parsers: bytes in, frozen dataclasses out.

Every parser here is pure; ``load`` is the one place that touches the file
system, so callers can turn a path into bytes with a useful error.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from felboot.errors import UsageError
from felboot.units import format_size

if TYPE_CHECKING:
    from felboot.images.kconfig import KernelConfig
    from felboot.images.kernel import KernelImage

# No file felboot sends can be larger than the DRAM it goes to, and FEL
# addresses are 32 bits: from the lowest sunxi DRAM base (0x40000000, A80
# aside) to 4 GiB there are 3 GiB, and sunxi U-Boot maps at most 3 GiB too
# (plan.MAX_DRAM). Callers that know the board pass a tighter limit. The point
# is to refuse an SD-card image passed by mistake from its size alone, before
# it is read into memory.
MAX_INPUT_SIZE = 3 << 30


@contextmanager
def reading(named: str) -> Iterator[None]:
    """Turn an OSError from opening or reading ``named`` ("DTB board.dtb") into the one
    UsageError line every reader of user files gives."""
    try:
        yield
    except FileNotFoundError:
        raise UsageError(f"{named}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{named} is a directory: name a file") from None
    except OSError as error:
        raise UsageError(f"cannot read {named}: {error.strerror or error}") from None


def file_size(path: Path | str, what: str = "") -> int:
    """The size of ``path`` from stat(), with load()'s messages for a missing file."""
    named = f"{what} {path}" if what else str(path)
    with reading(named):
        info = Path(path).stat()
    if stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{named} is a directory: name a file")
    return info.st_size


def load(
    path: Path | str, what: str = "", *, limit: int = MAX_INPUT_SIZE, limit_why: str = ""
) -> bytes:
    """The whole file at ``path``; a missing or unreadable file is a UsageError naming it.

    ``what`` ("boot script", "U-Boot", ...) says in the message which input it was.
    A file larger than ``limit`` is refused from stat() alone, before it is read;
    ``limit_why`` ("the 1 GiB of DRAM of cubieboard2") says what the limit is.
    """
    named = f"{what} {path}" if what else str(path)
    size = file_size(path, what)
    if size > limit:
        why = limit_why or "what FEL can place in DRAM"
        raise UsageError(
            f"{named} is {format_size(size)}, more than {why} ({format_size(limit)}): "
            f"is it a disk or SD-card image? pass the {what or 'image'} file itself"
        )
    with reading(named):
        return Path(path).read_bytes()


#: Kernel configs are ~300 KiB (Debian 6.1: 275-291 KiB); anything far larger is not one.
CONFIG_LIMIT = 16 << 20


def installed_kernel_config(path: Path, kernel: KernelImage) -> KernelConfig | None:
    """How the kernel at ``path`` was built: config-VERSION beside vmlinuz-VERSION (Debian),
    else the kernel's own IKCONFIG when it is uncompressed, else None."""
    from felboot.images.kconfig import config_name_for, embedded_config, parse_config

    name = config_name_for(path.name)
    beside = path.with_name(name) if name else None
    if beside is not None and beside.is_file():
        text = load(beside, "kernel config", limit=CONFIG_LIMIT, limit_why="any kernel config")
        return parse_config(text.decode("utf-8", errors="replace"), str(beside))
    if kernel.compressed:
        return None  # inside gzip: not cheap to look for
    return embedded_config(kernel.data, str(path))
