"""footfall's configuration: one frozen, validated object read from `FOOTFALL_*` variables.

Nothing else in footfall reads the environment: the worker and the tools build
one `Settings` at start-up and pass it down. A bad value stops start-up with
the variable's name, its value and what was expected.

Examples
--------
>>> s = Settings.from_env({"FOOTFALL_PSEUDONYM_SECRET": "0123456789abcdef", "FOOTFALL_BUCKET_S": "1800"})
>>> s.bucket_s, s.topic("events")
(1800, 'footfall.events')
>>> try:
...     Settings.from_env({"FOOTFALL_PSEUDONYM_SECRET": "0123456789abcdef", "FOOTFALL_BUCKET_S": "7"})
... except SettingsError as exc:
...     print(exc)
FOOTFALL_BUCKET_S='7': must divide a day into whole minutes (60..86400, a divisor of 86400 and a multiple of 60)

"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import functools
import math
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from footfall.schemas.events import DEFAULT_MAX_MESSAGE_BYTES
from footfall.schemas.keys import RedisKeys
from footfall.stream.kafka_access import KafkaAccess, problems_of

__all__ = ["ENV_VARIABLES", "STATE_SHAPING", "Settings", "SettingsError", "kafka_security", "state_shape_changes"]


class SettingsError(ValueError):
    """A `FOOTFALL_*` variable holds a value footfall cannot use."""


#: Bounds of `FOOTFALL_MAX_MESSAGE_BYTES`: below, a store's state has too little room; above, a broker with
#: Kafka's default `message.max.bytes` (1,048,588 per batch, overhead included) would refuse what is sent.
MIN_MESSAGE_BYTES = 65_536
MAX_MESSAGE_BYTES = 1_048_576

_TOPIC_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}")
_APP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}")


@dataclass(frozen=True)
class Settings:
    """Everything a footfall process is told from outside.

    Each attribute is read from the environment variable `FOOTFALL_<NAME>` (upper
    case); `ENV_VARIABLES` lists them with their meaning, as the README does.
    """

    broker: str = "127.0.0.1:9092"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = field(default="", repr=False)
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    kafka_ssl_check_hostname: bool = True
    redis_url: str = field(default="redis://127.0.0.1:6379/0", repr=False)  # may hold a password
    topic_prefix: str = "footfall"
    app_id: str = "footfall-worker"
    partitions: int = 4
    bucket_s: int = 900
    grace_s: int = 300
    timezone: str = "UTC"
    store_timezones: str = ""
    reset_at: str = "04:00"
    dedupe_horizon_s: int = 1200
    target_wait_s: float = 600.0
    idle_timeout_s: float = 300.0
    store_idle_evict_s: float = 21_600.0
    store_ids: str = ""
    stall_s: float = 15.0
    forecast_horizon_h: float = 24.0
    holidays: str = ""
    store_capacities: str = ""
    staffing_target_sl: float = 0.8
    staffing_shrinkage: float = 0.0
    staffing_shoppers_per_associate: float = 15.0
    extra_stages: str = ""
    pseudonym_secret: str = field(default="", repr=False)
    min_event_time: str = "2000-01-01T00:00:00Z"
    max_future_s: int = 3600
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    history_maxlen: int = 10_000
    bucket_retention_days: int = 8
    session_timeout_s: float = 6.0
    heartbeat_s: float = 1.0
    processing_guarantee: str = "at_least_once"
    batch_intake: bool = True
    dead_letter_log_every_s: float = 10.0
    live_interval_s: float = 1.0
    checkpoint_interval_s: float = 5.0
    log_level: str = "info"
    web_enabled: bool = False
    web_port: int = 6066
    web_host: str = "127.0.0.1"
    health_max_checkpoint_age_s: float = 60.0
    startup_timeout_s: float = 30.0
    max_pending_records: int = 100_000
    data_dir: str = ""

    def __post_init__(self) -> None:
        _validate(self)

    # -- derived values --------------------------------------------------------------------

    def topic(self, name: str) -> str:
        """Full topic name: `<prefix>.<name>` (`events`, `aggregates`, `predictions`, `alerts`, `dead-letter`)."""
        return f"{self.topic_prefix}.{name}"

    def redis_key(self, *parts: str) -> str:
        """Redis key under the prefix: `<prefix>:<part>:<part>...` (prefer `redis_keys`' named keys)."""
        return self.redis_keys.key(*parts)

    @property
    def kafka(self) -> KafkaAccess:
        """The brokers and how to reach them: every Kafka client footfall makes takes its options from here."""
        return KafkaAccess(self.broker, protocol=self.kafka_security_protocol,
                           sasl_mechanism=self.kafka_sasl_mechanism, username=self.kafka_sasl_username,
                           password=self.kafka_sasl_password, cafile=self.kafka_ssl_cafile,
                           certfile=self.kafka_ssl_certfile, keyfile=self.kafka_ssl_keyfile,
                           check_hostname=self.kafka_ssl_check_hostname)

    @property
    def redis_keys(self) -> RedisKeys:
        """The Redis key layout of this deployment (`schemas.keys.RedisKeys`)."""
        return RedisKeys(self.topic_prefix)

    @property
    def bucket_ms(self) -> int:
        return self.bucket_s * 1000

    @property
    def grace_ms(self) -> int:
        return self.grace_s * 1000

    @property
    def min_event_time_ms(self) -> int:
        parsed = dt.datetime.fromisoformat(self.min_event_time)
        # Integer arithmetic, as event times are parsed: float seconds * 1000 loses the last millisecond.
        return (parsed - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)

    @property
    def timezone_of_store(self) -> dict[str, str]:
        """`FOOTFALL_STORE_TIMEZONES` as a mapping (stores not in it use `timezone`)."""
        return _store_timezones(self.store_timezones)

    @property
    def capacity_of_store(self) -> dict[str, float]:
        """`FOOTFALL_STORE_CAPACITIES` as a mapping (stores not in it have no capacity rule)."""
        return _store_capacities(self.store_capacities)

    @property
    def extra_stage_paths(self) -> tuple[str, ...]:
        """`FOOTFALL_EXTRA_STAGES` as `module:Class` paths (stages run after the built-in ones)."""
        return tuple(p.strip() for p in self.extra_stages.split(",") if p.strip())

    @property
    def holiday_dates(self) -> tuple[dt.date, ...]:
        """The public holidays of `FOOTFALL_HOLIDAYS` (none when unset)."""
        return _holidays(self.holidays)

    @property
    def forecast_horizon(self) -> int:
        """Buckets ahead to forecast (0: forecasts off)."""
        return round(self.forecast_horizon_h * 3600 / self.bucket_s)

    @functools.cached_property
    def store_id_patterns(self) -> tuple[str, ...]:
        """`FOOTFALL_STORE_IDS` as fnmatch globs (none: every store id is allowed); read once (asked per message)."""
        return _store_id_patterns(self.store_ids)

    def store_allowed(self, store_id: str) -> bool:
        """Whether `FOOTFALL_STORE_IDS` lets `store_id` in (case-sensitive globs; unset: every id)."""
        patterns = self.store_id_patterns
        return not patterns or any(fnmatch.fnmatchcase(store_id, p) for p in patterns)

    def store_timezone(self, store_id: str) -> str:
        return self.timezone_of_store.get(store_id, self.timezone)

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Build from `FOOTFALL_*` variables; explicit `overrides` win over the environment."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            var = f"FOOTFALL_{f.name.upper()}"
            if f.name in overrides:
                continue
            raw = environ.get(var)
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(var, raw, f.type)
        values.update(overrides)
        return cls(**values)

    def state_shape(self) -> dict[str, Any]:
        """The values of the settings the saved state is made with (`STATE_SHAPING`)."""
        return {name: getattr(self, name) for name in STATE_SHAPING}

    def to_env(self) -> dict[str, str]:
        """The variables that rebuild these settings in a child process."""
        env = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                value = "true" if value else "false"
            env[f"FOOTFALL_{f.name.upper()}"] = str(value)
        return env


def kafka_security(environ: Mapping[str, str]) -> dict[str, Any]:
    """How to speak to the brokers (the `kafka_*` fields) from `environ`'s `FOOTFALL_KAFKA_*`, checked.

    For tools that set every other setting themselves (`footfall bench`, `scale`, `stack check`).

    >>> kafka_security({"FOOTFALL_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "FOOTFALL_BUCKET_S": "60",
    ...                 "FOOTFALL_KAFKA_SASL_MECHANISM": "PLAIN", "FOOTFALL_KAFKA_SASL_USERNAME": "u",
    ...                 "FOOTFALL_KAFKA_SASL_PASSWORD": "p"})  # doctest: +NORMALIZE_WHITESPACE
    {'kafka_security_protocol': 'SASL_PLAINTEXT', 'kafka_sasl_mechanism': 'PLAIN', 'kafka_sasl_username': 'u',
     'kafka_sasl_password': 'p', 'kafka_ssl_cafile': '', 'kafka_ssl_certfile': '', 'kafka_ssl_keyfile': '',
     'kafka_ssl_check_hostname': True}
    """
    settings = Settings.from_env({k: v for k, v in environ.items() if k.startswith("FOOTFALL_KAFKA_")})
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(Settings) if f.name.startswith("kafka_")}


