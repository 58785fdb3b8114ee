"""`footfall evaluate forecast --replay`: the same series through the real stack, forecasts compared.

The offline evaluation runs the operators in one process; this runs them where
they live: each bucket's count becomes a door interval report on Kafka, a real
worker counts it, closes the bucket, learns it and publishes its forecast to the
predictions topic and Redis. The forecasts in Redis are then compared, one by
one, with those the worker's own operators (`StoreFlow`, `StoreModels`) make
offline from the same events. They must be equal: same values, intervals and models, to the
4 decimals the worker publishes.

What the stack sees differs from the CSV in one way only: a bucket with no data
closes as zero there (empty buckets are real), so gaps are learned as zeros on
both sides of the comparison.

The broker and Redis come from `FOOTFALL_BROKER` and `FOOTFALL_REDIS_URL`
(`footfall stack up` prints them); the run uses its own topics, keys and
consumer group, so it can share a stack with a running demo.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from footfall.schemas.keys import RedisKeys

__all__ = ["PER_MESSAGE", "Comparison", "compare", "offline_records", "published_records", "run_replay",
           "series_events"]

TOLERANCE = 6e-5  # the worker rounds to 4 decimals
PER_MESSAGE = 100  # events per Kafka message


def series_events(starts: list[int], values: list[float | None], bucket_ms: int, store_id: str,
                  vertical: str | None, grace_ms: int) -> list[dict[str, Any]]:
    """One door interval report per bucket with data, then empty reports that close the last bucket.

    Two: one at the end of the last bucket, one a grace later. A watermark moves by at most a
    bucket (or the grace) per event on its own (`windows.buckets`), so one report a bucket and a
    grace past the last would not close it.
    """
    events = []
    for start, value in zip(starts, values, strict=True):
        if value is None:
            continue
        if value != int(value) or value < 0:
            raise ValueError(f"the stack counts people: {value} at {start} is not a whole count")
        events.append(_door(store_id, start, int(value), bucket_ms, vertical, f"{store_id}-{start}"))
    for closing in (starts[-1] + bucket_ms, starts[-1] + bucket_ms + grace_ms):
        events.append(_door(store_id, closing, 0, bucket_ms, vertical, f"{store_id}-close-{closing}"))
    return events


def _door(store_id: str, ts_ms: int, count: int, bucket_ms: int, vertical: str | None, event_id: str
          ) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": event_id, "store_id": store_id, "schema_version": 1, "kind": "door",
        "ts": dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z"),
        "door_id": "main", "sensor_id": "replay", "count_in": count, "count_out": 0,
        "interval_s": bucket_ms // 1000,
    }
    if vertical is not None:
        event["vertical"] = vertical
    return event


def offline_records(events: list[dict[str, Any]], settings: Any, per_message: int) -> dict[int, dict[str, Any]]:
    """`{made_at_ms: forecast}` of the arrivals series, made offline by the worker's own operators.

    The events go, `per_message` to a message as they are sent, through the same
    decoding and `StorePipeline` as in the worker (what the stages read at a bucket's
    close, occupancy and queue wait, is the store's after the message that closed it,
    as there), with no Kafka, Redis or Faust in between.
    """
    from footfall.operators.pipeline.forecast_stage import ForecastsAndAlerts
    from footfall.operators.pipeline.stage import ForecastOutput, StageError
    from footfall.operators.pipeline.store_pipeline import StorePipeline
    from footfall.schemas.events import Limits
    from footfall.schemas.messages import decode_message
    from footfall.schemas.privacy import Pseudonymizer
    from footfall.stream.stores import pipeline_params

    s = settings
    store_id = events[0]["store_id"]
    pipeline = StorePipeline(store_id, pipeline_params(s, store_id), [ForecastsAndAlerts.from_settings(s)])
    limits = Limits(min_ts_ms=s.min_event_time_ms, max_future_ms=s.max_future_s * 1000)
    pseudonymize = Pseudonymizer(s.pseudonym_secret.encode())
    out = {}
    for i in range(0, len(events), per_message):
        decoded = decode_message(orjson.dumps(events[i:i + per_message]), now_ms=int(time.time() * 1000),
                                 limits=limits, pseudonymize=pseudonymize)
        for event in decoded.events:
            pipeline.update(event)
        for output in pipeline.pop_outputs():
            if isinstance(output, StageError):
                raise RuntimeError(f"{store_id}: {output.error}\n{output.details.get('traceback', '')}")
            if isinstance(output, ForecastOutput) and output.published.series == "arrivals":
                f = output.published.forecast
                out[f.made_at_ms] = {"model": f.model, "cold": output.published.cold, "points": [
                    {"target_ms": f.start_ms + i * f.bucket_ms, "forecast": v, "lo80": f.lo80[i],
                     "hi80": f.hi80[i], "lo95": f.lo95[i], "hi95": f.hi95[i], "model": f.models[i]}
                    for i, v in enumerate(f.values)]}
    return out


def published_records(client: Any, prefix: str, store_id: str) -> dict[int, dict[str, Any]]:
    """`{made_at_ms: forecast}` of the arrivals series from the store's forecast history in Redis."""
    out: dict[int, dict[str, Any]] = {}
    for _, fields in client.xrange(RedisKeys(prefix).store_forecast_history(store_id)):
        record = orjson.loads(fields[b"record"])
        if record["series"] == "arrivals":
            out[record["made_at_ms"]] = record
    return out


