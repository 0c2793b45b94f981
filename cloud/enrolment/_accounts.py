"""What enrolment needs from the broker's account keeper: a login per gateway, and the CA gateways trust."""

from __future__ import annotations

from typing import Protocol

__all__ = ["BrokerAccounts", "IssuedCredentials"]


class IssuedCredentials(Protocol):
    """A gateway's broker login as the account keeper returns it."""

    @property
    def gateway(self) -> str:
        """The gateway the login is for."""
        ...

    @property
    def username(self) -> str:
        """The broker user name."""
        ...

    @property
    def password(self) -> str:
        """The broker password (shown to the gateway once, never stored in clear by the cloud)."""
        ...


class BrokerAccounts(Protocol):
    """Keeps the broker's gateway accounts (the secure profile's password file and ACL, or a plugin).

    ``add_gateway`` makes a new login for the gateway (replacing any earlier one, so a re-enrolled gateway's
    old password stops working); ``revoke_gateway`` removes it; ``ca_pem`` is the PEM of the CA that signed
    the broker's certificate. Called from a worker thread: they may block.
    """

    def add_gateway(self, gateway: str) -> IssuedCredentials:
        """A fresh broker login for ``gateway``."""
        ...

    def revoke_gateway(self, gateway: str) -> None:
        """Remove ``gateway``'s broker login."""
        ...

    def ca_pem(self) -> str:
        """The broker CA's certificate, PEM."""
        ...
