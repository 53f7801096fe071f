"""Boot image parsers: bytes in, frozen dataclasses out.

Every parser here is pure; ``load`` is the one place that touches the file
system, so callers can turn a path into bytes with a useful error.
"""

from __future__ import annotations

from pathlib import Path

from felboot.errors import UsageError


def load(path: Path) -> bytes:
    """The whole file at ``path``; a missing or unreadable file is a UsageError naming it."""
    try:
        return Path(path).read_bytes()
    except OSError as error:
        reason = error.strerror or str(error)
        raise UsageError(f"cannot read {path}: {reason}") from error
