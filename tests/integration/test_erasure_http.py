"""``DELETE /v1/profiles/{id}`` on a running ``cdpflow serve`` and the real broker: the
erasure event reaches ``cdp.events`` before the 202, the dataflow tombstones
``cdp.profiles``, and the profile store (the API's RocksDB) no longer has the profile."""

from __future__ import annotations

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
