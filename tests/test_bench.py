"""The benchmarks run (their numbers are reported, never asserted here)."""

import json

from felboot.bench import NullDevice, main
from felboot.fel import FelDevice


def test_bench_write_and_read_run(capsys):
    assert main(["--json", "write", "--size", "1M", "--repeat", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["size"] == 1 << 20
    assert main(["read", "--size", "64K", "--repeat", "1"]) == 0
    assert "read 64 KiB" in capsys.readouterr().out


def test_null_device_sees_every_byte_once():
    device = FelDevice(NullDevice())
    device.version()
    null = device.transport
    before = null.bytes_out
    device.write(0x40000000, bytes(3 << 20))
    # 3 MiB of payload plus three 32-byte requests and one 16-byte FEL message
    assert null.bytes_out - before == (3 << 20) + 3 * 32 + 16
