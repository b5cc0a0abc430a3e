"""``cdpflow serve``: the profile API.

A :class:`~profile_api.materializer.Materializer` folds the compacted ``cdp.profiles``
topic into a :class:`~state.store.ProfileStore` (RocksDB), keeping its consumed offsets in
the same write batches; a Starlette app (:mod:`profile_api.app`) serves look-ups from it.
"""
