"""Types shared by the two Pulse Oximeter (PLX) measurements: status words and SpO2/PR pairs."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from device_profiles.gatt._result import ResultBuilder, flag_names
from device_profiles.ieee11073 import Measured
from vitals.samples import Quality

__all__ = [
    "PlxDeviceAndSensorStatus",
    "PlxMeasurementStatus",
    "SpO2PulseRate",
]


class PlxMeasurementStatus(enum.IntFlag):
    """Measurement Status (uint16); bits 0-4 are reserved."""

    MEASUREMENT_ONGOING = 1 << 5
    EARLY_ESTIMATED_DATA = 1 << 6
    VALIDATED_DATA = 1 << 7
    FULLY_QUALIFIED_DATA = 1 << 8
    DATA_FROM_MEASUREMENT_STORAGE = 1 << 9
    DATA_FOR_DEMONSTRATION = 1 << 10
    DATA_FOR_TESTING = 1 << 11
    CALIBRATION_ONGOING = 1 << 12
    MEASUREMENT_UNAVAILABLE = 1 << 13
    QUESTIONABLE_MEASUREMENT_DETECTED = 1 << 14
    INVALID_MEASUREMENT_DETECTED = 1 << 15


class PlxDeviceAndSensorStatus(enum.IntFlag):
    """Device and Sensor Status (uint24); bits 16-23 are reserved."""

    EXTENDED_DISPLAY_UPDATE_ONGOING = 1 << 0
    EQUIPMENT_MALFUNCTION_DETECTED = 1 << 1
    SIGNAL_PROCESSING_IRREGULARITY_DETECTED = 1 << 2
    INADEQUATE_SIGNAL_DETECTED = 1 << 3
    POOR_SIGNAL_DETECTED = 1 << 4
    LOW_PERFUSION_DETECTED = 1 << 5
    ERRATIC_SIGNAL_DETECTED = 1 << 6
    NONPULSATILE_SIGNAL_DETECTED = 1 << 7
    QUESTIONABLE_PULSE_DETECTED = 1 << 8
    SIGNAL_ANALYSIS_ONGOING = 1 << 9
    SENSOR_INTERFERENCE_DETECTED = 1 << 10
    SENSOR_UNCONNECTED_TO_USER = 1 << 11
    UNKNOWN_SENSOR_CONNECTED = 1 << 12
    SENSOR_DISPLACED = 1 << 13
    SENSOR_MALFUNCTIONING = 1 << 14
    SENSOR_DISCONNECTED = 1 << 15


@dataclass(frozen=True, slots=True)
class SpO2PulseRate:
    """An SpO2 (%) and pulse rate (/min) pair."""

    spo2: Measured
    pulse_rate: Measured


# Readings the device itself says are not patient data (or not a measurement at all): no samples.
_NOT_PATIENT_DATA = (
    PlxMeasurementStatus.DATA_FOR_DEMONSTRATION
    | PlxMeasurementStatus.DATA_FOR_TESTING
    | PlxMeasurementStatus.MEASUREMENT_UNAVAILABLE
    | PlxMeasurementStatus.INVALID_MEASUREMENT_DETECTED
)
_QUESTIONABLE_MEASUREMENT = (
    PlxMeasurementStatus.EARLY_ESTIMATED_DATA
    | PlxMeasurementStatus.CALIBRATION_ONGOING
    | PlxMeasurementStatus.QUESTIONABLE_MEASUREMENT_DETECTED
)
# Everything except the two "work in progress" bits is a signal or sensor problem.
_QUESTIONABLE_SENSOR = PlxDeviceAndSensorStatus(0xFFFF) & ~(
    PlxDeviceAndSensorStatus.EXTENDED_DISPLAY_UPDATE_ONGOING
    | PlxDeviceAndSensorStatus.SIGNAL_ANALYSIS_ONGOING
)


def _plx_common(
    out: ResultBuilder,
    measurement_status: PlxMeasurementStatus | None,
    sensor_status: PlxDeviceAndSensorStatus | None,
) -> int | None:
    """Fill status and notes; return the sample quality, or ``None`` when no samples may be made."""
    quality = 0
    if measurement_status is not None:
        out.status["measurement_status"] = flag_names(measurement_status)
        if measurement_status & _QUESTIONABLE_MEASUREMENT:
            quality = Quality.DEVICE_QUESTIONABLE
    if sensor_status is not None:
        out.status["device_and_sensor_status"] = flag_names(sensor_status)
        if sensor_status & _QUESTIONABLE_SENSOR:
            quality = Quality.DEVICE_QUESTIONABLE
    if measurement_status is not None and measurement_status & _NOT_PATIENT_DATA:
        reasons = ", ".join(flag_names(measurement_status & _NOT_PATIENT_DATA))
        out.notes.append(f"device marked the reading as {reasons}; no samples made")
        return None
    return quality
