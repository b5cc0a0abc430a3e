/*
 * cdpflow.js: a small browser tracker for the cdpflow collector (Segment-style calls).
 *
 *   <script src="https://collector.example/static/cdp.js"></script>
 *   <script>
 *     cdp.init({api: "https://collector.example", writeKey: "BROWSER_WRITE_KEY"});
 *     cdp.page();
 *     cdp.productViewed({product_id: "sku-1", category: "shoes", price: 59.9});
 *     cdp.productAdded({product_id: "sku-1", price: 59.9}, 1, "cart-1");
 *     cdp.identify("customer-42", {email: "ada@example.com", firstName: "Ada"});
 *   </script>
 *
 * - Every call gets a messageId once; retries resend the same id, so a call stored twice
 *   is deduplicated downstream by event_id.
 * - fetch with keepalive and a text/plain body: a CORS "simple request" (no preflight);
 *   the write key travels in the body, as Segment's analytics.js does.
 * - 429 and 5xx and network errors retry with exponential backoff (honouring
 *   Retry-After); other 4xx are not retried. Calls still pending when the page is hidden
 *   are handed to navigator.sendBeacon.
 * - The anonymous id lives in a first-party cookie (cdp_aid, one year, SameSite=Lax).
 * - Page addresses are sent without their query string and fragment (they can carry
 *   tokens, e-mail addresses, reset links): only the utm_* parameters are kept, in the
 *   URL and as context.campaign. The referrer is cut the same way.
 * - A session id (properties.session_id of pages and tracks) lives in localStorage
 *   (cdp_session, else a cookie) and is renewed after 30 minutes without a call.
 */
