"""Transcripts: every bulk transfer of a session, recorded to a file and replayed.

A transcript is JSON Lines. The first line is a header::

    {"felboot_transcript": 1, "device": "usb 1:7 (port 1-1.2)",
     "created": "2024-05-01T12:00:00+00:00", "note": null}

then one line per bulk transfer, numbered from 0::

    {"i": 0, "dir": "out", "len": 32, "data": "41575543..."}       up to 256 bytes: hex
    {"i": 5, "dir": "out", "len": 65536, "sha256": "..."}           larger OUT: hash only
    {"i": 9, "dir": "in", "len": 4096, "sha256": "...", "b64": "..."}  larger IN: base64

OUT payloads above 256 bytes are kept only as a SHA-256 (images are large and
the replay need only check them); IN payloads are always kept, because the
replay must answer with them. A transfer that failed is recorded with the
error instead of the answer::

    {"i": 12, "dir": "in", "len": 13, "error": "DeviceTimeout", "message": "..."}

and a replay raises that same felboot error at that point, so a hang can be
replayed. ReplayTransport fails at the first transfer that differs and says
which one and how. A replay that stops before the transcript ends is a
divergence too, but close() cannot tell a finished session from one cut short
by an error, so that check is the explicit finish().
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, TypeGuard

from felboot import errors
from felboot.errors import FelbootError, TranscriptError, UsageError
from felboot.transport import MAX_BULK_TRANSFER, Transport

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
HEADER_KEY = "felboot_transcript"
INLINE_LIMIT = 256  # payloads up to this many bytes are stored as plain hex
PREVIEW_BYTES = 4  # bytes of a payload shown in divergence messages
OUT, IN = "out", "in"


@dataclass(frozen=True)
class Transfer:
    """One recorded bulk transfer (or the error it ended in)."""

    index: int
    direction: str  # OUT or IN
    length: int
    sha256: str  # hex digest of the payload
    data: bytes | None  # None for large OUT transfers: only the hash is kept
    error: str | None = None  # felboot error class name, when the transfer failed
    message: str = ""

    @classmethod
    def of(cls, index: int, direction: str, payload: bytes) -> Transfer:
        return cls(index, direction, len(payload), _sha256(payload), payload)

    def to_json(self) -> dict[str, Any]:
        line: dict[str, Any] = {"i": self.index, "dir": self.direction, "len": self.length}
        if self.data is None and self.error is not None and self.direction == IN:
            pass  # a failed IN transfer received nothing to keep
        elif self.data is not None and self.length <= INLINE_LIMIT:
            line["data"] = self.data.hex()
        else:
            line["sha256"] = self.sha256
            if self.direction == IN and self.data is not None:
                line["b64"] = base64.b64encode(self.data).decode("ascii")
        if self.error is not None:
            line["error"] = self.error
            line["message"] = self.message
        return line

    def summary(self) -> str:
        """ "OUT 32 bytes 41575543..." for messages."""
        return describe(self.direction, self.length, self.data, self.sha256)


def describe(direction: str, length: int, data: bytes | None, sha256: str | None = None) -> str:
    """A transfer in a few words: direction, size and its first bytes (or hash)."""
    head = f"{direction.upper()} {length} bytes"
    if data is not None and length:
        more = "..." if length > PREVIEW_BYTES else ""
        return f"{head} {data[:PREVIEW_BYTES].hex()}{more}"
    if sha256 is not None and length:
        return f"{head} with sha256 {sha256[:16]}..."
    return head


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Writing -------------------------------------------------------------------------


class RecordingTransport(Transport):
    """Passes every transfer to ``inner`` and appends it to the transcript at ``path``.

    The transcript is written under a temporary name in the same directory and
    renamed to ``path`` by close(), also when the session failed: a partial
    transcript, ending at the transfer that failed, is the evidence of that
    failure. An existing ``path`` is replaced only with ``overwrite``; a path that
    is no regular file (a FIFO, /dev/stdout) is written in place.
    """

    def __init__(
        self, inner: Transport, path: Path, note: str | None = None, *, overwrite: bool = True
    ) -> None:
        self.inner = inner
        self.path = path
        self.description = inner.description
        self._count = 0
        self._temporary: Path | None = None
        self._write_failed = False
        in_place = path.exists() and not path.is_file()
        if path.is_file() and not overwrite:
            raise UsageError(
                f"transcript {path} exists: add --force to replace it, or record to another file",
                culprit=str(path),
            )
        try:
            if in_place:
                stream = path.open("w", encoding="utf-8", buffering=1)
            else:
                handle, name = tempfile.mkstemp(
                    prefix=f".{path.name}.", suffix=".partial", dir=path.parent
                )
                self._temporary = Path(name)
                os.fchmod(handle, 0o666 & ~_umask())  # mkstemp's 0600 is for secrets
                stream = os.fdopen(handle, "w", encoding="utf-8", buffering=1)
            # Line-buffered: a crash or Ctrl-C still leaves every transfer so far on disk.
            self._file: IO[str] | None = stream
        except OSError as error:
            raise UsageError(
                f"cannot write transcript {path}: {error.strerror}: choose another --record path",
                culprit=str(path),
            ) from None
        header = {
            HEADER_KEY: FORMAT_VERSION,
            "device": inner.description,
            "created": _creation_time().isoformat(timespec="seconds"),
            "note": note,
        }
        try:
            self._write(header)
        except FelbootError:
            self._discard()
            raise

    def bulk_out(self, data: bytes | memoryview) -> None:
        transfer = Transfer.of(self._count, OUT, bytes(data))
        try:
            self.inner.bulk_out(data)
        except FelbootError as error:
            self._write_transfer(transfer, error)
            raise
        self._write_transfer(transfer)

    def bulk_in(self, length: int) -> bytes:
        try:
            payload = self.inner.bulk_in(length)
        except FelbootError as error:
            self._write_transfer(Transfer(self._count, IN, length, "", None), error)
            raise
        self._write_transfer(Transfer.of(self._count, IN, payload))
        return payload

    def pause(self, seconds: float, why: str) -> None:
        self.inner.pause(seconds, why)

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            if self._file is not None:
                self._finish()

    def _finish(self) -> None:
        """Close the file and give it its name (renamed over ``path`` in one step).

        What reached the disk is kept even when writing failed: it is the
        record of the session up to that point.
        """
        assert self._file is not None
        failure: OSError | None = None
        try:
            self._file.close()
        except OSError as error:
            failure = error
        self._file = None
        if self._temporary is not None:
            try:
                os.replace(self._temporary, self.path)
            except OSError as error:
                failure = failure or error
            self._temporary = None
        if failure is not None and not self._write_failed:
            raise self._failed(failure)
        log.info("recorded %d transfers to %s", self._count, self.path)

    def _discard(self) -> None:
        """Drop a transcript that holds not even its header."""
        if self._file is not None:
            with contextlib.suppress(OSError):  # the disk that refused the header refuses this too
                self._file.close()
            self._file = None
        if self._temporary is not None:
            self._temporary.unlink(missing_ok=True)
            self._temporary = None

    def _failed(self, error: OSError) -> UsageError:
        return UsageError(
            f"cannot write transcript {self.path}: {error.strerror}: free some space or "
            "choose another --record path",
            culprit=str(self.path),
        )

    def _write_transfer(self, transfer: Transfer, error: FelbootError | None = None) -> None:
        if error is not None:
            transfer = replace(transfer, error=type(error).__name__, message=str(error))
        self._write(transfer.to_json())
        self._count += 1

    def _write(self, line: dict[str, Any]) -> None:
        if self._file is None:
            raise TranscriptError(f"transcript {self.path} is already closed")
        try:
            self._file.write(json.dumps(line, separators=(",", ":")) + "\n")
        except OSError as error:  # a full disk: the session cannot be recorded any further
            self._write_failed = True
            raise self._failed(error) from None


# Reading -------------------------------------------------------------------------


def load_transcript(path: Path) -> tuple[dict[str, Any], list[Transfer]]:
    """The header and transfers of the transcript at ``path``; TranscriptError if malformed."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise UsageError(
            f"cannot read transcript {path}: {error.strerror}: check the path after replay:"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise _malformed(path, line, "not UTF-8 text") from None
    header: dict[str, Any] | None = None
    transfers: list[Transfer] = []
    for number, line_text in enumerate(text.split("\n"), start=1):
        if not line_text.strip():
            continue
        try:
            line = json.loads(line_text)
        except (ValueError, RecursionError):
            raise _malformed(path, number, "not a JSON value") from None
        if not isinstance(line, dict):
            raise _malformed(path, number, "not a JSON object")
        if header is None:
            header = _parse_header(line, path, number)
        else:
            transfers.append(_parse_transfer(line, len(transfers), path, number))
    if header is None:
        raise TranscriptError(f"transcript {path} is empty: re-record it with --record")
    return header, transfers


