"""The `footfall` command: every subcommand answers --help, and bad configuration fails by name."""

from __future__ import annotations

import subprocess
import sys

import pytest

from footfall.scripts.cli import TOOLS, build_parser

FOOTFALL = [sys.executable, "-m", "footfall.scripts.cli"]


def test_every_tool_is_registered():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert set(subparsers.choices) == set(TOOLS)


@pytest.mark.parametrize("command", sorted(TOOLS))
def test_help_works(command: str):
    result = subprocess.run([*FOOTFALL, command, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: footfall {command}")


def test_worker_without_secret_names_the_variable():
    env = {"PATH": "/usr/bin:/bin", "FOOTFALL_BROKER": "127.0.0.1:1"}
    result = subprocess.run([*FOOTFALL, "worker"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert "FOOTFALL_PSEUDONYM_SECRET" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FOOTFALL_BUCKET_S", "7"),  # does not divide a day into whole minutes
        ("FOOTFALL_PARTITIONS", "many"),  # not an integer
        ("FOOTFALL_TIMEZONE", "Mars/Olympus"),  # not an IANA zone
    ],
)
def test_worker_with_a_bad_variable_fails_at_start_naming_it(variable: str, value: str):
    env = {"PATH": "/usr/bin:/bin", "FOOTFALL_PSEUDONYM_SECRET": "0123456789abcdef0123", variable: value}
    result = subprocess.run([*FOOTFALL, "worker"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert f"{variable}='{value}'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("tool", [["bench", "--broker", "127.0.0.1:1", "--redis-url", "redis://127.0.0.1:1/0"],
                                  ["scale", "--broker", "127.0.0.1:1", "--redis-url", "redis://127.0.0.1:1/0"],
                                  ["stack", "check", "--bootstrap", "127.0.0.1:1"]],
                         ids=["bench", "scale", "stack-check"])
def test_a_measurement_tool_given_kafka_security_that_cannot_work_fails_naming_it(tool: list[str], tmp_path):
    # SASL without a mechanism: refused before any connection, by name, without a traceback.
    env = {"PATH": "/usr/bin:/bin", "FOOTFALL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}
    args = [*tool, "--run-dir", str(tmp_path)] if tool[0] == "stack" else tool
    result = subprocess.run([*FOOTFALL, *args], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "FOOTFALL_KAFKA_SASL_MECHANISM" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_schema_files_are_current():
    result = subprocess.run([*FOOTFALL, "schemas", "check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
