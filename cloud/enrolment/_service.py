"""Enrolment as the API runs it: codes, plus what a gateway is given when it shows a good one."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from cloud.enrolment._accounts import BrokerAccounts
from cloud.enrolment._codes import EnrolmentCodes, IssuedCode

__all__ = ["BrokerUnavailable", "Enrolment", "EnrolmentGrant"]

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    """Gateways cannot enrol just now (the broker's account keeper failed, or the cloud knows no broker
    address); the code was not spent and may be tried again."""


@dataclass(frozen=True, slots=True)
class EnrolmentGrant:
    """What an enrolled gateway is told: who it is, where to send, whom to trust and how to log in.

    ``username``/``password`` are None when the cloud keeps no broker accounts (the open profile);
    ``ca_pem`` is None when the broker's certificate is trusted through the system's CAs (or there is no TLS).
    """

    gateway: str
    patients: tuple[str, ...]
    broker_url: str
    ca_pem: str | None
    username: str | None
    password: str | None


@dataclass
class Enrolment:
    """Issues codes and turns a good one into an :class:`EnrolmentGrant`.

    ``broker_url``: the broker as gateways reach it (``mqtts://broker.example.org:8883``; None: not known,
    and gateways cannot enrol); ``accounts``: the broker's account keeper, or None where the broker has no
    per-gateway logins. Blocking: call from a thread.
    """

    codes: EnrolmentCodes
    broker_url: str | None
    accounts: BrokerAccounts | None = None

    def issue(self, gateway: str, *, created_by: str, now: dt.datetime) -> IssuedCode:
        """A new code for ``gateway`` (see :meth:`EnrolmentCodes.issue`)."""
        return self.codes.issue(gateway, created_by=created_by, now=now)

    def enrol(self, code: str, *, client: str, now: dt.datetime) -> EnrolmentGrant:
        """Spend ``code`` and hand out the gateway's identity and broker login.

        Raises :class:`EnrolmentError` for a code that is no good, :class:`BrokerUnavailable` when the
        account keeper fails (the code then stays usable).
        """
        spent = self.codes.spend(code, client=client, now=now)
        if self.broker_url is None:
            self.codes.give_back(spent)
            raise BrokerUnavailable("this cloud has not been told the broker address gateways use "
                                    "(VB_GATEWAY_MQTT_URL); tell its operator")
        username = password = ca_pem = None
        if self.accounts is not None:
            try:
                credentials = self.accounts.add_gateway(spent.gateway)
                username, password = credentials.username, credentials.password
                ca_pem = self.accounts.ca_pem()
            except Exception as exc:
                log.error("enrolment of %s: the broker accounts failed (%s); the code stays usable",
                          spent.gateway, type(exc).__name__)
                self.codes.give_back(spent)
                raise BrokerUnavailable("the broker cannot take a new gateway just now; try again in a few "
                                        "minutes") from None
        log.info("gateway %s enrolled from %s", spent.gateway, client)
        return EnrolmentGrant(spent.gateway, spent.patients, self.broker_url, ca_pem, username, password)


