"""Shell completion (argcomplete) and the man page made from the parser."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from felboot.cli import build_parser, main
from felboot.commands.chain import ALIASES
from felboot.commands.completion import manpage


def commands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return list(action.choices)  # type: ignore[attr-defined]


def global_options() -> list[str]:
    parser = build_parser()
    return [
        name for a in parser._actions for name in a.option_strings if name not in ("-h", "--help")
    ]


def test_manpage_lists_every_command_and_global_option(capsys):
    assert main(["manpage"]) == 0
    page = capsys.readouterr().out
    assert page.startswith(".TH FELBOOT 1")
    for name in commands():
        assert f'.SS "{name.replace("-", chr(92) + "-")}"' in page, name
    for option in global_options():
        assert f"\\fB{option.replace('-', chr(92) + '-')}\\fR" in page, option
    for alias in ALIASES:
        assert f"\\fB{alias.replace('-', chr(92) + '-')}\\fR" in page, alias


def test_manpage_is_valid_roff():
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed")
    result = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z"], input=manpage(build_parser()),
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    errors = [line for line in result.stderr.splitlines() if "cannot adjust" not in line]
    assert result.returncode == 0 and not errors, result.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_calls_felboot_back(capsys, shell):
    pytest.importorskip("argcomplete")
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    assert "felboot" in script and "_ARGCOMPLETE" in script


def complete(tmp_path, line: str) -> list[str]:
    """What felboot answers when the shell asks for completions (argcomplete's protocol)."""
    pytest.importorskip("argcomplete")
    answer = tmp_path / "answer"
    env = {
        **os.environ,
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_IFS": "\n",
        "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "COMP_TYPE": "9",
    }
    subprocess.run([sys.executable, "-m", "felboot"], env=env, check=True, capture_output=True)
    return [word.strip() for word in answer.read_text().split("\n")]


def test_completion_offers_every_command(tmp_path):
    offered = set(complete(tmp_path, "felboot "))
    assert set(commands()) <= offered


def test_completion_offers_a_commands_options(tmp_path):
    offered = set(complete(tmp_path, "felboot exec --"))
    assert "--no-return" in offered and "--device" in offered


def test_completion_without_argcomplete_is_one_line(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "argcomplete", None)
    assert main(["completion", "bash"]) == 2
    err = capsys.readouterr().err
    assert "pip install argcomplete" in err and len(err.splitlines()) == 1


HELP_PROBE = """
import contextlib, io, sys
from felboot.cli import main
try:
    with contextlib.redirect_stdout(io.StringIO()):
        main(["--help"])
except SystemExit:
    pass
heavy = ("argcomplete", "usb", "unicorn", "tqdm", "construct")
print([name for name in heavy if name in sys.modules])
"""


def test_help_imports_no_argcomplete_and_stays_light():
    result = subprocess.run(
        [sys.executable, "-c", HELP_PROBE], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
