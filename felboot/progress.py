"""Progress bars for uploads and downloads (an edge module: only cli.py and run.py use it).

One bar covers a whole command's transfer, however many FEL requests it takes.
Small transfers (64 KiB or less) and non-TTY or --quiet runs show no bar.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

BAR_THRESHOLD = 64 * 1024


class TransferProgress:
    """Called with the byte count of each finished bulk transfer; ``grow`` adds to the total."""

    def __init__(self, bar: Any | None) -> None:
        self._bar = bar
        self.done = 0

    def __call__(self, count: int) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(count)

    def grow(self, extra: int) -> None:
        """More to send than first known (sizes learnt on the way, e.g. after the SPL)."""
        if self._bar is not None:
            self._bar.total += extra
            self._bar.refresh()


@contextmanager
def progress_bar(total: int, description: str, quiet: bool = False) -> Iterator[TransferProgress]:
    if quiet or total <= BAR_THRESHOLD or not sys.stderr.isatty():
        yield TransferProgress(None)
        return
    from tqdm import tqdm  # imported here: tqdm costs start-up time every command would pay

    with tqdm(
        total=total, desc=description, unit="B", unit_scale=True, unit_divisor=1024, leave=False
    ) as bar:
        yield TransferProgress(bar)
