"""The quick-start job: `footfall demo` runs worker + simulator + dashboard and shows live per-store lines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import urllib.request
from typing import Any

import orjson
import pytest

from footfall.schemas.keys import RedisKeys
from footfall.scripts.stack import free_port
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration


def test_demo_shows_live_store_lines_and_cleans_up(services, unique_prefix, tmp_path):
    env = {**os.environ, "FOOTFALL_BROKER": services.bootstrap, "FOOTFALL_REDIS_URL": services.redis_url,
           "FOOTFALL_TOPIC_PREFIX": unique_prefix, "FOOTFALL_APP_ID": f"{unique_prefix}-worker"}
    demo = subprocess.Popen(
        [sys.executable, "-m", "footfall.scripts.cli", "demo", "--use-running", "--duration", "30", "--every", "5",
         "--run-dir", str(tmp_path / "demo"), "--stores", "6", "--speed", "600", "--dashboard-port", str(free_port())],
        env=env, stdout=subprocess.PIPE, stderr=open(tmp_path / "demo.err", "w"), text=True,  # noqa: SIM115
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(demo.stdout), daemon=True)
    reader.start()
    # The quick start prints the dashboard's URL, and the dashboard serves the stores while the demo runs.
    wait_until(lambda: any("dashboard   http://" in line for line in lines) or demo.poll() is not None, 60,
               "the demo to print the dashboard's URL")
    try:
        found = [m.group(0) for line in lines if (m := re.search(r"dashboard   (http://\S+/)", line))]
        assert found, (tmp_path / "demo.err").read_text()[-3000:]
        url = found[0].split()[-1]
        wait_until(lambda: len(_json(url + "api/overview").get("stores", [])) > 0, 25, f"stores on {url}")
        demo.wait(timeout=180)
    finally:
        if demo.poll() is None:
            demo.kill()
    reader.join(timeout=10)
    assert demo.returncode == 0, (tmp_path / "demo.err").read_text()[-3000:]
    out = "".join(lines)
    assert RedisKeys(unique_prefix).store_latest("retail-001") in out  # where to look
    counted = [int(n.replace(",", "")) for n in re.findall(r"events counted ([\d,]+)", out)]
    assert counted and counted[-1] > 0, out[-2000:]
    assert re.search(r"^(retail|bank|telecom)-\d{3}\s+(retail|bank|telecom)\s+\d{4}-\d\d-\d\dT", out, re.MULTILINE)
    # Worker and simulator were stopped: no process still runs with this prefix in its environment.
    assert unique_prefix not in _environments_of_workers()


def _json(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return orjson.loads(response.read())
    except OSError:
        return {}


def _environments_of_workers() -> str:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
            if b"footfall.scripts.cli" in cmd:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    found.append(f.read().decode(errors="replace"))
        except OSError:
            continue
    return "\n".join(found)
