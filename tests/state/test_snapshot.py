import pickle

import pytest

from state import STATE_VERSION, CustomerState, ProfileConfig, apply, from_snapshot, to_snapshot
from state.exceptions import SnapshotVersionError
from tests.conftest import T0, H


def test_snapshot_round_trips_and_is_a_copy(event_factory) -> None:
    st = CustomerState("c-1")
    for k in range(3):
        apply(st, event_factory(t=T0 + k * H, product_id=f"p{k}"), ProfileConfig())
    snap = to_snapshot(st)
    restored = from_snapshot(pickle.loads(pickle.dumps(snap)))
    assert restored == st
    apply(st, event_factory(t=T0 + 4 * H), ProfileConfig())
    assert from_snapshot(snap) == restored  # later changes did not leak into the snapshot


def test_snapshot_carries_its_version() -> None:
    snap = to_snapshot(CustomerState("c-1"))
    assert snap[0] == STATE_VERSION
    with pytest.raises(SnapshotVersionError, match="layout version 999"):
        from_snapshot((999, *snap[1:]))
