"""Setting a gateway up: `edge init` writes a commented config, `edge pair` keeps what people wrote,
vendor profiles from `profile_dirs` reach run/pair/scan, and no config mistake ends in a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import edge.gateway
from device_profiles import LIBRARY_DIR
from edge import scan
from edge.config import DeviceConfig, load_config
from edge.scan import Advertisement
from vitalbridge.cli import main


def _init(path: Path, *extra: str) -> int:
    return main(["edge", "init", "--config", str(path), "--no-input", *extra])


def test_init_writes_a_commented_config_the_gateway_accepts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "gateway.yaml"
    assert _init(path, "--gateway", "home-0001", "--mqtt-url", "mqtts://u:p@broker.example.org:8883",
                 "--timezone", "Europe/Berlin") == 0
    assert f"wrote {path}" in capsys.readouterr().out
    text = path.read_text()
    assert text.count("\n# ") >= 8  # every setting is explained
    config = load_config(path)
    assert (config.gateway, config.mqtt_url, config.timezone, config.devices) == (
        "home-0001", "mqtts://u:p@broker.example.org:8883", "Europe/Berlin", ())
    assert config.spool == str(tmp_path / "spool.db")
    assert path.stat().st_mode & 0o777 == 0o640  # it may hold the broker password


def test_init_refuses_to_overwrite_and_to_guess(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "gateway.yaml"
    assert _init(path, "--mqtt-url", "mqtt://h") == 2
    assert capsys.readouterr().err == ("vitalbridge edge init: missing --gateway (or run it in a terminal to be "
                                       "asked)\n")
    assert not path.exists()
    assert _init(path, "--gateway", "home 1", "--mqtt-url", "mqtt://h") == 2
    err = capsys.readouterr().err
    assert "gateway: expected 1-64 letters" in err and len(err.splitlines()) == 1
    assert _init(path, "--gateway", "g", "--mqtt-url", "mqtt://h", "--timezone", "Mars/Olympus") == 2
    assert "unknown time zone 'Mars/Olympus'" in capsys.readouterr().err
    path.write_text("# mine\n")
    assert _init(path, "--gateway", "g", "--mqtt-url", "mqtt://h") == 2
    assert "already exists" in capsys.readouterr().err
    assert path.read_text() == "# mine\n"
    assert _init(path, "--gateway", "g", "--mqtt-url", "mqtt://h", "--force") == 0


def test_init_asks_in_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    answers = iter(["home one", "home-1", "http://nope", "mqtt://broker.local", "Asia/Shanghai"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda _prompt: next(answers))
    path = tmp_path / "gateway.yaml"
    assert main(["edge", "init", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "use 1-64 letters" in out and "must start with mqtt:// or mqtts://" in out  # asked again, told why
    config = load_config(path)
    assert (config.gateway, config.mqtt_url, config.timezone) == ("home-1", "mqtt://broker.local", "Asia/Shanghai")


_COMMENTED = """\
# Grandma's gateway -- do not touch the broker line!
gateway: home-0001      # as on the sticker
mqtt_url: mqtt://127.0.0.1:1883

spool: spool.db
timezone: Europe/Berlin

devices:
  # the bedside oximeter
  - id: xpod-1
    patient: patient-001   # Grandma
    profile: nonin.xpod
    transport: serial
    address: '/dev/ttyUSB0'

# tuned by the nurse
pipeline:
  spo2: {heartbeat_s: 120}
