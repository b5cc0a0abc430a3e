"""``cdpflow serve`` (the profile API) as a subprocess for integration tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from cdpflow.settings import Settings
from tests.integration.conftest import settings_env


def serve(
    settings: Settings, store_dir: Path, port: int, log_level: str = "warning", **env: str
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "profile_api.main", "--port", str(port), "--store-dir",
         str(store_dir), "--log-level", log_level],
        env=settings_env(settings, **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def wait_ready(base: str, proc: subprocess.Popen[str], timeout_s: float = 60) -> None:
    """Ready means the store caught up with the end the profiles topic had at start-up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"serve exited:\n{proc.communicate()[1][-3000:]}"
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the profile API did not become ready")


def stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, and the stderr it wrote; it must exit cleanly, without a traceback."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    # uvicorn shuts down gracefully (lifespan exit), then re-raises the signal it caught.
    assert proc.returncode in (0, -signal.SIGTERM), err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    return err
