"""`vitalbridge edge run | scan | pair`."""

from __future__ import annotations

from pathlib import Path

import pytest

import vitalbridge.gateway
from edge import scan
from edge.config import DeviceConfig, load_config
from edge.scan import Advertisement
from vitalbridge.cli import main

CONFIG = """\
gateway: home-0001
mqtt_url: mqtt://127.0.0.1:1883
spool: spool.db
batch_interval_s: 5
devices:
  - id: xpod-1
    patient: patient-001
    profile: nonin.xpod
    transport: serial
    address: /dev/ttyUSB0
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG)
    return path


def _pair(config: Path, *extra: str) -> int:
    return main(["edge", "pair", "--config", str(config), *extra])


def test_pair_adds_a_ble_device_with_a_derived_id(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _pair(config, "--address", "C4:7F:51:0A:11:22", "--profile", "generic.heart_rate_strap",
                 "--patient", "patient-002")
    assert code == 0
    devices = load_config(config).devices
    assert devices[0] == DeviceConfig("xpod-1", "patient-001", "nonin.xpod", "serial", "/dev/ttyUSB0")
    assert devices[1] == DeviceConfig("heart_rate_strap-0a1122", "patient-002", "generic.heart_rate_strap", "ble",
                                      "C4:7F:51:0A:11:22")
    assert "paired heart_rate_strap-0a1122" in capsys.readouterr().out
    assert not [p for p in config.parent.iterdir() if p.name.startswith(".gateway.yaml.")]  # no temp file left


def test_pair_a_serial_device_with_an_explicit_id(config: Path) -> None:
    assert _pair(config, "--address", "/dev/ttyUSB1", "--profile", "nonin.xpod", "--patient", "patient-003",
                 "--id", "bedside", "--transport", "serial") == 0
    assert load_config(config).devices[-1] == DeviceConfig("bedside", "patient-003", "nonin.xpod", "serial",
                                                           "/dev/ttyUSB1")
    assert _pair(config, "--address", "/dev/ttyUSB2", "--profile", "nonin.xpod", "--patient", "patient-003") == 0
    assert load_config(config).devices[-1].id == "xpod-ttyusb2"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--address", "/dev/ttyUSB0", "--profile", "nonin.xpod", "--patient", "p"],
         "/dev/ttyUSB0 is already paired as device 'xpod-1' (patient patient-001, profile nonin.xpod)"),
        (["--address", "/dev/ttyUSB9", "--profile", "nonin.xpod", "--patient", "p", "--id", "xpod-1"],
         "device id 'xpod-1' is already in"),
        (["--address", "/dev/ttyUSB9", "--profile", "acme.nothing", "--patient", "p"],
         "unknown profile 'acme.nothing'; see `vitalbridge profiles list`"),
        (["--address", "/dev/ttyUSB9", "--profile", "nonin.xpod", "--patient", "p", "--transport", "ble"],
         "profile nonin.xpod is a serial device, not ble"),
        (["--address", "C4:7F:51:0A:11", "--profile", "generic.heart_rate_strap", "--patient", "p"],
         "'C4:7F:51:0A:11' is not a Bluetooth address"),
        (["--address", "/dev/ttyUSB9", "--profile", "nonin.xpod", "--patient", "no spaces"],
         "patient id 'no spaces' must be"),
    ],
)
def test_pair_refuses_with_a_clear_message_and_leaves_the_file_alone(
        config: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str) -> None:
    assert _pair(config, *arguments) == 2
    err = capsys.readouterr().err
    assert err.startswith("vitalbridge edge pair: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert config.read_text() == CONFIG


def test_pair_refuses_the_same_ble_address_in_other_letter_case(config: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--profile", "generic.heart_rate_strap", "--patient", "p"]
    assert _pair(config, "--address", "c4:7f:51:0a:11:22", *args) == 0
    assert _pair(config, "--address", "C4:7F:51:0A:11:22", *args) == 2
    assert "already paired as device 'heart_rate_strap-0a1122'" in capsys.readouterr().err


def test_pair_with_a_missing_config_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _pair(tmp_path / "none.yaml", "--address", "/dev/ttyS0", "--profile", "nonin.xpod", "--patient", "p") == 2
    err = capsys.readouterr().err
    assert "none.yaml: no such file (gateway config); create one with `vitalbridge edge init`" in err


def test_scan_without_bluetooth_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    async def no_dbus(_timeout_s: float) -> list[Advertisement]:
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(scan, "_bleak_discover", no_dbus)
    assert main(["edge", "scan", "--timeout", "0.1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("vitalbridge edge scan: no usable Bluetooth adapter: cannot reach the system Bluetooth "
                            "service (BlueZ over D-Bus): No such file or directory\n")


def test_scan_lists_devices_and_their_profiles(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    async def discover(_timeout_s: float) -> list[Advertisement]:
        return [Advertisement.create("01:02:03:04:05:06", "Strap", ["180d"], -55),
                Advertisement.create("0A:0B:0C:0D:0E:0F", "Television", [], -40)]

    monkeypatch.setattr(scan, "_bleak_discover", discover)
    assert main(["edge", "scan", "--timeout", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ADDRESS", "RSSI", "NAME", "PROFILES"]
    assert lines[1].startswith("01:02:03:04:05:06      -55  Strap") and "generic.heart_rate_strap" in lines[1]
    assert lines[2].split() == ["0A:0B:0C:0D:0E:0F", "-40", "Television", "-"]


def test_scan_rejects_a_bad_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["edge", "scan", "--timeout", "-1"])
    assert exit_info.value.code == 2
    assert "0..600 s" in capsys.readouterr().err


def test_run_hands_the_config_to_the_gateway(monkeypatch: pytest.MonkeyPatch, config: Path) -> None:
    seen: list[Path] = []

    def run_gateway(config_path: Path) -> int:
        seen.append(config_path)
        return 7

    monkeypatch.setattr(vitalbridge.gateway, "run_gateway", run_gateway)
    assert main(["edge", "run", "--config", str(config)]) == 7
    assert seen == [config]


def test_edge_without_a_subcommand_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["edge"]) == 2
    assert "scan" in capsys.readouterr().out
