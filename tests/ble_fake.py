"""An in-memory BLE peripheral and client: the testing seam of the BLE transport (no radio needed).

A :class:`FakeBlePeripheral` holds the device's GATT table (characteristic UUID -> readable
value) and plays the radio: it is a ``BleBackend`` (pass it as the transport's ``backend``) whose
advertisement watch sees the device while :attr:`~FakeBlePeripheral.advertising` is true (always,
unless a test switches it; :meth:`~FakeBlePeripheral.start_advertising` and
:meth:`~FakeBlePeripheral.stop_advertising` model a cuff that advertises for a few seconds after a
measurement, and a connection attempt while it is silent fails as it would over the air).
:meth:`~FakeBlePeripheral.notify` sends the exact bytes a real device notifies,
:meth:`~FakeBlePeripheral.drop` loses the link (with or without the disconnect callback that BlueZ
sometimes never sends), and ``fail_connects`` / ``hang_connects`` make the next connection attempts
fail or stall. Every write is recorded in ``writes``; a handler set with
:meth:`~FakeBlePeripheral.on_write` scripts the device's answer (the notifications and indications
it sends after acknowledging the write). :class:`FakeGlucoseMeter` is such a script: a meter holding
stored records that answers Record Access Control Point requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from device_profiles.errors import DecodeError
from device_profiles.gatt.glucose import decode_glucose_measurement
from device_profiles.gatt.racp import (
    RacpNumberOfRecords,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpResponse,
    RacpResponseCode,
    decode_racp_request,
)
from device_profiles.profile import normalize_uuid
from edge.transports._ble_client import AdvertisementWatch, BleClient, BleDeviceNotFoundError, NotificationCallback

__all__ = ["FakeAdvertisementWatch", "FakeBleClient", "FakeBlePeripheral", "FakeGlucoseMeter", "FakeWrite",
           "RacpResponseEncoder", "WriteHandler"]

WriteHandler = Callable[[bytes], Iterable[tuple[str, bytes]]]
"""Given the written bytes, the ``(characteristic UUID, value)`` notifications/indications to send back."""


@dataclass(frozen=True, slots=True)
class FakeWrite:
    """One write the gateway made: characteristic (128-bit UUID), bytes, write request or command."""

    uuid: str
    data: bytes
    response: bool


class FakeBleClient:
    """One connection attempt to a :class:`FakeBlePeripheral`; implements ``BleClient``."""

    def __init__(self, peripheral: FakeBlePeripheral, address: str, on_disconnect: Callable[[], None],
                 service_uuids: Sequence[str]) -> None:
        self.peripheral = peripheral
        self.address = address
        self.service_uuids = tuple(service_uuids)
        self.subscriptions: dict[str, NotificationCallback] = {}
        self.disconnect_calls = 0
        self._on_disconnect = on_disconnect
        self._connected = False

    @property
    def is_connected(self) -> bool:
        """Whether this link is up."""
        return self._connected

    async def connect(self) -> None:
        """Connect, unless the peripheral was told to fail or stall this attempt."""
        peripheral = self.peripheral
        peripheral.connect_attempts += 1
        if peripheral.hang_connects > 0:
            peripheral.hang_connects -= 1
            await asyncio.Event().wait()  # a connect that never completes; the caller's timeout ends it
        if peripheral.fail_connects > 0:
            peripheral.fail_connects -= 1
            raise ConnectionError(f"{self.address}: connection failed (simulated)")
        if not peripheral.advertising:  # it stopped advertising before the connection request
            raise BleDeviceNotFoundError(f"{self.address} is not advertising")
        self._connected = True
        peripheral.current = self
        peripheral.connections += 1
        if peripheral.on_connect is not None:
            peripheral.on_connect(self)

    async def disconnect(self) -> None:
        """Close the link; like bleak, the disconnect callback fires for a link that was up."""
        self.disconnect_calls += 1
        self._lose(callback=True)

    def has_characteristic(self, uuid: str) -> bool:
        """Whether the peripheral's GATT table has ``uuid``."""
        return normalize_uuid(uuid) in self.peripheral.characteristics

    async def start_notify(self, uuid: str, callback: NotificationCallback) -> None:
        """Subscribe ``callback`` to ``uuid``."""
        if not self._connected:
            raise ConnectionError("not connected")
        uuid = normalize_uuid(uuid)
        if uuid not in self.peripheral.characteristics:
            raise KeyError(f"characteristic {uuid} not found")
        self.subscriptions[uuid] = callback
        if self.peripheral.on_subscribe is not None:
            self.peripheral.on_subscribe(self, uuid)

    async def read(self, uuid: str) -> bytes:
        """The characteristic's current value; ``ConnectionError`` on a dead link."""
        if not self._connected:
            raise ConnectionError("not connected")
        uuid = normalize_uuid(uuid)
        self.peripheral.reads.append(uuid)
        value = self.peripheral.characteristics.get(uuid)
        if value is None:
            raise KeyError(f"characteristic {uuid} is not readable")
        return value

    async def write(self, uuid: str, data: bytes, *, response: bool = True) -> None:
        """Record the write; the peripheral's handler's answers are sent after it is acknowledged.

        ``ConnectionError`` on a dead link, ``KeyError`` for an unknown characteristic; an exception
        raised by the handler (a scripted GATT error) is raised here, as bleak raises the device's.
        """
        if not self._connected:
            raise ConnectionError("not connected")
        uuid = normalize_uuid(uuid)
        if uuid not in self.peripheral.characteristics:
            raise KeyError(f"characteristic {uuid} not found")
        self.peripheral.writes.append(FakeWrite(uuid, bytes(data), response))
        handler = self.peripheral.write_handlers.get(uuid)
        if handler is None:
            return
        answers = list(handler(bytes(data)))
        # A device answers after the write response, so the writer sees its acknowledgement first.
        asyncio.get_running_loop().call_soon(self._answer, answers)

    def _answer(self, answers: list[tuple[str, bytes]]) -> None:
        for uuid, value in answers:
            if not self._connected:
                return
            self.emit(uuid, value)

    def emit(self, uuid: str, data: bytes) -> bool:
        """Invoke this client's callback for ``uuid`` whatever the link state (a late notification)."""
        callback = self.subscriptions.get(normalize_uuid(uuid))
        if callback is None:
            return False
        callback(bytes(data))
        return True

    def _lose(self, *, callback: bool) -> None:
        was_connected, self._connected = self._connected, False
        if self.peripheral.current is self:
            self.peripheral.current = None
        if was_connected and callback:
            self._on_disconnect()


