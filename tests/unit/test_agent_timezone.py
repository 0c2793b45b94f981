"""The agent reads a device's local-time stamps in the gateway's time zone, daylight saving included."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from device_profiles.profile import normalize_uuid
from edge.config import DeviceConfig, GatewayConfig
from edge.gateway import build_agent
from edge.transports import Payload

PRESSURES_MMHG = b"\x78\x00\x50\x00\x5d\x00"  # 120 / 80 / 93
RECEIVED_NS = int(dt.datetime(2026, 8, 1, 12, tzinfo=dt.UTC).timestamp()) * 10**9  # summer: Berlin is UTC+2


@pytest.mark.parametrize(
    ("zone", "offset", "stamp", "utc"),
    [
        ("Europe/Berlin", None, b"\xea\x07\x01\x0f\x0c\x00\x00", dt.datetime(2026, 1, 15, 11, tzinfo=dt.UTC)),
        ("Europe/Berlin", None, b"\xea\x07\x07\x0f\x0c\x00\x00", dt.datetime(2026, 7, 15, 10, tzinfo=dt.UTC)),
        ("America/New_York", None, b"\xea\x07\x01\x0f\x0c\x00\x00", dt.datetime(2026, 1, 15, 17, tzinfo=dt.UTC)),
        (None, 3600, b"\xea\x07\x07\x0f\x0c\x00\x00", dt.datetime(2026, 7, 15, 11, tzinfo=dt.UTC)),  # fixed offset
    ],
)
def test_stamps_are_read_in_the_gateway_zone(tmp_path: Path, zone: str | None, offset: int | None, stamp: bytes,
                                             utc: dt.datetime) -> None:
    config = GatewayConfig("home-1", "mqtt://127.0.0.1:1", str(tmp_path / "spool.db"), timezone=zone,
                           utc_offset_s=offset,
                           devices=(DeviceConfig("cuff", "p-1", "generic.bp_cuff", "ble", "C4:7F:51:0A:11:22"),))
    agent = build_agent(config, use_pipeline=False)
    agent.deliver("cuff", Payload(normalize_uuid("2a35"), b"\x02" + PRESSURES_MMHG + stamp, RECEIVED_NS))
    streams = [stream for group in agent.devices["cuff"].collector.take() for stream in group]
    assert {stream.metric for stream in streams} == {"bp_systolic", "bp_diastolic", "bp_mean"}
    assert {int(t) for stream in streams for t in stream.times_ns} == {int(utc.timestamp()) * 10**9}
    agent.spool.close()