def _malformed(path: Path, line: int, why: str) -> TranscriptError:
    return TranscriptError(
        f"transcript {path} line {line} is malformed: {why}; re-record it with --record"
    )


def _parse_header(line: dict[str, Any], path: Path, number: int) -> dict[str, Any]:
    version = line.get(HEADER_KEY)
    if _is_int(version) and version != FORMAT_VERSION:
        raise _malformed(path, number, f"format version {version}, this felboot reads 1")
    if not _is_int(version):
        raise _malformed(path, number, f'the first line must be the {{"{HEADER_KEY}": 1}} header')
    if not isinstance(line.get("device", ""), str):
        raise _malformed(path, number, '"device" must be a string')
    return line


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_transfer(line: dict[str, Any], expected: int, path: Path, number: int) -> Transfer:
    def bad(why: str) -> TranscriptError:
        return _malformed(path, number, why)

    index, direction, length = line.get("i"), line.get("dir"), line.get("len")
    if index != expected or not _is_int(index):
        raise bad(f'"i" is {index!r}, expected transfer number {expected}')
    if direction not in (OUT, IN):
        raise bad(f'"dir" is {direction!r}, expected "out" or "in"')
    if not _is_int(length) or not 0 <= length <= MAX_BULK_TRANSFER:
        raise bad(f'"len" is {length!r}, expected a size from 0 to {MAX_BULK_TRANSFER}')
    error = line.get("error")
    message = line.get("message", "")
    if error is not None:
        if not isinstance(message, str):
            raise bad('"message" must be a string')
        if _error_class(error) is None:
            raise bad(f'"error" is {error!r}, not a felboot error class')
    data: bytes | None = None
    if "data" in line:
        data = _decode(line["data"], bytes.fromhex, '"data" is not valid hex', bad)
    elif "b64" in line:
        data = _decode(line["b64"], _from_base64, '"b64" is not valid base64', bad)
    if data is not None and len(data) != length:
        raise bad(f'the payload holds {len(data)} bytes but "len" says {length}')
    digest = line.get("sha256")
    if digest is not None:
        if not isinstance(digest, str) or len(digest) != 64 or not _is_hex(digest):
            raise bad('"sha256" must be 64 hex digits')
        if data is not None and _sha256(data) != digest.lower():
            raise bad('the payload does not match its "sha256"')
    if error is not None and direction == IN:
        pass  # the failed IN transfer received nothing
    elif direction == OUT and length > INLINE_LIMIT:
        if data is None and digest is None:
            raise bad(f'an OUT transfer of {length} bytes needs "sha256"')
    elif data is None:
        want = '"data" (hex)' if length <= INLINE_LIMIT else '"b64"'
        raise bad(f"an {direction.upper()} transfer of {length} bytes needs {want}")
    return Transfer(
        index,
        direction,
        length,
        digest.lower() if digest is not None else _sha256(data or b""),
        data,
        error,
        message,
    )


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def _from_base64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _decode(
    value: object,
    decode: Callable[[str], bytes],
    invalid: str,
    bad: Callable[[str], TranscriptError],
) -> bytes:
    if not isinstance(value, str):
        raise bad(invalid)
    try:
        return decode(value)
    except (ValueError, binascii.Error):
        raise bad(invalid) from None


