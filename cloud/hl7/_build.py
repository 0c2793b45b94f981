"""HL7 v2.6 messages from device observations and alerts (pure: values in, message text out).

Observations travel as ``ORU^R01`` following IHE PCD-01 (Communicate PCD Data); alerts as the
PCD-04 form (``ORU^R40``, Report Alarm). Layout of an observation report::

    MSH  ... ORU^R01^ORU_R01 | control id | P | 2.6 ... profile IHE_PCD_001
    PID  the pseudonymous patient id (PID-3), a pseudo-name (PID-5 name type S)
    OBR  filler order number = the batch key; OBR-4 "monitoring of patient"; OBR-7/8 first/last time
    OBX  the device (MDS, OBX-4 1.0.0.0), identity in OBX-18
    OBX  one per value: MDC code (OBX-3), containment 1.1.1.<n> (OBX-4, MDS.VMD.CHAN.METRIC), value
         (OBX-5), MDC unit with the UCUM alternate (OBX-6), time (OBX-14), device identity (OBX-18)

Text is escaped with the HL7 library (``|^~\\&`` and line ends; beyond ASCII it travels as UTF-8, as
MSH-18 declares), and the message control id is a
deterministic function of what the message reports, so a receiver recognises a repeat.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import hl7
import numpy as np

from cloud.alerting import AlertSummary
from cloud.hl7._codes import observation_codes
from vitals.catalogue import CATALOGUE, MetricKind
from vitals.samples import Batch, Sample

__all__ = [
    "PCD01_PROFILE",
    "PCD04_PROFILE",
    "DEFAULT_HEADER",
    "AlertReport",
    "MessageHeader",
    "ObservationReport",
    "alert_control_id",
    "batch_control_id",
    "batch_report",
    "build_oru_r01",
    "build_oru_r40",
    "export_control_id",
    "format_value",
    "hl7_time",
]

PCD01_PROFILE = ("IHE_PCD_001", "IHE PCD", "1.3.6.1.4.1.19376.1.6.1.1.1", "ISO")
PCD04_PROFILE = ("IHE_PCD_ACM_001", "IHE PCD", "1.3.6.1.4.1.19376.1.6.4.4", "ISO")
_MDS = ("65573", "MDC_MOC_VMS_MDS_SIMP", "MDC")
_MONITORING = ("182777000", "monitoring of patient", "SCT")
_EVT_ALARM = ("196616", "MDC_EVT_ALARM", "MDC")
_EVENT_PHASE = ("68481", "MDC_ATTR_EVENT_PHASE", "MDC")
_ALARM_STATE = ("68482", "MDC_ATTR_ALARM_STATE", "MDC")
_INACTIVATION = ("68483", "MDC_ATTR_ALARM_INACTIVATION_STATE", "MDC")
_PRIORITY = {"info": "PN", "warning": "PL", "urgent": "PM", "critical": "PH"}

# The library's escaping under the standard separators (MSH-1 "|", MSH-2 "^~\&").
_ENCODING = hl7.Message(sequence=[])

Component = str | tuple[str, ...]
"""A field: one value, or its components in order (each escaped on its own)."""


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """Who sends and who receives (MSH-3..6), and who assigns the patient ids (PID-3.4)."""

    sending_application: str = "VitalBridge"
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    patient_authority: str = "VitalBridge"


DEFAULT_HEADER = MessageHeader()
"""Sent by ``VitalBridge``, to no named receiver; patient ids assigned by ``VitalBridge``."""


@dataclass(frozen=True, slots=True)
class ObservationReport:
    """One device's observations for one patient: what one ORU^R01 carries.

    ``order`` is the filler order number (OBR-3), e.g. the batch key; ``created_ns`` (Unix ns) is MSH-7.
    """

    control_id: str
    created_ns: int
    patient: str
    gateway: str
    device: str
    order: str
    observations: Sequence[Sample]


@dataclass(frozen=True, slots=True)
class AlertReport:
    """A patient's alerts as one ORU^R40 tells them (``created_ns``, Unix ns, is MSH-7)."""

    control_id: str
    created_ns: int
    patient: str
    alerts: Sequence[AlertSummary]


def _digest(*parts: object, prefix: str) -> str:
    text = "\x00".join(str(part) for part in parts)
    # 20 characters: the MSH-10 length older receivers (v2.5 and before) still enforce.
    return prefix + hashlib.blake2b(text.encode(), digest_size=9).hexdigest()


