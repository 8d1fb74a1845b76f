#!/usr/bin/env bash
# Which gunicorn worker class serves a Starlette "ok" fastest on this machine: 3 wrk runs of 5 s each,
# 64 connections, one gunicorn worker, for each class; prints every run so the median can be read.
# Usage: benchmarks/server_choice.sh   (needs wrk; the dev venv in .venv)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/okapp.py" <<'PY'
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def ok(request):
    return PlainTextResponse("ok")

app = Starlette(routes=[Route("/", ok)])
PY
port=8199
run() {
  local label=$1; shift
  (cd "$tmp" && exec "$here/.venv/bin/gunicorn" okapp:app -b 127.0.0.1:$port -w 1 "$@") >"$tmp/$label.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -fs "127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
  for r in 1 2 3; do
    printf '%-28s run %d %s req/s\n' "$label" "$r" "$(wrk -t1 -c64 -d5s "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
run "asgi (native, uvloop)" -k asgi --asgi-loop uvloop
run "uvicorn_worker (uvloop)" -k uvicorn_worker.UvicornWorker