"""


def test_pair_keeps_comments_order_and_quoting(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(_COMMENTED)
    assert main(["edge", "pair", "--config", str(path), "--address", "C4:7F:51:0A:11:22", "--profile",
                 "generic.bp_cuff", "--patient", "patient-001"]) == 0
    text = path.read_text()
    before, after = _COMMENTED.split("\n# tuned by the nurse\n")
    assert text.startswith(before)  # everything written before is kept byte for byte
    assert text.endswith("\n\n# tuned by the nurse\n" + after)
    added = text[len(before):].split("\n# tuned")[0]
    assert added == ('  - id: bp_cuff-0a1122\n    patient: patient-001\n    profile: generic.bp_cuff\n'
                     '    transport: ble\n    address: "C4:7F:51:0A:11:22"\n')
    assert load_config(path).devices[-1] == DeviceConfig("bp_cuff-0a1122", "patient-001", "generic.bp_cuff", "ble",
                                                         "C4:7F:51:0A:11:22")


def test_pair_into_a_fresh_init_config_and_a_virtual_device(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    assert _init(path, "--gateway", "home-1", "--mqtt-url", "mqtt://127.0.0.1") == 0
    assert main(["edge", "pair", "--config", str(path), "--transport", "virtual", "--address", "copd_stable",
                 "--profile", "generic.pulse_oximeter", "--patient", "p-1", "--id", "try-me"]) == 0
    assert main(["edge", "pair", "--config", str(path), "--address", "/dev/ttyUSB0", "--profile", "nonin.xpod",
                 "--patient", "p-1"]) == 0
    text = path.read_text()
    assert "# The devices this gateway reads." in text and "devices:\n  - id: try-me\n" in text
    assert [d.id for d in load_config(path).devices] == ["try-me", "xpod-ttyusb0"]


def test_pair_leaves_a_file_alone_when_the_result_would_be_refused(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "gateway.yaml"
    broken = _COMMENTED.replace("heartbeat_s: 120", "heartbeat_s: -1")
    path.write_text(broken)
    assert main(["edge", "pair", "--config", str(path), "--address", "/dev/ttyUSB3", "--profile", "nonin.xpod",
                 "--patient", "p"]) == 2
    assert f"{path}:18: pipeline.spo2.heartbeat_s" in capsys.readouterr().err
    assert path.read_text() == broken


def _vendor_profiles(tmp_path: Path) -> Path:
    """A vendor folder holding ``acme.strap``: the shipped heart-rate strap under another name."""
    folder = tmp_path / "vendor"
    (folder / "acme").mkdir(parents=True)
    text = (LIBRARY_DIR / "generic" / "heart_rate_strap.yaml").read_text()
    (folder / "acme" / "strap.yaml").write_text(text.replace("id: generic.heart_rate_strap", "id: acme.strap"))
    return folder


def test_vendor_profiles_reach_pair_run_and_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    vendor = _vendor_profiles(tmp_path)
    path = tmp_path / "gateway.yaml"
    path.write_text(f"gateway: home-1\nmqtt_url: mqtt://127.0.0.1\nspool: {tmp_path / 'spool.db'}\n"
                    "profile_dirs: [vendor]\ndevices: []\n")
    assert main(["edge", "pair", "--config", str(path), "--address", "C4:7F:51:0A:11:22", "--profile",
                 "acme.strap", "--patient", "p-1"]) == 0
    config = load_config(path)
    assert config.profile_dirs == (str(vendor),)
    agent = edge.gateway.build_agent(config)
    assert agent.devices["strap-0a1122"].profile.id == "acme.strap"

    async def discover(_timeout_s: float) -> list[Advertisement]:
        return [Advertisement.create("01:02:03:04:05:06", "Strap", ["180d"], -55)]

    monkeypatch.setattr(scan, "_bleak_discover", discover)
    capsys.readouterr()
    assert main(["edge", "scan", "--timeout", "1", "--config", str(path)]) == 0
    assert "acme.strap" in capsys.readouterr().out
    shutil.rmtree(vendor)
    (vendor / "acme").mkdir(parents=True)
    (vendor / "acme" / "strap.yaml").write_text("id: acme.strap\n")
    assert main(["edge", "run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vitalbridge edge run: broken device profile: ") and "strap.yaml" in err
    assert len(err.splitlines()) == 1


_BASE = "gateway: home-1\nmqtt_url: mqtt://127.0.0.1:1\nspool: {spool}\ndevices:\n"


@pytest.mark.parametrize(
    ("device", "message"),
    [
        # a serial profile on transport: ble
        ("  - {id: x, patient: p, profile: nonin.xpod, transport: ble, address: 'C4:7F:51:0A:11:22'}",
         ":5: devices[0].transport: profile nonin.xpod is a serial device, not ble; write transport: serial"),
        # a negative BLE option
        ("  - {id: x, patient: p, profile: generic.bp_cuff, transport: ble, address: 'C4:7F:51:0A:11:22',\n"
         "     options: {scan_timeout_s: -3}}",
         ":6: devices[0].options.scan_timeout_s: expected a number greater than 0, not -3"),
        # an option typo
        ("  - {id: x, patient: p, profile: generic.bp_cuff, transport: ble, address: 'C4:7F:51:0A:11:22',\n"
         "     options: {conect_timeout_s: 3}}",
         ":6: devices[0].options.conect_timeout_s: unknown field; expected one of: battery_poll_s, connect_timeout_s"),
        # a scenario typo on a virtual device
        ("  - {id: x, patient: p, profile: generic.pulse_oximeter, transport: virtual, address: copd_stabel}",
         ":5: devices[0]: unknown scenario 'copd_stabel'; library scenarios: af_deteriorating"),
        ("  - {id: x, patient: p, profile: generic.pulse_oximeter, transport: virtual, address: copd_stable,\n"
         "     options: {speed: fast}}", ":6: devices[0].options.speed: expected a number, not 'fast'"),
        ("  - {id: x, patient: p, profile: generic.oximeter, transport: ble, address: 'C4:7F:51:0A:11:22'}",
         ":5: devices[0].profile: unknown profile 'generic.oximeter' (did you mean generic.pulse_oximeter or "
         "generic.thermometer?)"),
        ("  - {id: x, patient: p, profile: nonin.xpod, transport: usb, address: /dev/ttyUSB0}",
         ":5: devices[0].transport: unknown transport 'usb'; expected one of: ble, serial, virtual"),
        ("  - {id: x, patient: p, profile: nonin.xpod, transport: serial}",
         ":5: devices[0]: a serial device needs its port as address"),
        ("  - {id: x, patient: p, profile: nonin.xpod, transport: serial, address: /dev/ttyUSB0}\n"
         "pipeline:\n  spo2: {median_window: 5}", ":7: pipeline.spo2.median_window: unknown option"),
    ],
)
def test_config_mistakes_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], device: str,
                                                 message: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(_BASE.format(spool=tmp_path / "spool.db") + device + "\n")
    assert main(["edge", "run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vitalbridge edge run: {path}{message}"), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "spool.db").exists()  # nothing started


def test_the_edge_commands_default_to_the_systemd_config() -> None:
    from vitalbridge.cli import build_parser

    for command in (["edge", "run"], ["edge", "status"], ["edge", "init"]):
        args: Any = build_parser().parse_args(command)
        assert args.config == "/etc/vitalbridge/gateway.yaml"


def test_a_spool_that_cannot_be_opened_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    path = tmp_path / "gateway.yaml"
    path.write_text(f"gateway: home-1\nmqtt_url: mqtt://127.0.0.1:1\nspool: {blocker / 'spool.db'}\n")
    assert main(["edge", "run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vitalbridge edge run: {path}: spool: cannot open {blocker / 'spool.db'}: ")
    assert len(err.splitlines()) == 1


def test_a_vendor_decoder_reaches_the_gateway_through_its_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import device_profiles.registry
    from device_profiles.gatt.decoders import GATT_DECODERS

    vendor = _vendor_profiles(tmp_path)
    profile = vendor / "acme" / "strap.yaml"
    profile.write_text(profile.read_text().replace("decoder: gatt.heart_rate_measurement", "decoder: acme.strap_hr"))
    path = tmp_path / "gateway.yaml"
    path.write_text(f"gateway: home-1\nmqtt_url: mqtt://127.0.0.1:1\nspool: {tmp_path / 'spool.db'}\n"
                    "profile_dirs: [vendor]\ndevices:\n"
                    "  - {id: strap, patient: p, profile: acme.strap, transport: ble, address: 'C4:7F:51:0A:11:22'}\n")
    assert main(["edge", "run", "--config", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"vitalbridge edge run: {path}:6: devices[0].profile: profile acme.strap needs decoder 'acme.strap_hr', "
        "which no installed package provides; install the device vendor's package into the gateway's environment\n")

    class EntryPoint:  # what `pip install acme-vitalbridge` would add to the vitalbridge.decoders group
        def load(self) -> Any:
            return lambda registry: registry.add("acme.strap_hr", GATT_DECODERS["gatt.heart_rate_measurement"])

    monkeypatch.setattr(device_profiles.registry, "entry_points", lambda group: [EntryPoint()])
    agent = edge.gateway.build_agent(load_config(path))
    assert "acme.strap_hr" in agent.decoders
    agent.spool.close()
