"""Streaming serial framers: bytes in any chunking, whole frames out, garbage skipped and counted.

Two framings cover the serial devices VitalBridge knows: text lines (with an optional NMEA-style
XOR or sum-mod-256 checksum) and binary frames (sync bytes, fixed or length-field length,
checksum, byte tests, and optional grouping of consecutive frames into one packet). Every decision
is taken only once enough bytes are buffered, so the frames and the discarded-byte count are the
same however the stream is chunked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "BinaryFramer",
    "ByteTest",
    "Frame",
    "FrameMatcher",
    "Framer",
    "LineFramer",
    "build_framer",
    "checksum8",
]


@dataclass(frozen=True, slots=True)
class Frame:
    """One whole frame: ``name`` is the profile's frame name, ``payload`` its bytes.

    For line framing the payload is the line without terminator and without checksum suffix; for
    binary framing it is the complete frame (sync and checksum included), or a group of frames.
    """

    name: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class FrameMatcher:
    """Names a frame: the first matcher whose ``prefix`` starts the payload (empty: any) wins."""

    name: str
    prefix: bytes = b""


@dataclass(frozen=True, slots=True)
class ByteTest:
    """True when ``frame[offset] & mask == value``."""

    offset: int
    mask: int
    value: int

    def holds(self, frame: bytes | bytearray) -> bool:
        """Whether the byte at ``offset`` passes (a frame too short fails)."""
        return self.offset < len(frame) and frame[self.offset] & self.mask == self.value


class Framer(Protocol):
    """What the serial transport drives: ``feed`` chunks, get frames; counters for health."""

    discarded_bytes: int
    unmatched_frames: int

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return the frames they complete, in order."""
        ...


def checksum8(data: bytes | bytearray, algorithm: str) -> int:
    """8-bit checksum of ``data``: ``sum8`` (sum mod 256), ``xor8``, ``twos_complement8`` (-sum mod 256)."""
    if algorithm == "sum8":
        return sum(data) & 0xFF
    if algorithm == "twos_complement8":
        return -sum(data) & 0xFF
    if algorithm == "xor8":
        result = 0
        for byte in data:
            result ^= byte
        return result
    raise ValueError(f"unknown checksum algorithm {algorithm!r}")


def _name_of(payload: bytes, matchers: Sequence[FrameMatcher]) -> str | None:
    for matcher in matchers:
        if payload.startswith(matcher.prefix):
            return matcher.name
    return None


