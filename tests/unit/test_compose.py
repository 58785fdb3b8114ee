"""docker-compose.yml stays valid and in step with the code, though CI has no Docker engine."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from footfall.scripts.cli import TOOLS
from footfall.stream.settings import ENV_VARIABLES, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
#: `${VAR:?message}`: compose refuses to start while VAR is unset or empty.
REQUIRED = re.compile(r"\$\{[A-Z_]+:\?[^}]*\}")


def _compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _compose_available(), reason="no `docker compose` client on this machine")
def test_docker_compose_config_accepts_the_file():
    result = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_compose_services_settings_and_commands_match_the_code():
    doc = yaml.safe_load(COMPOSE.read_text())
    services = doc["services"]
    assert {"kafka", "redis", "worker", "simulator", "dashboard"} <= set(services)
    # The broker is Apache Kafka in KRaft mode, the same major.minor the local stack pins.
    assert services["kafka"]["image"].startswith("apache/kafka:3.9")
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    for name in ("worker", "simulator", "dashboard"):
        service = services[name]
        env = {k: str(v) for k, v in service["environment"].items()}
        assert set(env) <= set(ENV_VARIABLES), f"{name}: unknown variables {set(env) - set(ENV_VARIABLES)}"
        # The values must pass the same validation the worker does at start-up, once the variables that
        # compose requires (`${VAR:?...}`) are given.
        resolved = {k: REQUIRED.sub("given-by-the-operator-0123456789", v) for k, v in env.items()}
        Settings.from_env(resolved)
        assert service["command"][0] in TOOLS, f"{name}: `footfall {service['command'][0]}` does not exist"
    assert (ROOT / services["worker"]["build"] / "Dockerfile").exists()


def test_no_secret_has_a_usable_default() -> None:
    """The pseudonymisation key and Redis' password must be given: compose refuses to start without them."""
    text = COMPOSE.read_text()
    assert not re.search(r"\$\{[A-Z_]*(SECRET|PASSWORD|TOKEN)[A-Z_]*:?-", text), "a secret with a default value"
    for var in ("FOOTFALL_PSEUDONYM_SECRET", "FOOTFALL_REDIS_PASSWORD"):
        assert re.search(r"\$\{" + var + r":\?", text), f"{var} is not required"
    doc = yaml.safe_load(text)
    env = doc["services"]["worker"]["environment"]
    assert "${FOOTFALL_REDIS_PASSWORD:?" in env["FOOTFALL_REDIS_URL"]
    redis_service = " ".join(doc["services"]["redis"]["command"])
    assert "requirepass" in redis_service and "--requirepass" not in redis_service  # not on the command line
