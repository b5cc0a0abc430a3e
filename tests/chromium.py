"""Debian's chromium for the browser tests: its path, or a skip (a failure under CI=true)."""

from __future__ import annotations

import os
import shutil

import pytest


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        msg = "chromium not installed (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{msg}; CI=true, so this fails instead of skipping")
        pytest.skip(msg)
    return found
