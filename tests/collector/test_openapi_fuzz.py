"""Schemathesis against the collector's own OpenAPI spec, in process (a recording sink, no
Kafka): no 5xx, status codes, content types, headers and bodies as the spec says.

Most generated requests carry a valid write key (else nearly all would stop at 401);
some go without, or with a wrong one. Data follows the spec ("positive") and breaks it
("negative"). The checks are the ones about the responses; schemathesis' checks that a
server accepts every schema-valid body, or refuses every invalid one, do not fit an API
whose spec cannot say every rule (a track call needs ``userId`` or ``anonymousId``; a
write key may come in the body).
"""

from __future__ import annotations

import json
import string
import time
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cdpflow.secrets import Secret
from collector.app import create_app
from collector.settings import CollectorSettings
from collector.signatures import sign_generic
from tests.collector.conftest import NOW_MS, WRITE_KEY, RecordingSink, basic

SINK = RecordingSink()
UNSUBSCRIBE_SECRET = Secret("f" * 32)
APP = create_app(
    CollectorSettings(
        write_keys=(Secret(WRITE_KEY),),
        webhook_secrets={"crm": (Secret("crm-secret"),), "shopify": (Secret("shop"),)},
        unsubscribe_secrets=(UNSUBSCRIBE_SECRET,),  # routes /v1/unsubscribe, fuzzed too
    ),
    SINK,
    now_ms=lambda: NOW_MS,
    now_s=lambda: NOW_MS / 1000,
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module", autouse=True)
def started_app() -> Any:
    """The app's lifespan runs once for the module (the sink's start and close)."""
    from starlette.testclient import TestClient

    with TestClient(APP):
        yield


def _signed_webhook(case: schemathesis.Case) -> dict[str, str]:
    """Most webhook cases go to the ``crm`` source, signed over the body schemathesis
    sends (``json.dumps`` of it); the others keep their generated source and headers."""
    if case.body is NOT_SET or not isinstance(case.body, dict | list):
        return {}
    if hash(json.dumps(case.body, sort_keys=True)) % 4 == 0:
        return {}
    case.path_parameters = {**(case.path_parameters or {}), "source": "crm"}
    ts = NOW_MS // 1000
    signature = sign_generic(b"crm-secret", ts, json.dumps(case.body).encode())
    return {"X-Cdpflow-Timestamp": str(ts), "X-Cdpflow-Signature": signature}


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same cases on every run: a failure here is reproducible
    suppress_health_check=list(HealthCheck),
)
def test_the_collector_answers_as_its_spec_says(case: schemathesis.Case) -> None:
    started = time.monotonic()
    headers = dict(case.headers or {})
    if case.operation.path == "/v1/webhooks/{source}":
        headers |= _signed_webhook(case)
    elif "authorization" not in {k.lower() for k in headers}:
        headers |= basic()
    case.headers = headers
    SINK.sent.clear()
    case.call_and_validate(checks=CHECKS)
    assert time.monotonic() - started < 5, "a request took more than 5 s"
    if case.operation.path == "/v1/unsubscribe":
        assert SINK.sent == []  # no generated token is signed: nothing is ever written


def test_the_spec_describes_the_unsubscribe_endpoint() -> None:
    from starlette.testclient import TestClient

    with TestClient(APP) as client:
        spec = client.get("/openapi.json").json()
    ops = spec["paths"]["/v1/unsubscribe"]
    assert set(ops) == {"get", "post"}
    for method in ("get", "post"):
        assert {p["name"] for p in ops[method]["parameters"]} == {"t", "Accept"}
        assert {"200", "400", "403"} <= set(ops[method]["responses"])
    assert {"429", "503"} <= set(ops["post"]["responses"])
    assert set(ops["post"]["responses"]["200"]["content"]) == {"application/json", "text/html"}


_B64 = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=80)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(payload=_B64, mac=_B64, method=st.sampled_from(["GET", "POST"]),
       html=st.booleans())  # fmt: skip
def test_forged_unsubscribe_tokens_are_403_and_write_nothing(
    payload: str, mac: str, method: str, html: bool
) -> None:
    """A token of the right shape that the secret did not sign: 403 (a page for a
    browser), never 5xx, never an event. One signed for the same ids with another secret
    is refused alike."""
    from starlette.testclient import TestClient

    from mailer.unsubscribe import sign_token

    other = sign_token((Secret("o" * 32),), "c-1", "t-1", expires_s=NOW_MS // 1000 + 3600)
    headers = {"Accept": "text/html"} if html else {}
    SINK.sent.clear()
    with TestClient(APP) as client:
        for token in (f"1.{payload}.{mac}", other):
            response = client.request(method, "/v1/unsubscribe", params={"t": token},
                                      headers=headers)  # fmt: skip
            assert response.status_code in (400, 403), (token, response.status_code)
            if token == other:
                assert response.status_code == 403
            if not html:
                reason = response.json()["reason"]
                assert reason in ("malformed_token", "invalid_signature"), reason
    assert SINK.sent == []
