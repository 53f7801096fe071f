"""Know that it booted: ``--expect``, ``--fail-on`` and ``--timeout`` as a pure state machine.

A :class:`Watcher` is fed the console's lines (and the unfinished line at the
end, since a login prompt has no newline) and decides: every expected pattern
seen in order (passed), a fail-on pattern seen (failed, with the lines around
it), or the time is up (timed out, with the last lines). Nothing here reads a
port or a clock: the caller passes the time in, so the tests drive it line by
line.

The preset patterns are the exact text the programs print, checked against
Debian's own builds (``strings`` on the binaries) and the QEMU proof
(tests/test_qemu_e2e.py, which boots Xen 4.17 and a 6.1 dom0):

- Xen prefixes its own console lines with ``(XEN) `` (xen/drivers/char/console.c);
  the banner is ``Xen version %d.%d%s (...)`` (console.c, print_version), dom0
  construction starts with ``*** LOADING DOMAIN 0 ***`` (arch/arm/domain_build.c)
  and then ``Loading %pd kernel from boot module @ ...`` (arch/arm/kernel.c),
  both in /boot/xen-4.17-armhf and -arm64. A panic prints ``Panic on CPU %d:``
  and the reason on the next line (console.c, panic()).
- Linux: ``Booting Linux on physical CPU 0x...`` (arch/arm/kernel/setup.c,
  arch/arm64/kernel/setup.c); ``Kernel panic - not syncing: %s`` (kernel/panic.c).
- U-Boot on 32-bit ARM prints ``data abort`` (arch/arm/lib/interrupts.c,
  Debian's u-boot-sunxi 2023.01); Xen on Arm says ``Data Abort`` (arch/arm/traps.c).
- getty and login print ``HOSTNAME login: `` without a newline (util-linux
  agetty, shadow's login.c).
"""

from __future__ import annotations

import enum
import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from felboot.errors import UsageError

# Exit codes of a console check; 1-9 are errors.py's, so these stay clear of them.
EXIT_PASSED = 0
EXIT_FAILED = 10
EXIT_TIMED_OUT = 11

XEN_BANNER = r"\(XEN\) Xen version \d+\.\d+"
XEN_DOM0 = r"\(XEN\) (?:\*\*\* LOADING DOMAIN 0 \*\*\*|Loading d0 kernel from boot module)"
LINUX_BOOT = r"Booting Linux on physical CPU"
UBOOT_BANNER = r"^U-Boot (?!SPL )\d{4}\.\d{2}"  # U-Boot proper, not the SPL's "U-Boot SPL ..."
LOGIN_PROMPT = r"\blogin: *$"

# --expect NAME: what run.expected_console predicts, as patterns.
EXPECT_PRESETS: dict[str, tuple[str, ...]] = {
    "xen": (XEN_BANNER, XEN_DOM0, LINUX_BOOT),
    "linux": (LINUX_BOOT,),
    "uboot": (UBOOT_BANNER,),
    "login": (LOGIN_PROMPT,),
}

DEFAULT_FAIL_ON: tuple[str, ...] = (
    r"Kernel panic - not syncing",
    r"\(XEN\) Panic on CPU \d+",
    r"(?i)\bdata abort\b",
)
# --fail-on NAME: "default" keeps the defaults next to your own, "none" drops them.
FAIL_ON_PRESETS: dict[str, tuple[str, ...]] = {"default": DEFAULT_FAIL_ON, "none": ()}

