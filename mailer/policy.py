"""Whether, where and when a trigger becomes an email: one pure decision.

Rules, in order (the README's "From event to inbox" says the same):

1. **No profile, no email.** A customer the profile store does not know — never seen, or
   erased (tombstone) — has no consent on record, so nothing is sent (``no_profile``).
2. **Consent wins.** ``unsubscribed`` in the profile view, or an explicit
   ``preferences.email_consent`` of ``false``, skips (``unsubscribed`` / ``no_consent``).
3. **An address is needed**: the profile's current email, else its ``email`` attribute,
   else the trigger's (``no_address``). The first one present is the only one tried: it
   must be one valid address (:func:`~mailer.addresses.recipient`), else the trigger is
   refused (``invalid_recipient``, naming the field) and becomes a dead letter; a bad
   address never falls back to another one.
4. **Stale triggers are dropped**: emitted more than ``max_delay_ms`` before now
   (a mailer catching up on a long backlog must not spam) (``stale``).
5. **Global frequency cap**: at most ``cap_count`` triggered emails per customer within
   the trailing ``cap_window_ms``, across rules (``frequency_cap``).
6. **Quiet hours** in the customer's time zone, when known: the email is deferred to the
   end of the quiet hours, where the whole decision is taken again.

``now_ms`` is wall-clock time (the worker's clock), passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailer.addresses import InvalidRecipient, recipient
from mailer.quiet_hours import QuietHours, quiet_until
from state.store import StoredProfile

__all__ = ["Decision", "Defer", "PolicyConfig", "Refuse", "Send", "Skip", "decide"]

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    cap_count: int = 1
    cap_window_ms: int = DAY_MS
    quiet_hours: QuietHours | None = field(default_factory=lambda: QuietHours.parse("21:00-08:00"))
    max_delay_ms: int = DAY_MS


@dataclass(frozen=True, slots=True)
class Send:
    to: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Skip:
    reason: str


@dataclass(frozen=True, slots=True)
class Defer:
    until_ms: int


@dataclass(frozen=True, slots=True)
class Refuse:
    """Not sendable, and not the customer's choice: a dead letter. ``detail`` names the
    field and the rule broken, never the value."""

    reason: str
    detail: str
    error_type: str = "InvalidRecipient"


Decision = Send | Skip | Defer | Refuse


def decide(
    trigger: Mapping[str, Any],
    profile: StoredProfile | None,
    recent_sends: Sequence[int],
    now_ms: int,
    cfg: PolicyConfig,
) -> Decision:
    """Decide for ``trigger`` (a decoded ``cdp.Trigger``, times in ms) given the
    customer's ``profile`` and the times of their recent triggered emails."""
    if profile is None:
        return Skip("no_profile")
    if profile.unsubscribed:
        return Skip("unsubscribed")
    preferences = profile.profile.get("preferences")
    if isinstance(preferences, dict) and preferences.get("email_consent") is False:
        return Skip("no_consent")
    try:
        to = _address(profile, trigger)
    except InvalidRecipient as exc:
        return Refuse(exc.reason, str(exc), type(exc).__name__)
    if to is None:
        return Skip("no_address")
    if now_ms - int(trigger.get("emitted_at") or 0) > cfg.max_delay_ms:
        return Skip("stale")
    window_start = now_ms - cfg.cap_window_ms
    if sum(1 for t in recent_sends if window_start < t <= now_ms) >= cfg.cap_count:
        return Skip("frequency_cap")
    excerpt = trigger.get("profile") or {}
    tz = profile.timezone or excerpt.get("timezone")
    until = quiet_until(now_ms, tz, cfg.quiet_hours)
    if until is not None:
        return Defer(until)
    return Send(to)


def _address(profile: StoredProfile, trigger: Mapping[str, Any]) -> str | None:
    """The first address present, validated; ``None`` when there is none at all."""
    attrs = profile.profile.get("attributes")
    for field_name, candidate in (
        ("profile.email", profile.email),
        ("profile.attributes.email", attrs.get("email") if isinstance(attrs, dict) else None),
        ("trigger.email", trigger.get("email")),
    ):
        if candidate is None or (isinstance(candidate, str) and not candidate.strip()):
            continue
        return recipient(candidate, field_name)
    return None
