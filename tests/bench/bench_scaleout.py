"""Scale-out: one ingest worker against two on a shared subscription, and a 1,000-gateway load.

Workers: the same backlog of 10-sample SpO2 batches is queued by the broker while the workers
are away (each worker's persistent session in the shared group holds its share), then 1 or 2
`vitalbridge cloud ingest` processes drain it into one relational store; timed until every batch
is in the ingest log. Baseline (named by the issue): one worker, in the same run.

Load: `sim load` with 1,000 virtual gateways of 10 patients each (10,000 patients), one SpO2 and
one pulse-rate reading per patient per second (a continuous wearable oximeter: the heaviest
home stream short of waveforms), a batch per patient every 10 s, QoS 1, each gateway reading the
cloud's acknowledgements. Reported: stored against published, publish-to-stored latency, and the
CPU each server process used per 1,000 patients.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

from simulators.load import LoadOptions, run_load
from tests.bench.bench_ingest import GATEWAYS, _batch, _Ingest, _publish
from vitalbridge.stack import InfluxDB, Mosquitto
from vitals.codec import encode_batch
from vitals.topics import data_topic

S = 10**9
BACKLOG = 24_000
LOAD_GATEWAYS = 1_000
LOAD_PATIENTS = 10
LOAD_SECONDS = 60.0
LOAD_INTERVAL_S = 10.0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _drain(run: Path, mosquitto: Mosquitto, influx_url: str, workers: int, start_ns: int) -> tuple[float, float]:
    """Seconds and total ingest CPU seconds for ``workers`` workers to drain BACKLOG batches."""
    db = f"workers{workers}"
    database_url = f"sqlite:///{run / f'{db}.db'}"
    ingests = [_Ingest(run, mosquitto.url, influx_url, db, index=i, database_url=database_url)
               for i in range(workers)]
    for ingest in ingests:
        ingest.start()  # joins the shared group with a persistent session
    for ingest in ingests:
        ingest.stop()
    messages = [(data_topic(f"gw-{n % GATEWAYS}"), encode_batch(_batch(n, "spo2", "%", 1.0, 10, start_ns)))
                for n in range(BACKLOG)]
    _publish(mosquitto.host, mosquitto.port, messages)
    for ingest in ingests:
        ingest.start()
    cpu0 = sum(ingest.cpu_s() for ingest in ingests)
    started = time.perf_counter()
    while ingests[0].logged() < BACKLOG:
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    cpu = sum(ingest.cpu_s() for ingest in ingests) - cpu0
    for ingest in ingests:
        ingest.stop()
    return elapsed, cpu


async def _load(run: Path, mosquitto: Mosquitto, influxd: InfluxDB) -> tuple[object, dict[str, float], float]:
    ingest = _Ingest(run, mosquitto.url, influxd.url, "load")
    ingest.start()
    assert ingest.process is not None
    pids = {"ingest": ingest.process.pid, "mosquitto": mosquitto.pid or 0, "influxd": influxd.pid or 0}
    before = {name: _cpu_s(pid) for name, pid in pids.items() if pid}
    started = time.perf_counter()
    options = LoadOptions(mosquitto.url, gateways=LOAD_GATEWAYS, patients_per_gateway=LOAD_PATIENTS, rate_hz=1.0,
                          duration_s=LOAD_SECONDS, batch_interval_s=LOAD_INTERVAL_S, gateway_prefix="bench",
                          connect_timeout_s=30.0, publish_timeout_s=60.0, track_acks=True, ack_wait_s=60.0)
    report = await run_load(options)
    elapsed = time.perf_counter() - started
    cpu = {name: _cpu_s(pids[name]) - spent for name, spent in before.items()}
    ingest.stop()
    return report, cpu, elapsed


async def _main() -> str:
    run = Path(tempfile.mkdtemp(prefix="vb-bench-scaleout-"))
    mosquitto = Mosquitto(run / "mosquitto", autosave_s=3600, max_queued=BACKLOG + 10_000)
    influxd = InfluxDB(run / "influxdb")
    mosquitto.start()
    influxd.start()
    try:
        start_ns = time.time_ns() - 20 * 86_400 * S
        one, one_cpu = _drain(run, mosquitto, influxd.url, 1, start_ns)
        two, two_cpu = _drain(run, mosquitto, influxd.url, 2, start_ns - 86_400 * S)
        report, cpu, elapsed = await _load(run, mosquitto, influxd)
    finally:
        influxd.stop()
        mosquitto.stop()
    from simulators.load import LoadReport

    assert isinstance(report, LoadReport)
    thousands = LOAD_GATEWAYS * LOAD_PATIENTS / 1000
    latency = report.ack_latency_ms or {}
    cpu_rows = [f"| {name} | {spent:.1f} | {spent / elapsed:.2f} | {spent / elapsed / thousands:.3f} |"
                for name, spent in cpu.items()]
    return "\n".join([
        "## Scale-out",
        "",
        f"Workers: a backlog of {BACKLOG:,} 10-sample SpO2 batches from {GATEWAYS} gateways, queued by the broker "
        "while the workers were away, drained by `vitalbridge cloud ingest` workers on one shared subscription "
        "into one SQLite store. Everything (Mosquitto, influxd, the workers) shares this machine's cores.",
        "",
        "| workers | seconds | messages/s | ratio to 1 worker | ingest CPU s |",
        "|---|---|---|---|---|",
        f"| 1 (baseline) | {one:.1f} | {BACKLOG / one:,.0f} | 1.00 | {one_cpu:.1f} |",
        f"| 2 | {two:.1f} | {BACKLOG / two:,.0f} | {one / two:.2f} | {two_cpu:.1f} |",
        "",
        f"Goal: 2 workers >= 1.6x one: **{one / two:.2f}x**.",
        "",
        f"Load: {LOAD_GATEWAYS:,} virtual gateways x {LOAD_PATIENTS} patients, 1 reading/s of SpO2 and pulse "
        f"rate each, a batch per patient every {LOAD_INTERVAL_S:g} s for {LOAD_SECONDS:g} s, one ingest worker "
        f"(the load generator itself runs on this machine too).",
        "",
        f"- published: {report.published_values:,} values in {report.published_messages:,} messages "
        f"({report.achieved_messages_per_s:,.0f} messages/s, target {report.target_messages_per_s:,.0f}); "
        f"errors: {report.errors or 'none'}",
        f"- stored (acknowledged by the cloud): {report.confirmed_values or 0:,} values in "
        f"{report.confirmed_messages or 0:,} messages "
        f"({(report.confirmed_values or 0) / max(report.published_values, 1):.2%} of published)",
        f"- publish-to-stored latency: p50 {latency.get('p50', float('nan')):.0f} ms, "
        f"p90 {latency.get('p90', float('nan')):.0f} ms, p99 {latency.get('p99', float('nan')):.0f} ms, "
        f"max {latency.get('max', float('nan')):.0f} ms",
        "",
        "| process | CPU s over the run | cores | cores per 1,000 patients |",
        "|---|---|---|---|",
        *cpu_rows,
    ])


def run() -> str:
    """Run the scale-out benchmark; returns its Markdown section."""
    return asyncio.run(_main())


if __name__ == "__main__":
    print(run())
