"""The labgrid resource and driver in a labgrid Environment, against the device model.

No hardware and no udev device: the local resource is fed what pyudev reports
for a board in FEL (labgrid's own matching decides), and the driver's
``device`` attribute points it at the model. The remote path runs the command
the driver builds through a local shell standing in for ssh to the exporter.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("labgrid")
pytest.importorskip("unicorn")  # the model runs the SPL and thunks

from labgrid import Environment
from labgrid.exceptions import NoSupplierFoundError
from labgrid.util.ssh import sshmanager

import felboot.sim
from felboot.errors import DeviceError, UsageError
from felboot.labgrid import FelbootDriver, SunxiFELDevice

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "fixtures" / "images"
PAYLOADS = ROOT / "fixtures" / "payloads"
ID_PATH = "pci-0000:00:14.0-usb-0:1.2"
SIM = "sim:soc=a20,dram=1G"


class UdevAttributes:
    def get(self, key):
        return None

    def unset(self, key):
        pass


class UdevDevice:
    """What pyudev shows for a USB device: the fields labgrid's USBResource reads."""

    def __init__(self, id_path=ID_PATH, port="1-1.2", devnum=7, ids=("1f3a", "efe8")):
        self.properties = {
            "SUBSYSTEM": "usb",
            "DEVTYPE": "usb_device",
            "ID_VENDOR_ID": ids[0],
            "ID_MODEL_ID": ids[1],
            "ID_PATH": id_path,
            "BUSNUM": "001",
            "DEVNUM": f"{devnum:03d}",
        }
        self.attributes = UdevAttributes()
        self.ancestors = []
        self.action = "add"
        self.sys_name = port
        self.sys_path = f"/sys/devices/pci0000:00/0000:00:14.0/usb1/{port}"
        self.subsystem = "usb"
        self.device_type = "usb_device"
        self.device_node = f"/dev/bus/usb/001/{devnum:03d}"


def environment(tmp_path, text):
    path = tmp_path / "env.yaml"
    path.write_text(text)
    return Environment(str(path))


def local_env(tmp_path, driver_lines=f"device: {SIM}"):
    return environment(
        tmp_path,
        f"""
targets:
  main:
    resources:
      SunxiFELDevice:
        match:
          ID_PATH: {ID_PATH}
    drivers:
      FelbootDriver:
        board: cubieboard2
        image: uboot
        {driver_lines}
images:
  uboot: {IMAGES / "u-boot-sunxi-with-spl-a20.bin"}
imports:
  - felboot.labgrid
""",
    )


@pytest.fixture
def models(monkeypatch):
    """Every model the driver opens, to look at the board afterwards."""
    opened = []
    real = felboot.sim.open_sim

    def open_sim(options):
        transport = real(options)
        opened.append(transport)
        return transport

    monkeypatch.setattr(felboot.sim, "open_sim", open_sim)
    return opened


def in_fel(target):
    """The board shows up on the bus: udev's add event, matched by labgrid."""
    resource = target.get_resource(SunxiFELDevice, wait_avail=False)
    assert resource.try_match(UdevDevice())
    return resource


def test_resource_matches_fel_device_by_id_path_only(tmp_path):
    env = local_env(tmp_path)
    resource = env.get_target("main").get_resource(SunxiFELDevice, wait_avail=False)
    assert not resource.try_match(UdevDevice(id_path="pci-0000:00:14.0-usb-0:1.3"))
    assert not resource.try_match(UdevDevice(ids=("1fc9", "012b")))  # an i.MX on that port
    assert not resource.avail
    assert resource.try_match(UdevDevice(devnum=9))
    assert resource.avail and resource.port_path == "1-1.2"
    env.cleanup()


def test_resource_refuses_bus_and_device_numbers(tmp_path):
    text = "targets:\n  main:\n    resources:\n      SunxiFELDevice:\n        match:\n"
    env = environment(tmp_path, text + "          DEVNUM: '007'\nimports: [felboot.labgrid]\n")
    with pytest.raises(UsageError, match=r"^SunxiFELDevice: match key DEVNUM changes whenever"):
        env.get_target("main")


def test_driver_selects_the_board_by_port_path(tmp_path):
    env = local_env(tmp_path, driver_lines="")
    target = env.get_target("main")
    in_fel(target)
    assert target.get_driver(FelbootDriver).device_spec() == "usb:port=1-1.2"
    env.cleanup()


