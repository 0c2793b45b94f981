"""Record Access Control Point (0x2A52): asking a glucose meter for its stored records.

Every message is Op Code (uint8), Operator (uint8), Operand (rest). The gateway writes requests
(built here); the meter indicates a Number of Stored Records Response (op code 5, operator Null,
uint16 count) or a Response Code (op code 6, operator Null, request op code uint8 + response code
value uint8). Filters here use the Sequence Number filter type (0x01, uint16 bounds).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from device_profiles.gatt._reader import PayloadReader
from device_profiles.gatt._result import ResultBuilder, enum_name
from device_profiles.registry import DecodeContext, DecodeResult

__all__ = [
    "FILTER_SEQUENCE_NUMBER",
    "RacpNumberOfRecords",
    "RacpOpCode",
    "RacpOperator",
    "RacpRequest",
    "RacpResponse",
    "RacpResponseCode",
    "abort_operation",
    "decode_racp_request",
    "decode_racp_response",
    "delete_all_records",
    "encode_racp_request",
    "racp_decoder",
    "racp_result",
    "report_all_records",
    "report_first_record",
    "report_last_record",
    "report_number_of_records",
    "report_records_from",
]

_NAME = "Record Access Control Point"

FILTER_SEQUENCE_NUMBER = 0x01
"""Filter type: the operand bounds are sequence numbers (uint16)."""


class RacpOpCode(enum.IntEnum):
    """RACP op codes."""

    REPORT_STORED_RECORDS = 0x01
    DELETE_STORED_RECORDS = 0x02
    ABORT_OPERATION = 0x03
    REPORT_NUMBER_OF_STORED_RECORDS = 0x04
    NUMBER_OF_STORED_RECORDS_RESPONSE = 0x05
    RESPONSE_CODE = 0x06


class RacpOperator(enum.IntEnum):
    """RACP operators."""

    NULL = 0x00
    ALL_RECORDS = 0x01
    LESS_THAN_OR_EQUAL_TO = 0x02
    GREATER_THAN_OR_EQUAL_TO = 0x03
    WITHIN_RANGE_OF = 0x04
    FIRST_RECORD = 0x05
    LAST_RECORD = 0x06


class RacpResponseCode(enum.IntEnum):
    """Response Code values."""

    SUCCESS = 0x01
    OP_CODE_NOT_SUPPORTED = 0x02
    INVALID_OPERATOR = 0x03
    OPERATOR_NOT_SUPPORTED = 0x04
    INVALID_OPERAND = 0x05
    NO_RECORDS_FOUND = 0x06
    ABORT_UNSUCCESSFUL = 0x07
    PROCEDURE_NOT_COMPLETED = 0x08
    OPERAND_NOT_SUPPORTED = 0x09


@dataclass(frozen=True, slots=True)
class RacpRequest:
    """A request the gateway writes; sequence bounds only with the operators that take them.

    ``LESS_THAN_OR_EQUAL_TO`` uses ``high``, ``GREATER_THAN_OR_EQUAL_TO`` uses ``low``,
    ``WITHIN_RANGE_OF`` uses both; other operators use neither.
    """

    op_code: RacpOpCode
    operator: RacpOperator
    low: int | None = None
    high: int | None = None


@dataclass(frozen=True, slots=True)
class RacpResponse:
    """Response Code indication: the request's op code and the outcome (raw bytes kept)."""

    request_op_code: int
    response_code: int

    @property
    def success(self) -> bool:
        """True for Response Code Success."""
        return self.response_code == RacpResponseCode.SUCCESS


@dataclass(frozen=True, slots=True)
class RacpNumberOfRecords:
    """Number of Stored Records Response indication."""

    count: int


_BOUNDED = (
    RacpOperator.LESS_THAN_OR_EQUAL_TO,
    RacpOperator.GREATER_THAN_OR_EQUAL_TO,
    RacpOperator.WITHIN_RANGE_OF,
)
_REQUEST_OPS = (
    RacpOpCode.REPORT_STORED_RECORDS,
    RacpOpCode.DELETE_STORED_RECORDS,
    RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
)


def _check_u16(value: int | None, name: str) -> int:
    if value is None or not 0 <= value <= 0xFFFF:
        raise ValueError(f"{name} must be a sequence number 0..65535, got {value!r}")
    return value


def encode_racp_request(request: RacpRequest) -> bytes:
    """The bytes to write to the RACP for ``request``; ``ValueError`` for an impossible request."""
    if request.op_code is RacpOpCode.ABORT_OPERATION:
        if request.operator is not RacpOperator.NULL:
            raise ValueError("Abort Operation takes the Null operator")
        return bytes((request.op_code, request.operator))
    if request.op_code not in _REQUEST_OPS:
        raise ValueError(f"{request.op_code.name} is not a request op code")
    head = bytes((request.op_code, request.operator, FILTER_SEQUENCE_NUMBER))
    if request.operator is RacpOperator.GREATER_THAN_OR_EQUAL_TO:
        return head + _check_u16(request.low, "low").to_bytes(2, "little")
    if request.operator is RacpOperator.LESS_THAN_OR_EQUAL_TO:
        return head + _check_u16(request.high, "high").to_bytes(2, "little")
    if request.operator is RacpOperator.WITHIN_RANGE_OF:
        low, high = _check_u16(request.low, "low"), _check_u16(request.high, "high")
        if low > high:
            raise ValueError("low must not exceed high")
        return head + low.to_bytes(2, "little") + high.to_bytes(2, "little")
    if request.operator is RacpOperator.NULL:
        raise ValueError(f"{request.op_code.name} needs an operator")
    return bytes((request.op_code, request.operator))


