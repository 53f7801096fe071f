"""`felboot udev`: the rule shipped in the package, printed and installed (into a tmp root)."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from felboot import doctor
from felboot.commands import udev
from felboot.transport import FEL_PRODUCT_ID, FEL_VENDOR_ID, PermissionDenied, map_usb_error
from tests.support import ROOT
from tests.support import run_cli as run

PACKAGE_RULE = ROOT / "felboot" / "data" / "60-felboot.rules"
REPOSITORY_RULE = ROOT / "udev" / "60-felboot.rules"


def fake_udevadm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exit_code: int = 0) -> Path:
    """A `udevadm` first on PATH that logs its arguments (and says something on failure)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "udevadm.log"
    script = bin_dir / "udevadm"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{log}"\n'
        f'[ {exit_code} = 0 ] || echo "Failed to send reload request: No such file" >&2\n'
        f"exit {exit_code}\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return log


# The file ---------------------------------------------------------------------------------


def test_the_repository_rule_is_a_relative_link_to_the_package_rule() -> None:
    assert REPOSITORY_RULE.read_text() == PACKAGE_RULE.read_text()
    if not (ROOT / ".git").exists():
        return  # an unpacked sdist holds a copy (setuptools copies what a link points at)
    assert REPOSITORY_RULE.is_symlink()
    assert os.readlink(REPOSITORY_RULE) == "../felboot/data/60-felboot.rules"
    assert REPOSITORY_RULE.resolve() == PACKAGE_RULE.resolve()


def test_the_rule_grants_access_then_turns_autosuspend_off() -> None:
    access, autosuspend = udev.rule_lines(udev.rule_text())
    ids = (f'ATTR{{idVendor}}=="{FEL_VENDOR_ID:04x}"', f'ATTR{{idProduct}}=="{FEL_PRODUCT_ID:04x}"')
    for rule in (access, autosuspend):
        assert rule.startswith('SUBSYSTEM=="usb", ') and all(key in rule for key in ids)
    # The first rule is the one `felboot doctor` compares with installed files.
    assert doctor.rule_line(udev.rule_text()) == access == doctor.FELBOOT_RULE
    # As xfel's 99-xfel.rules: only where the attribute exists, -1 = never suspend.
    assert autosuspend.endswith('TEST=="power/autosuspend", ATTR{power/autosuspend}="-1"')
    # Every key=value pair is separated by a comma (xfel's rule misses one).
    pairs = re.findall(r'[A-Z]+(?:\{[\w/]+\})?[=!+:]=?"[^"]*"', autosuspend)
    assert ", ".join(pairs) == autosuspend


# felboot udev ------------------------------------------------------------------------------


def test_udev_prints_the_shipped_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "udev")
    assert (code, err) == (0, "")
    assert out == PACKAGE_RULE.read_text()


def test_udev_json_lists_the_rules_and_the_target(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--json", "udev")
    data = json.loads(out)
    assert code == 0 and data["install_path"] == "/etc/udev/rules.d/60-felboot.rules"
    assert data["rules"] == udev.rule_lines(PACKAGE_RULE.read_text())


def test_root_and_reload_go_with_install(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "udev", "--root", "/tmp")
    assert code == 2 and "--root goes with --install" in err
    code, _, err = run(capsys, "udev", "--no-reload")
    assert code == 2 and "--no-reload goes with --install" in err


# felboot udev --install ----------------------------------------------------------------------


def test_install_into_a_root_writes_the_file_and_leaves_udev_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = fake_udevadm(tmp_path, monkeypatch)
    code, out, err = run(capsys, "udev", "--install", "--root", str(tmp_path / "image"))
    target = tmp_path / "image/etc/udev/rules.d/60-felboot.rules"
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"installed {target}"
    assert "udev not reloaded" in out
    assert target.read_text() == PACKAGE_RULE.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert not log.exists()  # not the host's udev for a file under another root
    assert [p.name for p in target.parent.iterdir()] == ["60-felboot.rules"]  # no temporary left

    code, out, _ = run(capsys, "udev", "--install", "--root", str(tmp_path / "image"))
    assert code == 0 and out.startswith(f"already installed, unchanged: {target}")


def test_install_replaces_an_older_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "etc/udev/rules.d/60-felboot.rules"
    target.parent.mkdir(parents=True)
    target.write_text(doctor.FELBOOT_RULE + "\n")  # felboot's rule before autosuspend
    code, out, _ = run(capsys, "udev", "--install", "--root", str(tmp_path))
    assert code == 0 and out.startswith(f"installed {target}")
    assert target.read_text() == PACKAGE_RULE.read_text()


def test_install_reloads_udev_and_replays_the_fel_boards(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = fake_udevadm(tmp_path, monkeypatch)
    code, out, err = run(capsys, "udev", "--install", "--root", str(tmp_path), "--reload")
    assert (code, err) == (0, "")
    assert log.read_text().splitlines() == [
        "control --reload",
        "trigger --subsystem-match=usb --attr-match=idVendor=1f3a",
    ]
    assert "ran udevadm control --reload" in out
    assert "ran udevadm trigger --subsystem-match=usb --attr-match=idVendor=1f3a" in out

    code, out, _ = run(capsys, "--json", "udev", "--install", "--root", str(tmp_path), "--reload")
    data = json.loads(out)
    assert data["changed"] is False and data["warnings"] == []
    assert data["reloaded"] == [" ".join(command) for command in udev.RELOAD_COMMANDS]


def test_a_failed_reload_warns_and_keeps_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_udevadm(tmp_path, monkeypatch, exit_code=1)
    code, _, err = run(capsys, "udev", "--install", "--root", str(tmp_path), "--reload")
    assert code == 0
    assert err.startswith("felboot: warning: udevadm control --reload failed (exit 1): ")
    assert "No such file" in err and "the rule is in place" in err
    assert (tmp_path / "etc/udev/rules.d/60-felboot.rules").exists()


def test_no_udevadm_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, _, err = run(capsys, "udev", "--install", "--root", str(tmp_path), "--reload")
    assert code == 0 and err.startswith("felboot: warning: udevadm not found")


def test_install_without_permission_says_how_to_run_it_as_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(udev.tempfile, "mkstemp", denied)  # as a user (CI runs as root)
    code, out, err = run(capsys, "udev", "--install", "--root", str(tmp_path))
    target = tmp_path / "etc/udev/rules.d/60-felboot.rules"
    assert (code, out) == (2, "")
    assert err == (
        f"felboot: error: cannot write {target}: Permission denied: installing the udev rule "
        f"needs root: sudo {sys.executable} -m felboot udev --install --root {tmp_path}\n"
    )


def test_install_in_a_real_process(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "felboot", "udev", "--install", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "etc/udev/rules.d/60-felboot.rules").read_text() == PACKAGE_RULE.read_text()


# The permission error points here ---------------------------------------------------------


def test_the_permission_error_names_felboot_udev_install() -> None:
    import usb.core

    error = map_usb_error(usb.core.USBError("Access denied", -1, errno.EACCES), "usb:1:7")
    assert isinstance(error, PermissionDenied)
    assert "sudo felboot udev --install" in str(error)
    assert f"sudo {sys.executable} -m felboot udev --install" in str(error)
