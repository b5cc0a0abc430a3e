"""``/v1/unsubscribe``: GET shows a page and writes nothing; POST with a valid token
writes one ``email_event`` ``unsubscribed`` after the sink stored it; bad tokens write
nothing and say why."""

from __future__ import annotations

import pytest

from cdpflow.secrets import Secret
from collector.exceptions import BrokerUnavailable
from collector.settings import CollectorSettings
from mailer.unsubscribe import event_id_for, sign_token
from tests.collector.conftest import NOW_MS

OLD, NEW = Secret("o" * 32), Secret("n" * 40)
NOW_S = NOW_MS // 1000
DAY = 86_400


def token(secret: Secret = NEW, *, expires_s: int = NOW_S + DAY, customer: str = "c-7") -> str:
    return sign_token((secret,), customer, "t-abc", expires_s=expires_s)


@pytest.fixture
def client(client_factory):
    return client_factory(unsubscribe_secrets=(NEW, OLD))


def test_post_writes_one_unsubscribed_event_for_the_tokens_customer(client, sink) -> None:
    t = token()
    answer = client.post(f"/v1/unsubscribe?t={t}", data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    assert answer.json() == {"success": True, "unsubscribed": True}
    assert answer.headers["cache-control"] == "no-store"
    (event,) = sink.decoded(CollectorSettings().topics.events)
    assert event["event_type"] == "email_event"
    assert event["customer_id"] == "c-7"
    assert event["event_id"] == event_id_for(t)
    assert event["source"] == "unsubscribe"
    assert event["payload"]["action"] == "unsubscribed"
    assert event["payload"]["message_id"] == "t-abc"
    assert (sink.sent[0].key, sink.sent[0].topic) == (b"c-7", "cdp.events")


def test_a_replayed_post_writes_the_same_event_id(client, sink) -> None:
    t = token()
    for _ in range(2):
        assert client.post(f"/v1/unsubscribe?t={t}").status_code == 200
    ids = [e["event_id"] for e in sink.decoded("cdp.events")]
    assert ids == [event_id_for(t)] * 2  # the dataflow drops the second as a duplicate


def test_the_old_secret_still_verifies_during_a_rotation(client, sink) -> None:
    assert client.post(f"/v1/unsubscribe?t={token(OLD)}").status_code == 200
    assert len(sink.sent) == 1


def test_get_shows_a_form_that_posts_the_token_and_writes_nothing(client, sink) -> None:
    t = token()
    answer = client.get(f"/v1/unsubscribe?t={t}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert f'<form method="post" action="/v1/unsubscribe?t={t}">' in answer.text
    assert "form-action 'self'" in answer.headers["content-security-policy"]
    assert "<script" not in answer.text
    assert sink.sent == []


def test_a_browser_post_gets_a_page(client, sink) -> None:
    answer = client.post(f"/v1/unsubscribe?t={token()}", headers={"Accept": "text/html"})
    assert answer.status_code == 200
    assert "You are unsubscribed" in answer.text
    assert len(sink.sent) == 1


@pytest.mark.parametrize(
    ("make", "status", "reason"),
    [
        (lambda: token(Secret("x" * 32)), 403, "invalid_signature"),
        (lambda: token(expires_s=NOW_S), 403, "expired_token"),
        (lambda: token()[:-2] + ("AA" if not token().endswith("AA") else "BB"), 403,
         "invalid_signature"),
        (lambda: token().replace("1.", "2.", 1), 400, "malformed_token"),
        (lambda: "", 400, "malformed_token"),
        (lambda: "1.%%%.abc", 400, "malformed_token"),
        (lambda: "1." + "A" * 800 + ".AAAA", 400, "malformed_token"),
    ],
)  # fmt: skip
def test_bad_tokens_write_nothing_and_say_why(client, sink, make, status, reason) -> None:
    for method in ("get", "post"):
        answer = getattr(client, method)("/v1/unsubscribe", params={"t": make()})
        assert answer.status_code == status
        assert answer.json()["reason"] == reason
        assert "c-7" not in answer.text  # the customer id is not echoed
    assert sink.sent == []


def test_a_changed_customer_id_breaks_the_signature(client, sink) -> None:
    version, _payload, mac = token(customer="c-7").split(".")
    _, other_payload, _ = token(customer="c-8").split(".")
    answer = client.post(f"/v1/unsubscribe?t={version}.{other_payload}.{mac}")
    assert answer.status_code == 403
    assert sink.sent == []


def test_broker_down_is_503_and_not_a_success(client, sink) -> None:
    sink.fail_with = BrokerUnavailable("kafka did not acknowledge", retry_after=5)
    answer = client.post(f"/v1/unsubscribe?t={token()}")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"


def test_not_routed_without_a_secret(client_factory, sink) -> None:
    plain = client_factory()
    assert plain.post(f"/v1/unsubscribe?t={token()}").status_code == 404
    assert sink.sent == []


def test_the_secret_setting(monkeypatch) -> None:
    from cdpflow.errors import ConfigError

    env = {"CDPFLOW_WRITE_KEYS": "k"}
    assert CollectorSettings.from_env(env).unsubscribe_secrets == ()
    both = CollectorSettings.from_env(
        {**env, "CDPFLOW_UNSUBSCRIBE_SECRET": f"{'n' * 32},{'o' * 32}"}
    )
    assert [s.reveal() for s in both.unsubscribe_secrets] == ["n" * 32, "o" * 32]
    with pytest.raises(ConfigError, match="at least 32 characters") as short:
        CollectorSettings.from_env({**env, "CDPFLOW_UNSUBSCRIBE_SECRET": "short"})
    assert "short" not in str(short.value)
    with pytest.raises(ConfigError, match="at most two"):
        CollectorSettings.from_env(
            {**env, "CDPFLOW_UNSUBSCRIBE_SECRET": ",".join(c * 32 for c in "abc")}
        )


def test_writes_are_rate_limited(client_factory, sink) -> None:
    limited = client_factory(unsubscribe_secrets=(NEW,), rate_limit_per_s=1, rate_burst=1)
    assert limited.post(f"/v1/unsubscribe?t={token()}").status_code == 200
    answer = limited.post(f"/v1/unsubscribe?t={token()}")
    assert answer.status_code == 429
    assert answer.headers["retry-after"]
    assert len(sink.sent) == 1


def test_a_browser_with_a_bad_link_gets_a_page_and_nothing_is_written(client, sink) -> None:
    expired = token(expires_s=NOW_S)
    for method in ("get", "post"):
        answer = getattr(client, method)(f"/v1/unsubscribe?t={expired}",
                                         headers={"Accept": "text/html"})  # fmt: skip
        assert answer.status_code == 403
        assert "This unsubscribe link does not work" in answer.text
    assert sink.sent == []
