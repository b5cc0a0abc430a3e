"""The browser snippet in headless Debian chromium, from click to stored event.

A customer's shop (a static server on ``http://localhost:SHOP``) loads ``cdp.js`` from the
collector (``python -m collector.main``, what ``cdpflow collect`` calls) on
``http://127.0.0.1:PORT``, another origin, so the CORS path is exercised for real. The
shopper arrives from a link whose address carries utm_* parameters and a token: the stored
events have the path, title, url and referrer the snippet saw, the session id, the
campaign, and no token. Another test ages the session past 30 idle minutes; one opens the
demo shop (served only with ``CDPFLOW_COLLECTOR_DEMO=1``), whose ``?api=`` cannot send the
sign-in form to another origin; one starts with the API down and shows the snippet's
retry. Chromium is driven over the DevTools protocol (a websocket), with no
browser-automation package.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from cdpflow.settings import Settings
from tests.chromium import chromium
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
            settings,
            CDPFLOW_WRITE_KEYS=BROWSER_KEY,
            CDPFLOW_CORS_ORIGINS=shop_origin,
            CDPFLOW_COLLECTOR_DEMO="1",
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
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
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


SNIPPET = Path(__file__).resolve().parents[2] / "collector" / "static" / "cdp.js"

SHOP_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Trail shop</title></head><body>
<form id="signin"><input id="email"><input id="first-name"><input id="user-id">
  <button type="submit">Sign in</button></form>
<button id="view">View</button> <button id="add-sho-001">Add to cart</button>
<div id="log"></div>
<script src="SNIPPET_SRC"></script>
<script>
  cdp.init({api: "API", writeKey: "KEY"});
  var log = document.getElementById("log");
  cdp.onDelivery(function (kind, msg, status) {
    var what = msg.event || (msg.traits ? "identify" : "page");
    log.textContent += kind + " " + status + " " + what + " " + msg.messageId + "\\n";
  });
  var shoe = {product_id: "sho-001", category: "shoes", price: 89.9, currency: "EUR"};
  document.getElementById("view").onclick = function () { cdp.productViewed(shoe); };
  document.getElementById("add-sho-001").onclick = function () {
    cdp.productAdded(shoe, 1, "demo-cart");
  };
  document.getElementById("signin").onsubmit = function (e) {
    e.preventDefault();
    cdp.identify(document.getElementById("user-id").value, {
      email: document.getElementById("email").value,
      firstName: document.getElementById("first-name").value});
  };
  cdp.page();
</script></body></html>
"""
FROM_PAGE = """<!doctype html><html><head><title>Newsletter</title></head><body>
<a id="go" href="index.html?utm_source=news&utm_campaign=spring&token=SECRET-TOKEN#top">shop</a>
</body></html>"""


class Shop:
    """A customer's site: a static server on ``localhost`` with the shop page, a page that
    links to it, and a copy of the snippet (for when the collector is not up yet)."""

    def __init__(self, root: Path, port: int, api: str, snippet_src: str) -> None:
        root.mkdir()
        page = SHOP_PAGE.replace("SNIPPET_SRC", snippet_src).replace("API", api)
        (root / "index.html").write_text(page.replace("KEY", BROWSER_KEY))
        (root / "from.html").write_text(FROM_PAGE)
        shutil.copy(SNIPPET, root / "cdp.js")
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.url = f"http://localhost:{port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def shops(tmp_path: Path) -> Iterator[Callable[..., Shop]]:
    started: list[Shop] = []

    def start(port: int, api: str, snippet_src: str) -> Shop:
        shop = Shop(tmp_path / f"shop-{port}", port, api, snippet_src)
        started.append(shop)
        return shop

    yield start
    for shop in started:
        shop.stop()


def navigate(page: Page, url: str) -> None:
    page.call("Page.navigate", url=url)
    _wait_for(
        "the page",
        lambda: page.js(
            f"location.href.startsWith({url.split('?')[0]!r}) && "
            "document.readyState === 'complete' && typeof window.cdp === 'object'"
        ),
    )


