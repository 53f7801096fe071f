"""--record never destroys data: temporary file and rename, refusals before anything is
opened, --force to replace, the partial transcript kept after a failure."""

import json
import os
from pathlib import Path

import pytest

from felboot.errors import UsageError
from felboot.fel import FelDevice
from felboot.transcript import RecordingTransport, ReplayTransport, load_transcript
from tests.scripted import ScriptedTransport, version_answers
from tests.support import run_cli as run

ROOT = Path(__file__).resolve().parent.parent


def partials(directory: Path) -> list[Path]:
    return sorted(directory.glob(".*.partial"))


def test_the_transcript_appears_under_its_name_only_at_the_end(tmp_path):
    path = tmp_path / "t.jsonl"
    transport = RecordingTransport(ScriptedTransport(version_answers(0x1651)), path)
    FelDevice(transport).version()
    assert not path.exists() and len(partials(tmp_path)) == 1  # written beside, not yet named
    transport.close()
    assert path.exists() and partials(tmp_path) == []
    header, transfers = load_transcript(path)
    assert header["felboot_transcript"] == 1 and len(transfers) == 9


def test_the_transcript_gets_ordinary_permissions(tmp_path):
    path = tmp_path / "t.jsonl"
    with RecordingTransport(ScriptedTransport(version_answers(0x1651)), path) as transport:
        FelDevice(transport).version()
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_record_through_the_cli(capsys, tmp_path):
    path = tmp_path / "version.jsonl"
    code, out, _ = run(capsys, "--device", "sim", "version", "--record", path)
    assert code == 0 and out.startswith("A20")
    code, out, _ = run(capsys, "--device", f"replay:{path}", "version")
    assert code == 0 and "replay of version.jsonl" in out


def test_an_existing_file_is_replaced_only_with_force(capsys, tmp_path):
    path = tmp_path / "keep.jsonl"
    path.write_text("precious\n")
    code, _, err = run(capsys, "--device", "sim", "--record", path, "version")
    assert code == 2
    assert err == f"felboot: error: --record {path} exists: add --force to replace it, or " \
        "record to another file\n"  # fmt: skip
    assert path.read_text() == "precious\n"
    code, _, _ = run(capsys, "--device", "sim", "--record", path, "version", "--force")
    assert code == 0 and load_transcript(path)[0]["felboot_transcript"] == 1


def test_the_api_refuses_an_existing_file_without_overwrite(tmp_path):
    path = tmp_path / "keep.jsonl"
    path.write_text("precious\n")
    with pytest.raises(UsageError, match="exists"):
        RecordingTransport(ScriptedTransport(), path, overwrite=False)
    assert path.read_text() == "precious\n" and partials(tmp_path) == []


def test_recording_over_the_replayed_transcript_is_refused(capsys, tmp_path):
    path = tmp_path / "t.jsonl"
    assert run(capsys, "--device", "sim", "--record", path, "version")[0] == 0
    before = path.read_bytes()
    for force in ([], ["--force"]):
        code, _, err = run(
            capsys, "--device", f"replay:{path}", "--record", path, "version", *force
        )
        assert code == 2
        assert err == f"felboot: error: --record {path} is the transcript being replayed: " \
            "record to another file\n"  # fmt: skip
    assert path.read_bytes() == before


def test_recording_over_an_input_is_refused_even_with_force(capsys, tmp_path):
    image = tmp_path / "zImage"
    image.write_bytes(b"\x00" * 64)
    code, _, err = run(
        capsys, "--device", "sim", "--record", image, "--force", "write", "0x2000", image
    )
    assert code == 2 and f"--record {image} is also a file this command uses" in err
    assert image.read_bytes() == b"\x00" * 64


def test_recording_over_a_file_at_address_input_is_refused(capsys, tmp_path):
    script = tmp_path / "boot.scr"
    script.write_bytes(b"x")
    uboot = ROOT / "fixtures" / "images" / "u-boot-sunxi-with-spl-a20.bin"
    code, _, err = run(
        capsys, "--device", "sim", "--record", script, "--force",
        "uboot", uboot, "--script", f"{script}@0x43100000",
    )  # fmt: skip
    assert code == 2 and "is also a file this command uses" in err


def test_a_failed_session_keeps_its_partial_transcript(capsys, tmp_path):
    """DRAM read before any SPL: the board hangs; the transcript ends with that failure."""
    path = tmp_path / "hang.jsonl"
    code, _, err = run(capsys, "--device", "sim", "--record", path, "hexdump", "0x42000000", "16")
    assert code == 3 and "DRAM works only once an SPL has run" in err
    assert partials(tmp_path) == []
    _, transfers = load_transcript(path)
    assert transfers[-1].error == "DeviceTimeout"
    code, _, again = run(capsys, "--device", f"replay:{path}", "hexdump", "0x42000000", "16")
    assert code == 3 and "DRAM works only once an SPL has run" in again  # the same failure


def test_ctrl_c_in_a_session_keeps_what_was_recorded(capsys, tmp_path, monkeypatch):
    path = tmp_path / "cut.jsonl"
    version = FelDevice.version

    def interrupted_after_version(self):
        version(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(FelDevice, "sid", interrupted_after_version)
    code, _, err = run(capsys, "--device", "sim", "--record", path, "sid")
    assert code == 130 and err == "felboot: interrupted\n"
    _, transfers = load_transcript(path)
    assert transfers and partials(tmp_path) == []
    replay = ReplayTransport(path)
    FelDevice(replay).version()
    replay.finish()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_while_recording_names_the_file(capsys):
    code, _, err = run(capsys, "--device", "sim", "--record", "/dev/full", "version")
    assert code == 2
    assert err == (
        "felboot: error: cannot write transcript /dev/full: No space left on device: "
        "free some space or choose another --record path\n"
    )


def test_a_full_disk_in_the_middle_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "t.jsonl"
    transport = RecordingTransport(ScriptedTransport(version_answers(0x1651)), path)

    def full(text: str) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(transport._file, "write", full)
    with pytest.raises(UsageError, match=f"cannot write transcript {path}: No space left"):
        FelDevice(transport).version()
    transport.close()  # no second error: the session already failed with the first
    assert path.exists() and json.loads(path.read_text().splitlines()[0])["felboot_transcript"]


def test_a_directory_is_refused(capsys, tmp_path):
    code, _, err = run(capsys, "--device", "sim", "--record", tmp_path, "version")
    assert code == 2 and f"--record {tmp_path} is a directory" in err