def batch_control_id(gateway: str, epoch: str, seq: int) -> str:
    """MSH-10 of the report of batch ``(gateway, epoch, seq)``: the same every time it is built."""
    return _digest(gateway, epoch, seq, prefix="VB")


def alert_control_id(delivery_key: str) -> str:
    """MSH-10 of an alert report, from its notification delivery's idempotency key."""
    return _digest(delivery_key, prefix="VA")


def export_control_id(patient: str, device: str, first_ns: int, last_ns: int, count: int) -> str:
    """MSH-10 of an exported report: the same range exported again gives the same ids."""
    return _digest(patient, device, first_ns, last_ns, count, prefix="VX")


def hl7_time(time_ns: int) -> str:
    """``time_ns`` (Unix ns) as an HL7 DTM in UTC to 1/10 000 s: ``YYYYMMDDHHMMSS.ffff+0000``."""
    seconds, rest = divmod(int(time_ns), 1_000_000_000)
    return f"{time.strftime('%Y%m%d%H%M%S', time.gmtime(seconds))}.{rest // 100_000:04d}+0000"


def format_value(value: float) -> str | None:
    """``value`` as an HL7 NM (no exponent), the shortest text that reads back as the same float.

    None for NaN and infinities, which NM cannot carry.
    """
    if not math.isfinite(value):
        return None
    text = repr(float(value))  # shortest round-trip form; positional unless very large or small
    if "e" in text:
        text = np.format_float_positional(value, trim="-")
    elif text.endswith(".0"):
        text = text[:-2]
    return "0" if text == "-0" else text


_PLAIN = re.compile(r"[ !-%'-\[\]_-{}]*")  # printable ASCII but the separators | ^ ~ \ & (nothing to escape)


def _escape(text: str) -> str:
    if _PLAIN.fullmatch(text):
        return text  # numbers, codes, times: the common case, without a walk over each character
    # The library escapes the separators and control characters; text beyond ASCII travels as UTF-8
    # (MSH-18 says so), since its hex escapes hold one byte and would garble anything above U+00FF.
    if text.isascii():
        return str(_ENCODING.escape(text)) if text else ""
    return "".join(part if not part.isascii() else str(_ENCODING.escape(part))
                   for part in _runs(text))


def _runs(text: str) -> list[str]:
    """``text`` cut into alternating runs of ASCII and non-ASCII characters."""
    runs: list[str] = []
    for char in text:
        if runs and runs[-1][-1].isascii() == char.isascii():
            runs[-1] += char
        else:
            runs.append(char)
    return runs


