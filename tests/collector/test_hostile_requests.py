"""Slow, huge and odd requests (issue 16): a body deadline, authentication before any
budget is held, shares of the in-flight budget, items per batch, bounded answers and rate
costs, gzip with trailing bytes, JSON nested deeper than it can be written back.

The slow-connection tests run the app under a real uvicorn on loopback and dribble bytes
over sockets; the others use Starlette's TestClient.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import orjson
import pytest
import uvicorn
from starlette.testclient import TestClient

from collector.app import create_app
from collector.endpoints import _short
from collector.exceptions import Overloaded
from collector.gate import InFlightGate
from collector.intake import Rejected
from collector.settings import CollectorSettings
from tests.collector.conftest import NOW_MS, SERVER_KEY, RecordingSink, basic


def view(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": "c-1",
        "messageId": f"m-{i}",
        "event": "Product Viewed",
        "properties": {"product_id": "p-1", "category": "shoes"},
        **extra,
    }


# --- a real server on loopback -----------------------------------------------------------


class Server:
    """The app under uvicorn in a thread, on a free loopback port."""

    def __init__(self, settings: CollectorSettings, sink: RecordingSink) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        app = create_app(settings, sink, now_ms=lambda: NOW_MS)
        config = uvicorn.Config(app, lifespan="on", log_level="warning", log_config=None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()

    def connect(self, source: str = "127.0.0.1") -> socket.socket:
        """A connection from ``source`` (any 127.x address: another client on loopback)."""
        return socket.create_connection(
            ("127.0.0.1", self.port), timeout=10, source_address=(source, 0)
        )


@pytest.fixture
def server_factory(
    settings: CollectorSettings, sink: RecordingSink
) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(**overrides: Any) -> Server:
        server = Server(replace(settings, **overrides), sink)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def request_head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: collector", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(conn: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        assert chunk
        body += chunk
    return int(status_line.split()[1]), headers, body


def post(server: Server, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    with server.connect() as conn:
        conn.sendall(request_head(path, {**headers, "Content-Length": str(len(body))}) + body)
        status, _, answer = read_response(conn)
    return status, answer


CHUNKED = {"Transfer-Encoding": "chunked", "Content-Type": "application/json"}


def test_a_body_dribbled_a_byte_at_a_time_is_cut_off_with_408(
    server_factory: Callable[..., Server], sink: RecordingSink
) -> None:
    server = server_factory(body_timeout_s=1.0)
    with server.connect() as conn:
        conn.sendall(request_head("/v1/batch", {**basic(), **CHUNKED}))
        started = time.monotonic()
        conn.settimeout(0.2)
        answer = None
        for byte in orjson.dumps({"batch": [view(0)]}):
            try:
                conn.sendall(b"1\r\n" + bytes([byte]) + b"\r\n")  # one byte, every 0.2 s
                time.sleep(0.2)
                if conn.recv(1, socket.MSG_PEEK):
                    break
            except (TimeoutError, BlockingIOError):
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        conn.settimeout(5)
        status, headers, answer = read_response(conn)
    elapsed = time.monotonic() - started
    assert status == 408
    assert orjson.loads(answer)["reason"] == "body_timeout"
    assert headers.get("connection") == "close"
    assert 1.0 <= elapsed < 3.0
    assert sink.sent == []


def test_a_wrong_header_key_is_refused_before_the_body_is_read(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory(body_timeout_s=30.0)
    with server.connect() as conn:
        # A body announced and never sent: the 401 comes without waiting for it.
        conn.sendall(request_head("/v1/batch", {**basic("nope"), **CHUNKED}))
        conn.settimeout(5)
        started = time.monotonic()
        status, headers, _ = read_response(conn)
    assert status == 401
    assert headers.get("connection") == "close"
    assert time.monotonic() - started < 2
    assert server.server.config.app  # the server still runs
    gate = _gate(server)
    assert gate.used == 0


def _gate(server: Server) -> InFlightGate:
    app: Any = server.server.config.app
    gate: InFlightGate = app.state.services.gate
    return gate


def _hold_slow_bodies(
    server: Server, sources: list[str], path: str = "/v1/batch"
) -> list[socket.socket]:
    """One connection from each source, each sending a chunked body's first byte only,
    without an Authorization header (the key would be in the body)."""
    conns = []
    for source in sources:
        conn = server.connect(source)
        conn.sendall(request_head(path, CHUNKED) + b"1\r\n{\r\n")
        conns.append(conn)
    return conns


def _wait_for_held(server: Server, at_least: int) -> None:
    deadline = time.monotonic() + 10
    while _gate(server).used < at_least:
        assert time.monotonic() < deadline, f"held {_gate(server).used} bytes"
        time.sleep(0.05)


@pytest.mark.parametrize("spread", [False, True])
def test_65_slow_bodies_without_auth_do_not_lock_out_authenticated_callers(
    server_factory: Callable[..., Server], sink: RecordingSink, spread: bool
) -> None:
    """The repro of issue 16: 65 chunked ``/v1/batch`` bodies dribbled without auth used to
    hold the whole 32 MiB budget. From one address they hold its share (25 %); from 65
    addresses, the share of requests whose key is in the body (50 %). Either way an
    authenticated caller is served, and the held bytes stay within the share."""
    server = server_factory(body_timeout_s=30.0)
    budget = server.server.config.app.state.services.gate.budget  # type: ignore[attr-defined]
    sources = [f"127.0.0.{2 + (i if spread else 0)}" for i in range(65)]
    conns = _hold_slow_bodies(server, sources)
    try:
        share = budget // 2 if spread else budget // 4
        _wait_for_held(server, share - 500 * 1024)
        time.sleep(0.3)
        assert _gate(server).used <= share
        status, answer = post(server, "/v1/batch", orjson.dumps({"batch": [view(1)]}), basic())
        assert status == 200, answer
        server_key = basic(SERVER_KEY)
        assert post(server, "/v1/track", orjson.dumps(view(2)), server_key)[0] == 200
    finally:
        for conn in conns:
            conn.close()
    assert [r["event_id"] for r in sink.decoded("cdp.events")] == ["m-1", "m-2"]


def test_one_key_cannot_hold_the_whole_budget() -> None:
    gate = InFlightGate(1000, 1, key_share_pct=50, peer_share_pct=100)
    with gate.admit(400, key="public:0", peer="a"), gate.admit(100, key="public:0", peer="b"):
        with pytest.raises(Overloaded, match="write key"), gate.admit(100, key="public:0"):
            pass
        with gate.admit(400, key="server:0", peer="c"):  # another key still fits
            assert gate.used == 900
    assert (gate.used, gate.held) == (0, {})


def test_one_address_cannot_hold_the_whole_budget() -> None:
    gate = InFlightGate(1000, 1, key_share_pct=100, peer_share_pct=25)
    with gate.admit(200, key="public:0", peer="10.0.0.1"):
        with pytest.raises(Overloaded, match="client address"), gate.admit(100, peer="10.0.0.1"):
            pass
        with gate.admit(250, key="public:0", peer="10.0.0.2"):
            assert gate.used == 450


def test_a_share_smaller_than_one_request_still_admits_one() -> None:
    gate = InFlightGate(1000, 1, key_share_pct=10, peer_share_pct=10)
    with gate.admit(600, key="server:0", peer="a"):
        assert gate.used == 600


# --- huge batches ---------------------------------------------------------------------


def test_too_many_items_is_400_before_mapping_or_taking_tokens(
    client_factory: Callable[..., TestClient], sink: RecordingSink
) -> None:
    client = client_factory(max_batch_items=50, rate_limit_per_s=1, rate_burst=50)
    response = client.post("/v1/batch", json={"batch": [{}] * 51}, headers=basic())
    assert response.status_code == 400
    assert response.json()["reason"] == "too_many_items"
    assert sink.sent == []
    full = {"batch": [view(i) for i in range(50)]}  # the bucket is still full
    assert client.post("/v1/batch", json=full, headers=basic()).json()["accepted"] == 50


def test_a_batch_above_the_keys_burst_is_too_many_items_not_a_debt(
    client_factory: Callable[..., TestClient],
) -> None:
    client = client_factory(rate_limit_per_s=10, rate_burst=20, monotonic=lambda: 1.0)
    big = client.post("/v1/batch", json={"batch": [view(i) for i in range(21)]}, headers=basic())
    assert (big.status_code, big.json()["reason"]) == (400, "too_many_items")
    assert client.post("/v1/track", json=view(0), headers=basic()).status_code == 200


def test_invalid_items_cost_the_bucket_what_valid_ones_do(
    client_factory: Callable[..., TestClient],
) -> None:
    now = [1.0]
    client = client_factory(rate_limit_per_s=10, rate_burst=20, monotonic=lambda: now[0])
    bad = client.post("/v1/batch", json={"batch": [{}] * 20}, headers=basic())
    assert bad.status_code == 200
    assert bad.json()["rejected_count"] == 20
    assert client.post("/v1/track", json=view(0), headers=basic()).status_code == 429
    now[0] += 0.1  # one token back: the twenty invalid items cost twenty, no more
    assert client.post("/v1/track", json=view(0), headers=basic()).status_code == 200


def test_the_issue_16_repro_a_batch_of_empty_objects(
    client: TestClient, sink: RecordingSink
) -> None:
    """160,000 ``{}`` in 480 KB: refused at once, not a 200 with an 18 MB answer."""
    raw = orjson.dumps({"batch": [{}] * 160_000})
    assert len(raw) < 500 * 1024
    started = time.perf_counter()
    response = client.post("/v1/batch", content=raw, headers=basic())
    assert response.status_code == 400
    assert response.json()["reason"] == "too_many_items"
    assert len(response.content) < 200
    assert time.perf_counter() - started < 1.0
    assert sink.sent == []
    assert client.post("/v1/track", json=view(0), headers=basic()).status_code == 200


def test_the_answer_lists_the_first_rejects_and_counts_them_all(
    client: TestClient, sink: RecordingSink
) -> None:
    batch = [view(0), *([{}] * 1999)]
    response = client.post("/v1/batch", json={"batch": batch}, headers=basic())
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["rejected_count"], len(body["rejected"])) == (1, 1999, 100)
    assert [r["index"] for r in body["rejected"]] == list(range(1, 101))
    assert len(response.content) < 20_000
    assert len(sink.decoded("cdp.events.dlq")) == 1999  # every one is still dead-lettered


def test_a_long_reject_message_is_shortened_in_the_answer() -> None:
    """Messages name fields, and a field's path is built from the client's own keys."""
    short = _short(Rejected(3, "invalid_field", "properties." + "k" * 5000 + ": expected"))
    assert (short["index"], short["reason"]) == (3, "invalid_field")
    assert len(short["error"]) == 200
    assert short["error"].endswith("...")


# --- bodies -----------------------------------------------------------------------------


def test_gzip_with_bytes_after_its_end_is_400(client: TestClient, sink: RecordingSink) -> None:
    raw = gzip.compress(orjson.dumps({"batch": [view(0)]})) + b"garbage"
    enc = {**basic(), "Content-Encoding": "gzip"}
    response = client.post("/v1/batch", content=raw, headers=enc)
    assert response.status_code == 400
    assert "after the end" in response.json()["error"]
    assert sink.sent == []


def deep(levels: int) -> Any:
    return orjson.loads(b"[" * levels + b"]" * levels)


@pytest.mark.parametrize("fast_path", [True, False])
@pytest.mark.parametrize("pad", [0, 40_000])  # a body within the per-event limit, and above
def test_an_item_nested_deeper_than_json_is_written_is_a_dead_letter_not_a_500(
    client_factory: Callable[..., TestClient], sink: RecordingSink, fast_path: bool, pad: int
) -> None:
    client = client_factory(fast_path=fast_path)
    nested = view(1, properties={"product_id": "p", "n": deep(400)})
    batch = [view(0), nested, view(2, properties={"product_id": "p", "pad": "x" * pad})]
    response = client.post("/v1/batch", json={"batch": batch}, headers=basic())
    assert response.status_code == 200
    reasons = [(r["index"], r["reason"]) for r in response.json()["rejected"]]
    assert reasons[0] == (1, "too_deeply_nested")
    [letter] = [d for d in sink.decoded("cdp.events.dlq") if d["event_id"] == "m-1"]
    assert orjson.loads(letter["raw"])["messageId"] == "m-1"  # kept, cut below 64 levels
    assert "m-0" in [r["event_id"] for r in sink.decoded("cdp.events")]


def test_a_single_call_nested_too_deep_is_400(client: TestClient, sink: RecordingSink) -> None:
    body = view(1, properties={"product_id": "p", "n": deep(400)})
    response = client.post("/v1/track", json=body, headers=basic())
    assert (response.status_code, response.json()["reason"]) == (400, "too_deeply_nested")
    assert sink.sent == []
