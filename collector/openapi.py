"""The collector's OpenAPI 3.1 description, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_spec"]

_ERROR = {"$ref": "#/components/responses/Error"}
_RETRY = {"$ref": "#/components/responses/RetryLater"}


def _segment_op(summary: str, schema: str, *, batch: bool = False) -> dict[str, Any]:
    ok = "#/components/schemas/BatchResult" if batch else "#/components/schemas/Success"
    limit = "500 KB and 2,000 items per request, 32 KB per event" if batch else "32 KB"
    return {
        "summary": summary,
        "description": f"Segment HTTP Tracking API compatible. Body limit {limit} (after gzip "
        "decoding), sent within 10 s. Answers 200 only after Kafka acknowledged every event. "
        "A public write key may not alias (403 forbidden_for_public_key) and its events are "
        "never dated after their receipt.",
        "security": [{"writeKey": []}, {}],
        "parameters": [{"$ref": "#/components/parameters/ContentEncoding"}],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{schema}"}}}},
        "responses": {
            "200": {"description": "stored", "content": {"application/json": {
                "schema": {"$ref": ok}}}},
            "400": _ERROR, "401": _ERROR, "403": _ERROR, "408": _ERROR, "413": _ERROR,
            "415": _ERROR, "429": _RETRY, "503": _RETRY,
        },
    }  # fmt: skip


def _unsubscribe_ops() -> dict[str, Any]:
    """``/v1/unsubscribe`` (collector/unsubscribe.py): routed when the collector has
    ``CDPFLOW_UNSUBSCRIBE_SECRET``, else 404."""
    token = {
        "name": "t",
        "in": "query",
        "required": True,
        "schema": {"type": "string"},
        "description": "The signed, expiring token of the email's link (the mailer "
        "signs it with CDPFLOW_UNSUBSCRIBE_SECRET).",
    }
    accept = {
        "name": "Accept",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "text/html: a short page instead of JSON (a browser).",
    }
    page = {"text/html": {"schema": {"type": "string"}}}
    refused = {
        "description": "refused: nothing is written",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}, **page},
    }
    common = {
        "400": {**refused, "description": "malformed token (reason malformed_token)"},
        "403": {
            **refused,
            "description": "forged or expired token (reason invalid_signature or expired_token)",
        },
        "404": {"description": "not routed: the collector has no CDPFLOW_UNSUBSCRIBE_SECRET"},
    }
    return {
        "get": {
            "summary": "One-click unsubscribe link: a page with a button that POSTs it",
            "description": "Changes nothing (mail clients and link scanners fetch links on "
            "their own); the page's form posts to the same URL.",
            "parameters": [token, accept],
            "responses": {"200": {"description": "the confirmation page", "content": page},
                          **common},
        },
        "post": {
            "summary": "One-click unsubscribe (RFC 8058)",
            "description": "Verifies the token and writes an email_event (action "
            "unsubscribed, source unsubscribe) for its customer; 200 only after Kafka "
            "acknowledged it. A replay writes the same event id. Mailbox providers post "
            "the body List-Unsubscribe=One-Click; the body is not read.",
            "parameters": [token, accept],
            "requestBody": {"required": False, "content": {
                "application/x-www-form-urlencoded": {"schema": {
                    "type": "object",
                    "properties": {"List-Unsubscribe": {"const": "One-Click"}}}}}},
            "responses": {
                "200": {"description": "unsubscribed", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Unsubscribed"}},
                    **page}},
                **common, "429": _RETRY, "503": _RETRY,
            },
        },
    }  # fmt: skip


def openapi_spec() -> dict[str, Any]:
    webhook = {
        "summary": "Signed webhook",
        "description": (
            "Generic sources: X-Cdpflow-Timestamp (unix seconds, within ±300 s) and "
            "X-Cdpflow-Signature: v1=hex(HMAC-SHA256(secret, timestamp + '.' + body)); the body "
            "is one cdpflow JSON event, a list of them, or {\"batch\": [...]}. Sources named "
            "shopify or shopify-*: X-Shopify-Hmac-Sha256 = base64(HMAC-SHA256(secret, body)), "
            "X-Shopify-Topic, X-Shopify-Webhook-Id."
        ),
        "parameters": [
            {"name": "source", "in": "path", "required": True, "schema": {"type": "string"}},
            {"$ref": "#/components/parameters/ContentEncoding"},
            *(
                {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}
                for name in (
                    "X-Cdpflow-Timestamp", "X-Cdpflow-Signature", "X-Shopify-Hmac-Sha256",
                    "X-Shopify-Topic", "X-Shopify-Webhook-Id",
                )
            ),
        ],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}},
        "responses": {
            "200": {"description": "stored", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/BatchResult"}}}},
            "400": _ERROR, "401": _ERROR, "408": _ERROR, "413": _ERROR, "415": _ERROR,
            "429": _RETRY, "503": _RETRY,
        },
    }  # fmt: skip
    ident = {"type": ["string", "integer"], "minLength": 1}
    time = {
        "type": ["string", "integer"],
        "description": "ISO-8601 with a zone offset, or milliseconds since the epoch",
    }
    message = {
        "type": "object",
        "properties": {
            "type": {"enum": ["track", "identify", "page", "screen", "group", "alias"]},
            "messageId": ident, "userId": ident, "anonymousId": ident,
            "timestamp": time, "originalTimestamp": time, "sentAt": time,
            "context": {"type": "object"}, "event": {"type": "string", "minLength": 1},
            "properties": {"type": "object"}, "traits": {"type": "object"},
            "name": {"type": "string"}, "groupId": {"type": "string"},
            "previousId": {"type": "string"}, "writeKey": {"type": "string"},
        },
    }  # fmt: skip
    # Each call names its user: userId, anonymousId or both.
    identified = {"anyOf": [{"required": ["userId"]}, {"required": ["anonymousId"]}]}
    msg = "#/components/schemas/Message"
    call = {"allOf": [{"$ref": msg}, identified]}
    track = {"allOf": [{"$ref": msg}, identified, {"required": ["event"]}]}
    batch_item = {"allOf": [{"$ref": msg}, identified, {"required": ["type"]}]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "cdpflow collector", "version": "1"},
        "paths": {
            "/v1/track": {"post": _segment_op("Track an event", "Track")},
            "/v1/identify": {"post": _segment_op("Identify a user", "Call")},
            "/v1/page": {"post": _segment_op("Record a page view", "Call")},
            "/v1/screen": {"post": _segment_op("Record a screen view (as a page view)", "Call")},
            "/v1/group": {"post": _segment_op("Group call (kept as a custom event)", "Call")},
            "/v1/alias": {"post": _segment_op("Alias call (kept as a custom event)", "Call")},
            "/v1/batch": {"post": _segment_op("Several calls at once", "Batch", batch=True)},
            "/v1/import": {"post": _segment_op("Alias of /v1/batch", "Batch", batch=True)},
            "/v1/webhooks/{source}": {"post": webhook},
            "/v1/unsubscribe": _unsubscribe_ops(),
            "/healthz": {"get": {"summary": "Process is up", "responses": {
                "200": {"description": "ok"}}}},
            "/readyz": {"get": {"summary": "Kafka reachable", "responses": {
                "200": {"description": "ready"}, "503": {"description": "not ready"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
                "200": {"description": "text exposition format"}}}},
            "/openapi.json": {"get": {"summary": "This description", "responses": {
                "200": {"description": "OpenAPI 3.1", "content": {"application/json": {
                    "schema": {"type": "object"}}}}}}},
        },
        "components": {
            "securitySchemes": {"writeKey": {"type": "http", "scheme": "basic",
                                             "description": "write key as user name, no password"}},
            "parameters": {"ContentEncoding": {"name": "Content-Encoding", "in": "header",
                                               "schema": {"enum": ["gzip", "identity"]}}},
            "schemas": {
                "Message": message, "Call": call, "Track": track,
                "Batch": {"type": "object", "required": ["batch"], "properties": {
                    "batch": {"type": "array", "items": batch_item},
                    "context": {"type": "object"}, "sentAt": {"type": "string"}}},
                "Success": {"type": "object", "properties": {"success": {"const": True}}},
                "BatchResult": {"type": "object", "properties": {
                    "success": {"const": True}, "accepted": {"type": "integer"},
                    "rejected_count": {"type": "integer"},
                    "rejected": {"type": "array", "description": "the first 100 rejects",
                                 "items": {"type": "object", "properties": {
                        "index": {"type": "integer"}, "reason": {"type": "string"},
                        "error": {"type": "string"}}}}}},
                "Unsubscribed": {"type": "object", "properties": {
                    "success": {"const": True}, "unsubscribed": {"const": True}}},
                "Error": {"type": "object", "properties": {
                    "success": {"const": False}, "reason": {"type": "string"},
                    "error": {"type": "string"}}},
            },
            "responses": {
                "Error": {"description": "refused", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"}}}},
                "RetryLater": {"description": "retry after Retry-After seconds",
                               "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                               "content": {"application/json": {
                                   "schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        },
    }  # fmt: skip
