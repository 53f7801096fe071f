"""sunxi-fel's spellings, options and verbs, against the model (--device sim)."""

from __future__ import annotations

import pytest

from felboot.cli import _parse, build_parser, main
from felboot.soc import SID_SECTIONS, SOCS, sid_sections, soc_by_name
from felboot.thunks.memmove import MEMMOVE, build_memmove
from tests.support import assemble_file
from tests.support import run_cli as run

BX_LR = bytes.fromhex("1eff2fe1")
S = ["--device", "sim"]
SID = "02c00081:5e3c4b17:0c4b5f4e:1234abcd"


# Spellings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        (["ver"], ["version"]),
        (["hex", "0xa000", "32"], ["hexdump", "0xa000", "32"]),
        (["wdreset"], ["reset"]),
    ],
)
def test_sunxi_fel_spelling_is_felboots_command(capsys, theirs, ours):
    assert run(capsys, *S, *theirs) == run(capsys, *S, *ours)


@pytest.mark.parametrize("spelling", ["exe", "execute", "exec"])
def test_exe_calls_code_and_sees_it_return(capsys, tmp_path, spelling):
    code_file = tmp_path / "bxlr.bin"
    code_file.write_bytes(BX_LR)
    code, _, err = run(capsys, *S, "write", "0x2000", code_file, spelling, "0x2000")
    assert code == 0, err


@pytest.mark.parametrize(
    "verb", [["write"], ["write-with-progress"], ["multi", "2"], ["multiwrite", "2"]]
)
def test_write_spellings_then_dump(capsysbinary, tmp_path, verb):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"AAAA")
    b.write_bytes(b"BBBB")
    code = main([*S, *verb, "0x2000", str(a), "0x2004", str(b), "dump", "0x2000", "8"])
    out, _ = capsysbinary.readouterr()
    assert code == 0 and out == b"AAAABBBB"


def test_dump_is_raw_bytes(capsysbinary):
    assert main([*S, "dump", "0xa000", "4"]) == 0
    assert capsysbinary.readouterr().out == bytes.fromhex("e20d0080")


def test_dump_refuses_json(capsys):
    code, _, err = run(capsys, *S, "--json", "dump", "0xa000", "4")
    assert code == 2 and "hexdump --json" in err


def test_list_flag_is_the_list_command(capsys, monkeypatch):
    monkeypatch.setattr("felboot.devices.SystemUsbBus.find", lambda self: [])
    for flag in ("-l", "--list"):
        code, out, _ = run(capsys, flag)
        assert (code, out) == run(capsys, "list")[:2]
        assert code == 3 and "no Allwinner board" in out


@pytest.mark.parametrize(
    ("argv", "device"),
    [
        (["-d", "1:7"], "usb:1:7"),
        (["-d1:7"], "usb:1:7"),
        (["--dev", "3:12"], "usb:3:12"),
        (["--dev=3:12"], "usb:3:12"),
        (["--sid", SID], f"usb:sid={SID}"),
    ],
)  # fmt: skip
def test_device_selection_spellings(argv, device):
    args = _parse(build_parser(), [*argv, "version"])
    assert args.device == device


def test_bad_bus_dev_is_one_line(capsys):
    code, _, err = run(capsys, "-d", "0:7", "version")
    assert code == 2 and "'0:7' is not BUS:DEVNUM" in err and len(err.splitlines()) == 1


def test_progress_flag_is_accepted(capsys):
    assert run(capsys, "-p", *S, "ver") == run(capsys, *S, "ver")
    assert "ignored" in build_parser().format_help()


# fill, clear, memmove ---------------------------------------------------------------------


def test_fill_and_clear(capsys, boards):
    code, out, err = run(
        capsys, *S, "fill", "0x2000", "8", "0xa5", "clear", "0x2002", "2", "hex", "0x2000", "8"
    )
    assert code == 0, err
    assert out.startswith("00002000: a5 a5 00 00 a5 a5 a5 a5")