def test_load_boots_uboot_on_the_model(tmp_path, models):
    env = local_env(tmp_path)
    target = env.get_target("main")
    in_fel(target)
    driver = target.get_driver("BootstrapProtocol")  # found by labgrid's protocol
    assert isinstance(driver, FelbootDriver)
    driver.load()  # the image attribute's U-Boot
    board = models[-1].board
    assert [e.address for e in board.events if e.kind == "uboot_started"] == [0x4A000000]
    assert board.left_fel and not board.hung
    env.cleanup()


A20_IMAGES = (
    PAYLOADS / "xen-arm32.zimage",
    PAYLOADS / "zImage-arm32",
    PAYLOADS / "sun7i-a20-felboot-test.dtb",
)


def test_run_plan_boots_xen_and_dom0_on_the_model(tmp_path, models):
    env = local_env(tmp_path)
    target = env.get_target("main")
    in_fel(target)
    driver = target.get_driver(FelbootDriver)
    report = driver.run_plan(*A20_IMAGES, initrd=PAYLOADS / "initrd.img", dom0_mem="256M")
    board = models[-1].board
    for region in report["plan"]["regions"]:
        assert board.read_memory(region["start"], region["size"])  # placed where planned
    assert report["device"]["description"] == "sim A20 (1024 MiB)"
    assert report["dram"]["size"] == 1 << 30 and board.left_fel
    env.cleanup()


def test_run_plan_refuses_bad_options_before_anything_is_sent(tmp_path, models):
    env = local_env(tmp_path)
    target = env.get_target("main")
    in_fel(target)
    driver = target.get_driver(FelbootDriver)
    with pytest.raises(UsageError, match=r"^run_plan: unknown option 'dram': use board, "):
        driver.run_plan(*A20_IMAGES, dram="1G")
    with pytest.raises(UsageError, match=r"^kernel .*/nothing: no such file$"):
        driver.run_plan(A20_IMAGES[0], tmp_path / "nothing", A20_IMAGES[2])
    assert models == []  # no device opened
    env.cleanup()


def test_wait_for_fel_on_the_model(tmp_path, models):
    env = local_env(tmp_path)
    target = env.get_target("main")
    in_fel(target)
    target.get_driver(FelbootDriver).wait_for_fel(5)
    assert len(models) == 1
    env.cleanup()


def test_environment_without_the_resource_is_one_line(tmp_path):
    env = environment(
        tmp_path,
        "targets:\n  main:\n    drivers:\n      FelbootDriver: {}\nimports: [felboot.labgrid]\n",
    )
    with pytest.raises(NoSupplierFoundError) as caught:
        env.get_target("main")
    message = str(caught.value.msg)
    assert "\n" not in message and "SunxiFELDevice" in message and "FelbootDriver" in message


# The board on an exporter ------------------------------------------------------------


class LocalShell:
    """Stands in for labgrid's SSHConnection to the exporter: the "remote" shell is sh here.

    Its prefix, like ssh's, joins the arguments after "--" and hands them to a
    shell, so the driver's quoting is exercised as it would be on a real exporter.
    """

    def __init__(self, host):
        self.host = host

    def get_prefix(self):
        return ["sh", "-c", 'shift; eval "$@"', self.host]

    def run(self, command, *, codec="utf-8", decodeerrors="strict", **_):
        done = subprocess.run(["sh", "-c", command], capture_output=True)
        out = done.stdout.decode(codec, decodeerrors).splitlines()
        return out, done.stderr.decode(codec, decodeerrors).splitlines(), done.returncode

    def run_check(self, command, **kwargs):  # ManagedFile's mkdir before a copy
        raise AssertionError(f"the files are shared: nothing is copied ({command})")

    def put_file(self, local_file, remote_path):
        raise AssertionError(f"the files are shared: {local_file} is not copied")


@pytest.fixture
def exporter(monkeypatch, tmp_path):
    """ssh to the exporter replaced by a local shell; felboot there is this checkout's."""
    monkeypatch.setattr(sshmanager, "get", LocalShell)
    tool = tmp_path / "felboot on exporter"
    tool.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m felboot "$@"\n')
    tool.chmod(0o755)
    return tool