def arrive_from_link(page: Page, shop: Shop) -> None:
    """From the newsletter page to the shop by a click: a real referrer and a real query."""
    page.call("Page.navigate", url=f"{shop.url}/from.html?secret=REFERRER-TOKEN")
    _wait_for("the link page", lambda: page.js("document.readyState === 'complete'"))
    page.js("document.getElementById('go').click()")
    _wait_for(
        "the shop page",
        lambda: page.js(
            "location.pathname === '/index.html' && document.readyState === 'complete' "
            "&& typeof window.cdp === 'object'"
        ),
    )


def sent_log(page: Page, *whats: str) -> str | None:
    """The page's delivery log once every ``what`` was answered 200, else None."""
    text = str(page.js("document.getElementById('log').textContent"))
    return text if all(f"sent 200 {what} " in text for what in whats) else None


def sign_in_view_and_add(page: Page) -> None:
    page.js("""
        document.getElementById('user-id').value = 'cust-browser-1';
        document.getElementById('email').value = 'browser.user@example.com';
        document.getElementById('first-name').value = 'Bea';
        document.querySelector('#signin button').click();
        document.getElementById('view').click();
        document.getElementById('add-sho-001').click();
    """)


def test_browser_snippet_events_reach_kafka_with_the_fields_it_sends(
    kafka_settings: Settings,
    collectors: Callable[..., Collector],
    shops: Callable[..., Shop],
    page: Page,
) -> None:
    shop_port = _free_port()
    collector = collectors(_free_port(), f"http://localhost:{shop_port}")
    shop = shops(shop_port, collector.url, f"{collector.url}/static/cdp.js")
    arrive_from_link(page, shop)
    sign_in_view_and_add(page)
    sent = _wait_for(
        "the collector's 200s",
        lambda: sent_log(page, "page", "identify", "Product Viewed", "Product Added"),
    )
    assert "rejected" not in sent
    anonymous_id = page.js("cdp.anonymousId()")
    session_id = page.js("cdp.sessionId()")
    assert f"cdp_aid={anonymous_id}" in page.js("document.cookie")

    events = read_topic(kafka_settings, kafka_settings.topics.events)
    records = [r for _, r, _ in events]
    by_type = {r["event_type"]: r for r in records}
    assert set(by_type) >= {"page_viewed", "identify", "product_viewed", "cart_item_added"}
    assert {r["anonymous_id"] for r in records} == {anonymous_id}
    viewed = by_type["page_viewed"]
    assert viewed["payload"]["path"] == "/index.html"
    assert viewed["payload"]["title"] == "Trail shop"
    assert viewed["payload"]["session_id"] == session_id
    assert by_type["product_viewed"]["payload"]["session_id"] == session_id
    for record in records:
        context = record["context"]
        assert context["page_url"] == f"{shop.url}/index.html?utm_source=news&utm_campaign=spring"
        assert context["referrer"] == f"{shop.url}/from.html"
        assert context["campaign"]["source"] == "news"
        assert context["campaign"]["name"] == "spring"
        assert context["user_agent"]
    for _, _, message in events:  # no query string, no token, anywhere in what is stored
        assert b"SECRET-TOKEN" not in message.value()
        assert b"REFERRER-TOKEN" not in message.value()
    added = by_type["cart_item_added"]
    assert added["customer_id"] == "cust-browser-1"
    assert added["source"] == "web"
    assert added["payload"]["item"]["product"]["product_id"] == "sho-001"
    assert added["payload"]["item"]["product"]["price"] == 89.9
    assert added["payload"]["cart_id"] == "demo-cart"
    assert by_type["identify"]["payload"]["email"] == "browser.user@example.com"
    assert viewed["customer_id"] is None  # sent before signing in
    # The collector's own log has the requests but none of the personal data.
    text = collector.log.read_text()
    assert "collector started" in text
    for value in ("browser.user@example.com", "cust-browser-1", anonymous_id, BROWSER_KEY):
        assert value not in text
    navigate(page, f"{shop.url}/index.html")  # a reload keeps the anonymous id and session
    assert page.js("cdp.anonymousId()") == anonymous_id
    assert page.js("cdp.sessionId()") == session_id


