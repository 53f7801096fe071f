"""Helpers several test modules share: fixture paths, the generator scripts, the ARM assembler."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "fixtures" / "images"
PAYLOADS = ROOT / "fixtures" / "payloads"

ARM_AS = shutil.which("arm-none-eabi-as")
ARM_OBJCOPY = shutil.which("arm-none-eabi-objcopy")
NO_ARM_BINUTILS = "binutils-arm-none-eabi (arm-none-eabi-as, -objcopy) is not installed"


def fixture_script(name: str) -> ModuleType:
    """Import fixtures/NAME.py (a generator script, not a package module)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "fixtures" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """felboot's main() on ``argv`` (each word str()'d, so paths may be given): exit code,
    stdout, stderr."""
    from felboot.cli import main

    code = main([str(word) for word in argv])
    out, err = capsys.readouterr()
    return code, out, err


def image(name: str) -> bytes:
    return (IMAGES / name).read_bytes()


def assemble_file(source: Path, work: Path, *flags: str) -> bytes:
    """The raw bytes Debian's arm-none-eabi binutils make of ``source`` (skips without them)."""
    if ARM_AS is None or ARM_OBJCOPY is None:
        pytest.skip(NO_ARM_BINUTILS)
    obj, binary = work / f"{source.stem}.o", work / f"{source.stem}.bin"
    subprocess.run([ARM_AS, *flags, "-o", obj, source], check=True, capture_output=True)
    subprocess.run([ARM_OBJCOPY, "-O", "binary", obj, binary], check=True, capture_output=True)
    return binary.read_bytes()
