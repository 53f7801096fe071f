"""Progress of uploads and downloads (an edge module: only the commands and run.py use it).

One report covers a whole command's transfer, however many FEL requests it
takes. On a terminal it is a tqdm bar that leaves its final line; elsewhere
(CI, labgrid, Jenkins logs) plain lines, every 10 % or every few seconds,
as esptool prints them. Small transfers (64 KiB or less) and --quiet show
nothing. The clock and the stream are parameters so that tests need no sleep.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from felboot.units import format_rate, format_seconds, format_size

BAR_THRESHOLD = 64 * 1024
LINE_STEP = 0.10  # of the total, between plain lines
LINE_INTERVAL = 5.0  # seconds: a slow link still shows it is alive

Clock = Callable[[], float]


class PlainLines:
    """Progress as log lines: "upload: 3.1 MiB of 31.4 MiB (10 %), 512 KiB/s"."""

    def __init__(self, description: str, total: int, stream: TextIO, clock: Clock) -> None:
        self.description = description
        self.total = total
        self._stream = stream
        self._clock = clock
        self._started = clock()
        self._last_time = self._started
        self._last_step = 0  # the last 10 % step printed

    def update(self, done: int) -> None:
        now = self._clock()
        step = int(done / self.total / LINE_STEP) if self.total else 0
        if done >= self.total:
            return  # close() prints the final line once
        if step > self._last_step or now - self._last_time >= LINE_INTERVAL:
            self._last_step = max(step, self._last_step)
            self._last_time = now
            percent = 100 * done // self.total
            self._print(
                f"{format_size(done)} of {format_size(self.total)} ({percent} %), "
                f"{format_rate(done, now - self._started)}"
            )

    def close(self, done: int) -> None:
        elapsed = self._clock() - self._started
        self._print(
            f"{format_size(done)} in {format_seconds(elapsed)} ({format_rate(done, elapsed)}), done"
        )

    def _print(self, text: str) -> None:
        self._stream.write(f"{self.description}: {text}\n")
        self._stream.flush()


class TransferProgress:
    """Called with the byte count of each finished bulk transfer; ``grow`` adds to the total.

    ``last_at`` is the clock's time of the last transfer counted (run.execute
    times its upload phase with it).
    """

    def __init__(
        self, bar: Any | None = None, lines: PlainLines | None = None, clock: Clock = time.monotonic
    ) -> None:
        self._bar = bar
        self._lines = lines
        self._clock = clock
        self.done = 0
        self.last_at: float | None = None

    def __call__(self, count: int) -> None:
        self.done += count
        self.last_at = self._clock()
        if self._bar is not None:
            self._bar.update(count)
        if self._lines is not None:
            self._lines.update(self.done)

    def grow(self, extra: int) -> None:
        """More to send than first known (sizes learnt on the way, e.g. after the SPL)."""
        if self._bar is not None:
            self._bar.total += extra
            self._bar.refresh()
        if self._lines is not None:
            self._lines.total += extra


@contextmanager
def progress_bar(
    total: int,
    description: str,
    quiet: bool = False,
    *,
    stream: TextIO | None = None,
    clock: Clock = time.monotonic,
) -> Iterator[TransferProgress]:
    """A bar on a terminal, plain lines elsewhere, nothing when quiet or small."""
    out = sys.stderr if stream is None else stream
    if quiet or total <= BAR_THRESHOLD:
        yield TransferProgress(clock=clock)
        return
    if not out.isatty():
        lines = PlainLines(description, total, out, clock)
        progress = TransferProgress(lines=lines, clock=clock)
        yield progress
        # Only a finished transfer gets its final line: an error says what happened instead.
        lines.close(progress.done)
        return
    from tqdm import tqdm  # imported here: tqdm costs start-up time every command would pay

    with tqdm(
        total=total,
        desc=description,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        leave=True,  # the last state (size, time, rate) stays on the screen
        file=out,
    ) as bar:
        yield TransferProgress(bar, clock=clock)
