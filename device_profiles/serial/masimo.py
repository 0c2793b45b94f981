"""Masimo Rad-8 / Radical-7 serial "ASCII 1" output: one text line per second.

Source: Masimo, "Rad-8 Signal Extraction Pulse Oximeter Operator's Manual", sections Serial
Interface Specifications (RS-232, 9600 baud, 8 data bits, no parity, 1 stop bit) and ASCII 1
output, plus the exception bit table of its trend data format. A line reads::

    02/22/16 22:47:45 SN=0000056661 SPO2=098% BPM=097 PI=03.60% SPCO=--.-% SPMET=--.-% DESAT=-- \
        PIDELTA=+-- ALARM=0000 EXC=000800      (one line, ended by CR LF)

Dashes stand for "no value". ``ALARM`` and ``EXC`` are hexadecimal bit sets; the exception bits are
001 no sensor, 002 defective sensor, 004 low perfusion, 008 pulse search, 010 interference,
020 sensor off, 040 ambient light, 080 unrecognised sensor, 400 low signal IQ, 800 SET mode.
"""

from __future__ import annotations

import re
from typing import Any

from device_profiles.errors import DecodeError
from device_profiles.registry import DecodeContext, DecodeResult
from vitals.samples import Quality, Sample

__all__ = ["EXCEPTION_BITS", "decode_masimo_ascii1"]

EXCEPTION_BITS: dict[int, str] = {
    0x001: "no_sensor",
    0x002: "defective_sensor",
    0x004: "low_perfusion",
    0x008: "pulse_search",
    0x010: "interference",
    0x020: "sensor_off",
    0x040: "ambient_light",
    0x080: "unrecognized_sensor",
    0x400: "low_signal_iq",
    0x800: "set_mode",
}
"""Exception bit -> name, from the Rad-8 manual's exception table."""

_LOW_SIGNAL = 0x004 | 0x010 | 0x040 | 0x400
_QUESTIONABLE = 0x001 | 0x002 | 0x008 | 0x020 | 0x080
_DATE = re.compile(rb"\d\d/\d\d/\d\d")
_TIME = re.compile(rb"\d\d:\d\d:\d\d")
_FIELD = re.compile(rb"([A-Z][A-Z0-9]*)=(\S*)")
_NUMBER = re.compile(r"\d+(\.\d+)?")


def _number(key: str, text: str) -> float | None:
    """Value of a field like ``098%``/``03.60%``; None for dashes (no value)."""
    body = text.rstrip("%")
    if body and set(body) <= set("-.+"):
        return None
    if not _NUMBER.fullmatch(body):
        raise DecodeError(f"{key}={text!r} is not a number")
    return float(body)


def decode_masimo_ascii1(payload: bytes, context: DecodeContext) -> DecodeResult:
    """Decode one ASCII 1 line into ``spo2`` (%), ``pulse_rate`` (/min) and ``perfusion_index`` (%) samples
    at ``context.received_ns``.

    The device's own date and time (no zone, often unset) go to ``status["device_time"]``; the
    gateway's receive time stamps the samples. SpCO and SpMet (%) go to status, as they are not
    catalogue metrics. Exceptions set quality flags: low perfusion,
    interference, ambient light or low signal IQ -> low signal quality; no/defective/unrecognised
    sensor, sensor off or pulse search -> device questionable.
    """
    tokens = payload.split()
    if len(tokens) < 3 or not _DATE.fullmatch(tokens[0]) or not _TIME.fullmatch(tokens[1]):
        raise DecodeError("an ASCII 1 line starts with MM/DD/YY HH:MM:SS")
    fields: dict[str, str] = {}
    for token in tokens[2:]:
        match = _FIELD.fullmatch(token)
        if match is None:
            raise DecodeError(f"unexpected token {token[:20]!r}")
        try:
            fields[match[1].decode("ascii")] = match[2].decode("ascii")
        except UnicodeDecodeError:
            raise DecodeError(f"non-ASCII value in {token[:20]!r}") from None
    for required in ("SPO2", "BPM"):
        if required not in fields:
            raise DecodeError(f"the line has no {required}= field")
    try:
        exceptions = int(fields.get("EXC", "0"), 16)
        alarm = int(fields.get("ALARM", "0"), 16)
    except ValueError:
        raise DecodeError("ALARM and EXC must be hexadecimal") from None

    quality = Quality.OK
    if exceptions & _LOW_SIGNAL:
        quality |= Quality.LOW_SIGNAL_QUALITY
    if exceptions & _QUESTIONABLE:
        quality |= Quality.DEVICE_QUESTIONABLE
    samples: list[Sample] = []
    notes: list[str] = []
    for key, metric in (("SPO2", "spo2"), ("BPM", "pulse_rate"), ("PI", "perfusion_index")):
        if key not in fields:  # PI is optional
            continue
        value = _number(key, fields[key])
        if value is None:
            notes.append(f"{metric}: no value ({key}={fields[key]})")
        else:
            samples.append(Sample(metric, context.received_ns, value, int(quality)))

    status: dict[str, Any] = {
        "device_time": f"{tokens[0].decode()} {tokens[1].decode()}",
        "alarm": alarm,
        "exceptions": [name for bit, name in EXCEPTION_BITS.items() if exceptions & bit],
    }
    if "SN" in fields:
        status["serial_number"] = fields["SN"]
    for key, name in (("SPCO", "spco_percent"), ("SPMET", "spmet_percent")):
        if key in fields:
            status[name] = _number(key, fields[key])
    return DecodeResult(tuple(samples), status, tuple(notes))
