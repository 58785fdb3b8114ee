"""The one-line cause the worker gives when no broker answers, from kafka-python's own log lines.

The lines are copied from kafka-python 3.0 runs against the local stack: a wrong
SCRAM password answered with an error, the same answered by a closed TLS socket,
and nothing listening on the port.
"""

from __future__ import annotations

import logging

import pytest

from footfall.stream.settings import Settings
from footfall.stream.topics import _ConnectionFailures

SASL = {"FOOTFALL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "FOOTFALL_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "FOOTFALL_KAFKA_SASL_USERNAME": "footfall", "FOOTFALL_KAFKA_SASL_PASSWORD": "x" * 16}

AUTH_ERROR = ("Bootstrap connection to bootstrap-0 failed: [Error 58] SaslAuthenticationFailedError: "
              "SaslAuthenticationFailedError: Authentication failed during authentication due to invalid "
              "credentials with SASL mechanism SCRAM-SHA-512 (backoff 0.35 secs)")
DISCONNECT = "Bootstrap connection to bootstrap-0 failed: KafkaConnectionError: socket disconnected (backoff 0.05 secs)"
REFUSED = "Bootstrap connection to bootstrap-0 failed: KafkaConnectionError: 111 ECONNREFUSED (backoff 0.12 secs)"


def seen_in_log(lines: list[str], level: int = logging.WARNING) -> _ConnectionFailures:
    """Log `lines` through a kafka logger, as kafka-python does, with the handler attached."""
    seen = _ConnectionFailures()
    kafka_logger = logging.getLogger("kafka.net.manager")
    kafka_logger.addHandler(seen)
    kafka_logger.setLevel(logging.DEBUG)
    try:
        for line in lines:
            kafka_logger.log(level, line)
    finally:
        kafka_logger.removeHandler(seen)
        kafka_logger.setLevel(logging.NOTSET)
    return seen


def diagnose(lines: list[str], env: dict[str, str]) -> str:
    return seen_in_log(lines).diagnosis(Settings.from_env(env))


@pytest.mark.parametrize("lines", [[AUTH_ERROR], [DISCONNECT, AUTH_ERROR, DISCONNECT], [DISCONNECT] * 9])
def test_a_refused_password_names_the_credentials(lines: list[str]) -> None:
    cause = diagnose(lines, SASL)
    assert "FOOTFALL_KAFKA_SASL_PASSWORD" in cause and "FOOTFALL_KAFKA_SASL_USERNAME" in cause


def test_an_error_answer_is_told_apart_from_a_closed_socket() -> None:
    assert "refused the SASL credentials" in diagnose([DISCONNECT, AUTH_ERROR], SASL)
    assert "closed every connection" in diagnose([DISCONNECT], SASL)


def test_a_closed_socket_without_sasl_points_at_the_security_protocol() -> None:
    cause = diagnose([DISCONNECT], {})
    assert "FOOTFALL_KAFKA_SECURITY_PROTOCOL" in cause and "SASL_PASSWORD" not in cause


def test_nothing_listening_says_so() -> None:
    assert "Nothing listens there" in diagnose([REFUSED] * 3, {})


def test_debug_lines_are_not_counted() -> None:
    assert not seen_in_log([AUTH_ERROR], logging.DEBUG).refused_credentials
    assert seen_in_log([AUTH_ERROR], logging.ERROR).refused_credentials
