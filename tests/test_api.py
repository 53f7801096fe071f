"""The public API (felboot.api): the README's example runs as written, names, docstrings."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import felboot
from felboot import api
from tests.test_run import A20

ROOT = Path(__file__).resolve().parent.parent


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Python API") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README's Python API section has no python block"
    return match[1]


def test_readme_example_runs_on_the_model(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)  # the example names fixtures/ relative to the repository
    exec(compile(readme_example(), "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    line = r"DRAM 1024 MiB, \d+ bytes in \d+\.\d\d s; boot.scr at 0x[0-9a-f]{8}\n"
    assert re.fullmatch(line, out), out


def test_readme_example_names_a_usb_form_too():
    assert "usb:port=" in readme_example()


def test_every_api_name_is_in_the_package_and_documented():
    assert set(api.__all__) - set(felboot.__all__) == {"run"}  # felboot.run is a module
    for name in api.__all__:
        value = getattr(api, name)
        if name != "run":
            assert getattr(felboot, name) is value, name
        if callable(value) and getattr(value, "__module__", "") == "felboot.api":
            assert value.__doc__, f"{name} has no docstring"
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = felboot.no_such_thing  # type: ignore[attr-defined]


def test_import_felboot_stays_light():
    code = (
        "import sys, felboot; felboot.__version__; "
        "print(sorted({'usb', 'construct', 'unicorn', 'tqdm', 'felboot.api'} & set(sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "[]", out.stderr


def test_open_device_is_a_context_manager_and_closes_once():
    with api.open_device("sim") as device:
        assert isinstance(device, felboot.FelDevice)
        assert device.spec == "sim"
        assert device.version().soc_id == 0x1651
    device.close()  # a second close is harmless


def test_run_takes_a_request_or_a_prepared_run():
    request = api.RunRequest(board="cubieboard2", **A20)
    ready = api.prepare(request)
    assert ready.plan is not None and ready.request is request
    for work in (request, ready):
        with api.open_device("sim:soc=a20,dram=1G") as device:
            report = api.run(device, work)
        assert report.timings is not None and report.dram.size == 1 << 30


def test_make_plan_needs_the_dram_size():
    plan = api.make_plan(api.RunRequest(board="cubieboard2", **A20))
    assert plan.dram_size == 1 << 30
    with pytest.raises(api.UsageError, match="a20.*--dram-size"):
        api.make_plan(api.RunRequest(board="a20", **A20))


def test_bad_spec_is_a_usage_error_naming_it():
    with pytest.raises(api.UsageError, match="'bogus' is not a device"):
        api.open_device("bogus")


def test_wait_for_board_returns_it_opened():
    with api.wait_for_board("sim:soc=h3", timeout=1) as device:
        assert device.soc is not None and device.soc.name == "H3"


def test_boot_uboot_boots_the_model():
    with api.open_device("sim") as device:
        dram = api.boot_uboot(device, [A20["uboot"][0]])
        assert dram.size == 1 << 30
        assert device.transport.board.left_fel  # type: ignore[attr-defined]
