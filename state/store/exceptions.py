"""Errors of the profile store."""

from state.exceptions import StateError

__all__ = ["StoreError"]


class StoreError(StateError):
    """A stored value or a snapshot that the store cannot read; the message names which."""

    reason = "profile_store"
