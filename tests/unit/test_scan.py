"""`edge scan`: pure matching of advertisements to profiles, and the no-adapter edge."""

from __future__ import annotations

from pathlib import Path

import pytest
from bleak.exc import BleakError

from device_profiles import DeviceProfile, load_library, load_profile
from edge import scan
from edge.scan import Advertisement, BluetoothUnavailableError, ScanMatch, format_matches, match_advertisements

HR_SERVICE = "0000180d-0000-1000-8000-00805f9b34fb"
PLX_SERVICE = "00001822-0000-1000-8000-00805f9b34fb"


def _profile(root: Path, model: str, match: str) -> DeviceProfile:
    path = root / "acme" / f"{model}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""
schema_version: 1
id: acme.{model}
vendor: Acme
model: {model}
streams:
  heart_rate: {{unit: "/min"}}
transport:
  ble:
    match: {match}
    characteristics:
      - {{name: hr, service: "180d", uuid: "2a37", mode: notify, decoder: gatt.heart_rate_measurement}}
examples:
  - {{hex: "0048", expect: {{samples: [{{metric: heart_rate, value: 72}}]}}}}
""")
    return load_profile(path)


@pytest.fixture
def profiles(tmp_path: Path) -> dict[str, DeviceProfile]:
    found = [
        _profile(tmp_path, "any_hr", '{service_uuids: ["180d"]}'),
        _profile(tmp_path, "band", '{names: ["ACME Band*"], service_uuids: ["180d"]}'),
        _profile(tmp_path, "named", '{names: ["ACME-??"]}'),
    ]
    return {p.id: p for p in found}


def test_advertisement_uuids_are_normalised_and_sorted() -> None:
    adv = Advertisement.create("AA:BB:CC:DD:EE:FF", "", ["1822", HR_SERVICE.upper(), "180D"], -60)
    assert adv == Advertisement("AA:BB:CC:DD:EE:FF", None, (HR_SERVICE, PLX_SERVICE), -60)


def test_a_name_or_a_service_matches_and_the_most_specific_profile_comes_first(
        profiles: dict[str, DeviceProfile]) -> None:
    hr_band = Advertisement.create("01:00:00:00:00:01", "ACME Band 2", ["180d"])
    hr_other = Advertisement.create("01:00:00:00:00:02", "Polar H10", [HR_SERVICE])
    named = Advertisement.create("01:00:00:00:00:03", "ACME-42", [])
    nothing = Advertisement.create("01:00:00:00:00:04", None, ["1822"])
    # A name or an advertised service is enough (devices leave one out of some advertisements);
    # the profile that recognises the device by name comes first.
    assert scan.match_profiles(hr_band, profiles) == ["acme.band", "acme.any_hr"]
    assert scan.match_profiles(hr_other, profiles) == ["acme.any_hr", "acme.band"]
    assert scan.match_profiles(Advertisement.create("x", "ACME Band 3", []), profiles) == ["acme.band"]
    assert scan.match_profiles(named, profiles) == ["acme.named"]
    assert scan.match_profiles(nothing, profiles) == []
    assert scan.match_profiles(Advertisement.create("x", "ACME-421", []), profiles) == []
    assert scan.match_profiles(Advertisement.create("x", "acme-42", []), profiles) == []  # names are case-sensitive


def test_serial_profiles_never_match_and_the_shipped_library_knows_standard_services() -> None:
    library = load_library()
    hr = Advertisement.create("01:00:00:00:00:01", "Strap", ["180d"])
    matched = scan.match_profiles(hr, library)
    assert "generic.heart_rate_strap" in matched
    assert all(library[profile_id].ble is not None for profile_id in matched)
    assert "nonin.xpod" not in scan.match_profiles(Advertisement.create("x", "Xpod", []), library)


def test_matched_devices_come_first_then_by_signal_strength(profiles: dict[str, DeviceProfile]) -> None:
    far = Advertisement.create("01:00:00:00:00:01", "Polar", ["180d"], -90)
    near = Advertisement.create("01:00:00:00:00:02", "ACME-01", [], -40)
    unknown = Advertisement.create("01:00:00:00:00:03", "TV", [], -30)
    silent = Advertisement.create("01:00:00:00:00:04", None, ["180d"], None)
    matches = match_advertisements([unknown, silent, far, near], profiles)
    assert matches == [
        ScanMatch(near, ("acme.named",)),
        ScanMatch(far, ("acme.any_hr", "acme.band")),
        ScanMatch(silent, ("acme.any_hr", "acme.band")),
        ScanMatch(unknown, ()),
    ]
    assert format_matches(matches[:2] + matches[3:]).splitlines() == [
        "ADDRESS               RSSI  NAME                     PROFILES",
        "01:00:00:00:00:02      -40  ACME-01                  acme.named",
        "01:00:00:00:00:01      -90  Polar                    acme.any_hr, acme.band",
        "01:00:00:00:00:03      -30  TV                       -",
    ]


async def test_no_bluez_or_no_adapter_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_dbus(_timeout_s: float) -> list[Advertisement]:
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(scan, "_bleak_discover", no_dbus)
    with pytest.raises(BluetoothUnavailableError, match=r"^cannot reach the system Bluetooth service .*: "
                                                        r"No such file or directory$"):
        await scan.scan_advertisements(0.1)

    async def no_adapter(_timeout_s: float) -> list[Advertisement]:
        raise BleakError("No Bluetooth adapters found.")

    monkeypatch.setattr(scan, "_bleak_discover", no_adapter)
    with pytest.raises(BluetoothUnavailableError, match=r"^No Bluetooth adapters found\.$"):
        await scan.scan_advertisements(0.1)


async def test_scan_returns_what_the_radio_heard(monkeypatch: pytest.MonkeyPatch) -> None:
    heard = [Advertisement.create("01:00:00:00:00:01", "Strap", ["180d"], -50)]

    async def discover(timeout_s: float) -> list[Advertisement]:
        assert timeout_s == 0.1
        return heard

    monkeypatch.setattr(scan, "_bleak_discover", discover)
    assert await scan.scan_advertisements(0.1) == heard
