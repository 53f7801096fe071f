"""The desk: `--config`, `felboot config show` and `felboot doctor`, and filling args from config.

cli.py calls ``add_global_arguments`` on the main parser, ``register`` on its
subparsers, and ``configure(args)`` once after parsing (inside its FelbootError
handling), so every command sees the config's values in the options the user
did not give (see felboot.config for the rule: not given = None).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from felboot.config import (
    RUN_DEFAULTS,
    ConfigError,
    MergedConfig,
    apply_to_args,
    load_config,
    show_lines,
)

Handler = Callable[[argparse.Namespace], int]
AddCommand = Callable[..., argparse.ArgumentParser]  # cli._add(subparsers, name, handler, help)


def add_global_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="project config to use instead of the felboot.toml found from here upwards",
    )


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
        print(json.dumps(config.to_dict(), indent=2))
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
        print(json.dumps(data, indent=2))
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
