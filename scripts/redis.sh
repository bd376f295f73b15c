#!/usr/bin/env bash
# Redis for the tests and the active/standby benchmark: Debian's redis-server on loopback.
#
#   scripts/redis.sh install        apt-get install redis-server (and kcat) when missing
#   scripts/redis.sh start DIR      start redis-server on a free port (or DIR's port again,
#                                   a restart), wait for PONG, print 127.0.0.1:PORT
#   scripts/redis.sh stop DIR       stop it (SIGTERM; SIGKILL after 10 s)
#   scripts/redis.sh kill DIR       SIGKILL it
# Nothing is persisted (no RDB, no AOF): a restart starts empty, like a lost Redis.
set -euo pipefail

install() {
  if command -v redis-server >/dev/null && command -v redis-cli >/dev/null && command -v kcat >/dev/null; then return 0; fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server redis-tools kcat
  # Debian's package may start the system service; the tests run their own instances.
  if command -v service >/dev/null; then service redis-server stop >/dev/null 2>&1 || true; fi
}

start() {
  local dir="$1"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then echo "127.0.0.1:$(cat "$dir/port")"; return 0; fi
  command -v redis-server >/dev/null || { echo "redis.sh: redis-server is missing: bash scripts/redis.sh install" >&2; exit 1; }
  [ -f "$dir/port" ] || node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})' >"$dir/port"
  local port; port="$(cat "$dir/port")"
  nohup redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' --appendonly no \
    --protected-mode yes --daemonize no --logfile "$dir/redis.log" </dev/null >/dev/null 2>&1 &
  echo $! >"$dir/pid"
  local deadline=$((SECONDS + 15))
  until [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; do
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then echo "redis.sh: redis-server exited; see $dir/redis.log" >&2; exit 1; fi
    if [ "$SECONDS" -ge "$deadline" ]; then echo "redis.sh: no PONG within 15 s" >&2; exit 1; fi
    sleep 0.05
  done
  # The port was free when picked, not when bound: make sure the PONG came from our server,
  # not from another run's Redis that took the port in between.
  local served; served="$(redis-cli -h 127.0.0.1 -p "$port" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')"
  if [ "$served" != "$(cat "$dir/pid")" ]; then
    echo "redis.sh: port $port answers for another redis-server (pid $served); see $dir/redis.log" >&2
    exit 1
  fi
  echo "127.0.0.1:$port"
}

stop() {
  local dir="$1" sig="${2:-TERM}"
  [ -f "$dir/pid" ] || return 0
  local pid; pid="$(cat "$dir/pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -"$sig" "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then kill -9 "$pid" 2>/dev/null || true; fi
      sleep 0.05
    done
  fi
  rm -f "$dir/pid"
}

case "${1:-}" in
  install) install ;;
  start) start "${2:?usage: redis.sh start DIR}" ;;
  stop) stop "${2:?usage: redis.sh stop DIR}" TERM ;;
  kill) stop "${2:?usage: redis.sh kill DIR}" KILL ;;
  *) echo "usage: redis.sh install | start DIR | stop DIR | kill DIR" >&2; exit 2 ;;
esac
