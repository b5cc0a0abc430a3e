"""The profile API over the in-memory store, through Starlette's test client."""

from __future__ import annotations

import pytest
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