class FakeAdvertisementWatch(AdvertisementWatch):
    """The advertisement watch of a :class:`FakeBlePeripheral`: sees it while it advertises."""

    def __init__(self, peripheral: FakeBlePeripheral, service_uuids: Sequence[str]) -> None:
        super().__init__(peripheral.address)
        self.peripheral = peripheral
        self.service_uuids = tuple(service_uuids)
        self.starts = 0
        self._running = False

    @property
    def running(self) -> bool:
        """Whether the watch is scanning."""
        return self._running

    async def start(self) -> None:
        """Start scanning; ``peripheral.fail_scans`` makes it fail (no adapter) that many times."""
        if self._running:
            return
        if self.peripheral.fail_scans > 0:
            self.peripheral.fail_scans -= 1
            raise FileNotFoundError("[Errno 2] No such file or directory (simulated: no D-Bus)")
        self.starts += 1
        self._running = True
        if self.peripheral.advertising:
            self.saw(None)

    async def stop(self) -> None:
        """Stop scanning."""
        self._running = False

    async def seen(self, fresh_s: float) -> Any:
        """A device advertising continuously repeats itself: one still advertising is always fresh."""
        if self._running and self.peripheral.advertising:
            self.saw(None)
        return await super().seen(fresh_s)


class FakeBlePeripheral:
    """A BLE device in memory: advertising, GATT table, notifications, link loss and connect failures.

    ``characteristics`` maps each characteristic UUID (any form) to its readable value, or to
    ``None`` for a notify-only characteristic. ``on_connect(client)`` and ``on_subscribe(client,
    uuid)`` script what the device does when the gateway connects or subscribes (a cuff sends its
    reading once the gateway subscribed).
    """

    def __init__(self, address: str, characteristics: Mapping[str, bytes | None]) -> None:
        self.address = address
        self.characteristics: dict[str, bytes | None] = {
            normalize_uuid(uuid): value for uuid, value in characteristics.items()
        }
        self.fail_connects = 0
        self.hang_connects = 0
        self.fail_scans = 0
        self.connect_attempts = 0
        self.connections = 0
        self.advertising = True
        self.on_connect: Callable[[FakeBleClient], None] | None = None
        self.on_subscribe: Callable[[FakeBleClient, str], None] | None = None
        self.watches: list[FakeAdvertisementWatch] = []
        self.reads: list[str] = []
        self.writes: list[FakeWrite] = []
        self.write_handlers: dict[str, WriteHandler] = {}
        self.clients: list[FakeBleClient] = []
        self.current: FakeBleClient | None = None

    def client(self, address: str, on_disconnect: Callable[[], None], *, service_uuids: Sequence[str],
               device: Any) -> BleClient:
        """A ``BleBackend`` client: a new :class:`FakeBleClient` for each connection attempt."""
        del device  # the fake needs no handle
        if address != self.address:
            raise ValueError(f"this fake peripheral is {self.address}, not {address}")
        client = FakeBleClient(self, address, on_disconnect, service_uuids)
        self.clients.append(client)
        return client

    def watch(self, address: str, *, service_uuids: Sequence[str]) -> AdvertisementWatch:
        """A ``BleBackend`` advertisement watch for this peripheral."""
        if address != self.address:
            raise ValueError(f"this fake peripheral is {self.address}, not {address}")
        watch = FakeAdvertisementWatch(self, service_uuids)
        self.watches.append(watch)
        return watch

    def start_advertising(self) -> None:
        """Advertise (e.g. after a measurement) until :meth:`stop_advertising`."""
        self.advertising = True
        for watch in self.watches:
            if watch.running:
                watch.saw(None)

    def stop_advertising(self) -> None:
        """Stop advertising (asleep again); a connection attempt now fails."""
        self.advertising = False

    def on_write(self, uuid: str, handler: WriteHandler | None) -> None:
        """Script the answer to writes on ``uuid`` (None: acknowledge them silently)."""
        uuid = normalize_uuid(uuid)
        if handler is None:
            self.write_handlers.pop(uuid, None)
        else:
            self.write_handlers[uuid] = handler

    def notify(self, uuid: str, data: bytes) -> bool:
        """Send a notification on the live link; False when nobody is subscribed to ``uuid``."""
        if self.current is None:
            return False
        return self.current.emit(uuid, data)

    def drop(self, *, callback: bool = True) -> None:
        """Lose the link, e.g. the patient walked out of range; ``callback=False`` loses it silently."""
        if self.current is not None:
            self.current._lose(callback=callback)


