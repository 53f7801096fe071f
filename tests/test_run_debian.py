"""`felboot run` on the device model with Debian's real builds (skipped when not installed).

The model runs the real SPL's effect, takes Debian's real U-Boot, Xen and
kernels through the whole chain, and the test checks every byte landed where
the plan says: the same proof as test_run.py, with real sizes and headers.
"""

from pathlib import Path

import pytest

from felboot.run import RunRequest
from tests.test_run import assert_plan_landed, boot


def debian(*patterns: str) -> list[Path]:
    """The first match of each glob pattern, or skip naming what is missing."""
    found = []
    for pattern in patterns:
        matches = sorted(Path("/").glob(pattern.lstrip("/")))
        if not matches:
            pytest.skip(f"Debian file {pattern} is not installed")
        found.append(matches[-1])
    return found


def test_cubieboard2_with_debian_uboot_xen_and_lpae_kernel():
    uboot, xen, kernel, dtb = debian(
        "/usr/lib/u-boot/Cubieboard2/u-boot-sunxi-with-spl.bin",
        "/boot/xen-4.17-armhf",
        "/boot/vmlinuz-*-armmp-lpae",
        "/usr/lib/linux-image-*-armmp-lpae/sun7i-a20-cubieboard2.dtb",
    )
    request = RunRequest(board="cubieboard2", uboot=(uboot,), xen=xen, kernel=kernel, dtb=dtb)
    board, report, _ = boot("sim:soc=a20,dram=1G", request)
    assert_plan_landed(board, report)
    assert [e.kind for e in board.events] == ["spl", "uboot_started"]
    xen_region = report.plan.xen
    assert xen_region.size == xen.stat().st_size  # the file is written, its bss is planned
    assert xen_region.end - xen_region.start >= 0x116290  # slot sized from the header


def test_pine64_plus_with_debian_fit_and_gzipped_dom0():
    spl, fit, xen, kernel, dtb = debian(
        "/usr/lib/u-boot/pine64_plus/sunxi-spl.bin",
        "/usr/lib/u-boot/pine64_plus/u-boot-sunxi-with-spl.fit.itb",
        "/boot/xen-4.17-arm64",
        "/boot/vmlinuz-*-arm64",
        "/usr/lib/linux-image-*-arm64/allwinner/sun50i-a64-pine64-plus.dtb",
    )
    request = RunRequest(board="pine64-plus", uboot=(spl, fit), xen=xen, kernel=kernel, dtb=dtb)
    board, report, counter = boot("sim:soc=a64,dram=2G", request)
    assert_plan_landed(board, report)
    assert [e.kind for e in board.events] == ["spl", "aarch64_reset"]
    assert report.plan.kernel_gzipped
    sent_kernel = report.plan.kernel.size
    assert sent_kernel < kernel.stat().st_size // 2  # Xen inflates it; FEL carries half
    print(
        f"\npine64-plus: kernel {kernel.stat().st_size} bytes sent as {sent_kernel}; "
        f"run sent {report.bytes_written} bytes for {report.input_bytes} of input "
        f"in {counter.transfers} bulk transfers"
    )
