"""felboot: boot Allwinner (sunxi) boards over USB through the boot ROM's FEL mode.

The public Python API lives in :mod:`felboot.api`; its names are also here
(``from felboot import open_device, prepare, RunRequest``), loaded on first use
so that ``import felboot`` stays light (no pyusb, no construct). All but one:
``felboot.run`` is the orchestration module, so the API's run() is
``felboot.api.run``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from felboot.api import (
        BoardResult,
        BootError,
        DeviceError,
        DeviceGone,
        DeviceListing,
        DeviceTimeout,
        DramInfo,
        FelbootError,
        FelDevice,
        ImageError,
        OpenedDevice,
        PermissionDenied,
        PlanError,
        Prepared,
        PreparedRun,
        ProtocolError,
        RunReport,
        RunRequest,
        TranscriptError,
        TransferProgress,
        UsageError,
        boot_uboot,
        find_boards,
        make_plan,
        open_device,
        prepare,
        run_boards,
        select_boards,
        wait_for_board,
    )

__all__ = [
    "BoardResult",
    "BootError",
    "DeviceError",
    "DeviceGone",
    "DeviceListing",
    "DeviceTimeout",
    "DramInfo",
    "FelDevice",
    "FelbootError",
    "ImageError",
    "OpenedDevice",
    "PermissionDenied",
    "PlanError",
    "Prepared",
    "PreparedRun",
    "ProtocolError",
    "RunReport",
    "RunRequest",
    "TranscriptError",
    "TransferProgress",
    "UsageError",
    "__version__",
    "boot_uboot",
    "find_boards",
    "make_plan",
    "open_device",
    "prepare",
    "run_boards",
    "select_boards",
    "wait_for_board",
]

_API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    """The API's names, imported from felboot.api when first asked for (PEP 562)."""
    if name in _API:
        from felboot import api

        return getattr(api, name)
    raise AttributeError(f"module 'felboot' has no attribute {name!r}")
