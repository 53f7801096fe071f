"""Build the libusb stand-in and print how to point a libusb client at the model.

    python -m felboot.sim.standin [DIR]      (default DIR: ./.felboot-standin)

Prints the two environment lines to use with ``python -m felboot.sim.standin_server``;
see the README's "The reference client judges the model".
"""

from __future__ import annotations

import sys
from pathlib import Path

from felboot.errors import FelbootError
from felboot.sim.standin.build import build


def main(argv: list[str]) -> int:
    outdir = Path(argv[0] if argv else ".felboot-standin").resolve()
    try:
        library = build(outdir)
    except FelbootError as error:
        print(f"felboot: error: {error}", file=sys.stderr)
        return error.exit_code
    print(f"export LD_LIBRARY_PATH={library.parent}")
    print("export FELBOOT_STANDIN_SOCKETS=/tmp/felboot-sim.sock")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
