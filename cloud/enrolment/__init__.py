"""Gateway enrolment: one-time codes a doctor or an admin makes for a registered gateway, and what the
gateway receives when it shows one (its identity, the broker's address and CA, and a broker login from
the :class:`BrokerAccounts` keeper, when the cloud has one)."""

from cloud.enrolment._accounts import BrokerAccounts, IssuedCredentials
from cloud.enrolment._codes import (
    DEFAULT_CODE_TTL,
    ENROL_THROTTLE,
    EnrolmentCodes,
    EnrolmentError,
    IssuedCode,
    SpentCode,
)
from cloud.enrolment._hashing import code_digest
from cloud.enrolment._service import BrokerUnavailable, Enrolment, EnrolmentGrant

__all__ = [
    "DEFAULT_CODE_TTL",
    "ENROL_THROTTLE",
    "BrokerAccounts",
    "BrokerUnavailable",
    "Enrolment",
    "EnrolmentCodes",
    "EnrolmentError",
    "EnrolmentGrant",
    "IssuedCode",
    "IssuedCredentials",
    "SpentCode",
    "code_digest",
]
