"""Boot image parsers: bytes in, frozen dataclasses out.

Every parser here is pure; ``load`` is the one place that touches the file
system, so callers can turn a path into bytes with a useful error.
"""

from __future__ import annotations

from pathlib import Path

from felboot.errors import UsageError


def load(path: Path | str, what: str = "") -> bytes:
    """The whole file at ``path``; a missing or unreadable file is a UsageError naming it.

    ``what`` ("boot script", "U-Boot", ...) says in the message which input it was.
    """
    named = f"{what} {path}" if what else str(path)
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{named}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{named} is a directory: name a file") from None
    except OSError as error:
        reason = error.strerror or str(error)
        raise UsageError(f"cannot read {named}: {reason}") from None
