"""The freshness rule: ``(event_time, revision, as_of)``, incoming kept when ``>=``."""

from __future__ import annotations

import pytest

from state.store import StoredProfile, is_fresher


def snap(event_time: int, revision: int | None = None, as_of: int | None = None,
         view_revision: object = None) -> StoredProfile:  # fmt: skip
    view = {} if view_revision is None else {"revision": view_revision}
    return StoredProfile("c-1", profile=view, event_time=event_time, revision=revision,
                         as_of=as_of)  # fmt: skip


@pytest.mark.parametrize(
    ("incoming", "stored", "kept"),
    [
        (snap(5, 1, 5), None, True),  # nothing stored
        (snap(6, 1, 6), snap(5, 9, 9), True),  # event time first
        (snap(4, 9, 9), snap(5, 1, 5), False),
        (snap(5, 3, 5), snap(5, 2, 9), True),  # then revision
        (snap(5, 2, 9), snap(5, 3, 5), False),
        (snap(5, 3, 8), snap(5, 3, 7), True),  # then as_of
        (snap(5, 3, 6), snap(5, 3, 7), False),
        (snap(5, 3, 7), snap(5, 3, 7), True),  # equal replaces
    ],
)
def test_order_and_ties(incoming, stored, kept) -> None:
    assert is_fresher(incoming, stored) is kept


def test_missing_revision_falls_back_to_the_views_then_zero() -> None:
    assert snap(5, view_revision=4).freshness == (5, 4, 5)
    assert snap(5).freshness == (5, 0, 5)
    assert snap(5, view_revision="4").freshness == (5, 0, 5)  # not an integer: ignored
    assert snap(5, view_revision=True).freshness == (5, 0, 5)
    # An older record (no fields) against a newer one of the same moment: revision decides.
    assert is_fresher(snap(5, view_revision=3), snap(5, revision=2, as_of=5))
    assert not is_fresher(snap(5, view_revision=1), snap(5, revision=2, as_of=5))


def test_missing_as_of_is_the_event_time() -> None:
    assert snap(5, 1).freshness == (5, 1, 5)
    assert not is_fresher(snap(5, 1), snap(5, 1, as_of=6))
    assert is_fresher(snap(5, 1, as_of=6), snap(5, 1))


def test_from_snapshot_reads_the_new_fields_or_none() -> None:
    old = StoredProfile.from_snapshot({"customer_id": "c", "profile_json": '{"revision": 4}',
                                       "event_time": 9})  # fmt: skip
    assert (old.revision, old.as_of, old.freshness) == (None, None, (9, 4, 9))
    new = StoredProfile.from_snapshot({"customer_id": "c", "profile_json": "{}", "event_time": 9,
                                       "revision": 7, "as_of": 12})  # fmt: skip
    assert new.freshness == (9, 7, 12)
    assert StoredProfile.from_bytes(new.to_bytes()) == new


def test_a_value_stored_before_the_fields_reads_them_as_none() -> None:
    stored = snap(9, 3, 12).to_bytes().replace(b',"revision":3,"as_of":12', b"")
    assert b"revision" not in stored
    assert StoredProfile.from_bytes(stored).freshness == (9, 0, 9)
