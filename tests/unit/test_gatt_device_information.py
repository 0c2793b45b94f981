"""Battery Level (0x2A19) and the Device Information Service characteristics."""

from __future__ import annotations

import pytest

from device_profiles.errors import DecodeError
from device_profiles.gatt.battery import BatteryLevel, battery_level_decoder, decode_battery_level
from device_profiles.gatt.decoders import GATT_DECODERS
from device_profiles.gatt.device_information import (
    SystemId,
    decode_device_information_string,
    decode_system_id,
    system_id_decoder,
)
from device_profiles.registry import DecodeContext, DecodeResult
from simulators.devices.gatt_encode import (
    encode_battery_level,
    encode_device_information_string,
    encode_system_id,
)

CONTEXT = DecodeContext(received_ns=1_700_000_000_000_000_000)


@pytest.mark.parametrize("percent", [0, 1, 57, 100])
def test_battery_levels(percent: int) -> None:
    payload = bytes((percent,))
    assert decode_battery_level(payload) == BatteryLevel(percent)
    assert encode_battery_level(BatteryLevel(percent)) == payload
    assert battery_level_decoder(payload, CONTEXT) == DecodeResult(status={"battery_percent": percent})


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", r"battery level needs 1 byte.*byte offset 0"),
        (b"\x65", r"battery level 101 % is above 100 \(byte offset 0\)"),
        (b"\xff", r"battery level 255 %"),
        (b"\x32\x00", r"1 unexpected trailing byte.*byte offset 1"),
    ],
)
def test_battery_malformed(payload: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_battery_level(payload)


def test_encoder_rejects_battery_above_100() -> None:
    with pytest.raises(ValueError):
        encode_battery_level(BatteryLevel(101))


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("gatt.manufacturer_name", "manufacturer_name"),
        ("gatt.model_number", "model_number"),
        ("gatt.serial_number", "serial_number"),
        ("gatt.firmware_revision", "firmware_revision"),
    ],
)
def test_string_decoders(name: str, key: str) -> None:
    assert GATT_DECODERS[name]("Zürich-1".encode(), CONTEXT) == DecodeResult(status={key: "Zürich-1"})
    assert GATT_DECODERS[name](b"", CONTEXT) == DecodeResult(status={key: ""})


def test_string_trailing_nuls_dropped_and_round_trip() -> None:
    assert decode_device_information_string(b"BP-100\x00\x00") == "BP-100"
    assert encode_device_information_string("BP-100") == b"BP-100"


def test_string_invalid_utf8() -> None:
    with pytest.raises(DecodeError, match=r"Model Number String: string is not UTF-8.*byte offset 2"):
        GATT_DECODERS["gatt.model_number"](b"ab\xff", CONTEXT)


def test_system_id() -> None:
    payload = b"\x01\x02\x03\x04\x05\x06\x07\x08"
    record = SystemId(0x0504030201, 0x080706)
    assert decode_system_id(payload) == record
    assert encode_system_id(record) == payload
    assert system_id_decoder(payload, CONTEXT) == DecodeResult(
        status={"system_id_manufacturer_identifier": 0x0504030201, "system_id_oui": 0x080706}
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x01\x02\x03\x04", r"manufacturer identifier needs 5 byte.*byte offset 0"),
        (b"\x01\x02\x03\x04\x05\x06\x07", r"organizationally unique identifier needs 3 byte.*byte offset 5"),
        (b"\x00" * 9, r"1 unexpected trailing byte.*byte offset 8"),
    ],
)
def test_system_id_malformed(payload: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_system_id(payload)