#: Settings the saved per-store state is made with, and what a restart may change of each: a store's
#: state cannot be continued under other values (`state_shape_changes`). `bucket_s`: open buckets,
#: the baselines and the forecasting models are made of buckets of that length (another length
#: could not read them: the counts would start over). `grace_s`: a longer grace re-opens buckets
#: already published as final, and republishes them with only their late events; a shorter one is
#: safe. The other settings apply from the next event (the dedupe horizon, the time zones, targets).
STATE_SHAPING: dict[str, str] = {"bucket_s": "any change", "grace_s": "an increase"}


def state_shape_changes(saved: Mapping[str, Any], settings: Settings) -> list[tuple[str, Any, Any]]:
    """`(setting, saved value, value now)` for each change state made with `saved` cannot be continued under.

    >>> state_shape_changes({"bucket_s": 60, "grace_s": 300}, Settings(bucket_s=300, grace_s=60))
    [('bucket_s', 60, 300)]
    >>> state_shape_changes({"bucket_s": 60, "grace_s": 0}, Settings(bucket_s=60, grace_s=60))
    [('grace_s', 0, 60)]
    >>> state_shape_changes({}, Settings())
    []

    """
    out = []
    for name in STATE_SHAPING:
        old, new = saved.get(name), getattr(settings, name)
        if old is None or old == new:
            continue
        if name == "grace_s" and new < old:
            continue  # buckets close sooner: nothing published is re-opened
        out.append((name, old, new))
    return out


