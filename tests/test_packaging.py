"""What the sdist and the wheel carry, and that the unpacked sdist passes its own tests.

The distributions are built once per session, as .ci/run and a packager build them:
`python -m build --no-isolation` (the sdist from the checkout, the wheel from that sdist),
with the setuptools and build of the [test] extra.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from tests.support import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # felboot depends on tomli there
    import tomli as tomllib

#: The fast tests the unpacked sdist runs: pure units, wire structs, the transcripts and the
#: --json contract (fixtures/ and docs/ with them), the udev rule (udev/ and felboot/data/).
SDIST_SUBSET = (
    "tests/test_units.py",
    "tests/test_protocol.py",
    "tests/test_replay.py",
    "tests/test_json_contract.py",
    "tests/test_udev.py",
)
#: What the sdist must hold beside the package: enough to install, test and read it.
SDIST_TREES = ("tests", "fixtures", "docs", "udev")
NOT_SHIPPED = ("__pycache__", ".pyc", ".felboot-standin", ".hypothesis", ".benchmarks")


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, wheel) built from this checkout."""
    pytest.importorskip("build", reason="python -m build is in the [test] extra")
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (sdist,) = out.glob("felboot-*.tar.gz")
    (wheel,) = out.glob("felboot-*.whl")
    return sdist, wheel


def repository_files(tree: str) -> set[str]:
    """Files under ROOT/tree, as an sdist would name them, without caches and bytecode."""
    found = set()
    for path in (ROOT / tree).rglob("*"):
        relative = path.relative_to(ROOT).as_posix()
        if path.is_file() and not any(part in relative for part in NOT_SHIPPED):
            found.add(relative)
    return found


# Metadata -------------------------------------------------------------------------------------


def test_pyproject_declares_the_licence_in_spdx() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "GPL-2.0-or-later"
    assert project["project"]["license-files"] == ["LICENSE"]
    assert "setuptools>=77" in project["build-system"]["requires"]  # SPDX license needs 77
    text = (ROOT / "LICENSE").read_text()
    assert text.split("\n", 2)[:2] == [
        "                    GNU GENERAL PUBLIC LICENSE",
        "                       Version 2, June 1991",
    ]
    assert "END OF TERMS AND CONDITIONS" in text


# The wheel ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_wheel_carries_the_data_files(dists: tuple[Path, Path]) -> None:
    _, wheel = dists
    names = set(zipfile.ZipFile(wheel).namelist())
    package = ROOT / "felboot"
    wanted = {
        *(f"felboot/boards/{p.name}" for p in (package / "boards").glob("*.toml")),
        *(f"felboot/thunks/{p.name}" for p in (package / "thunks").glob("*.S")),
        *(f"felboot/sim/standin/{p.name}" for p in (package / "sim/standin").glob("*.c")),
        "felboot/data/60-felboot.rules",
        "felboot/py.typed",
    }
    assert len(wanted) > 20  # the globs found the files
    assert wanted <= names, sorted(wanted - names)
    assert {name.split("/")[0] for name in names} == {"felboot", "felboot-0.1.0.dist-info"}
    assert not [name for name in names if any(part in name for part in NOT_SHIPPED)]
    with zipfile.ZipFile(wheel) as archive:
        assert (
            archive.read("felboot/data/60-felboot.rules")
            == (package / "data/60-felboot.rules").read_bytes()
        )
        assert (
            archive.read("felboot-0.1.0.dist-info/licenses/LICENSE")
            == (ROOT / "LICENSE").read_bytes()
        )
        metadata = Parser().parsestr(archive.read("felboot-0.1.0.dist-info/METADATA").decode())
    assert metadata["License-Expression"] == "GPL-2.0-or-later"
    assert metadata.get_all("License-File") == ["LICENSE"]
    requires = " ".join(metadata.get_all("Requires-Dist") or [])
    for dependency in ("pyusb", "construct", "tqdm", "libusb-package", "fdt", "platformdirs"):
        assert dependency in requires
    assert 'tomli>=1.1; python_version < "3.11"' in requires


# The sdist ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_sdist_holds_tests_fixtures_docs_udev_and_licence(dists: tuple[Path, Path]) -> None:
    sdist, _ = dists
    with tarfile.open(sdist) as archive:
        members = {m.name.split("/", 1)[1]: m for m in archive.getmembers() if "/" in m.name}
        rule = archive.extractfile(members["udev/60-felboot.rules"])
        assert rule is not None
        rule_text = rule.read()
    names = set(members)
    for tree in SDIST_TREES:
        missing = repository_files(tree) - names
        assert not missing, (tree, sorted(missing))
    assert {"LICENSE", "README.md", "pyproject.toml", "tests/support.py"} <= names
    # A copy of the link's target, readable on any system that unpacks it.
    assert members["udev/60-felboot.rules"].isfile()
    assert rule_text == (ROOT / "felboot/data/60-felboot.rules").read_bytes()
    assert not [name for name in names if any(part in name for part in NOT_SHIPPED)]
    assert sdist.stat().st_size < 4 * 1024 * 1024  # nothing large slipped in


@pytest.mark.slow
def test_the_unpacked_sdist_passes_its_tests(dists: tuple[Path, Path], tmp_path: Path) -> None:
    sdist, _ = dists
    with tarfile.open(sdist) as archive:
        if hasattr(tarfile, "data_filter"):  # 3.10.12, 3.11.4 and later
            archive.extractall(tmp_path, filter="data")
        else:
            archive.extractall(tmp_path)
    (tree,) = tmp_path.iterdir()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    where = subprocess.run(
        [sys.executable, "-c", "import felboot, tests.support; print(felboot.__file__)"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip() == str(tree / "felboot" / "__init__.py")  # not this checkout's
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *SDIST_SUBSET],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
