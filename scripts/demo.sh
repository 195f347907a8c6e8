#!/usr/bin/env bash
# The main job on a local default: an OpenBao dev server and the SeaTable
# stand-in on loopback, an API token stored in OpenBao, a profile written by
# `init` (which checks every step, the exchange included), and `get` twice —
# the second answered from the cache without touching either server.
#
# `--keep`: then the two servers stay up — the stand-in with an account
# whose token is in OpenBao, and a team with its admin, for the `token`
# commands — and the script prints the file to `source` in another terminal
# to try everything by hand (`init`, `get`, `doctor`, `serve`, `token …`).
# Ctrl-C stops the servers and removes everything the demo made.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

keep=false
case "${1:-}" in
  --keep) keep=true ;;
  "") ;;
  *) echo "usage: $0 [--keep]   (--keep: leave the servers running to try things by hand)" >&2; exit 2 ;;
esac

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
$keep || exit 0

# --- --keep: a sandbox to try everything by hand ------------------------------
echo
echo "==> --keep: an account for the token commands, a team for token audit"
# The stand-in's control interface makes the accounts; their tokens go into
# OpenBao through stdin, as the API token did.
account() {
  python3 - "$STANDIN_URL" "$@" <<'PY'
import json, sys, urllib.request
url, email, org, admin = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "admin"
body = {"email": email, "password": "demo-password-" + email.split("@")[0],
        "org_id": org, "is_org_staff": admin}
req = urllib.request.Request(url + "/_standin/accounts", json.dumps(body).encode(),
                             {"content-type": "application/json"})
print(json.load(urllib.request.urlopen(req))["token"])
PY
}
python3 - "$STANDIN_URL" <<'PY' >/dev/null
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/_standin/team", json.dumps(
    {"org_id": 1, "bases": 3, "tokens": 8, "workspaces": 2, "first_workspace": 100,
     "users": ["alice@team.local", "bob@team.local"]}).encode(), {"content-type": "application/json"})
urllib.request.urlopen(req)
PY
BAO_ADDR="$BAO_URL" BAO_TOKEN=demo-root-token "$(find_bao)" kv put -mount=secret seatable-admin/account \
  account_token=- <<<"$(account owner@demo.local -1 member)" >/dev/null
BAO_ADDR="$BAO_URL" BAO_TOKEN=demo-root-token "$(find_bao)" kv put -mount=secret seatable-admin/team-admin \
  account_token=- <<<"$(account admin@demo.local 1 admin)" >/dev/null
echo "    account token at secret/seatable-admin/account; a team admin's at secret/seatable-admin/team-admin"

# What a shell needs to use the sandbox: the demo's build first on PATH, the
# servers, the demo's config file (profile default), a cache of its own (not
# your keyring), and — proposed by `init` — the server and the secret.
cat >"$WORK/env" <<ENV
# seatable-cred sandbox (./scripts/demo.sh --keep): source this file
export PATH="$BUILD_DIR/debug:\$PATH"
export VAULT_ADDR="$BAO_URL"
export VAULT_TOKEN=demo-root-token
export SEATABLE_SERVER_URL="$STANDIN_URL"
export SEATABLE_CRED_SECRET=secret/seatable/demo
export SEATABLE_CRED_CONFIG="$SEATABLE_CRED_CONFIG"
export SEATABLE_CRED_CACHE=file
export SEATABLE_CRED_CACHE_DIR="$WORK/cache"
export SEATABLE_CRED_ACCOUNT_SECRET=secret/seatable-admin/account
ENV
echo
echo "==> the sandbox is up: OpenBao at $BAO_URL, SeaTable (stand-in) at $STANDIN_URL"
# scripts/sandbox-test.sh runs the lines below as they are printed.
echo "    In another terminal:"
echo "      source $WORK/env"
echo "      seatable-cred get -o json                 # the demo's profile, from the cache"
echo "      seatable-cred init --profile mine         # Enter takes each proposal; each answer is checked"
echo "      seatable-cred -p mine doctor              # every step, one line each"
echo "      seatable-cred token list                  # the base's API tokens (an account's token is in OpenBao)"
echo "      SEATABLE_CRED_ACCOUNT_SECRET=secret/seatable-admin/team-admin seatable-cred token audit"
echo "    Ctrl-C here stops both servers and removes the sandbox."
echo "==> ready"
# Until Ctrl-C or SIGTERM: the EXIT trap stops the servers and removes $WORK.
trap 'exit 0' INT TERM
while kill -0 "${PIDS[0]}" 2>/dev/null && kill -0 "${PIDS[1]}" 2>/dev/null; do
  sleep 1
done
echo "a server of the sandbox stopped; removing the rest" >&2
exit 1
