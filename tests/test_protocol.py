import pytest
from hypothesis import given
from hypothesis import strategies as st

from felboot import protocol
from felboot.errors import ProtocolError


def test_usb_request_layout_matches_reference():
    request = protocol.build_usb_request(protocol.USB_DIRECTION_WRITE, 0x10)
    assert len(request) == 32
    assert request[:4] == b"AWUC"
    assert request[4:8] == bytes(4)
    assert request[8:12] == (0x10).to_bytes(4, "little")
    assert request[12:16] == (0x0C000000).to_bytes(4, "little")
    assert request[16:18] == (0x12).to_bytes(2, "little")
    assert request[18:22] == (0x10).to_bytes(4, "little")
    assert request[22:] == bytes(10)


def test_fel_message_layout():
    message = protocol.build_fel_message(protocol.FEL_WRITE, 0x2000, 0x1234)
    assert message == bytes.fromhex("01010000002000003412000000000000")


def test_version_answer_round_trip_a20():
    answer = protocol.build_version_answer(0x1651, 0x7E00)
    assert answer[:8] == b"AWUSBFEX"
    assert answer[8:12] == (0x00165100).to_bytes(4, "little")
    version = protocol.parse_version_answer(answer)
    assert (version.soc_id, version.scratchpad, version.protocol) == (0x1651, 0x7E00, 1)


def test_response_with_wrong_signature_names_what_came():
    with pytest.raises(ProtocolError, match="malformed USB response"):
        protocol.check_usb_response(b"XXXX" + bytes(9))


def test_short_response_names_sizes():
    with pytest.raises(ProtocolError, match="sent 5 bytes where a 13-byte USB response"):
        protocol.check_usb_response(b"AWUS\x00")


def test_nonzero_usb_status_is_refused():
    with pytest.raises(ProtocolError, match="USB status 3"):
        protocol.check_usb_response(protocol.build_usb_response(status=3))


def test_nonzero_fel_state_names_command():
    with pytest.raises(ProtocolError, match="refused WRITE at 0x00002000"):
        protocol.check_fel_status(protocol.build_fel_status(state=1), "WRITE at 0x00002000")


def test_fel_status_without_mark_is_malformed():
    with pytest.raises(ProtocolError, match="malformed FEL status"):
        protocol.check_fel_status(bytes(8), "EXEC")


def test_version_with_wrong_magic():
    with pytest.raises(ProtocolError, match="AWUSBFEX"):
        protocol.parse_version_answer(b"AWUSBFEY" + bytes(24))


def test_usb_request_with_two_lengths_is_refused():
    request = bytearray(protocol.build_usb_request(protocol.USB_DIRECTION_READ, 8))
    request[18] = 9
    with pytest.raises(ProtocolError, match="two lengths"):
        protocol.parse_usb_request(bytes(request))


# Random device bytes must only ever raise felboot's ProtocolError.
@given(st.binary(max_size=40))
def test_fuzz_usb_response(data):
    try:
        protocol.check_usb_response(data)
    except ProtocolError:
        pass


@given(st.binary(max_size=40))
def test_fuzz_fel_status(data):
    try:
        protocol.check_fel_status(data, "READ")
    except ProtocolError:
        pass


@given(st.binary(max_size=64))
def test_fuzz_version_answer(data):
    try:
        protocol.parse_version_answer(data)
    except ProtocolError:
        pass


@given(st.binary(min_size=32, max_size=32))
def test_fuzz_usb_request(data):
    try:
        protocol.parse_usb_request(data)
    except ProtocolError:
        pass
