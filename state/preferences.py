"""Preferences and consent, folded from ``preference_updated`` and email unsubscribes.

Every key is last-write-wins by event time (:mod:`state.lww`), so arrival order never
decides:

- ``values``: preference key -> string value (``PreferenceUpdated.preferences``).
- ``subscriptions``: topic -> subscribed (``PreferenceUpdated.subscriptions``).
- ``email_consent``: consent to marketing email; ``PreferenceUpdated.email_consent``
  sets it (``null`` leaves it), an ``email_event`` with action ``unsubscribed`` sets it
  to false. The customer is **unsubscribed** when it is false.

On equal event times *withdrawing* wins (false beats true) for consent and topic
subscriptions: consent wins. Absent keys are left unchanged. At most
``max_preferences`` preference keys and as many topics; beyond that the key written
longest ago is forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from state import lww
from state.config import ProfileConfig

__all__ = ["Preferences", "fold_preferences", "merge", "set_consent"]


def _withdrawal_first(value: bool) -> bool:
    """Rank for ties: ``False`` (withdrawn) ranks above ``True``."""
    return not value


@dataclass(slots=True)
class Preferences:
    """One customer's preferences, subscriptions and email consent, each with its time."""

    values: dict[str, tuple[str, int]] = field(default_factory=dict)
    subscriptions: dict[str, tuple[bool, int]] = field(default_factory=dict)
    email_consent: tuple[bool, int] | None = None

    @property
    def unsubscribed(self) -> bool:
        """Withdrew consent to marketing email (and has not given it again since)."""
        return self.email_consent is not None and not self.email_consent[0]

    def view(self) -> dict[str, Any]:
        return {
            "values": {k: v for k, (v, _) in sorted(self.values.items())},
            "subscriptions": {k: v for k, (v, _) in sorted(self.subscriptions.items())},
            "email_consent": None if self.email_consent is None else self.email_consent[0],
            "unsubscribed": self.unsubscribed,
        }

    def dump(self) -> tuple[Any, ...]:
        return (
            tuple(x for k, (v, t) in self.values.items() for x in (k, v, t)),
            tuple(x for k, (v, t) in self.subscriptions.items() for x in (k, v, t)),
            self.email_consent,
        )

    @classmethod
    def load(cls, snap: tuple[Any, ...] | list[Any]) -> Preferences:
        values, subs, consent = snap
        return cls(
            {k: (v, t) for k, v, t in zip(values[::3], values[1::3], values[2::3], strict=True)},
            {k: (v, t) for k, v, t in zip(subs[::3], subs[1::3], subs[2::3], strict=True)},
            None if consent is None else (consent[0], consent[1]),
        )


def set_consent(p: Preferences, consent: bool, t: int) -> None:
    """Record consent (or its withdrawal) to marketing email at event time ``t``.

    >>> p = Preferences()
    >>> set_consent(p, False, 5); set_consent(p, True, 5); p.unsubscribed
    True
    >>> set_consent(p, True, 6); p.unsubscribed
    False
    """
    if lww.wins(t, consent, p.email_consent, _withdrawal_first):
        p.email_consent = (consent, t)


def fold_preferences(p: Preferences, payload: dict[str, Any], t: int, cfg: ProfileConfig) -> None:
    """Apply one ``PreferenceUpdated`` payload at event time ``t``."""
    for key, value in (payload.get("preferences") or {}).items():
        lww.put(p.values, key, value, t, cfg.max_preferences)
    for topic, subscribed in (payload.get("subscriptions") or {}).items():
        lww.put(p.subscriptions, topic, bool(subscribed), t, cfg.max_preferences,
                _withdrawal_first)  # fmt: skip
    consent = payload.get("email_consent")
    if consent is not None:
        set_consent(p, bool(consent), t)


def merge(p: Preferences, other: Preferences, cfg: ProfileConfig) -> None:
    """Another key's preferences, subscriptions and consent into ``p``: every key last
    write wins by event time with the same tie rules (withdrawing wins a tie), so the
    result is what one customer who made both sides' writes would hold.

    >>> a, b = Preferences(), Preferences()
    >>> set_consent(a, True, 5); set_consent(b, False, 5); merge(a, b, ProfileConfig())
    >>> a.unsubscribed
    True
    """
    lww.merge(p.values, other.values, cfg.max_preferences)
    lww.merge(p.subscriptions, other.subscriptions, cfg.max_preferences, _withdrawal_first)
    if other.email_consent is not None:
        set_consent(p, *other.email_consent)
