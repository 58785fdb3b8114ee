#!/usr/bin/env bash
# Install what is missing, then run the whole test suite (unit, doctests, integration on a real
# Apache Kafka and Redis that the session fixtures start on free loopback ports).
#
# With no arguments, the fault suite (marker `faults`: tests/faults, the scenarios of minutes included)
# runs in a second pytest process beside the rest, since it mostly waits on what it broke (each process
# starts its own broker and Redis); its output is printed at the end, and the status is non-zero when
# either failed. With arguments, one pytest gets them, as they are (e.g. `bash scripts/test.sh tests/unit -x`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
pytest=(.venv/bin/python -m pytest -p no:cacheprovider)
if [ "$#" -gt 0 ]; then
    exec "${pytest[@]}" "$@"
fi

faults_log="$(mktemp "${TMPDIR:-/tmp}/footfall-faults.XXXXXX.log")"
"${pytest[@]}" -m faults >"$faults_log" 2>&1 &
faults_pid=$!
# An interrupted run takes the background pytest (and the services it started) with it.
trap 'kill "$faults_pid" 2>/dev/null || true' INT TERM

main_status=0
"${pytest[@]}" -m "not faults" || main_status=$?
faults_status=0
wait "$faults_pid" || faults_status=$?
trap - INT TERM

echo
echo "=== fault suite (pytest -m faults, run beside the rest; log: $faults_log) ==="
cat "$faults_log"
echo "=== main run: exit $main_status; fault suite: exit $faults_status ==="
if [ "$main_status" -ne 0 ]; then
    exit "$main_status"
fi
exit "$faults_status"
