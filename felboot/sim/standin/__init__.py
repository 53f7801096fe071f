"""The libusb-1.0 stand-in: a C shared library that puts felboot's device model on the "bus".

``build(outdir)`` compiles ``libusb_standin.c`` into ``libusb-1.0.so.0``; with
its directory on ``LD_LIBRARY_PATH`` and ``FELBOOT_STANDIN_SOCKETS`` naming the
sockets of ``python -m felboot.sim.standin_server``, unmodified libusb clients
(Debian's sunxi-fel, pyusb) see one FEL device per socket.
"""

from __future__ import annotations

from felboot.sim.standin.build import (
    LIBRARY_NAME,
    SOURCE,
    StandinBuildError,
    build,
    find_compiler,
    libusb_header,
)

__all__ = ["LIBRARY_NAME", "SOURCE", "StandinBuildError", "build", "find_compiler", "libusb_header"]
