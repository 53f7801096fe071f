import pytest

from felboot import fel, protocol
from felboot.errors import DeviceTimeout, ProtocolError, UnsafeWrite, UsageError
from felboot.fel import FelDevice, check_range
from felboot.transport import MAX_BULK_TRANSFER
from tests.scripted import OK_RESPONSE, OK_STATUS, ScriptedTransport, version_answers, write_answers


def a20_device(*answers):
    transport = ScriptedTransport([*version_answers(), *answers])
    device = FelDevice(transport)
    device.version()
    transport.sent.clear()
    return device, transport


def test_version_sends_one_fel_message_and_reads_status():
    transport = ScriptedTransport(version_answers())
    version = FelDevice(transport).version()
    assert version.soc_id == 0x1651
    # OUT: request + message, request for the 32-byte answer, request for the status
    assert transport.sent[1] == protocol.build_fel_message(protocol.FEL_VERSION)
    assert len(transport.sent) == 4


def test_write_is_one_fel_request_split_into_512k_bulk_transfers():
    device, transport = a20_device(*write_answers())
    payload = bytes(range(256)) * (5 * 1024 * 5)  # 6.25 MiB -> 13 transfers
    seen = []
    device.write(0x40000000, payload, progress=seen.append)
    messages = [s for s in transport.sent if len(s) == 16]
    assert messages == [protocol.build_fel_message(protocol.FEL_WRITE, 0x40000000, len(payload))]
    data_transfers = [s for s in transport.sent if len(s) > 32]
    assert all(len(chunk) <= MAX_BULK_TRANSFER for chunk in data_transfers)
    assert b"".join(data_transfers) == payload
    assert sum(seen) == len(payload) and len(seen) == 13
    # the data phase is announced once, with the whole length
    announced = protocol.parse_usb_request(transport.sent[2])
    assert announced.length == len(payload)


def test_read_collects_chunks():
    data = bytes(range(200))
    device, _ = a20_device(OK_RESPONSE, data[:100], data[100:], OK_RESPONSE, OK_STATUS, OK_RESPONSE)
    assert device.read(0x2000, 200) == data


def test_read_refuses_extra_bytes():
    device, _ = a20_device(OK_RESPONSE, bytes(12))
    with pytest.raises(ProtocolError, match="12 bytes where 8 were asked"):
        device.read(0x2000, 8)


def test_write_over_rom_state_is_refused_before_anything_is_sent():
    device, transport = a20_device()
    with pytest.raises(UnsafeWrite, match=r"0x00007c00-0x00007fff.*A20 boot ROM"):
        device.write(0x7000, bytes(0x1000))
    assert transport.sent == []


def test_range_past_4g_is_refused():
    with pytest.raises(UsageError, match="0xfffffff0 \\+ 0x20 bytes runs past 4 GiB"):
        check_range(0xFFFFFFF0, 0x20)


def test_timeout_in_dram_explains_the_spl():
    device, _ = a20_device(OK_RESPONSE, DeviceTimeout("no answer"))
    with pytest.raises(DeviceTimeout, match="0x42000000 in DRAM.*felboot spl"):
        device.write(0x42000000, b"1234")


def test_timeout_in_sram_is_not_blamed_on_dram():
    device, _ = a20_device(OK_RESPONSE, DeviceTimeout("no answer"))
    with pytest.raises(DeviceTimeout, match="^no answer$"):
        device.write(0x2000, b"1234")


def test_exec_status_comes_first_and_code_that_never_returns_is_named_at_the_next_request():
    # The ROM answers the EXEC's status, then calls the code (sunxi-fel's
    # aw_fel_execute()); the code never comes back, so the next request times out.
    device, transport = a20_device(OK_RESPONSE, OK_STATUS, OK_RESPONSE, DeviceTimeout("no answer"))
    device.execute(0x2000)
    assert transport.sent[-1] == protocol.build_usb_request(
        protocol.USB_DIRECTION_READ, protocol.FEL_STATUS_SIZE
    )
    with pytest.raises(
        DeviceTimeout,
        match=r"^the code at 0x00002000 did not return to FEL \(the board stopped answering "
        r"after it started\): power-cycle the board into FEL; check the code ends with 'bx lr'$",
    ):
        device.read(0x2000, 4)


