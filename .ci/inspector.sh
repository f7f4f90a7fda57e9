#!/usr/bin/env bash
# Drive the server once with the MCP Inspector's CLI, over stdio and over streamable HTTP:
# tools/list, a tools/call of preview_schedule, resources/templates/list. Any error fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

export ORCH_DATABASE_URL="sqlite+aiosqlite:///$work/inspector.db"
export ORCH_LOG_LEVEL=WARNING
export ORCH_BACKGROUND_WORKER=off  # no worker left behind once the script ends
server=(python -m orchestrator_mcp serve)
schedule='schedule={"kind":"interval","expr":"15m"}'

inspect() {  # inspect TARGET... -- METHOD ARGS...: run one inspector call, keep its output, fail on error
    local out="$work/out.json"
    if ! npx -y @modelcontextprotocol/inspector --cli "$@" >"$out" 2>"$work/npx.err"; then
        echo "inspector failed: $*" >&2
        cat "$out" "$work/npx.err" >&2
        return 1
    fi
    if grep -q '"isError": true' "$out"; then
        echo "tool error from: $*" >&2
        cat "$out" >&2
        return 1
    fi
    cat "$out"
}

check() {  # check WHAT EXPECTED: the last output must contain EXPECTED
    if ! grep -q "$2" "$work/out.json"; then
        echo "$1: expected '$2' in:" >&2
        cat "$work/out.json" >&2
        return 1
    fi
    echo "ok: $1"
}

drive() {  # drive LABEL TARGET...
    local label="$1"
    shift
    inspect "$@" --method tools/list >/dev/null
    check "$label tools/list" '"name": "schedule_task"'
    inspect "$@" --method tools/call --tool-name preview_schedule --tool-arg "$schedule" --tool-arg count=2 >/dev/null
    check "$label tools/call preview_schedule" '"description": "Every 15 minutes"'
    inspect "$@" --method resources/templates/list >/dev/null
    check "$label resources/templates/list" 'orchestrator://runs/{run_id}/log'
}

drive stdio "${server[@]}"

port="$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"${server[@]}" --transport http --no-auth --host 127.0.0.1 --port "$port" 2>"$work/server.err" &
server_pid=$!
python - "$port" <<'PY'
import sys, time, urllib.request
deadline = time.monotonic() + 30
while True:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health/ready", timeout=2) as answer:
            if answer.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("the HTTP server did not become ready")
    time.sleep(0.2)
PY
drive http "http://127.0.0.1:$port/mcp" --transport http

kill -TERM "$server_pid"
if ! wait "$server_pid"; then
    echo "the HTTP server did not exit 0 on SIGTERM" >&2
    cat "$work/server.err" >&2
    exit 1
fi
server_pid=""
echo "inspector: stdio and HTTP ok"
