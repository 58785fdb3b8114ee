"""Peer groups: profiles, k-means, silhouette, ARI, stable ids and peer medians against brute force."""

from __future__ import annotations

import datetime as dt
import itertools
import statistics
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from footfall.operators.peers.agreement import adjusted_rand_index, share_same_id
from footfall.operators.peers.compare import compare_day, compare_hours
from footfall.operators.peers.describe import describe_shape
from footfall.operators.peers.grouping import KMeansGrouper, ProfileGrouper, group_stores, kmeans, silhouette
from footfall.operators.peers.peer_groups import PeerGroups, match_ids
from footfall.operators.peers.profile import HourOfWeekProfile

AKL = "Pacific/Auckland"
QUARTER_MS = 900_000


def _brute_profile(buckets: list[tuple[int, float | None]], tz: str, weeks: int) -> np.ndarray:
    """Arrivals per covered hour per local hour of the week over the last `weeks` Monday-first weeks."""
    zone = ZoneInfo(tz)
    rows = []
    for start_ms, arrivals in buckets:
        local = dt.datetime.fromtimestamp(start_ms / 1000, zone)
        monday = local.date() - dt.timedelta(days=local.weekday())
        rows.append((monday, local.weekday() * 24 + local.hour, arrivals))
    newest = max(m for m, _, _ in rows)
    sums, covered = [0.0] * 168, [0.0] * 168
    for monday, cell, arrivals in rows:
        if (newest - monday).days // 7 >= weeks or arrivals is None:
            continue
        sums[cell] += arrivals
        covered[cell] += 0.25
    return np.array([s / c if c else np.nan for s, c in zip(sums, covered, strict=True)])


@pytest.mark.parametrize("first_day", [dt.date(2026, 3, 16), dt.date(2026, 9, 10)])  # NZDT ends 5 Apr, starts 27 Sep
def test_profile_matches_brute_force_across_dst_in_auckland(first_day):
    rng = np.random.default_rng(3)
    start_ms = int(dt.datetime.combine(first_day, dt.time(), ZoneInfo(AKL)).timestamp() * 1000)
    profile = HourOfWeekProfile(tz=AKL, weeks=4)
    buckets: list[tuple[int, float | None]] = []
    for i in range(40 * 96):  # 40 days of 15-minute buckets, some gaps
        ts = start_ms + i * QUARTER_MS
        arrivals = None if rng.random() < 0.1 else float(rng.poisson(5))
        buckets.append((ts, arrivals))
        assert profile.update(ts, arrivals, bucket_ms=QUARTER_MS)
        if i % 500 == 499 or i == 40 * 96 - 1:
            np.testing.assert_allclose(profile.get(), _brute_profile(buckets, AKL, 4), equal_nan=True)
    shares = profile.shares()
    assert np.nansum(shares) == pytest.approx(1.0)


def test_repeated_hour_on_dst_end_is_a_mean_not_a_sum():
    # 5 April 2026, Auckland: 02:00-02:59 occurs twice (NZDT then NZST). Sunday 02h = cell 146.
    profile = HourOfWeekProfile(tz=AKL, weeks=1)
    first = int(dt.datetime(2026, 4, 5, 2, tzinfo=ZoneInfo(AKL), fold=0).timestamp() * 1000)
    profile.update(first, 10, bucket_ms=3_600_000)
    profile.update(first + 3_600_000, 30, bucket_ms=3_600_000)  # the second 02:00
    assert profile.get()[146] == 20.0


def test_fewer_weeks_is_the_mean_over_weeks_seen_and_unseen_cells_are_nan():
    one, three = HourOfWeekProfile(weeks=4), HourOfWeekProfile(weeks=4)
    monday = 1_767_571_200_000  # 2026-01-05T00:00Z, a Monday
    for w in range(3):
        for h in range(48):  # Monday and Tuesday only
            value = float(h % 24 + 1)
            three.update(monday + w * 7 * 86_400_000 + h * 3_600_000, value)
            if w == 2:
                one.update(monday + w * 7 * 86_400_000 + h * 3_600_000, value)
    np.testing.assert_allclose(one.shares(), three.shares(), equal_nan=True)
    assert np.isnan(one.shares()[48:]).all()  # Wednesday on: unseen, not zero
    # a gap in one week leaves that cell's mean over the other weeks
    three.update(monday + 3 * 7 * 86_400_000, None)
    three.update(monday + 3 * 7 * 86_400_000 + 3_600_000, 100.0)
    assert three.get()[0] == 1.0 and three.get()[1] == pytest.approx((2 * 3 + 100) / 4)


