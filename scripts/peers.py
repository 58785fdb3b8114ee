"""`footfall peers`: comparable stores for the whole chain, from the insights records the stores publish.

It reads every store's latest insights record from Redis (`<p>:store:<id>:insights`, found by
SCAN), groups the stores by the shape of their hour-of-week heatmap and compares each store's
day with its peers' (`footfall.operators.peers.chain.ChainPeers`), then writes:

- `<p>:store:<id>:peers`: the store's peers record (JSON, `schemas.records.PeersRecord`), also
  published on the channel `<p>:peers:<id>`; a store left out has its old record removed;
- `<p>:peer-groups`: the chain's groups (JSON, `PeerGroupsRecord`), also published on that channel;
- `<p>:peer-groups:state`: the groups' state, so group ids stay stable from one run to the next;
- `<p>:rollup:region:<region>:heatmap` and `<p>:rollup:chain:all:heatmap`: each region's and the
  chain's weekday × hour heatmap, the sum of its stores' (`operators.insights.region_heatmap`;
  `schemas.records.RollupHeatmapRecord`), also published on the roll-up's channel.

Groups are made once per day (the latest `day` of the records read); a second run on the same
day keeps them and refreshes the comparisons. It prints one line per run:

    peers 2026-01-05: 8 stores read, 8 grouped, 0 left out; k=2 (silhouette 0.91); groups 0: 4 stores, 1: 4 stores

Examples
--------
::

    footfall peers                                  # once
    footfall peers --every 24h                      # once a day, until stopped
    footfall peers --redis-url redis://127.0.0.1:6379/0 --prefix footfall --k 3

Settings: `FOOTFALL_REDIS_URL` and `FOOTFALL_TOPIC_PREFIX`, unless `--redis-url` / `--prefix` are given.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["parse_every", "refresh", "register", "rollup_heatmaps", "run", "summary_line"]

_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_every(text: str) -> float:
    """A period (`24h`, `30m`, `90s`, `1d`, or seconds) in seconds; ValueError if not one > 0.

    >>> parse_every("24h"), parse_every("30m"), parse_every("45")
    (86400.0, 1800.0, 45.0)

    """
    match = _EVERY.match(text)
    if not match or not float(match.group(1)) > 0:
        raise ValueError(f"--every must be a period like 24h, 30m or 90s, got {text!r}")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "peers", help="group the chain's stores by hour-of-week shape and compare each with its peers",
        description="Read every store's latest insights record from Redis, group the stores by the shape of their "
        "weekday x hour heatmap (k-means, group ids stable across runs), compare each store's latest day with its "
        "peers' median, and write a peers record per store (<p>:store:<id>:peers, channel <p>:peers:<id>) and the "
        "groups (<p>:peer-groups). Uses FOOTFALL_REDIS_URL and FOOTFALL_TOPIC_PREFIX.",
    )
    parser.add_argument("--every", metavar="PERIOD",
                        help="run again every PERIOD (24h, 30m, 90s) until stopped (default: run once)")
    parser.add_argument("--redis-url", help="Redis URL (default FOOTFALL_REDIS_URL)")
    parser.add_argument("--prefix", help="key prefix (default FOOTFALL_TOPIC_PREFIX)")
    parser.add_argument("--k", type=int, default=None, help="groups to make (default: chosen by silhouette, 2-6)")
    parser.add_argument("--min-cells", type=int, default=84,
                        help="hours of the week (of 168) a store's heatmap must have to be grouped (default 84)")
    parser.add_argument("--seed", type=int, default=0, help="k-means seed (default 0)")
    parser.set_defaults(func=run)


def refresh(client: Any, keys: Any, k: int | None = None, min_cells: int = 84, seed: int = 0,
            now_ms: int | None = None) -> dict[str, Any]:
    """One run against a Redis client (`redis.Redis`) and `RedisKeys`; returns the groups record written."""
    from footfall.operators.peers.chain import ChainPeers

    records, unreadable = _read_insights(client, keys)
    raw_state = client.get(keys.peers_state)
    try:
        state = orjson.loads(raw_state) if raw_state else None
        chain = ChainPeers.from_state(state, k=k, seed=seed, min_cells=min_cells)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise RuntimeError(f"the peer groups' state at {keys.peers_state} is unreadable ({exc}); "
                           "delete it to start the groups afresh") from None
    out = chain.update(records, emitted_at_ms=int(time.time() * 1000) if now_ms is None else now_ms)
    summary = out.summary
    summary["stores_read"] += len(unreadable)
    summary["left_out"] = dict(sorted({**summary["left_out"], **unreadable}.items()))
    pipe = client.pipeline(transaction=True)
    for store_id, record in out.records.items():
        payload = orjson.dumps(record)
        pipe.set(keys.store_record(store_id, "peers"), payload)
        pipe.publish(keys.record_channel("peers", store_id), payload)
    for store_id in summary["left_out"]:
        pipe.delete(keys.store_record(store_id, "peers"))
    payload = orjson.dumps(summary)
    pipe.set(keys.peers_groups, payload)
    pipe.publish(keys.peers_groups, payload)
    pipe.set(keys.peers_state, orjson.dumps(chain.to_state()))
    for record in rollup_heatmaps(records, int(time.time() * 1000) if now_ms is None else now_ms):
        payload = orjson.dumps(record)
        pipe.set(keys.rollup_heatmap(record["level"], record["key"]), payload)
        pipe.publish(keys.rollup_channel(record["level"], record["key"]), payload)
    pipe.execute()
    return summary


def rollup_heatmaps(records: Mapping[str, Mapping[str, Any]], emitted_at_ms: int) -> list[dict[str, Any]]:
    """The heatmap record (`RollupHeatmapRecord`) of each region and of the chain, from the stores' insights
    records (none: none)."""
    from footfall.operators.insights.region_heatmap import chain_heatmap, region_heatmaps
    from footfall.schemas.keys import CHAIN

    if not records:
        return []
    levels = [("region", region, heatmap) for region, heatmap in region_heatmaps(records).items()]
    return [{"type": "rollup_heatmap", "level": level, "key": key, **heatmap, "emitted_at_ms": emitted_at_ms}
            for level, key, heatmap in [*levels, ("chain", CHAIN, chain_heatmap(records))]]


def _read_insights(client: Any, keys: Any) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Every store's latest insights record (by SCAN), and the stores whose record could not be read."""
    found = sorted({key.decode() if isinstance(key, bytes) else key
                    for key in client.scan_iter(match=keys.store_pattern("insights"), count=500)})
    store_ids = [keys.store_id_of(key, suffix="insights") for key in found]
    pipe = client.pipeline(transaction=False)
    for key in found:
        pipe.get(key)
    values = pipe.execute(raise_on_error=False) if found else []
    records: dict[str, dict[str, Any]] = {}
    unreadable: dict[str, str] = {}
    for store_id, value in zip(store_ids, values, strict=True):
        if isinstance(value, Exception) or value is None:
            unreadable[store_id] = f"insights record unreadable ({value})"
            continue
        try:
            record = orjson.loads(value)
        except orjson.JSONDecodeError:
            unreadable[store_id] = "insights record is not JSON"
            continue
        if not isinstance(record, dict) or record.get("type", "insights") != "insights":
            unreadable[store_id] = "not an insights record"
            continue
        records[store_id] = record
    return records, unreadable


