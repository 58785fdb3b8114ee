"""What footfall publishes: each output record kind as a `TypedDict`, and its JSON Schema.

Events are checked on the way in (`schemas.events`); records are described here, so
a consumer (the dashboard, another service, a producer in another language) knows
every field, its type, its unit and whether it may be null. Each kind is a
`TypedDict` (nested objects have their own); a field's description, with its unit,
is the string in its `Annotated[...]`. A `RecordKind` ties the kind's `type` value
to its TypedDict and the topic it goes out on; `RECORD_KINDS` holds the built-in
kinds, and `register_record_kind` adds a later capability's. `record_schema` builds
the JSON Schema (draft 2020-12) of a kind from the TypedDict's annotations
(`type_schema`); `footfall schemas export` writes them to
`schemas/json/<type>.record.schema.json`.

Units: `_ms` fields are UTC epoch milliseconds (lengths: milliseconds), `_s`
seconds, `_pct` percent, `*_rate` fractions; money (`sales`, `avg_basket`) is in
the store's currency units. Every per-store record starts with `type`,
`store_id`, `region`, `vertical` and `tz`, and ends with `emitted_at_ms`.

Where they go (`<p>` is `FOOTFALL_TOPIC_PREFIX`; the Redis keys are `schemas.keys`'):

- `bucket` and `live`: topic `<p>.aggregates`; Redis `store:<id>:latest` and `:live`
  (hashes: strings as they are, other values as JSON), history and day hashes;
- `forecast`: topic `<p>.predictions`; Redis forecast hash and history;
- `alert`: topic `<p>.alerts`; Redis open alerts and alert history;
- `rollup` and `rollup_live`: Redis only (roll-up latest/live hashes, history), no topic;
- `peers` and `peer_groups`: Redis only (`store:<id>:peers`, `peer-groups`), written by `footfall peers`.

Examples
--------
>>> RECORD_KINDS["forecast"].topic, RECORD_KINDS["rollup"].topic
('predictions', None)
>>> doc = record_schema("alert")
>>> doc["properties"]["severity"]["enum"], doc["additionalProperties"]
(['info', 'warning', 'critical'], False)
>>> type_schema(int | None)
{'type': ['integer', 'null']}
>>> type_schema(dict[str, list[float]])
{'type': 'object', 'additionalProperties': {'type': 'array', 'items': {'type': 'number'}}}

"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, Required, TypedDict

__all__ = [
    "RECORD_KINDS",
    "AlertRecord",
    "BucketRecord",
    "Compare",
    "Comparison",
    "DailyCorrelation",
    "DayVersus",
    "ForecastPoint",
    "ForecastRecord",
    "HeatmapSeries",
    "InsightsRecord",
    "Kpis",
    "LiveRecord",
    "OccupancySummary",
    "PeerGroup",
    "PeerGroupsRecord",
    "PeersRecord",
    "QualityRecord",
    "QualitySensor",
    "QualityUptime",
    "QueueKpis",
    "QueueSummary",
    "RecordKind",
    "RollupLiveRecord",
    "RollupRecord",
    "Segment",
    "SegmentCentre",
    "SegmentSet",
    "SegmentsRecord",
    "ServiceStaffing",
    "StaffingPoint",
    "StaffingRecord",
    "Versus",
    "WeekSummary",
    "WeekVersus",
    "WindowCounts",
    "Windows",
    "record_schema",
    "register_record_kind",
    "type_schema",
]

#: A store's vertical, as events give it (`schemas.events.VERTICALS`; a test checks they agree).
Vertical = Literal["retail", "bank", "telecom"]
#: A closed bucket's data-quality grade (`operators.quality.grade`).
Quality = Literal["ok", "partial", "missing", "no_sensors"]

_DATE = {"format": "date"}
_DATE_TIME = {"format": "date-time"}


# -- shared parts ---------------------------------------------------------------------------------


class Kpis(TypedDict):
    """Counts and shop KPIs of one bucket or one local day (`operators.pipeline.store.BucketKpis`).

    Counts are of the events in the bucket (or day); money is in the store's currency units.
    """

    arrivals: Annotated[int, "people in: door counts in + visits started"]
    departures: Annotated[int, "people out: door counts out + visits ended"]
    door_in: Annotated[int, "people in, by door counters"]
    door_out: Annotated[int, "people out, by door counters"]
    visits_started: Annotated[int, "visits started (visit `arrive` events)"]
    visits_ended: Annotated[int, "visits ended (visit `leave` events)"]
    transactions: Annotated[int, "till transactions"]
    items: Annotated[int, "items sold"]
    tickets_issued: Annotated[int, "queue tickets issued"]
    tickets_called: Annotated[int, "queue tickets called to a counter"]
    tickets_served: Annotated[int, "queue tickets served"]
    tickets_abandoned: Annotated[int, "queue tickets abandoned (the customer left)"]
    tickets_no_show: Annotated[int, "queue tickets called with nobody coming"]
    heartbeats: Annotated[int, "sensor heartbeats"]
    events: Annotated[int, "events counted, every kind"]
    sales: Annotated[float, "sum of till amounts, currency units, rounded to cents"]
    visitors: Annotated[int, "people in (door counts in + visits started), as `arrivals`"]
    conversion_rate: Annotated[float | None, "transactions / visitors (a fraction, may exceed 1); null: no visitors"]
    avg_basket: Annotated[float | None, "sales / transactions, currency units; null: no transactions"]
    sales_per_visitor: Annotated[float | None, "sales / visitors, currency units; null: no visitors"]
    items_per_transaction: Annotated[float | None, "items / transactions; null: no transactions"]
    dwell_n: Annotated[int, "visits ended with a dwell time"]
    dwell_mean_s: Annotated[float | None, "mean dwell time, seconds (exact); null: none ended"]
    dwell_p50_s: Annotated[float | None, "median dwell time, seconds (2 % relative error); null: none ended"]
    dwell_p90_s: Annotated[float | None, "90th percentile of dwell time, seconds (2 % relative error); null: none"]


class Versus(TypedDict):
    """A value against a reference (`operators.windows.rolling`)."""

    diff: Annotated[float, "value - reference"]
    ratio: Annotated[float | None, "value / reference; null when the reference is 0"]


class Comparison(TypedDict):
    """One quantity of a closed bucket against last week and the rolling baselines."""

    value: Annotated[float, "the bucket's value"]
    last_week: Annotated[float | None, "the same bucket one week earlier; null: not known"]
    vs_last_week: Annotated[Versus | None, "value against last_week; null without it"]
    baseline: Annotated[float | None, "mean of the last closed buckets (8 by default); null before the first"]
    vs_baseline: Annotated[Versus | None, "value against baseline; null without it"]
    ewm: Annotated[float | None, "exponentially weighted mean of the closed buckets; null before the first"]
    vs_ewm: Annotated[Versus | None, "value against ewm; null without it"]


class Compare(TypedDict):
    """A closed bucket's quantities against last week and the baselines (`operators.pipeline.store.COMPARED`)."""

    arrivals: Annotated[Comparison, "people in"]
    transactions: Annotated[Comparison, "till transactions"]
    tickets_issued: Annotated[Comparison, "queue tickets issued"]


