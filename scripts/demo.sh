#!/usr/bin/env bash
# Install what is missing, then run the demo: Apache Kafka + Redis + worker + simulator, live output.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/footfall demo "$@"