def test_profile_ring_forgets_old_weeks_and_refuses_older_ones():
    profile = HourOfWeekProfile(weeks=2)
    monday = 1_767_571_200_000
    profile.update(monday, 10.0)
    profile.update(monday + 2 * 7 * 86_400_000, 30.0)  # two weeks later: the first falls out
    assert profile.get()[0] == 30.0 and profile.weeks_seen == 1
    assert not profile.update(monday, 10.0)
    state = profile.to_state()
    again = HourOfWeekProfile.from_state(state, weeks=2)
    np.testing.assert_array_equal(again.get(), profile.get())


def _shape(peaks: list[int], rng: np.random.Generator, noise: float = 0.02) -> np.ndarray:
    base = np.full(168, 0.01)
    for d in range(7):
        for p in peaks:
            base[d * 24 + p] += 1.0
    base = base * (1 + rng.uniform(-noise, noise, 168))
    return base / base.sum()


def _partition(labels: dict[str, int]) -> set[frozenset[str]]:
    groups: dict[int, set[str]] = {}
    for s, g in labels.items():
        groups.setdefault(g, set()).add(s)
    return {frozenset(g) for g in groups.values()}


PLANTED = {"commute": [8, 17], "lunch": [12, 13], "night": [21, 22, 23]}


def _planted(rng: np.random.Generator, per_group: int = 4) -> dict[str, np.ndarray]:
    return {f"{name}-{i}": _shape(peaks, rng) for name, peaks in PLANTED.items() for i in range(per_group)}


def test_planted_groups_are_recovered_exactly():
    profiles = _planted(np.random.default_rng(5))
    truth = {frozenset(s for s in profiles if s.startswith(name)) for name in PLANTED}
    for k in (None, 3):
        grouping = group_stores(profiles, k=k, seed=0)
        assert grouping.k == 3
        assert _partition(grouping.labels) == truth


def test_same_groups_whatever_the_order_of_the_stores():
    profiles = _planted(np.random.default_rng(6))
    keys = list(profiles)
    reference = group_stores(profiles, seed=4).labels
    rng = np.random.default_rng(0)
    for order in [keys[::-1], *([keys[i] for i in rng.permutation(len(keys))] for _ in range(3))]:
        assert group_stores({s: profiles[s] for s in order}, seed=4).labels == reference


def test_kmeans_finds_the_best_partition_of_a_small_set():
    rng = np.random.default_rng(2)
    points = rng.normal(size=(8, 2))
    best = min(
        sum(((points[np.array(lab) == g] - points[np.array(lab) == g].mean(axis=0)) ** 2).sum() for g in (0, 1))
        for lab in itertools.product((0, 1), repeat=8) if 0 < sum(lab) < 8
    )
    _, _, inertia = kmeans(points, 2, seed=0, restarts=20)
    assert inertia == pytest.approx(best)


def test_silhouette_matches_pairwise_brute_force():
    rng = np.random.default_rng(9)
    points = rng.normal(size=(13, 3))
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3])  # group 3 a singleton
    scores = []
    for i in range(len(points)):
        def mean_dist(group, i=i):
            others = [j for j in range(len(points)) if labels[j] == group and j != i]
            return sum(float(np.linalg.norm(points[i] - points[j])) for j in others) / len(others)
        if (labels == labels[i]).sum() == 1:
            scores.append(0.0)
            continue
        a = mean_dist(labels[i])
        b = min(mean_dist(g) for g in set(labels.tolist()) if g != labels[i])
        scores.append((b - a) / max(a, b))
    assert silhouette(points, labels) == pytest.approx(sum(scores) / len(scores))


def _ari_by_pairs(x: list[int], y: list[int]) -> float:
    """ARI from pair counts (Steinley's form): a together in both, d apart in both, b and c the rest."""
    a = b = c = d = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        same_x, same_y = x[i] == x[j], y[i] == y[j]
        a += same_x and same_y
        b += same_x and not same_y
        c += same_y and not same_x
        d += not same_x and not same_y
    return 2 * (a * d - b * c) / ((a + b) * (b + d) + (a + c) * (c + d))