def _convert(var: str, raw: str, type_name: Any) -> Any:
    type_name = str(type_name)
    try:
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            return float(raw)
    except ValueError:
        expected = "an integer" if type_name == "int" else "a number"
        raise SettingsError(f"{var}={raw!r}: must be {expected}") from None
    if type_name == "bool":
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{var}={raw!r}: must be true or false")
    return raw


def _is_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a tzdata folder
        return False
    return True


def _store_timezones(raw: str) -> dict[str, str]:
    """`store=Zone,store=Zone` -> {store: Zone}; ValueError naming the bad pair."""
    out: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in raw.split(","))):
        store, sep, zone = pair.partition("=")
        if not sep or not store.strip() or not _is_zone(zone.strip()):
            raise ValueError(f"{pair!r} is not store_id=IANA/Zone")
        out[store.strip()] = zone.strip()
    return out


def _store_capacities(raw: str) -> dict[str, float]:
    """`store=N,store=N` -> {store: N}; ValueError naming the bad pair."""
    out: dict[str, float] = {}
    for pair in filter(None, (p.strip() for p in raw.split(","))):
        store, sep, number = pair.partition("=")
        try:
            capacity = float(number)
        except ValueError:
            capacity = -1.0
        if not sep or not store.strip() or not (math.isfinite(capacity) and capacity > 0):
            raise ValueError(f"{pair!r} is not store_id=people (a positive number)")
        out[store.strip()] = capacity
    return out


