"""Where footfall's outputs live in Redis: the one statement of the key layout.

Every writer (the worker's sinks) and every reader (the dashboard, the
commands, the tests) names keys through `RedisKeys`, so the layout below is
the contract and exists once. `<p>` is `FOOTFALL_TOPIC_PREFIX`.

Per store:

- `<p>:store:<id>:latest` (hash): the latest bucket record, a field per record field
  (strings as they are, other values as JSON).
- `<p>:store:<id>:live` (hash): the live record, replaced whole on each update.
- `<p>:store:<id>:history` (stream, capped): every bucket record, field `record`.
- `<p>:store:<id>:buckets:<YYYY-MM-DD>` (hash, expires): bucket start (ISO) -> record,
  the day being the bucket's local day.
- `<p>:store:<id>:forecast` (hash): series -> latest forecast record.
- `<p>:store:<id>:forecast-history` (stream, capped): every forecast record.
- `<p>:store:<id>:alerts` (hash): alert id -> record, open alerts only.

Chain-wide:

- `<p>:alerts:history` (stream, capped): every alert change.
- `<p>:stats` (hash): worker counters; `<p>:dead-letter:counts` (hash): dead letters per reason;
- `<p>:meta:written`: set once the worker wrote; a Redis without it lost its data (the worker rebuilds it).
- `<p>:peer-groups` (string, JSON): the chain's peer groups (`footfall peers`), also published on that
  channel; `<p>:peer-groups:state` (string, JSON): their state, so group ids stay stable across runs
  (outside `<p>:peers:`, where a store's channel lives, so no store id can clash with them).
  Each store's peers record is `<p>:store:<id>:peers` (below), its channel `<p>:peers:<id>`.
- roll-ups per level (`region` or `chain`) and key: `<p>:rollup:<level>:<key>:<slot>:members` and
  `...:totals` (hashes; slot = bucket start ms, or `live`), `<p>:rollup:<level>:<key>:latest` and
  `...:live` (hashes), `<p>:rollup:<level>:<key>:history` (stream).

Channels (pub/sub): `<p>:live:<id>` (bucket and live records), `<p>:forecast:<id>`,
`<p>:alerts`, `<p>:rollup:<level>:<key>`.

A record kind a newer stage adds (`schemas.records.register_record_kind`) without a place
of its own: `<p>:store:<id>:<type>` (string: its latest record, as JSON), `<p>:store:<id>:<type>-history`
(stream, capped) and the channel `<p>:<type>:<id>`.

Examples
--------
>>> keys = RedisKeys("footfall")
>>> keys.store_latest("retail-001")
'footfall:store:retail-001:latest'
>>> keys.store_day("retail-001", "2026-11-24")
'footfall:store:retail-001:buckets:2026-11-24'
>>> keys.rollup_totals("region", "north", 1_790_164_800_000)
'footfall:rollup:region:north:1790164800000:totals'
>>> keys.store_id_of(keys.store_live("bank-002"))
'bank-002'
>>> keys.store_id_of(keys.store_live("mall:kiosk-7"), suffix="live")
'mall:kiosk-7'
>>> keys.store_pattern("live")
'footfall:store:*:live'

"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CHAIN", "RedisKeys"]

#: The chain's name in roll-up keys: one footfall deployment is one chain.
CHAIN = "all"


@dataclass(frozen=True)
class RedisKeys:
    """The Redis keys and channels of one deployment (see the module docstring).

    Parameters
    ----------
    prefix
        `FOOTFALL_TOPIC_PREFIX`: every key and channel starts with `<prefix>:`.

    """

    prefix: str

    def key(self, *parts: str | int) -> str:
        """`<prefix>:<part>:<part>...`; prefer the named keys below."""
        return ":".join((self.prefix, *(str(p) for p in parts)))

    # -- per store ------------------------------------------------------------------------------

    def store_latest(self, store_id: str) -> str:
        return self.key("store", store_id, "latest")

    def store_live(self, store_id: str) -> str:
        return self.key("store", store_id, "live")

    def store_history(self, store_id: str) -> str:
        return self.key("store", store_id, "history")

    def store_day(self, store_id: str, day: str) -> str:
        """Hash of a store's bucket records of one local day (`YYYY-MM-DD`)."""
        return self.key("store", store_id, "buckets", day)

    def store_forecast(self, store_id: str) -> str:
        return self.key("store", store_id, "forecast")

    def store_forecast_history(self, store_id: str) -> str:
        return self.key("store", store_id, "forecast-history")

    def store_alerts(self, store_id: str) -> str:
        """Hash of a store's open alerts (alert id -> record)."""
        return self.key("store", store_id, "alerts")

    def store_record(self, store_id: str, kind: str) -> str:
        """String key holding, as JSON, a store's latest record of a kind with no place of its own."""
        return self.key("store", store_id, kind)

    def store_record_history(self, store_id: str, kind: str) -> str:
        return self.key("store", store_id, f"{kind}-history")

    def store_pattern(self, suffix: str, store_id: str = "*") -> str:
        """A SCAN pattern over stores' keys ending in `suffix` (e.g. `live`, `buckets:*`)."""
        return self.key("store", store_id, suffix)

    def store_id_of(self, key: str | bytes, suffix: str | None = None) -> str:
        """The store id in a per-store key (`<p>:store:<id>:...`).

        A store id may itself hold `:`. Without `suffix` the id ends at the first `:` after it;
        with the key's `suffix` (as given to `store_pattern`, e.g. `live`) it is everything before.
        """
        text = key.decode() if isinstance(key, bytes) else key
        head = self.key("store", "")
        if not text.startswith(head):
            raise ValueError(f"not a per-store key of prefix {self.prefix!r}: {text!r}")
        rest = text[len(head):]
        if suffix is None:
            return rest.split(":", 1)[0]
        tail = ":" + suffix
        if not rest.endswith(tail):
            raise ValueError(f"not a per-store {suffix!r} key: {text!r}")
        return rest[:-len(tail)]

    # -- chain-wide -----------------------------------------------------------------------------

    @property
    def alerts_history(self) -> str:
        return self.key("alerts", "history")

    @property
    def stats(self) -> str:
        return self.key("stats")

    @property
    def dead_letter_counts(self) -> str:
        return self.key("dead-letter", "counts")

    @property
    def written_marker(self) -> str:
        """Set by the worker once it wrote here: gone means Redis lost the data (rebuilt from the topics)."""
        return self.key("meta", "written")

    @property
    def peers_groups(self) -> str:
        """String key (JSON) and channel of the chain's peer groups (`footfall peers`)."""
        return self.key("peer-groups")

    @property
    def peers_state(self) -> str:
        """String key (JSON) of the peer groups' state (`footfall peers`): stable group ids across runs."""
        return self.key("peer-groups", "state")

    @property
    def every_key_pattern(self) -> str:
        """A SCAN pattern over every key of this deployment (`<p>:*`)."""
        return self.key("*")

    # -- roll-ups -------------------------------------------------------------------------------

    def rollup_members(self, level: str, key: str, slot: int | str) -> str:
        """Hash of a roll-up's member rows (slot: a bucket start ms, or `live`)."""
        return self.key("rollup", level, key, slot, "members")

    def rollup_totals(self, level: str, key: str, slot: int | str) -> str:
        return self.key("rollup", level, key, slot, "totals")

    def rollup_latest(self, level: str, key: str) -> str:
        return self.key("rollup", level, key, "latest")

    def rollup_live(self, level: str, key: str) -> str:
        return self.key("rollup", level, key, "live")

    def rollup_history(self, level: str, key: str) -> str:
        return self.key("rollup", level, key, "history")

    def rollup_heatmap(self, level: str, key: str) -> str:
        """A region's or the chain's weekday × hour heatmap (JSON, written by `footfall peers`)."""
        return self.key("rollup", level, key, "heatmap")

    # -- channels -------------------------------------------------------------------------------

    def live_channel(self, store_id: str) -> str:
        """Channel of a store's bucket and live records (`live_channel('*')` for PSUBSCRIBE)."""
        return self.key("live", store_id)

    def forecast_channel(self, store_id: str) -> str:
        return self.key("forecast", store_id)

    def record_channel(self, kind: str, store_id: str) -> str:
        """Channel of a store's records of a kind with no place of its own (a newer stage's)."""
        return self.key(kind, store_id)

    @property
    def alerts_channel(self) -> str:
        return self.key("alerts")

    def rollup_channel(self, level: str, key: str) -> str:
        return self.key("rollup", level, key)

    @property
    def rollup_channel_pattern(self) -> str:
        """PSUBSCRIBE pattern of every roll-up's channel (`<p>:rollup:*`)."""
        return self.key("rollup", "*")
