"""Run the real dataflow in-process over Bytewax's testing source and sink."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, cluster_main, run_main

from cdpflow.codec import default_codec
from cdpflow.demo import DemoResult, collect, encode_sample
from cdpflow.settings import Settings
from flows.dataflow import build_flow
from tests.conftest import T0, H

NOW = T0 + 25 * H  # just after the tests' events: timers up to then have fired


@pytest.fixture
def run_flow() -> Callable[..., DemoResult]:
    """``run_flow(json_events, extra_messages=(), workers=1)`` -> decoded outputs."""

    def run(
        events: list[dict[str, Any]],
        *,
        raw: list[tuple[int, bytes]] = (),  # type: ignore[assignment]
        workers: int = 1,
        settings: Settings | None = None,
    ) -> DemoResult:
        codec = default_codec()
        msgs = encode_sample(events, codec)
        for position, value in raw:
            msgs.insert(position, KafkaSourceMessage(b"k", value, topic="sample", partition=0))
        msgs = [
            KafkaSourceMessage(m.key, m.value, topic="t", partition=0, offset=i)
            for i, m in enumerate(msgs)
        ]
        out: list[Any] = []
        flow = build_flow(TestingSource(msgs), TestingSink(out), settings or Settings(),
                          clock=lambda: NOW)  # fmt: skip
        if workers == 1:
            run_main(flow)
        else:
            cluster_main(flow, [], 0, worker_count_per_proc=workers)
        return collect(out, codec, len(msgs))

    return run


class Wall:
    """The system clock Bytewax arms timers by, injected into ``flows.profile_step``."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 29, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> Wall:
    import flows.profile_step as step

    w = Wall()
    monkeypatch.setattr(step, "_system_utc", w)
    return w
