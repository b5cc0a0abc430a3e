"""``DELETE /v1/profiles/{customer_id}``: who may erase, what is refused, what is logged."""

from __future__ import annotations

import logging

import pytest
from starlette.testclient import TestClient

from cdpflow.secrets import Secret
from cdpflow.topics import BrokerUnavailableError
from profile_api.app import create_app
from profile_api.endpoints import customer_ref
from profile_api.materializer import Materializer
from profile_api.settings import ApiSettings
from state.store import MemoryProfileStore, StoredProfile

READ = "read-token-0123456789"
ADMIN = "admin-token-0123456789"
UNREACHABLE = "127.0.0.1:1"  # nothing listens on port 1: connection refused at once


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class FakeEraser:
    """Acknowledges at once, like a healthy broker; or fails, like a dead one."""

    def __init__(self, *, down: bool = False) -> None:
        self.requested: list[str] = []
        self.down = down

    def request(self, customer_id: str) -> str:
        if self.down:
            raise BrokerUnavailableError("no broker")
        self.requested.append(customer_id)
        return f"erase-{len(self.requested)}"


@pytest.fixture
def store() -> MemoryProfileStore:
    s = MemoryProfileStore()
    s.apply([("c-1", StoredProfile(customer_id="c-1", profile={"revision": 1},
                                   email="ada@example.com", segments=("vip",)))], {})  # fmt: skip
    return s


@pytest.fixture
def eraser() -> FakeEraser:
    return FakeEraser()


@pytest.fixture
def client_factory(store):
    clients: list[TestClient] = []

    def make(eraser=None, admin: tuple[str, ...] = (ADMIN,), **kw) -> TestClient:
        settings = ApiSettings(tokens=(Secret(READ),),
                               admin_tokens=tuple(Secret(a) for a in admin), **kw)  # fmt: skip
        client = TestClient(create_app(settings, store=store, eraser=eraser))
        clients.append(client.__enter__())
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [({}, 401, "unauthorized"),
     (bearer("wrong-token-0123456789"), 401, "unauthorized"),
     ({"Authorization": ADMIN}, 401, "unauthorized"),  # no scheme
     ({"Authorization": f"Basic {ADMIN}"}, 401, "unauthorized"),
     (bearer(READ), 403, "forbidden"),
     (bearer(ADMIN), 202, None)],
)  # fmt: skip
def test_only_an_admin_token_erases(client_factory, eraser, store, headers, status, error) -> None:
    answer = client_factory(eraser).delete("/v1/profiles/c-1", headers=headers)
    assert answer.status_code == status, answer.text
    if error is None:
        assert answer.json() == {"status": "accepted", "event_id": "erase-1"}
        assert answer.headers["Cache-Control"] == "no-store"
        assert eraser.requested == ["c-1"]
        assert store.get("c-1") is None  # the local copy goes at once
        assert store.find_by_email("ada@example.com") is None
        assert store.segment_members("vip", after=None, limit=10) == []
    else:
        assert answer.json()["error"] == error
        assert eraser.requested == []
        assert store.get("c-1") is not None
    if status == 401:
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_admin_token_cannot_read(client_factory, eraser) -> None:
    client = client_factory(eraser)
    for answer in (client.get("/v1/profiles/c-1", headers=bearer(ADMIN)),
                   client.post("/v1/profiles/lookup", json={"email": "ada@example.com"},
                               headers=bearer(ADMIN)),
                   client.get("/v1/segments/vip/members", headers=bearer(ADMIN))):  # fmt: skip
        assert answer.status_code == 403
        assert answer.json()["error"] == "forbidden"
    assert client.get("/v1/profiles/c-1", headers=bearer(READ)).status_code == 200


def test_erasure_is_disabled_without_an_admin_token(client_factory, store) -> None:
    client = client_factory(None, admin=())
    answer = client.delete("/v1/profiles/c-1", headers=bearer(READ))
    assert answer.status_code == 403
    assert answer.json()["error"] == "erasure_disabled"
    assert "CDPFLOW_API_ADMIN_TOKENS" in answer.json()["detail"]
    assert client.delete("/v1/profiles/c-1").status_code == 401  # anonymous: nothing told
    assert store.get("c-1") is not None


