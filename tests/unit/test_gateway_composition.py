"""The production gateway is composed in ``edge``: built-in transports, others only through entry points, when named."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint, EntryPoints
from pathlib import Path

import pytest

import edge.gateway
from edge.config import ConfigError, DeviceConfig, load_config
from edge.gateway import TRANSPORT_ENTRY_POINT_GROUP, build_agent, build_transports

ROOT = Path(__file__).parents[2]
SAMPLE = ROOT / "deploy" / "gateway.example.yaml"


def test_building_the_sample_gateway_loads_neither_simulators_nor_cloud(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import dataclasses, pathlib, sys
        from edge.config import load_config
        from edge.gateway import build_agent
        config = load_config(pathlib.Path(sys.argv[1]))
        build_agent(dataclasses.replace(config, spool=sys.argv[2]))
        print(sorted(m for m in sys.modules if m.split(".")[0] in
                     ("simulators", "cloud", "vitalbridge", "fastapi", "sqlalchemy", "matplotlib")))
    """)
    done = subprocess.run([sys.executable, "-c", script, str(SAMPLE), str(tmp_path / "spool.db")],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "[]"


def test_virtual_comes_from_its_entry_point_only_when_a_device_names_it() -> None:
    plain = build_transports()
    assert plain.names() == ["ble", "serial"]
    assert "virtual" in plain.known_names()  # a config may name it: the message lists it
    assert build_transports(["virtual", "ble"]).names() == ["ble", "serial", "virtual"]


def test_a_transport_whose_package_cannot_be_imported_is_a_one_line_config_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = EntryPoint(name="lora", value="vitalbridge_lora_missing.transport:register",
                        group=TRANSPORT_ENTRY_POINT_GROUP)
    monkeypatch.setattr(edge.gateway, "entry_points", lambda group: EntryPoints([broken]))
    config = load_config(SAMPLE)
    config = dataclasses.replace(config, spool=str(tmp_path / "spool.db"), devices=(
        DeviceConfig(id="x", patient="p", profile="generic.bp_cuff", transport="lora", address="1"),))
    with pytest.raises(ConfigError, match=r"transport 'lora': vitalbridge_lora_missing.transport:register cannot "
                                          r"be imported \(No module named 'vitalbridge_lora_missing'\)"):
        build_agent(config)
