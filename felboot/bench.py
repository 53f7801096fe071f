"""Benchmarks: `python -m felboot.bench write --size 64M` and friends.

They measure what the HOST adds to a FEL transfer: the time and memory spent in
fel -> protocol -> transport with a device that answers instantly (NullDevice),
so that on the fastest FEL link known (~30 MB/s) the host's share is visible.
Results are printed, never asserted: the test suite has no timed asserts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from statistics import median
from typing import TYPE_CHECKING

from felboot import protocol
from felboot.transport import Transport
from felboot.units import format_size, parse_number

if TYPE_CHECKING:
    from felboot.fel import FelDevice


class NullDevice(Transport):
    """A FEL peer that answers every exchange at once and keeps nothing.

    It follows the framing just enough to answer: a 13-byte read is an AWUS
    response, 8 bytes a FEL status, 32 bytes a VERSION answer, anything else zeros.
    """

    description = "null device"

    def __init__(self) -> None:
        self.bytes_out = 0
        self.transfers = 0
        self._response = protocol.build_usb_response()
        self._status = protocol.build_fel_status()
        self._version = protocol.build_version_answer(0x1651, 0x7E00)

    def bulk_out(self, data: bytes | memoryview) -> None:
        # pyusb copies every transfer into an array before libusb sees it; so do we,
        # or the benchmark would measure slicing alone.
        self.transfers += 1
        self.bytes_out += len(bytes(data))

    def bulk_in(self, length: int) -> bytes:
        self.transfers += 1
        if length == protocol.USB_RESPONSE_SIZE:
            return self._response
        if length == protocol.FEL_STATUS_SIZE:
            return self._status
        if length == protocol.FEL_VERSION_SIZE:
            return self._version
        return bytes(length)


def measure(transfer: Callable[[FelDevice], object], size: int, repeat: int) -> dict[str, float]:
    """Best and median time of ``transfer`` on a fresh null device, and its peak memory."""
    from felboot.fel import FelDevice

    seconds = []
    for _ in range(repeat):
        device = FelDevice(NullDevice())
        device.version()  # not part of the transfer being measured
        start = time.perf_counter()
        transfer(device)
        seconds.append(time.perf_counter() - start)
    device = FelDevice(NullDevice())
    device.version()
    tracemalloc.start()
    transfer(device)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    best = min(seconds)
    return {
        "size": size,
        "median_s": median(seconds),
        "best_s": best,
        "throughput_MBps": size / best / 1e6,
        "peak_bytes": peak,
    }


def bench_write(size: int, repeat: int) -> dict[str, float]:
    payload = bytes(size)  # allocated before tracing: the peak is what the client adds
    return measure(lambda device: device.write(0x40000000, payload, lambda _n: None), size, repeat)


def bench_read(size: int, repeat: int) -> dict[str, float]:
    return measure(lambda device: device.read(0x40000000, size), size, repeat)


def bench_help(repeat: int) -> dict[str, float]:
    """Wall time of `felboot --help` in a fresh interpreter (what a user waits for)."""
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "felboot", "--help"], check=True, capture_output=True)
        seconds.append(time.perf_counter() - start)
    return {"median_s": median(seconds), "best_s": min(seconds)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m felboot.bench", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    for name in ("write", "read"):
        p = sub.add_parser(name, help=f"host cost of one FEL {name} to a null device")
        p.add_argument("--size", default="64M")
        p.add_argument("--repeat", type=int, default=5)
    p = sub.add_parser("help", help="wall time of `felboot --help`")
    p.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    if args.what == "help":
        result = bench_help(args.repeat)
        text = (
            f"felboot --help: median {result['median_s'] * 1000:.0f} ms, "
            f"best {result['best_s'] * 1000:.0f} ms"
        )
    else:
        size = parse_number(args.size, "size")
        result = (bench_write if args.what == "write" else bench_read)(size, args.repeat)
        peak = result["peak_bytes"]
        text = (
            f"{args.what} {format_size(size)}: {result['throughput_MBps']:.0f} MB/s "
            f"(best of {args.repeat}, median {result['median_s'] * 1000:.1f} ms), "
            f"peak traced memory {format_size(int(peak))} beyond the payload"
        )
    print(json.dumps(result) if args.json else text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
