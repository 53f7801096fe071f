"""docs/json.md is the --json contract: every example in it is what the command prints.

Each ```sh block (one felboot command) is followed by the ```json block it
prints. The model is deterministic and SOURCE_DATE_EPOCH fixes the boot
script's timestamp, so only what must vary is normalised (the doc says what).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from felboot.cli import build_parser, main
from tests.support import ROOT

DOC = ROOT / "docs" / "json.md"
SCRATCH = "/tmp/felboot-doc"  # the doc's output directory; a test's tmp_path stands in
EPOCH = "1767225600"
EXAMPLE = re.compile(r"```sh\n(?P<command>.*?)\n```\n\n```json\n(?P<output>.*?)```", re.DOTALL)


def examples() -> list[tuple[str, str]]:
    found = [
        (match["command"].replace("\\\n", " "), match["output"])
        for match in EXAMPLE.finditer(DOC.read_text())
    ]
    assert found, f"no examples in {DOC}"
    return found


def command_name(command: str) -> str:
    """The felboot command an example runs ("run --dry-run" counts as "run")."""
    words = [w for w in shlex.split(command)[1:] if not w.startswith("-")]
    parser_commands = subcommands()
    return next(w for w in words if w in parser_commands)


def subcommands() -> set[str]:
    parser = build_parser()
    actions = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return set(actions[0].choices)  # type: ignore[attr-defined]


def normalise(documented: Any, printed: Any) -> tuple[Any, Any]:
    """The doc's value and the printed one with what must vary made equal (see docs/json.md)."""
    if isinstance(documented, dict) and isinstance(printed, dict):
        if documented.get("timings") is not None and printed.get("timings") is not None:
            assert set(documented["timings"]) == set(printed["timings"])
            for data in (documented, printed):
                data["timings"] = dict.fromkeys(data["timings"])
                data["rate"] = None
        for data in (documented, printed):
            if "uboot_installed" in data:
                data["uboot_installed"] = None
        pairs = [normalise(documented[k], printed[k]) for k in documented if k in printed]
        keys = [k for k in documented if k in printed]
        return (
            {**documented, **dict(zip(keys, (p[0] for p in pairs), strict=True))},
            {**printed, **dict(zip(keys, (p[1] for p in pairs), strict=True))},
        )
    if isinstance(documented, list) and isinstance(printed, list):
        if documented and documented[-1] == "...":  # shortened in the doc: a prefix
            documented, printed = documented[:-1], printed[: len(documented) - 1]
        pairs = [normalise(d, p) for d, p in zip(documented, printed, strict=False)]
        extra_doc, extra_printed = documented[len(pairs) :], printed[len(pairs) :]
        return [p[0] for p in pairs] + extra_doc, [p[1] for p in pairs] + extra_printed
    return documented, printed


@pytest.mark.parametrize(
    "command, output", [pytest.param(c, o, id=c.removeprefix("felboot ")) for c, o in examples()]
)
def test_the_example_is_what_the_command_prints(
    command: str, output: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    # `list` on the real bus: a board plugged into the test host must not change the answer.
    monkeypatch.setattr("felboot.devices.SystemUsbBus.find", lambda self: [])
    # `config show`: the user file under the doc's scratch directory, the device from the
    # environment, and no felboot.toml of the developer's own on the way up.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # printed as SCRATCH
    monkeypatch.setenv("FELBOOT_DEVICE", "sim")
    argv = [word.replace(SCRATCH, str(tmp_path)) for word in shlex.split(command)[1:]]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == EXIT_CODES.get(command_name(command), 0), err
    out = out.replace(str(ROOT), "<repository>")
    printed = json.loads(out.replace(str(tmp_path), SCRATCH))
    documented = json.loads(output)
    assert next(iter(printed)) == "schema" and printed["schema"] == 1
    documented, printed = normalise(documented, printed)
    assert printed == documented, f"docs/json.md is out of date for: {command}\n{out}"


#: Examples whose command does not exit 0 (docs/json.md says why).
EXIT_CODES = {"list": 3}
#: Commands documented by shape only: their output describes the host.
SHAPE_ONLY = {"doctor", "dump", "completion", "manpage"}  # no JSON example to run


def test_every_command_has_an_example() -> None:
    documented = {command_name(command) for command, _ in examples()}
    assert documented == subcommands() - SHAPE_ONLY
    assert all(f"### {name}" in DOC.read_text() for name in SHAPE_ONLY)


def test_run_and_its_dry_run_have_the_same_keys() -> None:
    outputs = {
        "--dry-run" in command: json.loads(output)
        for command, output in examples()
        if command_name(command) == "run"
    }
    real, dry = outputs[False], outputs[True]
    assert list(real) == list(dry)
    assert dry["dry_run"] is True and dry["device"] is None and dry["timings"] is None
    assert real["dry_run"] is False and real["device"] and real["timings"]
    assert set(real["timings"]) == {"find", "spl", "upload", "start", "total"}
    assert list(real["plan"]) == list(dry["plan"])
