"""Settings: documented defaults, each FOOTFALL_* variable parsed and checked, secrets never shown."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall.stream.settings import ENV_VARIABLES, Settings, SettingsError

SECRET = "s3cr3t-value-0123456789"  # 23 characters

# The defaults as the README's configuration table (ENV_VARIABLES) states them.
DEFAULTS: dict[str, Any] = {
    "broker": "127.0.0.1:9092",
    "kafka_security_protocol": "PLAINTEXT",
    "kafka_sasl_mechanism": "",
    "kafka_sasl_username": "",
    "kafka_sasl_password": "",
    "kafka_ssl_cafile": "",
    "kafka_ssl_certfile": "",
    "kafka_ssl_keyfile": "",
    "kafka_ssl_check_hostname": True,
    "redis_url": "redis://127.0.0.1:6379/0",
    "topic_prefix": "footfall",
    "app_id": "footfall-worker",
    "partitions": 4,
    "bucket_s": 900,
    "grace_s": 300,
    "timezone": "UTC",
    "store_timezones": "",
    "reset_at": "04:00",
    "dedupe_horizon_s": 1200,
    "target_wait_s": 600.0,
    "idle_timeout_s": 300.0,
    "store_idle_evict_s": 21_600.0,
    "store_ids": "",
    "stall_s": 15.0,
    "forecast_horizon_h": 24.0,
    "holidays": "",
    "store_capacities": "",
    "staffing_target_sl": 0.8,
    "staffing_shrinkage": 0.0,
    "staffing_shoppers_per_associate": 15.0,
    "extra_stages": "",
    "pseudonym_secret": "",
    "min_event_time": "2000-01-01T00:00:00Z",
    "max_future_s": 3600,
    "max_message_bytes": 1_000_000,
    "history_maxlen": 10_000,
    "bucket_retention_days": 8,
    "session_timeout_s": 6.0,
    "heartbeat_s": 1.0,
    "processing_guarantee": "at_least_once",
    "batch_intake": True,
    "dead_letter_log_every_s": 10.0,
    "live_interval_s": 1.0,
    "checkpoint_interval_s": 5.0,
    "log_level": "info",
    "web_enabled": False,
    "web_port": 6066,
    "web_host": "127.0.0.1",
    "health_max_checkpoint_age_s": 60.0,
    "startup_timeout_s": 30.0,
    "max_pending_records": 100_000,
    "data_dir": "",
}


def test_defaults() -> None:
    s = Settings()
    assert dataclasses.asdict(s) == DEFAULTS
    assert Settings.from_env({}) == s
    assert (s.bucket_ms, s.grace_ms, s.min_event_time_ms) == (900_000, 300_000, 946_684_800_000)


def test_every_field_is_a_documented_variable() -> None:
    assert set(ENV_VARIABLES) == {f"FOOTFALL_{name.upper()}" for name in DEFAULTS}


def test_store_timezones_map_stores_and_default_the_rest() -> None:
    s = Settings(store_timezones="s1=Europe/London, s2 = Asia/Kolkata", timezone="America/New_York")
    assert s.store_timezone("s1") == "Europe/London"
    assert s.store_timezone("s2") == "Asia/Kolkata"
    assert s.store_timezone("other") == "America/New_York"


def test_unrelated_variables_are_ignored() -> None:
    assert Settings.from_env({"PATH": "/bin", "FOOTFALL": "x", "FOOTFALL_UNKNOWN": "1"}) == Settings()


@pytest.mark.parametrize(
    ("var", "raw", "attr", "expected"),
    [
        ("FOOTFALL_BROKER", "k1:9092,k-2.example:19093", "broker", "k1:9092,k-2.example:19093"),  # two brokers
        ("FOOTFALL_REDIS_URL", "rediss://cache:6380/1", "redis_url", "rediss://cache:6380/1"),  # TLS
        ("FOOTFALL_REDIS_URL", "unix:///run/redis.sock", "redis_url", "unix:///run/redis.sock"),  # socket
        ("FOOTFALL_TOPIC_PREFIX", "acme.flow_v2", "topic_prefix", "acme.flow_v2"),  # dots and underscores
        ("FOOTFALL_APP_ID", "acme-worker", "app_id", "acme-worker"),  # a plain id
        ("FOOTFALL_PARTITIONS", "12", "partitions", 12),  # int
        ("FOOTFALL_PARTITIONS", "1024", "partitions", 1024),  # the largest
        ("FOOTFALL_BUCKET_S", "60", "bucket_s", 60),  # one minute: the smallest
        ("FOOTFALL_BUCKET_S", "3600", "bucket_s", 3600),  # an hour
        ("FOOTFALL_BUCKET_S", "86400", "bucket_s", 86_400),  # a day: the largest
        ("FOOTFALL_GRACE_S", "0", "grace_s", 0),  # no grace
        ("FOOTFALL_GRACE_S", "604800", "grace_s", 604_800),  # a week: the largest
        ("FOOTFALL_TIMEZONE", "Asia/Kolkata", "timezone", "Asia/Kolkata"),  # IANA zone
        ("FOOTFALL_STORE_TIMEZONES", "s1=Europe/London, s-2=America/New_York", "store_timezones",
         "s1=Europe/London, s-2=America/New_York"),  # two stores
        ("FOOTFALL_RESET_AT", "23:59", "reset_at", "23:59"),  # the latest
        ("FOOTFALL_DEDUPE_HORIZON_S", "0", "dedupe_horizon_s", 0),  # no duplicate detection
        ("FOOTFALL_TARGET_WAIT_S", "300", "target_wait_s", 300.0),  # five minutes
        ("FOOTFALL_IDLE_TIMEOUT_S", "0", "idle_timeout_s", 0.0),  # off
        ("FOOTFALL_STALL_S", "0", "stall_s", 0.0),  # off
        ("FOOTFALL_PSEUDONYM_SECRET", "0123456789abcdef", "pseudonym_secret", "0123456789abcdef"),  # 16 chars
        ("FOOTFALL_MIN_EVENT_TIME", "2020-01-01T00:00:00+01:00", "min_event_time", "2020-01-01T00:00:00+01:00"),
        ("FOOTFALL_MAX_FUTURE_S", "0", "max_future_s", 0),  # no skew allowed
        ("FOOTFALL_HISTORY_MAXLEN", "10", "history_maxlen", 10),  # the smallest
        ("FOOTFALL_BUCKET_RETENTION_DAYS", "400", "bucket_retention_days", 400),  # the largest
        ("FOOTFALL_SESSION_TIMEOUT_S", "30", "session_timeout_s", 30.0),  # int text -> float
        ("FOOTFALL_SESSION_TIMEOUT_S", "1.5", "session_timeout_s", 1.5),  # fraction
        ("FOOTFALL_HEARTBEAT_S", "0.1", "heartbeat_s", 0.1),  # the smallest
        ("FOOTFALL_PROCESSING_GUARANTEE", "exactly_once", "processing_guarantee", "exactly_once"),
        ("FOOTFALL_DEAD_LETTER_LOG_EVERY_S", "0", "dead_letter_log_every_s", 0.0),  # log every dead letter
        ("FOOTFALL_LIVE_INTERVAL_S", "0", "live_interval_s", 0.0),  # no coalescing: every message
        ("FOOTFALL_LIVE_INTERVAL_S", "2.5", "live_interval_s", 2.5),  # slower live updates
        ("FOOTFALL_CHECKPOINT_INTERVAL_S", "0", "checkpoint_interval_s", 0.0),  # save at every flush
        ("FOOTFALL_LOG_LEVEL", "DEBUG", "log_level", "DEBUG"),  # any case
        ("FOOTFALL_WEB_ENABLED", "true", "web_enabled", True),  # true
        ("FOOTFALL_WEB_ENABLED", " YES ", "web_enabled", True),  # spaces and case
        ("FOOTFALL_WEB_ENABLED", "1", "web_enabled", True),  # 1
        ("FOOTFALL_WEB_ENABLED", "on", "web_enabled", True),  # on
        ("FOOTFALL_WEB_ENABLED", "off", "web_enabled", False),  # off
        ("FOOTFALL_WEB_ENABLED", "False", "web_enabled", False),  # False
        ("FOOTFALL_WEB_ENABLED", "0", "web_enabled", False),  # 0
        ("FOOTFALL_WEB_PORT", "65535", "web_port", 65_535),  # the largest port
        ("FOOTFALL_DATA_DIR", "/var/lib/footfall", "data_dir", "/var/lib/footfall"),  # a folder
        ("FOOTFALL_PARTITIONS", "", "partitions", 4),  # empty means unset: the default
    ],
)
def test_variable_is_parsed(var: str, raw: str, attr: str, expected: Any) -> None:
    value = getattr(Settings.from_env({var: raw}), attr)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "expected_ms"),
    [
        ("2000-01-01T00:00:00Z", 946_684_800_000),  # the default: 10_957 days after 1970
        ("2020-01-01T00:00:00+01:00", 1_577_833_200_000),  # 2020-01-01Z is 1_577_836_800 s; an hour before
        ("1970-01-01T00:00:00.001Z", 1),  # one millisecond
        ("1969-12-31T23:59:59.999Z", -1),  # one millisecond before the epoch
        ("2026-03-01T10:15:00.007+01:00", 1_772_356_500_007),  # 09:15:00.007Z
    ],
)
def test_min_event_time_ms(text: str, expected_ms: int) -> None:
    assert Settings(min_event_time=text).min_event_time_ms == expected_ms


@pytest.mark.parametrize(
    ("text", "expected_ms"),
    [
        # 1987-05-10T10:40:21.915Z: 547_641_621.915 s; 547_641_621.915 * 1000 in binary floating point is
        # 547_641_621_914.99994, which int() cuts to ...914.
        ("1987-05-10T10:40:21.915Z", 547_641_621_915),
        # before the epoch int() rounds towards zero (-999.5 -> -999); parse_ts_ms floors (-1000)
        ("1969-12-31T23:59:59.0005Z", -1000),
        ("1969-12-31T23:59:59.9985Z", -2),  # -1.5 ms: floor gives -2, int() -1
    ],
)
def test_min_event_time_ms_is_exact_to_the_millisecond(text: str, expected_ms: int) -> None:
    parsed = dt.datetime.fromisoformat(text)
    # integer arithmetic, as parse_ts_ms does for event times
    assert (parsed - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1) == expected_ms
    assert Settings(min_event_time=text).min_event_time_ms == expected_ms


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("FOOTFALL_BROKER", "localhost"),  # no port
        ("FOOTFALL_BROKER", "kafka:port"),  # port not a number
        ("FOOTFALL_BROKER", "k1:9092,"),  # trailing comma
        ("FOOTFALL_BROKER", "k1:9092; k2:9092"),  # wrong separator
        ("FOOTFALL_REDIS_URL", "http://127.0.0.1:6379"),  # not a redis scheme
        ("FOOTFALL_TOPIC_PREFIX", "-footfall"),  # leading dash
        ("FOOTFALL_TOPIC_PREFIX", "foot fall"),  # space
        ("FOOTFALL_TOPIC_PREFIX", "x" * 102),  # too long
        ("FOOTFALL_APP_ID", "team/worker"),  # slash
        ("FOOTFALL_PARTITIONS", "0"),  # none
        ("FOOTFALL_PARTITIONS", "1025"),  # too many
        ("FOOTFALL_PARTITIONS", "four"),  # not an integer
        ("FOOTFALL_PARTITIONS", "4.0"),  # not an integer either
        ("FOOTFALL_BUCKET_S", "7"),  # under a minute
        ("FOOTFALL_BUCKET_S", "90"),  # not whole minutes
        ("FOOTFALL_BUCKET_S", "420"),  # 7 min: does not divide a day
        ("FOOTFALL_BUCKET_S", "172800"),  # two days
        ("FOOTFALL_BUCKET_S", "-900"),  # negative
        ("FOOTFALL_GRACE_S", "-1"),  # negative
        ("FOOTFALL_GRACE_S", "604801"),  # over a week
        ("FOOTFALL_TIMEZONE", "Mars/Olympus_Mons"),  # no such zone
        ("FOOTFALL_TIMEZONE", "Europe/Paris "),  # trailing space
        ("FOOTFALL_TIMEZONE", "../../etc/passwd"),  # a path
        ("FOOTFALL_STORE_TIMEZONES", "s1=Mars/Base"),  # no such zone
        ("FOOTFALL_STORE_TIMEZONES", "s1:Europe/Paris"),  # wrong separator
        ("FOOTFALL_STORE_TIMEZONES", "=Europe/Paris"),  # no store
        ("FOOTFALL_RESET_AT", "24:00"),  # no such time
        ("FOOTFALL_RESET_AT", "4:00"),  # not HH:MM
        ("FOOTFALL_DEDUPE_HORIZON_S", "604801"),  # over a week
        ("FOOTFALL_TARGET_WAIT_S", "-1"),  # negative
        ("FOOTFALL_IDLE_TIMEOUT_S", "0.5"),  # under a second
        ("FOOTFALL_STALL_S", "nan"),  # not a number of seconds
        ("FOOTFALL_PSEUDONYM_SECRET", "fifteen-chars!!"),  # 15 characters: too short
        ("FOOTFALL_MIN_EVENT_TIME", "2000-01-01T00:00:00"),  # no UTC offset
        ("FOOTFALL_MIN_EVENT_TIME", "the year 2000"),  # not ISO-8601
        ("FOOTFALL_MAX_FUTURE_S", "-1"),  # negative
        ("FOOTFALL_MAX_FUTURE_S", "604801"),  # over a week
        ("FOOTFALL_HISTORY_MAXLEN", "9"),  # too small
        ("FOOTFALL_HISTORY_MAXLEN", "10000001"),  # too large
        ("FOOTFALL_BUCKET_RETENTION_DAYS", "0"),  # none
        ("FOOTFALL_BUCKET_RETENTION_DAYS", "401"),  # too many
        ("FOOTFALL_SESSION_TIMEOUT_S", "0.5"),  # under a second
        ("FOOTFALL_SESSION_TIMEOUT_S", "301"),  # over 300 s
        ("FOOTFALL_SESSION_TIMEOUT_S", "six"),  # not a number
        ("FOOTFALL_SESSION_TIMEOUT_S", "nan"),  # NaN compares false with every bound
        ("FOOTFALL_HEARTBEAT_S", "0.05"),  # too frequent
        ("FOOTFALL_HEARTBEAT_S", "6"),  # not below the default session timeout (6 s)
        ("FOOTFALL_HEARTBEAT_S", "inf"),  # infinite
        ("FOOTFALL_PROCESSING_GUARANTEE", "exactly-once"),  # dash instead of underscore
        ("FOOTFALL_DEAD_LETTER_LOG_EVERY_S", "-1"),  # negative
        ("FOOTFALL_LIVE_INTERVAL_S", "-0.5"),  # negative
        ("FOOTFALL_LIVE_INTERVAL_S", "61"),  # a live view a minute late is not live
        ("FOOTFALL_CHECKPOINT_INTERVAL_S", "-1"),  # negative
        ("FOOTFALL_CHECKPOINT_INTERVAL_S", "60"),  # not below the 60 s health bound on checkpoint age
        ("FOOTFALL_DEAD_LETTER_LOG_EVERY_S", "ten"),  # not a number
        ("FOOTFALL_LOG_LEVEL", "verbose"),  # not a level
        ("FOOTFALL_WEB_ENABLED", "maybe"),  # not a boolean
        ("FOOTFALL_WEB_ENABLED", "2"),  # not a boolean either
        ("FOOTFALL_WEB_PORT", "0"),  # not a port
        ("FOOTFALL_WEB_PORT", "65536"),  # too high
        ("FOOTFALL_WEB_PORT", "http"),  # not an integer
    ],
)
def test_bad_value_names_the_variable(var: str, raw: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({var: raw})
    assert str(caught.value).startswith(f"{var}="), str(caught.value)


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("FOOTFALL_TIMEZONE", "Europe"),  # a folder of tzdata: ZoneInfo raises IsADirectoryError
        ("FOOTFALL_TIMEZONE", "America"),  # another folder
        ("FOOTFALL_DEAD_LETTER_LOG_EVERY_S", "nan"),  # `nan < 0` is False, so NaN passes the check
    ],
)
def test_bad_value_names_the_variable_folders_and_nan(var: str, raw: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({var: raw})
    assert str(caught.value).startswith(f"{var}="), str(caught.value)


def test_heartbeat_is_checked_against_the_given_session_timeout() -> None:
    assert Settings.from_env({"FOOTFALL_SESSION_TIMEOUT_S": "30", "FOOTFALL_HEARTBEAT_S": "10"}).heartbeat_s == 10
    with pytest.raises(SettingsError, match=r"^FOOTFALL_HEARTBEAT_S="):
        Settings.from_env({"FOOTFALL_SESSION_TIMEOUT_S": "2", "FOOTFALL_HEARTBEAT_S": "2"})


def test_overrides_win_over_the_environment() -> None:
    env = {"FOOTFALL_BUCKET_S": "1800", "FOOTFALL_TOPIC_PREFIX": "from-env", "FOOTFALL_PARTITIONS": "not a number"}
    s = Settings.from_env(env, bucket_s=3600, partitions=8)
    assert (s.bucket_s, s.partitions, s.topic_prefix) == (3600, 8, "from-env")


def test_overrides_are_validated_too() -> None:
    with pytest.raises(SettingsError, match=r"^FOOTFALL_BUCKET_S="):
        Settings.from_env({}, bucket_s=7)


def test_derived_names() -> None:
    s = Settings(topic_prefix="acme", bucket_s=1800, grace_s=60)
    assert (s.topic("events"), s.topic("dead-letter")) == ("acme.events", "acme.dead-letter")
    assert s.redis_key("store", "s-1", "2026-01-01") == "acme:store:s-1:2026-01-01"
    assert (s.bucket_ms, s.grace_ms) == (1_800_000, 60_000)


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().bucket_s = 60  # type: ignore[misc]


# -- round trip through the environment ------------------------------------------------------------------

BUCKETS_S = [b for b in range(60, 86_401, 60) if 86_400 % b == 0]


@st.composite
def valid_settings(draw: st.DrawFn) -> Settings:
    session = draw(st.floats(1, 300))
    name = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
    return Settings(
        broker=draw(st.from_regex(r"[a-z0-9.-]{1,10}:[0-9]{1,5}(,[a-z0-9.-]{1,10}:[0-9]{1,5}){0,2}", fullmatch=True)),
        redis_url=draw(st.sampled_from(["redis://r:6379/0", "rediss://cache:6380/3", "unix:///tmp/r.sock"])),
        topic_prefix=draw(name),
        app_id=draw(name),
        partitions=draw(st.integers(1, 1024)),
        bucket_s=draw(st.sampled_from(BUCKETS_S)),
        grace_s=draw(st.integers(0, 604_800)),
        timezone=draw(st.sampled_from(["UTC", "Europe/Paris", "Asia/Kolkata", "America/St_Johns"])),
        pseudonym_secret=draw(st.one_of(st.just(""), st.text(min_size=16, max_size=40))),
        min_event_time=draw(st.sampled_from(["2000-01-01T00:00:00Z", "2024-03-31T01:30:00+05:30"])),
        max_future_s=draw(st.integers(0, 604_800)),
        history_maxlen=draw(st.integers(10, 10_000_000)),
        bucket_retention_days=draw(st.integers(1, 400)),
        session_timeout_s=session,
        heartbeat_s=draw(st.floats(0.1, session, exclude_max=True)),
        processing_guarantee=draw(st.sampled_from(["at_least_once", "exactly_once"])),
        dead_letter_log_every_s=draw(st.floats(0, 1e6)),
        live_interval_s=draw(st.floats(0, 60)),
        log_level=draw(st.sampled_from(["debug", "INFO", "Warning", "error", "critical"])),
        web_enabled=draw(st.booleans()),
        web_port=draw(st.integers(1, 65_535)),
        data_dir=draw(st.text(max_size=30)),
    )


@settings(max_examples=200, deadline=None)
@given(valid_settings())
def test_to_env_round_trip(s: Settings) -> None:
    env = s.to_env()
    assert set(env) == set(ENV_VARIABLES)
    assert all(isinstance(v, str) for v in env.values())
    assert Settings.from_env(env) == s


# -- the secret is never shown --------------------------------------------------------------------------


def test_secret_is_not_in_repr_or_str() -> None:
    s = Settings(pseudonym_secret=SECRET)
    assert SECRET not in repr(s)
    assert SECRET not in str(s)
    assert s.pseudonym_secret == SECRET


@pytest.mark.parametrize(
    "secret",
    [
        "short-secret",  # 12 characters
        "123456789012345",  # 15 characters, one short
        "x",  # one character
    ],
)
def test_short_secret_error_does_not_show_it(secret: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"FOOTFALL_PSEUDONYM_SECRET": secret})
    message = str(caught.value)
    assert message.startswith("FOOTFALL_PSEUDONYM_SECRET=")
    assert "at least 16 characters" in message
    assert secret not in message
    assert secret not in repr(caught.value)


def test_other_errors_do_not_show_the_secret() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"FOOTFALL_PSEUDONYM_SECRET": SECRET, "FOOTFALL_WEB_PORT": "0"})
    assert str(caught.value).startswith("FOOTFALL_WEB_PORT=")
    assert SECRET not in str(caught.value)


def test_forecast_settings(tmp_path) -> None:
    holidays = tmp_path / "holidays.txt"
    holidays.write_text("# public holidays\n2026-12-25\n2026-12-26  # boxing day\n\n2026-12-25\n")
    s = Settings(bucket_s=1800, holidays=str(holidays))
    assert s.forecast_horizon == 48
    assert s.holiday_dates == (dt.date(2026, 12, 25), dt.date(2026, 12, 26))
    assert Settings(forecast_horizon_h=0).forecast_horizon == 0
    for bad in (-1.0, 0.1, 400.0, float("nan")):
        with pytest.raises(SettingsError, match="FOOTFALL_FORECAST_HORIZON_H"):
            Settings(forecast_horizon_h=bad)
    holidays.write_text("25/12/2026\n")
    with pytest.raises(SettingsError, match="FOOTFALL_HOLIDAYS"):
        Settings(holidays=str(holidays))
    with pytest.raises(SettingsError, match="FOOTFALL_HOLIDAYS"):
        Settings(holidays=str(tmp_path / "missing.txt"))


def test_store_capacities() -> None:
    s = Settings(store_capacities="retail-001=120, bank-002=45.5")
    assert s.capacity_of_store == {"retail-001": 120.0, "bank-002": 45.5}
    for bad in ("retail-001", "retail-001=0", "=5", "retail-001=many", "retail-001=nan"):
        with pytest.raises(SettingsError, match="FOOTFALL_STORE_CAPACITIES"):
            Settings(store_capacities=bad)


def test_extra_stages_name_module_and_class() -> None:
    s = Settings.from_env({"FOOTFALL_EXTRA_STAGES": "tests.toy:ToyStage, other.mod:Second"})
    assert s.extra_stage_paths == ("tests.toy:ToyStage", "other.mod:Second")
    with pytest.raises(SettingsError, match="FOOTFALL_EXTRA_STAGES"):
        Settings.from_env({"FOOTFALL_EXTRA_STAGES": "tests.toy.ToyStage"})


# -- Kafka security ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("env", "says"), [
    ({"FOOTFALL_KAFKA_SECURITY_PROTOCOL": "TLS"}, "must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
    ({"FOOTFALL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "FOOTFALL_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512"},
     "needs a user name and a password"),
    ({"FOOTFALL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "FOOTFALL_KAFKA_SASL_MECHANISM": "GSSAPI",
      "FOOTFALL_KAFKA_SASL_USERNAME": "u", "FOOTFALL_KAFKA_SASL_PASSWORD": SECRET}, "PLAIN, SCRAM-SHA-256"),
    ({"FOOTFALL_KAFKA_SASL_USERNAME": "u", "FOOTFALL_KAFKA_SASL_PASSWORD": SECRET},
     "the protocol does not use SASL"),
    ({"FOOTFALL_KAFKA_SSL_CAFILE": "/etc/hostname"}, "the protocol does not use TLS"),
    ({"FOOTFALL_KAFKA_SECURITY_PROTOCOL": "SSL", "FOOTFALL_KAFKA_SSL_CAFILE": "/no/such/ca.pem"},
     "is not a readable file"),
    ({"FOOTFALL_KAFKA_SECURITY_PROTOCOL": "SSL", "FOOTFALL_KAFKA_SSL_KEYFILE": "/etc/hostname"},
     "without FOOTFALL_KAFKA_SSL_CERTFILE"),
])
def test_kafka_security_refuses_what_cannot_work_and_never_shows_the_password(env: dict, says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert str(caught.value).startswith("FOOTFALL_KAFKA_SECURITY_PROTOCOL=")
    assert says in str(caught.value)
    assert SECRET not in str(caught.value)


def test_kafka_security_reaches_every_client_kind() -> None:
    s = Settings.from_env({"FOOTFALL_BROKER": "k1:9093,k2:9093", "FOOTFALL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                           "FOOTFALL_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "FOOTFALL_KAFKA_SASL_USERNAME": "ff",
                           "FOOTFALL_KAFKA_SASL_PASSWORD": SECRET, "FOOTFALL_KAFKA_SSL_CHECK_HOSTNAME": "false"})
    assert SECRET not in repr(s) and SECRET not in repr(s.kafka)
    sync, async_ = s.kafka.kafka_python(), s.kafka.aiokafka()
    assert sync["bootstrap_servers"] == ["k1:9093", "k2:9093"] and async_["bootstrap_servers"] == "k1:9093,k2:9093"
    for options in (sync, async_):
        assert (options["security_protocol"], options["sasl_mechanism"], options["sasl_plain_username"],
                options["sasl_plain_password"]) == ("SASL_SSL", "SCRAM-SHA-256", "ff", SECRET)
        assert options["ssl_context"].check_hostname is False
    credentials = s.kafka.faust_credentials()
    assert (credentials.username, credentials.password, credentials.mechanism.value,
            credentials.protocol.value) == ("ff", SECRET, "SCRAM-SHA-256", "SASL_SSL")
    assert Settings.from_env(s.to_env()) == s  # a child process gets the same
