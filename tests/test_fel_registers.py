"""FelDevice register access, SID and reset: the FEL commands they send.

The device side is a fixed script of answers (tests/scripted.py), so these tests
prove the transfer sequence: which thunk is uploaded where, that it is EXECed
there, and which bytes are read back and how they are decoded. What the thunks
do on the device is proven in tests/test_thunks.py.
"""

from __future__ import annotations

import dataclasses
from collections import deque

import construct as cs
import pytest

from felboot import fel, protocol
from felboot.errors import (
    DeviceError,
    DeviceTimeout,
    ProtocolError,
    UnsafeWrite,
    UsageError,
)
from felboot.fel import FelDevice
from felboot.soc import soc_by_name
from felboot.thunks.boot_thunks import SMC, build_plain
from felboot.thunks.registers import (
    build_readl,
    build_sid_registers,
    build_writel,
    max_readl_words,
    scratch_room,
)
from tests.scripted import OK_RESPONSE, OK_STATUS, ScriptedTransport, version_answers, write_answers

A20 = soc_by_name("A20")
H3 = soc_by_name("H3")
EXEC_OK = [OK_RESPONSE, OK_STATUS, OK_RESPONSE]


def read_answers(data: bytes) -> list[bytes | Exception]:
    return [OK_RESPONSE, data, OK_RESPONSE, OK_STATUS, OK_RESPONSE]


def words(*values: int) -> bytes:
    return bytes(cs.GreedyRange(cs.Int32ul).build(list(values)))


def device_for(soc_id: int, *answers: bytes | Exception) -> tuple[FelDevice, ScriptedTransport]:
    transport = ScriptedTransport([*version_answers(soc_id), *answers])
    device = FelDevice(transport)
    device.version()
    transport.sent.clear()
    return device, transport


def fel_commands(sent: list[bytes]) -> list[tuple[str, int, int | bytes]]:
    """Decode the host's transfers into (command, address, data sent or length read)."""
    names = {protocol.FEL_WRITE: "WRITE", protocol.FEL_EXEC: "EXEC", protocol.FEL_READ: "READ"}
    pending = deque(sent)
    decoded: list[tuple[str, int, int | bytes]] = []

    def host_payload() -> bytes:
        request = protocol.parse_usb_request(pending.popleft())
        assert request.direction == protocol.USB_DIRECTION_WRITE
        data = b""
        while len(data) < request.length:
            data += pending.popleft()
        return data

    def device_payload_length() -> int:
        request = protocol.parse_usb_request(pending.popleft())
        assert request.direction == protocol.USB_DIRECTION_READ
        return int(request.length)

    while pending:
        message = protocol.parse_fel_message(host_payload())
        name = names[message.command]
        if name == "WRITE":
            decoded.append((name, message.address, host_payload()))
        elif name == "READ":
            decoded.append((name, message.address, device_payload_length()))
        else:
            decoded.append((name, message.address, 0))
        assert device_payload_length() == protocol.FEL_STATUS_SIZE
    return decoded


# readl / read_words ------------------------------------------------------------------------


def test_readl_uploads_execs_and_reads_back_one_word():
    device, transport = device_for(
        0x1651, *write_answers(), *EXEC_OK, *read_answers(words(0x12345678))
    )
    assert device.readl(0x01C20C94) == 0x12345678
    payload = build_readl([0x01C20C94])
    assert fel_commands(transport.sent) == [
        ("WRITE", A20.scratch_addr, payload.data),
        ("EXEC", A20.scratch_addr, 0),
        ("READ", A20.scratch_addr + payload.result_offset, 4),
    ]


def test_read_words_splits_into_batches_that_fit_the_scratch_area():
    per_batch = max_readl_words(scratch_room(A20))
    addresses = [0x01C20000 + 4 * i for i in range(per_batch + 3)]
    first = words(*range(per_batch))
    second = words(0xA, 0xB, 0xC)
    device, transport = device_for(
        0x1651,
        *write_answers(),
        *EXEC_OK,
        *read_answers(first),
        *write_answers(),
        *EXEC_OK,
        *read_answers(second),
    )
    assert device.read_words(addresses) == [*range(per_batch), 0xA, 0xB, 0xC]
    commands = fel_commands(transport.sent)
    assert [c[0] for c in commands] == ["WRITE", "EXEC", "READ"] * 2
    assert commands[0][2] == build_readl(addresses[:per_batch]).data
    assert commands[3][2] == build_readl(addresses[per_batch:]).data
    assert commands[5][2] == 12


def test_read_words_of_nothing_sends_nothing():
    device, transport = device_for(0x1651)
    assert device.read_words([]) == []
    assert transport.sent == []


def test_readl_refuses_bad_addresses_before_sending():
    device, transport = device_for(0x1651)
    with pytest.raises(UsageError, match="0x01c20c96 is not a multiple of 4"):
        device.readl(0x01C20C96)
    with pytest.raises(UsageError, match="0xfffffffe"):
        device.readl(0xFFFFFFFE)
    assert transport.sent == []


def test_unknown_soc_has_no_register_access():
    device, transport = device_for(0x1234)
    with pytest.raises(DeviceError, match=r"unknown SoC 0x1234: register access needs"):
        device.readl(0x01C20C94)
    assert transport.sent == []


def test_irq_stack_above_the_scratch_room_stays_protected():
    device, transport = device_for(soc_by_name("H616").soc_id)
    with pytest.raises(UnsafeWrite, match=r"0x00021400-0x00021fff.*H616 boot ROM"):
        device.write(0x21000, bytes(0x800))
    assert transport.sent == []


