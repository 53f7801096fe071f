"""The desk: `--config`, `felboot config show` and `felboot doctor`, and filling args from config.

cli.py defines ``--config`` with the global options, calls ``register`` on its
subparsers, and ``configure(args)`` once after parsing (inside its FelbootError
handling), so every command sees the config's values in the options the user
did not give (see felboot.config for the rule: not given = None).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from felboot.commands.common import json_document
from felboot.config import (
    RUN_DEFAULTS,
    ConfigError,
    MergedConfig,
    apply_to_args,
    load_config,
    show_lines,
)
from felboot.errors import UsageError

if TYPE_CHECKING:
    from felboot.console import ConsoleSetup
    from felboot.loop import RoundReport, UBootRequest
    from felboot.run import RunRequest

Handler = Callable[[argparse.Namespace], int]
AddCommand = Callable[..., argparse.ArgumentParser]  # cli._add(subparsers, name, handler, help)


def configure(
    args: argparse.Namespace,
    *,
    cwd: Path | None = None,
    environ: dict[str, str] | None = None,
    user_file: Path | None = None,
    types: Mapping[str, Callable[[Any], Any]] | None = None,
) -> MergedConfig | None:
    """Load the config for ``args`` and fill what the command line left out.

    Keeps the result in ``args.felboot_config``. A ConfigError goes up, except for
    a command that set ``config_error_ok`` (doctor, which reports it as a check):
    then ``args.config_error`` holds it and only the built-in defaults apply.
    ``types``: dest -> the ``type=`` function of its option, applied to config values
    (see felboot.config.apply_to_args).
    """
    explicit = Path(args.config) if getattr(args, "config", None) else None
    env = dict(os.environ) if environ is None else environ
    config: MergedConfig | None
    try:
        config = load_config(cwd or Path.cwd(), explicit, env, user_file=user_file)
    except ConfigError as error:
        if not getattr(args, "config_error_ok", False):
            raise
        args.config_error = error
        config = None
    empty = MergedConfig({}, None, Path("-"), False)
    apply_to_args(config or empty, args, RUN_DEFAULTS, types)
    args.felboot_config = config
    return config


def _config(args: argparse.Namespace) -> MergedConfig | None:
    if not hasattr(args, "felboot_config"):
        configure(args)
    config: MergedConfig | None = args.felboot_config
    return config


def cmd_config_show(args: argparse.Namespace) -> int:
    config = _config(args)
    assert config is not None  # configure raised otherwise: config show sets no config_error_ok
    if getattr(args, "json", False):
        print(json_document(config.to_dict()))
    else:
        print("\n".join(show_lines(config)))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from felboot.doctor import Host, exit_code, run_checks

    config = _config(args)
    results = run_checks(Host(), config, getattr(args, "config_error", None))
    if getattr(args, "json", False):
        data: dict[str, Any] = {
            "ok": exit_code(results) == 0,
            "checks": [result.to_dict() for result in results],
        }
        print(json_document(data))
    else:
        print("\n".join(result.line() for result in results))
    return exit_code(results)


DOCTOR_DESCRIPTION = (
    "Checks what stands between you and a boot, one line each: libusb, the udev rule, "
    "permission on each FEL board's device node, its SoC (one FEL VERSION request), a "
    "driver holding it, its USB link speed, the configured U-Boot and images, pyserial and "
    "the console port. ok / warn (may work, or be slow) / FAIL (blocks a boot) / skip "
    "(nothing to look at). Exits 1 when a check FAILs. --json: {ok, checks: [{check, "
    "status, detail, fix}]}."
)


def register(subparsers: Any, add: AddCommand) -> None:
    """`felboot config [show]` and `felboot doctor`, through cli's ``_add``."""
    p = add(
        subparsers,
        "config",
        cmd_config_show,
        "show the merged config and where each value came from",
        "felboot.toml (here or a parent, up to the VCS root; or --config FILE), the user "
        "file in the XDG config directory, then FELBOOT_DEVICE/FELBOOT_BOARD/FELBOOT_CONSOLE; "
        "command-line options override all of them.",
    )
    actions = p.add_subparsers(title="actions", metavar="ACTION")
    add(actions, "show", cmd_config_show, "the merged config, one value a line with its source")
    p = add(subparsers, "doctor", cmd_doctor, "check the setup for a boot", DOCTOR_DESCRIPTION)
    p.set_defaults(config_error_ok=True)


# The desk loop and the serial console, for `run` and `uboot` ---------------------------------


def console_setup(args: argparse.Namespace) -> ConsoleSetup | None:
    """--console and the checks, validated before anything is read or sent (None: no console)."""
    from felboot.console import console_from_args

    if args.loop is not None:
        if args.record:
            raise UsageError("--record writes one session; it cannot be used with --loop")
        if getattr(args, "dry_run", False):
            raise UsageError("--dry-run sends nothing, so there is nothing to loop: drop --loop")
    return console_from_args(args)


@contextmanager
def opened(setup: ConsoleSetup | None) -> Iterator[None]:
    """The console open around the boot: opened before the start, so no early line is lost."""
    if setup is None:
        yield
        return
    setup.console.open()
    try:
        yield
    finally:
        setup.console.close()


def console_verdict(args: argparse.Namespace, setup: ConsoleSetup | None) -> int:
    """Show the console after the start and judge --expect/--fail-on; the exit code."""
    if setup is None:
        return 0
    from felboot.console import watch

    verdict = watch(setup.console, setup.check, sys.stderr if args.json else sys.stdout)
    for line in verdict.report():
        print(f"felboot: {line}", file=sys.stderr)
    return verdict.exit_code


def loop_command(
    args: argparse.Namespace, request: RunRequest | UBootRequest, setup: ConsoleSetup | None
) -> int:
    """`--loop [N]`: boot on every FEL entry; the last round's console verdict is the exit code."""
    from felboot.console import watch
    from felboot.loop import device_source, format_round, run_loop
    from felboot.progress import progress_bar

    last_code = 0

    def on_round(report: RoundReport) -> None:
        print(json_document(report.to_dict()) if args.json else format_round(report), flush=True)
        if not (args.quiet or args.json or (args.loop and report.number >= args.loop)):
            print(
                "waiting for the board in FEL (reset it with FEL held); Ctrl-C ends the loop",
                file=sys.stderr,
            )

    def judge(report: RoundReport) -> str | None:
        nonlocal last_code
        if setup is None:
            return None
        setup.console.mark(f"round {report.number}")
        verdict = watch(setup.console, setup.check, sys.stderr if args.json else sys.stdout)
        last_code = verdict.exit_code
        return verdict.summary()

    with opened(setup):
        run_loop(
            request,
            device_source(args.device, wait=args.wait),
            rounds=args.loop or None,
            on_round=on_round,
            watch=judge,
            progress=lambda total: progress_bar(total, "upload", args.quiet),
        )
    return last_code