@dataclass
class LineFramer:
    """Text lines ending in ``terminator`` ("\\n" also strips a preceding "\\r").

    With ``checksum`` set, a line must end in ``separator`` + two hex digits, the checksum of the
    text before the separator (after ``skip_prefix``, e.g. NMEA's "$"); a line that fails is
    discarded. A line longer than ``max_length`` is discarded up to its terminator. Blank lines
    are skipped without counting.
    """

    matchers: Sequence[FrameMatcher]
    terminator: bytes = b"\n"
    max_length: int = 512
    checksum: str | None = None
    separator: bytes = b"*"
    skip_prefix: bytes = b""
    discarded_bytes: int = 0
    unmatched_frames: int = 0
    bad_checksums: int = 0
    _buffer: bytearray = field(default_factory=bytearray)
    _overflow: bool = False

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return the complete lines as frames."""
        self._buffer += data
        frames: list[Frame] = []
        while True:
            end = self._buffer.find(self.terminator)
            if end < 0:
                keep = len(self.terminator) - 1  # a terminator may be split across chunks
                if self._overflow or len(self._buffer) - keep > self.max_length:
                    # Past the limit no terminator can rescue the line: drop what we hold now
                    # and the rest of it later, so memory stays bounded.
                    self.discarded_bytes += len(self._buffer) - keep
                    del self._buffer[: len(self._buffer) - keep]
                    self._overflow = True
                return frames
            line = bytes(self._buffer[:end])
            consumed = end + len(self.terminator)
            del self._buffer[:consumed]
            if self._overflow or len(line) > self.max_length:
                self._overflow = False
                self.discarded_bytes += consumed
                continue
            frame = self._frame_of(line, consumed)
            if frame is not None:
                frames.append(frame)

    def _frame_of(self, line: bytes, consumed: int) -> Frame | None:
        if self.terminator == b"\n" and line.endswith(b"\r"):
            line = line[:-1]
        if not line.strip():
            return None
        if self.checksum is not None:
            body, sep, digits = line.rpartition(self.separator)
            covered = body[len(self.skip_prefix) :] if body.startswith(self.skip_prefix) else None
            try:
                expected = int(digits, 16) if len(digits) == 2 else -1
            except ValueError:
                expected = -1
            if not sep or covered is None or checksum8(covered, self.checksum) != expected:
                self.bad_checksums += 1
                self.discarded_bytes += consumed
                return None
            line = body
        name = _name_of(line, self.matchers)
        if name is None:
            self.unmatched_frames += 1
            return None
        return Frame(name, line)


@dataclass
class BinaryFramer:
    """Binary frames: ``sync`` bytes, a length (``fixed`` or read from a field), checksum and tests.

    The length field is ``field_size`` bytes at ``field_offset``; the frame's total length is its
    value plus ``adjust``. The checksum (if any) is the frame's last byte and covers bytes
    ``checksum_first`` up to it. ``require`` lists byte tests every frame passes. A candidate that
    fails any check costs one byte and the search resumes at the next sync. With ``group_count``,
    ``group_count`` consecutive frames starting with one that passes ``group_first`` make one
    frame; frames outside a complete group are discarded.
    """

    matchers: Sequence[FrameMatcher]
    sync: bytes
    fixed_length: int | None = None
    field_offset: int = 0
    field_size: int = 1
    field_endian: str = "little"
    adjust: int = 0
    max_length: int = 1024
    checksum: str | None = None
    checksum_first: int = 0
    require: Sequence[ByteTest] = ()
    group_count: int = 0
    group_first: ByteTest | None = None
    discarded_bytes: int = 0
    unmatched_frames: int = 0
    bad_checksums: int = 0
    _buffer: bytearray = field(default_factory=bytearray)
    _group: list[bytes] = field(default_factory=list)

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return the complete frames (or groups)."""
        self._buffer += data
        out: list[Frame] = []
        while True:
            frame = self._next_frame()
            if frame is None:
                return out
            payload = self._grouped(frame)
            if payload is None:
                continue
            name = _name_of(payload, self.matchers)
            if name is None:
                self.unmatched_frames += 1
            else:
                out.append(Frame(name, payload))

    def _skip(self, count: int) -> None:
        del self._buffer[:count]
        self.discarded_bytes += count

    def _resync(self) -> bool:
        """Drop bytes before the next possible sync; True when a full sync starts the buffer."""
        buffer, sync = self._buffer, self.sync
        index = buffer.find(sync)
        if index < 0:
            # Keep a tail that may be the start of a sync split across chunks.
            keep = next(
                (n for n in range(min(len(sync) - 1, len(buffer)), 0, -1) if buffer.endswith(sync[:n])), 0
            )
            self._skip(len(buffer) - keep)
            return False
        self._skip(index)
        return True

    def _length(self) -> int | None:
        """Total frame length, 0 for an impossible one, None when more bytes are needed."""
        if self.fixed_length is not None:
            return self.fixed_length
        end = self.field_offset + self.field_size
        if len(self._buffer) < end:
            return None
        order: Any = self.field_endian
        total = int.from_bytes(self._buffer[self.field_offset : end], order) + self.adjust
        minimum = max(end, len(self.sync)) + (1 if self.checksum else 0)
        return total if minimum <= total <= self.max_length else 0

    def _next_frame(self) -> bytes | None:
        while True:
            if not self._resync():
                return None
            length = self._length()
            if length is None:
                return None
            if length == 0:
                self._skip(1)
                continue
            if len(self._buffer) < length:
                return None
            candidate = bytes(self._buffer[:length])
            valid = all(test.holds(candidate) for test in self.require)
            if valid and self.checksum is not None:
                valid = checksum8(candidate[self.checksum_first : -1], self.checksum) == candidate[-1]
                if not valid:
                    self.bad_checksums += 1
            if not valid:
                self._skip(1)
                continue
            del self._buffer[:length]
            return candidate

    def _grouped(self, frame: bytes) -> bytes | None:
        if not self.group_count:
            return frame
        if self.group_first is not None and self.group_first.holds(frame):
            self.discarded_bytes += sum(len(part) for part in self._group)
            self._group = [frame]
        elif self._group:
            self._group.append(frame)
        else:
            self.discarded_bytes += len(frame)
            return None
        if len(self._group) == self.group_count:
            payload = b"".join(self._group)
            self._group = []
            return payload
        return None


def _byte_test(spec: Mapping[str, Any]) -> ByteTest:
    return ByteTest(int(spec["offset"]), int(spec["mask"]), int(spec["value"]))


def build_framer(framing: Mapping[str, Any], frames: Sequence[Mapping[str, Any]]) -> Framer:
    """Return a fresh framer for a profile's (schema-valid) ``framing`` and ``frames`` sections."""
    matchers = [
        FrameMatcher(str(item["name"]), str(item.get("match_prefix", "")).encode("latin-1")) for item in frames
    ]
    if framing["kind"] == "line":
        checksum = framing.get("checksum")
        return LineFramer(
            matchers,
            terminator=str(framing.get("terminator", "\n")).encode("ascii"),
            max_length=int(framing.get("max_length", 512)),
            checksum=None if checksum is None else str(checksum["algorithm"]),
            separator=str((checksum or {}).get("separator", "*")).encode("latin-1"),
            skip_prefix=str((checksum or {}).get("skip_prefix", "")).encode("latin-1"),
        )
    length = framing["length"]
    checksum = framing.get("checksum")
    group = framing.get("group")
    return BinaryFramer(
        matchers,
        sync=bytes.fromhex(str(framing["sync"])),
        fixed_length=int(length["fixed"]) if "fixed" in length else None,
        field_offset=int(length.get("field_offset", 0)),
        field_size=int(length.get("field_size", 1)),
        field_endian=str(length.get("endian", "little")),
        adjust=int(length.get("adjust", 0)),
        max_length=int(length.get("max", 1024)),
        checksum=None if checksum is None else str(checksum["algorithm"]),
        checksum_first=int((checksum or {}).get("first", 0)),
        require=[_byte_test(test) for test in framing.get("require", ())],
        group_count=int(group["count"]) if group else 0,
        group_first=_byte_test(group["first"]) if group else None,
    )