class WindowCounts(TypedDict):
    """Counts in one sliding window of event time ending at the store's watermark."""

    arrivals: Annotated[int, "people in"]
    departures: Annotated[int, "people out"]
    transactions: Annotated[int, "till transactions"]
    tickets_issued: Annotated[int, "queue tickets issued"]


# Window names are keys, not identifiers: the functional form. The worker's windows are
# `operators.pipeline.store.StoreParams.windows_ms`' defaults, and the roll-ups read these three names.
Windows = TypedDict("Windows", {
    "5m": Annotated[WindowCounts, "the last 5 minutes"],
    "15m": Annotated[WindowCounts, "the last 15 minutes"],
    "60m": Annotated[WindowCounts, "the last hour"],
})
Windows.__doc__ = "The store's sliding windows of event time, by length."


class OccupancySummary(TypedDict):
    """People inside the store now, from door counts (`operators.kpis.occupancy.Occupancy.summary`)."""

    occupancy: Annotated[int, "people inside now, never below 0"]
    drift: Annotated[int, "exits that found the store empty, in total since counting began"]
    reset_residual: Annotated[int | None, "people removed by the latest daily reset; null before the first"]
    last_reset_ms: Annotated[int | None, "latest daily reset applied; null before the first"]
    next_reset_ms: Annotated[int | None, "next daily reset due; null before the first event"]
    late: Annotated[int, "events not counted: older than the latest reset, in total"]


class QueueKpis(TypedDict):
    """Queue KPIs of one service, or of all together (`operators.kpis.queues`), since the daily reset."""

    issued: Annotated[int, "tickets issued"]
    waiting_now: Annotated[int, "tickets waiting now (issued, not yet called or ended)"]
    in_service_now: Annotated[int, "tickets called and not yet ended"]
    called: Annotated[int, "tickets called (a served or no-show one with no call seen included)"]
    served: Annotated[int, "tickets served"]
    abandoned: Annotated[int, "tickets abandoned"]
    no_show: Annotated[int, "tickets called with nobody coming"]
    expired: Annotated[int, "open tickets dropped after no step for a long time"]
    wait_n: Annotated[int, "answered tickets with a known wait"]
    wait_mean_s: Annotated[float | None, "mean wait of answered tickets, seconds; null: none"]
    wait_p50_s: Annotated[float | None, "median wait of answered tickets, seconds; null: none"]
    wait_p90_s: Annotated[float | None, "90th percentile of the wait of answered tickets, seconds; null: none"]
    service_n: Annotated[int, "served tickets with a known service time"]
    service_mean_s: Annotated[float | None, "mean service time, seconds; null: none known"]
    service_level_pct: Annotated[float | None, "percent answered within the target wait; null: none judged"]
    sl_within_target: Annotated[int, "answered within the target wait"]
    sl_answered: Annotated[int, "answered with a known wait"]
    sl_abandoned_late: Annotated[int, "abandoned after waiting longer than the target"]
    counters_active: Annotated[int, "counters that called or served recently"]
    est_wait_s: Annotated[float | None, "expected wait for a ticket taken now, seconds; null: no service time"]
    est_wait_checked: Annotated[int, "answered tickets whose est_wait_s at issue was compared with their wait"]
    est_wait_mae_s: Annotated[float | None, "mean absolute error of est_wait_s against the actual waits, seconds"]
    est_wait_bias_s: Annotated[float | None, "mean of est_wait_s minus the actual wait, seconds (negative: short)"]


class QueueSummary(TypedDict):
    """A branch's or shop's queues now (`operators.kpis.queues.QueueKpis.get`)."""

    # Service names come from the events (`service`): the keys are data, the values typed.
    services: Annotated[dict[str, QueueKpis], "KPIs per service type"]
    total: Annotated[QueueKpis, "KPIs of all services together"]
    as_of_ms: Annotated[int | None, "latest queue event time seen"]
    ignored: Annotated[int, "duplicate or out-of-order ticket steps ignored, in total"]
    evicted: Annotated[int, "open tickets dropped to bound memory, in total"]
    late: Annotated[int, "ticket steps older than the daily reset, not counted, in total"]
    reset_dropped: Annotated[int, "tickets still open at the latest daily reset"]
    last_reset_ms: Annotated[int | None, "latest daily reset; null before the first"]


class ForecastPoint(TypedDict):
    """One future bucket of a forecast."""

    target_ms: Annotated[int, "start of the bucket forecast"]
    h: Annotated[int, "horizon, in buckets ahead (1 = the next bucket)"]
    forecast: Annotated[float, "expected count"]
    lo80: Annotated[float, "lower bound of the 80 % interval, >= 0"]
    hi80: Annotated[float, "upper bound of the 80 % interval"]
    lo95: Annotated[float, "lower bound of the 95 % interval, >= 0"]
    hi95: Annotated[float, "upper bound of the 95 % interval"]
    model: Annotated[str, "the candidate model behind this point"]


# -- record kinds ---------------------------------------------------------------------------------


class _BucketHead(TypedDict):
    type: Literal["bucket"]
    store_id: Annotated[str, "the store"]
    region: Annotated[str | None, "the store's region, from its events; null until one gives it"]
    vertical: Annotated[Vertical | None, "the store's vertical, from its events; null until one gives it"]
    tz: Annotated[str, "the store's IANA time zone"]
    day: Annotated[str, "local date (YYYY-MM-DD) of the bucket's start in `tz`", _DATE]
    bucket_start: Annotated[str, "bucket start, ISO 8601 UTC (`Z`)", _DATE_TIME]
    bucket_start_ms: Annotated[int, "bucket start"]
    bucket_s: Annotated[int, "bucket length, seconds"]
    status: Annotated[Literal["open", "closed"],
                      "open: counts so far, published again as events arrive; closed: end + grace passed"]
    revision: Annotated[int, "0 while open; 1 at the close; 2, 3, ... each time late data within the restate "
                             "horizon (24 h) restated the closed bucket: keep the highest"]
    restated: Annotated[bool, "a closed bucket published again with late data (revision >= 2)"]
    quality: Annotated[Quality | None,
                       "closed buckets: how much of it the store's door sensors covered (`ok`, `partial`, `missing`, "
                       "`no_sensors`; see the quality record); null: open (graded at the close), a restated "
                       "revision (not graded again), or a store without door counters or heartbeats"]
    held_back: Annotated[list[str], "KPIs given as null because the bucket's door counts are incomplete "
                                    "(quality partial or missing): conversion_rate, sales_per_visitor"]


