"""One-click unsubscribe (RFC 8058): ``POST /v1/unsubscribe?t=TOKEN`` writes the consent
change; ``GET`` only shows a page with a button that posts it.

Mail clients and link scanners fetch ``GET`` links on their own, so ``GET`` changes
nothing. ``POST`` (a mailbox provider's one-click, body ``List-Unsubscribe=One-Click``,
or the page's form) verifies the token (:mod:`mailer.unsubscribe`: signed by the mailer
with ``CDPFLOW_UNSUBSCRIBE_SECRET``, expiring) and writes an ``email_event`` with action
``unsubscribed`` for the token's customer (``source`` ``unsubscribe``, the collector's
own: no write key is involved), which the profile folds as withdrawn email consent. The
event id is derived from the token, so a replayed POST writes the same event and the
dataflow drops the copy. The answer is 200 only once Kafka acknowledged the event; a
malformed token is 400, a forged or expired one 403, each with a JSON ``reason`` (a
short page instead for a browser, which asks for ``text/html``), and nothing is
written. Writes share one rate-limit bucket (``CDPFLOW_COLLECTOR_RATE_LIMIT`` a second):
a flood of replays is 429, not a flood of events. Routed only when the secret is set.
"""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from collector.endpoints import Services
from collector.exceptions import CollectorError
from collector.responses import JsonResponse
from mailer.unsubscribe import (
    TokenExpired,
    TokenForged,
    TokenInvalid,
    UnsubscribeToken,
    event_id_for,
    verify_token,
)

__all__ = ["MalformedToken", "RefusedToken", "unsubscribe"]

_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
#: The page loads nothing and may post only to the collector itself.
_PAGE_HEADERS = _NO_STORE | {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'"
}


class MalformedToken(CollectorError):
    """A token that is no token (400); ``reason`` from :mod:`mailer.unsubscribe`."""

    status = 400

    def __init__(self, exc: TokenInvalid) -> None:
        super().__init__(str(exc))
        self.reason = exc.reason


class RefusedToken(MalformedToken):
    """A forged or expired token (403)."""

    status = 403


def _verified(s: Services, request: Request) -> tuple[str, UnsubscribeToken]:
    token = request.query_params.get("t", "")
    try:
        return token, verify_token(s.settings.unsubscribe_secrets, token, now_s=s.now_s())
    except (TokenForged, TokenExpired) as exc:
        raise RefusedToken(exc) from None
    except TokenInvalid as exc:
        raise MalformedToken(exc) from None


async def unsubscribe(request: Request) -> Response:
    s: Services = request.app.state.services
    wants_html = "text/html" in request.headers.get("accept", "")
    try:
        token, claims = _verified(s, request)
    except MalformedToken as exc:
        if not wants_html:
            raise  # JSON with the reason, from app.py's one mapping
        s.metrics.rejects.labels(exc.reason).inc()
        return HTMLResponse(_REFUSED, status_code=exc.status, headers=_PAGE_HEADERS)
    if request.method == "GET":
        return HTMLResponse(_page(token), headers=_PAGE_HEADERS)
    s.limiter.take("unsubscribe", 1)  # one bucket for all of them: 429 beyond the rate
    now = s.now_ms()
    record = {
        "event_id": event_id_for(token),
        "event_type": "email_event",
        "customer_id": claims.customer_id,
        "anonymous_id": None,
        "event_time": now,
        "sent_at": None,
        "received_at": now,
        "source": "unsubscribe",
        "context": None,
        "payload": (
            "cdp.EmailEvent",
            {
                "action": "unsubscribed",
                "campaign_id": None,
                "message_id": claims.trigger_id,
                "link_url": None,
            },
        ),
    }
    await s.sink.send([s.normalizer.encode_record(record)])  # 503 unless acknowledged
    s.metrics.events.labels("unsubscribe").inc()
    if wants_html:
        return HTMLResponse(_DONE, headers=_PAGE_HEADERS)
    return JsonResponse({"success": True, "unsubscribed": True}, headers=_NO_STORE)


def _page(token: str) -> str:
    action = html.escape(f"/v1/unsubscribe?t={token}", quote=True)
    return _PAGE.format(action=action)


_STYLE = "font-family: Helvetica, Arial, sans-serif; max-width: 32em; margin: 3em auto;"
_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<title>Unsubscribe</title></head>
<body style="{_STYLE}">
<h1 style="font-size: 1.4em;">Unsubscribe from our emails?</h1>
<p>Press the button and we will not send you marketing emails any more.</p>
<form method="post" action="{{action}}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit" style="padding: 0.6em 1.4em; font-size: 1em;">Unsubscribe</button>
</form>
</body></html>
"""
_DONE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<title>Unsubscribed</title></head>
<body style="{_STYLE}">
<h1 style="font-size: 1.4em;">You are unsubscribed</h1>
<p>You will get no more marketing emails from us.</p>
</body></html>
"""
_REFUSED = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<title>Link not valid</title></head>
<body style="{_STYLE}">
<h1 style="font-size: 1.4em;">This unsubscribe link does not work</h1>
<p>It may have expired. Use the link in a newer email from us, or unsubscribe in your
account.</p>
</body></html>
"""
