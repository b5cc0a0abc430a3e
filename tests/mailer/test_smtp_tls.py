"""STARTTLS and login against a real aiosmtpd server with a throw-away certificate."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from cdpflow.secrets import Secret
from mailer.exceptions import TransientDeliveryError
from mailer.message import OutgoingEmail
from mailer.smtp import SmtpConfig, SmtpDelivery
from tests.mailer.smtp_server import RecordingHandler, free_port

EMAIL = OutgoingEmail(trigger_id="t-tls", rule="category_interest", template="category_interest",
                      sender="shop@example.com", to="ada@example.com", subject="Hi",
                      text="plain", html="<p>html</p>")  # fmt: skip


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("openssl is needed to make a test certificate")
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                   auth_data: Any) -> AuthResult:  # fmt: skip
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"shop", b"correct-horse")  # fmt: skip
    return AuthResult(success=ok)


@pytest.fixture
def tls_server(certificate) -> Iterator[tuple[RecordingHandler, int]]:
    cert, key = certificate
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    handler, port = RecordingHandler(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, tls_context=server_ctx,
                            require_starttls=True, auth_required=True,
                            authenticator=_authenticator, auth_require_tls=True)  # fmt: skip
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def _client(certificate, port: int, password: str, timeout_s: float = 5) -> SmtpDelivery:
    cert, _ = certificate
    ctx = ssl.create_default_context(cafile=str(cert))
    cfg = SmtpConfig(host="127.0.0.1", port=port, security="starttls", username="shop",
                     password=Secret(password), timeout_s=timeout_s)  # fmt: skip
    return SmtpDelivery(cfg, ssl_context=ctx)


def test_starttls_and_login_deliver(certificate, tls_server) -> None:
    handler, port = tls_server
    _client(certificate, port, "correct-horse").send(EMAIL)
    assert [r.to for r in handler.received] == [["ada@example.com"]]


def test_a_wrong_password_is_not_delivered_and_not_echoed(certificate, tls_server) -> None:
    handler, port = tls_server
    # aiosmtpd stalls a failed AUTH (against guessing); either way the send must fail as
    # retryable (the password may be fixed) and never repeat the password.
    with pytest.raises(TransientDeliveryError) as info:
        _client(certificate, port, "wrong-password", timeout_s=1.5).send(EMAIL)
    assert "wrong-password" not in str(info.value)
    assert handler.received == []


def test_an_untrusted_certificate_is_refused(tls_server) -> None:
    _, port = tls_server
    cfg = SmtpConfig(host="127.0.0.1", port=port, security="starttls", timeout_s=5)
    with pytest.raises(TransientDeliveryError, match="SSLCertVerificationError"):
        SmtpDelivery(cfg).send(EMAIL)