def test_fill_of_many_chunks_is_plain_writes(boards, capsys):
    from felboot.fel import FILL_CHUNK

    code, _, err = run(capsys, *S, "spl", felboot_uboot(), "fill", "0x42000000", "0x280000", "7")
    assert code == 0, err
    board = boards[0].board
    size = 5 * FILL_CHUNK // 2
    assert board.read_memory(0x42000000, size + 1) == bytes([7]) * size + b"\0"


def felboot_uboot() -> str:
    from tests.support import IMAGES

    return str(IMAGES / "u-boot-sunxi-with-spl-a20.bin")


@pytest.mark.parametrize(
    ("argv", "code", "fragment"),
    [
        (["fill", "0x2000", "4", "0x100"], 2, "not a byte"),
        (["fill", "0x7c00", "4", "1"], 9, "boot ROM keeps its stacks"),
        (["clear", "0xfffffff0", "0x20"], 2, "past 4 GiB"),
        (["memmove", "0x1000", "0x2000", "16"], 2, "where felboot's memmove thunk runs"),
        (["memmove", "0x7c00", "0x2000", "16"], 9, "boot ROM keeps its stacks"),
        (["memmove", "0x2000", "0xfffffff0", "0x20"], 2, "past 4 GiB"),
    ],
)
def test_refusals_name_the_range(capsys, argv, code, fragment):
    result, _, err = run(capsys, *S, *argv)
    assert result == code and fragment in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("dst", "src", "size"),
    [(0x2080, 0x2000, 64), (0x2003, 0x2000, 61), (0x2000, 0x2005, 60), (0x2001, 0x2000, 1)],
)
def test_memmove_on_the_model_copies_like_python(capsys, boards, tmp_path, dst, src, size):
    pattern = bytes(range(256))
    blob = tmp_path / "blob"
    blob.write_bytes(pattern)
    code, _, err = run(capsys, *S, "write", "0x2000", blob, "memmove", dst, src, size)
    assert code == 0, err
    expected = bytearray(pattern)
    expected[dst - 0x2000 : dst - 0x2000 + size] = pattern[src - 0x2000 : src - 0x2000 + size]
    assert boards[0].board.read_memory(0x2000, 256) == bytes(expected)


def test_memmove_thunk_is_what_the_assembler_makes(tmp_path):
    assert assemble_file(MEMMOVE.source, tmp_path) == MEMMOVE.code
    assert "Calling convention" in MEMMOVE.source.read_text()


def _run_memmove(cpu: int, memory: bytearray, dst: int, src: int, size: int) -> bytearray:
    unicorn = pytest.importorskip("unicorn")
    arm = pytest.importorskip("unicorn.arm_const")
    scratch, ret = 0x1000, 0xF000
    uc = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_ARM)
    uc.ctl_set_cpu_model(cpu)
    uc.mem_map(0, 0x10000)
    payload = build_memmove(dst, src, size).data
    uc.mem_write(0, bytes(memory))
    uc.mem_write(scratch, payload)
    sentinels = {getattr(arm, f"UC_ARM_REG_R{n}"): 0xC0DE0000 + n for n in range(4, 12)}
    for reg, value in sentinels.items():
        uc.reg_write(reg, value)
    uc.reg_write(arm.UC_ARM_REG_SP, 0x7000)
    uc.reg_write(arm.UC_ARM_REG_LR, ret)
    uc.emu_start(scratch, ret, count=1_000_000)
    assert uc.reg_read(arm.UC_ARM_REG_PC) == ret
    assert uc.reg_read(arm.UC_ARM_REG_SP) == 0x7000
    assert {reg: uc.reg_read(reg) for reg in sentinels} == sentinels
    after = bytearray(uc.mem_read(0, 0x10000))
    assert after[scratch : scratch + len(payload)] == payload
    return after


