"""`footfall evaluate segments`: are the online segments the segments a batch k-means finds, and how do they drift?

A CSV of till lines (one row per item: a local timestamp, a transaction id, an item; the
shape of the Bread Basket bakery file) is grouped into transactions (items = rows of
the transaction; its time = its first row's) and replayed in time order through the
segments stage (`operators.pipeline.segments_stage`), one `PosEvent` each, with a bucket
closing at each hour boundary as the worker's pipeline closes them. There is no amount
in such a file: every transaction has amount 0, so `log1p(amount)` is a constant that
the scaler maps to 0, and the segments are of items, hour of day and weekday only.

Reported (`DIR/segments_report.json`, `DIR/segments_months.csv`, `DIR/segments_report.md`,
`DIR/segments_plot.png`):

- **ARI online vs batch**: the adjusted Rand index (`segments.ari`) between the final online
  model's assignment of every transaction (River's `KMeans` as it ended, nearest centre,
  learning nothing more) and a batch k-means (`segments.batch.kmeans`: numpy, k-means++
  seeds, `--restarts` restarts, seed fixed, Lloyd's iterations to convergence) on the same
  features standardised by their mean and standard deviation over the whole file (which
  is what the online scaler holds at the end: it is not faded). Also the ARI of the
  assignments as given online (each at its event, the warm-up's events left out).
- **drift per month** (local calendar month): the segments' shares of the month's
  transactions as given online, the published centres and descriptions at the month's
  last close, and the ARI between the month's assignments as given online and the final
  model's of the same transactions (1: the month's segments are the final ones).
- **cost**: microseconds per `on_event` (the stage's whole work per transaction) and per
  closed bucket, the state's size (`to_state()` as JSON, bytes) beside a pickle of the
  same River objects.

`--simulated` instead replays visits drawn with a fixed seed from three planted segments
(short weekday-morning visits, long weekend-afternoon visits, medium weekday-evening
visits), as `VisitEvent`s ending the visits, and reports the ARI of the final model's
assignment (and of the online one) against the planted labels.

Examples
--------
::

    footfall evaluate segments --transactions ../shared/data/bread_basket/bread_basket_transactions.csv \\
        --out run/eval/segments
    footfall evaluate segments --simulated --out run/eval/segments-sim
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import pickle
import random
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from footfall.operators.pipeline.segments_stage import CustomerSegments, SegmentsOutput, StoreSegments
from footfall.operators.pipeline.stage import ClosedBucket, StoreContext
from footfall.operators.segments.ari import adjusted_rand_index
from footfall.operators.segments.batch import kmeans
from footfall.operators.segments.features import centre_of, describe, features_of
from footfall.schemas.events import PosEvent, VisitEvent

__all__ = ["Replay", "Transaction", "measure_stores", "planted_visits", "read_transactions", "register", "replay",
           "run", "standardised"]

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Transaction:
    """One transaction of the CSV: when (UTC ms), its id and its item lines."""

    ts_ms: int
    transaction_id: str
    items: int


def read_transactions(path: Path, tz: str, time_col: str = "timestamp_local", id_col: str = "transaction",
                      item_col: str = "item", ignore_items: Sequence[str] = ()) -> list[Transaction]:
    """The CSV's rows grouped by transaction id, in time order (ties: file order). Bad rows are skipped.

    >>> import tempfile, os
    >>> text = "timestamp_local,transaction,item\\n2016-10-30 10:05:34,2,Scone\\n2016-10-30 09:58:11,1,Bread\\n" \\
    ...        "2016-10-30 10:05:34,2,Tea\\n2016-10-30 10:07:57,3,NONE\\n"
    >>> with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
    ...     _ = f.write(text)
    >>> [(t.transaction_id, t.items) for t in read_transactions(Path(f.name), "Europe/London", ignore_items=["NONE"])]
    [('1', 1), ('2', 2)]
    >>> os.unlink(f.name)

    """
    zone = ZoneInfo(tz)
    first: dict[str, int] = {}
    items: dict[str, int] = {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {time_col, id_col, item_col} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: no column {', '.join(sorted(missing))} (columns: {reader.fieldnames})")
        for row in reader:
            tid, item = (row[id_col] or "").strip(), (row[item_col] or "").strip()
            if not tid or not item or item in ignore_items:
                continue
            try:
                ts = dt.datetime.fromisoformat(row[time_col].strip())
            except ValueError:
                continue
            ts = ts.replace(tzinfo=zone) if ts.tzinfo is None else ts
            ts_ms = int(ts.timestamp() * 1000)
            first[tid] = min(first.get(tid, ts_ms), ts_ms)
            items[tid] = items.get(tid, 0) + 1
    order = sorted(first, key=lambda t: first[t])  # sorted() is stable: ties keep file order
    return [Transaction(first[t], t, items[t]) for t in order]


@dataclass
class Replay:
    """What a replay through the stage gave: each event's features and online segment, the closes, timings."""

    stage: StoreSegments
    kind: str
    ts_ms: list[int] = field(default_factory=list)
    features: list[list[float]] = field(default_factory=list)
    online: list[int | None] = field(default_factory=list)
    outputs: list[SegmentsOutput] = field(default_factory=list)
    event_s: float = 0.0
    close_s: float = 0.0
    closes: int = 0

    def final(self) -> list[int]:
        """Every event's segment by the model as it ended (learning nothing)."""
        model = self.stage.models[self.kind]
        names = model.features
        return [model.predict(dict(zip(names, row, strict=True))) for row in self.features]  # type: ignore[misc]