def _error_class(name: object) -> type[FelbootError] | None:
    """The felboot error class called ``name``; None for anything else."""
    cls = getattr(errors, name, None) if isinstance(name, str) else None
    return cls if isinstance(cls, type) and issubclass(cls, FelbootError) else None


class ReplayTransport(Transport):
    """Answers from a transcript, failing at the first transfer the client does differently."""

    def __init__(self, path: Path) -> None:
        self.path = path
        header, self._transfers = load_transcript(path)
        self.recorded_from = str(header.get("device") or "an unnamed device")
        self.description = f"replay of {path.name} (recorded from {self.recorded_from})"
        self._next = 0

    @property
    def remaining(self) -> int:
        """How many recorded transfers the client has not made yet."""
        return len(self._transfers) - self._next

    def bulk_out(self, data: bytes | memoryview) -> None:
        payload = bytes(data)
        expected = self._take(describe(OUT, len(payload), payload))
        if expected.direction != OUT or expected.length != len(payload):
            raise self._diverged(expected, describe(OUT, len(payload), payload))
        if expected.data is not None and expected.data != payload:
            raise self._diverged(expected, describe(OUT, len(payload), payload), payload)
        if expected.data is None and expected.sha256 != _sha256(payload):
            got = describe(OUT, len(payload), None, _sha256(payload))
            raise self._diverged(expected, got)
        self._raise_recorded_error(expected)

    def bulk_in(self, length: int) -> bytes:
        got = f"IN of at most {length} bytes"
        expected = self._take(got)
        if expected.direction != IN or expected.length > length:
            raise self._diverged(expected, got)
        self._raise_recorded_error(expected)
        assert expected.data is not None  # load_transcript guarantees IN payloads
        return expected.data

    def pause(self, seconds: float, why: str) -> None:
        log.debug("replay: not pausing %.2f s (%s)", seconds, why)

    def finish(self) -> None:
        """Raise TranscriptError when the session made fewer transfers than were recorded."""
        if self.remaining:
            expected = self._transfers[self._next]
            raise TranscriptError(
                f"transcript {self.path} diverges at transfer #{expected.index}: expected "
                f"{expected.summary()}, but the session ended ({self.remaining} transfers "
                "left); re-record it with --record"
            )

    def _take(self, got: str) -> Transfer:
        if self._next >= len(self._transfers):
            raise TranscriptError(
                f"transcript {self.path} ends after {len(self._transfers)} transfers, "
                f"got {got} as transfer #{self._next}; re-record it with --record"
            )
        transfer = self._transfers[self._next]
        self._next += 1
        return transfer

    def _diverged(
        self, expected: Transfer, got: str, payload: bytes | None = None
    ) -> TranscriptError:
        where = ""
        if payload is not None and expected.data is not None:
            offset = next(
                i for i, (a, b) in enumerate(zip(expected.data, payload, strict=True)) if a != b
            )
            where = f" (first difference at byte {offset})"
        return TranscriptError(
            f"transcript {self.path} diverges at transfer #{expected.index}: expected "
            f"{expected.summary()}, got {got}{where}; re-record it with --record"
        )

    def _raise_recorded_error(self, transfer: Transfer) -> None:
        if transfer.error is not None:
            error_class = _error_class(transfer.error) or TranscriptError
            raise error_class(transfer.message)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _creation_time() -> datetime:
    """Now, or SOURCE_DATE_EPOCH when set (re-recorded fixtures then differ only on the wire)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), timezone.utc)
    return datetime.now(timezone.utc)