class _BucketTail(TypedDict):
    compare: NotRequired[Annotated[Compare, "closed buckets only: against last week and the baselines (a "
                                            "restated revision: the references of its first, its new values)"]]
    watermark_ms: Annotated[int | None, "the store's watermark (its event time now, robust to a few skewed "
                                        "clocks) when published"]
    last_event_id: Annotated[str | None, "open buckets: the last event counted into it; closed: null"]
    emitted_at_ms: Annotated[int, "wall-clock time the record was built"]


class BucketRecord(_BucketHead, Kpis, _BucketTail):
    """One bucket of one store: its counts and KPIs, open (so far) or closed (final).

    Topic `<p>.aggregates` (key: the store id); Redis `store:<id>:latest` (flattened), history
    stream and day hash. `compare` is on closed buckets only.
    """


class LiveRecord(TypedDict):
    """A store now, as of its watermark: windows, occupancy, today against a week ago, queues.

    Topic `<p>.aggregates` (key: the store id); Redis `store:<id>:live` (flattened, replaced whole).
    """

    type: Literal["live"]
    store_id: Annotated[str, "the store"]
    region: Annotated[str | None, "the store's region, from its events; null until one gives it"]
    vertical: Annotated[Vertical | None, "the store's vertical, from its events; null until one gives it"]
    tz: Annotated[str, "the store's IANA time zone"]
    as_of_ms: Annotated[int | None, "the store's watermark: its event time now, robust to a few skewed clocks "
                                    "(an event far ahead moves it only when corroborated); null before any"]
    windows: Windows
    occupancy: OccupancySummary
    day: Annotated[str | None, "local date (YYYY-MM-DD) of the watermark; null before any event", _DATE]
    today: Annotated[Kpis | None, "totals of that local day; null before any event"]
    same_day_last_week: Annotated[Kpis | None, "totals of the same weekday a week earlier; null: not kept"]
    queue: Annotated[QueueSummary | None, "queues; null at a store that never sent a queue event"]
    duplicates: Annotated[int, "events dropped as repeats of an event id, in total"]
    late: Annotated[int, "events not counted because their bucket closed more than the restate horizon "
                         "(24 h) before, in total"]
    restated: Annotated[int, "events counted into a bucket already closed and published (each restates it), "
                             "in total"]
    quality: Annotated[Quality | None, "the grade of the store's newest closed bucket (see the bucket record); "
                                       "null: none graded since the worker started, or no door counters"]
    emitted_at_ms: Annotated[int, "wall-clock time the record was built"]


class ForecastRecord(TypedDict):
    """One series' forecast of the next buckets, with 80 % and 95 % intervals, made at a closed bucket.

    Topic `<p>.predictions` (key: the store id); Redis `store:<id>:forecast` (series -> record)
    and the forecast history stream.
    """

    type: Literal["forecast"]
    store_id: Annotated[str, "the store"]
    region: Annotated[str | None, "the store's region, from its events; null until one gives it"]
    vertical: Annotated[Vertical | None, "the store's vertical, from its events; null until one gives it"]
    tz: Annotated[str, "the store's IANA time zone"]
    series: Annotated[str, "what is forecast: arrivals; transactions (retail); tickets_issued (bank, telecom)"]
    made_at_ms: Annotated[int, "start of the last bucket learned"]
    made_at: Annotated[str, "made_at_ms, ISO 8601 UTC (`Z`)", _DATE_TIME]
    bucket_ms: Annotated[int, "bucket length"]
    model: Annotated[str, "the candidate model behind most points"]
    cold: Annotated[bool, "fewer than a week of buckets learned: the forecast leans on the vertical's profile"]
    points: Annotated[list[ForecastPoint], "the next buckets, nearest first"]
    emitted_at_ms: Annotated[int, "wall-clock time the record was built"]


class StaffingPoint(TypedDict):
    """The staffing of one forecast interval (retail, model `ratio`: associates, the queue fields null)."""

    target_ms: Annotated[int, "start of the interval (a bucket)"]
    h: Annotated[int, "intervals ahead, 1 = the next"]
    arrivals: Annotated[float, "customers staffed for: the forecast's `quantile` of tickets issued (retail: "
                               "visitors), to a tenth"]
    agents: Annotated[int, "fewest counters meeting the service-level target (retail: associates, visitors per "
                           "hour / shoppers_per_associate, rounded up)"]
    scheduled: Annotated[int, "staff to schedule for them: ceil(agents / (1 - shrinkage))"]
    service_level: Annotated[float | None, "share of customers served within answer_s with `agents` counters; "
                                           "null for retail"]
    asa_s: Annotated[float | None, "mean wait in queue over every customer with `agents` counters, seconds; "
                                   "null for retail"]
    abandon: Annotated[float | None, "share of customers giving up with `agents` counters; null under Erlang C"]
    sl_at_active: Annotated[float | None, "service level with the counters open now; null when none is"]
    abandon_at_active: Annotated[float | None, "abandonment with the counters open now; null: Erlang C or none"]


class ServiceStaffing(TypedDict):
    """One service's line (teller, advice, repair...) in the next interval, as if it had its own counters."""

    service: Annotated[str, "the service, as queue tickets name it"]
    share: Annotated[float, "its share of the store's tickets, faded like the service times"]
    arrivals: Annotated[float, "its share of the next interval's staffed arrivals, to a tenth"]
    aht_s: Annotated[float, "its mean service time, whole seconds"]
    patience_s: Annotated[float | None, "its customers' mean patience, seconds; null: none gave up yet"]
    agents: Annotated[int, "counters it alone would need for the target"]
    service_level: Annotated[float, "its service level with those counters"]


