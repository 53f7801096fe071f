"""sunxi-fel's grammar: its spellings of the commands, and several commands in one run.

``sunxi-fel spl u.bin write 0x42000000 f exe 0x42000000`` runs its commands in
order on one opened device (fel.c's main loop takes each verb with as many
words as it needs, then the next verb). felboot does the same for the commands
that talk to a board in FEL: ``split_commands`` cuts the command line into one
segment per command by each command's positional arguments (a word that names
a command starts the next segment only once the current one has what it
needs, so ``write 0x2000 spl`` still writes a file called spl), and
``run_chain`` runs the parsed segments on ONE FelDevice, opened once: the SPL
run by ``spl`` has brought DRAM up for the ``write`` after it, on a board as
on the model.

As in sunxi-fel, ``uboot`` starts U-Boot when the chain ends, so the ``write``
steps after it are loaded first (a boot script or uEnv text among them is
handed to U-Boot, as sunxi-fel's file_upload() does). Pure argv work and
dispatch; no heavy imports at module level.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from felboot.errors import UsageError

#: sunxi-fel's spellings -> felboot's command (fel.c's usage text and main loop).
ALIASES = {
    "ver": "version",
    "hex": "hexdump",
    "exe": "exec",
    "execute": "exec",
    "wdreset": "reset",
    "write-with-progress": "write",  # felboot shows progress anyway
    "multi": "write",  # multi[write] COUNT ADDR FILE ...: COUNT is checked, then dropped
    "multiwrite": "write",
}
COUNTED = frozenset({"multi", "multiwrite"})

#: The commands that work on a board in FEL, and so may be chained.
CHAINABLE = frozenset(
    {
        "version", "sid", "sid-dump", "sid-registers", "info", "read", "write", "hexdump",
        "dump", "exec", "readl", "writel", "fill", "clear", "memmove", "reset", "reset64",
        "spl", "uboot",
    }
)  # fmt: skip

#: The board leaves FEL at these: nothing can follow them in a chain.
LEAVES_FEL = frozenset({"reset", "reset64"})

#: Options that must be the same for every step: they choose and open the one device.
SESSION_OPTIONS = ("device", "wait", "record", "force", "config")


def _takes_value(parser: argparse.ArgumentParser, word: str) -> bool:
    """Whether the option ``word`` consumes the next word as its value."""
    if word.startswith("--") and "=" in word:
        return False
    action = parser._option_string_actions.get(word)
    if action is None:
        return False  # -vv, -d1:7 (value attached), or unknown: argparse will say
    return action.nargs != 0


def _positional_limits(parser: argparse.ArgumentParser) -> tuple[int, float]:
    """The fewest and most positional words a command takes."""
    low, high = 0, 0.0
    for action in parser._actions:
        if action.option_strings or isinstance(action, argparse._SubParsersAction):
            continue
        nargs = action.nargs
        if nargs is None:
            low, high = low + 1, high + 1
        elif isinstance(nargs, int):
            low, high = low + nargs, high + nargs
        elif nargs == "+":
            low, high = low + 1, float("inf")
        elif nargs == "*":
            high = float("inf")
        elif nargs == "?":
            high += 1
    return low, high


class _Segment:
    def __init__(self, name: str, parser: argparse.ArgumentParser, pairs: int | None) -> None:
        self.words = [name]
        self.name = name
        self.parser = parser
        self.positionals = 0
        self.pairs = pairs  # multiwrite's COUNT: exactly this many ADDR FILE pairs
        self.low, self.high = _positional_limits(parser)

    def complete(self) -> bool:
        """Whether a command word now starts the next segment instead of being an argument."""
        if self.pairs is not None:
            return self.positionals == 2 * self.pairs
        if self.name == "write":
            return self.positionals >= 2 and self.positionals % 2 == 0
        return self.positionals >= self.low

    def full(self) -> bool:
        return self.positionals >= self.high


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _count(word: str | None, verb: str) -> int:
    try:
        count = int(word or "", 0)
    except ValueError:
        count = 0
    if count < 1:
        raise UsageError(
            f"{verb} wants the number of ADDR FILE pairs first ({word!r} is not one): "
            f"{verb} 2 0x2000 a.bin 0x42000000 b.bin, or felboot write 0x2000 a.bin ..."
        )
    return count


def split_commands(parser: argparse.ArgumentParser, words: Sequence[str]) -> list[list[str]]:
    """The command line as one argv per command, each with the options before the first.

    sunxi-fel's spellings become felboot's names. A line whose command does not
    talk to a board (plan, run, inspect ...) comes back whole, only respelled.
    """
    words = list(words)
    index = 0
    prefix: list[str] = []
    while index < len(words):  # the global options before the first command
        word = words[index]
        if word == "--" or not word.startswith("-") or word == "-":
            break
        prefix.append(word)
        index += 1
        if _takes_value(parser, word) and index < len(words):
            prefix.append(words[index])
            index += 1
    rest = words[index:]
    if not rest or rest[0] == "--":
        return [words]
    commands = _subcommands(parser)
    first = ALIASES.get(rest[0], rest[0])
    if first not in CHAINABLE or first not in commands:
        return [words]
    segments: list[_Segment] = []
    position = 0
    while position < len(rest):
        word = rest[position]
        position += 1
        name = ALIASES.get(word, word)
        current = segments[-1] if segments else None
        if current is None or (name in CHAINABLE and name in commands and current.complete()):
            pairs = None
            if word in COUNTED:
                pairs = _count(rest[position] if position < len(rest) else None, word)
                position += 1
            segments.append(_Segment(name, commands[name], pairs))
            continue
        current.words.append(word)
        if word.startswith("-") and word != "-":
            if _takes_value(current.parser, word) and position < len(rest):
                current.words.append(rest[position])
                position += 1
        else:
            current.positionals += 1
    return [prefix + segment.words for segment in segments]


# Running a chain --------------------------------------------------------------------------


def _given(value: object) -> bool:
    return value not in (None, False)


def _session_options(steps: Sequence[argparse.Namespace]) -> dict[str, object]:
    """--device and the like, given once (anywhere) for the whole chain."""
    chosen: dict[str, object] = {}
    for dest in SESSION_OPTIONS:
        values = {repr(getattr(step, dest, None)): getattr(step, dest, None) for step in steps}
        given = [value for value in values.values() if _given(value)]
        if len(given) > 1:
            raise UsageError(
                f"--{dest} differs between the chained commands ({', '.join(map(str, given))}): "
                "the commands of one line share one device session; give it once"
            )
        chosen[dest] = given[0] if given else getattr(steps[0], dest, None)
    return chosen


def _is_script(name: str) -> bool:
    """A boot script image or uEnv text: sunxi-fel tells U-Boot where it is (file_upload())."""
    from felboot.boot import UENV_MAGIC
    from felboot.errors import ImageError
    from felboot.images import load
    from felboot.images.uimage import TYPE_SCRIPT, parse_legacy_image

    data = load(name, "file")
    if data.startswith(UENV_MAGIC):
        return True
    try:
        return parse_legacy_image(data, name, verify=False).image_type == TYPE_SCRIPT
    except ImageError:
        return False


def _fold_into_uboot(steps: list[argparse.Namespace]) -> list[argparse.Namespace]:
    """``uboot FILE write A f ...``: the writes go with U-Boot, which starts at the end."""
    names = [step.command_name for step in steps]
    if "uboot" not in names:
        return steps
    at = names.index("uboot")
    if "spl" in names[:at]:
        raise UsageError("'uboot' runs the SPL itself: drop the 'spl' step before it")
    uboot, after = steps[at], steps[at + 1 :]
    for step in after:
        if step.command_name != "write":
            raise UsageError(
                f"'{step.command_name}' after 'uboot': U-Boot starts when the chain ends "
                "(as in sunxi-fel), so only 'write' steps may follow it; put "
                f"'{step.command_name}' before 'uboot'"
            )
    if getattr(uboot, "loop", None) is not None:
        raise UsageError("'uboot --loop' cannot be chained: run it as a command of its own")
    for step in after:
        pairs = list(step.pairs)
        if len(pairs) % 2:
            raise UsageError(
                f"'{pairs[-1]}' has no partner: give address and file in pairs, e.g. 0x2000 spl.bin"
            )
        for address, name in zip(pairs[0::2], pairs[1::2], strict=True):
            if _is_script(name):
                if uboot.script:
                    raise UsageError(
                        f"two boot scripts for U-Boot ({uboot.script.rpartition('@')[0]} and "
                        f"{name}): U-Boot is told of one; write the other as data"
                    )
                uboot.script = f"{name}@{address}"
            else:
                uboot.write = [*uboot.write, f"{name}@{address}"]
    return steps[: at + 1]


def check_chain(steps: list[argparse.Namespace]) -> list[argparse.Namespace]:
    """Refuse what cannot work before anything is sent; the steps as they will run."""
    for step in steps:
        if step.command_name not in CHAINABLE:
            raise UsageError(
                f"'{step.command_name}' cannot be chained: only commands that talk to a board "
                f"in FEL can ({', '.join(sorted(CHAINABLE))})"
            )
    for step in steps[:-1]:
        leaves = step.command_name in LEAVES_FEL or (step.command_name == "exec" and step.no_return)
        if leaves:
            raise UsageError(
                f"the board leaves FEL at '{step.command_name}': put it last in the chain"
            )
    share_session(steps)
    return _fold_into_uboot(steps)


def share_session(steps: Sequence[argparse.Namespace]) -> None:
    """Give every step the --device (--wait, --record ...) given to any of them.

    Before the config fills in defaults (desk.configure), so that a value given
    after the last command counts for the first one too.
    """
    chosen = _session_options(steps)
    for step in steps:
        for dest, value in chosen.items():
            setattr(step, dest, value)


def run_chain(steps: list[argparse.Namespace]) -> int:
    """Run each step's handler on one device session; the first failing step ends it."""
    from felboot.commands.common import open_device

    steps = check_chain(steps)
    with open_device(steps[0]) as device:
        for step in steps:
            step.session = device  # common.open_device hands this out instead of opening
            code = int(step.handler(step))
            sys.stdout.flush()  # each step's output before the next step's
            if code:
                return code
    return 0
