#!/usr/bin/env bash
# The README's test command (`make test` runs this after installing the venv):
# lint, type-check, then every test — unit, dataflow and integration — against a real
# single-node Kafka broker that docker/kafka-local.sh fetches and starts on loopback.
# A broker that was already running is used and left running; one we start, we stop.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:${KAFKA_PORT:-9092}}

"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/mypy"
# The collector's C fast path under ASan/UBSan (~1 min; see the script).
VENV="$VENV" bash scripts/sanitize-fastpath.sh

# The browser tests drive Debian's chromium (headless); install it once if missing.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing (apt-get install chromium); browser tests will fail under CI" >&2
  fi
fi

started=0
if ! bash docker/kafka-local.sh status >/dev/null 2>&1; then
  bash docker/kafka-local.sh start
  started=1
fi
cleanup() { if [ "$started" = 1 ]; then bash docker/kafka-local.sh stop; fi; }
trap cleanup EXIT

"$VENV/bin/pytest" --doctest-modules state cdpflow collector profile_api mailer tests "$@"