class StaffingRecord(TypedDict):
    """Counters a store with a queue (bank, telecom) needs for each forecast interval, made at a closed bucket.

    A retail store's record (`model` ratio) gives associates for its forecast visitors instead,
    with the queue fields null.

    Topic `<p>.staffing` (key: the store id); Redis `store:<id>:staffing` (the latest, flattened),
    `store:<id>:staffing-history` (stream) and the channel `staffing:<id>`.
    """

    type: Literal["staffing"]
    store_id: Annotated[str, "the store"]
    region: Annotated[str | None, "the store's region, from its events; null until one gives it"]
    vertical: Annotated[Vertical | None, "the store's vertical, from its events; null until one gives it"]
    tz: Annotated[str, "the store's IANA time zone"]
    made_at_ms: Annotated[int, "start of the closed bucket whose forecast of tickets issued is staffed"]
    bucket_ms: Annotated[int, "interval (bucket) length"]
    model: Annotated[Literal["erlang_a", "erlang_c", "ratio"],
                     "Erlang A once customers were seen to give up, else Erlang C; ratio: retail associates"]
    answer_s: Annotated[float | None, "target answer time: served within it counts as on time, seconds; "
                                      "null for retail"]
    target_sl: Annotated[float | None, "target share of customers served within answer_s; null for retail"]
    shrinkage: Annotated[float, "share of scheduled time staff are not at a counter"]
    quantile: Annotated[Literal["forecast", "hi80", "hi95"], "the forecast value staffed on"]
    aht_s: Annotated[float | None, "mean service time learned from served tickets, whole seconds; null for retail"]
    service_cv: Annotated[float | None, "coefficient of variation of service times (1 for exponential)"]
    patience_s: Annotated[float | None, "mean patience learned from abandoned tickets, seconds; null: none yet"]
    counters_active: Annotated[int | None, "counters open now: serving a ticket, or that called or ended one "
                                           "within the last two mean service times (5-30 min); null for retail"]
    points: Annotated[list[StaffingPoint], "the forecast intervals, nearest first"]
    advice: Annotated[str | None, "when the counters open now are too few for the next interval, in words; "
                                  "retail: when the last bucket's door counts were incomplete"]
    services: Annotated[list[ServiceStaffing], "each service's line in the next interval; empty for retail"]
    shoppers_per_associate: Annotated[float | None, "retail: the target visitors per hour per associate; "
                                                    "null for queues"]
    quality: Annotated[Quality | None, "retail: the data-quality grade of the bucket it was made at (partial or "
                                       "missing: the forecast did not learn that bucket, and `advice` says so); "
                                       "null for queues, or without door counters"]
    emitted_at_ms: Annotated[int, "wall-clock time the record was built"]


class SegmentCentre(TypedDict):
    """A segment's centre in the original units; the other kind's fields are null."""

    items: Annotated[float | None, "till: mean items per transaction; null for visits"]
    amount: Annotated[float | None, "till: expm1 of the mean log1p(amount), currency units; null for visits"]
    dwell_s: Annotated[float | None, "visit: expm1 of the mean log1p(dwell), seconds; null for tills"]
    spend: Annotated[float | None, "visit: expm1 of the mean log1p(spend linked to the visit), currency units "
                                   "(0: none linked); null for tills"]
    hour: Annotated[float, "circular mean of the local hour of day, 0-24"]
    weekend: Annotated[float, "share of the segment's events on a Saturday or Sunday (local)"]


class Segment(TypedDict):
    """One segment: its stable id, its centre in words and units, its events in the bucket and the day."""

    segment_id: Annotated[int, "stable id, 0..k-1: kept while the centre drifts and across restarts"]
    description: Annotated[str, "the centre in words, e.g. 'single item, weekday morning'"]
    centre: Annotated[SegmentCentre, "the centre in the original units"]
    bucket_count: Annotated[int, "events of the closed bucket given this segment"]
    day_count: Annotated[int, "events of the local day's closed buckets so far given this segment"]
    bucket_share: Annotated[float | None, "bucket_count / bucket_events; null: no events in the bucket"]
    day_share: Annotated[float | None, "day_count / day_events; null: no events that day yet"]


class SegmentSet(TypedDict):
    """One kind of segments of a store (till transactions or ended visits)."""

    kind: Annotated[Literal["till", "visit"], "till: transactions; visit: ended visits"]
    k: Annotated[int, "segments"]
    events_learned: Annotated[int, "events of this kind the model has learned, warm-up included"]
    bucket_events: Annotated[int, "events of the closed bucket given a segment"]
    day_events: Annotated[int, "events of the local day's closed buckets so far given a segment"]
    segments: Annotated[list[Segment], "by segment id"]


class SegmentsRecord(TypedDict):
    """A store's customer segments at a closed bucket, learned online, with their shares.

    Topic `<p>.segments` (key: the store id). Only stores with a kind past its warm-up get one.
    """

    type: Literal["segments"]
    store_id: Annotated[str, "the store"]
    region: Annotated[str | None, "the store's region, from its events; null until one gives it"]
    vertical: Annotated[Vertical | None, "the store's vertical, from its events; null until one gives it"]
    tz: Annotated[str, "the store's IANA time zone"]
    made_at_ms: Annotated[int, "start of the closed bucket"]
    bucket_ms: Annotated[int, "bucket length"]
    day: Annotated[str, "the bucket's local day, ISO 8601", _DATE]
    kinds: Annotated[list[SegmentSet], "each kind past its warm-up: till, then visit"]
    emitted_at_ms: Annotated[int, "wall-clock time the record was built"]


class HeatmapSeries(TypedDict):
    """One series' weekday × hour heatmap: 7 rows (Monday first) of 24 local hours."""

    mean: Annotated[list[list[float | None]], "mean count per weekday × local hour over the days that had the "
                                              "hour, to 3 decimals; null: no such day in the window"]
    weeks: Annotated[list[list[int]], "days each mean is over (0-4)"]


class DayVersus(TypedDict):
    """One series' total of the day against the same weekday last week and last year (364 days back)."""

    total: Annotated[int | None, "the day's total"]
    last_week: Annotated[int | None, "the same weekday 7 days before; null: no data that day"]
    last_week_change: Annotated[int | None, "total - last_week; null without last_week"]
    last_week_change_pct: Annotated[float | None, "100 × change / last_week; null without it or when it is 0"]
    last_year: Annotated[int | None, "the same weekday 364 days before; null: no data that day"]
    last_year_change: Annotated[int | None, "total - last_year; null without last_year"]
    last_year_change_pct: Annotated[float | None, "100 × change / last_year; null without it or when it is 0"]


class WeekVersus(TypedDict):
    """One series' week (its days with data) against the week before, with Welch's t-test of the daily totals."""

    total: Annotated[int | None, "the week's total; null: no day with data"]
    last_total: Annotated[int | None, "the week before's total; null: no day with data"]
    change: Annotated[int | None, "total - last_total"]
    change_pct: Annotated[float | None, "100 × change / last_total; null without it or when it is 0"]
    days: Annotated[int, "days of the week with data"]
    last_days: Annotated[int, "days of the week before with data"]
    mean: Annotated[float | None, "mean daily total"]
    sd: Annotated[float | None, "sample standard deviation of the daily totals; null below 2 days"]
    last_mean: Annotated[float | None, "the week before's mean daily total"]
    last_sd: Annotated[float | None, "the week before's sample standard deviation"]
    t: Annotated[float | None, "Welch's t of this week's daily totals against the week before's; null below 2 "
                               "days a side or with no spread"]
    df: Annotated[float | None, "Welch–Satterthwaite degrees of freedom"]
    p: Annotated[float | None, "two-sided p-value"]
    significant: Annotated[bool | None, "p < 0.05"]


