"""The profile API over the in-memory store, through Starlette's test client."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from starlette.requests import Request
from starlette.testclient import TestClient

from cdpflow.secrets import Secret
from profile_api.app import create_app
from profile_api.settings import ApiSettings
from state.store import MemoryProfileStore, StoredProfile

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def store() -> MemoryProfileStore:
    return MemoryProfileStore()


@pytest.fixture
def client(store):
    settings = ApiSettings(tokens=(Secret("other-token-0123456789"), Secret(TOKEN)),
                           max_page_size=50)  # fmt: skip
    with TestClient(create_app(settings, store=store)) as c:
        yield c


def _profile(customer_id: str, **kw) -> StoredProfile:
    return StoredProfile(customer_id=customer_id, profile={"revision": 3}, **kw)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN},
     {"Authorization": f"Basic {TOKEN}"}],
)  # fmt: skip
def test_v1_routes_need_a_configured_bearer_token(client, headers) -> None:
    answer = client.get("/v1/profiles/c-1", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_health_needs_no_token(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_profile_by_id(client, store) -> None:
    stored = _profile("c-1", email="ada@example.com", tags=("vip",), lifecycle="active")
    store.apply([("c-1", stored)], {})
    answer = client.get("/v1/profiles/c-1", headers=AUTH)
    assert answer.status_code == 200
    assert answer.json() == stored.to_json()
    assert answer.json()["tags"] == ["vip"]
    assert answer.headers["Cache-Control"] == "no-store"


def test_unknown_profile_is_404_without_echoing_the_id(client) -> None:
    answer = client.get("/v1/profiles/secret-id", headers=AUTH)
    assert answer.status_code == 404
    assert "secret-id" not in answer.text


def test_lookup_by_email_in_the_body(client, store) -> None:
    store.apply([("c-1", _profile("c-1", email="ada@example.com"))], {})
    answer = client.post("/v1/profiles/lookup", json={"email": "ADA@example.com"}, headers=AUTH)
    assert answer.status_code == 200
    assert answer.json()["customer_id"] == "c-1"
    missing = client.post("/v1/profiles/lookup", json={"email": "x@example.com"}, headers=AUTH)
    assert missing.status_code == 404
    assert "x@example.com" not in missing.text


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"email": 3}', b'{"email": "nope"}'])
def test_lookup_refuses_a_bad_body(client, body) -> None:
    answer = client.post("/v1/profiles/lookup", content=body, headers=AUTH)
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_request"


def test_segment_members_page_with_a_cursor(client, store) -> None:
    store.apply([(c, _profile(c, segments=("vip",))) for c in ("c-3", "c-1", "c-2")], {})
    first = client.get("/v1/segments/vip/members?limit=2", headers=AUTH).json()
    assert first == {"segment": "vip", "members": ["c-1", "c-2"], "next_cursor": "c-2"}
    second = client.get("/v1/segments/vip/members?limit=2&cursor=c-2", headers=AUTH).json()
    assert second == {"segment": "vip", "members": ["c-3"], "next_cursor": None}


@pytest.mark.parametrize("limit", ["0", "51", "-1", "ten"])
def test_segment_members_refuse_a_bad_limit(client, limit) -> None:
    answer = client.get(f"/v1/segments/vip/members?limit={limit}", headers=AUTH)
    assert answer.status_code == 400


def test_lookup_answers_the_first_claimant_not_an_upper_case_latecomer(client, store) -> None:
    """Issue 16, repro 10: an attacker's identify with the victim's address in upper case."""
    store.apply([("victim", _profile("victim", email="ada@example.com", event_time=1_000))], {})
    alone = client.post("/v1/profiles/lookup", json={"email": "ada@example.com"}, headers=AUTH)
    assert (alone.json()["customer_id"], alone.json()["shared"]) == ("victim", False)
    attacker = _profile("attacker", email="ADA@EXAMPLE.COM", event_time=5_000)
    store.apply([("attacker", attacker)], {})
    for asked in ("ada@example.com", "ADA@EXAMPLE.COM"):
        answer = client.post("/v1/profiles/lookup", json={"email": asked}, headers=AUTH).json()
        assert answer["customer_id"] == "victim"
        assert (answer["shared"], answer["claimants"]) == (True, 2)
        assert "attacker" not in str(answer)


@pytest.mark.parametrize("limit", ["²", "\uff11", " 5", "5 ", "1_0", "+5", "9" * 30, ""])
def test_segment_members_refuse_a_limit_that_is_not_ascii_digits(client, limit) -> None:
    answer = client.get("/v1/segments/vip/members", params={"limit": limit}, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "bad_request"
    assert "limit" in answer.json()["detail"]


def test_segment_members_refuse_a_cursor_longer_than_an_id(client) -> None:
    answer = client.get("/v1/segments/vip/members", params={"cursor": "c" * 513}, headers=AUTH)
    assert answer.status_code == 400
    assert "cursor" in answer.json()["detail"]


def test_lookup_refuses_a_body_over_the_limit_with_413(store) -> None:
    settings = ApiSettings(tokens=(Secret(TOKEN),), max_body_bytes=256)
    with TestClient(create_app(settings, store=store)) as client:
        big = {"email": "ada@example.com", "pad": "x" * 300}
        declared = client.post("/v1/profiles/lookup", json=big, headers=AUTH)
        streamed = client.post(
            "/v1/profiles/lookup", content=iter([b'{"email": "a@b.example", "p": "', b"x" * 300]),
            headers=AUTH,
        )  # fmt: skip
    for answer in (declared, streamed):
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"] == "payload_too_large"


def test_a_body_that_does_not_arrive_in_time_is_408() -> None:
    from profile_api.endpoints import Services, _body
    from profile_api.exceptions import RequestTimeout

    async def receive() -> dict:
        await asyncio.sleep(10)
        return {"type": "http.request", "body": b"", "more_body": False}

    request = Request({"type": "http", "method": "POST", "headers": [], "path": "/"}, receive)
    services = Services(MemoryProfileStore(), lambda: True, 10, body_timeout_s=0.05)
    with pytest.raises(RequestTimeout):
        asyncio.run(_body(request, services))


def test_unknown_routes_and_methods_answer_json(client) -> None:
    for answer, status in ((client.get("/nope"), 404), (client.get("/v1/nope", headers=AUTH), 404),
                           (client.put("/v1/profiles/c-1", headers=AUTH), 405)):  # fmt: skip
        assert answer.status_code == status
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["error"] in ("not_found", "method_not_allowed")


def test_a_bug_is_a_500_in_json_without_the_message(caplog) -> None:
    class Broken(MemoryProfileStore):
        def get(self, customer_id):
            raise RuntimeError(f"exploded on {customer_id}")

    settings = ApiSettings(tokens=(Secret(TOKEN),))
    with TestClient(create_app(settings, store=Broken()), raise_server_exceptions=False) as c:
        answer = c.get("/v1/profiles/secret-id", headers=AUTH)
    assert answer.status_code == 500
    assert answer.json()["error"] == "internal_error"
    assert "secret-id" not in answer.text
    assert "secret-id" not in "\n".join(r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("path", "customer_id"),
    [("team%2F42", "team/42"), ("a%3Fb%23c", "a?b#c"), ("100%25", "100%"),
     ("J%C3%BCrgen%20M", "Jürgen M"), ("%F0%9F%98%80", "😀"), ("a+b", "a+b"),
     ("lookup", "lookup"), ("x%0Ay", "x\ny")],
)  # fmt: skip
def test_any_id_is_read_percent_encoded_in_the_path(client, store, path, customer_id) -> None:
    """Issue 17, repro 4: ``GET /v1/profiles/team%2F42`` was a plain-text 404."""
    store.apply([(customer_id, _profile(customer_id))], {})
    answer = client.get(f"/v1/profiles/{path}", headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.json()["customer_id"] == customer_id


def test_an_id_that_is_not_utf8_is_400(client) -> None:
    answer = client.get("/v1/profiles/%FF", headers=AUTH)
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_request"


def test_a_segment_the_rules_do_not_define_is_404(store) -> None:
    store.apply([("c-1", _profile("c-1", segments=("vip",)))], {})
    settings = ApiSettings(tokens=(Secret(TOKEN),), segments=frozenset({"vip", "empty"}))
    with TestClient(create_app(settings, store=store)) as client:
        assert client.get("/v1/segments/vip/members", headers=AUTH).json()["members"] == ["c-1"]
        empty = client.get("/v1/segments/empty/members", headers=AUTH)
        unknown = client.get("/v1/segments/vip_typo/members", headers=AUTH)
    assert (empty.status_code, empty.json()["members"]) == (200, [])
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "not_found"


def test_times_in_answers_are_iso_8601_utc(client, store) -> None:
    stored = _profile("c-1", event_time=1_700_000_000_123, emitted_at=1_700_000_001_000)
    store.apply([("c-1", stored)], {})
    answer = client.get("/v1/profiles/c-1", headers=AUTH).json()
    assert answer["event_time"] == "2023-11-14T22:13:20.123Z"
    assert answer["emitted_at"] == "2023-11-14T22:13:21.000Z"
    parsed = datetime.fromisoformat(answer["event_time"])
    assert parsed == datetime(2023, 11, 14, 22, 13, 20, 123_000, tzinfo=UTC)


def test_metrics_need_no_token_and_name_no_customer(client, store) -> None:
    store.apply([("secret-id", _profile("secret-id"))], {})
    client.get("/v1/profiles/secret-id", headers=AUTH)
    client.get("/v1/profiles/unknown-id", headers=AUTH)
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert 'cdpflow_profile_api_requests_total{endpoint="profile",status="200"} 1.0' in text
    assert 'cdpflow_profile_api_requests_total{endpoint="profile",status="404"} 1.0' in text
    assert "cdpflow_profile_api_ready 1.0" in text
    assert "secret-id" not in text
