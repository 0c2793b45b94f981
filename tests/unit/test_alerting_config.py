"""The alerting policy as people write it: recipients, the policy file through the service's settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.alerting import AlertingPolicy, PolicyRecipients, Recipient, parse_recipient
from cloud.service import CloudConfig, ConfigError


@given(st.text(max_size=80))
def test_any_recipient_text_parses_or_fails_with_one_clear_error(text: str) -> None:
    try:
        recipient = parse_recipient(text)
    except ValueError as exc:
        assert "neither an email address nor an http(s) URL" in str(exc)
        return
    assert recipient.channel in ("email", "webhook")
    assert parse_recipient(str(recipient).removeprefix("email:").removeprefix("webhook:")) == recipient


@pytest.mark.parametrize("text, expected", [
    ("dr.house@example.org", Recipient(channel="email", address="dr.house@example.org")),
    ("mailto:team@example.org", Recipient(channel="email", address="team@example.org")),
    ("https://hooks.example.org/vb?x=1", Recipient(channel="webhook", address="https://hooks.example.org/vb?x=1")),
])
def test_recipients_by_form(text: str, expected: Recipient) -> None:
    assert parse_recipient(text) == expected


def test_a_patients_own_recipients_take_the_place_of_the_defaults_role_by_role() -> None:
    policy = AlertingPolicy.model_validate({"recipients": {
        "*": {"doctor": ["gp@example.org"], "family": "family@example.org"},
        "p-7": {"doctor": ["cardio@example.org", "https://hooks.example.org/p7"]},
    }})
    directory = PolicyRecipients(policy)
    assert [r.address for r in directory.recipients("p-7", "doctor")] == [
        "cardio@example.org", "https://hooks.example.org/p7"]
    assert [r.address for r in directory.recipients("p-7", "family")] == ["family@example.org"]
    assert [r.address for r in directory.recipients("p-1", "doctor")] == ["gp@example.org"]
    assert directory.recipients("p-1", "care_team") == []


def test_the_policy_file_comes_from_the_environment_and_its_mistakes_name_it(tmp_path: Path) -> None:
    good = tmp_path / "alerting.yaml"
    good.write_text("steps:\n  - after_min: 0\n    notify: [doctor]\nrecipients:\n  '*':\n"
                    "    doctor: [dr@example.org]\nrepeat_min: {critical: 2}\n")
    config = CloudConfig.from_env({"VB_ALERTING_POLICY": str(good)})
    policy = config.alerting_context().policy
    assert [s.notify for s in policy.steps] == [["doctor"]] and policy.repeat_min == {"critical": 2}
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n  - after_min: -1\n    notify: [doctor]\n")
    with pytest.raises(ConfigError, match=r"VB_ALERTING_POLICY: .*bad\.yaml: steps\.0\.after_min: Input should be"):
        CloudConfig.from_env({"VB_ALERTING_POLICY": str(bad)}).alerting_context()
    with pytest.raises(ConfigError, match=r"VB_ALERTING_POLICY: .*cannot read it"):
        CloudConfig.from_env({"VB_ALERTING_POLICY": str(tmp_path / "missing.yaml")}).alerting_context()
    with pytest.raises(ConfigError, match="VB_WEBHOOK_SECRET"):
        CloudConfig.from_env({"VB_WEBHOOK_SECRET": "short"})
    smtp = CloudConfig.from_env({"VB_SMTP_HOST": "mail.example.org", "VB_SMTP_PORT": "587", "VB_SMTP_STARTTLS": "1"})
    assert (smtp.smtp_host, smtp.smtp_port, smtp.smtp_starttls) == ("mail.example.org", 587, True)