class DailyCorrelation(TypedDict):
    """Pearson's r of daily arrivals with daily transactions (retail) or tickets issued (queues)."""

    x: Annotated[str, "arrivals"]
    y: Annotated[str | None, "transactions or tickets_issued"]
    r: Annotated[float | None, "Pearson's r; null below 3 days or with a constant side"]
    days: Annotated[int, "days of the last 28 (to the week's end) with both totals"]


class WeekSummary(TypedDict):
    """A local ISO week (Monday to Sunday) against the week before, given at its Sunday's close."""

    week_start: Annotated[str, "the week's Monday, ISO 8601", _DATE]
    week_end: Annotated[str, "the week's Sunday, ISO 8601", _DATE]
    series: Annotated[dict[str, WeekVersus], "per series"]
    correlation: Annotated[DailyCorrelation, "daily arrivals against sales or tickets over 4 weeks"]


class InsightsRecord(TypedDict):
    """A store's local day in perspective, given at the closed bucket that ends the day.

    Topic `<p>.insights` (key: the store id); Redis `store:<id>:insights` (the latest, JSON),
    `store:<id>:insights-history` (stream) and the channel `insights:<id>`.
    """

    type: Literal["insights"]
    store_id: Annotated[str, "the store"]
    region: Annotated[str | None, "the store's region, from its events; null until one gives it"]
    vertical: Annotated[Vertical | None, "the store's vertical, from its events; null until one gives it"]
    tz: Annotated[str, "the store's IANA time zone"]
    day: Annotated[str, "the local day, ISO 8601", _DATE]
    day_start_ms: Annotated[int, "the day's first instant (local midnight)"]
    day_end_ms: Annotated[int, "the next day's first instant: 23 to 25 hours later"]
    made_at_ms: Annotated[int, "end of the closed bucket that ended the day (or start of a later day's first)"]
    series: Annotated[list[str], "series shown: arrivals and transactions (retail) or tickets_issued (bank, "
                                 "telecom); all three while the vertical is unknown"]
    heatmap_from: Annotated[str, "first day of the heatmap's 28-day window, ISO 8601", _DATE]
    heatmap: Annotated[dict[str, HeatmapSeries], "per series: mean per weekday × local hour, 28 days to `day`"]
    today: Annotated[dict[str, DayVersus], "per series: the day against last week and last year"]
    week: Annotated[WeekSummary | None, "on a Sunday: the week against the week before; else null"]
    emitted_at_ms: Annotated[int, "wall-clock time the record was built"]


class QualitySensor(TypedDict):
    """One known sensor in a closed bucket: the share of the bucket its reports covered."""

    sensor_id: Annotated[str, "the sensor, as its events name it"]
    coverage: Annotated[float, "share of the bucket covered by its door interval reports and heartbeats (not "
                               "down), 0-1, to 4 decimals"]
    reported: Annotated[bool, "a door event or heartbeat (any status) of it is timed in the bucket"]
    last_seen_ms: Annotated[int, "time of its latest event, as of the bucket's close"]
    graded: Annotated[bool, "it sent an interval report or a heartbeat, so its coverage counts in the grade; a "
                            "counter of per-person readings alone is known but not graded (its readings do not "
                            "say when it was listening)"]


class QualityUptime(TypedDict):
    """Each sensor's covered share of a local day, given with the day's last closed bucket."""

    day: Annotated[str, "the local day, ISO 8601", _DATE]
    day_start_ms: Annotated[int, "the day's first instant (local midnight)"]
    day_end_ms: Annotated[int, "the next day's first instant: 23 to 25 hours later"]
    hours: Annotated[float, "the day's length, hours (23 or 25 when clocks change)"]
    sensors: Annotated[dict[str, float], "per sensor known that day: covered time / the day's length, 0-1, "
                                         "to 4 decimals"]


class QualityRecord(TypedDict):
    """A store's data quality in a closed bucket: how much of it each door sensor's reports covered.

    Topic `<p>.quality` (key: the store id); Redis `store:<id>:quality` (the latest, JSON),
    `store:<id>:quality-history` (stream) and the channel `quality:<id>`. Stores that never sent a
    door event or heartbeat get none.
    """

    type: Literal["quality"]
    store_id: Annotated[str, "the store"]
    region: Annotated[str | None, "the store's region, from its events; null until one gives it"]
    vertical: Annotated[Vertical | None, "the store's vertical, from its events; null until one gives it"]
    tz: Annotated[str, "the store's IANA time zone"]
    bucket_start_ms: Annotated[int, "start of the closed bucket"]
    bucket_ms: Annotated[int, "bucket length"]
    quality: Annotated[Quality,
                       "ok: every known sensor covered >= ok_coverage of the bucket; missing: the mean coverage "
                       "is <= missing_coverage; partial: between; no_sensors: no sensor graded"]
    coverage: Annotated[float | None, "the store's coverage: mean over its known sensors, 0-1; null: none known"]
    sensors_known: Annotated[int, "sensors heard from within the last 7 days (of event time)"]
    sensors: Annotated[list[QualitySensor], "each known sensor, by id"]
    silent_sensors: Annotated[list[str], "known sensors whose reports covered none of the bucket"]
    sensors_dropped: Annotated[int, "sensors dropped so far because the store had more than it can follow (64)"]
    door_in: Annotated[int, "people in, from the bucket's door counts"]
    door_out: Annotated[int, "people out, from the bucket's door counts"]
    imbalance: Annotated[int, "door_in - door_out"]
    imbalance_ratio: Annotated[float, "(door_in - door_out) / max(door_in, 1)"]
    uptime: Annotated[QualityUptime | None, "with the closed bucket that ends a local day: each sensor's "
                                            "covered share of that day; else null"]
    thresholds: Annotated[dict[str, float], "the coverage thresholds graded by: ok_coverage, missing_coverage"]
    emitted_at_ms: Annotated[int, "wall-clock time the record was built"]