@pytest.mark.parametrize("cpu", ["ARM_926", "ARM_CORTEX_A7"])
@pytest.mark.parametrize(
    ("dst", "src", "size"),
    [
        (0x4000, 0x2000, 0),
        (0x4000, 0x2000, 1),
        (0x4000, 0x2000, 257),
        (0x4001, 0x2003, 100),  # same alignment, unaligned start
        (0x4002, 0x2001, 100),  # different alignment: bytes
        (0x2010, 0x2000, 100),  # overlap, dst above: downwards
        (0x2011, 0x2001, 99),
        (0x2000, 0x2010, 100),  # overlap, dst below: upwards
        (0x2000, 0x2000, 64),
    ],
)
def test_memmove_thunk_is_memmove(cpu, dst, src, size):
    arm = pytest.importorskip("unicorn.arm_const")
    memory = bytearray((i * 7 + 3) & 0xFF for i in range(0x10000))
    memory[0x1000:0x1400] = bytes(0x400)
    after = _run_memmove(getattr(arm, f"UC_CPU_{cpu}"), memory, dst, src, size)
    expected = bytearray(memory)
    expected[dst : dst + size] = memory[src : src + size]
    after[0x1000:0x1400] = expected[0x1000:0x1400]  # the thunk's own upload
    assert after == expected


# reset64 ---------------------------------------------------------------------------------


def test_reset64_switches_an_arm64_soc_to_aarch64_at_the_address(capsys, boards):
    code, out, err = run(capsys, "--device", "sim:soc=a64", "reset64", "0x40080000")
    assert code == 0, err
    event = boards[0].board.events[-1]
    assert event.kind == "aarch64_reset" and event.address == 0x40080000
    assert "AArch64 at 0x40080000" in out


def test_reset64_on_a_32_bit_soc_is_refused_before_anything_runs(capsys, boards):
    code, _, err = run(capsys, *S, "reset64", "0x40000000")
    assert code == 8 and "A20 has no RVBAR" in err
    assert not boards[0].board.left_fel


# SID ---------------------------------------------------------------------------------------


def test_sid_dump_prints_soc_info_c_sections_as_sunxi_fel(capsys):
    code, out, _ = run(capsys, "--device", "sim:soc=h3", "sid-dump")
    assert code == 0
    lines = out.splitlines()
    _, sid, _ = run(capsys, "--device", "sim:soc=h3", "sid")
    assert lines[0] == "chipid         " + "".join(f" {w}" for w in sid.strip().split(":"))
    names = [line[:15].strip() for line in lines if line[:15].strip()]
    assert names == [s.name for s in sid_sections(soc_by_name("H3"))]
    assert any(line.startswith("sn" + " " * 13 + " ") for line in lines)  # "%-15s" + " %08x"


def test_sid_dump_wraps_eight_words_a_line(capsys):
    code, out, _ = run(capsys, *S, "sid-dump")
    assert code == 0
    lines = out.splitlines()
    assert lines[1].startswith("unknown         ") and len(lines[1].split()) == 9
    assert lines[2].startswith(" " * 15 + " ") and len(lines[2].split()) == 8
    assert len(lines) == 1 + 8  # chipid, then 60 words in 8 lines


def test_sid_dump_json(capsys):
    import json

    code, out, _ = run(capsys, *S, "--json", "sid-dump")
    data = json.loads(out)
    assert code == 0 and [s["name"] for s in data["sections"]] == ["chipid", "unknown"]
    assert len(data["sections"][1]["words"]) == 60


def test_sid_dump_without_a_map_says_so(capsys):
    code, _, err = run(capsys, "--device", "sim:soc=a10", "sid-dump")
    assert code == 3 and "A10 has no SID map" in err and "felboot sid" in err


def test_sid_registers_reads_the_key_through_prctl(capsys, boards):
    code, out, _ = run(capsys, "--device", "sim:soc=h3", "sid-registers")
    assert code == 0
    assert out == run(capsys, "--device", "sim:soc=h3", "sid")[1]


def test_sid_maps_name_known_socs_and_fit_prctl():
    names = {soc.name for soc in SOCS}
    assert set(SID_SECTIONS) <= names
    for name, sections in SID_SECTIONS.items():
        assert sections[0].name == "chipid" and sections[0].size_bits == 128, name
        for section in sections:
            assert section.offset % 4 == 0 and section.size_bits % 32 == 0, (name, section)
        end = max(s.offset + s.size_bits // 8 for s in sections)
        assert end <= 0x200, name  # what SID_PRCTL's offset field reaches
    assert {"A10", "A13", "A31", "F1C100s"}.isdisjoint(SID_SECTIONS)  # none in soc_info.c