DEFAULT_CHECK_TIMEOUT = 120.0  # --expect without --timeout: a check never hangs for ever
# Colour and cursor escapes (systemd's "[  OK  ]") would split the words a pattern looks for.
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def compile_pattern(text: str, option: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as error:
        raise UsageError(
            f"{option} {text!r} is not a regular expression ({error}): escape special "
            r"characters with '\', e.g. '\(XEN\)'"
        ) from None


def parse_patterns(
    values: Iterable[str], option: str, presets: dict[str, tuple[str, ...]]
) -> tuple[re.Pattern[str], ...]:
    """Each value a preset name or a regex, in the order given."""
    patterns: list[re.Pattern[str]] = []
    for value in values:
        for text in presets.get(value, (value,)):
            patterns.append(compile_pattern(text, option))
    return tuple(patterns)


@dataclass(frozen=True)
class Check:
    """What a console check looks for; all numbers already parsed."""

    expect: tuple[re.Pattern[str], ...] = ()
    fail_on: tuple[re.Pattern[str], ...] = ()
    timeout: float | None = None  # seconds; None: until every pattern is seen (or Ctrl-C)
    before: int = 10  # lines shown before a fail-on line
    after: int = 5  # lines shown after it (Xen prints the reason on the next line)
    grace: float = 1.0  # seconds to wait for those lines
    tail: int = 20  # lines shown on a time-out


def make_check(
    expect: Sequence[str] = (),
    fail_on: Sequence[str] | None = None,
    timeout: float | None = None,
) -> Check:
    """--expect/--fail-on/--timeout as given: presets expanded, regexes compiled."""
    if timeout is not None and not timeout > 0:
        raise UsageError(f"--timeout {timeout:g}: give a number of seconds above 0")
    patterns = parse_patterns(expect, "--expect", EXPECT_PRESETS)
    failing = parse_patterns(
        DEFAULT_FAIL_ON if fail_on is None else fail_on, "--fail-on", FAIL_ON_PRESETS
    )
    if timeout is None and patterns:
        timeout = DEFAULT_CHECK_TIMEOUT
    return Check(expect=patterns, fail_on=failing, timeout=timeout)


class Outcome(enum.Enum):
    PASSED = "passed"  # every --expect pattern seen, in order
    FAILED = "failed"  # a --fail-on pattern seen
    TIMED_OUT = "timed out"  # --timeout reached before every pattern was seen
    ENDED = "ended"  # nothing expected: the time given is up, nothing failed


EXIT_CODES = {
    Outcome.PASSED: EXIT_PASSED,
    Outcome.ENDED: EXIT_PASSED,
    Outcome.FAILED: EXIT_FAILED,
    Outcome.TIMED_OUT: EXIT_TIMED_OUT,
}


@dataclass(frozen=True)
class Seen:
    """A pattern and the line it matched, at seconds since the watch began."""

    pattern: str
    line: str
    seconds: float


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    seconds: float  # how long the watch took
    seen: tuple[Seen, ...] = ()
    missing: tuple[str, ...] = ()  # expected patterns not seen, in order
    failure: Seen | None = None
    context: tuple[str, ...] = ()  # the lines around the failure, or the last lines

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    @property
    def passed(self) -> bool:
        return self.exit_code == EXIT_PASSED

    def summary(self) -> str:
        """One line for the user."""
        took = f"{self.seconds:.1f} s"
        if self.outcome is Outcome.PASSED:
            return f"console check passed in {took}: {len(self.seen)} pattern(s) seen in order"
        if self.outcome is Outcome.ENDED:
            return f"console watched for {took}: nothing to expect, no --fail-on line"
        if self.outcome is Outcome.FAILED:
            assert self.failure is not None
            return (
                f"console check failed after {took}: --fail-on '{self.failure.pattern}' "
                f"matched '{self.failure.line.strip()}'"
            )
        waiting = self.missing[0] if self.missing else "?"
        return (
            f"console check timed out after {took} waiting for '{waiting}' "
            f"({len(self.seen)} of {len(self.seen) + len(self.missing)} pattern(s) seen; "
            "a longer --timeout, or look at the lines below)"
        )

    def report(self) -> list[str]:
        """The summary, then what to look at: matches, the lines around a failure, the tail."""
        lines = [self.summary()]
        if self.outcome is Outcome.PASSED:
            lines += [f"  {s.seconds:8.3f} s  {s.line.strip()}" for s in self.seen]
        elif self.outcome is Outcome.FAILED:
            lines.append("the lines around it:")
            lines += [f"  {line}" for line in self.context]
        elif self.outcome is Outcome.TIMED_OUT:
            lines.append(f"the last {len(self.context)} line(s):" if self.context else "no output")
            lines += [f"  {line}" for line in self.context]
        return lines

    def to_dict(self) -> dict[str, object]:
        return {
            "outcome": self.outcome.value,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 3),
            "seen": [
                {"pattern": s.pattern, "line": s.line, "seconds": round(s.seconds, 3)}
                for s in self.seen
            ],
            "missing": list(self.missing),
            "failure": None
            if self.failure is None
            else {"pattern": self.failure.pattern, "line": self.failure.line},
            "context": list(self.context),
        }


