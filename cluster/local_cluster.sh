#!/usr/bin/env bash
# Start or stop a local multi-node Ray cluster on this machine: one head and N worker nodes,
# each a separate raylet with its own CPUs, listening on this host only. Used by the multi-node
# tests and for trying cluster behaviour (scheduling across nodes, node loss) on a laptop.
#
#   cluster/local_cluster.sh start [--workers N] [--cpus-per-node C] [--port P] [--dashboard-port D]
#   cluster/local_cluster.sh status
#   cluster/local_cluster.sh stop
#
# Prints the address to use (RAY_ADDRESS=127.0.0.1:P) on start. Every port a node listens on is
# derived from P (client server P+1, dashboard agents P+2.., metrics P+20..), so clusters with
# different ports (and temp dirs) run side by side; --dashboard-port adds the dashboard and with it
# the job API (`ray job submit --address http://127.0.0.1:D`).
set -euo pipefail

RAY=${RAY:-ray}
if [ -x "$(dirname "$0")/../.venv/bin/ray" ] && [ "$RAY" = ray ]; then RAY="$(dirname "$0")/../.venv/bin/ray"; fi
PORT=${CLINITUNE_CLUSTER_PORT:-6390}
WORKERS=1
CPUS=1
DASHBOARD_PORT=${CLINITUNE_CLUSTER_DASHBOARD_PORT:-}
TEMP_DIR=${CLINITUNE_CLUSTER_TMP:-/tmp/clinitune-ray}
export RAY_USAGE_STATS_ENABLED=0
# Token authentication on, as Ray recommends: every node and client of this cluster reads the
# token from ~/.ray/auth_token (generated once if absent). Clients need RAY_AUTH_MODE=token too.
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-token}

# Every process of a node is started in a session of its own (setsid) and its session id kept in
# $TEMP_DIR/sessions, so `stop` ends exactly this cluster: a plain `ray stop` would also kill
# any other Ray on the machine, a test session's included.
SESSIONS="$TEMP_DIR/sessions"

start_node() {
  mkdir -p "$TEMP_DIR"
  setsid "$RAY" start "$@" >/dev/null 2>"$TEMP_DIR/last-start.err" &
  local pid=$!
  echo "$pid" >> "$SESSIONS"
  wait "$pid" || { cat "$TEMP_DIR/last-start.err" >&2; return 1; }
}

session_pids() {
  local sid
  [ -f "$SESSIONS" ] || return 0
  for sid in $(cat "$SESSIONS"); do pgrep -s "$sid" || true; done
}

cmd=${1:-}; shift || true
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) WORKERS=$2; shift 2 ;;
    --cpus-per-node) CPUS=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --dashboard-port) DASHBOARD_PORT=$2; shift 2 ;;
    *) echo "unknown option '$1'. Fix: use --workers N, --cpus-per-node C, --port P or --dashboard-port D." >&2; exit 2 ;;
  esac
done

case "$cmd" in
  start)
    if [ -s "$SESSIONS" ] && [ -n "$(session_pids)" ]; then
      echo "a local cluster is already running (temp dir $TEMP_DIR). Fix: run '$0 stop' first." >&2; exit 2
    fi
    rm -f "$SESSIONS"
    if [ "$RAY_AUTH_MODE" = token ] && [ ! -s "${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}" ] && [ -z "${RAY_AUTH_TOKEN:-}" ]; then
      "$RAY" get-auth-token --generate >/dev/null
    fi
    if [ -n "$DASHBOARD_PORT" ]; then
      dashboard=(--include-dashboard true --dashboard-host 127.0.0.1 --dashboard-port "$DASHBOARD_PORT")
    else
      dashboard=(--include-dashboard false)
    fi
    start_node --head --node-ip-address 127.0.0.1 --port "$PORT" --num-cpus "$CPUS" \
      --resources '{"clinitune_head": 1}' "${dashboard[@]}" --disable-usage-stats \
      --ray-client-server-port $((PORT + 1)) --dashboard-agent-listen-port $((PORT + 2)) \
      --metrics-export-port $((PORT + 20)) --temp-dir "$TEMP_DIR"
    for i in $(seq 1 "$WORKERS"); do
      start_node --address "127.0.0.1:$PORT" --node-ip-address 127.0.0.1 --num-cpus "$CPUS" \
        --resources "{\"clinitune_worker_$i\": 1}" --disable-usage-stats --temp-dir "$TEMP_DIR" \
        --dashboard-agent-listen-port $((PORT + 2 + i)) --metrics-export-port $((PORT + 20 + i))
    done
    echo "RAY_ADDRESS=127.0.0.1:$PORT RAY_AUTH_MODE=$RAY_AUTH_MODE"
    ;;
  status)
    "$RAY" status --address "127.0.0.1:$PORT"
    ;;
  stop)
    # Only this cluster's processes: a plain `ray stop` would also kill any other Ray on the
    # machine, a test session's included. Ours carry the temp dir in their command lines, or
    # (the agents, which rename themselves) one of our raylets' pids in RAY_RAYLET_PID.
    pids=$(session_pids)
    [ -n "$pids" ] && kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 1 20); do
      alive=""; for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
      [ -z "$alive" ] && break; sleep 0.5
    done
    [ -n "${alive:-}" ] && kill -KILL $alive 2>/dev/null || true
    rm -f "$SESSIONS"
    echo "stopped"
    ;;
  *)
    echo "usage: $0 start [--workers N] [--cpus-per-node C] [--port P] [--dashboard-port D] | status | stop" >&2
    exit 2
    ;;
esac
