"""The ``ble`` transport: one Bluetooth Low Energy health device, kept connected.

The transport scans without pause while it is not connected (filtered on the services the profile
says the device advertises, when it matches on services alone) and connects the moment the device
advertises: blood-pressure cuffs, scales and glucose meters advertise only for a few seconds after
a measurement, which a connect attempt on a timer would mostly miss. Per connection ("session") it
subscribes to every notify/indicate characteristic the profile lists, polls its ``read``
characteristics, reads the Battery Level (0x2A19) on connect and every ``battery_poll_s`` unless
the profile lists it itself, and reports ``attached``. Each notification
becomes a :class:`~edge.transports.Payload` whose channel is the characteristic's 128-bit UUID and
whose ``received_ns`` is the injected clock's time at arrival.

When the profile lists the Record Access Control Point (0x2A52, indicate) and the Glucose
Measurement (0x2A18) and the device offers both, the transport then fetches the meter's stored
records (:mod:`edge.transports._racp_session`): it writes "report stored records with sequence
number >= last + 1" ("all records" the first time), delivers each Glucose Measurement notification
like any other, waits for the meter's Response Code and reports a ``stored_records`` event with the
outcome (``success``, ``no_records_found``, an error, ``timeout``, ``write_failed``). A failed fetch
is logged and reported; the link stays up. The highest sequence number received is kept in memory,
and in ``<state_dir>/ble-records-<device id>.json`` when the ``state_dir`` option is set (put it
next to the spool), so a restarted gateway fetches only new records too. It is written only once
the agent says the records are in its spool: a gateway stopped in between fetches them again.

A session ends on the disconnect callback, on a link the stack says is down although no callback
came (checked every ``liveness_check_s``), on a failed poll of a dead link, or - if
``idle_timeout_s`` is set - when a device that streams continuously goes quiet. Then the
transport reports ``lost``, ignores any notification still queued from the old link (a stale
notification would otherwise carry a wrong arrival time into the new session), waits out an
exponential, jittered backoff and connects again at the device's next advertisement. The backoff
is reset once a connection has delivered data or stayed up ``stable_after_s`` (a cuff that sends
its reading and hangs up did nothing wrong), so only a device that connects and drops at once, or
cannot be connected, is left alone longer and longer.

Device options (``options:`` in the gateway config), all in seconds: ``connect_timeout_s`` (connect
+ subscribe, 40), ``scan_timeout_s`` (how long the device may stay silent before the log says the
gateway is waiting for it, 20), ``reconnect_initial_s`` (1), ``reconnect_max_s``
(60), ``stable_after_s`` (30), ``battery_poll_s`` (3600), ``liveness_check_s`` (5),
``read_timeout_s`` (10), ``idle_timeout_s`` (off), ``racp_timeout_s`` (how long a stored-record
fetch may go without a record or the response, 30); ``state_dir`` (a directory, see above).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from device_profiles.gatt.battery import decode_battery_level
from device_profiles.profile import Characteristic, DeviceProfile, normalize_uuid
from edge.config import DeviceConfig
from edge.transports._backoff import OPTIONS_CONFIG, Backoff, Seconds, failure_log_level, options_from
from edge.transports._base import DeliverFn, Payload, ReportFn, wait_spooled
from edge.transports._ble_client import (
    AdvertisementWatch,
    BleakBackend,
    BleakBleClient,
    BleBackend,
    BleClient,
    BleDeviceNotFoundError,
    NotificationCallback,
)
from edge.transports._explain import explain_ble_failure
from edge.transports._racp_session import (
    GLUCOSE_MEASUREMENT_UUID,
    RACP_UUID,
    RacpFetch,
    RacpFetchOutcome,
    StoredRecordCursor,
    glucose_sequence_number,
)

__all__ = [
    "BATTERY_LEVEL_UUID",
    "BATTERY_SERVICE_UUID",
    "GLUCOSE_MEASUREMENT_UUID",
    "RACP_UUID",
    "AdvertisementWatch",
    "BleBackend",
    "BleClient",
    "BleDeviceNotFoundError",
    "BleOptions",
    "BleStats",
    "BleTransport",
    "BleakBackend",
    "BleakBleClient",
    "LinkLostError",
    "RacpFetchOutcome",
    "StoredRecordCursor",
]

log = logging.getLogger(__name__)

BATTERY_SERVICE_UUID = normalize_uuid("180f")
BATTERY_LEVEL_UUID = normalize_uuid("2a19")

_DISCONNECT_TIMEOUT_S = 10.0
_FRESH_ADVERTISEMENT_S = 1.0  # a device still advertising repeats well within a second


class LinkLostError(ConnectionError):
    """The link is gone (or no longer trusted); the message says why."""


@dataclass(frozen=True, slots=True)
class BleOptions:
    """A BLE device's ``options``: connection timing in seconds and ``state_dir`` (see the module docstring)."""

    __pydantic_config__ = OPTIONS_CONFIG

    connect_timeout_s: Seconds = 40.0
    scan_timeout_s: Seconds = 20.0
    reconnect_initial_s: Seconds = 1.0
    reconnect_max_s: Seconds = 60.0
    stable_after_s: Seconds = 30.0
    battery_poll_s: Seconds = 3600.0
    liveness_check_s: Seconds = 5.0
    read_timeout_s: Seconds = 10.0
    idle_timeout_s: Seconds | None = None
    racp_timeout_s: Seconds = 30.0
    state_dir: Annotated[str, Field(min_length=1, strict=True)] | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> BleOptions:
        """Validate a device's ``options``; ``ValueError`` names an unknown or bad one."""
        return options_from(cls, options)