_GLUCOSE_MEASUREMENT_UUID = normalize_uuid("2a18")
_GLUCOSE_CONTEXT_UUID = normalize_uuid("2a34")
_RACP_UUID = normalize_uuid("2a52")

RacpResponseEncoder = Callable[[RacpResponse | RacpNumberOfRecords], bytes]
"""Builds a meter's RACP indication bytes from a response record."""


class FakeGlucoseMeter:
    """A Glucose Service meter holding stored records, answering RACP writes like a real one.

    ``records`` are Glucose Measurement payloads, oldest first, exactly as the meter notifies them
    (e.g. from ``simulators.devices.gatt_encode.encode_glucose_measurement``); their sequence numbers
    are read back with the glucose decoder. ``encode_response`` turns a
    :class:`~device_profiles.gatt.racp.RacpResponse` or ``RacpNumberOfRecords`` into the indication
    bytes (e.g. ``encode_racp_response``); it is passed in because virtual devices live above the edge.

    On a write it decodes the request with :func:`~device_profiles.gatt.racp.decode_racp_request`,
    notifies the matching records on 0x2A18 and indicates the Response Code on 0x2A52: Success, or
    No Records Found. "Report number of stored records" is answered with the count, "delete"
    removes the matching records. Set ``responsive = False`` for a meter that acknowledges the
    write and then never answers, or ``response_code`` to force that answer to every request.
    """

    def __init__(self, peripheral: FakeBlePeripheral, encode_response: RacpResponseEncoder,
                 records: Iterable[bytes] = ()) -> None:
        self.peripheral = peripheral
        self.records: list[bytes] = []
        self.contexts: dict[int, bytes] = {}
        self.requests: list[RacpRequest] = []
        self.responsive = True
        self.response_code: RacpResponseCode | None = None
        self._encode_response = encode_response
        peripheral.characteristics.setdefault(_GLUCOSE_MEASUREMENT_UUID, None)
        peripheral.characteristics.setdefault(_GLUCOSE_CONTEXT_UUID, None)
        peripheral.characteristics.setdefault(_RACP_UUID, None)
        peripheral.on_write(_RACP_UUID, self.handle_racp_write)
        for payload in records:
            self.store(payload)

    @classmethod
    def at(cls, address: str, encode_response: RacpResponseEncoder,
           records: Iterable[bytes] = ()) -> FakeGlucoseMeter:
        """A meter on a new :class:`FakeBlePeripheral` at ``address`` (``.peripheral``)."""
        return cls(FakeBlePeripheral(address, {}), encode_response, records)

    def store(self, payload: bytes, context: bytes | None = None) -> int:
        """Keep one more record (a new reading on the meter), with its Glucose Measurement Context
        payload when it has one (the measurement's flags must announce it); returns its sequence number."""
        try:
            sequence_number = decode_glucose_measurement(payload).sequence_number
        except DecodeError as exc:
            raise ValueError(f"not a Glucose Measurement the meter could store: {exc}") from exc
        self.records.append(bytes(payload))
        if context is not None:
            self.contexts[sequence_number] = bytes(context)
        return sequence_number

    def handle_racp_write(self, data: bytes) -> list[tuple[str, bytes]]:
        """The meter's answer to one RACP write: matching records, then the Response Code."""
        try:
            request = decode_racp_request(data)
        except DecodeError:
            op_code = data[0] if data else 0
            return self._respond(op_code, RacpResponseCode.INVALID_OPERATOR)
        self.requests.append(request)
        if not self.responsive:
            return []
        if self.response_code is not None:
            return self._respond(request.op_code, self.response_code)
        if request.op_code is RacpOpCode.ABORT_OPERATION:
            return self._respond(request.op_code, RacpResponseCode.SUCCESS)
        selected = self._select(request)
        if request.op_code is RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS:
            return [(_RACP_UUID, self._encode_response(RacpNumberOfRecords(len(selected))))]
        if not selected:
            return self._respond(request.op_code, RacpResponseCode.NO_RECORDS_FOUND)
        if request.op_code is RacpOpCode.DELETE_STORED_RECORDS:
            self.records = [payload for index, payload in enumerate(self.records) if index not in selected]
            return self._respond(request.op_code, RacpResponseCode.SUCCESS)
        answers: list[tuple[str, bytes]] = []
        for index in selected:  # each record, its context (same sequence number) right after it
            answers.append((_GLUCOSE_MEASUREMENT_UUID, self.records[index]))
            context = self.contexts.get(decode_glucose_measurement(self.records[index]).sequence_number)
            if context is not None:
                answers.append((_GLUCOSE_CONTEXT_UUID, context))
        return answers + self._respond(request.op_code, RacpResponseCode.SUCCESS)

    def _select(self, request: RacpRequest) -> list[int]:
        """Indexes into ``records`` of the records the request's operator and bounds pick."""
        numbers = [decode_glucose_measurement(payload).sequence_number for payload in self.records]
        if not numbers:
            return []
        operator = request.operator
        if operator is RacpOperator.FIRST_RECORD:
            return [numbers.index(min(numbers))]
        if operator is RacpOperator.LAST_RECORD:
            return [numbers.index(max(numbers))]
        low = request.low if request.low is not None else 0
        high = request.high if request.high is not None else 0xFFFF
        return [index for index, sequence in enumerate(numbers) if low <= sequence <= high]

    def _respond(self, op_code: int, code: RacpResponseCode) -> list[tuple[str, bytes]]:
        return [(_RACP_UUID, self._encode_response(RacpResponse(op_code, code)))]
