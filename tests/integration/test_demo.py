"""The quick-start job: `footfall demo` runs worker + simulator and shows live per-store lines."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_demo_shows_live_store_lines_and_cleans_up(services, unique_prefix, tmp_path):
    env = {**os.environ, "FOOTFALL_BROKER": services.bootstrap, "FOOTFALL_REDIS_URL": services.redis_url,
           "FOOTFALL_TOPIC_PREFIX": unique_prefix, "FOOTFALL_APP_ID": f"{unique_prefix}-worker"}
    result = subprocess.run(
        [sys.executable, "-m", "footfall.scripts.cli", "demo", "--use-running", "--duration", "30", "--every", "5",
         "--run-dir", str(tmp_path / "demo"), "--stores", "6", "--speed", "600"],
        env=env, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert f"{unique_prefix}:store:retail-001:latest" in out  # where to look
    counted = [int(n.replace(",", "")) for n in re.findall(r"events counted ([\d,]+)", out)]
    assert counted and counted[-1] > 0, out[-2000:]
    assert re.search(r"^(retail|bank|telecom)-\d{3}\s+(retail|bank|telecom)\s+\d{4}-\d\d-\d\dT", out, re.MULTILINE)
    # Worker and simulator were stopped: no process still runs with this prefix in its environment.
    assert unique_prefix not in _environments_of_workers()


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
