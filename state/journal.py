"""Undo for one customer's state: a checkpoint and the operations applied since.

The fold mutates a :class:`~state.profile.CustomerState` in place, so an exception in the
middle of one event (a bug, or input no boundary check foresaw) could leave the state
half-applied. Copying the state before every event would cost more than the event (a
snapshot of a typical customer takes longer than an ``apply``). Instead the journal keeps
the last snapshot taken anyway (a recovery snapshot, a frozen customer's tuple, or one it
takes every ``every`` operations) and the operations since; :meth:`Journal.rebuild`
restores the checkpoint and replays them. The fold is deterministic, so the rebuilt
state is exactly the one before the failed operation: as if it had never been applied.

>>> from state.config import ProfileConfig
>>> from state.events import Event
>>> from state.profile import CustomerState, apply
>>> from state.snapshot import to_snapshot
>>> cfg, st, j = ProfileConfig(), CustomerState("c1"), Journal("c1")
>>> for i in range(3):
...     ev = Event(f"e{i}", "page_viewed", 1000 * i, 1000 * i, customer_id="c1")
...     _ = apply(st, ev, cfg); j.applied(ev)
>>> to_snapshot(j.rebuild(cfg)) == to_snapshot(st)
True
"""

from __future__ import annotations

from typing import Any, Final

from state.alias import apply_routed
from state.config import ProfileConfig
from state.events import Event
from state.profile import CustomerState, advance, compact_idle
from state.snapshot import from_snapshot, to_snapshot

__all__ = ["CHECKPOINT_EVERY", "Journal"]

CHECKPOINT_EVERY: Final = 32
"""Operations kept before the journal takes a snapshot of its own: about 3 µs per event of
a typical customer, and at most this many events held per live customer."""


class Journal:
    """``key``: the customer's key (the state a missing checkpoint stands for)."""

    __slots__ = ("_base", "_every", "_key", "_ops", "_resend")

    def __init__(
        self,
        key: str,
        base: tuple[Any, ...] | None = None,
        *,
        resend: bool = True,
        every: int = CHECKPOINT_EVERY,
    ) -> None:
        self._key = key
        self._base = base
        self._ops: list[Event | int] = []  # an event applied, or a stream time advanced to
        self._resend = resend
        self._every = every

    @property
    def key(self) -> str:
        return self._key

    def checkpoint(self, snap: tuple[Any, ...]) -> None:
        """``snap`` (a :func:`~state.snapshot.to_snapshot` of the state as it is now) is the
        new starting point; what came before it need not be kept."""
        self._base, self._ops = snap, []

    def applied(self, ev: Event) -> None:
        self._ops.append(ev)

    def advanced(self, now: int) -> None:
        """Stream time reached ``now``: :func:`advance` and :func:`compact_idle` ran."""
        self._ops.append(now)

    def maybe_checkpoint(self, st: CustomerState) -> None:
        """Take a checkpoint of ``st`` once ``every`` operations are held."""
        if len(self._ops) >= self._every:
            self.checkpoint(to_snapshot(st))

    def rebuild(self, cfg: ProfileConfig, *, replay: bool = True) -> CustomerState:
        """The state as it was after the last operation recorded: the checkpoint with every
        later operation applied again (their outputs went out the first time).
        ``replay=False``: the checkpoint alone (the journal then starts again from it)."""
        st = CustomerState(self._key) if self._base is None else from_snapshot(self._base)
        if not replay:
            self._ops = []
            return st
        for op in self._ops:
            if isinstance(op, Event):
                apply_routed(st, op, cfg, resend=self._resend)
            else:
                advance(st, cfg, op)
                compact_idle(st, op, cfg)
        return st