def test_adjusted_rand_index_hand_worked_and_pair_counting():
    # [[2,1,0],[0,1,2]]: index 2, rows 6, cols 3, expected 18/15 = 1.2, max 4.5 -> 0.8 / 3.3 = 8/33
    assert adjusted_rand_index([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]) == pytest.approx(8 / 33)
    # [[1,1],[1,1]]: index 0, expected 4/6, max 2 -> -(2/3) / (4/3) = -0.5
    assert adjusted_rand_index([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5)
    assert adjusted_rand_index(["a", "a", "b"], [7, 7, 3]) == 1.0
    rng = np.random.default_rng(1)
    for _ in range(20):
        x, y = rng.integers(0, 3, 12).tolist(), rng.integers(0, 4, 12).tolist()
        assert adjusted_rand_index(x, y) == pytest.approx(_ari_by_pairs(x, y))
    assert share_same_id({"a": 1, "b": 2}, {"a": 1, "b": 1}) == 0.5


def test_ids_stay_with_their_members_after_permuting():
    rng = np.random.default_rng(7)
    profiles = _planted(rng)
    peers = PeerGroups(k=3)
    first = peers.update(profiles, dt.date(2026, 1, 1))
    # next day: stores arrive in another order, plus a new store that sorts first with the night shape
    shuffled = {s: profiles[s] for s in reversed(list(profiles))}
    shuffled["a-new"] = _shape(PLANTED["night"], rng)
    second = peers.update(shuffled, dt.date(2026, 1, 2))
    assert all(second[s] == first[s] for s in first)
    assert second["a-new"] == first["night-0"]
    assert group_stores(shuffled, k=3).labels["a-new"] == 0  # k-means alone numbered it differently
    assert peers.update({}, dt.date(2026, 1, 2)) == second  # once a day: same day changes nothing
    restored = PeerGroups.from_state(peers.to_state(), k=3)
    assert restored.get() == second and restored.day == dt.date(2026, 1, 2)


def test_match_ids_gives_fresh_ids_to_new_groups():
    labels, next_id = match_ids({"a": 0, "b": 0, "c": 1}, {"a": 0, "b": 1, "c": 1, "d": 2}, next_id=2)
    # new group 0 = {a} overlaps old 0 by 1, new group 1 = {b, c} overlaps old 0 by 1 and old 1 by 1
    assert labels == {"a": 0, "b": 1, "c": 1, "d": 2} and next_id == 3


def test_unseen_cells_are_not_read_as_zero_when_grouping():
    rng = np.random.default_rng(8)
    profiles = _planted(rng)
    partial = _shape(PLANTED["lunch"], rng)
    partial[120:] = np.nan  # no weekend seen
    profiles["lunch-partial"] = partial / np.nansum(partial)
    labels = group_stores(profiles, k=3).labels
    assert labels["lunch-partial"] == labels["lunch-0"]
    peers = PeerGroups(k=3, min_cells_seen=130)
    assert "lunch-partial" not in peers.update(profiles, dt.date(2026, 1, 1))  # 120 of 168 seen: too few


def test_group_median_excludes_the_store_and_missing_values():
    rng = np.random.default_rng(4)
    stores = [f"s{i}" for i in range(9)]
    groups = {s: i % 3 for i, s in enumerate(stores)}
    values = {s: float(rng.integers(10, 200)) for s in stores}
    values["s4"] = None  # missing, not zero
    out = compare_day(values, groups)
    for s in stores:
        peers = [values[o] for o in stores if o != s and groups[o] == groups[s] and values[o] is not None]
        expected = statistics.median(peers)
        assert out[s].peer_median == expected and out[s].peers == len(peers)
        if values[s] is not None:
            assert out[s].ratio == pytest.approx(values[s] / expected)
            assert out[s].difference == pytest.approx(values[s] - expected)
    assert out["s4"].value is None and out["s4"].ratio is None


def test_hourly_comparison_matches_brute_force():
    rng = np.random.default_rng(11)
    values = {f"s{i}": rng.uniform(1, 50, 24) for i in range(5)}
    values["s2"][[3, 4]] = np.nan
    groups = dict.fromkeys(values, 0)
    out = compare_hours(values, groups)
    for s in values:
        for h in range(24):
            peers = [values[o][h] for o in values if o != s and not np.isnan(values[o][h])]
            assert out[s].peer_median[h] == pytest.approx(statistics.median(peers))
            assert out[s].peers[h] == len(peers)


def test_describe_names_a_commute_shape():
    week = np.zeros(168)
    for d in range(5):
        week[d * 24 + 8], week[d * 24 + 17], week[d * 24 + 12] = 10, 8, 3
    week[5 * 24 + 12] = 2
    text = describe_shape(week / week.sum())
    assert text.startswith("weekday, commute peaks 8h and 17h") and "evening" not in text


def test_kmeans_grouper_is_a_profile_grouper():
    assert isinstance(KMeansGrouper(), ProfileGrouper)


def test_kmeans_with_more_clusters_than_distinct_profiles_leaves_none_empty() -> None:
    """Identical profiles are all at distance 0: each empty cluster must take a point of its own."""
    import warnings

    from footfall.operators.peers.grouping import kmeans

    points = np.array([[0.0, 1.0]] * 5 + [[1.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "Mean of empty slice" fails the test
        labels, centres, inertia = kmeans(points, k=4)
    assert sorted(set(labels.tolist())) == [0, 1, 2, 3]
    assert np.isfinite(centres).all() and inertia == 0.0