def _store_id_patterns(raw: str) -> tuple[str, ...]:
    """`bank-*,retail-0??` -> ("bank-*", "retail-0??"); ValueError naming a pattern with a space."""
    patterns = tuple(p.strip() for p in raw.split(",") if p.strip())
    for pattern in patterns:
        if any(c.isspace() for c in pattern):
            raise ValueError(f"{pattern!r} holds a space")
    return patterns


def _holidays(path: str) -> tuple[dt.date, ...]:
    """ISO dates from a file, one per line ('#' starts a comment); () for no path."""
    if not path:
        return ()
    with open(path) as f:
        lines = [line.split("#", 1)[0].strip() for line in f]
    return tuple(sorted({dt.date.fromisoformat(line) for line in lines if line}))


def _fail(name: str, value: Any, expected: str) -> None:
    secret = name in ("pseudonym_secret", "kafka_sasl_password")
    shown = "***" if secret else repr(re.sub(r"//[^@/]*@", "//***@", str(value)))
    raise SettingsError(f"FOOTFALL_{name.upper()}={shown}: {expected}")


def _validate(s: Settings) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+:\d{1,5}(,[A-Za-z0-9_.\-]+:\d{1,5})*", s.broker):
        _fail("broker", s.broker, "must be host:port[,host:port...] (a Kafka bootstrap list)")
    kafka_problems = problems_of(s.kafka_security_protocol, s.kafka_sasl_mechanism, s.kafka_sasl_username,
                                 s.kafka_sasl_password, s.kafka_ssl_cafile, s.kafka_ssl_certfile, s.kafka_ssl_keyfile)
    if kafka_problems:
        _fail("kafka_security_protocol", s.kafka_security_protocol, "; ".join(kafka_problems))
    if not s.redis_url.startswith(("redis://", "rediss://", "unix://")):
        _fail("redis_url", s.redis_url, "must be a redis://, rediss:// or unix:// URL")
    if not _TOPIC_PREFIX.fullmatch(s.topic_prefix):
        _fail("topic_prefix", s.topic_prefix, "must be letters, digits, '.', '_' or '-' (at most 101)")
    if not _APP_ID.fullmatch(s.app_id):
        _fail("app_id", s.app_id, "must be letters, digits, '.', '_' or '-' (at most 101)")
    if not 1 <= s.partitions <= 1024:
        _fail("partitions", s.partitions, "must be between 1 and 1024")
    if not (60 <= s.bucket_s <= 86_400 and 86_400 % s.bucket_s == 0 and s.bucket_s % 60 == 0):
        _fail("bucket_s", s.bucket_s,
              "must divide a day into whole minutes (60..86400, a divisor of 86400 and a multiple of 60)")
    if not 0 <= s.grace_s <= 7 * 86_400:
        _fail("grace_s", s.grace_s, "must be between 0 and 604800 (a week)")
    if not _is_zone(s.timezone):
        _fail("timezone", s.timezone, "must be an IANA time zone such as Europe/Paris")
    try:
        _store_timezones(s.store_timezones)
    except ValueError as exc:
        _fail("store_timezones", s.store_timezones, f"must be store_id=Zone pairs separated by commas ({exc})")
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", s.reset_at):
        _fail("reset_at", s.reset_at, "must be a local time HH:MM, e.g. 04:00")
    if not 0 <= s.dedupe_horizon_s <= 7 * 86_400:
        _fail("dedupe_horizon_s", s.dedupe_horizon_s, "must be between 0 and 604800")
    if not (math.isfinite(s.target_wait_s) and s.target_wait_s >= 0):
        _fail("target_wait_s", s.target_wait_s, "must be a number of seconds >= 0")
    if not (math.isfinite(s.stall_s) and (s.stall_s == 0 or s.stall_s >= 1)):
        _fail("stall_s", s.stall_s, "must be 0 (off) or at least 1 second")
    if not (math.isfinite(s.idle_timeout_s) and (s.idle_timeout_s == 0 or s.idle_timeout_s >= 1)):
        _fail("idle_timeout_s", s.idle_timeout_s, "must be 0 (off) or at least 1 second")
    if not (math.isfinite(s.store_idle_evict_s) and (s.store_idle_evict_s == 0 or s.store_idle_evict_s >= 1)):
        _fail("store_idle_evict_s", s.store_idle_evict_s, "must be 0 (never) or at least 1 second")
    try:
        _store_id_patterns(s.store_ids)
    except ValueError as exc:
        _fail("store_ids", s.store_ids, f"must be store id patterns (fnmatch globs) separated by commas ({exc})")
    if not (math.isfinite(s.forecast_horizon_h) and 0 <= s.forecast_horizon_h <= 14 * 24
            and (s.forecast_horizon_h == 0 or s.forecast_horizon_h * 3600 >= s.bucket_s)):
        _fail("forecast_horizon_h", s.forecast_horizon_h,
              "must be 0 (forecasts off) or between one bucket and 336 hours (two weeks)")
    try:
        _store_capacities(s.store_capacities)
    except ValueError as exc:
        _fail("store_capacities", s.store_capacities, f"must be store_id=people pairs separated by commas ({exc})")
    try:
        _holidays(s.holidays)
    except (OSError, ValueError) as exc:
        _fail("holidays", s.holidays, f"must name a file of ISO dates, one per line ({exc})")
    if s.pseudonym_secret and len(s.pseudonym_secret) < 16:
        _fail("pseudonym_secret", s.pseudonym_secret, "must be at least 16 characters")
    try:
        parsed = dt.datetime.fromisoformat(s.min_event_time)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        _fail("min_event_time", s.min_event_time, "must be ISO-8601 with a UTC offset, e.g. 2000-01-01T00:00:00Z")
    if not 0 <= s.max_future_s <= 7 * 86_400:
        _fail("max_future_s", s.max_future_s, "must be between 0 and 604800")
    if not MIN_MESSAGE_BYTES <= s.max_message_bytes <= MAX_MESSAGE_BYTES:
        _fail("max_message_bytes", s.max_message_bytes,
              f"must be between {MIN_MESSAGE_BYTES} and {MAX_MESSAGE_BYTES} (Kafka's default message.max.bytes is "
              "1048588; footfall's topics and changelogs are made with the broker's defaults)")
    if not 10 <= s.history_maxlen <= 10_000_000:
        _fail("history_maxlen", s.history_maxlen, "must be between 10 and 10000000")
    if not 1 <= s.bucket_retention_days <= 400:
        _fail("bucket_retention_days", s.bucket_retention_days, "must be between 1 and 400")
    if not 1 <= s.session_timeout_s <= 300:
        _fail("session_timeout_s", s.session_timeout_s, "must be between 1 and 300 seconds")
    if not 0.1 <= s.heartbeat_s < s.session_timeout_s:
        _fail("heartbeat_s", s.heartbeat_s, "must be at least 0.1 s and below FOOTFALL_SESSION_TIMEOUT_S")
    if s.processing_guarantee not in ("at_least_once", "exactly_once"):
        _fail("processing_guarantee", s.processing_guarantee, "must be at_least_once or exactly_once")
    if not (math.isfinite(s.dead_letter_log_every_s) and s.dead_letter_log_every_s >= 0):
        _fail("dead_letter_log_every_s", s.dead_letter_log_every_s, "must be a finite number >= 0")
    if not 0 <= s.live_interval_s <= 60:
        _fail("live_interval_s", s.live_interval_s, "must be between 0 and 60 seconds")
    if not 0 <= s.checkpoint_interval_s <= 300:
        _fail("checkpoint_interval_s", s.checkpoint_interval_s, "must be between 0 and 300 seconds")
    if s.log_level.lower() not in ("debug", "info", "warning", "error", "critical"):
        _fail("log_level", s.log_level, "must be debug, info, warning, error or critical")
    if not 0 < s.staffing_target_sl < 1:
        _fail("staffing_target_sl", s.staffing_target_sl, "must be a share between 0 and 1 (e.g. 0.8)")
    if not 0 <= s.staffing_shrinkage < 1:
        _fail("staffing_shrinkage", s.staffing_shrinkage, "must be a share in [0, 1) (e.g. 0.3)")
    if not s.staffing_shoppers_per_associate > 0:
        _fail("staffing_shoppers_per_associate", s.staffing_shoppers_per_associate,
              "must be a positive number of shoppers per associate per hour (e.g. 15)")
    for path in s.extra_stage_paths:
        module, sep, name = path.partition(":")
        if not sep or not module or not name.isidentifier():
            _fail("extra_stages", s.extra_stages, f"{path!r} is not module.path:ClassName")
    if not 1 <= s.web_port <= 65_535:
        _fail("web_port", s.web_port, "must be a TCP port")
    if s.max_pending_records < 1:
        _fail("max_pending_records", s.max_pending_records, "must be at least 1")
    if not s.startup_timeout_s > 0:
        _fail("startup_timeout_s", s.startup_timeout_s, "must be a positive number of seconds")
    if not s.health_max_checkpoint_age_s > 0:
        _fail("health_max_checkpoint_age_s", s.health_max_checkpoint_age_s, "must be a positive number of seconds")
    if s.checkpoint_interval_s >= s.health_max_checkpoint_age_s:
        _fail("checkpoint_interval_s", s.checkpoint_interval_s,
              f"must be below FOOTFALL_HEALTH_MAX_CHECKPOINT_AGE_S ({s.health_max_checkpoint_age_s:g} s)")


