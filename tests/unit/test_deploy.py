"""deploy/: the Kubernetes manifests and the compose file validate against their schemas and agree with the code.

Kubernetes objects are checked against the API schemas that ``kubernetes-validate`` ships (strict: an
unknown field is an error); the compose file against the Compose Specification schema vendored by
``check-jsonschema``. Then what no schema knows: probes and resources everywhere, one image, the
``VB_*`` names the cloud reads, credentials only from Secrets, the broker config in one version.
"""

from __future__ import annotations

import configparser
import importlib.metadata
import importlib.resources
import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kubernetes_validate.utils import validate as validate_kubernetes

from cloud.service import _ENVIRONMENT

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
KUBERNETES_VERSION = "1.30.0"  # the oldest release the manifests are meant for
IMAGE = f"vitalbridge/vitalbridge:{importlib.metadata.version('vitalbridge')}"
CLOUD_ROLES = {"ingest", "api"}
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|MQTT_URL")
CREDENTIALS_IN_URL = re.compile(r"[a-z+]+://[^/\s:@]+:[^/\s@]+@")
MANIFESTS = sorted(path for path in KUBERNETES.glob("*.yaml") if path.name != "kustomization.yaml")


def _objects() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _workloads() -> list[dict[str, Any]]:
    return [obj for obj in _objects() if obj["kind"] in {"Deployment", "StatefulSet"}]


def _containers() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for workload in _workloads():
        for container in workload["spec"]["template"]["spec"]["containers"]:
            yield workload, container


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def _config_map(name: str) -> dict[str, str]:
    [found] = [obj for obj in _objects() if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == name]
    data: dict[str, str] = found["data"]
    return data


# -- schemas ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_every_kubernetes_object_is_valid_against_the_api_schema(path: Path) -> None:
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    assert documents, f"{path.name} holds no object"
    for document in documents:
        validate_kubernetes(document, KUBERNETES_VERSION, strict=True)


