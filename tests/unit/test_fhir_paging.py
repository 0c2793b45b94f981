"""Paging of numeric values (``FhirSource.numeric_page``) over any data: every value once, in time order, the
values of one instant never split across pages, whatever the page size. InfluxDB is played by a handler that
answers the time bounds and LIMIT of each query from a list (the real server: tests/integration/test_fhir.py)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.fhir import FhirSource, TimeRange
from cloud.timeseries import InfluxV1Client

_METRICS = ("bp_diastolic", "bp_systolic", "heart_rate", "spo2")


def _influx(rows: list[tuple[int, str, str, float]]) -> httpx.MockTransport:
    ordered = sorted(rows)

    def handle(request: httpx.Request) -> httpx.Response:
        statement = request.url.params["q"]
        start = int(re.search(r"time >= (\d+)", statement).group(1))  # type: ignore[union-attr]
        end_match = re.search(r"time < (\d+)", statement)
        end = int(end_match.group(1)) if end_match else 2**63
        limit = int(re.search(r"LIMIT (\d+)", statement).group(1))  # type: ignore[union-attr]
        values = [[t, value, 0, metric, device] for t, metric, device, value in ordered if start <= t < end][:limit]
        series = [{"name": "vitals", "columns": ["time", "value", "quality", "metric", "device"], "values": values}]
        return httpx.Response(200, json={"results": [{"statement_id": 0, "series": series if values else []}]})

    return httpx.MockTransport(handle)


_rows = st.lists(st.tuples(st.integers(0, 30), st.sampled_from(_METRICS), st.sampled_from(["a", "b"]),
                           st.floats(1, 200, allow_nan=False)),
                 max_size=60, unique_by=lambda row: row[:3])


@settings(max_examples=60, deadline=None)
@given(_rows, st.integers(1, 8), st.integers(0, 10), st.integers(10, 40))
async def test_pages_hold_every_value_once_and_never_split_an_instant(
        rows: list[tuple[int, str, str, float]], count: int, start: int, end: int) -> None:
    async with InfluxV1Client("http://influx.test", "vb", transport=_influx(rows)) as influx:
        source = FhirSource(None, None, influx)  # type: ignore[arg-type]  # only InfluxDB is read here
        pages: list[list[Any]] = []
        cursor = start
        while True:
            page = await source.numeric_page("p1", _METRICS, TimeRange(cursor, end), count)
            pages.append(page.values)
            if page.next_ns is None:
                break
            assert page.next_ns > cursor and page.values
            cursor = page.next_ns
    served = [(v.time_ns, v.metric, v.device, v.value) for page in pages for v in page]
    assert served == sorted(row for row in rows if start <= row[0] < end)
    instants = [{v.time_ns for v in page} for page in pages]
    for index, times in enumerate(instants):
        assert not any(times & other for other in instants[index + 1:])
