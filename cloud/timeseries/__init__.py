"""The time-series store: batches become InfluxDB points through the v1-compatible HTTP API."""

from cloud.timeseries._aggregate import Bucket, bucket_means, downsample, latest_values, reading_minutes
from cloud.timeseries._client import InfluxError, InfluxRejected, InfluxUnavailable, InfluxV1Client
from cloud.timeseries._lines import (
    NUMERIC_MEASUREMENT,
    WAVEFORM_MEASUREMENT,
    batch_to_lines,
    escape_tag,
    measurement_of,
)
from cloud.timeseries._read import read_samples

__all__ = [
    "NUMERIC_MEASUREMENT",
    "WAVEFORM_MEASUREMENT",
    "Bucket",
    "InfluxError",
    "InfluxRejected",
    "InfluxUnavailable",
    "InfluxV1Client",
    "batch_to_lines",
    "bucket_means",
    "downsample",
    "escape_tag",
    "latest_values",
    "measurement_of",
    "read_samples",
    "reading_minutes",
]
