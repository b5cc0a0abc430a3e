"""``DELETE /v1/profiles/{id}`` on a running ``cdpflow serve`` and the real broker: the
erasure event reaches ``cdp.events`` before the 202, the dataflow tombstones
``cdp.profiles``, and the profile store (the API's RocksDB) no longer has the profile."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from profile_api.endpoints import customer_ref
from profile_api.materializer import Materializer
from state.store import RocksProfileStore
from tests.conftest import T0, H
from tests.integration.conftest import read_topic, run_cdpflow, settings_env
from tests.integration.serve_process import serve, stop, wait_ready
from tests.mailer.smtp_server import free_port

READ = "integration-read-token-0123"
ADMIN = "integration-admin-token-0123"
TOKENS = {"CDPFLOW_API_TOKENS": READ, "CDPFLOW_API_ADMIN_TOKENS": ADMIN}
ERASED = "eve-erasure-http-7f3a"  # distinctive, so the log check below means something


def test_http_erasure_tombstones_the_topic_and_empties_the_store(
    kafka_settings, produce_events, json_event_factory, tmp_path
) -> None:
    j = json_event_factory
    env = settings_env(kafka_settings, CDPFLOW_SNAPSHOT_INTERVAL_S="0.5")
    recovery = ["--recovery-dir", str(tmp_path / "state")]
    produce_events(kafka_settings, [
        j("identify", T0, customer=ERASED, payload={"email": "eve@example.com"}),
        j(t=T0 + H, customer=ERASED),
        j("identify", T0, customer="ann", payload={"email": "ann@example.com"}),
    ])  # fmt: skip
    run_cdpflow(["run", "--until-end", *recovery], env)

    store_dir, port = tmp_path / "store", free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/v1/profiles/{ERASED}"
    proc = serve(kafka_settings, store_dir, port, "info", **TOKENS)
    try:
        wait_ready(base, proc)
        assert httpx.get(url, headers={"Authorization": f"Bearer {READ}"}).status_code == 200
        refused = httpx.delete(url, headers={"Authorization": f"Bearer {READ}"})
        assert refused.status_code == 403
        answer = httpx.delete(url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)
        assert answer.status_code == 202, answer.text
        event_id = answer.json()["event_id"]
        # Gone from the API at once, before the dataflow has even run.
        assert httpx.get(url, headers={"Authorization": f"Bearer {READ}"}).status_code == 404
    finally:
        err = stop(proc)
    assert ERASED not in err, "a customer id reached the logs"
    assert "example.com" not in err, "an address reached the logs"
    assert f"erasure {event_id} requested over HTTP for customer {customer_ref(ERASED)}" in err

    # 202 came after Kafka's ack: the erasure event is on the events topic, keyed like
    # the customer's other events.
    events = read_topic(kafka_settings, kafka_settings.topics.events)
    erasure = [(r, m) for _, r, m in events if r.get("event_id") == event_id]
    assert len(erasure) == 1
    record, msg = erasure[0]
    assert (msg.key(), record["customer_id"], record["event_type"]) == (
        ERASED.encode(), ERASED, "custom")  # fmt: skip

    run_cdpflow(["run", "--until-end", *recovery], env)
    profiles = read_topic(kafka_settings, kafka_settings.topics.profiles)
    eve = [name for name, _, m in profiles if m.key() == ERASED.encode()]
    assert "cdp.ProfileSnapshot" in eve[:-1]
    assert eve[-1] == "tombstone"
    assert any(m.key() == b"ann" for _, _, m in profiles)  # others untouched

    # The API, restarted, catches up with the topic (tombstone included) before it is ready.
    proc = serve(kafka_settings, store_dir, port, "info", **TOKENS)
    try:
        wait_ready(base, proc)
        ann = httpx.get(f"{base}/v1/profiles/ann", headers={"Authorization": f"Bearer {READ}"})
        assert ann.status_code == 200
        assert httpx.get(url, headers={"Authorization": f"Bearer {READ}"}).status_code == 404
    finally:
        stop(proc)
    store = RocksProfileStore(store_dir)
    feed = Materializer(store, kafka_settings.bootstrap_servers, kafka_settings.topics.profiles)
    try:
        feed.assign()
        assert feed.catch_up() == 0  # the API had read everything, the tombstone too
        assert store.get(ERASED) is None
        assert store.find_by_email("eve@example.com") is None
        assert store.get("ann") is not None
    finally:
        feed.close()
        store.close()


#: Reserved and unusual characters an id may hold: the collector takes any string.
ODD_IDS = ["team/42", "a?b#c", "100% sure", "Jürgen M/ü", "x/../y"]


def test_ids_with_reserved_characters_are_read_and_erased_over_http(
    kafka_settings, produce_events, json_event_factory, tmp_path
) -> None:
    """Issue 17, repro 4: ``GET /v1/profiles/team%2F42`` was a plain-text 404 on uvicorn."""
    j = json_event_factory
    env = settings_env(kafka_settings, CDPFLOW_SNAPSHOT_INTERVAL_S="0.5")
    recovery = ["--recovery-dir", str(tmp_path / "state")]
    produce_events(kafka_settings, [j("identify", T0, customer=c, payload={"first_name": "X"})
                                    for c in ODD_IDS])  # fmt: skip
    run_cdpflow(["run", "--until-end", *recovery], env)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    read, admin = {"Authorization": f"Bearer {READ}"}, {"Authorization": f"Bearer {ADMIN}"}
    proc = serve(kafka_settings, tmp_path / "store", port, "info", **TOKENS)
    try:
        wait_ready(base, proc)
        for customer_id in ODD_IDS:
            url = f"{base}/v1/profiles/{quote(customer_id, safe='')}"
            got = httpx.get(url, headers=read)
            assert got.status_code == 200, (customer_id, got.text)
            assert got.json()["customer_id"] == customer_id
        erased = ODD_IDS[0]
        answer = httpx.delete(f"{base}/v1/profiles/{quote(erased, safe='')}", headers=admin,
                              timeout=30)  # fmt: skip
        assert answer.status_code == 202, answer.text
        event_id = answer.json()["event_id"]
        gone = httpx.get(f"{base}/v1/profiles/{quote(erased, safe='')}", headers=read)
        assert gone.status_code == 404
        assert gone.headers["content-type"] == "application/json"
        # The unencoded form is the same id once the server decodes the path.
        assert httpx.get(f"{base}/v1/profiles/team/42", headers=read).status_code == 404
        assert httpx.get(f"{base}/v1/profiles/a%3Fb%23c", headers=read).status_code == 200
    finally:
        err = stop(proc)
    assert "team/42" not in err, "a customer id reached the logs"
    events = read_topic(kafka_settings, kafka_settings.topics.events)
    erasure = [r for _, r, _ in events if r.get("event_id") == event_id]
    assert [r["customer_id"] for r in erasure] == [erased]
