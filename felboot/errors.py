"""Errors a user can act on.

Every failure felboot expects is raised as a FelbootError subclass whose message
names the culprit (file, address, value, device) and says what to do. Only
cli.py catches them: it prints the message as one line and exits with the
class's exit code. Anything else reaching the user is a bug.
"""

from __future__ import annotations


class FelbootError(Exception):
    """Base class: one actionable line for the user.

    ``culprit``, when the raiser knows it, is the file, option or device at
    fault by itself (the --json error object carries it for scripts).
    """

    exit_code = 1

    def __init__(self, message: str, *, culprit: str | None = None) -> None:
        super().__init__(message)
        self.culprit = culprit


class UsageError(FelbootError):
    """Bad command-line input: an unparseable number, a missing file, a bad range."""

    exit_code = 2


class DeviceError(FelbootError):
    """The USB device cannot be found, opened or selected."""

    exit_code = 3


class PermissionDenied(DeviceError):
    """The device exists but this user may not open it (see udev/)."""


class DeviceTimeout(DeviceError):
    """The device stopped answering within the time-out."""


class DeviceGone(DeviceError):
    """The device disappeared (unplugged, reset) in the middle of a transfer."""


class ProtocolError(FelbootError):
    """The device answered something the FEL protocol does not allow."""

    exit_code = 4


class TranscriptError(FelbootError):
    """A replayed transcript does not match what the client sends, or is malformed."""

    exit_code = 5


class ImageError(FelbootError):
    """An input image (SPL, U-Boot, kernel, DTB, ...) is malformed or unsuitable."""

    exit_code = 6


class PlanError(FelbootError):
    """The images cannot be placed in DRAM as asked."""

    exit_code = 7


class BootError(FelbootError):
    """A boot step ran but did not have the expected effect on the device."""

    exit_code = 8


class UnsafeWrite(FelbootError):
    """A write would clobber memory the boot ROM or an earlier step still needs."""

    exit_code = 9
