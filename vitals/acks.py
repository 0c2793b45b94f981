"""The cloud's end-to-end acknowledgement: which of a gateway's batches are safely in the cloud.

A gateway keeps each batch in its spool until the cloud names it here, not merely until the broker
has it, so a broker restart, a broker without persistence or a lost session loses nothing. The cloud
publishes one :class:`StoredAck` per gateway and micro-batch on ``vb/v1/{gateway}/cmd/ack`` (QoS 1),
after the batches' points and bookkeeping are committed. It names batches stored, recognised as
duplicates (stored before) and refused for good (dead-lettered with the reason, never to be
accepted on a resend): in every case the gateway may drop them.

Layout (a CBOR map)::

    {"v": 1, "ep": epoch, "ok": [[first, last], ...], "no": [[first, last], ...]}

``ok`` and ``no`` are inclusive ranges of sequence numbers (``no``: refused), naming at most
:data:`MAX_ACK_SEQS` numbers together (a cloud acknowledging more splits them over several
messages). ``decode_ack`` accepts untrusted bytes and raises only :class:`AckError`; the bound
keeps a few bytes of ranges from expanding into billions of numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import cbor2

from vitals.samples import is_identifier

__all__ = ["ACK_VERSION", "MAX_ACK_SEQS", "AckError", "StoredAck", "decode_ack", "encode_ack", "seq_ranges"]

ACK_VERSION = 1
MAX_ACK_SEQS = 1 << 16
"""Sequence numbers one acknowledgement may name, stored and refused together."""
_MAX_ACK_BYTES = 1 << 16
_MAX_RANGES = 4096
_MAX_SEQ = (1 << 63) - 1


class AckError(ValueError):
    """Bytes that are not a valid acknowledgement. The only exception :func:`decode_ack` raises."""


@dataclass(frozen=True, slots=True)
class StoredAck:
    """Batches of one spool epoch the cloud is done with: ``stored`` (or duplicates) and ``refused``."""

    epoch: str
    stored: tuple[int, ...] = ()
    refused: tuple[int, ...] = ()

    @property
    def seqs(self) -> tuple[int, ...]:
        """Every sequence number named, stored or refused, in ascending order."""
        return tuple(sorted({*self.stored, *self.refused}))


def seq_ranges(seqs: Iterable[int]) -> list[list[int]]:
    """Fold sequence numbers into sorted inclusive ``[first, last]`` ranges."""
    ranges: list[list[int]] = []
    for seq in sorted(set(seqs)):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1][1] = seq
        else:
            ranges.append([seq, seq])
    return ranges


def encode_ack(ack: StoredAck) -> bytes:
    """Encode ``ack``; raises ``ValueError`` for an epoch that is not an identifier or empty, or
    for more than :data:`MAX_ACK_SEQS` sequence numbers (split them over several acknowledgements)."""
    if ack.epoch and not is_identifier(ack.epoch):
        raise ValueError(f"epoch {ack.epoch!r} is not a valid identifier")
    if len(set(ack.stored)) + len(set(ack.refused)) > MAX_ACK_SEQS:
        raise ValueError(f"an acknowledgement names at most {MAX_ACK_SEQS} sequence numbers; split it")
    return cbor2.dumps({"v": ACK_VERSION, "ep": ack.epoch, "ok": seq_ranges(ack.stored),
                        "no": seq_ranges(ack.refused)})


def _ranges(raw: dict[Any, Any], key: str, budget: list[int]) -> tuple[int, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or len(value) > _MAX_RANGES:
        raise AckError(f"field {key!r} must be a list of at most {_MAX_RANGES} ranges")
    seqs: list[int] = []
    for item in value:
        if (not isinstance(item, list) or len(item) != 2
                or any(isinstance(n, bool) or not isinstance(n, int) for n in item)):
            raise AckError(f"field {key!r}: each range is a pair of integers [first, last]")
        first, last = item
        if not 0 <= first <= last <= _MAX_SEQ:
            raise AckError(f"field {key!r}: range [{first}, {last}] is not 0 <= first <= last")
        budget[0] -= last - first + 1
        if budget[0] < 0:  # checked before expanding the range
            raise AckError(f"an acknowledgement names at most {MAX_ACK_SEQS} sequence numbers")
        seqs.extend(range(first, last + 1))
    return tuple(seqs)


def decode_ack(payload: bytes) -> StoredAck:
    """Decode untrusted acknowledgement bytes; raises :class:`AckError` naming what is wrong."""
    if not isinstance(payload, bytes | bytearray | memoryview) or not 0 < len(payload) <= _MAX_ACK_BYTES:
        raise AckError(f"an acknowledgement is 1..{_MAX_ACK_BYTES} bytes")
    try:
        raw = cbor2.loads(bytes(payload))
    except Exception as exc:  # cbor2 raises a variety of types on hostile input
        raise AckError(f"not valid CBOR: {exc}") from None
    if not isinstance(raw, dict):
        raise AckError(f"expected a CBOR map, got {type(raw).__name__}")
    if raw.get("v") != ACK_VERSION:
        raise AckError(f"unsupported acknowledgement version {raw.get('v')!r}")
    epoch = raw.get("ep")
    if not isinstance(epoch, str) or (epoch and not is_identifier(epoch)):
        raise AckError("field 'ep' must be the spool epoch (an identifier, or empty)")
    budget = [MAX_ACK_SEQS]
    return StoredAck(epoch=epoch, stored=_ranges(raw, "ok", budget), refused=_ranges(raw, "no", budget))
