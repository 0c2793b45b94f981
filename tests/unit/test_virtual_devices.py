"""Virtual devices against the real profile decoders: scenario values and times come back exactly."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import device_profiles
from device_profiles.registry import DecodeContext, DecodeResult, default_registry
from edge.config import DeviceConfig
from edge.transports import Payload
from simulators.devices.virtual_ble import BLE_DEVICE_KINDS, VirtualBleDevice, VirtualPulseOximeter, device_time
from simulators.devices.virtual_oximeter import VirtualMasimoRad8, VirtualNoninXpod
from simulators.scenarios import ScenarioRun, load_scenario, parse_scenario
from simulators.scenarios.run import Chunk
from vitalbridge.home import home_devices
from vitalbridge.virtual import FramedSerialDevice, VirtualTransportFactory, virtual_device_spec
from vitals.samples import Sample

LIBRARY = device_profiles.load_library()
REGISTRY = default_registry()
T0 = 1_700_000_000_000_000_000  # 2023-11-14 22:13:20 UTC
S = 1_000_000_000


def _chunk(start: int, end: int, numerics: dict[str, tuple[list[int], list[float]]], *,
           r_peaks: list[int] | None = None, waveforms: dict[str, tuple[int, float, list[float]]] | None = None,
           ) -> Chunk:
    arrays = {m: (np.asarray(t, dtype=np.int64), np.asarray(v, dtype=np.float64)) for m, (t, v) in numerics.items()}
    return Chunk(start, end, arrays,
                 {m: (t, fs, np.asarray(v, dtype=np.float64)) for m, (t, fs, v) in (waveforms or {}).items()},
                 np.asarray(r_peaks or [], dtype=np.int64))


def _decode(profile: str, notifications: list[tuple[str, bytes, int]], utc_offset_s: int = 0) -> list[DecodeResult]:
    results = []
    for channel, payload, time_ns in notifications:
        decoder = LIBRARY[profile].decoder_for(channel, REGISTRY)
        results.append(decoder(payload, DecodeContext(received_ns=time_ns, utc_offset_s=utc_offset_s)))
    return results


def _samples(results: list[DecodeResult]) -> list[Sample]:
    assert all(result.notes == () for result in results), [r.notes for r in results]
    return [sample for result in results for sample in result.samples]


def _framed(profile: str, writes: list[tuple[bytes, int]]) -> list[tuple[str, bytes, int]]:
    framer = LIBRARY[profile].make_framer()
    frames = [(frame.name, frame.payload, time_ns) for data, time_ns in writes for frame in framer.feed(data)]
    assert framer.discarded_bytes == 0
    return frames


# -- Bluetooth kinds ------------------------------------------------------------------------------


def test_pulse_oximeter_sends_plx_continuous_at_the_reading_times() -> None:
    chunk = _chunk(T0, T0 + 3 * S, {"spo2": ([T0, T0 + S, T0 + 2 * S], [96.6, 97.2, 99.5]),
                                    "pulse_rate": ([T0, T0 + S, T0 + 2 * S], [71.6, 72.4, 80.0])})
    sent = VirtualPulseOximeter().notifications(chunk)
    assert sent[0] == ("00002a5f-0000-1000-8000-00805f9b34fb", bytes.fromhex("00 6100 4800"), T0)
    assert _samples(_decode("generic.pulse_oximeter", sent)) == [
        Sample("spo2", T0, 97.0), Sample("pulse_rate", T0, 72.0),
        Sample("spo2", T0 + S, 97.0), Sample("pulse_rate", T0 + S, 72.0),
        Sample("spo2", T0 + 2 * S, 100.0), Sample("pulse_rate", T0 + 2 * S, 80.0),
    ]


def test_pulse_oximeter_interpolates_the_pulse_rate_and_sends_nan_without_one() -> None:
    device = VirtualPulseOximeter()
    between = _chunk(T0, T0 + 3 * S, {"spo2": ([T0 + S], [95.0]), "heart_rate": ([T0, T0 + 2 * S], [70.0, 80.0])})
    assert _samples(_decode("generic.pulse_oximeter", device.notifications(between))) == [
        Sample("spo2", T0 + S, 95.0), Sample("pulse_rate", T0 + S, 75.0)]
    alone = VirtualBleDevice("pulse_oximeter").notifications(_chunk(T0, T0 + S, {"spo2": ([T0], [95.0])}))
    assert alone[0][1] == bytes.fromhex("00 5F00 FF07")  # pulse rate NaN, as a device without a pulse sends
    (result,) = _decode("generic.pulse_oximeter", alone)
    assert result.samples == (Sample("spo2", T0, 95.0),) and "pulse_rate: device sent NaN" in result.notes[0]


def test_heart_rate_strap_sends_rr_intervals_of_the_beats_since_the_last_notification() -> None:
    strap = VirtualBleDevice("heart_rate_strap")
    peaks = [T0 + 200_000_000, T0 + S, T0 + 1_800_000_000]
    first = strap.notifications(_chunk(T0, T0 + 3 * S, {"heart_rate": ([T0 + S, T0 + 2 * S], [72.4, 130.0])},
                                       r_peaks=peaks))
    # 0.8 s = 819.2/1024 s -> 819; flags: contact detected (0x06) + RR intervals (0x10)
    assert [payload for _, payload, _ in first] == [bytes.fromhex("16 48 3303"), bytes.fromhex("16 82 3303")]
    assert _samples(_decode("generic.heart_rate_strap", first)) == [
        Sample("heart_rate", T0 + S, 72.0), Sample("rr_interval", T0 + S, 819 * 1000 / 1024),
        Sample("heart_rate", T0 + 2 * S, 130.0), Sample("rr_interval", T0 + 2 * S, 819 * 1000 / 1024),
    ]
    # a later chunk without R peaks (no ECG in the scenario): heart rate only, uint16 above 255
    later = strap.notifications(_chunk(T0 + 3 * S, T0 + 4 * S, {"heart_rate": ([T0 + 3 * S], [260.2])}))
    assert later == [("00002a37-0000-1000-8000-00805f9b34fb", bytes.fromhex("07 0401"), T0 + 3 * S)]


def test_bp_cuff_sends_local_time_stamp_and_pulse_rate_decoded_back_to_utc() -> None:
    reading = T0 + 12_400_000_000
    chunk = _chunk(T0, T0 + 60 * S, {"bp_systolic": ([reading], [121.0]), "bp_diastolic": ([reading], [79.0]),
                                     "bp_mean": ([reading], [93.0]), "pulse_rate": ([reading], [64.0])})
    sent = VirtualBleDevice("bp_cuff", utc_offset_s=3600).notifications(chunk)
    # local 2023-11-14 23:13:32 (UTC+1, rounded to the second)
    assert sent == [("00002a35-0000-1000-8000-00805f9b34fb",
                     bytes.fromhex("06 7900 4F00 5D00 E707 0B 0E 17 0D 20 4000"), reading)]
    stamped = T0 + 12 * S
    assert _samples(_decode("generic.bp_cuff", sent, utc_offset_s=3600)) == [
        Sample("bp_systolic", stamped, 121.0), Sample("bp_diastolic", stamped, 79.0),
        Sample("bp_mean", stamped, 93.0), Sample("pulse_rate", stamped, 64.0)]


def test_bp_cuff_computes_the_mean_without_one_and_omits_an_unknown_pulse() -> None:
    chunk = _chunk(T0, T0 + S, {"bp_systolic": ([T0], [130.0]), "bp_diastolic": ([T0], [85.0])})
    sent = VirtualBleDevice("bp_cuff").notifications(chunk)
    assert sent[0][1][0] == 0x02  # time stamp, no pulse rate
    assert _samples(_decode("generic.bp_cuff", sent)) == [
        Sample("bp_systolic", T0, 130.0), Sample("bp_diastolic", T0, 85.0), Sample("bp_mean", T0, 100.0)]


def test_a_late_reading_arrives_after_the_previous_one_but_keeps_its_own_time_stamp() -> None:
    chunk = _chunk(T0, T0 + 20 * S, {"body_temperature": ([T0 + 10 * S, T0 + 5 * S], [37.0, 36.8])})
    sent = VirtualBleDevice("thermometer").notifications(chunk)
    assert [time_ns for _, _, time_ns in sent] == [T0 + 10 * S, T0 + 10 * S]
    assert _samples(_decode("generic.thermometer", sent)) == [
        Sample("body_temperature", T0 + 10 * S, 37.0), Sample("body_temperature", T0 + 5 * S, 36.8)]


def test_thermometer_sends_celsius_at_0_1_with_a_local_time_stamp() -> None:
    chunk = _chunk(T0, T0 + S, {"body_temperature": ([T0 + 600_000_000], [36.66])})
    sent = VirtualBleDevice("thermometer", utc_offset_s=-5 * 3600).notifications(chunk)
    # FLOAT 367e-1; local 2023-11-14 17:13:21 (UTC-5)
    assert sent[0][1] == bytes.fromhex("02 6F0100FF E707 0B 0E 11 0D 15")
    assert _samples(_decode("generic.thermometer", sent, utc_offset_s=-5 * 3600)) == [
        Sample("body_temperature", T0 + S, 36.7)]


def test_weight_scale_sends_si_weight_in_5_g_steps() -> None:
    chunk = _chunk(T0, T0 + 2 * S, {"body_weight": ([T0, T0 + S], [70.004, 71.0])})
    sent = VirtualBleDevice("weight_scale").notifications(chunk)
    assert sent[0][1] == bytes.fromhex("02 B136 E707 0B 0E 16 0D 14")  # 14001 x 5 g
    assert _samples(_decode("generic.weight_scale", sent)) == [
        Sample("body_weight", T0, 70.005), Sample("body_weight", T0 + S, 71.0)]


def test_glucose_meter_sends_mol_per_litre_with_sequence_numbers_and_base_time() -> None:
    meter = VirtualBleDevice("glucose_meter")
    sent = meter.notifications(_chunk(T0, T0 + 600 * S, {"blood_glucose": ([T0, T0 + 300 * S], [5.5, 6.04])}))
    sent += meter.notifications(_chunk(T0 + 600 * S, T0 + 900 * S, {"blood_glucose": ([T0 + 600 * S], [3.9])}))
    assert sent[0][1] == bytes.fromhex("06 0100 E7070B0E160D14 37C0 11")  # 55e-4 mol/L, capillary, finger
    results = _decode("generic.glucose_meter", sent)
    assert [r.status["sequence_number"] for r in results] == [1, 2, 3]
    assert _samples(results) == [Sample("blood_glucose", T0, 5.5), Sample("blood_glucose", T0 + 300 * S, 6.0),
                                 Sample("blood_glucose", T0 + 600 * S, 3.9)]


_RANGES = {"spo2": (50.0, 100.0), "pulse_rate": (20.0, 300.0), "heart_rate": (20.0, 300.0),
           "bp_systolic": (40.0, 300.0), "bp_diastolic": (20.0, 200.0), "bp_mean": (30.0, 250.0),
           "body_temperature": (25.0, 45.0), "body_weight": (0.5, 300.0), "blood_glucose": (0.5, 40.0)}


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(sorted(BLE_DEVICE_KINDS)), data=st.data(),
       offset_ns=st.integers(0, 10**17), utc_offset_s=st.integers(-12 * 3600, 14 * 3600))
def test_any_reading_comes_back_at_device_resolution_and_its_time(kind: str, data: Any, offset_ns: int,
                                                                   utc_offset_s: int) -> None:
    row = BLE_DEVICE_KINDS[kind]
    time_ns = T0 + offset_ns
    values = {m: data.draw(st.floats(*_RANGES[m]), label=m) for m in row.carries}
    chunk = _chunk(time_ns, time_ns + 1, {m: ([time_ns], [v]) for m, v in values.items()})
    sent = VirtualBleDevice(row, utc_offset_s=utc_offset_s).notifications(chunk)
    decoded = _samples(_decode(row.profile, sent, utc_offset_s))
    expected_time = (time_ns + S // 2) // S * S if row.timestamped else time_ns
    assert {s.metric for s in decoded} == set(row.carries)
    for sample in decoded:
        step = float(row.resolution[sample.metric])
        assert sample.time_ns == expected_time
        assert abs(sample.value - values[sample.metric]) <= step / 2 + 1e-9
        assert abs(sample.value / step - round(sample.value / step)) < 1e-6


def test_device_time_is_the_local_wall_clock_rounded_to_the_second() -> None:
    stamp = device_time(T0 + 499_999_999, 3600)
    assert (stamp.year, stamp.month, stamp.day, stamp.hours, stamp.minutes, stamp.seconds) == (2023, 11, 14, 23, 13, 20)
    assert stamp.to_utc_ns(3600) == T0


# -- serial oximeters -------------------------------------------------------------------------------


def test_nonin_xpod_sends_a_packet_every_third_of_a_second_with_the_scenario_ppg() -> None:
    third = (2 * S + 3) // 6  # 333_333_333 ns, the packet grid the decoder dates frames back from
    pleth = [20 + (n * 37) % 200 for n in range(150)]  # 2 s at 75 Hz, as 8-bit pleth values
    ppg = [(p - 40.0) / 160.0 for p in pleth]  # the scenario's PPG in a.u.
    chunk = _chunk(T0, T0 + 2 * S, {"spo2": ([T0 + third, T0 + S], [95.2, 96.0]),
                                    "pulse_rate": ([T0 + third, T0 + S], [70.0, 71.4])},
                   waveforms={"ppg": (T0, 75.0, ppg)})
    xpod = VirtualNoninXpod()
    writes = xpod.line_bytes(chunk)
    packet_times = [T0 + (k * 2 * S + 3) // 6 for k in range(1, 6)]
    assert [time_ns for _, time_ns in writes] == packet_times and all(len(data) == 125 for data, _ in writes)
    frames = _framed("nonin.xpod", writes)
    assert {name for name, _, _ in frames} == {"df2_packet"}
    samples = _samples(_decode("nonin.xpod", frames))
    numerics = [(s.metric, s.time_ns, s.value) for s in samples if s.metric != "ppg"]
    held = [95.0, 95.0, 96.0, 96.0, 96.0]  # a reading at a packet time is in that packet, then held
    pulse = [70.0, 70.0, 71.0, 71.0, 71.0]
    assert numerics == [item for t, s, p in zip(packet_times, held, pulse, strict=True)
                        for item in (("pulse_rate", t, p), ("spo2", t, s))]
    assert [s.value for s in samples if s.metric == "ppg"] == [float(p) for p in pleth[1:126]]


def test_nonin_xpod_draws_a_pulse_without_ppg_and_goes_silent_without_readings() -> None:
    xpod = VirtualNoninXpod(hold_s=5.0)
    first = xpod.line_bytes(_chunk(T0, T0 + 2 * S, {"spo2": ([T0], [97.0]), "pulse_rate": ([T0], [60.0])}))
    later = xpod.line_bytes(_chunk(T0 + 2 * S, T0 + 8 * S, {}))
    assert len(first) == 5 and len(later) == 10  # packets up to 5 s after the last reading, then silence
    samples = _samples(_decode("nonin.xpod", _framed("nonin.xpod", first + later)))
    pleth = [s.value for s in samples if s.metric == "ppg"]
    assert len(pleth) == 15 * 25 and min(pleth) >= 0 and max(pleth) > min(pleth) + 50


def test_masimo_rad8_prints_a_line_per_reading_with_its_local_clock() -> None:
    chunk = _chunk(T0, T0 + 2 * S, {"spo2": ([T0, T0 + S], [97.4, 98.0]),
                                    "pulse_rate": ([T0, T0 + S], [72.0, 73.0])})
    writes = VirtualMasimoRad8(utc_offset_s=3600).line_bytes(chunk)
    assert writes[0] == (b"11/14/23 23:13:20 SN=0000012345 SPO2=097% BPM=072 PI=02.50% SPCO=--.-% "
                         b"SPMET=--.-% DESAT=-- PIDELTA=+-- ALARM=0000 EXC=000800\r\n", T0)
    results = _decode("masimo.rad8", _framed("masimo.rad8", writes))
    assert results[1].status["device_time"] == "11/14/23 23:13:21"
    assert _samples(results) == [Sample("spo2", T0, 97.0), Sample("pulse_rate", T0, 72.0),
                                 Sample("perfusion_index", T0, 2.5),
                                 Sample("spo2", T0 + S, 98.0), Sample("pulse_rate", T0 + S, 73.0),
                                 Sample("perfusion_index", T0 + S, 2.5)]


# -- choosing the virtual device ------------------------------------------------------------------


@pytest.mark.parametrize(("profile", "kind", "carries"), [
    ("generic.pulse_oximeter", "pulse_oximeter", ("spo2", "pulse_rate")),
    ("generic.heart_rate_strap", "heart_rate_strap", ("heart_rate",)),
    ("generic.bp_cuff", "bp_cuff", ("bp_systolic", "bp_diastolic", "bp_mean", "pulse_rate")),
    ("generic.thermometer", "thermometer", ("body_temperature",)),
    ("generic.weight_scale", "weight_scale", ("body_weight",)),
    ("generic.glucose_meter", "glucose_meter", ("blood_glucose",)),
    ("nonin.xpod", "pulse_oximeter", ("spo2", "pulse_rate", "ppg")),
    ("masimo.rad8", "pulse_oximeter", ("spo2", "pulse_rate")),
    ("generic.ecg_patch", "ecg_patch", ("ecg",)),
])
def test_the_kind_comes_from_the_profile(profile: str, kind: str, carries: tuple[str, ...]) -> None:
    spec = virtual_device_spec(LIBRARY[profile])
    assert (spec.kind, spec.profile, spec.carries) == (kind, profile, carries)


def test_a_kind_the_profile_cannot_speak_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="no characteristic 2a1c that a virtual thermometer notifies"):
        virtual_device_spec(LIBRARY["generic.heart_rate_strap"], "thermometer")
    with pytest.raises(ValueError, match=r"no ECG stream characteristic 5a1e0002-.* that a virtual ecg_patch notifies"):
        virtual_device_spec(LIBRARY["generic.heart_rate_strap"], "ecg_patch")
    with pytest.raises(ValueError, match="no virtual device of kind 'holter'"):
        virtual_device_spec(LIBRARY["generic.heart_rate_strap"], "holter")
    with pytest.raises(ValueError, match=r"nonin\.xpod is a pulse oximeter, not a bp_cuff"):
        virtual_device_spec(LIBRARY["nonin.xpod"], "bp_cuff")
    assert virtual_device_spec(LIBRARY["generic.glucose_meter"], "cgm").kind == "glucose_meter"


def _transport(device: DeviceConfig, start_ns: int = T0) -> Any:
    return VirtualTransportFactory(start_ns=start_ns)(device, LIBRARY[device.profile], lambda: start_ns + 10**15)


def test_metrics_the_virtual_device_cannot_carry_give_a_warning_not_a_crash(caplog: Any) -> None:
    strap = DeviceConfig("strap", "p-1", "generic.heart_rate_strap", "virtual", "copd_deteriorating", {"seed": 1})
    with caplog.at_level(logging.WARNING, logger="vitalbridge.virtual"):
        transport = _transport(strap)
        odd = DeviceConfig("thermo", "p-1", "generic.thermometer", "virtual", "copd_acute_hypoxia", {"seed": 1})
        silent = _transport(odd)
    assert [r.getMessage() for r in caplog.records] == [
        "device strap: the virtual heart_rate_strap (generic.heart_rate_strap) sends heart_rate; not respiratory_rate",
        "device thermo: scenario copd_acute_hypoxia measures none of body_temperature; "
        "the virtual thermometer will send nothing",
    ]
    sent = transport.device.advance(10.0)
    assert len(sent) == 10 and _samples(_decode("generic.heart_rate_strap", sent))
    assert silent.device.advance(3600.0) == []
    with pytest.raises(ValueError, match="device strap: no virtual device of kind 'holter'"):
        _transport(DeviceConfig("strap", "p-1", "generic.heart_rate_strap", "virtual", "copd_deteriorating",
                                {"kind": "holter"}))


def test_a_serial_profile_goes_through_its_framer_with_the_scenario_ppg() -> None:
    device = DeviceConfig("oximeter", "p-1", "nonin.xpod", "virtual", "copd_deteriorating", {"seed": 1})
    transport = _transport(device)
    assert isinstance(transport.device, FramedSerialDevice)
    assert isinstance(transport.device.run, ScenarioRun) and transport.device.run.waveforms
    sent = transport.device.advance(2.0)
    assert len(sent) == 5 and {channel for channel, _, _ in sent} == {"df2_packet"}
    samples = _samples(_decode("nonin.xpod", sent))
    assert {s.metric for s in samples} == {"ppg", "spo2", "pulse_rate"}


async def test_the_transport_delivers_scenario_time_never_ahead_of_the_clock() -> None:
    now = T0 + 3600 * S
    device = DeviceConfig("cgm", "p-1", "generic.glucose_meter", "virtual", "diabetes_stable",
                          {"seed": 1, "speed": 20_000, "kind": "cgm", "utc_offset_s": 7200})
    transport = VirtualTransportFactory(start_ns=T0)(device, LIBRARY[device.profile], lambda: now)
    payloads: list[Payload] = []
    task = asyncio.create_task(transport.run(payloads.append, lambda _kind, _detail: None))
    await asyncio.sleep(0.6)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert isinstance(transport.device.run, ScenarioRun)
    assert transport.device.run.elapsed_s == 3600.0  # capped at the clock: an hour of 5-min readings
    samples = _samples(_decode("generic.glucose_meter", [(p.channel, p.data, p.received_ns) for p in payloads],
                               utc_offset_s=7200))
    assert [s.time_ns for s in samples] == [T0 + i * 300 * S for i in range(12)]


# -- the virtual home ------------------------------------------------------------------------------


def test_a_virtual_home_wires_every_kind_with_a_virtual_device() -> None:
    devices, lines = home_devices(load_scenario("copd_deteriorating"), address="copd_deteriorating", seed=4,
                                  utc_offset_s=3600)
    assert [(d.id, d.profile, d.options["kind"]) for d in devices] == [
        ("oximeter", "nonin.xpod", "pulse_oximeter"), ("thermometer", "generic.thermometer", "thermometer"),
        ("strap", "generic.heart_rate_strap", "heart_rate_strap"), ("cuff", "generic.bp_cuff", "bp_cuff")]
    assert all(d.options["utc_offset_s"] == 3600 and d.options["seed"] == 4 for d in devices)
    assert lines == ["warning: device strap: the virtual heart_rate_strap (generic.heart_rate_strap) sends "
                     "heart_rate; not respiratory_rate"]
    devices, lines = home_devices(load_scenario("af_stable"), address="af_stable", seed=0)
    assert [(d.id, d.profile) for d in devices] == [("patch", "generic.ecg_patch"), ("oximeter", "nonin.xpod"),
                                                    ("cuff", "generic.bp_cuff")]
    assert lines == ["warning: device patch: the virtual ecg_patch (generic.ecg_patch) sends ecg; not heart_rate"]


def test_a_profile_outside_the_library_falls_back_to_the_generic_one() -> None:
    scenario = parse_scenario({
        "name": "acme_home", "description": "a vendor thermometer not in the library",
        "patient": {"id": "p-9", "age": 50},
        "devices": [{"id": "thermo", "kind": "thermometer", "profile": "acme.thermo", "metrics": ["body_temperature"]},
                    {"id": "cgm", "kind": "cgm", "profile": "generic.glucose_meter", "metrics": ["blood_glucose"]}],
    })
    devices, lines = home_devices(scenario, address="acme.yaml", seed=0)
    assert [(d.id, d.profile) for d in devices] == [("thermo", "generic.thermometer"),
                                                     ("cgm", "generic.glucose_meter")]
    assert lines == ["note: device thermo: profile acme.thermo is not in the library; "
                     "the virtual thermometer speaks generic.thermometer"]


def test_resolutions_are_decimal_steps() -> None:
    assert BLE_DEVICE_KINDS["weight_scale"].quantize("body_weight", 70.004) == 70.005
    assert BLE_DEVICE_KINDS["thermometer"].resolution["body_temperature"] == Decimal("0.1")