(function (global) {
  "use strict";

  var VERSION = "0.2.0";
  var COOKIE = "cdp_aid";
  var SESSION_KEY = "cdp_session";
  var SESSION_IDLE_MS = 30 * 60 * 1000;
  var UTM = { utm_source: "source", utm_medium: "medium", utm_campaign: "name",
              utm_term: "term", utm_content: "content" };
  var state = { api: "", writeKey: "", userId: null, anonymousId: null, maxRetries: 6 };
  var pending = {}; // messageId -> {path, msg}
  var listeners = [];

  function uuid() {
    if (global.crypto && global.crypto.randomUUID) return global.crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
      var r = (Math.random() * 16) | 0;
      return (c === "x" ? r : (r & 0x3) | 0x8).toString(16);
    });
  }

  function readCookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) return decodeURIComponent(parts[i].slice(eq + 1));
    }
    return null;
  }

  function writeCookie(name, value, maxAgeS) {
    var secure = global.location.protocol === "https:" ? "; Secure" : "";
    document.cookie = name + "=" + encodeURIComponent(value) +
      "; Max-Age=" + (maxAgeS || 31536000) + "; Path=/; SameSite=Lax" + secure;
  }

  // An address without its query and fragment, but for the utm_* parameters.
  function cleanUrl(href) {
    if (!href) return undefined;
    var url;
    try { url = new URL(href); } catch (e) { return undefined; }
    var kept = [];
    url.searchParams.forEach(function (value, name) {
      if (UTM.hasOwnProperty(name)) kept.push([name, value]);
    });
    var query = kept.map(function (p) {
      return encodeURIComponent(p[0]) + "=" + encodeURIComponent(p[1]);
    }).join("&");
    return url.origin + url.pathname + (query ? "?" + query : "");
  }

  function campaign() {
    var out = {}, found = false;
    new URLSearchParams(global.location.search).forEach(function (value, name) {
      if (UTM.hasOwnProperty(name)) { out[UTM[name]] = value; found = true; }
    });
    return found ? out : undefined;
  }

  // {id, last}: renewed when the last call is more than 30 minutes old.
  function readSession() {
    var raw = null;
    try { raw = global.localStorage.getItem(SESSION_KEY); } catch (e) { raw = null; }
    if (raw === null) raw = readCookie(SESSION_KEY);
    try { return raw ? JSON.parse(raw) : null; } catch (e) { return null; }
  }

  function writeSession(session) {
    var raw = JSON.stringify(session);
    try { global.localStorage.setItem(SESSION_KEY, raw); return; } catch (e) { /* cookie */ }
    writeCookie(SESSION_KEY, raw, SESSION_IDLE_MS / 1000);
  }

  function sessionId() {
    var now = Date.now();
    var session = readSession();
    if (!session || typeof session.id !== "string" || !(now - session.last < SESSION_IDLE_MS)) {
      session = { id: uuid(), last: now };
    }
    session.last = now;
    writeSession(session);
    return session.id;
  }

  function pageFields() {
    return { path: global.location.pathname, url: cleanUrl(global.location.href),
             referrer: cleanUrl(document.referrer), title: document.title };
  }

  function anonymousId() {
    if (!state.anonymousId) {
      state.anonymousId = readCookie(COOKIE) || uuid();
      writeCookie(COOKIE, state.anonymousId);
    }
    return state.anonymousId;
  }

  function context() {
    var tz;
    try { tz = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { tz = undefined; }
    return {
      library: { name: "cdpflow.js", version: VERSION },
      page: pageFields(),
      campaign: campaign(),
      userAgent: global.navigator.userAgent,
      locale: global.navigator.language,
      timezone: tz
    };
  }

  function notify(kind, msg, status) {
    for (var i = 0; i < listeners.length; i++) {
      try { listeners[i](kind, msg, status); } catch (e) { /* a listener must not break us */ }
    }
  }

  function deliver(path, msg, attempt) {
    msg.sentAt = new Date().toISOString();
    global.fetch(state.api + path, {
      method: "POST",
      headers: { "Content-Type": "text/plain" },
      body: JSON.stringify(msg),
      keepalive: true,
      mode: "cors",
      credentials: "omit"
    }).then(function (res) {
      if (res.ok) {
        delete pending[msg.messageId];
        notify("sent", msg, res.status);
      } else if (res.status === 429 || res.status >= 500) {
        retry(path, msg, attempt, res.headers.get("Retry-After"));
      } else {
        delete pending[msg.messageId];
        notify("rejected", msg, res.status);
      }
    }, function () {
      retry(path, msg, attempt, null);
    });
  }

  function retry(path, msg, attempt, retryAfter) {
    if (attempt + 1 >= state.maxRetries) {
      notify("failed", msg, 0);
      return; // stays in pending: a later pagehide still beacons it
    }
    var wait = retryAfter ? parseInt(retryAfter, 10) * 1000 : 0;
    var backoff = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
    setTimeout(function () { deliver(path, msg, attempt + 1); }, Math.max(wait, backoff));
  }

  function send(path, msg) {
    if (!state.api) throw new Error("cdp.init({api, writeKey}) first");
    msg.messageId = uuid();
    msg.timestamp = new Date().toISOString();
    msg.anonymousId = anonymousId();
    if (state.userId) msg.userId = state.userId;
    msg.context = context();
    msg.writeKey = state.writeKey;
    pending[msg.messageId] = { path: path, msg: msg };
    deliver(path, msg, 0);
    return msg.messageId;
  }

  global.addEventListener("pagehide", function () {
    if (!global.navigator.sendBeacon) return;
    Object.keys(pending).forEach(function (id) {
      var p = pending[id];
      p.msg.sentAt = new Date().toISOString();
      var blob = new Blob([JSON.stringify(p.msg)], { type: "text/plain" });
      if (global.navigator.sendBeacon(state.api + p.path, blob)) delete pending[id];
    });
  });

  global.cdp = {
    version: VERSION,
    init: function (options) {
      state.api = String(options.api || global.location.origin).replace(/\/+$/, "");
      state.writeKey = options.writeKey;
      if (options.maxRetries) state.maxRetries = options.maxRetries;
      state.userId = options.userId || null;
      anonymousId();
    },
    onDelivery: function (listener) { listeners.push(listener); },
    anonymousId: anonymousId,
    identify: function (userId, traits) {
      if (userId) state.userId = String(userId);
      sessionId(); // a call: the session stays alive
      return send("/v1/identify", { traits: traits || {} });
    },
    sessionId: sessionId,
    page: function (name, properties) {
      // Segment's page properties (path, url, referrer, title), as the collector reads them.
      var props = Object.assign(pageFields(), { session_id: sessionId() }, properties || {});
      return send("/v1/page", { name: name || document.title, properties: props });
    },
    track: function (event, properties) {
      var props = Object.assign({ session_id: sessionId() }, properties || {});
      return send("/v1/track", { event: event, properties: props });
    },
    productViewed: function (product) {
      return this.track("Product Viewed", product);
    },
    productAdded: function (product, quantity, cartId) {
      var props = Object.assign({}, product, { quantity: quantity || 1 });
      if (cartId) props.cart_id = cartId;
      return this.track("Product Added", props);
    }
  };
})(window);
