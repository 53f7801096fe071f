"""Every recorded session in fixtures/transcripts replays to the same result.

The transcripts were recorded by fixtures/record_transcripts.py running the real
CLI against the device model; here the same commands run against
`--device replay:FILE`, the mock at the transport boundary. A change in what the
client sends fails at the first differing transfer, naming it.
"""

import hashlib
import json
from pathlib import Path

import pytest

from felboot.cli import main
from felboot.devices import open_transport
from felboot.errors import TranscriptError
from felboot.fel import FelDevice
from tests.support import fixture_script

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "fixtures" / "transcripts"
MANIFEST = json.loads((TRANSCRIPTS / "manifest.json").read_text())
normalise_timings = fixture_script("record_transcripts").normalise_timings


@pytest.mark.parametrize("session", MANIFEST, ids=lambda session: session["name"])
def test_session_replays_to_the_recorded_result(session, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(TRANSCRIPTS.parent.parent)
    for name, value in session.get("env", {}).items():
        monkeypatch.setenv(name, value)
    argv = [word.replace("{tmp}", str(tmp_path)) for word in session["argv"]]
    transcript = TRANSCRIPTS / (session["name"] + ".jsonl")
    assert transcript.exists() == session["transcript"]
    # Sessions refused before any device was opened have no transcript; replaying a
    # missing file would fail, so they also prove that nothing was opened.
    code = main(["--device", f"replay:{transcript}", *argv])
    out, err = capsys.readouterr()
    assert code == session["exit"], err
    # Only the device's name differs: "replay of X.jsonl (recorded from sim A20 ...)".
    if session["transcript"]:
        recorded_from = json.loads(transcript.open().readline())["device"]
        replay_name = f"replay of {transcript.name} (recorded from {recorded_from})"
        out = out.replace(replay_name, recorded_from)
    # A run's durations and rates vary; record_transcripts.py stored them as placeholders.
    assert normalise_timings(out) == session["stdout"]
    assert "diverges" not in err and "Traceback" not in err
    for name, digest in session["outputs"].items():
        written = Path(name.replace("{tmp}", str(tmp_path))).read_bytes()
        assert hashlib.sha256(written).hexdigest() == digest


def test_a_different_command_diverges_and_says_where():
    transport = open_transport(f"replay:{TRANSCRIPTS / 'sid-a20.jsonl'}")
    device = FelDevice(transport)
    # Same VERSION, same FEL WRITE of a thunk, but one address instead of the four SID words.
    with pytest.raises(
        TranscriptError,
        match=r"diverges at transfer #10: expected OUT 16 bytes.*first difference at byte 8",
    ):
        device.readl(0x01C20000)


def test_a_session_that_stops_early_is_caught(capsys):
    sid = TRANSCRIPTS / "sid-a20.jsonl"
    code = main(["--device", f"replay:{sid}", "version"])  # the recording went on to read the SID
    err = capsys.readouterr().err
    assert code == 5
    assert "sid-a20.jsonl" in err and "transfers" in err


def test_error_sessions_fail_the_way_they_were_recorded(capsys):
    hang = TRANSCRIPTS / "hexdump-dram-before-spl-a20.jsonl"
    code = main(["--device", f"replay:{hang}", "hexdump", "0x42000000", "16"])
    assert code == 3
    assert (
        "DRAM works only once an SPL has run since the board entered FEL" in capsys.readouterr().err
    )