# writel / write_words ---------------------------------------------------------------------------


def test_write_words_uploads_and_execs_without_reading_back():
    pairs = [(0x01C20C94, 3), (0x01C20000, 0x80000000)]
    device, transport = device_for(0x1651, *write_answers(), *EXEC_OK)
    device.write_words(pairs)
    assert fel_commands(transport.sent) == [
        ("WRITE", A20.scratch_addr, build_writel(pairs).data),
        ("EXEC", A20.scratch_addr, 0),
    ]


def test_writel_into_rom_state_is_refused():
    device, transport = device_for(0x1651)
    with pytest.raises(UnsafeWrite, match="0x00007c00-0x00007fff"):
        device.writel(0x7C04, 0)
    assert transport.sent == []


# SID -------------------------------------------------------------------------------------

SID_WORDS = (0x02C00081, 0x5C004C4F, 0x4E4B4C52, 0x12345678)
SID = words(*SID_WORDS)


def test_sid_of_an_a20_reads_the_memory_mapped_words():
    device, transport = device_for(0x1651, *write_answers(), *EXEC_OK, *read_answers(SID))
    assert device.sid() == SID
    base = A20.sid_base + A20.sid_offset
    upload = fel_commands(transport.sent)[0]
    assert upload == ("WRITE", A20.scratch_addr, build_readl([base + 4 * i for i in range(4)]).data)


SECURE = words(1)  # the SMC probe word of a ROM already in the secure state


def test_sid_of_an_h3_goes_through_the_sid_registers():
    payload = build_sid_registers(H3.sid_base, 4)
    device, transport = device_for(
        H3.soc_id,
        *read_answers(SECURE),
        *write_answers(),
        *EXEC_OK,
        *read_answers(words(0, *SID_WORDS)),
    )
    assert device.sid() == SID
    assert fel_commands(transport.sent) == [
        ("READ", H3.smc_probe_addr, 4),
        ("WRITE", H3.scratch_addr, payload.data),
        ("EXEC", H3.scratch_addr, 0),
        ("READ", H3.scratch_addr + payload.result_offset, payload.result_size),
    ]


def test_sid_time_out_names_the_controller_and_word():
    answer = words(2, SID_WORDS[0], SID_WORDS[1], 0x8, 0xC)
    device, _ = device_for(
        H3.soc_id, *read_answers(SECURE), *write_answers(), *EXEC_OK, *read_answers(answer)
    )
    with pytest.raises(DeviceError, match=r"H3 SID controller at 0x01c14000 .* word 0x08"):
        device.sid()


def test_soc_without_sid_says_so():
    device, transport = device_for(soc_by_name("F1C100s").soc_id)
    with pytest.raises(DeviceError, match="F1C100s has no SID"):
        device.sid()
    assert transport.sent == []


# reset -------------------------------------------------------------------------------------------


def test_reset_writes_the_watchdog_and_reads_the_exec_status():
    # The status comes before the thunk arms the watchdog, so it always arrives.
    device, transport = device_for(0x1651, *write_answers(), OK_RESPONSE, OK_STATUS, OK_RESPONSE)
    device.reset()
    commands = fel_commands(transport.sent)
    assert commands[0] == ("WRITE", A20.scratch_addr, build_writel([(0x01C20C94, 3)]).data)
    assert commands[1] == ("EXEC", A20.scratch_addr, 0)
    assert not transport.answers


def test_reset_whose_exec_status_never_comes_is_an_error():
    device, _ = device_for(0x1651, *write_answers(), OK_RESPONSE)
    with pytest.raises(DeviceTimeout):
        device.reset()


def test_reset_does_not_hide_a_failed_upload():
    device, _ = device_for(0x1651, OK_RESPONSE, DeviceTimeout("usb: time-out"))
    with pytest.raises(DeviceTimeout):
        device.reset()


def test_reset_does_not_hide_a_refused_exec():
    refused = protocol.build_fel_status(state=1)
    device, _ = device_for(0x1651, *write_answers(), OK_RESPONSE, refused, OK_RESPONSE)
    with pytest.raises(ProtocolError, match="EXEC at 0x00001000"):
        device.reset()


def test_reset_without_a_known_watchdog_says_so(monkeypatch):
    no_watchdog = dataclasses.replace(A20, watchdog=None)
    monkeypatch.setattr(fel, "soc_by_id", lambda soc_id: no_watchdog)
    device, transport = device_for(0x1651)
    with pytest.raises(DeviceError, match="A20 has no watchdog"):
        device.reset()
    assert transport.sent == []


def test_sid_of_a_secure_fused_h3_enters_the_secure_state_first():
    # sunxi-fel's aw_apply_smc_workaround(): a zero probe word means FEL runs non-secure.
    smc = build_plain(SMC)
    device, transport = device_for(
        H3.soc_id,
        *read_answers(words(0)),
        *write_answers(),
        *EXEC_OK,
        *write_answers(),
        *EXEC_OK,
        *read_answers(words(0, *SID_WORDS)),
    )
    assert device.sid() == SID
    commands = fel_commands(transport.sent)
    assert commands[:3] == [
        ("READ", H3.smc_probe_addr, 4),
        ("WRITE", H3.scratch_addr, smc.data),
        ("EXEC", H3.scratch_addr, 0),
    ]
    device.apply_smc_workaround()  # once per session: nothing more is sent
    assert fel_commands(transport.sent) == commands