#: Each variable, its default and what it does (the README's configuration table).
ENV_VARIABLES: dict[str, str] = {
    "FOOTFALL_BROKER": "Kafka bootstrap servers, host:port[,host:port]. Default 127.0.0.1:9092.",
    "FOOTFALL_KAFKA_SECURITY_PROTOCOL": (
        "How every Kafka client footfall makes (worker, tools) speaks to the brokers: PLAINTEXT, SSL (TLS), "
        "SASL_PLAINTEXT or SASL_SSL. Default PLAINTEXT (a broker on loopback or a trusted network)."
    ),
    "FOOTFALL_KAFKA_SASL_MECHANISM": "With SASL_*: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512. Default none.",
    "FOOTFALL_KAFKA_SASL_USERNAME": "With SASL_*: the user name. Default none.",
    "FOOTFALL_KAFKA_SASL_PASSWORD": "With SASL_*: the password (never logged). Default none.",
    "FOOTFALL_KAFKA_SSL_CAFILE": (
        "With SSL/SASL_SSL: PEM file of the CA(s) that signed the brokers' certificates. Default: the system's "
        "trust store."
    ),
    "FOOTFALL_KAFKA_SSL_CERTFILE": "With SSL/SASL_SSL: PEM client certificate, if brokers ask for one. Default none.",
    "FOOTFALL_KAFKA_SSL_KEYFILE": "The client certificate's PEM key (if not in the certificate file). Default none.",
    "FOOTFALL_KAFKA_SSL_CHECK_HOSTNAME": (
        "Check that a broker's certificate names the host connected to. Default true; turn off only for "
        "brokers reached by an address their certificates do not name."
    ),
    "FOOTFALL_REDIS_URL": (
        "Redis URL: redis://[user:password@]host:port/db, or rediss:// for TLS (CA file by "
        "`?ssl_ca_certs=/path/ca.pem`). Default redis://127.0.0.1:6379/0."
    ),
    "FOOTFALL_TOPIC_PREFIX": (
        "Prefix of every topic (`<prefix>.events`...) and Redis key (`<prefix>:...`). Default footfall."
    ),
    "FOOTFALL_APP_ID": "Faust application id = consumer group and changelog topic prefix. Default footfall-worker.",
    "FOOTFALL_PARTITIONS": (
        "Partitions of the topics footfall creates; the events topic's count is fixed once created. Default 4."
    ),
    "FOOTFALL_BUCKET_S": (
        "Bucket length in seconds (divides a day, whole minutes: 300, 900, 1800, 3600...). Default 900."
    ),
    "FOOTFALL_GRACE_S": (
        "How long after a bucket's end (in the store's event time) late events still count. Default 300."
    ),
    "FOOTFALL_TIMEZONE": "Default IANA time zone of stores (their local days, daily resets). Default UTC.",
    "FOOTFALL_STORE_TIMEZONES": (
        "Time zones of stores that differ from the default: `store_id=Zone,store_id=Zone`. Default empty."
    ),
    "FOOTFALL_RESET_AT": "Local time (HH:MM) when occupancy and queue counts restart each day. Default 04:00.",
    "FOOTFALL_DEDUPE_HORIZON_S": (
        "A repeated event_id within this much event time of the store's newest event is a duplicate. Default 1200."
    ),
    "FOOTFALL_TARGET_WAIT_S": "Queue service-level target: served within this wait counts as on time. Default 600.",
    "FOOTFALL_IDLE_TIMEOUT_S": (
        "A store silent this long (wall clock) has its event time moved on by the time elapsed, so its "
        "buckets close (as zeros) without events; 0 = off (set 0 when replaying old data). Default 300."
    ),
    "FOOTFALL_STORE_IDLE_EVICT_S": (
        "A store without events for this long (wall clock), its state saved and no bucket left to close, leaves "
        "the worker's memory (and gets no more idle ticks); its next event brings it back from the table, its "
        "counts continuing. 0 = never. Default 21600 (6 h)."
    ),
    "FOOTFALL_STORE_IDS": (
        "Store ids the worker accepts, as fnmatch globs separated by commas (`bank-*,retail-0??`, case-sensitive); "
        "events of other ids are dead-lettered as `unknown_store`. Default empty: every id."
    ),
    "FOOTFALL_FORECAST_HORIZON_H": (
        "Hours ahead each store's forecasts reach (rounded to whole buckets); 0 = no forecasts. Default 24."
    ),
    "FOOTFALL_HOLIDAYS": (
        "File of public holidays (ISO dates, one per line) for the forecasts' calendar model. Default none."
    ),
    "FOOTFALL_STORE_CAPACITIES": (
        "How many people each store may hold, for the over-capacity alert: `store_id=N,store_id=N`. Default empty."
    ),
    "FOOTFALL_STAFFING_TARGET_SL": (
        "Share of queue customers to serve within FOOTFALL_TARGET_WAIT_S when staffing counters. Default 0.8."
    ),
    "FOOTFALL_STAFFING_SHRINKAGE": (
        "Share of scheduled staff time not at a counter (breaks, back office): scheduled = agents / (1 - it). "
        "Default 0."
    ),
    "FOOTFALL_STAFFING_SHOPPERS_PER_ASSOCIATE": (
        "Retail stores' target shopper-to-associate ratio: visitors per hour one sales associate serves; "
        "associates per interval = forecast visitors per hour / it. Default 15."
    ),
    "FOOTFALL_EXTRA_STAGES": (
        "Per-store stages to run after the built-in ones, as `module.path:ClassName,...` (each a "
        "`StageFactory`, see 'Adding a per-store capability'). Default none."
    ),
    "FOOTFALL_PSEUDONYM_SECRET": (
        "Key (>= 16 chars) of the HMAC that replaces customer/device ids. Required by the worker."
    ),
    "FOOTFALL_MIN_EVENT_TIME": "Earliest believable event time (ISO-8601). Default 2000-01-01T00:00:00Z.",
    "FOOTFALL_MAX_FUTURE_S": "How far ahead of the worker's clock an event may be. Default 3600.",
    "FOOTFALL_MAX_MESSAGE_BYTES": (
        "Largest Kafka message, one limit end to end: bigger input is dead-lettered as `too_large` (a 4 KiB "
        "excerpt with the original's size and sha256), it is the producer's max request size, and every store's "
        "saved state is kept under it (the duplicate memory is bounded to half of it). 65536..1048576. "
        "Default 1000000."
    ),
    "FOOTFALL_HISTORY_MAXLEN": "Approximate cap of each Redis history stream. Default 10000.",
    "FOOTFALL_BUCKET_RETENTION_DAYS": (
        "Days a per-store, per-day bucket hash stays in Redis, and a store's current-state keys (`latest`, "
        "`live`, `forecast`, `alerts`, the latest record of a stage's kind) after their last write. Default 8."
    ),
    "FOOTFALL_SESSION_TIMEOUT_S": (
        "Kafka consumer session and rebalance timeout (s). Default 6 (fast rejoin); raise in production."
    ),
    "FOOTFALL_HEARTBEAT_S": "Kafka consumer heartbeat interval (s). Default 1.",
    "FOOTFALL_PROCESSING_GUARANTEE": "at_least_once or exactly_once (Faust's Kafka transactions: not supported, "
                                     "it lost events in the fault suite; see Performance). Default at_least_once.",
    "FOOTFALL_BATCH_INTAKE": (
        "true: the worker takes each partition's fetched records at once from Faust's consumer and commits its "
        "checkpoints' offsets itself; false: Faust delivers each message to the agent. Not used under exactly_once. "
        "Default true."
    ),
    "FOOTFALL_DEAD_LETTER_LOG_EVERY_S": "At most one dead-letter log line per reason this often (s). Default 10.",
    "FOOTFALL_LIVE_INTERVAL_S": (
        "Live records are coalesced: at most one per store and bucket this often (s); 0 = every message. Default 1."
    ),
    "FOOTFALL_CHECKPOINT_INTERVAL_S": (
        "Store states and offset markers are saved at most this often (s), records still every "
        "FOOTFALL_LIVE_INTERVAL_S; a crash re-applies at most this much more input. 0 = at every flush. Default 5."
    ),
    "FOOTFALL_STALL_S": (
        "When the consumer delivers nothing from a partition for this long while messages wait there, the "
        "worker reads them straight from Kafka (a guard against a stalled Faust fetcher); the same for a table "
        "recovery given nothing from its changelog. 0 = off. Default 15."
    ),
    "FOOTFALL_LOG_LEVEL": "debug, info, warning, error. Default info.",
    "FOOTFALL_WEB_ENABLED": (
        "The worker's web server on or off: `/metrics` (Prometheus text: lag per partition, events, flush "
        "time, pending records, dead letters by reason, stores in memory, checkpoint age) and `/health`. "
        "Default false."
    ),
    "FOOTFALL_WEB_PORT": "Port of the worker's web server when enabled. Default 6066.",
    "FOOTFALL_WEB_HOST": (
        "Address the worker's web server binds (0.0.0.0 for a scraper on another host). Default 127.0.0.1."
    ),
    "FOOTFALL_MAX_PENDING_RECORDS": (
        "While Redis (or the broker) is away, the worker stops consuming once this many records wait for the "
        "next checkpoint (memory stays bounded; the input waits in Kafka). Default 100000."
    ),
    "FOOTFALL_STARTUP_TIMEOUT_S": (
        "How long the worker waits at start for Redis to answer before refusing to start (it never consumes "
        "what it could not publish). Default 30."
    ),
    "FOOTFALL_HEALTH_MAX_CHECKPOINT_AGE_S": (
        "`/health` answers 503 when input or records wait and no checkpoint completed for this long. Default 60."
    ),
    "FOOTFALL_DATA_DIR": "Folder for the worker's local data. Default: a temporary folder.",
}
