"""Mosquitto's dynamic-security plugin: its state file and its control commands, as plain values.

Pure: nothing here opens a socket or a file. :mod:`cloud.broker._accounts` sends what these
functions build to ``$CONTROL/dynamic-security/v1``; :mod:`cloud.broker._pki` writes the first
state file the broker starts from.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from vitals.samples import is_identifier
from vitals.topics import TOPIC_ROOT

__all__ = [
    "ADMIN_ROLE",
    "CONTROL_TOPIC",
    "GATEWAY_PUBLISH",
    "INGEST_ROLE",
    "RESPONSE_TOPIC",
    "add_gateway_commands",
    "admin_acls",
    "client_entry",
    "gateway_acls",
    "gateway_role",
    "ingest_acls",
    "initial_state",
    "revoke_gateway_commands",
    "rotate_password_commands",
]

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
ADMIN_ROLE = "vitalbridge-admin"
INGEST_ROLE = "vitalbridge-ingest"
# What a gateway publishes under its own subtree (vb/v1/G/...): batches, SenML, status (also its
# will) and events. It reads only vb/v1/G/cmd/#.
GATEWAY_PUBLISH = ("data", "senml", "status", "events")
_INGEST_READS = ("data", "senml", "status", "events")
_ITERATIONS = 1000


def _acl(kind: str, topic: str, allow: bool = True, priority: int = 0) -> dict[str, Any]:
    return {"acltype": kind, "topic": topic, "allow": allow, "priority": priority}


def client_entry(username: str, password: str, salt: bytes, roles: list[str], text: str = "",
                 iterations: int = _ITERATIONS) -> dict[str, Any]:
    """A client of the state file, its password hashed as the plugin does (PBKDF2-SHA512, 64 bytes)."""
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return {"username": username, "textName": text, "password": base64.b64encode(digest).decode(),
            "salt": base64.b64encode(salt).decode(), "iterations": iterations,
            "roles": [{"rolename": role} for role in roles]}


def admin_acls() -> list[dict[str, Any]]:
    """The admin client may use the plugin's control topic and nothing else."""
    topic = "$CONTROL/dynamic-security/#"
    return [_acl("publishClientSend", topic), _acl("publishClientReceive", topic), _acl("subscribePattern", topic),
            _acl("unsubscribePattern", topic)]


def ingest_acls(claim_root: str = f"{TOPIC_ROOT}/_ingest") -> list[dict[str, Any]]:
    """The ingest reads every gateway's data, SenML, status and events (plain or through a shared
    subscription), writes each gateway's ``cmd/`` subtree, and reads and writes its claim topics."""
    acls: list[dict[str, Any]] = []
    for kind in _INGEST_READS:
        topic = f"{TOPIC_ROOT}/+/{kind}"
        # The plugin checks a shared subscription with its $share/GROUP/ prefix; deliveries by the topic itself.
        acls += [_acl("subscribePattern", topic), _acl("subscribePattern", f"$share/+/{topic}"),
                 _acl("publishClientReceive", topic)]
    acls += [
        _acl("publishClientSend", f"{TOPIC_ROOT}/+/cmd/#"),
        _acl("publishClientSend", f"{claim_root}/#"),
        _acl("subscribePattern", f"{claim_root}/#"),
        _acl("publishClientReceive", f"{claim_root}/#"),
        _acl("unsubscribePattern", "#"),
    ]
    return acls


def gateway_role(gateway: str) -> str:
    """The role that holds gateway ``gateway``'s ACL."""
    return f"gateway-{gateway}"


def gateway_acls(gateway: str) -> list[dict[str, Any]]:
    """Gateway ``gateway`` publishes only its own data/senml/status/events and reads only its ``cmd/#``."""
    if not is_identifier(gateway):
        raise ValueError(f"gateway id {gateway!r} is not a valid identifier")
    own = f"{TOPIC_ROOT}/{gateway}"
    acls = [_acl("publishClientSend", f"{own}/{kind}") for kind in GATEWAY_PUBLISH]
    acls += [_acl("subscribePattern", f"{own}/cmd/#"), _acl("publishClientReceive", f"{own}/cmd/#"),
             _acl("unsubscribePattern", f"{own}/cmd/#")]
    return acls


def initial_state(admin: tuple[str, str], ingest: tuple[str, str], salts: tuple[bytes, bytes]) -> dict[str, Any]:
    """The state file the broker first starts from: an admin client and the ingest's client; everything
    not allowed by a role is refused (anonymous clients are refused by the listener itself)."""
    return {
        "clients": [
            client_entry(admin[0], admin[1], salts[0], [ADMIN_ROLE], "VitalBridge broker admin"),
            client_entry(ingest[0], ingest[1], salts[1], [INGEST_ROLE], "VitalBridge ingest"),
        ],
        "groups": [],
        "roles": [{"rolename": ADMIN_ROLE, "acls": admin_acls()},
                  {"rolename": INGEST_ROLE, "acls": ingest_acls()}],
        "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False, "subscribe": False,
                             "unsubscribe": False},
    }


def add_gateway_commands(gateway: str, password: str) -> list[dict[str, Any]]:
    """Commands that create gateway ``gateway``'s role and client (username = gateway id)."""
    role = gateway_role(gateway)
    return [
        {"command": "createRole", "rolename": role, "acls": gateway_acls(gateway)},
        {"command": "createClient", "username": gateway, "password": password, "textName": f"gateway {gateway}",
         "roles": [{"rolename": role}]},
    ]


def rotate_password_commands(gateway: str, password: str) -> list[dict[str, Any]]:
    """Commands that give an existing gateway client a new password and make sure it is enabled."""
    return [{"command": "setClientPassword", "username": gateway, "password": password},
            {"command": "enableClient", "username": gateway}]


def revoke_gateway_commands(gateway: str) -> list[dict[str, Any]]:
    """Commands that delete gateway ``gateway``'s client (the broker disconnects it) and its role."""
    return [{"command": "deleteClient", "username": gateway},
            {"command": "deleteRole", "rolename": gateway_role(gateway)}]
