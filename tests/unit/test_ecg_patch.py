"""The ECG patch: its stream format (bytes written from the layout), the virtual patch, and ECG through a home.

The virtual patch streams the scenario's ECG as the bytes the format defines; decoded by the
profile's decoder, the samples come back at the scenario's sample times and values (to the
microvolt), and a gateway fed those bytes derives heart rate and spools the waveform.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import device_profiles
from device_profiles.ecg_patch import EcgPatchFrame, decode_ecg_patch_frame, ecg_patch_decoder
from device_profiles.errors import DecodeError
from device_profiles.registry import DecodeContext, DecodeResult, default_registry
from edge.config import DeviceConfig, GatewayConfig
from edge.gateway import build_agent, build_transports
from edge.transports import Payload
from simulators.devices.virtual_ecg_patch import ECG_PATCH_CHARACTERISTIC, VirtualEcgPatch, encode_ecg_patch_frame
from simulators.scenarios import load_scenario
from vitalbridge.virtual import register_virtual
from vitals.codec import decode_batch
from vitals.samples import Quality, Sample

RECEIVED = 1_700_000_000_000_000_000
CONTEXT = DecodeContext(received_ns=RECEIVED)
T0 = 1_700_000_000_000_000_000
LIBRARY = device_profiles.load_library()

VECTORS: list[tuple[bytes, EcgPatchFrame]] = [
    # type 0x01, counter 0x0007, 250 Hz (0x00FA), status 0, samples 1000 µV (E8 03 00), -250 µV (06 FF FF)
    (bytes.fromhex("01 0700 FA00 00 E80300 06FFFF"), EcgPatchFrame(7, 250, (1000, -250))),
    # counter 0xFFFF, 500 Hz, lead off + battery low (0x03), the sint24 extremes
    (bytes.fromhex("01 FFFF F401 03 000080 FFFF7F"), EcgPatchFrame(0xFFFF, 500, (-8_388_608, 8_388_607), 3)),
]


@pytest.mark.parametrize(("payload", "frame"), VECTORS)
def test_vectors_decode_and_encode(payload: bytes, frame: EcgPatchFrame) -> None:
    assert decode_ecg_patch_frame(payload) == frame
    assert encode_ecg_patch_frame(frame) == payload


def test_result_stamps_the_last_sample_at_arrival_and_the_others_a_period_apart() -> None:
    assert ecg_patch_decoder(VECTORS[0][0], CONTEXT) == DecodeResult(
        (Sample("ecg", RECEIVED - 4_000_000, 1.0), Sample("ecg", RECEIVED, -0.25)),
        {"lead_off": False, "battery_low": False})
    lead_off = ecg_patch_decoder(VECTORS[1][0], CONTEXT)
    assert [s.quality for s in lead_off.samples] == [Quality.DEVICE_QUESTIONABLE] * 2
    assert lead_off.status == {"lead_off": True, "battery_low": True}
    assert lead_off.samples[0].time_ns == RECEIVED - 2_000_000


@pytest.mark.parametrize(("payload", "message"), [
    (b"", "0 bytes is too short"),
    (bytes.fromhex("01 0700 FA00 00 E803"), "8 bytes is too short"),
    (bytes.fromhex("02 0700 FA00 00 E80300"), "frame type 0x02 is not 0x01"),
    (bytes.fromhex("01 0700 0000 00 E80300"), r"sample rate 0 Hz is outside 1\.\.2000 \(byte offset 3\)"),
    (bytes.fromhex("01 0700 D107 00 E80300"), "sample rate 2001 Hz"),
    (bytes.fromhex("01 0700 FA00 00 E80300 06"), "4 sample bytes are not a whole number of 3-byte samples"),
    (bytes.fromhex("01 0700 FA00 00") + bytes(3 * 80), "80 samples; at most 79"),
])
def test_malformed(payload: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=f"^ECG patch frame: {message}"):
        decode_ecg_patch_frame(payload)


@given(st.binary(max_size=260))
def test_any_bytes_decode_or_raise_one_clear_error(payload: bytes) -> None:
    try:
        result = ecg_patch_decoder(payload, CONTEXT)
    except DecodeError as exc:
        assert str(exc).startswith("ECG patch frame: ") and "\n" not in str(exc)
        return
    assert all(s.metric == "ecg" for s in result.samples)
    assert encode_ecg_patch_frame(decode_ecg_patch_frame(payload)) == payload


@given(st.builds(EcgPatchFrame, st.integers(0, 0xFFFF), st.integers(1, 2000),
                 st.lists(st.integers(-(1 << 23), (1 << 23) - 1), min_size=1, max_size=79).map(tuple),
                 st.integers(0, 255)))
def test_frames_round_trip_and_times_are_even(frame: EcgPatchFrame) -> None:
    payload = encode_ecg_patch_frame(frame)
    assert decode_ecg_patch_frame(payload) == frame
    times = [s.time_ns for s in ecg_patch_decoder(payload, CONTEXT).samples]
    assert times[-1] == RECEIVED and all(b > a for a, b in itertools.pairwise(times))


def test_the_encoder_refuses_what_has_no_encoding() -> None:
    with pytest.raises(ValueError, match="sint24"):
        encode_ecg_patch_frame(EcgPatchFrame(0, 250, (1 << 23,)))
    with pytest.raises(ValueError, match=r"1\.\.79 samples"):
        encode_ecg_patch_frame(EcgPatchFrame(0, 250, ()))


# -- the virtual patch -------------------------------------------------------------------------------
def _decode_all(notifications: list[tuple[str, bytes, int]]) -> list[Sample]:
    decode = LIBRARY["generic.ecg_patch"].decoder_for(ECG_PATCH_CHARACTERISTIC, default_registry())
    out: list[Sample] = []
    for channel, payload, time_ns in notifications:
        assert channel == ECG_PATCH_CHARACTERISTIC
        out += decode(payload, DecodeContext(received_ns=time_ns)).samples
    return out


@pytest.mark.parametrize("steps", [[10.0], [0.33, 2.5, 0.017, 7.153]])
def test_the_virtual_patch_streams_the_scenario_ecg_exactly_whatever_the_chunking(steps: list[float]) -> None:
    scenario = load_scenario("af_stable")
    reference = scenario.start(T0, 3, waveforms=True).advance(sum(steps)).waveforms["ecg"]
    patch = VirtualEcgPatch(scenario.start(T0, 3, waveforms=True))
    sent = [n for step in steps for n in patch.advance(step)]
    first_ns, rate, values = reference
    assert rate == 250.0
    assert len(sent) == len(values) // 25 and patch.sent == len(sent)
    counters = [decode_ecg_patch_frame(payload).counter for _, payload, _ in sent]
    assert counters == list(range(len(sent)))
    samples = _decode_all(sent)
    count = len(samples)
    expected_times = first_ns + (np.arange(count) * 1_000_000_000 + 125) // 250
    assert [s.time_ns for s in samples] == expected_times.tolist()
    assert np.allclose([s.value for s in samples], np.round(values[:count] * 1000) / 1000, atol=1e-12)


def test_a_chunk_without_ecg_sends_nothing() -> None:
    patch = VirtualEcgPatch(load_scenario("copd_deteriorating").start(T0, 0, waveforms=True))
    assert patch.advance(30.0) == []


def test_a_gateway_fed_the_patch_bytes_derives_heart_rate_and_spools_the_ecg(tmp_path: Any) -> None:
    device = DeviceConfig("patch", "p-1", "generic.ecg_patch", "virtual", "af_stable", {"seed": 2})
    config = GatewayConfig(gateway="home-1", mqtt_url="mqtt://127.0.0.1:1", spool=str(tmp_path / "spool.db"),
                           batch_interval_s=5.0, devices=(device,))
    transports = build_transports()
    register_virtual(transports, start_ns=T0)
    clock = {"now": T0 + 60 * 10**9}
    agent = build_agent(config, transports=transports)
    agent.clock_ns = lambda: clock["now"]
    virtual = transports.get("virtual")(device, LIBRARY["generic.ecg_patch"], agent.clock_ns)
    for channel, payload, time_ns in virtual.device.advance(60.0):  # what the transport would deliver
        agent.deliver("patch", Payload(channel, payload, time_ns))
    agent.tick(final=True)
    assert agent.stats.decode_errors == 0
    metrics: dict[str, int] = {}
    for _seq, data in agent.spool.pending(1000):
        for stream in decode_batch(data).streams:
            metrics[stream.metric] = metrics.get(stream.metric, 0) + len(stream)
    assert metrics["ecg"] >= 58 * 250  # a minute of waveform (less what the filters hold at the edges)
    assert metrics["heart_rate"] >= 1 and metrics["rr_interval"] >= 40
