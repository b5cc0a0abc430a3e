"""HMAC webhook signatures: generic (timestamped) and Shopify's."""

from __future__ import annotations

import pytest

from cdpflow.secrets import Secret
from collector.exceptions import Unauthorized
from collector.signatures import sign_generic, sign_shopify, verify_generic, verify_shopify

BODY = b'{"event_id":"e1"}'
NOW = 1_790_000_000
ROTATING = (Secret("old"), Secret("new"))


def check(signature: str, timestamp: int = NOW, body: bytes = BODY, now: float = NOW) -> None:
    verify_generic(ROTATING, str(timestamp), signature, body, now_s=now, tolerance_s=300)


@pytest.mark.parametrize("secret", [b"old", b"new"])
def test_either_secret_of_a_rotation_is_accepted(secret: bytes) -> None:
    check(sign_generic(secret, NOW, BODY))


def test_one_good_signature_among_several_is_enough() -> None:
    check("v1=00ff," + sign_generic(b"new", NOW, BODY))


@pytest.mark.parametrize("skew", [-300, 299, 300])
def test_timestamps_within_tolerance_pass(skew: int) -> None:
    check(sign_generic(b"new", NOW + skew, BODY), timestamp=NOW + skew)


@pytest.mark.parametrize("skew", [-301, 301, -86_400])
def test_stale_or_future_timestamps_fail_even_when_correctly_signed(skew: int) -> None:
    with pytest.raises(Unauthorized, match="tolerance"):
        check(sign_generic(b"new", NOW + skew, BODY), timestamp=NOW + skew)


def test_a_signature_for_another_timestamp_fails() -> None:
    with pytest.raises(Unauthorized, match="no valid signature"):
        check(sign_generic(b"new", NOW - 1, BODY), timestamp=NOW)


@pytest.mark.parametrize(
    "signature",
    [
        sign_generic(b"wrong", NOW, BODY),
        sign_generic(b"new", NOW, BODY + b" "),
        "v0=abc",
        "",
        "v1=",
    ],
)
def test_bad_signatures_fail(signature: str) -> None:
    with pytest.raises(Unauthorized):
        check(signature)


def test_missing_headers_fail() -> None:
    with pytest.raises(Unauthorized, match="required"):
        verify_generic(ROTATING, None, "v1=x", BODY, now_s=NOW, tolerance_s=300)
    with pytest.raises(Unauthorized, match="unix seconds"):
        verify_generic(ROTATING, "soon", "v1=x", BODY, now_s=NOW, tolerance_s=300)


def test_shopify_signature() -> None:
    verify_shopify(ROTATING, sign_shopify(b"old", BODY), BODY)
    verify_shopify(ROTATING, sign_shopify(b"new", BODY), BODY)
    for bad in (sign_shopify(b"other", BODY), sign_shopify(b"new", BODY + b"x"), "%%%", None):
        with pytest.raises(Unauthorized):
            verify_shopify(ROTATING, bad, BODY)


def test_secrets_do_not_show_in_repr() -> None:
    assert "new" not in repr(ROTATING)
    assert "old" not in str(ROTATING[0])