def test_the_session_is_renewed_after_30_idle_minutes(
    kafka_settings: Settings,
    collectors: Callable[..., Collector],
    shops: Callable[..., Shop],
    page: Page,
) -> None:
    shop_port = _free_port()
    collector = collectors(_free_port(), f"http://localhost:{shop_port}")
    shop = shops(shop_port, collector.url, f"{collector.url}/static/cdp.js")
    navigate(page, f"{shop.url}/index.html")
    minutes_ago = "Date.now() - {} * 60 * 1000"
    age = "localStorage.setItem('cdp_session', JSON.stringify({{id: '{}', last: {}}}))"
    page.js(age.format("recent-session", minutes_ago.format(29)))
    kept = page.js("cdp.page('Kept')")
    page.js(age.format("stale-session", minutes_ago.format(31)))
    renewed = page.js("cdp.page('Renewed')")
    renewed_id = page.js("cdp.sessionId()")
    _wait_for(
        "both pages' 200s", lambda: str(page.js("log.textContent")).count("sent 200 page") >= 3
    )

    by_id = {
        r["event_id"]: r for _, r, _ in read_topic(kafka_settings, kafka_settings.topics.events)
    }
    assert by_id[kept]["payload"]["session_id"] == "recent-session"
    assert by_id[renewed]["payload"]["session_id"] == renewed_id
    assert renewed_id not in ("recent-session", "stale-session")


def test_the_demo_shop_sends_only_to_its_own_origin(
    kafka_settings: Settings, collectors: Callable[..., Collector], page: Page
) -> None:
    """``/demo?api=...`` of another origin is ignored: a crafted link cannot collect what a
    shopper types in the sign-in form."""
    port = _free_port()
    collector = collectors(port, f"http://localhost:{port}")
    evil = "http://127.0.0.1:9/steal"
    page.call("Page.navigate", url=f"{collector.url}/demo?writeKey={BROWSER_KEY}&api={evil}")
    _wait_for(
        "the demo shop",
        lambda: page.js("document.readyState === 'complete' && typeof window.cdp === 'object'"),
    )
    assert page.js("document.getElementById('api-refused').hidden") is False
    page.js("""
        document.getElementById('user-id').value = 'cust-demo-1';
        document.getElementById('email').value = 'demo.user@example.com';
        document.querySelector('#signin button').click();
    """)
    _wait_for("the sign-in's 200", lambda: sent_log(page, "page", "identify"))
    events = [r for _, r, _ in read_topic(kafka_settings, kafka_settings.topics.events)]
    [identify] = [r for r in events if r["event_type"] == "identify"]
    assert identify["payload"]["email"] == "demo.user@example.com"
    assert identify["context"]["page_url"].startswith(f"{collector.url}/static/shop.html")


def test_snippet_retries_until_the_collector_answers(
    kafka_settings: Settings,
    collectors: Callable[..., Collector],
    shops: Callable[..., Shop],
    page: Page,
) -> None:
    """The API is down when the shopper clicks; the call is retried with the same
    messageId and is stored once the collector is up."""
    shop_port, api_port = _free_port(), _free_port()
    api = f"http://127.0.0.1:{api_port}"  # nothing listens there yet
    shop = shops(shop_port, api, "cdp.js")  # the shop's own copy of the snippet
    navigate(page, f"{shop.url}/index.html")
    page.js("document.getElementById('add-sho-001').click()")
    time.sleep(1.5)  # the first attempts fail (connection refused)
    assert sent_log(page, "Product Added") is None
    collectors(api_port, shop.url)
    sent = _wait_for("the retried call's 200", lambda: sent_log(page, "Product Added"), timeout=60)
    [message_id] = [line.split()[-1] for line in sent.splitlines() if "Product Added" in line]

    events = [r for _, r, _ in read_topic(kafka_settings, kafka_settings.topics.events)]
    added = [r for r in events if r["event_type"] == "cart_item_added"]
    assert [r["event_id"] for r in added] == [message_id]
    assert added[0]["payload"]["item"]["product"]["product_id"] == "sho-001"