@dataclass
class Watcher:
    """Feed it lines; it says when the check is decided and how.

    Patterns are matched in order through the stream: the next one is looked
    for after the end of the previous match, on the same line or a later one.
    ``feed_partial`` takes the unfinished last line (a prompt) and may match it
    too; the same line fed again when finished is not matched twice.
    """

    check: Check
    started: float  # the caller's clock when the watch began
    _index: int = 0  # the next expected pattern
    _line_no: int = 0  # complete lines fed so far
    _resume: tuple[int, int] = (-1, 0)  # (line, offset) after the last match
    _seen: list[Seen] = field(default_factory=list)
    _recent: deque[str] = field(default_factory=deque)
    _failure: Seen | None = None
    _failed_at: float = 0.0
    _after: list[str] = field(default_factory=list)
    _failure_partial: bool = False  # the failing line was still unfinished
    _partial: str = ""

    def __post_init__(self) -> None:
        self._recent = deque(maxlen=max(self.check.before, self.check.tail) + 1)

    @property
    def done(self) -> bool:
        """Decided: every pattern seen, or a failure and its lines after collected."""
        if self._failure is not None:
            return len(self._after) >= self.check.after
        return bool(self.check.expect) and self._index == len(self.check.expect)

    @property
    def failing(self) -> bool:
        return self._failure is not None

    def grace_deadline(self) -> float | None:
        """Until when to wait for the lines after a failure."""
        return self._failed_at + self.check.grace if self._failure is not None else None

    def feed(self, line: str, now: float) -> None:
        """A complete line (without its newline)."""
        self._partial = ""
        if self._failure is not None:
            if self._failure_partial:  # the failing line itself, now finished
                self._failure = Seen(self._failure.pattern, line, self._failure.seconds)
                self._failure_partial = False
            else:
                self._after.append(line)
            return
        self._scan(line, now, partial=False)
        if self._failure is None:  # the failing line is shown apart, not among those before
            self._recent.append(line)
        self._line_no += 1

    def feed_partial(self, text: str, now: float) -> None:
        """The unfinished last line as it stands (it may grow and be fed again)."""
        self._partial = text
        if self._failure is None:
            self._scan(text, now, partial=True)

    def _scan(self, line: str, now: float, partial: bool) -> None:
        text = _ESCAPES.sub("", line)
        for pattern in self.check.fail_on:
            if pattern.search(text):
                self._failure = Seen(pattern.pattern, line, now - self.started)
                self._failed_at = now
                self._failure_partial = partial
                return
        line_at, offset = self._resume
        start = offset if line_at == self._line_no else 0
        while self._index < len(self.check.expect):
            match = self.check.expect[self._index].search(text, start)
            if match is None:
                break
            expected = self.check.expect[self._index].pattern
            self._seen.append(Seen(expected, line, now - self.started))
            self._index += 1
            start = match.end()
            self._resume = (self._line_no, start)

    def verdict(self, now: float) -> Verdict:
        """The outcome as it stands (call once ``done`` or when the time is up)."""
        seconds = now - self.started
        missing = tuple(p.pattern for p in self.check.expect[self._index :])
        if self._failure is not None:
            before = list(self._recent)[-self.check.before :] if self.check.before else []
            context = (
                *(f"  {line}" for line in before),
                f"> {self._failure.line}",  # the failing line, marked
                *(f"  {line}" for line in self._after),
            )
            return Verdict(
                Outcome.FAILED, seconds, tuple(self._seen), missing, self._failure, context
            )
        if self.check.expect and not missing:
            return Verdict(Outcome.PASSED, seconds, tuple(self._seen))
        tail = [*self._recent, self._partial] if self._partial else list(self._recent)
        tail = tail[-self.check.tail :] if self.check.tail else []
        outcome = Outcome.TIMED_OUT if self.check.expect else Outcome.ENDED
        return Verdict(outcome, seconds, tuple(self._seen), missing, None, tuple(tail))
