"""Progress bars for uploads and downloads (an edge module: only cli.py and run.py use it).

One bar covers a whole command's transfer, however many FEL requests it takes.
Small transfers (64 KiB or less) and non-TTY or --quiet runs show no bar.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

BAR_THRESHOLD = 64 * 1024


@contextmanager
def progress_bar(
    total: int, description: str, quiet: bool = False
) -> Iterator[Callable[[int], None]]:
    """Yield a callback taking the byte count of each finished bulk transfer."""
    if quiet or total <= BAR_THRESHOLD or not sys.stderr.isatty():
        yield lambda _count: None
        return
    from tqdm import tqdm  # imported here: tqdm costs start-up time every command would pay

    with tqdm(
        total=total, desc=description, unit="B", unit_scale=True, unit_divisor=1024, leave=False
    ) as bar:
        yield bar.update
