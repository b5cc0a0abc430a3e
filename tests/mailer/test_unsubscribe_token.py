"""Unsubscribe tokens: round trip, rotation, expiry, and every kind of tampering."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdpflow.secrets import Secret
from mailer.unsubscribe import (
    TokenExpired,
    TokenForged,
    TokenMalformed,
    event_id_for,
    sign_token,
    verify_token,
)

A, B = Secret("a" * 32), Secret("b" * 32)
EXP = 1_800_000_000


def test_round_trip_and_a_compact_url_safe_token() -> None:
    t = sign_token((A,), "c-1", "0123456789abcdef0123456789abcdef", expires_s=EXP)
    assert len(t) < 100
    assert all(c.isalnum() or c in "-_." for c in t)
    claims = verify_token((A,), t, now_s=EXP - 1)
    assert (claims.customer_id, claims.trigger_id, claims.expires_s) == (
        "c-1", "0123456789abcdef0123456789abcdef", EXP)  # fmt: skip


@given(st.text(min_size=1, max_size=60), st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True))
def test_any_ids_round_trip(customer: str, trigger: str) -> None:
    t = sign_token((A,), customer, trigger, expires_s=EXP)
    claims = verify_token((A,), t, now_s=0)
    assert (claims.customer_id, claims.trigger_id) == (customer, trigger)


def test_rotation_new_signs_both_verify() -> None:
    old = sign_token((A,), "c-1", "t-1", expires_s=EXP)
    new = sign_token((B, A), "c-1", "t-1", expires_s=EXP)
    assert new != old
    for t in (old, new):
        assert verify_token((B, A), t, now_s=0).customer_id == "c-1"
    with pytest.raises(TokenForged):
        verify_token((B,), old, now_s=0)  # the old secret retired: its tokens stop


def test_expired_at_its_second() -> None:
    t = sign_token((A,), "c-1", "t-1", expires_s=EXP)
    with pytest.raises(TokenExpired):
        verify_token((A,), t, now_s=EXP)


def test_every_changed_character_is_refused() -> None:
    t = sign_token((A,), "c-1", "t-1", expires_s=EXP)
    for i, ch in enumerate(t):
        for other in {"A", "b", "-", "."} - {ch}:
            forged = t[:i] + other + t[i + 1 :]
            with pytest.raises((TokenForged, TokenMalformed)):
                verify_token((A,), forged, now_s=0)


def test_a_re_signed_payload_needs_the_secret() -> None:
    """Extending the expiry or changing the customer cannot keep the old signature."""
    _, payload, mac = sign_token((A,), "c-1", "t-1", expires_s=EXP).split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[0] = 0xFF  # expiry far in the future
    longer = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(TokenForged):
        verify_token((A,), f"1.{longer}.{mac}", now_s=0)


@pytest.mark.parametrize("bad", ["", "1", "1..", "1.abc", "1.abc.", "2.abc.def", "1.a b.c",
                                 "1.é.x", "1." + "A" * 800 + ".x"])  # fmt: skip
def test_malformed_tokens(bad: str) -> None:
    with pytest.raises(TokenMalformed):
        verify_token((A,), bad, now_s=0)


def test_no_secret_verifies_nothing_and_ids_must_fit() -> None:
    t = sign_token((A,), "c-1", "t-1", expires_s=EXP)
    with pytest.raises(TokenForged):
        verify_token((), t, now_s=0)
    with pytest.raises(ValueError, match="customer_id"):
        sign_token((A,), "x" * 256, "t-1", expires_s=EXP)
    with pytest.raises(ValueError, match="no unsubscribe secret"):
        sign_token((), "c-1", "t-1", expires_s=EXP)


def test_errors_never_show_the_token_or_ids() -> None:
    t = sign_token((A,), "cust-secret-id", "t-1", expires_s=EXP)
    for secrets, now in (((B,), 0), ((A,), EXP + 1)):
        with pytest.raises((TokenForged, TokenExpired)) as err:
            verify_token(secrets, t, now_s=now)
        assert "cust-secret-id" not in str(err.value)
        assert t not in str(err.value)


def test_event_id_is_a_function_of_the_token() -> None:
    t1 = sign_token((A,), "c-1", "t-1", expires_s=EXP)
    t2 = sign_token((A,), "c-1", "t-2", expires_s=EXP)
    assert event_id_for(t1) == event_id_for(t1) != event_id_for(t2)