def test_erasing_twice_or_an_unknown_id_is_accepted(client_factory, eraser) -> None:
    client = client_factory(eraser)
    for customer_id in ("c-1", "c-1", "never-seen"):
        answer = client.delete(f"/v1/profiles/{customer_id}", headers=bearer(ADMIN))
        assert answer.status_code == 202
    assert eraser.requested == ["c-1", "c-1", "never-seen"]


@pytest.mark.parametrize("path", ["", "%FF", "c%C3", "x" * 513])
def test_ids_that_cannot_be_ids_are_refused(client_factory, eraser, store, path) -> None:
    """Empty, not UTF-8 once percent-decoded, or over 512 bytes."""
    answer = client_factory(eraser).delete(f"/v1/profiles/{path}", headers=bearer(ADMIN))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "bad_request"
    assert eraser.requested == []
    assert store.get("c-1") is not None


@pytest.mark.parametrize(
    ("path", "customer_id"),
    [("%20", " "), ("%20c-1", " c-1"), ("c-1%20", "c-1 "), ("c%00-1", "c\x00-1"),
     ("c%0A1", "c\n1"), ("c%7F1", "c\x7f1"), ("%E2%80%8B", "\u200b"), ("team%2F42", "team/42"),
     ("a%3Fb%23c%25d%2B", "a?b#c%d+"), ("x" * 512, "x" * 512)],
)  # fmt: skip
def test_any_id_the_collector_accepts_is_erasable(
    client_factory, eraser, path, customer_id
) -> None:
    """Issue 17: ids are opaque strings. These were refused before (blank, edge spaces,
    control characters), yet the collector accepts them as a ``userId``."""
    answer = client_factory(eraser).delete(f"/v1/profiles/{path}", headers=bearer(ADMIN))
    assert answer.status_code == 202, answer.text
    assert eraser.requested == [customer_id]


def test_an_id_with_unicode_and_spaces_inside_is_erasable(client_factory, eraser) -> None:
    answer = client_factory(eraser).delete("/v1/profiles/J%C3%BCrgen%20M", headers=bearer(ADMIN))
    assert answer.status_code == 202
    assert eraser.requested == ["Jürgen M"]


def test_broker_down_is_503_with_retry_after_and_keeps_the_copy(client_factory, store) -> None:
    """The real producer, pointed at a port where nothing listens."""
    client = client_factory(None, bootstrap_servers=UNREACHABLE, erase_timeout_s=0.3,
                            erase_retry_after_s=7)  # fmt: skip
    answer = client.delete("/v1/profiles/c-1", headers=bearer(ADMIN))
    assert answer.status_code == 503
    assert answer.json()["error"] == "broker_unavailable"
    assert answer.headers["Retry-After"] == "7"
    assert UNREACHABLE not in answer.text
    # Not acknowledged, so not erased here either: the client retries.
    assert store.get("c-1") is not None


def test_logs_name_a_pseudonym_never_the_customer_id(client_factory, caplog) -> None:
    secret_id = "ada.lovelace@example.com"  # ids are sometimes emails
    caplog.set_level(logging.DEBUG)
    ok = client_factory(FakeEraser()).delete(f"/v1/profiles/{secret_id}", headers=bearer(ADMIN))
    down = client_factory(FakeEraser(down=True)).delete(
        f"/v1/profiles/{secret_id}", headers=bearer(ADMIN)
    )
    assert (ok.status_code, down.status_code) == (202, 503)
    assert secret_id not in ok.text + down.text
    # Everything the server side logged (httpx's lines are the test client's own).
    server = "\n".join(r.getMessage() for r in caplog.records if r.name != "httpx")
    assert secret_id not in server
    assert ADMIN not in server
    assert server.count(customer_ref(secret_id)) == 2


def test_the_materializer_erases_at_once_and_tells_on_erase(store) -> None:
    erased: list[str] = []
    feed = Materializer(store, UNREACHABLE, "unused", on_erase=erased.append)
    try:
        feed.erase("c-1")
        feed.erase("c-1")  # idempotent
    finally:
        feed.close()
    assert store.get("c-1") is None
    assert store.find_by_email("ada@example.com") is None
    assert erased == ["c-1", "c-1"]
