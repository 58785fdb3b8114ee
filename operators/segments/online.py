"""One store's segments of one kind, learned online: River's `StandardScaler` then `cluster.KMeans`.

Each event's features (`segments.features`) are standardised by a running mean and
variance (`preprocessing.StandardScaler`) and given to sequential k-means
(`cluster.KMeans`, which holds the centres and finds the nearest), which says the
event's segment as it learns it. Three things are added around River:

- **the learning rate**: River's `KMeans` moves the nearest centre a constant `halflife` of
  the way to each point. Events come in time order, and a store's day runs from morning
  to evening: with a constant rate every centre is dragged along the clock (on simulated
  stores, every till centre sat at 17:00-19:00 local at the end of a day while sales ran
  10:00-19:00). So the nearest centre moves by MacQueen's rate instead, 1 / (events it
  holds), floored at `min_rate` (it then forgets as an exponential mean of about
  1 / `min_rate` of its events, and can follow a drift over weeks); River's
  `learn_predict_one` takes no per-centre rate, so the step is written here.

- **warm-up and seeds**: River seeds its centres at random (Gaussian draws), which can leave
  a centre that is never the nearest (a dead segment). So the warm-up's events are kept (as
  raw features: a uniform reservoir sample of at most `min_events` rows, Vitter's algorithm R
  with draws fixed by the seed and the event's number) and, once there have been
  `min_events` events over at least `min_days` days, the centres are seeded by batch k-means
  on them (`segments.batch.kmeans`, k-means++ seeds, 5 restarts). Before that, no event
  gets a segment. The sample goes on being kept (uniform over every event seen), and
  `refresh()` (the stage calls it once a local day) seeds again from it when batch k-means
  fits it with `REFRESH_GAIN` less inertia than the centres have: a centre moved online
  never leaves a poor local optimum (on the Bread Basket file, seeds 0-4: ARI against the
  batch k-means 0.53, 0.84, 0.91, 0.95, 0.87 without, 0.98, 0.92, 0.95, 0.99, 0.74 with:
  better on average, not on every seed). Why days as well as events: events come in
  time order, and a warm-up of Monday to Thursday has seen no weekend customer; seeded
  without them, the centres of a decreasing rate never split to make room for them (the
  planted visits of `footfall evaluate segments --simulated --no-refresh --min-events 200`:
  ARI 0.58 seeded on the first 200 events (`--min-days 0`), 1.0 on a week's).
- **stable ids**: `publish()` matches the centres to the ones published last time
  (`segments.matching.match_ids`, on distances in the current standardised units), so a
  segment keeps its id while its centre drifts. The first ids go by the first feature
  (items, or dwell), smallest first.

State (`to_state()`): plain data, the scaler's counts, means and variances, the centres
and the published centres as lists of floats (k x 5 each), the ids, the centres' sizes
(about 1.1 kB in JSON) and the kept sample (at most `min_events` rows of 5 floats rounded
to 4 decimals: about 13 kB in JSON at the default 400), whatever the number of events seen.

Examples
--------
>>> seg = OnlineSegments("visit", k=2, min_events=4)
>>> def visit(dwell_s, hour):
...     return visit_features(dwell_s, 1_790_121_600_000 + hour * 3_600_000 + int(dwell_s * 1000), "UTC")
>>> [seg.learn_predict(visit(d, h)) for d, h in [(60, 8), (3000, 15), (90, 8), (2800, 15)]]
[None, None, None, 1]
>>> [seg.learn_predict(visit(d, h)) for d, h in [(70, 8), (3100, 15)]]
[0, 1]
>>> [(i, describe("visit", centre_of("visit", c))) for i, c in seg.publish()]
[(0, 'short visit (1 min), weekday morning'), (1, 'long visit (49 min), weekday afternoon')]
>>> again = OnlineSegments.from_state(seg.to_state(), kind="visit", k=2, min_events=4)
>>> again.predict(visit(80, 8)), again.predict(visit(2900, 15))
(0, 1)

"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from river import cluster, preprocessing

from footfall.operators.segments.batch import assign, kmeans
from footfall.operators.segments.features import centre_of, describe, features_of, visit_features  # noqa: F401
from footfall.operators.segments.matching import match_ids

__all__ = ["OnlineSegments"]

#: Batch k-means restarts when the centres are seeded at the end of the warm-up, and at each `refresh`.
SEED_RESTARTS = 5
#: A refresh replaces the centres when batch k-means fits the kept sample with this much less inertia.
REFRESH_GAIN = 0.02


class OnlineSegments:
    """Segments of one kind (`till` or `visit`) of one store: a scaler, k centres, their ids.

    Parameters
    ----------
    kind
        `till` (transactions) or `visit` (ended visits): which features.
    k
        Segments.
    min_events
        Events seen before the centres are seeded and segments are given; also the size of
        the sample kept (rows).
    min_days
        Days (of event time, from the first event) the warm-up lasts at least: 7 sees a whole
        week, weekend included. An event learned without `ts_ms` does not wait for it.
    min_rate
        The least a centre moves towards each of its events (the floor of 1 / its events):
        0.001 remembers about a thousand of a segment's events (weeks of a small store's).
    seed
        Seed of the k-means++ seeding and of River's `KMeans`.

    """

    def __init__(self, kind: str, k: int = 4, min_events: int = 400, min_rate: float = 0.001, seed: int = 0,
                 min_days: float = 0.0) -> None:
        if k < 1 or min_events < k:
            raise ValueError(f"need 1 <= k <= min_events, got k={k}, min_events={min_events}")
        if not 0 < min_rate <= 1:
            raise ValueError(f"min_rate must be in (0, 1], got {min_rate}")
        self.kind = kind
        self.features = features_of(kind)
        self.k, self.min_events, self.min_rate, self.seed, self.min_days = k, min_events, min_rate, seed, min_days
        self.first_ms: int | None = None  # the first event's time: the warm-up runs min_days from it
        self.scaler = preprocessing.StandardScaler()
        self.model: cluster.KMeans | None = None
        self.n = 0
        self.rows: list[list[float]] = []  # the warm-up's events, until the centres are seeded
        self.ids: list[int] = []  # the model's centre i has segment id ids[i]
        self.sizes: list[int] = []  # events the model's centre i holds (its seeding rows included)
        self.published: list[list[float]] = []  # by segment id: the centre last published, raw feature units

    @classmethod
    def _unit_test_params(cls):
        yield {"kind": "till", "k": 2, "min_events": 3}
        yield {"kind": "visit", "k": 3, "min_events": 4, "min_rate": 0.5}

    @classmethod
    def _unit_test_inputs(cls, params: dict[str, Any]) -> dict[str, Any]:
        t0, tz = 1_790_164_800_000, "Europe/London"
        if params["kind"] == "till":
            xs = [_till(1 + i % 3, 2.0 + 7 * (i % 2), t0 + i * 3_700_000, tz) for i in range(8)]
        else:
            xs = [visit_features(60.0 + 900 * (i % 3), t0 + i * 5_300_000, tz, 0.0) for i in range(9)]
        probe = xs[1]
        steps = [("learn_predict", (x,), {}) for x in xs[:3]] + [("publish", (), {})]
        steps += [("learn_predict", (x,), {}) for x in xs[3:]] + [("refresh", (), {}), ("publish", (), {})]
        return {"steps": steps, "reads": [("predict", (probe,), {}), ("centres", (), {})],
                "empty": [(("predict", (probe,), {}), None), (("centres", (), {}), [])]}

    @property
    def warm(self) -> bool:
        """Whether segments are given (the warm-up is over)."""
        return self.model is not None

    # -- learning ---------------------------------------------------------------------------------

    def _scaled(self, x: Mapping[str, float]) -> dict[str, float]:
        return self.scaler.transform_one(dict(x))

    def learn_predict(self, x: Mapping[str, float], ts_ms: int | None = None) -> int | None:
        """Learn one event's features (of time `ts_ms`); its segment id (None during the warm-up)."""
        self.n += 1
        self.scaler.learn_one(dict(x))
        if self.model is None:
            if self.first_ms is None and ts_ms is not None:
                self.first_ms = ts_ms
            # Rounded as kept: 4 decimals change no seed that matters and halve the warm-up's state.
            row = [round(float(x[f]), 4) for f in self.features]
            self._keep(row)
            days = 0.0 if ts_ms is None or self.first_ms is None else (ts_ms - self.first_ms) / 86_400_000
            if self.n < self.min_events or (ts_ms is not None and days < self.min_days):
                return None
            self._seed()
            assert self.model is not None
        self._keep([round(float(x[f]), 4) for f in self.features])
        z = self._scaled(x)
        i = self.model.predict_one(z)
        self.sizes[i] += 1
        rate = max(1.0 / self.sizes[i], self.min_rate)
        centre = self.model.centers[i]
        for f, v in z.items():
            centre[f] += rate * (v - centre[f])
        return self.ids[i]

    def _keep(self, row: list[float]) -> None:
        if len(self.rows) < self.min_events:
            self.rows.append(row)
        else:  # algorithm R: each of the n events so far is kept with probability min_events / n
            j = _draw(self.seed, self.n) % self.n
            if j < self.min_events:
                self.rows[j] = row

    def _sample(self) -> np.ndarray:
        return np.array([[v[f] for f in self.features] for v in (self._scaled(dict(zip(self.features, r, strict=True)))
                                                                for r in self.rows)])

    def refresh(self) -> bool:
        """Seed again from the kept sample if that fits it clearly better (`REFRESH_GAIN`); True if it did.

        Centres moved online never leave a poor local optimum (two centres sharing a group,
        one straddling two); batch k-means on the sample, from fresh k-means++ seeds, can.
        The ids follow at the next `publish()`.
        """
        if self.model is None or len(self.rows) < self.k:
            return False
        z = self._sample()
        now = np.array([[self.model.centers[i][f] for f in self.features] for i in range(self.k)])
        inertia_now = float(((z - now[assign(z, now)]) ** 2).sum())
        centres, labels = kmeans(z, self.k, restarts=SEED_RESTARTS, seed=self.seed + self.n)
        inertia_new = float(((z - centres[labels]) ** 2).sum())
        if not inertia_new < (1.0 - REFRESH_GAIN) * inertia_now:
            return False
        self.model = self._kmeans(centres.tolist())
        per_row = self.n / len(self.rows)  # events each kept row stands for
        self.sizes = [max(1, round(c * per_row)) for c in np.bincount(labels, minlength=self.k).tolist()]
        return True

    def predict(self, x: Mapping[str, float]) -> int | None:
        """The segment id the model gives `x` now, learning nothing (None during the warm-up)."""
        if self.model is None:
            return None
        return self.ids[self.model.predict_one(self._scaled(x))]

    def _seed(self) -> None:
        centres, labels = kmeans(self._sample(), self.k, restarts=SEED_RESTARTS, seed=self.seed)
        self.model = self._kmeans(centres.tolist())
        self.sizes = np.bincount(labels, minlength=self.k).tolist()
        raw = self._raw_centres()
        order = sorted(range(self.k), key=lambda i: (raw[i][0], raw[i][1:]))
        self.ids = [0] * self.k
        for rank, i in enumerate(order):
            self.ids[i] = rank
        self.published = [raw[i] for i in order]

    def _kmeans(self, centres: list[list[float]]) -> cluster.KMeans:
        model = cluster.KMeans(n_clusters=self.k, halflife=self.min_rate, seed=self.seed)
        for i, centre in enumerate(centres):
            model.centers[i].update(zip(self.features, centre, strict=True))
        return model

    # -- centres ----------------------------------------------------------------------------------

    def _stats(self) -> tuple[np.ndarray, np.ndarray]:
        means = np.array([self.scaler.means[f] for f in self.features])
        stds = np.array([math.sqrt(self.scaler.vars[f]) for f in self.features])
        return means, stds

    def _raw_centres(self) -> list[list[float]]:
        """The model's centres (in its order) in raw feature units (a constant feature: its mean)."""
        assert self.model is not None
        means, stds = self._stats()
        return [(means + stds * np.array([self.model.centers[i][f] for f in self.features])).tolist()
                for i in range(self.k)]

    def publish(self) -> list[tuple[int, list[float]]]:
        """Match the centres to those published last (ids follow); `(id, raw centre)` by id. [] in warm-up."""
        if self.model is None:
            return []
        means, stds = self._stats()
        safe = np.where(stds > 0, stds, 1.0)
        raw = self._raw_centres()
        self.ids = match_ids((np.array(self.published) - means) / safe, range(self.k), (np.array(raw) - means) / safe)
        for i, segment in enumerate(self.ids):
            self.published[segment] = raw[i]
        return [(segment, list(c)) for segment, c in enumerate(self.published)]

    def centres(self) -> list[list[float]]:
        """The centres last published, by segment id, in raw feature units ([] in warm-up)."""
        return [list(c) for c in self.published]

    # -- state ------------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        assert self.model is None or len(self.ids) == self.k
        return {
            "n": self.n,
            "first_ms": self.first_ms,
            "counts": [self.scaler.counts[f] for f in self.features],
            "means": [self.scaler.means[f] for f in self.features],
            "vars": [self.scaler.vars[f] for f in self.features],
            "centres": None if self.model is None else [[self.model.centers[i][f] for f in self.features]
                                                        for i in range(self.k)],
            "ids": list(self.ids),
            "sizes": list(self.sizes),
            "published": [list(c) for c in self.published],
            "rows": [list(r) for r in self.rows],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None, **config: Any) -> OnlineSegments:
        seg = cls(**config)
        if not state:
            return seg
        seg.n = int(state["n"])
        seg.first_ms = state["first_ms"]
        for f, count, mean, var in zip(seg.features, state["counts"], state["means"], state["vars"], strict=True):
            if count:  # River's scaler keeps only the features it has seen
                seg.scaler.counts[f] = int(count)
                seg.scaler.means[f] = float(mean)
                seg.scaler.vars[f] = float(var)
        if state["centres"] is not None:
            seg.model = seg._kmeans([list(map(float, c)) for c in state["centres"]])
        seg.ids = [int(i) for i in state["ids"]]
        seg.sizes = [int(n) for n in state["sizes"]]
        seg.published = [list(map(float, c)) for c in state["published"]]
        seg.rows = [list(map(float, r)) for r in state["rows"]]
        return seg


def _draw(seed: int, n: int) -> int:
    """A 64-bit draw fixed by (seed, n) (splitmix64's mixer): a sample that replays the same, with no RNG state."""
    z = (seed * 0x9E3779B97F4A7C15 + n * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


_MASK = (1 << 64) - 1


def _till(items: int, amount: float, ts_ms: int, tz: str) -> dict[str, float]:
    from footfall.operators.segments.features import till_features

    return till_features(items, amount, ts_ms, tz)
