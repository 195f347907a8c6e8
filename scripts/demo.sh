#!/usr/bin/env bash
# The main job on a local default: an OpenBao dev server and the SeaTable
# stand-in on loopback, an API token stored in OpenBao, and `get` twice —
# the second answered from the cache without touching either server.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

echo "==> building seatable-cred and the SeaTable stand-in (first run: a few minutes)"
cargo build --quiet --bin seatable-cred --bin seatable-standin --workspace
BIN="$BUILD_DIR/debug/seatable-cred"

make_work_dir demo
echo "==> starting an OpenBao dev server and the SeaTable stand-in"
start_bao demo-root-token
start_standin
echo "    OpenBao:  $BAO_URL"
echo "    SeaTable: $STANDIN_URL"

echo "==> storing the base's API token in OpenBao at secret/seatable/demo"
# The value goes through stdin (api_token=-), never through argv.
BAO_ADDR="$BAO_URL" BAO_TOKEN=demo-root-token "$(find_bao)" kv put -mount=secret seatable/demo api_token=- \
  <<<"$STANDIN_API_TOKEN" >/dev/null

export VAULT_ADDR="$BAO_URL"
export VAULT_TOKEN=demo-root-token          # the dev server's root token; use a policy-bound token in real life
export SEATABLE_SERVER_URL="$STANDIN_URL"
export SEATABLE_CRED_SECRET=secret/seatable/demo
# The demo's own cache, in its tmpfs scratch directory (removed at exit), so
# that it leaves nothing in your kernel keyring; the default is `--cache auto`.
export SEATABLE_CRED_CACHE=file
export SEATABLE_CRED_CACHE_DIR="$WORK/cache"

show() {
  # Shorten the token for the screen; the rest as printed.
  python3 -c 'import json,sys
d = json.load(sys.stdin); t = d["token"]; d["token"] = t[:16] + "…" + t[-6:]
print(json.dumps(d, indent=2, ensure_ascii=False))'
}

for call in first second; do
  echo
  echo "==> $call call:  seatable-cred get -o json"
  start=$(date +%s%N)
  out="$("$BIN" get -o json)"
  end=$(date +%s%N)
  echo "$out" | show
  echo "    took $(( (end - start) / 1000000 )) ms; SeaTable exchanges so far: $(standin_stat exchanges)"
done

echo
echo "==> the default output, for kubectl and other client-go tools:  seatable-cred get"
"$BIN" get | python3 -c 'import json,sys
d = json.load(sys.stdin); t = d["status"]["token"]; d["status"]["token"] = t[:16] + "…"
print(json.dumps(d, ensure_ascii=False))'
[ "$(standin_stat exchanges)" = 1 ] || { echo "expected exactly one exchange" >&2; exit 1; }

echo
echo "==> what is cached, and where:  seatable-cred status"
"$BIN" status
echo
echo "Done: one exchange; every later call was served from the cache (removed with the demo's scratch directory)."