def _field(value: Component | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return _escape(value)
    return "^".join(_escape(part) for part in value).rstrip("^")


def _segment(name: str, fields: Sequence[Component | None]) -> str:
    return "|".join([name, *(_field(value) for value in fields)]).rstrip("|")


def _msh(header: MessageHeader, created_ns: int, trigger: str, control_id: str,
         profile: tuple[str, str, str, str]) -> str:
    fields: list[Component | None] = [
        header.sending_application, header.sending_facility, header.receiving_application,
        header.receiving_facility, hl7_time(created_ns), None, ("ORU", trigger, "ORU_R01"), control_id, "P", "2.6",
        None, None, "AL", "NE", None, "UNICODE UTF-8", None, None, profile,
    ]
    # MSH-1 (the field separator) and MSH-2 (the encoding characters) are written as they are.
    return "MSH|^~\\&|" + "|".join(_field(value) for value in fields).rstrip("|")


def _pid(header: MessageHeader, patient: str) -> str:
    # PID-5 name type "S": a coded pseudo-name; the cloud holds pseudonymous ids, never names.
    return _segment("PID", [None, None, (patient, "", "", header.patient_authority, "PI"), None,
                            ("", "", "", "", "", "", "S")])


def build_oru_r01(report: ObservationReport, header: MessageHeader = DEFAULT_HEADER) -> str:
    """The PCD-01 ``ORU^R01`` of ``report`` (segments separated by CR, no MLLP framing).

    Values that NM cannot carry (NaN, infinities) and metrics outside the catalogue are left out.
    Raises ``ValueError`` when nothing is left to report.
    """
    rows = [(s, format_value(s.value)) for s in report.observations if s.metric in CATALOGUE]
    kept = sorted(((s, text) for s, text in rows if text is not None), key=lambda row: row[0].time_ns)
    if not kept:
        raise ValueError("no observation to report")
    device = (report.device, report.gateway)
    segments = [
        _msh(header, report.created_ns, "R01", report.control_id, PCD01_PROFILE),
        _pid(header, report.patient),
        _segment("OBR", ["1", None, (report.order, header.sending_application), _MONITORING, None, None,
                         hl7_time(kept[0][0].time_ns), hl7_time(kept[-1][0].time_ns)]),
        _segment("OBX", ["1", None, _MDS, "1.0.0.0", None, None, None, None, None, None, "X", None, None, None,
                         None, None, None, device]),
    ]
    # Per metric, its containment and codes are escaped once; each value's segment is then a format.
    columns: dict[str, tuple[str, str, str]] = {}
    device_field = _field(device)
    for number, (sample, text) in enumerate(kept, start=2):
        known = columns.get(sample.metric)
        if known is None:
            codes = observation_codes(sample.metric)
            known = columns[sample.metric] = (_field(codes.observation), f"1.1.1.{len(columns) + 1}",
                                              _field(codes.unit))
        code, containment, unit = known
        segments.append(f"OBX|{number}|NM|{code}|{containment}|{text}|{unit}|||||R|||{hl7_time(sample.time_ns)}"
                        f"||||{device_field}")
    return "\r".join(segments) + "\r"


def _phase_and_state(alert: AlertSummary) -> tuple[str, str]:
    if alert.state in ("resolved", "closed"):
        return "end", "inactive"
    return ("start" if alert.purpose == "fire" else "continue"), "active"


def build_oru_r40(report: AlertReport, header: MessageHeader = DEFAULT_HEADER) -> str:
    """The PCD-04 ``ORU^R40`` of ``report``: one OBR per alert, then its event, source, phase and state.

    Raises ``ValueError`` for a report without alerts.
    """
    if not report.alerts:
        raise ValueError("no alert to report")
    segments = [_msh(header, report.created_ns, "R40", report.control_id, PCD04_PROFILE),
                _pid(header, report.patient)]
    for set_id, alert in enumerate(report.alerts, start=1):
        fired = hl7_time(int(alert.fired_at.timestamp()) * 1_000_000_000 + alert.fired_at.microsecond * 1000)
        segments.append(_segment("OBR", [str(set_id), None, (f"alert-{alert.id}", header.sending_application),
                                         _EVT_ALARM, None, None, fired]))
        flags = f"{_PRIORITY.get(alert.severity, 'PM')}~SP"  # priority, then source: physiological
        phase, state = _phase_and_state(alert)
        rows: list[tuple[str, tuple[str, str, str], str]] = [("ST", _EVT_ALARM, f"{alert.rule}: {alert.message}")]
        if alert.metric in CATALOGUE:
            codes = observation_codes(alert.metric).observation
            rows.append(("CWE", codes, "^".join(_escape(part) for part in codes)))
        rows.append(("ST", _EVENT_PHASE, phase))
        rows.append(("ST", _ALARM_STATE, state))
        if alert.state == "acknowledged":
            rows.append(("ST", _INACTIVATION, "acknowledged"))
        for facet, (kind, code, value) in enumerate(rows, start=1):
            escaped = value if kind == "CWE" else _escape(value)
            fields = [str(facet), kind, "^".join(_escape(p) for p in code), f"1.0.0.0.{facet}", escaped, "",
                      "", flags if facet == 1 else "", "", "", "F", "", "", fired]
            segments.append("|".join(["OBX", *fields]).rstrip("|"))
    return "\r".join(segments) + "\r"


def batch_report(batch: Batch, created_ns: int) -> ObservationReport | None:
    """The observation report of a stored batch: its numeric values (None when it has none).

    Waveforms are left out: PCD-01 reports them as sampled arrays, which this sender does not do.
    """
    samples: list[Sample] = []
    for stream in batch.streams:
        metric = CATALOGUE.get(stream.metric)
        if metric is not None and metric.kind is MetricKind.NUMERIC:
            samples.extend(stream.samples())
    if not any(format_value(sample.value) is not None for sample in samples):
        return None
    return ObservationReport(
        control_id=batch_control_id(batch.gateway, batch.epoch, batch.seq), created_ns=created_ns,
        patient=batch.patient, gateway=batch.gateway, device=batch.device,
        order=f"{batch.gateway}.{batch.epoch}.{batch.seq}", observations=samples)


