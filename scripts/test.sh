#!/usr/bin/env bash
# Install what is missing, then run the whole test suite (unit, doctests, integration on a real
# Apache Kafka and Redis that the session fixtures start on free loopback ports).
#
# With no arguments, the fault scenarios of minutes (marker `long_faults`: Redis paused 60 s, down
# 5 min) run in a second pytest process beside the rest (each process starts its own broker and
# Redis); its output is printed at the end, and the status is non-zero when either failed. With
# arguments, one pytest gets them, as they are (e.g. `bash scripts/test.sh tests/unit -x`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
pytest=(.venv/bin/python -m pytest -p no:cacheprovider)
if [ "$#" -gt 0 ]; then
    exec "${pytest[@]}" "$@"
fi

long_log="$(mktemp "${TMPDIR:-/tmp}/footfall-long-faults.XXXXXX.log")"
"${pytest[@]}" -m long_faults >"$long_log" 2>&1 &
long_pid=$!
# An interrupted run takes the background pytest (and the services it started) with it.
trap 'kill "$long_pid" 2>/dev/null || true' INT TERM

main_status=0
"${pytest[@]}" -m "not long_faults" || main_status=$?
long_status=0
wait "$long_pid" || long_status=$?
trap - INT TERM

echo
echo "=== long fault scenarios (pytest -m long_faults, run beside the rest; log: $long_log) ==="
cat "$long_log"
echo "=== main run: exit $main_status; long fault scenarios: exit $long_status ==="
if [ "$main_status" -ne 0 ]; then
    exit "$main_status"
fi
exit "$long_status"
