"""expect.py: presets, fail-on defaults, the in-order matcher and its verdicts (no I/O)."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from felboot import errors
from felboot.expect import (
    DEFAULT_CHECK_TIMEOUT,
    EXIT_FAILED,
    EXIT_PASSED,
    EXIT_TIMED_OUT,
    Check,
    Outcome,
    Watcher,
    make_check,
)

# Lines as Debian's Xen 4.17 and a 6.1 dom0 print them (tests/test_qemu_e2e.py boots them).
XEN_BOOT = [
    "U-Boot 2023.01+dfsg-2+deb12u1 (Apr 04 2024 - 18:21:21 +0000) Allwinner Technology",
    "Starting kernel ...",
    "(XEN) Xen version 4.17.5-pre (Debian 4.17.5+23-ga4e5191dc0-1) (pkg-xen-devel@lists.alioth"
    ".debian.org) (arm-linux-gnueabihf-gcc (Debian 12.2.0-14) 12.2.0) debug=n Tue Jan  7 2025",
    "(XEN) *** LOADING DOMAIN 0 ***",
    "(XEN) Loading d0 kernel from boot module @ 0000000048300000",
    "[    0.000000] Booting Linux on physical CPU 0x0",
    "[    0.000000] Linux version 6.1.0-57-armmp-lpae (debian-kernel@lists.debian.org)",
]


def run(check: Check, lines: list[str], partial: str | None = None) -> Watcher:
    watcher = Watcher(check, started=100.0)
    for number, line in enumerate(lines):
        watcher.feed(line, 100.0 + number)
        if watcher.done:
            break
    if partial is not None and not watcher.done:
        watcher.feed_partial(partial, 200.0)
    return watcher


def test_xen_preset_is_banner_dom0_then_linux_and_passes_on_real_lines() -> None:
    check = make_check(["xen"])
    assert len(check.expect) == 3
    watcher = run(check, XEN_BOOT)
    assert watcher.done
    verdict = watcher.verdict(110.0)
    assert verdict.outcome is Outcome.PASSED and verdict.exit_code == EXIT_PASSED
    assert [s.line for s in verdict.seen] == [XEN_BOOT[2], XEN_BOOT[3], XEN_BOOT[5]]
    assert verdict.seen[0].seconds == 2.0  # seconds since the watch began
    assert "passed" in verdict.summary() and XEN_BOOT[5] in "\n".join(verdict.report())


def test_xen_dom0_pattern_takes_either_line_xen_prints() -> None:
    # Some consoles lose the banner line; "Loading d0 kernel" alone still counts.
    check = make_check(["xen"])
    lines = [XEN_BOOT[2], XEN_BOOT[4], XEN_BOOT[5]]
    assert run(check, lines).verdict(0).outcome is Outcome.PASSED


def test_login_preset_matches_a_prompt_without_newline() -> None:
    check = make_check(["linux", "login"])
    getty = ["", "Debian GNU/Linux 12 debian ttyS0", ""]
    watcher = run(check, [XEN_BOOT[5], *getty], "debian login: ")
    verdict = watcher.verdict(201.0)
    assert verdict.outcome is Outcome.PASSED
    assert verdict.seen[-1].line == "debian login: "
    assert not run(make_check(["login"]), ["Last login: Tue Jan  7 10:00:00 2025"]).done


def test_uboot_preset_skips_the_spl_banner() -> None:
    check = make_check(["uboot"])
    assert not run(check, ["U-Boot SPL 2023.01+dfsg-2 (Apr 04 2024 - 18:21:21 +0000)"]).done
    assert run(check, [XEN_BOOT[0]]).done


def test_patterns_are_matched_in_order() -> None:
    check = make_check(["Linux version", "Booting Linux"], timeout=5)
    watcher = run(check, XEN_BOOT)  # "Booting Linux" comes before "Linux version"
    verdict = watcher.verdict(107.0)
    assert verdict.outcome is Outcome.TIMED_OUT
    assert verdict.missing == ("Booting Linux",)


def test_two_patterns_on_one_line_in_order_but_one_match_each() -> None:
    assert run(make_check(["Booting", "Linux"]), [XEN_BOOT[5]]).done
    assert not run(make_check(["Linux", "Booting"]), [XEN_BOOT[5]]).done
    twice = make_check(["CPU", "CPU"])
    assert not run(twice, [XEN_BOOT[5]]).done
    assert run(twice, [XEN_BOOT[5], "CPU1: thread -1, cpu 1, socket 0"]).done


def test_an_unfinished_line_is_not_matched_twice_when_finished() -> None:
    check = make_check(["login:", "login:"])
    watcher = Watcher(check, 0.0)
    watcher.feed_partial("debian login: ", 1.0)
    watcher.feed_partial("debian login: ", 1.1)  # fed again, unchanged
    watcher.feed("debian login: root", 2.0)
    assert not watcher.done
    watcher.feed_partial("debian login: ", 3.0)
    assert watcher.done


def test_default_fail_on_catches_linux_xen_and_uboot_failures() -> None:
    check = make_check()
    for line in (
        "[    3.100000] Kernel panic - not syncing: VFS: Unable to mount root fs on "
        "unknown-block(0,0)",
        "(XEN) Panic on CPU 0:",
        "data abort",  # U-Boot's do_data_abort on 32-bit ARM
        "(XEN) CPU0: Unexpected Trap: Data Abort",
    ):
        watcher = run(dataclasses.replace(check, after=0), [line])
        assert watcher.done and watcher.verdict(0).outcome is Outcome.FAILED, line
    assert not run(check, XEN_BOOT).failing


def test_fail_on_shows_the_lines_around_it() -> None:
    check = dataclasses.replace(make_check(["login"]), before=2, after=2)
    lines = [
        "(XEN) Loading d0 kernel from boot module @ 0000000048300000",
        "(XEN) Allocating 1:1 mappings totalling 512MB for dom0:",
        "(XEN) ****************************************",
        "(XEN) Panic on CPU 0:",
        "(XEN) Unable to copy the kernel in the hwdom memory",
        "(XEN) ****************************************",
        "(XEN) Reboot in five seconds...",
    ]
    watcher = run(check, lines)
    assert watcher.done
    verdict = watcher.verdict(106.0)
    assert verdict.outcome is Outcome.FAILED and verdict.exit_code == EXIT_FAILED
    assert verdict.failure is not None and verdict.failure.line == lines[3]
    assert verdict.context == (
        f"  {lines[1]}",
        f"  {lines[2]}",
        f"> {lines[3]}",
        f"  {lines[4]}",
        f"  {lines[5]}",
    )
    assert verdict.missing == (make_check(["login"]).expect[0].pattern,)
    assert r"\(XEN\) Panic on CPU" in verdict.summary()


def test_fail_on_waits_a_grace_period_for_the_lines_after() -> None:
    check = dataclasses.replace(make_check(), grace=0.5)
    watcher = Watcher(check, 0.0)
    watcher.feed("(XEN) Panic on CPU 0:", 1.0)
    assert watcher.failing and not watcher.done  # the reason is on the next line
    assert watcher.grace_deadline() == 1.5
    assert watcher.verdict(1.5).outcome is Outcome.FAILED


def test_fail_on_an_unfinished_line_keeps_the_finished_text() -> None:
    watcher = Watcher(dataclasses.replace(make_check(), after=1), 0.0)
    watcher.feed_partial("Kernel panic - not syncing: ", 1.0)
    watcher.feed("Kernel panic - not syncing: Attempted to kill init!", 1.1)
    watcher.feed("---[ end Kernel panic - not syncing: Attempted to kill init! ]---", 1.2)
    verdict = watcher.verdict(1.3)
    assert verdict.failure is not None
    assert verdict.failure.line.endswith("Attempted to kill init!")
    assert verdict.context[-1].startswith("  ---[ end Kernel panic")


def test_user_fail_on_replaces_the_defaults_unless_default_is_named() -> None:
    assert [p.pattern for p in make_check(fail_on=["Oops"]).fail_on] == ["Oops"]
    assert len(make_check(fail_on=["default", "Oops"]).fail_on) == 4
    assert make_check(fail_on=["none"]).fail_on == ()


def test_time_out_shows_the_last_lines_and_the_unfinished_one() -> None:
    check = dataclasses.replace(make_check(["login"]), tail=3)
    verdict = run(check, XEN_BOOT, partial="Loading, please wait...").verdict(220.0)
    assert verdict.outcome is Outcome.TIMED_OUT and verdict.exit_code == EXIT_TIMED_OUT
    assert verdict.context == (*XEN_BOOT[-2:], "Loading, please wait...")
    assert verdict.seconds == 120.0
    report = verdict.report()
    assert "timed out after 120.0 s" in report[0] and "0 of 1" in report[0]
    assert report[1] == "the last 3 line(s):"


def test_nothing_expected_ends_with_exit_0() -> None:
    check = make_check(timeout=1)
    watcher = run(check, XEN_BOOT)
    assert not watcher.done
    verdict = watcher.verdict(101.0)
    assert verdict.outcome is Outcome.ENDED and verdict.exit_code == 0


def test_colour_escapes_do_not_hide_a_match() -> None:
    check = make_check([r"\[  OK  \] Reached target"])
    assert run(check, ["[\x1b[0;32m  OK  \x1b[0m] Reached target Multi-User System."]).done


def test_expect_gets_a_default_timeout_and_the_given_one_is_kept() -> None:
    assert make_check(["xen"]).timeout == DEFAULT_CHECK_TIMEOUT
    assert make_check(["xen"], timeout=0.5).timeout == 0.5
    assert make_check().timeout is None  # only watching: until Ctrl-C


@pytest.mark.parametrize("option", ["expect", "fail_on"])
def test_a_bad_regex_is_named(option: str) -> None:
    flag = "--" + option.replace("_", "-")
    with pytest.raises(errors.UsageError, match=re.escape(f"{flag} '(XEN) Panic [' is not a")):
        make_check(**{option: ["(XEN) Panic ["]})


@pytest.mark.parametrize("seconds", [0.0, -1.0, float("nan")])
def test_a_timeout_must_be_above_zero(seconds: float) -> None:
    with pytest.raises(errors.UsageError, match="--timeout"):
        make_check(["xen"], timeout=seconds)


def test_exit_codes_are_distinct_from_the_error_classes() -> None:
    used = {
        cls.exit_code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.FelbootError)
    }
    assert EXIT_FAILED not in used and EXIT_TIMED_OUT not in used
    assert EXIT_FAILED != EXIT_TIMED_OUT and EXIT_PASSED == 0


def test_verdict_as_json() -> None:
    verdict = run(make_check(["xen"]), XEN_BOOT).verdict(110.0)
    data = json.loads(json.dumps(verdict.to_dict()))
    assert data["outcome"] == "passed" and data["exit_code"] == 0
    assert data["seen"][0]["line"] == XEN_BOOT[2]