def replay(events: Iterable[PosEvent | VisitEvent], kind: str, config: CustomerSegments, tz: str,
           bucket_ms: int = HOUR_MS) -> Replay:
    """Feed events (in time order) to one store's segments stage, closing each bucket as time passes it."""
    ctx = StoreContext("eval", bucket_ms, tz, vertical="retail")
    out = Replay(config.build(ctx, None), kind)
    stage, current = out.stage, None

    def close(start: int) -> None:
        t0 = time.perf_counter()
        out.outputs.extend(stage.on_bucket_closed(ClosedBucket(start, bucket_ms, {}), ctx))
        out.close_s += time.perf_counter() - t0
        out.closes += 1

    for event in events:
        start = event.ts_ms - event.ts_ms % bucket_ms
        if current is not None and start > current:
            close(current)
        current = start
        t0 = time.perf_counter()
        stage.on_event(event, ctx)
        out.event_s += time.perf_counter() - t0
        assert stage.last is not None and stage.last[0] == kind
        _, x, segment = stage.last
        out.ts_ms.append(event.ts_ms)
        out.features.append([x[f] for f in features_of(kind)])
        out.online.append(segment)
    if current is not None:
        close(current)
    return out


def standardised(X: np.ndarray) -> np.ndarray:
    """Columns less their mean over their (population) standard deviation; a constant column is 0, as River's."""
    mean, std = X.mean(axis=0), X.std(axis=0)
    return np.where(std > 0, (X - mean) / np.where(std > 0, std, 1.0), 0.0)


def _pos_events(txns: Sequence[Transaction]) -> Iterable[PosEvent]:
    for t in txns:
        yield PosEvent(event_id=t.transaction_id, store_id="eval", ts_ms=t.ts_ms, region=None, zone=None,
                       vertical="retail", transaction_id=t.transaction_id, amount=0.0, items=t.items, currency=None,
                       till_id=None, customer_id=None)


def _state_sizes(stage: StoreSegments) -> dict[str, int]:
    """The state's JSON bytes, its kept samples' part, and a pickle of the River objects it replaces."""
    state = stage.to_state()
    rows = sum(len(json.dumps(m["rows"], separators=(",", ":"))) for m in state["models"].values())
    river = {k: (m.scaler, m.model) for k, m in stage.models.items()}
    models = {k: {f: v for f, v in m.items() if f in ("counts", "means", "vars", "centres")}
              for k, m in state["models"].items()}
    return {"state_json_bytes": len(json.dumps(state, separators=(",", ":"))), "sample_json_bytes": rows,
            "scaler_centres_json_bytes": len(json.dumps(models, separators=(",", ":"))),
            "river_pickle_bytes": len(pickle.dumps(river))}


