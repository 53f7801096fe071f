"""Transcripts: record a session, replay it, and fail loudly where it differs."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from felboot import protocol
from felboot.errors import DeviceGone, DeviceTimeout, TranscriptError, UsageError
from felboot.fel import FelDevice
from felboot.transcript import RecordingTransport, ReplayTransport, load_transcript
from felboot.transport import MAX_BULK_TRANSFER
from tests.scripted import OK_RESPONSE, OK_STATUS, ScriptedTransport, version_answers, write_answers

BIG_WRITE = bytes(range(256)) * 4096  # 1 MiB: two bulk transfers of 512 KiB
READ_BACK = bytes(reversed(range(256))) * 4  # 1 KiB: above the inline limit


def read_answers(data: bytes) -> list[bytes | Exception]:
    return [OK_RESPONSE, data, OK_RESPONSE, OK_STATUS, OK_RESPONSE]


def session(device: FelDevice) -> tuple[int, bytes]:
    """What the recorded client does: VERSION, a large WRITE, a 1 KiB READ."""
    soc_id = device.version().soc_id
    device.write(0x40000000, BIG_WRITE)
    return soc_id, device.read(0x2000, len(READ_BACK))


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    path = tmp_path / "session.jsonl"
    inner = ScriptedTransport(version_answers() + write_answers() + read_answers(READ_BACK))
    with RecordingTransport(inner, path, note="unit test") as transport:
        assert session(FelDevice(transport)) == (0x1651, READ_BACK)
    return path


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_lines(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    return path


HEADER = {"felboot_transcript": 1, "device": "usb 1:7", "created": "2024-01-01T00:00:00+00:00"}


# Recording ------------------------------------------------------------------------


def test_header_names_the_device(recorded: Path) -> None:
    header = lines(recorded)[0]
    assert header["felboot_transcript"] == 1
    assert header["device"] == "scripted device"
    assert header["note"] == "unit test"
    assert header["created"].endswith("+00:00")


def test_small_transfers_are_hex_large_out_is_hashed_large_in_is_kept(recorded: Path) -> None:
    transfers = lines(recorded)[1:]
    assert [t["i"] for t in transfers] == list(range(len(transfers)))
    first = transfers[0]
    assert first == {
        "i": 0,
        "dir": "out",
        "len": 32,
        "data": protocol.build_usb_request(protocol.USB_DIRECTION_WRITE, 16).hex(),
    }
    big_out = [t for t in transfers if t["dir"] == "out" and t["len"] == MAX_BULK_TRANSFER]
    assert len(big_out) == 2
    assert all("data" not in t and "b64" not in t for t in big_out)
    assert big_out[0]["sha256"] == hashlib.sha256(BIG_WRITE[:MAX_BULK_TRANSFER]).hexdigest()
    (big_in,) = [t for t in transfers if t["dir"] == "in" and t["len"] == len(READ_BACK)]
    assert base64.b64decode(big_in["b64"]) == READ_BACK
    assert big_in["sha256"] == hashlib.sha256(READ_BACK).hexdigest()


def test_a_failed_transfer_is_recorded_and_replayed_as_the_same_error(tmp_path: Path) -> None:
    path = tmp_path / "hang.jsonl"
    hang = DeviceTimeout("usb 1:7 did not answer within the time-out (bulk IN of 32 bytes)")
    inner = ScriptedTransport([OK_RESPONSE, hang])
    with RecordingTransport(inner, path) as transport, pytest.raises(DeviceTimeout):
        FelDevice(transport).version()
    assert lines(path)[-1] == {
        "i": 4,
        "dir": "in",
        "len": 32,
        "error": "DeviceTimeout",
        "message": str(hang),
    }
    replay = ReplayTransport(path)
    with pytest.raises(DeviceTimeout) as raised:
        FelDevice(replay).version()
    assert str(raised.value) == str(hang)
    replay.finish()


def test_failed_out_transfer_keeps_its_payload(tmp_path: Path) -> None:
    class Unplugged(ScriptedTransport):
        def bulk_out(self, data: bytes | memoryview) -> None:
            raise DeviceGone("usb 1:7 disappeared in the middle of a transfer")

    path = tmp_path / "gone.jsonl"
    with RecordingTransport(Unplugged(), path) as transport, pytest.raises(DeviceGone):
        transport.bulk_out(b"\x01\x02")
    assert lines(path)[1]["data"] == "0102"
    with pytest.raises(DeviceGone, match="disappeared"):
        ReplayTransport(path).bulk_out(b"\x01\x02")


def test_unwritable_record_path_is_a_usage_error(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "x.jsonl"
    with pytest.raises(UsageError, match=r"cannot write transcript .*missing-dir/x.jsonl"):
        RecordingTransport(ScriptedTransport(), target)


# Replaying ------------------------------------------------------------------------


def test_replay_answers_like_the_device(recorded: Path) -> None:
    replay = ReplayTransport(recorded)
    assert session(FelDevice(replay)) == (0x1651, READ_BACK)
    assert replay.remaining == 0
    replay.finish()
    assert "scripted device" in replay.description


def test_changed_small_out_says_where_and_how(recorded: Path) -> None:
    device = FelDevice(ReplayTransport(recorded))
    device.version()
    with pytest.raises(TranscriptError) as raised:
        device.write(0x40001000, BIG_WRITE)
    assert str(raised.value) == (
        f"transcript {recorded} diverges at transfer #10: expected OUT 16 bytes 01010000..., "
        "got OUT 16 bytes 01010000... (first difference at byte 5); re-record it with --record"
    )


def test_changed_large_out_compares_hashes(recorded: Path) -> None:
    device = FelDevice(ReplayTransport(recorded))
    device.version()
    changed = b"\xff" + BIG_WRITE[1:]
    with pytest.raises(
        TranscriptError, match=r"transfer #13: expected OUT 524288 bytes with sha256"
    ):
        device.write(0x40000000, changed)


def test_different_length_and_direction(recorded: Path) -> None:
    replay = ReplayTransport(recorded)
    with pytest.raises(
        TranscriptError, match=r"#0: expected OUT 32 bytes 41575543\.\.\., got OUT 2"
    ):
        replay.bulk_out(b"AW")
    replay = ReplayTransport(recorded)
    with pytest.raises(TranscriptError, match=r"#0: expected OUT 32 bytes .*got IN of at most 13"):
        replay.bulk_in(13)


def test_reading_less_than_was_recorded_diverges(recorded: Path) -> None:
    replay = ReplayTransport(recorded)
    replay.bulk_out(protocol.build_usb_request(protocol.USB_DIRECTION_WRITE, 16))
    replay.bulk_out(protocol.build_fel_message(protocol.FEL_VERSION))
    with pytest.raises(TranscriptError, match=r"#2: expected IN 13 bytes .*got IN of at most 8"):
        replay.bulk_in(8)


def test_a_larger_read_buffer_gets_the_recorded_bytes(recorded: Path) -> None:
    replay = ReplayTransport(recorded)
    replay.bulk_out(protocol.build_usb_request(protocol.USB_DIRECTION_WRITE, 16))
    replay.bulk_out(protocol.build_fel_message(protocol.FEL_VERSION))
    assert replay.bulk_in(512) == OK_RESPONSE


def test_running_past_the_end_names_the_count(recorded: Path) -> None:
    replay = ReplayTransport(recorded)
    session(FelDevice(replay))
    count = len(lines(recorded)) - 1
    with pytest.raises(TranscriptError, match=rf"ends after {count} transfers, got OUT 2 bytes"):
        replay.bulk_out(b"\x00\x01")


def test_finish_refuses_a_session_that_stopped_early(recorded: Path) -> None:
    replay = ReplayTransport(recorded)
    FelDevice(replay).version()
    with pytest.raises(TranscriptError, match=r"diverges at transfer #9: .*the session ended"):
        replay.finish()
    replay.close()  # close() does not judge: it also runs after errors


# Malformed files ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        ([{"felboot_transcript": 2}], "line 1 is malformed: format version 2"),
        ([{"i": 0}], r"line 1 is malformed: the first line must be"),
        ([{"felboot_transcript": True}], r"line 1 is malformed: the first line must be"),
        ([HEADER, {"i": 1, "dir": "out", "len": 1, "data": "00"}], r"line 2 .*transfer number 0"),
        ([HEADER, {"i": 0, "dir": "up", "len": 1, "data": "00"}], r'line 2 .*"dir" is \'up\''),
        ([HEADER, {"i": 0, "dir": "in", "len": -1, "data": ""}], r'line 2 .*"len" is -1'),
        ([HEADER, {"i": 0, "dir": "in", "len": 2, "data": "00"}], "holds 1 bytes but"),
        ([HEADER, {"i": 0, "dir": "in", "len": 1, "data": "zz"}], '"data" is not valid hex'),
        ([HEADER, {"i": 0, "dir": "in", "len": 300, "sha256": "0" * 64}], 'needs "b64"'),
        ([HEADER, {"i": 0, "dir": "out", "len": 3}], r'needs "data" \(hex\)'),
        ([HEADER, {"i": 0, "dir": "out", "len": 300}], r'OUT transfer of 300 bytes needs "sha256"'),
        ([HEADER, {"i": 0, "dir": "out", "len": 300, "sha256": "xy"}], "must be 64 hex digits"),
        (
            [HEADER, {"i": 0, "dir": "in", "len": 1, "data": "00", "sha256": "1" * 64}],
            'does not match its "sha256"',
        ),
        (
            [HEADER, {"i": 0, "dir": "in", "len": 1, "error": "ValueError", "message": "x"}],
            "not a felboot error class",
        ),
    ],
)
def test_malformed_lines_name_file_and_line(
    tmp_path: Path, entries: list[dict[str, Any]], why: str
) -> None:
    path = write_lines(tmp_path / "bad.jsonl", entries)
    with pytest.raises(TranscriptError, match=why) as raised:
        ReplayTransport(path)
    assert str(path) in str(raised.value)


def test_broken_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(HEADER) + "\n\n{not json\n")
    with pytest.raises(TranscriptError, match=r"broken.jsonl line 3 is malformed: not a JSON"):
        load_transcript(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    with pytest.raises(TranscriptError, match=r"empty.jsonl is empty"):
        load_transcript(path)


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"cannot read transcript .*nope.jsonl"):
        ReplayTransport(tmp_path / "nope.jsonl")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
transfer_like = st.fixed_dictionaries(
    {},
    optional={
        "i": st.integers(-1, 3) | json_values,
        "dir": st.sampled_from(["out", "in", "sideways"]) | json_values,
        "len": st.integers(-1, 600) | json_values,
        "data": st.binary(max_size=8).map(bytes.hex) | json_values,
        "sha256": st.sampled_from([hashlib.sha256(b"").hexdigest(), "x" * 64]) | json_values,
        "b64": st.binary(max_size=8).map(lambda b: base64.b64encode(b).decode()) | json_values,
        "error": st.sampled_from(["DeviceTimeout", "FelbootError", "print", "annotations"])
        | json_values,
        "message": json_values,
    },
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300))
def test_random_bytes_raise_only_transcript_errors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(content)
    try:
        load_transcript(path)
    except TranscriptError:
        pass


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(transfer_like | json_values, max_size=4))
def test_random_lines_raise_only_transcript_errors(tmp_path: Path, entries: list[Any]) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_text("\n".join([json.dumps(HEADER), *(json.dumps(e) for e in entries)]))
    try:
        replay = ReplayTransport(path)
    except TranscriptError:
        return
    # A file that loads must replay: each recorded answer comes back, or a felboot error.
    for _ in range(replay.remaining):
        try:
            replay.bulk_in(MAX_BULK_TRANSFER)
        except TranscriptError:
            pass
        except Exception as error:  # a recorded error line replays as its own class
            assert type(error).__module__ == "felboot.errors"
