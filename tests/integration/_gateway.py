"""A gateway for cloud tests: the real spool and publisher, fed batches directly (no devices).

It waits for the cloud's end-to-end acknowledgements, so "confirmed" means stored in the cloud.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path

from edge.publisher import MqttPublisher, PublisherSettings
from edge.spool import BatchSpool
from vitals.codec import encode_batch
from vitals.samples import Batch, Sample, Stream

__all__ = ["TestGateway", "running_gateway", "spo2_batch"]

S = 10**9


def spo2_batch(gateway: str, patient: str, start_ns: int, values: list[float], step_s: float = 1.0) -> Batch:
    """A batch of one irregular SpO2 stream, ``step_s`` apart from ``start_ns`` (seq and epoch set on spooling)."""
    samples = [Sample("spo2", start_ns + int(i * step_s * S), v) for i, v in enumerate(values)]
    return Batch(gateway, 0, patient, f"{patient}-ox", "generic.pulse_oximeter",
                 (Stream.from_samples("spo2", "%", samples),))


class TestGateway:
    """One gateway: ``add`` spools batches, the publisher sends them and drops what the cloud confirms."""

    __test__ = False

    def __init__(self, gateway: str, mqtt_url: str, spool_path: Path, **settings: float) -> None:
        self.gateway = gateway
        self.spool = BatchSpool(spool_path)
        base = {"ack_timeout_s": 5.0, "window": 256, "live_window_s": 5.0, "reconnect_initial_s": 0.1,
                "reconnect_max_s": 1.0}
        self.publisher = MqttPublisher(gateway, mqtt_url, self.spool, clock_s=time.time,
                                       settings=PublisherSettings(**(base | settings)))  # type: ignore[arg-type]
        self.added_samples = 0

    def add(self, batch: Batch, *, created_ns: int | None = None) -> int:
        """Spool ``batch`` as this gateway's next one (``created_ns``: when it was made, default now)."""
        batch = dataclasses.replace(batch, epoch=self.spool.epoch)
        receipt = self.spool.append(lambda seq: encode_batch(dataclasses.replace(batch, seq=seq)),
                                    created_ns=time.time_ns() if created_ns is None else created_ns,
                                    samples=batch.sample_count)
        self.added_samples += batch.sample_count
        self.publisher.notify()
        return receipt.seq

    async def confirmed_all(self, timeout_s: float = 60.0) -> bool:
        """Wait until the spool is empty: the cloud confirmed (or refused) every batch."""
        return await self.publisher.flush(timeout_s)


@contextlib.asynccontextmanager
async def running_gateway(gateway: TestGateway) -> AsyncIterator[TestGateway]:
    """Run the gateway's publisher for the block; close its spool after."""
    task = asyncio.create_task(gateway.publisher.run(), name=f"gateway-{gateway.gateway}")
    try:
        yield gateway
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        gateway.spool.close()
