"""`felboot completion SHELL` (argcomplete's script) and `felboot manpage` (felboot(1)).

Completion is argcomplete's, as esptool does it: the script the shell sources
calls felboot back with _ARGCOMPLETE set, and cli.main() answers from the
parser, so commands, options and --board choices never go stale. argcomplete
is imported only then and here; a felboot without it runs as before.

The man page is made here from the same parser, not by argparse-manpage: one
section for the global options, one per command with its arguments, and
sunxi-fel's spellings and chaining, all from the parser's actions and
felboot.commands.chain's tables, so `felboot manpage` is always this felboot's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from felboot.errors import UsageError

SHELLS = ("bash", "zsh", "fish")


def cmd_completion(args: argparse.Namespace) -> int:
    try:
        import argcomplete
    except ImportError:
        raise UsageError(
            "shell completion needs argcomplete: pip install argcomplete "
            "(Debian: apt install python3-argcomplete)"
        ) from None
    sys.stdout.write(argcomplete.shellcode(["felboot"], shell=args.shell))
    return 0


def cmd_manpage(args: argparse.Namespace) -> int:
    from felboot.cli import build_parser

    sys.stdout.write(manpage(build_parser()))
    return 0


# The man page -------------------------------------------------------------------------


def roff(text: str) -> str:
    """Plain text as roff: backslashes and dashes escaped, no line read as a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(
        "\\&" + line if line.startswith((".", "'")) else line for line in text.splitlines()
    )


def _option_label(action: argparse.Action) -> str:
    names = ", ".join(f"\\fB{roff(name)}\\fR" for name in action.option_strings)
    if action.nargs == 0:
        return names
    metavar = action.metavar or (action.dest.upper() if action.option_strings else action.dest)
    if isinstance(metavar, tuple):
        metavar = " ".join(metavar)
    value = f"\\fI{roff(str(metavar))}\\fR"
    return f"{names} [{value}]" if action.nargs == "?" else f"{names} {value}"


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if action.choices and not action.option_strings:
        text = f"one of {', '.join(map(str, action.choices))}" + (f": {text}" if text else "")
    return roff(text)


def _actions(parser: argparse.ArgumentParser, *, globals_too: bool) -> Iterator[argparse.Action]:
    own = {id(action) for group in parser._action_groups for action in group._group_actions}
    for group in parser._action_groups:
        if not globals_too and group.title and group.title.startswith("global options"):
            continue
        for action in group._group_actions:
            if id(action) not in own or action.help == argparse.SUPPRESS:
                continue
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            yield action


def _subparsers(
    parser: argparse.ArgumentParser,
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise AssertionError("felboot's parser has no commands")


def _usage_words(parser: argparse.ArgumentParser) -> str:
    words = []
    for action in parser._actions:
        if action.option_strings or isinstance(action, argparse._SubParsersAction):
            continue
        name = f"\\fI{roff(str(action.metavar or action.dest).upper())}\\fR"
        if action.nargs in ("+", "*"):
            name += " ..."
        words.append(f"[{name}]" if action.nargs in ("?", "*") else name)
    return " ".join(words)


def manpage(parser: argparse.ArgumentParser) -> str:
    """felboot(1) in roff (man(7) macros) from the parser's actions."""
    from felboot import __version__
    from felboot.commands.chain import ALIASES, CHAINABLE

    sub = _subparsers(parser)
    helps = {choice.dest: choice.help or "" for choice in sub._choices_actions}
    lines = [
        f'.TH FELBOOT 1 "" "felboot {__version__}" "User Commands"',
        ".SH NAME",
        f"felboot \\- {roff(parser.description or '')}",
        ".SH SYNOPSIS",
        ".B felboot",
        "[\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR] [\\fICOMMAND\\fR [\\fIARGS\\fR] ...]",
        ".SH DESCRIPTION",
        roff(
            "felboot boots Allwinner (sunxi) boards over USB through the boot ROM's FEL mode: "
            "the U-Boot SPL, U-Boot, and Xen with dom0 in one command, and it is an everyday "
            "FEL tool (memory, registers, SID, SPL, U-Boot). The global options go before or "
            "after the command."
        ),
        ".SH GLOBAL OPTIONS",
    ]
    for action in _actions(parser, globals_too=True):
        lines += [".TP", _option_label(action), _help(action)]
    lines.append(".SH COMMANDS")
    for name, command in sub.choices.items():
        if command.prog.split()[-1] != name:
            continue  # an argparse alias (felboot has none; sunxi-fel's are below)
        lines += [f'.SS "{roff(name)}"', f".B felboot {roff(name)}"]
        usage = _usage_words(command)
        if usage:
            lines.append(usage)
        lines += [".PP", roff(command.description or helps.get(name, ""))]
        for action in _actions(command, globals_too=False):
            label = (
                _option_label(action)
                if action.option_strings
                else f"\\fI{roff(str(action.metavar or action.dest).upper())}\\fR"
            )
            lines += [".TP", label, _help(action)]
    lines += [
        ".SH COMING FROM SUNXI-FEL",
        roff(
            "sunxi-fel's spellings map onto felboot's commands, and its options -l, -d, --sid "
            "and -p are accepted before the command:"
        ),
    ]
    for alias, target in ALIASES.items():
        lines += [".TP", f"\\fB{roff(alias)}\\fR", f"felboot {roff(target)}"]
    lines += [
        ".PP",
        roff(
            "As in sunxi-fel, the commands that talk to a board may follow each other on one "
            "line, run in order on one device session: felboot spl u-boot-sunxi-with-spl.bin "
            "write 0x42000000 prog.bin exec 0x42000000. After uboot only write steps may "
            "follow; U-Boot starts when the line ends. Chainable: "
            + ", ".join(sorted(CHAINABLE))
            + "."
        ),
        ".SH EXIT STATUS",
        roff(
            "0 done; 1 inspect or doctor found problems; 2 usage; 3 device; 4 protocol; "
            "5 transcript; 6 image; 7 plan; 8 boot; 9 unsafe write; 10, 11 a console check "
            "failed or timed out; 70 a bug in felboot; 130 interrupted; 141 stdout closed."
        ),
        ".SH SEE ALSO",
        ".BR sunxi-fel (1)",
        "",
    ]
    return "\n".join(lines)