def evaluate_transactions(txns: Sequence[Transaction], tz: str, k: int = 4, min_events: int = 400,
                          restarts: int = 10, seed: int = 0, min_days: float = 7.0,
                          refresh: bool = True) -> dict[str, Any]:
    """The report of `footfall evaluate segments --transactions` (see the module docstring)."""
    config = CustomerSegments(till_k=k, min_events=min_events, seed=seed, min_days=min_days, refresh=refresh)
    r = replay(_pos_events(txns), "till", config, tz)
    X = np.array(r.features)
    final = r.final()
    _, batch = kmeans(standardised(X), k, restarts=restarts, seed=seed)
    given = [i for i, s in enumerate(r.online) if s is not None]
    ari_final = adjusted_rand_index(final, batch.tolist())
    ari_online = adjusted_rand_index([r.online[i] for i in given], batch[given].tolist())
    # The batch clusters in words, to set beside the online segments.
    batch_centres = [describe("till", centre_of("till", X[batch == j].mean(axis=0))) for j in range(k)
                     if (batch == j).any()]
    months: dict[str, list[int]] = {}
    for i in given:
        month = dt.datetime.fromtimestamp(r.ts_ms[i] / 1000, ZoneInfo(tz)).strftime("%Y-%m")
        months.setdefault(month, []).append(i)
    closes = {dt.datetime.fromtimestamp(o.made_at_ms / 1000, ZoneInfo(tz)).strftime("%Y-%m"): o for o in r.outputs}
    per_month = []
    for month, idx in months.items():
        labels = [r.online[i] for i in idx]
        counts = np.bincount(np.array(labels, dtype=int), minlength=k)
        last = closes.get(month)
        segments = last.kinds[0]["segments"] if last else []
        per_month.append({
            "month": month, "transactions": len(idx),
            "shares": [round(float(c) / len(idx), 4) for c in counts],
            "ari_vs_final": round(adjusted_rand_index(labels, [final[i] for i in idx]), 4),
            "ari_vs_batch": round(adjusted_rand_index(labels, batch[idx].tolist()), 4),
            "centres": [s["centre"] for s in segments], "descriptions": [s["description"] for s in segments],
        })
    final_segments = r.outputs[-1].kinds[0]["segments"] if r.outputs else []
    return {
        "transactions": len(txns), "k": k, "min_events": min_events, "min_days": min_days, "refresh": refresh,
        "restarts": restarts,
        "seed": seed,
        "features": "items, hour of day (sin, cos), weekend (no amount in the file: log1p(amount) is constant 0)",
        "batch": f"numpy k-means++ / Lloyd, {restarts} restarts, seed {seed}, on the standardised features",
        "ari_final_vs_batch": round(ari_final, 4), "ari_online_vs_batch": round(ari_online, 4),
        "final_segments": [{"segment_id": s["segment_id"], "description": s["description"],
                            "share": round(final.count(s["segment_id"]) / len(final), 4)} for s in final_segments],
        "batch_clusters": [{"description": d, "share": round(float((batch == j).mean()), 4)}
                           for j, d in enumerate(batch_centres)],
        "months": per_month,
        "us_per_event": round(1e6 * r.event_s / max(1, len(txns)), 2),
        "us_per_close": round(1e6 * r.close_s / max(1, r.closes), 2), "closes": r.closes,
        **_state_sizes(r.stage),
    }


# -- planted segments ----------------------------------------------------------------------------------

#: The planted visit segments: (name, weekend?, mean local start hour, sd hours, median dwell s, share).
PLANTED = (("short weekday morning", False, 9.5, 0.8, 180.0, 0.4),
           ("long weekend afternoon", True, 15.0, 1.0, 2700.0, 0.3),
           ("medium weekday evening", False, 19.0, 0.8, 720.0, 0.3))


def planted_visits(n: int = 3000, seed: int = 7, tz: str = "Europe/London",
                   first_day: dt.date = dt.date(2026, 9, 7), weeks: int = 8) -> tuple[list[VisitEvent], list[int]]:
    """`n` ended visits drawn from `PLANTED` (fixed seed), in time order, and each one's planted segment."""
    rng = random.Random(seed)
    zone = ZoneInfo(tz)
    drawn = []
    for i in range(n):
        label = rng.choices(range(len(PLANTED)), weights=[p[5] for p in PLANTED])[0]
        _, weekend, hour, sd, dwell, _ = PLANTED[label]
        while True:
            day = first_day + dt.timedelta(days=rng.randrange(7 * weeks))
            if (day.weekday() >= 5) == weekend:
                break
        h = min(23.9, max(0.0, rng.gauss(hour, sd)))
        start = dt.datetime.combine(day, dt.time(int(h), int(60 * (h % 1))), zone)
        dwell_s = round(dwell * math.exp(rng.gauss(0.0, 0.3)), 1)
        end_ms = int(start.timestamp() * 1000 + 1000 * dwell_s)
        drawn.append((end_ms, i, label, dwell_s))
    drawn.sort()
    events = [VisitEvent(event_id=f"v{i}", store_id="eval", ts_ms=end_ms, region=None, zone=None, vertical="retail",
                         action="leave", visit_id=f"v{i}", visitor_id=None, dwell_s=dwell_s)
              for end_ms, i, _, dwell_s in drawn]
    return events, [label for *_, label, _ in drawn]