def test_the_kubernetes_validator_catches_a_misspelt_field() -> None:
    [deployment] = [obj for obj in _workloads() if obj["metadata"]["name"] == "api"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/health"}}
    with pytest.raises(jsonschema.ValidationError, match="readinesProbe"):
        validate_kubernetes(deployment, KUBERNETES_VERSION, strict=True)


def test_the_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [path.name for path in MANIFESTS]


def _compose_errors(document: dict[str, Any]) -> list[str]:
    vendored = importlib.resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema = json.loads(vendored.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(document)]


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    assert _compose_errors(_compose()) == []
    broken = _compose()
    broken["services"]["api"]["helthcheck"] = broken["services"]["api"].pop("healthcheck", {})
    assert any("helthcheck" in error for error in _compose_errors(broken))


# -- what every workload needs ------------------------------------------------------------------------


def test_every_container_has_probes_and_resources() -> None:
    for workload, container in _containers():
        where = f"{workload['kind']}/{workload['metadata']['name']}/{container['name']}"
        assert "readinessProbe" in container and "livenessProbe" in container, where
        resources = container.get("resources", {})
        assert {"cpu", "memory"} <= set(resources.get("requests", {})), where
        assert "memory" in resources.get("limits", {}), where
    for name, service in _compose()["services"].items():
        assert "healthcheck" in service, name
        assert {"limits", "reservations"} <= set(service["deploy"]["resources"]), name


def test_the_cloud_runs_one_image_of_this_version_everywhere() -> None:
    cloud = [(workload, container) for workload, container in _containers()
             if workload["metadata"]["name"] in CLOUD_ROLES]
    assert {workload["metadata"]["name"] for workload, _ in cloud} == CLOUD_ROLES
    for workload, container in cloud:
        assert container["image"] == IMAGE
        assert container["args"] == ["vitalbridge", "cloud", workload["metadata"]["name"]]
    compose = _compose()["services"]
    for role in CLOUD_ROLES:
        assert compose[role]["image"] == IMAGE
        assert compose[role]["command"] == ["vitalbridge", "cloud", role]
    assert f"-t {IMAGE}" in (DEPLOY / "Dockerfile").read_text()


def test_cloud_probes_ask_the_health_endpoint_on_the_port_the_cloud_listens_on() -> None:
    port = int(_config_map("vitalbridge-cloud")["VB_HTTP_PORT"])
    for workload, container in _containers():
        if workload["metadata"]["name"] not in CLOUD_ROLES:
            continue
        [http] = [p for p in container["ports"] if p["name"] == "http"]
        assert http["containerPort"] == port
        # Readiness is /health: 503 while the ingest is disconnected or stalled, or a store is down.
        assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
        # Liveness must not restart a worker because a store is down: it asks only that HTTP answers.
        assert container["livenessProbe"]["httpGet"]["path"] == "/metrics"
    for role in CLOUD_ROLES:
        check = " ".join(_compose()["services"][role]["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/health" in check


def test_ingest_workers_are_replicas_on_a_shared_subscription_with_derived_client_ids() -> None:
    [ingest] = [w for w in _workloads() if w["metadata"]["name"] == "ingest"]
    # A StatefulSet: stable pod names, so a restarted worker derives the same client id and finds its session.
    assert ingest["kind"] == "StatefulSet" and ingest["spec"]["replicas"] >= 2
    assert _config_map("vitalbridge-cloud")["VB_INGEST_SHARED_GROUP"]
    assert _compose()["services"]["ingest"]["environment"]["VB_INGEST_SHARED_GROUP"]
    assert _compose()["services"]["ingest"]["deploy"]["replicas"] >= 2
    everything = "\n".join(path.read_text() for path in [*MANIFESTS, DEPLOY / "compose.yaml"])
    assert "VB_INGEST_CLIENT_ID" not in everything  # a fixed id would make the replicas knock each other off


# -- environment and credentials ----------------------------------------------------------------------


def _kubernetes_env() -> dict[str, dict[str, Any]]:
    names: dict[str, dict[str, Any]] = {}
    for _workload, container in _containers():
        for variable in container.get("env", []):
            names[variable["name"]] = variable
    return names


def test_every_vb_variable_in_the_manifests_is_one_the_cloud_reads() -> None:
    known = set(_ENVIRONMENT)
    used = {name for name in _kubernetes_env() if name.startswith("VB_")}
    used |= {name for name in _config_map("vitalbridge-cloud") if name.startswith("VB_")}
    for service in _compose()["services"].values():
        # VB_X_FILE is read by the image's entrypoint into VB_X.
        used |= {name.removesuffix("_FILE") for name in service.get("environment", {}) if name.startswith("VB_")}
    assert used, "no VB_ variable found"
    assert used <= known, f"not read by cloud/service.py: {sorted(used - known)}"


def test_credentials_come_only_from_secrets() -> None:
    for name, variable in _kubernetes_env().items():
        if SECRET_NAME.search(name):
            assert "secretKeyRef" in variable.get("valueFrom", {}), f"{name} must come from a Secret"
    for config_map in (obj for obj in _objects() if obj["kind"] == "ConfigMap"):
        assert not [key for key in config_map["data"] if SECRET_NAME.search(key)], config_map["metadata"]["name"]
    for name, service in _compose()["services"].items():
        for variable, value in service.get("environment", {}).items():
            if SECRET_NAME.search(variable):
                assert variable.endswith("_FILE") and str(value).startswith("/run/secrets/"), (name, variable)
    for secret in _compose()["secrets"].values():
        assert secret["file"].startswith("./secrets/")
    assert "secrets/" in (DEPLOY / ".gitignore").read_text().split()
    for path in [*MANIFESTS, DEPLOY / "compose.yaml", *sorted((DEPLOY / "systemd").glob("*"))]:
        assert not CREDENTIALS_IN_URL.search(path.read_text()), f"a URL with a password in {path.name}"


def test_every_secret_the_manifests_use_is_documented() -> None:
    readme = (DEPLOY / "README.md").read_text()
    references: set[tuple[str, str]] = set()
    for _workload, container in _containers():
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                references.add((ref["name"], ref["key"]))
    for workload in _workloads():
        for volume in workload["spec"]["template"]["spec"].get("volumes", []):
            if "secret" in volume:
                references |= {(volume["secret"]["secretName"], item["key"]) for item in volume["secret"]["items"]}
    assert references
    for name, key in references:
        assert re.search(rf"{re.escape(name)}\b.*--from-(literal|file)={re.escape(key)}=", readme, re.DOTALL), (
            f"deploy/README.md does not say how to create {name}/{key}")
    for secret in _compose()["secrets"]:
        assert f"secrets/{secret}" in readme


def test_the_broker_config_is_the_same_in_compose_and_kubernetes() -> None:
    data = _config_map("mosquitto")
    for name in ("mosquitto.conf", "acl", "probe-acl"):
        assert data[name] == (DEPLOY / "mosquitto" / name).read_text(), name
    mounted = {volume.split(":")[0] for volume in _compose()["services"]["mosquitto"]["volumes"]}
    assert {"./mosquitto/mosquitto.conf", "./mosquitto/acl", "./mosquitto/probe-acl"} <= mounted


# -- the image and the single-server unit -------------------------------------------------------------


def test_the_dockerfile_copies_only_what_exists() -> None:
    root = DEPLOY.parent
    copies = [shlex.split(line) for line in (DEPLOY / "Dockerfile").read_text().splitlines()
              if line.startswith("COPY ")]
    assert copies
    for words in copies:
        if not any(word.startswith("--from") for word in words):
            for source in words[1:-1]:
                assert (root / source).exists(), source
    assert (DEPLOY / "docker-entrypoint.sh").stat().st_mode & 0o111


def test_the_entrypoint_reads_credentials_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("user:pa ss\n")
    show = 'printf "%s|%s" "$VB_INFLUX_TOKEN" "${VB_INFLUX_TOKEN_FILE-}"'
    completed = subprocess.run(
        ["sh", str(DEPLOY / "docker-entrypoint.sh"), "sh", "-c", show],
        env={"PATH": "/usr/bin:/bin", "VB_INFLUX_TOKEN_FILE": str(secret)}, capture_output=True, text=True, timeout=30,
    )
    assert (completed.returncode, completed.stdout) == (0, "user:pa ss|")
    missing = subprocess.run(["sh", str(DEPLOY / "docker-entrypoint.sh"), "true"], capture_output=True, text=True,
                             env={"PATH": "/usr/bin:/bin", "PGPASSWORD_FILE": str(tmp_path / "nope")}, timeout=30)
    assert missing.returncode == 2 and "PGPASSWORD_FILE" in missing.stderr


def _unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / "systemd" / name).read_text())
    return parser


def test_the_cloud_unit_runs_the_cloud_hardened() -> None:
    unit = _unit("vitalbridge-cloud.service")
    service = unit["Service"]
    assert service["ExecStart"].endswith("/vitalbridge cloud run")
    assert service["EnvironmentFile"] == "/etc/vitalbridge/cloud.env"
    assert service["User"] != "root"
    hardening = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
                 "PrivateDevices": "yes", "CapabilityBoundingSet": "", "RestrictNamespaces": "yes",
                 "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "SystemCallArchitectures": "native"}
    assert {key: service.get(key) for key in hardening} == hardening
    assert "postgresql.service" in unit["Unit"]["After"]


def test_the_gateway_unit_runs_the_gateway_as_its_own_user_hardened() -> None:
    service = _unit("vitalbridge-gateway.service")["Service"]
    assert service["ExecStart"].endswith("/vitalbridge edge run --config /etc/vitalbridge/gateway.yaml")
    assert service["User"] == service["Group"] == "vitalbridge-gateway"
    hardening = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
                 "CapabilityBoundingSet": "", "RestrictNamespaces": "yes", "SystemCallArchitectures": "native",
                 "ReadWritePaths": "/var/lib/vitalbridge", "StateDirectory": "vitalbridge", "UMask": "0077",
                 "DevicePolicy": "closed"}
    assert {key: service.get(key) for key in hardening} == hardening
    # The radio and the serial ports are all it may reach besides the network.
    assert "AF_BLUETOOTH" in service["RestrictAddressFamilies"]
    assert set(service["SupplementaryGroups"].split()) == {"bluetooth", "dialout"}


def test_the_systemd_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here (Debian package systemd)")
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        # verify also wants ExecStart's program to exist: stand /bin/true in for the installed one.
        copy = tmp_path / unit.name
        copy.write_text(re.sub(r"^ExecStart=\S+", "ExecStart=/bin/true", unit.read_text(), flags=re.MULTILINE))
        completed = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
        assert completed.returncode == 0 and completed.stderr.strip() == "", (unit.name, completed.stderr)
