#!/usr/bin/env bash
# Install what is missing, then run the whole test suite (unit, doctests, integration on a real
# Apache Kafka and Redis that the session fixtures start on free loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