def evaluate_planted(n: int = 3000, seed: int = 7, tz: str = "Europe/London", min_events: int = 400,
                     min_days: float = 7.0, refresh: bool = True) -> dict[str, Any]:
    """The report of `footfall evaluate segments --simulated`."""
    events, planted = planted_visits(n, seed, tz)
    config = CustomerSegments(visit_k=len(PLANTED), min_events=min_events, min_days=min_days, refresh=refresh)
    r = replay(events, "visit", config, tz)
    final = r.final()
    given = [i for i, s in enumerate(r.online) if s is not None]
    segments = r.outputs[-1].kinds[0]["segments"]
    return {"visits": n, "seed": seed, "planted": [p[0] for p in PLANTED],
            "ari_final_vs_planted": round(adjusted_rand_index(final, planted), 4),
            "ari_online_vs_planted": round(adjusted_rand_index([r.online[i] for i in given],
                                                               [planted[i] for i in given]), 4),
            "segments": [{"segment_id": s["segment_id"], "description": s["description"]} for s in segments],
            "us_per_event": round(1e6 * r.event_s / n, 2), **_state_sizes(r.stage),
            "_plot": (np.array(r.features), final)}


# -- the simulator's stores ------------------------------------------------------------------------------


def measure_stores(days: int = 8, stores: int = 6, seed: int = 11, rate_factor: float = 3.0) -> list[dict[str, Any]]:
    """The simulator's stores (`scripts.simulation`) through `StorePipeline` with the segments stage alone.

    Per store: events, µs per `on_event` of the stage (every event: most are not learned), µs per
    closed bucket, the stage state's largest saved size (`persistence.stage_value` as JSON, at each
    simulated hour) and the segments of each kind in words at the end.
    """
    import orjson

    from footfall.operators.pipeline.persistence import stage_value
    from footfall.operators.pipeline.store import StoreParams
    from footfall.operators.pipeline.store_pipeline import StorePipeline
    from footfall.schemas.events import Limits
    from footfall.schemas.messages import decode_message
    from footfall.schemas.privacy import Pseudonymizer
    from footfall.scripts.simulation import generate, make_stores, rostered

    start_ms = int(dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp() * 1000)  # a Monday
    end_ms = start_ms + days * 24 * HOUR_MS
    profiles = [rostered(replace(p, base_rate_per_h=p.base_rate_per_h * rate_factor), seed)
                for p in make_stores(stores, seed=seed)]
    config = CustomerSegments()
    pipelines = {p.store_id: StorePipeline(p.store_id, StoreParams(tz=p.timezone), [config], vertical=p.vertical)
                 for p in profiles}
    stats = {k: {"events": 0, "event_s": 0.0, "close_s": 0.0, "closes": 0, "max_bytes": 0} for k in pipelines}
    for store_id, pipeline in pipelines.items():  # time each call the pipeline makes to the stage's on_event
        stage = pipeline.stages["segments"]
        stage.on_event = _timed(stage.on_event, stats[store_id])  # type: ignore[method-assign]
    limits, pseudonymize = Limits(max_future_ms=10 * 365 * 24 * HOUR_MS), Pseudonymizer(b"segments-measurement")
    next_hour = start_ms + HOUR_MS

    def measure() -> None:
        for store_id, pipeline in pipelines.items():
            state = pipeline.stages["segments"].to_state()
            size = len(orjson.dumps(stage_value("segments", state)))
            stats[store_id]["max_bytes"] = max(stats[store_id]["max_bytes"], size)

    for message in generate(profiles, start_ms=start_ms, end_ms=end_ms, seed=seed):
        while message.ts_ms >= next_hour:
            measure()
            next_hour += HOUR_MS
        for event in decode_message(message.payload, now_ms=message.ts_ms, limits=limits,
                                    pseudonymize=pseudonymize).events:
            pipeline, st = pipelines[event.store_id], stats[event.store_id]
            pipeline.update(event)
            t0 = time.perf_counter()
            closed = sum(o.kind == "bucket" for o in pipeline.pop_outputs())
            if closed:  # the flow's close and the stage's on_bucket_closed, per closed bucket
                st["close_s"] += time.perf_counter() - t0
                st["closes"] += closed
    measure()
    out = []
    for p in profiles:
        st, stage = stats[p.store_id], pipelines[p.store_id].stages["segments"]
        out.append({"store_id": p.store_id, "vertical": p.vertical, "events": st["events"],
                    "us_per_event": round(1e6 * st["event_s"] / max(1, st["events"]), 2),
                    "max_state_bytes": st["max_bytes"],
                    "us_per_close": round(1e6 * st["close_s"] / max(1, st["closes"]), 1),
                    "kinds": {k: {"learned": m.n, "segments": [describe(k, centre_of(k, c)) for c in m.centres()]}
                              for k, m in stage.models.items()}})
    return out