@dataclass
class Comparison:
    """Published forecasts against the offline ones."""

    offline: int = 0
    published: int = 0
    compared: int = 0
    equal: int = 0
    max_abs_diff: float = 0.0
    missing: list[int] = field(default_factory=list)  # made_at of offline forecasts never published
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.compared > 0 and not self.missing and self.equal == self.compared

    def summary(self) -> dict[str, Any]:
        return {"offline": self.offline, "published": self.published, "compared": self.compared,
                "equal": self.equal, "max_abs_diff": self.max_abs_diff, "missing": len(self.missing),
                "first_missing_made_at_ms": self.missing[:5], "first_mismatches": self.mismatches[:5],
                "all_equal": self.ok}


def compare(published: dict[int, dict[str, Any]], offline: dict[int, dict[str, Any]]) -> Comparison:
    """Forecast by forecast, point by point: values and intervals within `TOLERANCE`, the same models."""
    result = Comparison(offline=len(offline), published=len(published))
    for made_at, want in sorted(offline.items()):
        got = published.get(made_at)
        if got is None:
            result.missing.append(made_at)
            continue
        result.compared += 1
        problems = []
        if got["model"] != want["model"] or got["cold"] != want["cold"] or len(got["points"]) != len(want["points"]):
            problems.append(("model/cold/length", (got["model"], got["cold"], len(got["points"])),
                             (want["model"], want["cold"], len(want["points"]))))
        for g, w in zip(got["points"], want["points"], strict=False):
            if g["target_ms"] != w["target_ms"] or g["model"] != w["model"]:
                problems.append(("target/model", (g["target_ms"], g["model"]), (w["target_ms"], w["model"])))
            for name in ("forecast", "lo80", "hi80", "lo95", "hi95"):
                diff = abs(g[name] - w[name])
                result.max_abs_diff = max(result.max_abs_diff, diff)
                if diff > TOLERANCE:
                    problems.append((name, g[name], w[name]))
        if problems:
            result.mismatches.append({"made_at_ms": made_at, "problems": problems[:3]})
        else:
            result.equal += 1
    return result


def run_replay(starts: list[int], values: list[float | None], bucket_ms: int, horizon_h: float, tz: str,
               vertical: str, holidays_file: Path | None, out_dir: Path,
               say: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> Comparison:
    """Start a worker on the stack named by the environment, replay, wait, compare (see the module docstring)."""
    import redis

    from footfall.scripts.producer import events_producer
    from footfall.stream.settings import Settings
    from footfall.stream.topics import ensure_topics

    prefix = f"fcreplay-{uuid.uuid4().hex[:10]}"
    store_id = "replay"
    settings = Settings.from_env(os.environ, topic_prefix=prefix, app_id=f"{prefix}-worker",
                                 bucket_s=bucket_ms // 1000, forecast_horizon_h=horizon_h, timezone=tz,
                                 idle_timeout_s=0.0, history_maxlen=max(10_000, 2 * len(starts)),
                                 pseudonym_secret=secrets.token_hex(16),
                                 holidays=str(holidays_file) if holidays_file else "")
    events = series_events(starts, values, bucket_ms, store_id, vertical, settings.grace_ms)
    say(f"offline: counting and forecasting {len(starts)} buckets ...")
    offline = offline_records(events, settings, PER_MESSAGE)
    ensure_topics(settings)
    env = {**os.environ, **settings.to_env()}
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / "replay_worker.log"
    say(f"stack: broker {settings.broker}; worker log {log}; topics and keys under {prefix}")
    with open(log, "wb") as log_file:
        worker = subprocess.Popen([sys.executable, "-m", "footfall.scripts.cli", "worker"], env=env,
                                  stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    client = redis.Redis.from_url(settings.redis_url)
    try:
        with events_producer(env, broker=settings.broker, topic_prefix=prefix) as producer:
            for i in range(0, len(events), PER_MESSAGE):
                batch = events[i:i + PER_MESSAGE]
                producer.send(store_id, orjson.dumps(batch), events=len(batch))
            producer.flush()
        say(f"sent {len(events)} events; waiting for the worker's forecasts ...")
        last = max(offline) if offline else None
        deadline = time.monotonic() + 120 + len(starts) * 0.05
        seen = -1
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise RuntimeError(f"the worker stopped (exit {worker.returncode}); see {log}")
            count = client.xlen(settings.redis_keys.store_forecast_history(store_id))
            if count != seen:
                seen = count
                say(f"  {count} forecasts published")
            latest = client.hget(settings.redis_keys.store_forecast(store_id), "arrivals")
            if last is None or (latest is not None and orjson.loads(latest)["made_at_ms"] >= last):
                break
            time.sleep(1.0)
        published = published_records(client, prefix, store_id)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        client.close()
    return compare(published, offline)
