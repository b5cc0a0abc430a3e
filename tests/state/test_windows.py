import pytest
from hypothesis import given
from hypothesis import strategies as st

from state.windows import DayBuckets, RecentTimes, day_of, day_window, window_start

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


# Day buckets: a window of D days ending at t counts the days day(t) - D + 1 .. day(t).


def test_day_of_cuts_at_utc_midnight() -> None:
    midnight = 20_000 * DAY
    assert (day_of(midnight - 1), day_of(midnight)) == (19_999, 20_000)


@pytest.mark.parametrize(
    ("days", "t", "first", "last"),
    [
        (1, 20_000 * DAY, 20_000, 20_000),
        (7, 20_000 * DAY + DAY - 1, 19_994, 20_000),
        (90, 20_000 * DAY + DAY // 2, 19_911, 20_000),
    ],
)
def test_day_window_is_inclusive_of_both_end_days(days: int, t: int, first: int,
                                                  last: int) -> None:  # fmt: skip
    assert day_window(t, days) == (first, last)
    assert last - first + 1 == days


def test_90_day_window_edges() -> None:
    end = 20_000 * DAY + 12 * 3_600_000  # noon of day 20000
    b = DayBuckets()
    first_in = 19_911 * DAY  # 00:00 of day end - 89: inside
    last_out = 19_911 * DAY - 1  # 23:59:59.999 of day end - 90: outside
    for t in (last_out, first_in, end):
        b.add(t, 1, days=90, now=end)
    assert b.total(end, 90) == 2
    # Just before the end day's midnight the window still reaches back to day end - 89;
    # one millisecond after the next midnight the first bucket drops out.
    assert b.total(20_001 * DAY - 1, 90) == 2
    assert b.total(20_001 * DAY, 90) == 1


def test_buckets_are_bounded_by_the_window_length() -> None:
    b = DayBuckets()
    for d in range(500):
        b.add(d * DAY, 1, days=30, now=d * DAY)
        assert len(b) <= 30
    assert b.total(499 * DAY, 30) == 30
    assert b.days_with_any(499 * DAY, 7) == 7


def test_an_amount_for_a_day_outside_every_future_window_is_ignored() -> None:
    b = DayBuckets()
    b.add(0, 5, days=7, now=7 * DAY)
    assert len(b) == 0
    b.add(DAY, 5, days=7, now=7 * DAY)
    assert b.total(7 * DAY, 7) == 5


def test_prune_and_dump_round_trip() -> None:
    b = DayBuckets({3: 1, 1: 2, 9: 4})
    assert DayBuckets.load(b.dump()) == b
    assert b.dump() == (1, 2, 3, 1, 9, 4)
    b.prune(first_day=3)
    assert b.buckets == {3: 1, 9: 4}


@given(
    st.lists(st.tuples(st.integers(0, 200 * DAY), st.integers(0, 1_000)), min_size=1,
             max_size=60),
    st.sampled_from([7, 30, 90, 180]),
)  # fmt: skip
def test_bucket_totals_match_a_brute_force_sum(events: list[tuple[int, int]],
                                               days: int) -> None:  # fmt: skip
    b = DayBuckets()
    now = -1
    for t, amount in sorted(events):  # in event-time order, as the watermark moves
        now = max(now, t)
        b.add(t, amount, days, now)
        assert len(b) <= days
    first = now // DAY - days + 1
    assert b.total(now, days) == sum(a for t, a in events if t // DAY >= first)
    assert b.days_with_any(now, days) == len({t // DAY for t, a in events
                                              if t // DAY >= first and a})  # fmt: skip


@given(
    st.dictionaries(st.integers(0, 400), st.integers(0, 5), max_size=40),
    st.integers(0, 400 * DAY),
    st.sampled_from([1, 7, 30, 90, 180]),
)
def test_bucket_totals_at_any_end_match_a_brute_force_sum(
    buckets: dict[int, int], end: int, days: int
) -> None:
    # Windows ending before, among and after the buckets: some or all of them outside.
    b = DayBuckets(dict(buckets))
    first, last = end // DAY - days + 1, end // DAY
    inside = {d: v for d, v in buckets.items() if first <= d <= last}
    assert b.total(end, days) == sum(inside.values())
    assert b.days_with_any(end, days) == sum(1 for v in inside.values() if v)