def _timed(call: Any, stats: dict[str, Any]) -> Any:
    def timed(event: Any, context: StoreContext) -> None:
        t0 = time.perf_counter()
        call(event, context)
        stats["event_s"] += time.perf_counter() - t0
        stats["events"] += 1

    return timed


# -- the command ---------------------------------------------------------------------------------------


def _markdown(report: dict[str, Any]) -> str:
    lines = ["# Segments evaluation", ""]
    if "months" in report:
        lines += [f"{report['transactions']} transactions, k = {report['k']}; features: {report['features']}.", "",
                  f"- ARI final online model vs batch k-means: **{report['ari_final_vs_batch']}**",
                  f"- ARI online (as given, after warm-up) vs batch: {report['ari_online_vs_batch']}",
                  f"- {report['us_per_event']} µs per event, {report['us_per_close']} µs per closed bucket; state "
                  f"{report['state_json_bytes']} B JSON, of which the kept sample {report['sample_json_bytes']} B "
                  f"and the scaler and centres {report['scaler_centres_json_bytes']} B (a pickle of the same River "
                  f"objects: {report['river_pickle_bytes']} B)",
                  "", "| segment | description | share |", "|---|---|---|"]
        lines += [f"| {s['segment_id']} | {s['description']} | {s['share']:.3f} |" for s in report["final_segments"]]
        lines += ["", "Batch clusters: " + "; ".join(f"{c['description']} ({c['share']:.3f})"
                                                    for c in report["batch_clusters"]), "",
                  "| month | transactions | shares by segment id | ARI vs final | ARI vs batch |",
                  "|---|---|---|---|---|"]
        lines += [f"| {m['month']} | {m['transactions']} | {' / '.join(f'{s:.2f}' for s in m['shares'])} | "
                  f"{m['ari_vs_final']} | {m['ari_vs_batch']} |" for m in report["months"]]
    else:
        lines += [f"{report['visits']} simulated visits, planted: {', '.join(report['planted'])}.", "",
                  f"- ARI final model vs planted: **{report['ari_final_vs_planted']}**",
                  f"- ARI online (as given, after warm-up) vs planted: {report['ari_online_vs_planted']}",
                  "- segments: " + "; ".join(f"{s['segment_id']}: {s['description']}" for s in report["segments"])]
    return "\n".join(lines) + "\n"