def test_wait_returned_names_the_code_when_the_rom_does_not_answer():
    device, transport = a20_device(OK_RESPONSE, OK_STATUS, OK_RESPONSE, DeviceTimeout("x"))
    device.execute(0x2000)
    with pytest.raises(DeviceTimeout, match=r"^the code at 0x00002000 did not return"):
        device.wait_returned()
    assert transport.sent[-1] == protocol.build_fel_message(protocol.FEL_VERSION, 0, 0)


def test_once_the_rom_acknowledges_the_next_request_its_failures_are_its_own():
    device, _ = a20_device(OK_RESPONSE, OK_STATUS, OK_RESPONSE, OK_RESPONSE, DeviceTimeout("x"))
    device.execute(0x2000)
    with pytest.raises(DeviceTimeout, match=r"^x$"):
        device.wait_returned()  # VERSION's message is acknowledged: the code did return


def test_fel_error_state_is_reported():
    device, _ = a20_device(
        OK_RESPONSE, OK_RESPONSE, protocol.build_fel_status(state=2), OK_RESPONSE
    )
    with pytest.raises(ProtocolError, match="refused WRITE at 0x00002000"):
        device.write(0x2000, b"abcd")


def test_unknown_soc_still_reads_and_writes():
    transport = ScriptedTransport([*version_answers(soc_id=0x1999), *write_answers()])
    device = FelDevice(transport)
    assert device.soc is None
    device.write(0x7C00, b"abcd")  # no table: nothing to refuse


def test_register_read_of_dram_before_spl_blames_dram():
    device, _ = a20_device(*write_answers(), OK_RESPONSE, DeviceTimeout("no answer"))
    with pytest.raises(DeviceTimeout, match=r"0x40000000 in DRAM.*felboot spl"):
        device.readl(0x40000000)


def test_jump_reads_the_exec_status_like_every_peer_and_sends_nothing_after():
    device, transport = a20_device(OK_RESPONSE, OK_STATUS, OK_RESPONSE)
    device.jump(0x4A000000)
    assert transport.sent[1] == protocol.build_fel_message(protocol.FEL_EXEC, 0x4A000000)
    assert transport.sent[2] == protocol.build_usb_request(
        protocol.USB_DIRECTION_READ, protocol.FEL_STATUS_SIZE
    )
    assert len(transport.sent) == 3 and not transport.answers


def test_jump_without_a_status_is_an_error():
    device, _ = a20_device(OK_RESPONSE, DeviceTimeout("scripted device: no answer"))
    with pytest.raises(DeviceTimeout):
        device.jump(0x4A000000)


def test_short_and_zero_length_in_transfers_are_joined_like_sunxi_fel_does():
    # sunxi-fel's usb_bulk_recv() loops until the announced length has arrived.
    data = bytes(range(200))
    device, transport = a20_device(
        b"",
        OK_RESPONSE[:5],
        OK_RESPONSE[5:],  # the message's AWUS, split after a ZLP
        data[:1],
        b"",
        data[1:150],
        data[150:],
        OK_RESPONSE,
        OK_STATUS[:3],
        b"",
        OK_STATUS[3:],
        OK_RESPONSE,
    )
    assert device.read(0x2000, 200) == data
    assert not transport.answers


def test_a_device_that_only_sends_empty_transfers_times_out_cleanly():
    device, _ = a20_device(OK_RESPONSE, *[b""] * fel.MAX_EMPTY_TRANSFERS)
    with pytest.raises(
        DeviceTimeout,
        match=rf"^scripted device sent {fel.MAX_EMPTY_TRANSFERS} empty transfers in a row after "
        r"0 of 4 bytes: power-cycle the board into FEL and retry$",
    ):
        device.read(0x2000, 4)


def test_a_dram_time_out_blames_a_missing_spl_only_when_none_ran_in_this_session():
    device, _ = a20_device(OK_RESPONSE, DeviceTimeout("scripted device: no answer"))
    with pytest.raises(
        DeviceTimeout,
        match=r"^scripted device stopped answering while writing "
        r"0x4a000000 in DRAM: DRAM works only once an SPL has run",
    ):
        device.write(0x4A000000, b"abcd")
    device, _ = a20_device(OK_RESPONSE, DeviceTimeout("scripted device: no answer"))
    device.dram_up = True  # what run_spl sets
    with pytest.raises(DeviceTimeout, match=r"^scripted device: no answer$"):
        device.write(0x4A000000, b"abcd")
