"""The pure decision: consent, address, staleness, frequency cap, quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailer.policy import DAY_MS, Defer, PolicyConfig, Refuse, Send, Skip, decide
from mailer.quiet_hours import QuietHours
from tests.mailer.conftest import NOW

NO_QUIET = PolicyConfig(quiet_hours=None)


def test_a_consenting_customer_with_an_address_gets_the_email(
    trigger_factory, stored_profile_factory
) -> None:
    decision = decide(trigger_factory(), stored_profile_factory(), [], NOW, NO_QUIET)
    assert decision == Send("ada@example.com")


@pytest.mark.parametrize(
    ("profile_kw", "reason"),
    [({"unsubscribed": True}, "unsubscribed"), ({"consent": False}, "no_consent")],
)
def test_consent_wins(trigger_factory, stored_profile_factory, profile_kw, reason) -> None:
    profile = stored_profile_factory(**profile_kw)
    assert decide(trigger_factory(), profile, [], NOW, NO_QUIET) == Skip(reason)


def test_no_profile_means_no_consent_known(trigger_factory) -> None:
    assert decide(trigger_factory(), None, [], NOW, NO_QUIET) == Skip("no_profile")


def test_the_profiles_current_address_wins_over_the_triggers(
    trigger_factory, stored_profile_factory
) -> None:
    profile = stored_profile_factory(email="ada@new.example")
    assert decide(trigger_factory(), profile, [], NOW, NO_QUIET) == Send("ada@new.example")
    nobody = stored_profile_factory(email=None)
    assert decide(trigger_factory(email=None), nobody, [], NOW, NO_QUIET) == Skip("no_address")
    assert decide(trigger_factory(), nobody, [], NOW, NO_QUIET) == Send("ada@example.com")


def test_a_trigger_emitted_longer_ago_than_the_max_delay_is_stale(
    trigger_factory, stored_profile_factory
) -> None:
    old = trigger_factory(emitted_at=NOW - DAY_MS - 1)
    assert decide(old, stored_profile_factory(), [], NOW, NO_QUIET) == Skip("stale")
    edge = trigger_factory(emitted_at=NOW - DAY_MS)
    assert isinstance(decide(edge, stored_profile_factory(), [], NOW, NO_QUIET), Send)


def test_frequency_cap_counts_sends_in_the_trailing_window(
    trigger_factory, stored_profile_factory
) -> None:
    cfg = PolicyConfig(cap_count=2, cap_window_ms=DAY_MS, quiet_hours=None)
    p, t = stored_profile_factory(), trigger_factory()
    assert isinstance(decide(t, p, [NOW - 1], NOW, cfg), Send)
    assert decide(t, p, [NOW - DAY_MS + 1, NOW - 1], NOW, cfg) == Skip("frequency_cap")
    # A send exactly one window ago no longer counts.
    assert isinstance(decide(t, p, [NOW - DAY_MS, NOW - 1], NOW, cfg), Send)


def _ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def test_quiet_hours_defer_to_their_end_in_the_customers_zone(
    trigger_factory, stored_profile_factory
) -> None:
    cfg = PolicyConfig(quiet_hours=QuietHours.parse("21:00-08:00"), max_delay_ms=2 * DAY_MS)
    now = _ms(2026, 11, 2, 22, 30)  # 23:30 in Berlin, 17:30 in New York
    berlin = stored_profile_factory(timezone="Europe/Berlin")
    t = trigger_factory(emitted_at=now)
    assert decide(t, berlin, [], now, cfg) == Defer(_ms(2026, 11, 3, 7, 0))
    assert isinstance(decide(t, stored_profile_factory(timezone="America/New_York"), [], now,
                             cfg), Send)  # fmt: skip


def test_the_triggers_time_zone_is_used_when_the_profile_has_none(
    trigger_factory, stored_profile_factory
) -> None:
    cfg = PolicyConfig(quiet_hours=QuietHours.parse("21:00-08:00"), max_delay_ms=2 * DAY_MS)
    now = _ms(2026, 11, 2, 22, 30)
    excerpt = {"email": None, "first_name": None, "timezone": "Europe/Berlin", "lifecycle": None,
               "tags": [], "segments": []}  # fmt: skip
    t = trigger_factory(emitted_at=now, profile=excerpt)
    assert isinstance(decide(t, stored_profile_factory(), [], now, cfg), Defer)
    unknown = trigger_factory(emitted_at=now, profile={**excerpt, "timezone": "Mars/Olympus"})
    assert isinstance(decide(unknown, stored_profile_factory(), [], now, cfg), Send)


@pytest.mark.parametrize(
    ("profile_email", "trigger_email", "field"),
    [("a@victim.example\r\nBcc: b@evil.example", None, "profile.email"),
     ("a@victim.example, b@evil.example", "ada@example.com", "profile.email"),
     (None, "a@victim.example, b@evil.example", "trigger.email")],
)  # fmt: skip
def test_an_invalid_address_is_refused_naming_its_field_without_falling_back(
    trigger_factory, stored_profile_factory, profile_email, trigger_email, field
) -> None:
    profile = stored_profile_factory(email=profile_email)  # the attribute too
    decision = decide(trigger_factory(email=trigger_email), profile, [], NOW, NO_QUIET)
    assert isinstance(decision, Refuse)
    assert decision.reason == "invalid_recipient"
    assert decision.detail.startswith(f"{field}: ")
    assert "victim" not in decision.detail


def test_an_invalid_address_is_refused_before_quiet_hours_defer_it(
    trigger_factory, stored_profile_factory
) -> None:
    quiet = PolicyConfig(quiet_hours=QuietHours.parse("00:00-23:59"))
    profile = stored_profile_factory(email="a@b.example\nBcc: c@d.example", timezone="UTC")
    assert isinstance(decide(trigger_factory(), profile, [], NOW, quiet), Refuse)
