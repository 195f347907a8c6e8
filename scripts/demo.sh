#!/usr/bin/env bash
# The main job on a local default: an OpenBao dev server and the SeaTable
# stand-in on loopback, an API token stored in OpenBao, a profile written by
# `init` (which checks every step, the exchange included), and `get` twice —
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

export VAULT_TOKEN=demo-root-token          # the dev server's root token; use a policy-bound token in real life
# The demo's own config file, in its tmpfs scratch directory (removed at exit).
export SEATABLE_CRED_CONFIG="$WORK/config.toml"

echo
echo "==> writing the profile:  seatable-cred init --yes --server-url … --vault-addr … --secret …"
echo "    (on a terminal, plain \`seatable-cred init\` asks for each of these and checks it)"
# The demo's own cache, in the scratch directory too, so that it leaves
# nothing in your kernel keyring; the default is `--cache auto`.
"$BIN" init --yes --server-url "$STANDIN_URL" --vault-addr "$BAO_URL" \
  --secret secret/seatable/demo --cache file --cache-dir "$WORK/cache" </dev/null >"$WORK/snippets.txt"
sed 's/^/    /' "$SEATABLE_CRED_CONFIG"
echo "    (and on stdout the lines for kubectl, git and Python; SeaTable exchanges so far: $(standin_stat exchanges))"

show() {
  # Shorten the token for the screen; the rest as printed.
  python3 -c 'import json,sys
d = json.load(sys.stdin); t = d["token"]; d["token"] = t[:16] + "…" + t[-6:]
print(json.dumps(d, indent=2, ensure_ascii=False))'
}

echo
echo "==> dropping the token init's check cached, to show a cold call:  seatable-cred erase"
"$BIN" erase

for call in first second; do
  echo
  echo "==> $call call:  seatable-cred get -o json   (the profile; only the Vault token in the environment)"
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
[ "$(standin_stat exchanges)" = 2 ] || { echo "expected exactly two exchanges: init's and the first get's" >&2; exit 1; }

echo
echo "==> what is cached, and where:  seatable-cred status"
"$BIN" status
echo
echo "Done: init's check and the first get exchanged; every later call was served from the cache (removed with the demo's scratch directory)."
