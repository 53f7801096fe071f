"""`python -m felboot` and the `felboot` console script.

Ctrl-C is one line and exit 130 at any moment. Before cli.py and what it
imports are loaded, and after main() has flushed its output, a SIGINT ends
the process at once (nothing to clean up); in between it is a
KeyboardInterrupt, which cli.main() turns into the same line once the device
is released and a recording renamed. Only os, signal and sys load first.
"""

from __future__ import annotations

import os
import signal

TYPE_CHECKING = False  # not typing's: importing typing would widen the start-up window
if TYPE_CHECKING:
    from types import FrameType
    from typing import NoReturn

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as cli.py


def _interrupted(signum: int, frame: FrameType | None) -> NoReturn:
    os.write(2, b"felboot: interrupted\n")
    os._exit(EXIT_INTERRUPTED)


def main() -> int:
    # A background job started with SIGINT ignored keeps it ignored.
    ours = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if ours:
        signal.signal(signal.SIGINT, _interrupted)
    try:
        from felboot.cli import main as cli_main

        if ours:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        code = cli_main()
    except KeyboardInterrupt:  # in the few steps outside cli.main()'s own handler
        _interrupted(signal.SIGINT, None)
    if ours:
        signal.signal(signal.SIGINT, _interrupted)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