class AlertRecord(TypedDict):
    """One change of an alert (opened, updated, resolved): one incident of one store is one alert.

    Topic `<p>.alerts` (key: the store id); Redis `store:<id>:alerts` (open ones, id -> record)
    and the chain's alert history stream.
    """

    type: Literal["alert"]
    alert_id: Annotated[str, "stable id: 16 hex digits from store, kind and opening bucket",
                        {"pattern": "^[0-9a-f]{16}$"}]
    store_id: Annotated[str, "the store"]
    kind: Annotated[str, "what: <series>_high, <series>_low, over_capacity, queue_wait, sensor_silent, "
                         "entry_exit_drift, signals"]
    severity: Annotated[Literal["info", "warning", "critical"],
                        "info, warning or critical; an update of an open alert never lowers it"]
    state: Annotated[Literal["opened", "updated", "resolved"], "the change this record is"]
    started_ms: Annotated[int, "start of the bucket that opened it"]
    updated_ms: Annotated[int, "event time of this change"]
    bucket_start_ms: Annotated[int, "start of the latest bucket where the condition held"]
    bucket_end_ms: Annotated[int, "end of that bucket"]
    observed: Annotated[float | None, "the value judged (a count, or a count so far)"]
    expected: Annotated[float | None, "forecast mean for the bucket; null without a forecast"]
    expected_lo: Annotated[float | None, "lower bound of the forecast's 95 % interval; null without a forecast"]
    expected_hi: Annotated[float | None, "upper bound of the forecast's 95 % interval; null without a forecast"]
    score: Annotated[float, "how far past the limit: 1 = at the limit"]
    explanation: Annotated[str, "in words, with local times"]
    resolved_ms: Annotated[int | None, "event time it resolved; null while open"]
    region: Annotated[str | None, "the store's region, from its events; null until one gives it"]
    vertical: Annotated[Vertical | None, "the store's vertical, from its events; null until one gives it"]
    tz: Annotated[str, "the store's IANA time zone (explanations use it)"]
    started: Annotated[str, "started_ms, ISO 8601 UTC (`Z`)", _DATE_TIME]
    bucket_start: Annotated[str, "bucket_start_ms, ISO 8601 UTC (`Z`)", _DATE_TIME]
    emitted_at_ms: Annotated[int, "wall-clock time the record was built"]


class RollupRecord(TypedDict):
    """A region's or the chain's bucket: the sums of its members' latest records of that bucket.

    Redis only (no topic): `rollup:<level>:<key>:latest` (flattened) and its history stream.
    Ratios are computed from the sums; dwell quantiles do not sum and are left out.
    """

    type: Literal["rollup"]
    level: Annotated[Literal["region", "chain"], "what is rolled up: a region's stores, or the chain's regions"]
    key: Annotated[str, "the region (`unassigned` for stores without one), or `all` for the chain"]
    bucket_start: Annotated[str, "bucket start, ISO 8601 UTC (`Z`)", _DATE_TIME]
    bucket_start_ms: Annotated[int, "bucket start"]
    bucket_s: Annotated[int, "bucket length, seconds"]
    members: Annotated[int, "members summed: stores of a region, regions of the chain"]
    stores: Annotated[int, "stores summed"]
    closed: Annotated[int, "stores whose bucket has closed"]
    arrivals: Annotated[int, "people in"]
    departures: Annotated[int, "people out"]
    door_in: Annotated[int, "people in, by door counters"]
    door_out: Annotated[int, "people out, by door counters"]
    visits_started: Annotated[int, "visits started"]
    visits_ended: Annotated[int, "visits ended"]
    transactions: Annotated[int, "till transactions"]
    items: Annotated[int, "items sold"]
    tickets_issued: Annotated[int, "queue tickets issued"]
    tickets_called: Annotated[int, "queue tickets called"]
    tickets_served: Annotated[int, "queue tickets served"]
    tickets_abandoned: Annotated[int, "queue tickets abandoned"]
    tickets_no_show: Annotated[int, "queue tickets no-show"]
    heartbeats: Annotated[int, "sensor heartbeats"]
    events: Annotated[int, "events counted"]
    visitors: Annotated[int, "people in, as arrivals"]
    dwell_n: Annotated[int, "visits ended with a dwell time"]
    sales: Annotated[float, "sum of till amounts, currency units (stores' currencies added as they are)"]
    stores_graded: Annotated[int, "stores whose bucket has a data-quality grade (closed, with door counters)"]
    stores_partial: Annotated[int, "of those, graded partial"]
    stores_missing: Annotated[int, "of those, graded missing"]
    quality: Annotated[Quality | None, "missing: every store's bucket is; partial: any store's is partial or "
                                       "missing; ok: the graded ones are complete; null: none graded"]
    complete_visitors: Annotated[int, "visitors of the stores whose door counts are not known to be incomplete"]
    complete_transactions: Annotated[int, "transactions of those stores"]
    conversion_rate: Annotated[float | None, "complete_transactions / complete_visitors (stores with partial or "
                                             "missing door counts left out); null: no such visitors"]
    avg_basket: Annotated[float | None, "sales / transactions; null: no transactions"]
    sales_per_visitor: Annotated[float | None, "sales / visitors of the stores with complete door counts; null: "
                                               "no such visitors"]
    items_per_transaction: Annotated[float | None, "items / transactions; null: no transactions"]
    dwell_mean_s: Annotated[float | None, "mean dwell time, seconds; null: none"]
    seq: Annotated[int, "changes applied to these totals: a newer state of the same bucket has a higher seq"]
    emitted_at_ms: Annotated[int, "wall-clock time the record was built"]


class RollupLiveRecord(TypedDict):
    """A region's or the chain's stores now: the sums of their latest live records.

    Redis only (no topic): `rollup:<level>:<key>:live` (flattened).
    """

    type: Literal["rollup_live"]
    level: Annotated[Literal["region", "chain"], "what is rolled up: a region's stores, or the chain's regions"]
    key: Annotated[str, "the region (`unassigned` for stores without one), or `all` for the chain"]
    members: Annotated[int, "members summed: stores of a region, regions of the chain"]
    stores: Annotated[int, "stores summed"]
    occupancy: Annotated[int, "people inside now"]
    waiting_now: Annotated[int, "queue tickets waiting now"]
    in_service_now: Annotated[int, "queue tickets being served now"]
    counters_active: Annotated[int, "queue counters active"]
    arrivals_5m: Annotated[int, "people in, the last 5 minutes"]
    arrivals_15m: Annotated[int, "people in, the last 15 minutes"]
    arrivals_60m: Annotated[int, "people in, the last hour"]
    transactions_15m: Annotated[int, "till transactions, the last 15 minutes"]
    tickets_issued_15m: Annotated[int, "queue tickets issued, the last 15 minutes"]
    today_arrivals: Annotated[int, "people in, the stores' local today"]
    today_transactions: Annotated[int, "till transactions, today"]
    today_tickets_issued: Annotated[int, "queue tickets issued, today"]
    last_week_arrivals: Annotated[int, "people in, the same weekday a week earlier"]
    last_week_transactions: Annotated[int, "till transactions, the same weekday a week earlier"]
    duplicates: Annotated[int, "events dropped as repeats, in total"]
    late: Annotated[int, "events not counted as late, in total"]
    today_sales: Annotated[float, "sales today, currency units"]
    last_week_sales: Annotated[float, "sales the same weekday a week earlier, currency units"]
    today_vs_last_week_arrivals: Annotated[float | None, "today_arrivals / last_week_arrivals; null: none last week"]
    today_conversion_rate: Annotated[float | None, "today_transactions / today_arrivals; null: no arrivals"]
    seq: Annotated[int, "changes applied to these totals: a newer state has a higher seq"]
    emitted_at_ms: Annotated[int, "wall-clock time the record was built"]