def report_all_records() -> bytes:
    """Request: report every stored record."""
    return encode_racp_request(RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.ALL_RECORDS))


def report_first_record() -> bytes:
    """Request: report the oldest stored record."""
    return encode_racp_request(RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.FIRST_RECORD))


def report_last_record() -> bytes:
    """Request: report the newest stored record."""
    return encode_racp_request(RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.LAST_RECORD))


def report_records_from(sequence_number: int) -> bytes:
    """Request: report records with sequence number >= ``sequence_number``."""
    request = RacpRequest(
        RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.GREATER_THAN_OR_EQUAL_TO, low=sequence_number
    )
    return encode_racp_request(request)


def report_number_of_records(from_sequence_number: int | None = None) -> bytes:
    """Request: how many records are stored (all, or those >= ``from_sequence_number``)."""
    if from_sequence_number is None:
        request = RacpRequest(RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS, RacpOperator.ALL_RECORDS)
    else:
        request = RacpRequest(
            RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS, RacpOperator.GREATER_THAN_OR_EQUAL_TO,
            low=from_sequence_number,
        )
    return encode_racp_request(request)


def delete_all_records() -> bytes:
    """Request: delete every stored record."""
    return encode_racp_request(RacpRequest(RacpOpCode.DELETE_STORED_RECORDS, RacpOperator.ALL_RECORDS))


def abort_operation() -> bytes:
    """Request: abort the running procedure."""
    return encode_racp_request(RacpRequest(RacpOpCode.ABORT_OPERATION, RacpOperator.NULL))


def _enum(reader: PayloadReader, table: type[enum.IntEnum], field: str) -> int:
    start = reader.offset
    raw = reader.uint(1, field)
    try:
        return table(raw)
    except ValueError:
        raise reader.error(f"{field} {raw:#04x} is not defined", start) from None


def decode_racp_request(payload: bytes) -> RacpRequest:
    """Decode a request as a meter (or a virtual one) receives it; only sequence-number filters."""
    reader = PayloadReader(payload, _NAME)
    op_code = RacpOpCode(_enum(reader, RacpOpCode, "op code"))
    operator = RacpOperator(_enum(reader, RacpOperator, "operator"))
    if op_code not in (*_REQUEST_OPS, RacpOpCode.ABORT_OPERATION):
        raise reader.error(f"op code {op_code.name} is not a request", 0)
    if (op_code is RacpOpCode.ABORT_OPERATION) != (operator is RacpOperator.NULL):
        raise reader.error(f"operator {operator.name} does not go with {op_code.name}", 1)
    low = high = None
    if operator in _BOUNDED:
        start = reader.offset
        if reader.uint(1, "filter type") != FILTER_SEQUENCE_NUMBER:
            raise reader.error("only the sequence number filter type (0x01) is supported", start)
        if operator is not RacpOperator.LESS_THAN_OR_EQUAL_TO:
            low = reader.uint(2, "lower sequence number")
        if operator is not RacpOperator.GREATER_THAN_OR_EQUAL_TO:
            high = reader.uint(2, "upper sequence number")
    reader.finish()
    return RacpRequest(op_code, operator, low, high)


def decode_racp_response(payload: bytes) -> RacpResponse | RacpNumberOfRecords:
    """Decode an RACP indication from the meter; :class:`DecodeError` on anything else."""
    reader = PayloadReader(payload, _NAME)
    op_code = reader.uint(1, "op code")
    if reader.uint(1, "operator") != RacpOperator.NULL:
        raise reader.error("responses carry the Null operator", 1)
    result: RacpResponse | RacpNumberOfRecords
    if op_code == RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE:
        result = RacpNumberOfRecords(reader.uint(2, "number of records"))
    elif op_code == RacpOpCode.RESPONSE_CODE:
        result = RacpResponse(reader.uint(1, "request op code"), reader.uint(1, "response code value"))
    else:
        raise reader.error(f"op code {op_code:#04x} is not a response", 0)
    reader.finish()
    return result


def racp_result(record: RacpResponse | RacpNumberOfRecords, context: DecodeContext) -> DecodeResult:
    """No samples; ``status`` holds ``stored_records`` or ``racp_request``/``racp_response``."""
    out = ResultBuilder(context)
    if isinstance(record, RacpNumberOfRecords):
        out.status["stored_records"] = record.count
    else:
        out.status["racp_request"] = enum_name(RacpOpCode, record.request_op_code)
        out.status["racp_response"] = enum_name(RacpResponseCode, record.response_code)
    return out.build()


def racp_decoder(payload: bytes, context: DecodeContext) -> DecodeResult:
    """Registered decoder ``gatt.record_access_control_point`` (meter indications)."""
    return racp_result(decode_racp_response(payload), context)
