#!/usr/bin/env bash
# Install what footfall needs on a Debian machine, idempotently:
#   Java + Maven (to fetch and run Apache Kafka), redis-server, python3-venv, openssl, chromium (Debian
#   packages; openssl makes the secured stack's certificates, chromium runs the dashboard's browser tests);
#   a virtualenv in .venv with footfall and its dependencies;
#   the Apache Kafka broker jars from Maven Central, cached in ~/.cache/footfall.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[bootstrap] %s\n' "$*" >&2; }

packages=()
command -v java >/dev/null 2>&1 || packages+=(default-jre-headless)
command -v mvn >/dev/null 2>&1 || packages+=(maven)
{ command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ]; } || packages+=(redis-server)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || packages+=(python3-venv)
# Certificates for `footfall stack up --secure` and its test (Kafka SASL_SSL, Redis TLS).
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
# Headless Chromium for the dashboard's browser tests (driven by Playwright; no browser download).
{ command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; } || packages+=(chromium)
if [ "${#packages[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing Debian packages: ${packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.footfall-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log "installing Python dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi

log "checking the Apache Kafka broker jars"
.venv/bin/python - <<'PY'
import sys
from footfall.scripts.stack import KAFKA_VERSION, default_cache_dir, ensure_kafka_libs
libs = ensure_kafka_libs(default_cache_dir(), KAFKA_VERSION, progress=lambda m: print(f"[bootstrap] {m}", file=sys.stderr))
print(f"[bootstrap] Apache Kafka {KAFKA_VERSION} ready in {libs}", file=sys.stderr)
PY