class PeersRecord(TypedDict):
    """A store against its peer group: the stores whose hour-of-week shape is like its own, on the same day.

    Redis only (no topic), written by `footfall peers` from the stores' latest insights records:
    `store:<id>:peers` (the latest, JSON) and the channel `peers:<id>`. Groups are made once a day,
    their ids stable from one day to the next.
    """

    type: Literal["peers"]
    store_id: Annotated[str, "the store"]
    region: Annotated[str | None, "the store's region, from its insights record"]
    vertical: Annotated[Vertical | None, "the store's vertical, from its insights record"]
    tz: Annotated[str, "the store's IANA time zone"]
    day: Annotated[str, "the local day compared: its latest insights record's day, ISO 8601", _DATE]
    grouped_on: Annotated[str, "the day the groups were last made, ISO 8601", _DATE]
    group_id: Annotated[int, "its peer group: stable while the group keeps most of its stores"]
    group_size: Annotated[int, "stores in the group, itself included"]
    group_description: Annotated[str, "the group's hour-of-week shape (its centre) in words"]
    peers: Annotated[list[str], "up to 10 other stores of the group, nearest in shape first"]
    peers_compared: Annotated[int, "other stores of the group with an arrivals total for the same day"]
    arrivals: Annotated[int | None, "the store's arrivals that day; null: none known"]
    peer_median_arrivals: Annotated[float | None, "median of those peers' arrivals that day (the store itself "
                                                  "left out); null: no peer has the day"]
    vs_peers_pct: Annotated[float | None, "100 × (arrivals / peer_median_arrivals - 1), to 2 decimals; null "
                                          "without either or when the median is 0"]
    level_index: Annotated[float | None, "arrivals over the store's usual total for that weekday (its heatmap "
                                         "row's sum), to 4 decimals; null: unknown"]
    peer_median_level_index: Annotated[float | None, "median of the peers' level indices that day; null: none"]
    vs_peers_level_pct: Annotated[float | None, "100 × (level_index / peer_median_level_index - 1), to 2 "
                                                "decimals: the day against its usual, against the peers' "
                                                "days against theirs; null without either"]
    emitted_at_ms: Annotated[int, "wall-clock time the record was built"]


class PeerGroup(TypedDict):
    """One peer group of the chain."""

    group_id: Annotated[int, "stable id"]
    size: Annotated[int, "stores in the group"]
    description: Annotated[str, "the group's hour-of-week shape (its centre) in words"]
    stores: Annotated[list[str], "its stores, by id"]


class PeerGroupsRecord(TypedDict):
    """The chain's peer groups: which stores share an hour-of-week shape, as of a day.

    Redis only (no topic), written by `footfall peers`: `peer-groups` (the latest, JSON) and the
    channel `peer-groups`.
    """

    type: Literal["peer_groups"]
    day: Annotated[str | None, "the day the groups were made, ISO 8601; null: never", _DATE]
    k: Annotated[int, "groups"]
    silhouette: Annotated[float | None, "mean silhouette of the latest grouping (-1 to 1, higher: better "
                                        "separated), to 4 decimals; null with one group"]
    stores_read: Annotated[int, "insights records read"]
    stores_grouped: Annotated[int, "stores given a peers record"]
    left_out: Annotated[dict[str, str], "store id -> why it was not grouped (too few hours seen, no arrivals, "
                                        "joined after the day's grouping)"]
    groups: Annotated[list[PeerGroup], "each group, by id"]
    emitted_at_ms: Annotated[int, "wall-clock time the record was built"]


class RollupHeatmapSeries(TypedDict):
    """One series of a roll-up's heatmap: 7 rows (Monday first) of 24 local hours."""

    sum: Annotated[list[list[float | None]], "the sum of the stores' mean counts in that weekday × local hour "
                                             "(each store in its own local time), to 3 decimals; null: no "
                                             "store had the hour"]
    stores: Annotated[list[list[int]], "stores each sum is over (those with the hour in their 4 weeks)"]


class RollupHeatmapRecord(TypedDict):
    """A region's or the chain's weekday × hour heatmap: the sum of its stores' insights heatmaps.

    Redis only (no topic), written by `footfall peers`: `rollup:<level>:<key>:heatmap` (JSON) and the
    channel `rollup:<level>:<key>`.
    """

    type: Literal["rollup_heatmap"]
    level: Annotated[Literal["region", "chain"], "what is rolled up: a region's stores, or every store"]
    key: Annotated[str, "the region (`unassigned` for stores without one), or `all` for the chain"]
    day: Annotated[str | None, "the latest day of the stores' insights records, ISO 8601", _DATE]
    stores: Annotated[int, "stores summed"]
    heatmap: Annotated[dict[str, RollupHeatmapSeries], "per series: the sum of the stores' 4-week means"]
    emitted_at_ms: Annotated[int, "wall-clock time the record was built"]


# -- the registry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordKind:
    """One kind of published record.

    Parameters
    ----------
    type
        The value of the record's `type` field; the TypedDict's `type` must be `Literal[type]`.
    schema
        Its TypedDict.
    topic
        Suffix of the topic it is published on (`aggregates` for `<prefix>.aggregates`), or None
        for a record written to Redis only.
    description
        What it is, in a sentence.

    """

    type: str
    schema: type
    topic: str | None
    description: str


#: Every kind registered: the built-in ones below, then those `register_record_kind` adds.
RECORD_KINDS: dict[str, RecordKind] = {}


def register_record_kind(kind: RecordKind) -> RecordKind:
    """Add a kind; return it. A different kind with the same `type` is refused (ValueError).

    >>> class OtherBucket(TypedDict):
    ...     type: Literal["bucket"]
    >>> register_record_kind(RecordKind("bucket", OtherBucket, "aggregates", "another bucket"))
    Traceback (most recent call last):
    ...
    ValueError: record type 'bucket' is registered already (BucketRecord)

    """
    if not typing.is_typeddict(kind.schema):
        raise ValueError(f"record kind {kind.type!r}: schema must be a TypedDict, got {kind.schema!r}")
    hint = typing.get_type_hints(kind.schema).get("type")
    if typing.get_origin(hint) is not Literal or typing.get_args(hint) != (kind.type,):
        raise ValueError(f"record kind {kind.type!r}: {kind.schema.__name__}'s `type` must be "
                         f"Literal[{kind.type!r}], got {hint!r}")
    existing = RECORD_KINDS.get(kind.type)
    if existing is not None and existing != kind:
        raise ValueError(f"record type {kind.type!r} is registered already ({existing.schema.__name__})")
    RECORD_KINDS[kind.type] = kind
    return kind


