"""felboot.progress: plain lines without a terminal, nothing when quiet or small (no sleeping)."""

from __future__ import annotations

import io

from felboot.progress import BAR_THRESHOLD, LINE_INTERVAL, progress_bar


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_log_gets_a_line_every_10_percent_and_a_final_one() -> None:
    stream, clock = io.StringIO(), Clock()
    total = 10 << 20
    with progress_bar(total, "upload", stream=stream, clock=clock) as progress:
        for _ in range(20):  # 512 KiB a second
            clock.now += 1
            progress(total // 20)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "upload: 1 MiB of 10 MiB (10 %), 512 KiB/s"
    assert lines[1] == "upload: 2 MiB of 10 MiB (20 %), 512 KiB/s"
    assert len(lines) == 10  # 10 % ... 90 %, then the final line
    assert lines[-1] == "upload: 10 MiB in 20.0 s (512 KiB/s), done"


def test_a_slow_link_still_prints_every_few_seconds() -> None:
    stream, clock = io.StringIO(), Clock()
    total = 100 << 20
    with progress_bar(total, "read", stream=stream, clock=clock) as progress:
        progress(64 << 10)  # well under 10 %
        clock.now += LINE_INTERVAL
        progress(64 << 10)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "read: 128 KiB of 100 MiB (0 %), 25.6 KiB/s"
    assert lines[-1].endswith("done")


def test_grow_raises_the_total_the_lines_show() -> None:
    stream, clock = io.StringIO(), Clock()
    with progress_bar(1 << 20, "upload", stream=stream, clock=clock) as progress:
        progress.grow(1 << 20)
        clock.now += 1
        progress(256 << 10)
    assert stream.getvalue().splitlines()[0] == "upload: 256 KiB of 2 MiB (12 %), 256 KiB/s"


def test_quiet_and_small_transfers_print_nothing_but_still_count() -> None:
    for total, quiet in ((1 << 20, True), (BAR_THRESHOLD, False)):
        stream, clock = io.StringIO(), Clock()
        with progress_bar(total, "write", quiet, stream=stream, clock=clock) as progress:
            clock.now += 2
            progress(total)
        assert stream.getvalue() == ""
        assert progress.done == total and progress.last_at == 102.0


def test_a_failed_transfer_gets_no_final_line() -> None:
    stream = io.StringIO()
    try:
        with progress_bar(1 << 20, "upload", stream=stream, clock=Clock()) as progress:
            progress(1 << 10)
            raise RuntimeError("the board hung")
    except RuntimeError:
        pass
    assert "done" not in stream.getvalue()


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_leaves_its_last_line() -> None:
    stream = Tty()
    with progress_bar(1 << 20, "upload", stream=stream, clock=Clock()) as progress:
        progress(1 << 20)
    assert "upload" in stream.getvalue() and stream.getvalue().endswith("\n")
