"""Both profile store backends, so every store test runs against each (``SUPPORTED_STORES``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from state.store import MemoryProfileStore, ProfileStore, RocksProfileStore, StoredProfile

SUPPORTED_STORES = ["memory", "rocksdb"]


@pytest.fixture(params=SUPPORTED_STORES)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Open the parametrized backend; for RocksDB, opening again reopens the same directory."""
    opened: list[ProfileStore] = []
    memory = MemoryProfileStore()

    def make() -> ProfileStore:
        store: ProfileStore = (
            memory if request.param == "memory" else RocksProfileStore(tmp_path / "db")
        )
        opened.append(store)
        return store

    yield make
    if request.param == "rocksdb":
        for store in opened:
            store.close()


@pytest.fixture
def store(store_factory: Callable[[], ProfileStore]) -> ProfileStore:
    return store_factory()


@pytest.fixture
def profile_factory() -> Callable[..., StoredProfile]:
    def make(
        customer_id: str = "c-1",
        *,
        email: str | None = "ada@example.com",
        segments: tuple[str, ...] = (),
        unsubscribed: bool = False,
        timezone: str | None = None,
        first_name: str | None = "Ada",
        revision: int = 1,
    ) -> StoredProfile:
        attrs: dict[str, Any] = {"email": email, "first_name": first_name}
        if timezone:
            attrs["timezone"] = timezone
        return StoredProfile(
            customer_id=customer_id,
            profile={"customer_id": customer_id, "revision": revision, "attributes": attrs,
                     "unsubscribed": unsubscribed},
            email=email,
            first_name=first_name,
            segments=segments,
            event_time=1_000 * revision,
        )  # fmt: skip

    return make