@dataclass
class BleStats:
    """Counters since the transport was made."""

    connect_attempts: int = 0
    advertisements: int = 0
    sessions: int = 0
    payloads: int = 0
    stale_notifications: int = 0
    read_errors: int = 0
    record_fetches: int = 0
    record_fetch_failures: int = 0


class BleTransport:
    """Transport for a device whose profile has BLE attributes; ``factory(device, profile, clock_ns)``.

    ``backend`` chooses where links come from (:class:`BleakBackend` by default, an in-memory
    peripheral in tests); ``sleep`` is what waits out reconnect delays (s) and ``rng`` jitters them.
    """

    def __init__(self, device: DeviceConfig, profile: DeviceProfile, clock_ns: Callable[[], int], *,
                 backend: BleBackend | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rng: random.Random | None = None) -> None:
        if profile.ble is None:
            raise ValueError(f"device {device.id}: profile {profile.id} has no BLE attributes")
        if not device.address:
            raise ValueError(f"device {device.id}: a BLE device needs its address")
        self.device = device
        self.profile = profile
        self.options = BleOptions.from_options(device.options)
        self.backoff = Backoff.for_reconnects(self.options.reconnect_initial_s, self.options.reconnect_max_s, rng)
        self.stats = BleStats()
        self._clock_ns = clock_ns
        self._backend: BleBackend = backend or BleakBackend()
        self._sleep = sleep
        characteristics = profile.ble.characteristics
        self._subscribed = [c for c in characteristics if c.mode in ("notify", "indicate")]
        self._polled = [c for c in characteristics if c.mode == "read"]
        self._profile_has_battery = any(c.uuid == BATTERY_LEVEL_UUID for c in characteristics)
        services = {c.service_uuid for c in characteristics}
        self._services = sorted(services | {BATTERY_SERVICE_UUID})
        # Filter the scan on advertised services only when the profile recognises the device by
        # them alone: one that also lists names accepts devices that leave the services out.
        self._scan_services = [] if profile.ble.name_patterns else list(profile.ble.service_uuids)
        self._session_id = 0
        self._lost: asyncio.Event | None = None
        self.records = self._record_cursor(device, characteristics)
        self._fetch: RacpFetch | None = None
        self._committer: asyncio.Task[None] | None = None
        self.watch: AdvertisementWatch | None = None

    # -- the reconnect loop --------------------------------------------------------------------------
    async def run(self, deliver: DeliverFn, report: ReportFn) -> None:
        """Stay connected until cancelled: a session at each advertisement, after a backoff delay; never raises."""
        watch = self.watch = self._backend.watch(self.device.address, service_uuids=self._scan_services)
        failures = 0
        try:
            while True:
                productive = False
                try:
                    handle = await self._advertisement(watch)
                    productive = await self._session(handle, deliver, report)
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a device or radio problem: log it and try again later
                    failures += 1
                    if not watch.running:
                        await watch.stop()  # the scan itself failed: start it afresh next time
                    reason = explain_ble_failure(exc, timeout_s=self.options.connect_timeout_s)
                    level = failure_log_level(failures)
                    log.log(level, "device %s (%s): %s (attempt %d)", self.device.id, self.device.address, reason,
                            failures)
                    if level >= logging.WARNING:
                        report("unreachable", {"transport": "ble", "address": self.device.address,
                                               "reason": reason, "attempts": failures})
                if productive:
                    self.backoff.reset()
                delay = self.backoff.next_delay()
                log.debug("device %s: reconnecting in %.1f s", self.device.id, delay)  # failures are told above
                await self._sleep(delay)
        finally:
            committer, self._committer = self._committer, None
            if committer is not None:
                committer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await committer
            await watch.stop()

    async def _advertisement(self, watch: AdvertisementWatch) -> Any:
        """Scan until the device advertises; the handle to connect to."""
        await watch.start()
        try:
            async with asyncio.timeout(self.options.scan_timeout_s):
                handle = await watch.seen(_FRESH_ADVERTISEMENT_S)
        except TimeoutError:
            log.info("device %s (%s): waiting for it to advertise (a cuff, scale or meter does so after a "
                     "measurement; others once switched on and in range)", self.device.id, self.device.address)
            handle = await watch.seen(_FRESH_ADVERTISEMENT_S)
        watch.forget()  # this advertisement is used: the next connection waits for a new one
        self.stats.advertisements = watch.advertisements
        return handle

    async def _session(self, handle: Any, deliver: DeliverFn, report: ReportFn) -> bool:
        """One connection, from the advertisement to loss; returns or raises when it is over.

        Returns whether the connection was productive: it delivered data or stayed up ``stable_after_s``.
        """
        self._session_id += 1
        session = self._session_id
        lost = asyncio.Event()
        self._lost = lost

        def on_disconnect() -> None:
            if session == self._session_id:
                lost.set()

        self.stats.connect_attempts += 1
        client = self._backend.client(self.device.address, on_disconnect, service_uuids=self._services,
                                      device=handle)
        attached_ns: int | None = None
        payloads_before = self.stats.payloads
        reason = "disconnected"
        watchers: list[asyncio.Task[None]] = []
        fetcher: asyncio.Task[None] | None = None
        try:
            async with asyncio.timeout(self.options.connect_timeout_s):
                await client.connect()
                subscribed, missing = await self._subscribe(client, session, deliver)
                battery_percent = await self._read_battery(client) if self._reads_battery(client) else None
            attached_ns = self._clock_ns()
            self.stats.sessions += 1
            detail: dict[str, Any] = {"transport": "ble", "address": self.device.address, "subscribed": subscribed}
            if missing:
                detail["missing"] = missing
            report("attached", detail)
            if battery_percent is not None:
                report("battery", {"percent": battery_percent})
            watchers = self._start_watchers(client, session, deliver, report)
            if self._fetches_records(client):
                fetcher = asyncio.create_task(self._fetch_stored_records(client, deliver, report))
            waiter = asyncio.create_task(lost.wait())
            done, _pending = await asyncio.wait([waiter, *watchers], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            for task in done:
                if task is not waiter and not task.cancelled() and task.exception() is not None:
                    reason = str(task.exception())
        except asyncio.CancelledError:
            reason = "stopped"
            raise
        finally:
            # From here on, anything the old link still delivers is stale.
            self._session_id += 1
            lost.set()
            helpers = [*watchers, *([fetcher] if fetcher is not None else [])]
            for task in helpers:
                task.cancel()
            for task in helpers:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._commit_records(deliver)  # live readings received after the fetch move the cursor too
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), _DISCONNECT_TIMEOUT_S)
            if attached_ns is not None:
                report("lost", {"transport": "ble", "address": self.device.address, "reason": reason})
        stable = self._clock_ns() - attached_ns >= self.options.stable_after_s * 1e9
        return stable or self.stats.payloads > payloads_before

    # -- setting up a session ------------------------------------------------------------------------
    def _on_value(self, session: int, channel: str, deliver: DeliverFn) -> NotificationCallback:
        def on_value(data: bytes) -> None:
            if session != self._session_id or self._lost is None or self._lost.is_set():
                self.stats.stale_notifications += 1
                return
            self.stats.payloads += 1
            try:
                deliver(Payload(channel, bytes(data), self._clock_ns()))
            except Exception:  # the consumer's bug must not kill the BLE stack's callback thread
                log.exception("device %s: delivering a notification on %s failed", self.device.id, channel)
            if self.records is not None:
                self._observe_records(channel, bytes(data))

        return on_value

    async def _subscribe(self, client: BleClient, session: int, deliver: DeliverFn) -> tuple[list[str], list[str]]:
        present = [c for c in self._subscribed if client.has_characteristic(c.uuid)]
        missing = [c.name for c in (*self._subscribed, *self._polled) if not client.has_characteristic(c.uuid)]
        if self._subscribed and not present:
            raise LinkLostError(f"none of the profile's characteristics ({', '.join(missing)}) is offered; "
                                f"is this a {self.profile.id}?")
        for name in missing:
            log.warning("device %s: characteristic %s of profile %s not offered", self.device.id, name,
                        self.profile.id)
        for item in present:
            await client.start_notify(item.uuid, self._on_value(session, item.uuid, deliver))
        return [c.name for c in present], missing

    # -- stored records (Record Access Control Point) ------------------------------------------------
    def _record_cursor(self, device: DeviceConfig,
                       characteristics: tuple[Characteristic, ...]) -> StoredRecordCursor | None:
        """The cursor of a glucose meter's stored records, or None when the profile has no RACP."""
        modes = {c.uuid: c.mode for c in characteristics}
        if modes.get(RACP_UUID) != "indicate" or modes.get(GLUCOSE_MEASUREMENT_UUID) not in ("notify", "indicate"):
            return None
        state_dir = self.options.state_dir
        if state_dir is None:
            return StoredRecordCursor(device.address)
        safe_id = re.sub(r"[^A-Za-z0-9._-]", "_", device.id)
        return StoredRecordCursor(device.address, Path(state_dir) / f"ble-records-{safe_id}.json")

    def _fetches_records(self, client: BleClient) -> bool:
        return (self.records is not None and client.has_characteristic(RACP_UUID)
                and client.has_characteristic(GLUCOSE_MEASUREMENT_UUID))

    def _observe_records(self, channel: str, data: bytes) -> None:
        assert self.records is not None
        fetch = self._fetch
        if channel == GLUCOSE_MEASUREMENT_UUID:
            sequence_number = glucose_sequence_number(data)
            if sequence_number is not None:
                self.records.observe(sequence_number)
            if fetch is not None:
                fetch.on_record(data)
        elif channel == RACP_UUID and fetch is not None:
            fetch.on_indication(data)

    async def _fetch_stored_records(self, client: BleClient, deliver: DeliverFn, report: ReportFn) -> None:
        """Run one RACP "report stored records" procedure; report its outcome, never raise."""
        assert self.records is not None

        async def write(data: bytes) -> None:
            await client.write(RACP_UUID, data, response=True)

        fetch = RacpFetch(self.records, write, idle_timeout_s=self.options.racp_timeout_s)
        self._fetch = fetch
        try:
            outcome = await fetch.run()
        finally:
            self._fetch = None
            self._commit_records(deliver)
        self.stats.record_fetches += 1
        if outcome.ok:
            log.info("device %s: %d stored record(s) fetched (%s), last sequence number %s", self.device.id,
                     outcome.records, outcome.outcome, outcome.last_sequence_number)
        else:
            self.stats.record_fetch_failures += 1
            log.warning("device %s: fetching stored records (request %s) failed: %s%s", self.device.id,
                        outcome.request.hex(), outcome.outcome, f" ({outcome.error})" if outcome.error else "")
        report("stored_records", outcome.detail())

    def _commit_records(self, deliver: DeliverFn) -> None:
        """Commit the record cursor once what was delivered so far is in the spool (in the background)."""
        if self.records is None or not self.records.uncommitted:
            return
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_when_spooled(deliver))

    async def _commit_when_spooled(self, deliver: DeliverFn) -> None:
        records = self.records
        assert records is not None
        while records.uncommitted:
            target = records.last_seen  # every record up to here has been delivered already
            if await wait_spooled(deliver):
                if not records.commit(target):
                    return  # the file cannot be written now; the next commit tries again
            else:
                log.warning("device %s: stored records up to %s did not reach the spool; they will be fetched "
                            "again", self.device.id, target)
                records.rollback()

    def _reads_battery(self, client: BleClient) -> bool:
        return not self._profile_has_battery and client.has_characteristic(BATTERY_LEVEL_UUID)

    async def _read_battery(self, client: BleClient) -> int | None:
        """Battery level in percent, or None when it cannot be read or decoded."""
        try:
            async with asyncio.timeout(self.options.read_timeout_s):
                data = await client.read(BATTERY_LEVEL_UUID)
            return decode_battery_level(data).percent
        except Exception as exc:  # DecodeError, GATT errors, timeouts: the battery is a nicety
            self.stats.read_errors += 1
            log.warning("device %s: battery level unreadable: %s", self.device.id, exc)
            if not client.is_connected:
                raise LinkLostError("link lost while reading the battery level") from exc
            return None

    def _start_watchers(self, client: BleClient, session: int, deliver: DeliverFn,
                        report: ReportFn) -> list[asyncio.Task[None]]:
        tasks = [asyncio.create_task(self._watch_link(client))]
        for item in self._polled:
            if not client.has_characteristic(item.uuid):
                continue
            tasks.append(asyncio.create_task(self._poll(client, item, self._on_value(session, item.uuid, deliver))))
        if self._reads_battery(client):
            tasks.append(asyncio.create_task(self._poll_battery(client, report)))
        if self.options.idle_timeout_s is not None:
            tasks.append(asyncio.create_task(self._watch_idle(self.options.idle_timeout_s)))
        return tasks

    # -- watchers: each returns only by raising LinkLostError ----------------------------------------
    async def _watch_link(self, client: BleClient) -> None:
        # BlueZ occasionally loses a link without the disconnect signal; ask the stack directly.
        while True:
            await asyncio.sleep(self.options.liveness_check_s)
            if not client.is_connected:
                raise LinkLostError("link down without a disconnect event")

    async def _watch_idle(self, idle_s: float) -> None:
        while True:
            seen = self.stats.payloads
            await asyncio.sleep(idle_s)
            if self.stats.payloads == seen:
                raise LinkLostError(f"no data for {idle_s:g} s")

    async def _poll(self, client: BleClient, item: Characteristic, on_value: NotificationCallback) -> None:
        assert item.poll_s is not None
        while True:
            try:
                async with asyncio.timeout(self.options.read_timeout_s):
                    data = await client.read(item.uuid)
            except Exception as exc:
                self.stats.read_errors += 1
                if not client.is_connected or isinstance(exc, TimeoutError):
                    raise LinkLostError(f"reading {item.name} failed: {exc or type(exc).__name__}") from exc
                log.warning("device %s: reading %s failed: %s", self.device.id, item.name, exc)
            else:
                on_value(data)
            await asyncio.sleep(item.poll_s)

    async def _poll_battery(self, client: BleClient, report: ReportFn) -> None:
        while True:
            await asyncio.sleep(self.options.battery_poll_s)
            percent = await self._read_battery(client)
            if percent is not None:
                report("battery", {"percent": percent})
