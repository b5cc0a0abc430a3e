"""The browser snippet in headless Debian chromium: open the demo shop, sign in, view a
product, click "add to cart", and find those events in Kafka.

The collector runs as ``python -m collector.main`` (what ``cdpflow collect`` calls). The
page is opened at ``http://localhost:PORT`` and posts to ``http://127.0.0.1:PORT``, a
different origin, so the CORS path is exercised for real. A second test starts with the
API down and shows the snippet's retry. Chromium is driven over the
DevTools protocol (a websocket), with no browser-automation package.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from cdpflow.settings import Settings
from tests.integration.conftest import read_topic, settings_env

pytestmark = pytest.mark.timeout(180)

BROWSER_KEY = "browser-write-key"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-port=0",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        msg = "chromium not installed (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{msg}; CI=true, so this fails instead of skipping")
        pytest.skip(msg)
    return found


def _wait_for(what: str, probe: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Collector:
    """``python -m collector.main`` on a port, logging to a file."""

    def __init__(self, settings: Settings, port: int, shop_origin: str, log: Path) -> None:
        self.port, self.log = port, log
        env = settings_env(
            settings, CDPFLOW_WRITE_KEYS=BROWSER_KEY, CDPFLOW_CORS_ORIGINS=shop_origin
        )
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "collector.main", "--port", str(port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait_for("the collector to answer", self._healthy)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            assert self.proc.poll() is None, self.log.read_text()
            return False

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture
def collectors(kafka_settings: Settings, tmp_path: Path) -> Iterator[Callable[..., Collector]]:
    started: list[Collector] = []

    def start(port: int, shop_origin: str) -> Collector:
        collector = Collector(kafka_settings, port, shop_origin, tmp_path / f"collector-{port}.log")
        started.append(collector)
        return collector

    yield start
    for collector in started:
        collector.stop()


class Page:
    """Just enough of the DevTools protocol: evaluate JavaScript in one page."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv(timeout=30))
            if reply.get("id") == self.next_id:
                assert "error" not in reply, reply
                return dict(reply["result"])

    def js(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    profile = tmp_path / "chromium-profile"
    proc = subprocess.Popen(
        [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        _wait_for("chromium's DevTools port", port_file.exists)
        port = port_file.read_text().split()[0]

        def page_target() -> str | None:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                targets = json.load(r)
            pages = [t for t in targets if t.get("type") == "page"]
            return pages[0]["webSocketDebuggerUrl"] if pages else None

        ws_url = _wait_for("a page target", page_target)
        with connect(ws_url, max_size=None) as ws:
            yield Page(ws)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def open_shop(page: Page, shop: str, api: str) -> None:
    page.call("Page.navigate", url=f"{shop}/demo?writeKey={BROWSER_KEY}&api={api}")
    _wait_for(
        "the shop page",
        lambda: page.js("document.readyState === 'complete' && typeof window.cdp === 'object'"),
    )


def sent_log(page: Page, *whats: str) -> str | None:
    """The page's delivery log once every ``what`` was answered 200, else None."""
    text = str(page.js("document.getElementById('log').textContent"))
    return text if all(f"sent 200 {what} " in text for what in whats) else None


def test_browser_snippet_events_reach_kafka(
    kafka_settings: Settings, collectors: Callable[..., Collector], page: Page
) -> None:
    port = _free_port()
    shop = f"http://localhost:{port}"  # another origin than the API's 127.0.0.1: real CORS
    collector = collectors(port, shop)
    open_shop(page, shop, collector.url)
    page.js("""
        document.getElementById('user-id').value = 'cust-browser-1';
        document.getElementById('email').value = 'browser.user@example.com';
        document.getElementById('first-name').value = 'Bea';
        document.querySelector('#signin button').click();
        document.querySelector('.product[data-id="sho-001"] .view').click();
        document.getElementById('add-sho-001').click();
    """)
    sent = _wait_for(
        "the collector's 200s",
        lambda: sent_log(page, "page", "identify", "Product Viewed", "Product Added"),
    )
    assert "rejected" not in sent
    anonymous_id = page.js("cdp.anonymousId()")
    assert f"cdp_aid={anonymous_id}" in page.js("document.cookie")
    open_shop(page, shop, collector.url)  # a reload keeps the anonymous id (cookie)
    assert page.js("cdp.anonymousId()") == anonymous_id

    events = [r for _, r, _ in read_topic(kafka_settings, kafka_settings.topics.events)]
    by_type = {r["event_type"]: r for r in events}
    assert set(by_type) == {"page_viewed", "identify", "product_viewed", "cart_item_added"}
    assert {r["anonymous_id"] for r in events} == {anonymous_id}
    added = by_type["cart_item_added"]
    assert added["customer_id"] == "cust-browser-1"
    assert added["source"] == "web"
    assert added["payload"]["item"]["product"]["product_id"] == "sho-001"
    assert added["payload"]["item"]["product"]["price"] == 89.9
    assert added["payload"]["cart_id"] == "demo-cart"
    assert "/static/shop.html" in added["context"]["page_url"]
    assert by_type["identify"]["payload"]["email"] == "browser.user@example.com"
    assert by_type["page_viewed"]["customer_id"] is None  # sent before signing in
    # The collector's own log has the requests but none of the personal data.
    text = collector.log.read_text()
    assert "collector started" in text
    for value in ("browser.user@example.com", "cust-browser-1", anonymous_id, BROWSER_KEY):
        assert value not in text


def test_snippet_retries_until_the_collector_answers(
    kafka_settings: Settings, collectors: Callable[..., Collector], page: Page
) -> None:
    """The API is down when the shopper clicks; the call is retried with the same
    messageId and is stored once the collector is up."""
    shop_port, api_port = _free_port(), _free_port()
    shop = f"http://localhost:{shop_port}"
    collectors(shop_port, shop)  # serves the page only
    open_shop(page, shop, f"http://127.0.0.1:{api_port}")  # nothing listens there yet
    page.js("document.getElementById('add-jac-007').click()")
    time.sleep(1.5)  # the first attempts fail (connection refused)
    assert sent_log(page, "Product Added") is None
    collectors(api_port, shop)
    sent = _wait_for("the retried call's 200", lambda: sent_log(page, "Product Added"), timeout=60)
    [message_id] = [line.split()[-1] for line in sent.splitlines() if "Product Added" in line]

    events = [r for _, r, _ in read_topic(kafka_settings, kafka_settings.topics.events)]
    added = [r for r in events if r["event_type"] == "cart_item_added"]
    assert [r["event_id"] for r in added] == [message_id]
    assert added[0]["payload"]["item"]["product"]["product_id"] == "jac-007"
