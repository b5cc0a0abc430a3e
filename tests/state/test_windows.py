from hypothesis import given
from hypothesis import strategies as st

from state.windows import RecentTimes, window_start

DAY = 86_400_000


def test_window_is_closed_at_both_ends() -> None:
    w = RecentTimes([0, DAY])
    assert window_start(DAY, DAY) == 0
    assert w.count_in(end=DAY, width=DAY) == 2
    assert w.count_in(end=DAY + 1, width=DAY) == 1


def test_count_after_excludes_spent_times() -> None:
    w = RecentTimes([10, 20, 30])
    assert w.count_in(end=30, width=DAY, after=20) == 1
    assert w.count_in(end=30, width=DAY, after=None) == 3
    # An `after` before the window start changes nothing.
    assert w.count_in(end=30, width=15, after=0) == 2


def test_cap_keeps_the_newest_times() -> None:
    w = RecentTimes()
    for t in (5, 1, 4, 2, 3):
        w.add(t, cap=3)
    assert w.times == [3, 4, 5]


def test_prune_drops_strictly_older() -> None:
    w = RecentTimes([1, 2, 3, 4])
    w.prune(before=3)
    assert w.times == [3, 4]


@given(st.lists(st.integers(0, 10 * DAY), max_size=40), st.integers(0, 10 * DAY))
def test_count_matches_a_brute_force_count(times: list[int], end: int) -> None:
    w = RecentTimes()
    for t in times:
        w.add(t, cap=1_000)
    expected = sum(1 for t in times if end - DAY <= t <= end)
    assert w.count_in(end, DAY) == expected
    assert w.times == sorted(times)
