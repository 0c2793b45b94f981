"""The registry and the ingest: a batch is stored only from a registered, unrevoked gateway and for a
patient bound to it; the check costs one query per micro-batch and follows revocation within its TTL."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.ingest import InboundMessage, IngestProcessor, Outcome, registry_refusal
from cloud.registry import Device, Gateway, GatewayBinding, GatewayBindings, Patient, Registry, RegistryError
from cloud.rules import RuleEngine, build_rules
from cloud.store import Store
from cloud.timeseries import InfluxV1Client
from vitals.codec import encode_batch
from vitals.samples import Batch, Stream

S = 10**9
NOW = 1_700_000_000 * S


def _influx(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/query":
        return httpx.Response(200, json={"results": [{"statement_id": 0}]})
    return httpx.Response(204)


class Monotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def registry(store: Store) -> Registry:
    registry = Registry(store.engine, clock=lambda: dt.datetime(2024, 5, 1, tzinfo=dt.UTC))
    for patient in ("pt-1", "pt-2", "pt-3"):
        registry.add_patient(Patient(patient, f"Patient {patient}", dt.date(1950, 1, 2), ("copd",)))
    registry.add_gateway(Gateway("gw-1", "home one", ("pt-1", "pt-2")))
    registry.add_gateway(Gateway("gw-2", "home two", ("pt-3",)))
    return registry


@pytest.fixture
def ticks() -> Monotonic:
    return Monotonic()


@pytest.fixture
def bindings(registry: Registry, ticks: Monotonic) -> GatewayBindings:
    return GatewayBindings(registry, ttl_s=5.0, clock=ticks)


@pytest.fixture
async def processor(store: Store, bindings: GatewayBindings) -> AsyncIterator[IngestProcessor]:
    influx = InfluxV1Client("http://influx.test", "vb", transport=httpx.MockTransport(_influx))
    yield IngestProcessor(store, influx, RuleEngine(build_rules()), clock=lambda: NOW, bindings=bindings.lookup)
    await influx.aclose()


def _message(gateway: str, patient: str, seq: int = 1) -> InboundMessage:
    batch = Batch(gateway, seq, patient, "ox-1", "generic.plx",
                  (Stream("spo2", "%", [NOW - 10 * S, NOW - 9 * S], [97.0, 96.0], [0, 0]),), epoch="ep1")
    return InboundMessage(f"vb/v1/{gateway}/data", encode_batch(batch))


async def test_bound_patients_are_stored_and_others_dead_lettered(processor: IngestProcessor, store: Store,
                                                                  bindings: GatewayBindings) -> None:
    result = await processor.process([
        _message("gw-1", "pt-1", 1), _message("gw-1", "pt-2", 2),
        _message("gw-1", "pt-3", 3),  # pt-3 belongs to gw-2's home
        _message("gw-9", "pt-1", 1),  # no such gateway
        _message("gw-2", "pt-3", 1),
    ])
    outcomes = [(d.outcome, d.category) for d in result.dispositions]
    assert outcomes == [(Outcome.STORED, ""), (Outcome.STORED, ""), (Outcome.REFUSED, "patient"),
                        (Outcome.REFUSED, "gateway"), (Outcome.STORED, "")]
    assert bindings.queries == 1  # one query for the whole micro-batch
    reasons = sorted(letter.reason for letter in store.dead_letters())
    assert reasons == ["gateway: gateway 'gw-9' is not registered",
                       "patient: patient 'pt-3' is not bound to gateway 'gw-1'"]
    assert store.ingested_batches() == 3


async def test_revocation_takes_effect_when_the_cache_expires(processor: IngestProcessor, registry: Registry,
                                                              bindings: GatewayBindings, ticks: Monotonic) -> None:
    assert (await processor.process([_message("gw-1", "pt-1", 1)])).dispositions[0].outcome is Outcome.STORED
    registry.revoke_gateway("gw-1")
    ticks.now += 4.9
    assert (await processor.process([_message("gw-1", "pt-1", 2)])).dispositions[0].outcome is Outcome.STORED
    assert bindings.queries == 1  # answered from the cache
    ticks.now += 0.1
    [refused] = (await processor.process([_message("gw-1", "pt-1", 3)])).dispositions
    assert (refused.outcome, refused.category, refused.reason) == (Outcome.REFUSED, "gateway",
                                                                   "gateway 'gw-1' is revoked")
    assert bindings.queries == 2


async def test_a_replay_from_a_revoked_gateway_is_refused_not_counted_as_duplicate(
        processor: IngestProcessor, registry: Registry, ticks: Monotonic) -> None:
    await processor.process([_message("gw-2", "pt-3", 1)])
    registry.revoke_gateway("gw-2")
    ticks.now += 10
    [again] = (await processor.process([_message("gw-2", "pt-3", 1)])).dispositions
    assert again.outcome is Outcome.REFUSED


async def test_without_bindings_every_gateway_is_taken(store: Store) -> None:
    influx = InfluxV1Client("http://influx.test", "vb", transport=httpx.MockTransport(_influx))
    processor = IngestProcessor(store, influx, RuleEngine(build_rules()), clock=lambda: NOW)
    [stored] = (await processor.process([_message("anyone", "anybody")])).dispositions
    assert stored.outcome is Outcome.STORED
    await influx.aclose()


@given(st.booleans(), st.frozensets(st.sampled_from(["a", "b", "c"])), st.sampled_from(["a", "b", "c"]))
def test_registry_refusal_is_the_whole_rule(revoked: bool, patients: frozenset[str], patient: str) -> None:
    refusal = registry_refusal(GatewayBinding(revoked, patients), "gw", patient)
    if revoked:
        assert refusal is not None and refusal.category == "gateway"
    elif patient not in patients:
        assert refusal is not None and refusal.category == "patient"
    else:
        assert refusal is None
    assert registry_refusal(None, "gw", patient) is not None


def test_registry_operations(registry: Registry, store: Store) -> None:
    from cloud.auth import Identity, Role
    from tests.auth_helpers import FAST_HASHER, PASSWORD

    identity = Identity(store.engine, hasher=FAST_HASHER)
    now = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    doctor = identity.add_user("dr.a", Role.DOCTOR, PASSWORD, now=now)
    family = identity.add_user("fam.a", Role.FAMILY, PASSWORD, now=now)
    registry.add_care_team_member("pt-1", "dr.a")
    registry.add_care_team_member("pt-1", "dr.a")  # idempotent
    registry.add_family_member("pt-2", "fam.a")
    assert registry.relations(doctor.id) == {"pt-1": registry.relations(doctor.id)["pt-1"]}
    assert list(registry.relations(family.id)) == ["pt-2"]
    patient = registry.patient("pt-1")
    assert patient is not None and patient.care_team == ("dr.a",) and patient.conditions == ("copd",)
    assert patient.date_of_birth == dt.date(1950, 1, 2)
    with pytest.raises(RegistryError, match="cannot be on a care team"):
        registry.add_care_team_member("pt-1", "fam.a")
    with pytest.raises(RegistryError, match="not family"):
        registry.add_family_member("pt-1", "dr.a")
    with pytest.raises(RegistryError, match="already registered"):
        registry.add_patient(Patient("pt-1", "again"))
    with pytest.raises(RegistryError, match="no patient"):
        registry.add_gateway(Gateway("gw-3", "h", ("pt-404",)))
    assert registry.gateway("gw-3") is None  # nothing half-made
    with pytest.raises(RegistryError, match="not a valid identifier"):
        registry.add_patient(Patient("no spaces", "x"))
    registry.add_device(Device("ox-1", "pt-1", "gw-1", "generic.plx"))
    with pytest.raises(RegistryError, match="already registered"):
        registry.add_device(Device("ox-1", "pt-2"))
    assert registry.devices(["pt-1"]) == [Device("ox-1", "pt-1", "gw-1", "generic.plx")]
    registry.unbind_patient("gw-1", "pt-2")
    registry.bind_patient("gw-2", "pt-2")
    assert registry.bindings(["gw-1", "gw-2", "gw-x"]) == {
        "gw-1": GatewayBinding(False, frozenset({"pt-1"})), "gw-2": GatewayBinding(False, frozenset({"pt-2", "pt-3"}))}
    registry.remove_care_team_member("pt-1", "dr.a")
    assert registry.relations(doctor.id) == {}