def _plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    if "months" in report:
        months = report["months"]
        bottom, x = np.zeros(len(months)), np.arange(len(months))
        for s in range(report["k"]):
            shares = np.array([m["shares"][s] for m in months])
            ax.bar(x, shares, bottom=bottom, label=f"segment {s}")
            bottom += shares
        ax.plot(x, [m["ari_vs_final"] for m in months], "k.-", label="ARI vs final")
        ax.set_xticks(x, [m["month"] for m in months])
        ax.set_ylabel("share of transactions / ARI")
        ax.set_title(f"Segments per month (ARI final vs batch {report['ari_final_vs_batch']})")
        ax.legend(loc="upper right", fontsize=8)
    else:
        X, labels = report["_plot"]
        hour = (np.degrees(np.arctan2(X[:, 2], X[:, 3])) / 15) % 24
        ax.scatter(hour, np.expm1(X[:, 0]) / 60, c=labels, s=4, cmap="viridis")
        ax.set_yscale("log")
        ax.set_xlabel("local hour of the visit's start")
        ax.set_ylabel("dwell, minutes")
        ax.set_title(f"Planted visits, final segments (ARI {report['ari_final_vs_planted']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    if args.sim_stores:
        rows = measure_stores(args.days, args.sim_stores)
        print(json.dumps(rows, indent=2))
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "segments_stores.json").write_text(json.dumps(rows, indent=2) + "\n")
        return 0
    try:
        if args.simulated:
            report = evaluate_planted(seed=args.seed if args.seed else 7, tz=args.tz, min_events=args.min_events,
                                      min_days=args.min_days, refresh=not args.no_refresh)
        elif args.transactions is None:
            print("footfall evaluate segments: give --transactions CSV or --simulated", file=sys.stderr)
            return 2
        else:
            txns = read_transactions(args.transactions, args.tz, args.time_col, args.id_col, args.item_col,
                                     [s for s in args.ignore_items.split(",") if s])
            if len(txns) < args.min_events:
                raise ValueError(f"{args.transactions}: {len(txns)} transactions, fewer than --min-events")
            report = evaluate_transactions(txns, args.tz, args.k, args.min_events, args.restarts, args.seed,
                                           args.min_days, not args.no_refresh)
    except (OSError, ValueError) as exc:
        print(f"footfall evaluate segments: {exc}", file=sys.stderr)
        return 2
    shown = {k: v for k, v in report.items() if not k.startswith("_")}
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "segments_report.json").write_text(json.dumps(shown, indent=2) + "\n")
        (args.out / "segments_report.md").write_text(_markdown(shown))
        if "months" in report:
            with (args.out / "segments_months.csv").open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["month", "transactions", "segment_id", "share", "description", "ari_vs_final"])
                for m in report["months"]:
                    for s, share in enumerate(m["shares"]):
                        words = m["descriptions"][s] if s < len(m["descriptions"]) else ""
                        w.writerow([m["month"], m["transactions"], s, share, words, m["ari_vs_final"]])
        _plot(report, args.out / "segments_plot.png")
    print(_markdown(shown))
    return 0


def register(what: argparse._SubParsersAction) -> None:
    """Add `footfall evaluate segments` to the `evaluate` subcommands."""
    p = what.add_parser(
        "segments", help="replay a CSV of till lines through the online segments; ARI against batch k-means, drift",
        description="Group a CSV of till lines (one row per item) into transactions and replay them in time order "
        "through the segments stage; report the ARI of the online segments against a batch k-means on the same "
        "standardised features, the drift per month, µs per event and the state's size. --simulated: visits "
        "from planted segments instead, scored against the planted labels.",
    )
    p.add_argument("--transactions", type=Path, help="CSV of till lines (the Bread Basket file's shape)")
    p.add_argument("--simulated", action="store_true", help="score on simulated visits with planted segments")
    p.add_argument("--sim-stores", type=int, default=0, metavar="N",
                   help="instead: N simulated stores through the pipeline for --days days: state size, µs per event")
    p.add_argument("--days", type=int, default=8, help="days simulated for --sim-stores (default 8)")
    p.add_argument("--out", type=Path, help="folder for segments_report.json/.md, segments_months.csv and "
                   "segments_plot.png (default: print only)")
    p.add_argument("--tz", default="Europe/London", help="time zone of the local timestamps (default Europe/London)")
    p.add_argument("--k", type=int, default=4, help="till segments (default 4)")
    p.add_argument("--min-events", type=int, default=400, help="warm-up: events before segments, and the sample "
                   "kept (default 400)")
    p.add_argument("--min-days", type=float, default=7.0, help="warm-up: days at least (default 7)")
    p.add_argument("--no-refresh", action="store_true", help="no daily seeding again from the kept sample "
                   "(to measure what it brings)")
    p.add_argument("--restarts", type=int, default=10, help="batch k-means restarts (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the seeding and batch k-means (default 0; "
                   "--simulated: of the draws, default 7)")
    cols = p.add_argument_group("columns (defaults: the Bread Basket file)")
    cols.add_argument("--time-col", default="timestamp_local", help="local time of the line (ISO 8601)")
    cols.add_argument("--id-col", default="transaction", help="transaction id")
    cols.add_argument("--item-col", default="item", help="item of the line")
    cols.add_argument("--ignore-items", default="NONE", help="comma-separated item values that are no item")
    p.set_defaults(func=run)
