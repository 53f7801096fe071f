"""SunxiFELDevice: an Allwinner board in FEL mode, as labgrid's udev matching finds it."""

from __future__ import annotations

from typing import Any

import attr
from labgrid.factory import target_factory
from labgrid.resource.udev import USBResource

from felboot.errors import UsageError
from felboot.transport import FEL_PRODUCT_ID, FEL_VENDOR_ID

FEL_IDS = (f"{FEL_VENDOR_ID:04x}", f"{FEL_PRODUCT_ID:04x}")  # ("1f3a", "efe8") as udev spells them

# Match keys that name the device by bus and device number: both change every
# time the board re-enumerates (each reset into FEL), so they select nothing stable.
UNSTABLE_KEYS = ("BUSNUM", "DEVNUM", "DEVNAME", "busnum", "devnum")


def check_match(match: dict[str, Any], what: str) -> None:
    """Refuse a udev match that does not pin the board to its USB port (ID_PATH)."""
    for key in match:
        if key.lstrip("@") in UNSTABLE_KEYS:
            raise UsageError(
                f"{what}: match key {key} changes whenever the board re-enumerates: "
                "select the board by its port with ID_PATH (udevadm info shows it)",
                culprit=key,
            )
    if not any(key.lstrip("@") == "ID_PATH" for key in match):
        raise UsageError(
            f"{what}: the match has no ID_PATH: select the board by its USB port, e.g. "
            "ID_PATH: pci-0000:00:14.0-usb-0:1.2 (udevadm info /dev/bus/usb/BBB/DDD shows it)",
            culprit=what,
        )


def names_fel_device(match: dict[str, Any]) -> bool:
    """Whether a udev match asks for USB 1f3a:efe8 itself (a USBFlashableDevice's, say)."""
    wanted = (match.get("ID_VENDOR_ID"), match.get("ID_MODEL_ID"))
    return tuple(str(value).lower() for value in wanted) == FEL_IDS


@target_factory.reg_resource
@attr.s(eq=False)
class SunxiFELDevice(USBResource):
    """An Allwinner SoC's boot ROM in FEL mode (USB 1f3a:efe8) on the port ID_PATH names.

    Environment file::

        SunxiFELDevice:
          match:
            ID_PATH: pci-0000:00:14.0-usb-0:1.2

    It is available while the board is in FEL; it disappears when U-Boot starts
    and comes back (same ID_PATH, new device number) when the board is reset
    into FEL again. ``port_path`` is felboot's name for that port ("1-1.2").
    """

    def __attrs_post_init__(self) -> None:
        check_match(self.match, f"SunxiFELDevice {self.name or ''}".rstrip())
        super().__attrs_post_init__()

    def filter_match(self, device: Any) -> bool:
        ids = (device.properties.get("ID_VENDOR_ID"), device.properties.get("ID_MODEL_ID"))
        if ids != FEL_IDS:
            return False
        return bool(super().filter_match(device))

    @property
    def port_path(self) -> str | None:
        """The USB port chain ("1-1.2"): the udev name of the usb_device, stable across resets."""
        path = self.path
        return str(path) if path is not None else None