def summary_line(summary: Mapping[str, Any]) -> str:
    """One line: stores read, grouped and left out, k, the silhouette and each group's size.

    >>> print(summary_line({"day": "2026-01-05", "stores_read": 9, "stores_grouped": 8, "left_out": {"x": "?"},
    ...                     "k": 2, "silhouette": 0.9123, "groups": [{"group_id": 0, "size": 5},
    ...                                                              {"group_id": 3, "size": 3}]}))
    peers 2026-01-05: 9 stores read, 8 grouped, 1 left out; k=2 (silhouette 0.91); groups 0: 5 stores, 3: 3 stores

    """
    silhouette = summary.get("silhouette")
    quality = f" (silhouette {silhouette:.2f})" if silhouette is not None else ""
    groups = ", ".join(f"{g['group_id']}: {g['size']} store{'s' if g['size'] != 1 else ''}"
                       for g in summary.get("groups", [])) or "none"
    return (f"peers {summary.get('day') or '-'}: {summary['stores_read']} stores read, {summary['stores_grouped']} "
            f"grouped, {len(summary['left_out'])} left out; k={summary['k']}{quality}; groups {groups}")


def run(args: argparse.Namespace) -> int:
    from footfall.stream.settings import Settings, SettingsError

    name = "footfall peers"
    try:
        every = parse_every(args.every) if args.every else None
    except ValueError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    if args.k is not None and args.k < 1:
        print(f"{name}: --k must be at least 1, got {args.k}", file=sys.stderr)
        return 2
    if not 1 <= args.min_cells <= 168:
        print(f"{name}: --min-cells must be in 1..168, got {args.min_cells}", file=sys.stderr)
        return 2
    overrides = {field: value for field, value in (("redis_url", args.redis_url), ("topic_prefix", args.prefix))
                 if value}
    try:
        settings = Settings.from_env(os.environ, **overrides)
    except SettingsError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2

    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5)
    keys = settings.redis_keys
    try:
        while True:
            started = time.monotonic()
            try:
                summary = refresh(client, keys, k=args.k, min_cells=args.min_cells, seed=args.seed)
            except (redis.RedisError, RuntimeError) as exc:
                print(f"{name}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                if every is None:
                    return 1
            else:
                print(summary_line(summary), flush=True)
                for store_id, why in summary["left_out"].items():
                    print(f"  left out {store_id}: {why}", file=sys.stderr)
            if every is None:
                return 0
            time.sleep(max(0.0, every - (time.monotonic() - started)))
    finally:
        client.close()
