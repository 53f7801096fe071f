"""Compile the libusb stand-in with the system C compiler, cached by source hash."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from felboot.errors import FelbootError

SOURCE = Path(__file__).with_name("libusb_standin.c")
#: The soname every libusb-1.0 client links against (Debian's sunxi-fel, pyusb's ctypes lookup).
LIBRARY_NAME = "libusb-1.0.so.0"
#: The unversioned name ctypes.util.find_library's `ld -t` fallback looks for.
LINK_NAME = "libusb-1.0.so"
HEADER = Path("/usr/include/libusb-1.0/libusb.h")
FLAGS = ("-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", f"-Wl,-soname,{LIBRARY_NAME}")


class StandinBuildError(FelbootError):
    """The stand-in cannot be built here (no compiler, no libusb.h, a compile error)."""


def find_compiler() -> str | None:
    """The system C compiler ($CC, cc or gcc), or None."""
    for name in (os.environ.get("CC"), "cc", "gcc"):
        if name and (path := shutil.which(name)):
            return path
    return None


def libusb_header() -> Path | None:
    """libusb-1.0-0-dev's header, which gives the stand-in libusb's own ABI, or None."""
    return HEADER if HEADER.is_file() else None


def build(outdir: Path) -> Path:
    """The built ``libusb-1.0.so.0`` in a subdirectory of ``outdir`` named by the source hash.

    Put the returned file's directory on LD_LIBRARY_PATH. A second call with the
    same source reuses the library.
    """
    compiler = find_compiler()
    if compiler is None:
        raise StandinBuildError(
            "no C compiler (cc or gcc) to build the libusb stand-in: install gcc"
        )
    if libusb_header() is None:
        raise StandinBuildError(
            f"{HEADER} is missing, which the libusb stand-in is built against: "
            "install libusb-1.0-0-dev"
        )
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source + " ".join(FLAGS).encode()).hexdigest()[:16]
    directory = outdir / f"libusb-standin-{digest}"
    library = directory / LIBRARY_NAME
    if library.is_file():
        return library
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / f"{LIBRARY_NAME}.{os.getpid()}.tmp"
    result = subprocess.run(
        [compiler, *FLAGS, "-o", str(partial), str(SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        first = (result.stderr.strip().splitlines() or ["no output"])[0]
        raise StandinBuildError(f"building the libusb stand-in with {compiler} failed: {first}")
    partial.replace(library)  # atomic: a parallel build never sees half a library
    link = directory / LINK_NAME
    if not link.exists():
        link.symlink_to(LIBRARY_NAME)
    return library