for _kind in (
    RecordKind("bucket", BucketRecord, "aggregates", "One bucket of one store: counts and KPIs, open or closed."),
    RecordKind("live", LiveRecord, "aggregates",
               "A store now: sliding windows, occupancy, today against a week ago, queues."),
    RecordKind("forecast", ForecastRecord, "predictions",
               "One series' forecast of a store's next buckets, with 80 % and 95 % intervals."),
    RecordKind("alert", AlertRecord, "alerts", "One change (opened, updated, resolved) of a store's alert."),
    RecordKind("staffing", StaffingRecord, "staffing",
               "Counters a store with a queue needs for each forecast interval, and an advice line for now."),
    RecordKind("segments", SegmentsRecord, "segments",
               "A store's customer segments (till transactions, visits) at a closed bucket, with their shares."),
    RecordKind("insights", InsightsRecord, "insights",
               "A store's local day: weekday × hour heatmap, the day against last week and last year, "
               "the week against the week before."),
    RecordKind("quality", QualityRecord, "quality",
               "A store's data quality in a closed bucket: each door sensor's coverage, ok / partial / missing, "
               "the door imbalance, and at a local day's end each sensor's uptime."),
    RecordKind("rollup", RollupRecord, None, "A region's or the chain's bucket: its stores' sums."),
    RecordKind("rollup_live", RollupLiveRecord, None,
               "A region's or the chain's stores now: their live records' sums."),
    RecordKind("peers", PeersRecord, None,
               "A store's arrivals of its latest day against the median of its peer group (stores of the same "
               "hour-of-week shape), from the stores' insights records."),
    RecordKind("peer_groups", PeerGroupsRecord, None,
               "The chain's peer groups by hour-of-week shape: members, each shape in words, k, silhouette."),
    RecordKind("rollup_heatmap", RollupHeatmapRecord, None,
               "A region's or the chain's weekday × hour heatmap: the sum of its stores' 4-week means."),
):
    register_record_kind(_kind)


# -- JSON Schema from the annotations -------------------------------------------------------------

_RECORD_ID = "https://footfall.dev/schemas/records/{type}.record.schema.json"
_SIMPLE = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}


def record_schema(kind: RecordKind | str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a record kind (a `RecordKind`, or its `type`)."""
    if isinstance(kind, str):
        kind = RECORD_KINDS[kind]
    where = (f"Published on topic <prefix>.{kind.topic}." if kind.topic
             else "Written to Redis only: no topic.")
    body = type_schema(kind.schema)
    body.pop("title")
    body.pop("description", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": _RECORD_ID.format(type=kind.type),
        "title": f"footfall {kind.type} record",
        "description": f"{kind.description} {where}",
        **body,
    }


def type_schema(tp: Any) -> dict[str, Any]:
    """The JSON Schema of a type annotation; nested TypedDicts go to `$defs`, a TypedDict given is inlined.

    int -> integer, float -> number (integers too), str, bool, None -> null, `X | None`,
    `list[X]` -> array, `dict[str, X]` -> object of X, `Literal` -> const/enum, `Any` -> anything,
    a TypedDict -> a closed object (`additionalProperties: false`; `NotRequired` fields
    optional), `Annotated[X, "text", {...}]` -> X with that description and those keywords.
    """
    defs: dict[type, dict[str, Any]] = {}
    doc = _object_schema(tp, defs) if typing.is_typeddict(tp) else _schema(tp, defs)
    named: dict[str, dict[str, Any]] = {}
    for td, schema in defs.items():
        if td.__name__ in named:
            raise TypeError(f"two TypedDicts named {td.__name__!r}: $defs names must be unique")
        named[td.__name__] = schema
    if named:
        doc["$defs"] = dict(sorted(named.items()))
    return doc


def _unwrap(tp: Any) -> tuple[Any, list[Any], bool | None]:
    """`(type, Annotated metadata, required)`: `Annotated`, `Required` and `NotRequired` peeled off."""
    metadata: list[Any] = []
    required = None
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            metadata += tp.__metadata__
            tp = typing.get_args(tp)[0]
        elif origin in (Required, NotRequired):
            required = origin is Required
            tp = typing.get_args(tp)[0]
        else:
            return tp, metadata, required


def _annotate(schema: dict[str, Any], metadata: list[Any]) -> dict[str, Any]:
    for item in metadata:
        if isinstance(item, str):
            schema["description"] = item
        elif isinstance(item, dict):
            schema.update(item)
    return schema


def _schema(tp: Any, defs: dict[type, dict[str, Any]]) -> dict[str, Any]:
    tp, metadata, _ = _unwrap(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        schema: dict[str, Any] = {}
    elif tp is None or tp in _SIMPLE:
        schema = {"type": _SIMPLE[type(None) if tp is None else tp]}
    elif origin is Literal:
        schema = {"const": args[0]} if len(args) == 1 else {"enum": list(args)}
    elif origin in (typing.Union, types.UnionType):
        schema = _union([_schema(a, defs) for a in args])
    elif origin is list:
        schema = {"type": "array", "items": _schema(args[0], defs)}
    elif origin is dict:
        if args[0] is not str:
            raise TypeError(f"JSON object keys are strings: {tp!r}")
        values = _schema(args[1], defs)
        # dict[str, Any] is an object of anything: allowed, but only where its content is open.
        schema = {"type": "object", **({"additionalProperties": values} if values else {})}
    elif typing.is_typeddict(tp):
        if tp not in defs:
            defs[tp] = {}  # reserved first: a TypedDict that refers to itself stops here
            defs[tp] = _object_schema(tp, defs)
        schema = {"$ref": f"#/$defs/{tp.__name__}"}
    else:
        raise TypeError(f"no JSON Schema for {tp!r}")
    return _annotate(schema, metadata)


def _union(members: list[dict[str, Any]]) -> dict[str, Any]:
    """`X | Y`: one `type` list when every member is a plain type, one `enum` for literals and null."""
    if all(m.keys() == {"type"} and isinstance(m["type"], str) for m in members):
        return {"type": list(dict.fromkeys(m["type"] for m in members))}
    if all(m.keys() <= {"const", "enum"} or m == {"type": "null"} for m in members):
        values: list[Any] = []
        for m in members:
            values += m["enum"] if "enum" in m else [m["const"]] if "const" in m else [None]
        return {"enum": values}
    return {"anyOf": members}


def _object_schema(td: type, defs: dict[type, dict[str, Any]]) -> dict[str, Any]:
    # get_type_hints, not __required_keys__: with `from __future__ import annotations`, Python 3.11's
    # TypedDict sees `NotRequired[...]` as a string and counts every key required.
    hints = typing.get_type_hints(td, include_extras=True)
    properties: dict[str, Any] = {}
    required = []
    for name, hint in hints.items():
        _, _, is_required = _unwrap(hint)
        if is_required if is_required is not None else td.__total__:
            required.append(name)
        properties[name] = _schema(hint, defs)
    schema: dict[str, Any] = {"title": td.__name__, "type": "object", "properties": properties,
                              "required": required, "additionalProperties": False}
    if td.__doc__:
        schema["description"] = inspect.cleandoc(td.__doc__)
    return schema