def remote_env(tmp_path, tool, device=SIM):
    env = environment(
        tmp_path,
        f"""
targets:
  main:
    resources:
      NetworkUSBFlashableDevice:
        host: exporter.example
        busnum: 1
        devnum: 7
        path: "1-1.2"
        vendor_id: 0x1f3a
        model_id: 0xefe8
        devnode: /dev/bus/usb/001/007
    drivers:
      FelbootDriver:
        board: cubieboard2
        {f"device: {device}" if device else ""}
tools:
  felboot: {tool}
imports:
  - felboot.labgrid
""",
    )
    target = env.get_target("main")
    # The coordinator marks it available when the exporter's udev sees the board (and a
    # RemotePlace's session polls it): here it is simply there.
    resource = target.get_resource("NetworkUSBFlashableDevice", wait_avail=False)
    resource.avail = True
    resource.poll = lambda: None
    return env, target.get_driver(FelbootDriver)


def shared_files(tmp_path):
    """The images in a directory the exporter shares (NFS, here the same disk): not copied.

    (Without the stat match ManagedFile copies them to /var/cache/labgrid over ssh; its
    own stat command is unquoted, so this directory has no space: the tool's path has one.)
    """
    folder = tmp_path / "lab-files"
    folder.mkdir()
    names = [IMAGES / "u-boot-sunxi-with-spl-a20.bin", *A20_IMAGES]
    return [Path(shutil.copy(name, folder)) for name in names]


def test_remote_command_names_the_port_and_runs_through_the_prefix(tmp_path, exporter):
    env, driver = remote_env(tmp_path, exporter, device=None)
    command = driver.felboot_command(["version"])
    assert command[:5] == ["sh", "-c", 'shift; eval "$@"', "exporter.example", "--"]
    assert command[5:] == [f"'{exporter}'", "--json", "--quiet", "--device", "usb:port=1-1.2",
                           "version"]  # fmt: skip
    env.cleanup()


def test_remote_load_and_run_plan_on_the_model(tmp_path, exporter, caplog):
    uboot, xen, kernel, dtb = shared_files(tmp_path)
    env, driver = remote_env(tmp_path, exporter)
    with caplog.at_level(logging.INFO):
        driver.load(str(uboot))
    assert "U-Boot started" in caplog.text
    report = driver.run_plan(xen, kernel, dtb, uboot=uboot, dram_size="1G")
    assert report["device"]["description"] == "sim A20 (1024 MiB)"
    assert report["uboot"]["files"] == [str(uboot)]  # on a shared (NFS) path: not copied
    assert not report["dry_run"] and report["timings"]["total"] > 0
    env.cleanup()


def test_remote_failure_is_felboots_error_naming_the_exporter(tmp_path, exporter):
    env, driver = remote_env(tmp_path, exporter, device="usb:port=9-9")
    with pytest.raises(DeviceError, match=r"^on exporter.example: no Allwinner board in FEL"):
        driver.wait_for_fel(0)
    env.cleanup()


def test_import_felboot_does_not_import_labgrid():
    code = "import sys, felboot, felboot.api, felboot.cli; print('labgrid' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.strip() == "False", done.stderr


PYTEST_EXAMPLE = f'''
def test_xen_and_dom0_boot(target):
    felboot = target.get_driver("FelbootDriver")
    report = felboot.run_plan("{A20_IMAGES[0]}", "{A20_IMAGES[1]}", "{A20_IMAGES[2]}",
                              initrd="{PAYLOADS / "initrd.img"}", dom0_mem="256M")
    assert report["dram"]["size"] == 1 << 30


def test_uboot_again(target):
    felboot = target.get_driver("BootstrapProtocol")
    felboot.wait_for_fel(60)
    felboot.load()
'''

BOARD_IN_FEL = """
import pytest
from tests.test_labgrid import UdevDevice


@pytest.fixture(autouse=True)
def board_in_fel(target):  # what udev would report with the board plugged in and in FEL
    from felboot.labgrid import SunxiFELDevice

    target.get_resource(SunxiFELDevice, wait_avail=False).try_match(UdevDevice())
"""


def test_pytest_example_with_labgrids_fixtures(tmp_path):
    """docs/labgrid.md's pytest example, run by labgrid's plugin (--lg-env) on the model."""
    local_env(tmp_path)  # writes env.yaml
    (tmp_path / "test_boot.py").write_text(PYTEST_EXAMPLE)
    (tmp_path / "conftest.py").write_text(BOARD_IN_FEL)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", tmp_path,
         "--lg-env", tmp_path / "env.yaml", tmp_path],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
