#!/usr/bin/env bash
# The packages as users get them (SPEC §14), part of ./scripts/test.sh:
#
#  1. ./scripts/package.sh twice — the second time under another umask, time
#     zone and locale — and every artifact byte-identical, the image digest
#     the same;
#  2. lintian on the .deb: no error, no warning;
#  3. the .deb installed into a throwaway root (dpkg --root), the tarball
#     unpacked: `--version`, every man page through `man -l` (no groff
#     warning, the same options as `--help`), the completions loaded by bash,
#     zsh and fish, `systemd-analyze verify` on the units with the binary where
#     their ExecStart says;
#  4. the OCI image pushed by skopeo to a registry on loopback and pulled
#     back, unpacked by umoci, and run as the image says (uid 65532, its environment and working
#     directory) in its own root — read-only, with /proc, a minimal /dev,
#     /etc/hosts and a memory-backed /run/seatable-cred mounted as a container
#     runtime and the Kubernetes sidecar do: `get` cold then warm, and `serve`
#     answering an unmodified client's exchange and a proxied call, then
#     stopping on SIGTERM — against a test OpenBao and the stand-in, names
#     resolved through /etc/hosts by the static glibc;
#  5. the wheels installed into a fresh venv, the plugin tests run against
#     them and the packaged binary.
#
# It needs root (dpkg --root, mount namespaces, chroot) and installs umoci,
# skopeo, lintian, fish and docker-registry with apt-get when missing; what it cannot do, it
# fails on, naming it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

started=$(date +%s)
step_started=$started
declare -a timings=()
step() {
  local now; now=$(date +%s)
  [ -z "${step_name:-}" ] || timings+=("$(printf '%4d s  %s' $((now - step_started)) "$step_name")")
  step_name="$1"; step_started=$now
  echo "--> $1"
}
fail() { echo "package-test: FAILED: $*" >&2; exit 1; }
# Whatever else stops it says where.
trap 'echo "package-test: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

# --- tools ----------------------------------------------------------------
[ "$(id -u)" = 0 ] || fail "needs root: dpkg --root, mount namespaces and chroot (CI runs as root)"
need=()
for tool in umoci skopeo lintian fish docker-registry; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
if [ "${#need[@]}" -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${need[*]} ..."
  apt-get -qq -o DPkg::Lock::Timeout=300 update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=300 install -y "${need[@]}" >/dev/null
fi
missing=()
for tool in umoci skopeo lintian fish docker-registry zsh bash man dpkg systemd-analyze unshare setpriv curl python3; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ "${#missing[@]}" = 0 ] || fail "needs ${missing[*]} (Debian: apt-get install umoci skopeo lintian fish docker-registry zsh man-db dpkg systemd util-linux curl python3)"

make_work_dir package
cargo build --quiet --workspace --bins   # the stand-in (and the plugin tests' helpers)
VERSION="$(cargo metadata --no-deps --format-version 1 --locked |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "seatable-cred"))')"
DIST="$ROOT/target/dist"
DEB="$DIST/seatable-cred_${VERSION}_amd64.deb"
TAR_BASE="seatable-cred-${VERSION}-x86_64-linux"
OCI="$DIST/seatable-cred-${VERSION}-oci.tar"

# --- 1. reproducible ----------------------------------------------------------
step "package.sh (first run)"
./scripts/package.sh >"$WORK/package-1.log" 2>&1 || { cat "$WORK/package-1.log"; fail "package.sh"; }
cp -a "$DIST" "$WORK/first"
step "package.sh again (umask 077, another time zone and locale): same bytes?"
( umask 077; TZ=Pacific/Chatham LANG=C.UTF-8 ./scripts/package.sh ) >"$WORK/package-2.log" 2>&1 \
  || { cat "$WORK/package-2.log"; fail "package.sh (second run)"; }
sed -n '/MB  /,$p' "$WORK/package-2.log"
(cd "$WORK/first" && ls) >"$WORK/first.list"
(cd "$DIST" && ls) >"$WORK/second.list"
diff -u "$WORK/first.list" "$WORK/second.list" || fail "the two runs wrote different files"
# SHA256SUMS last: a difference is reported by the artifact's name.
for f in $(grep -vx SHA256SUMS "$WORK/first.list") SHA256SUMS; do
  cmp "$WORK/first/$f" "$DIST/$f" || fail "$f differs between two runs of package.sh (not reproducible)"
done
for f in "$(basename "$DEB")" "$TAR_BASE.tar.gz" "$(basename "$OCI")" SHA256SUMS; do
  grep -qx "$f" "$WORK/first.list" || fail "package.sh wrote no $f"
done
[ "$(ls "$DIST"/*.whl | wc -l)" = 2 ] || fail "expected two wheels in $DIST"
(cd "$DIST" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not match the artifacts"
digest1="$(skopeo inspect --format '{{.Digest}}' "oci-archive:$WORK/first/$(basename "$OCI")")"
digest2="$(skopeo inspect --format '{{.Digest}}' "oci-archive:$OCI")"
[ "$digest1" = "$digest2" ] || fail "image digest changed between runs: $digest1 vs $digest2"
echo "    byte-identical: $(tr '\n' ' ' <"$WORK/first.list")"
echo "    image digest: $digest2"

# --- 2. lintian -------------------------------------------------------------------
step "lintian"
# As nobody: lintian warns about root, and needs nothing of root's (it may
# pass through the scratch directory, not list it).
chmod 711 "$WORK"
mkdir -p "$WORK/lintian" && cp "$DEB" "$WORK/lintian/" && chown -R 65534:65534 "$WORK/lintian"
lintian_out="$(cd "$WORK/lintian" && setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$WORK/lintian" TMPDIR="$WORK/lintian" \
  lintian --fail-on error,warning --display-info "$WORK/lintian/$(basename "$DEB")" 2>&1)" \
  || { echo "$lintian_out"; fail "lintian found errors or warnings"; }
echo "${lintian_out:-(nothing)}" | sed 's/^/    /'
if echo "$lintian_out" | grep -q '^[EW]:'; then fail "lintian: errors or warnings (above)"; fi

# --- 3. the installed trees -----------------------------------------------------------
export MANWIDTH=4000   # one line per paragraph: options are never split at a hyphen

# The words of the command a page documents: its SYNOPSIS up to the first option.
page_command() {
  awk '/^SYNOPSIS/ {getline; for (i = 1; i <= NF; i++) { if ($i ~ /^[[<]/) exit; printf "%s ", $i } exit}' "$1"
}
long_options() { grep -o -- '--[a-z0-9][a-z0-9-]*' "$1" | sort -u; }

# check_tree DIR PREFIX WHAT: DIR holds bin/, share/, lib/ as PREFIX will;
# WHAT names it in messages.
check_tree() {
  local dir="$1" prefix="$2" what="$3"
  local bin="$dir/bin/seatable-cred"
  [ -x "$bin" ] || fail "$what: no bin/seatable-cred"
  [ "$("$bin" --version)" = "seatable-cred $VERSION" ] || fail "$what: --version says '$("$bin" --version)'"

  local pages=("$dir"/share/man/man1/*.1.gz) page n=0
  [ "${#pages[@]}" -ge 16 ] || fail "$what: ${#pages[@]} man pages, expected one per command and subcommand (16)"
  for page in "${pages[@]}"; do
    local name; name="$(basename "$page" .1.gz)"
    man --warnings -E ascii -l "$page" >"$WORK/page.txt" 2>"$WORK/page.err" || fail "$what: man -l $name failed"
    [ ! -s "$WORK/page.err" ] || { cat "$WORK/page.err"; fail "$what: man -l $name: groff warnings"; }
    grep -q "^NAME" "$WORK/page.txt" || fail "$what: $name renders without NAME"
    local words; words="$(page_command "$WORK/page.txt")"
    [ "$(echo "$words" | tr ' ' '-' | sed 's/-$//')" = "$name" ] || fail "$what: $name documents '$words'"
    # shellcheck disable=SC2086
    "$bin" ${words#seatable-cred } --help >"$WORK/help.txt" 2>&1 || fail "$what: $words --help"
    if ! diff <(long_options "$WORK/help.txt") <(long_options "$WORK/page.txt") >"$WORK/drift.txt"; then
      cat "$WORK/drift.txt"; fail "$what: $name and '$words --help' list different options (< help, > page)"
    fi
    n=$((n + 1))
  done
  echo "    $what: --version; $n man pages render without warnings and match --help"

  local bash_file="$dir/share/bash-completion/completions/seatable-cred"
  local got
  got="$(bash -c 'source "$1"; fn="$(complete -p seatable-cred | sed -n "s/.* -F \([^ ]*\) .*/\1/p")"
    COMP_WORDS=(seatable-cred se); COMP_CWORD=1; COMP_LINE="seatable-cred se"; COMP_POINT=${#COMP_LINE}
    "$fn" seatable-cred se seatable-cred; printf "%s\n" "${COMPREPLY[@]}"' bash "$bash_file")" \
    || fail "$what: the bash completion does not load"
  echo "$got" | grep -qx serve || fail "$what: bash completes 'seatable-cred se' to '$got', not serve"
  local zsh_file; zsh_file="$(ls "$dir"/share/zsh/*/_seatable-cred)"
  zsh -n "$zsh_file" || fail "$what: $zsh_file does not parse in zsh"
  head -1 "$zsh_file" | grep -q '^#compdef seatable-cred' || fail "$what: $zsh_file is no #compdef file"
  got="$(fish -c "source '$dir/share/fish/vendor_completions.d/seatable-cred.fish'; complete -C 'seatable-cred se'")" \
    || fail "$what: the fish completion does not load"
  echo "$got" | grep -q '^serve' || fail "$what: fish completes 'seatable-cred se' to '$got', not serve"
  echo "    $what: completions for bash, zsh (parsed) and fish complete 'se' to serve"

  local units=("$dir"/lib/systemd/user/*)
  [ -f "${units[0]}" ] || fail "$what: no systemd units"
  grep -qx "ExecStart=$prefix/bin/seatable-cred serve.*" "$dir/lib/systemd/user/seatable-cred.service" \
    || fail "$what: seatable-cred.service does not start $prefix/bin/seatable-cred"
  ! grep -n '\.cargo' "${units[@]}" || fail "$what: a unit names ~/.cargo"
  [ -d "$prefix/bin" ] || fail "$what: $prefix/bin missing on this host: cannot place the binary where the units expect it"
  # The binary where ExecStart looks for it, in a private mount namespace
  # only (an overlay on $prefix/bin; the host's stays as it is).
  local vhome="$WORK/verify-home"
  mkdir -p "$vhome/run" && chmod 700 "$vhome/run"
  HOME="$vhome" XDG_RUNTIME_DIR="$vhome/run" unshare --mount --propagation private -- sh -c '
    mount -t overlay overlay -o "lowerdir=$1:$2" "$2" || exit 99
    shift 2; exec systemd-analyze verify --user "$@"' sh "$dir/bin" "$prefix/bin" "${units[@]}" \
    || fail "$what: systemd-analyze verify on ${units[*]##*/}"
  echo "    $what: systemd-analyze verify: ${units[*]##*/}"
  for f in copyright README.md.gz SECURITY.md.gz changelog.gz; do
    [ -s "$dir/share/doc/seatable-cred/$f" ] || fail "$what: no share/doc/seatable-cred/$f"
  done
}

step "the .deb installed with dpkg --root"
droot="$WORK/deb-root"
mkdir -p "$droot/var/lib/dpkg/info" "$droot/var/lib/dpkg/updates"
touch "$droot/var/lib/dpkg/status"
dpkg --root="$droot" --install "$DEB" >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "dpkg --install"; }
dpkg --root="$droot" --status seatable-cred | grep -qx 'Status: install ok installed' || fail "dpkg does not call it installed"
check_tree "$droot/usr" /usr ".deb"
cmp "$droot/usr/bin/seatable-cred" "$BUILD_DIR/release/seatable-cred" || fail "the .deb's binary is not the release build"
dpkg --root="$droot" --purge seatable-cred >>"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "dpkg --purge"; }
left="$(find "$droot/usr" -type f 2>/dev/null || true)"
[ -z "$left" ] || fail "dpkg --purge left files behind: $left"
echo "    .deb: installs, and purges without a trace"

step "the tarball unpacked"
mkdir -p "$WORK/tar"
tar -xzf "$DIST/$TAR_BASE.tar.gz" -C "$WORK/tar"
[ "$(ls "$WORK/tar")" = "$TAR_BASE" ] || fail "the tarball's top directory is not $TAR_BASE"
tree="$WORK/tar/$TAR_BASE"
check_tree "$tree" /usr/local "tarball"
cmp "$tree/bin/seatable-cred" "$BUILD_DIR/release/seatable-cred" || fail "the tarball's binary is not the release build"
for f in LICENSE-MIT LICENSE-APACHE LICENSE-LGPL-2.1; do
  [ -s "$tree/share/doc/seatable-cred/$f" ] || fail "tarball: no share/doc/seatable-cred/$f"
done

# --- 4. the image -------------------------------------------------------------------------
step "the OCI image: configuration, skopeo push and pull, umoci unpack"
skopeo inspect --config "oci-archive:$OCI" >"$WORK/image-config.json"
python3 - "$WORK/image-config.json" "$VERSION" "$(git rev-parse HEAD)" <<'PY' || fail "the image's configuration (above)"
import json, sys
c = json.load(open(sys.argv[1])); cfg = c["config"]; version, revision = sys.argv[2:]
labels = cfg.get("Labels", {})
checks = {
    "user 65532": cfg.get("User") == "65532:65532",
    "entrypoint": cfg.get("Entrypoint") == ["/usr/bin/seatable-cred"],
    "linux/amd64": (c["os"], c["architecture"]) == ("linux", "amd64"),
    "version label": labels.get("org.opencontainers.image.version") == version,
    "revision label": labels.get("org.opencontainers.image.revision") == revision,
    "one layer": len(c["rootfs"]["diff_ids"]) == 1,
}
bad = [k for k, ok in checks.items() if not ok]
if bad:
    print(json.dumps(c, indent=1)); print("wrong:", bad); sys.exit(1)
PY
# The Kubernetes example runs this image, at this version.
sidecar_image="$(sed -n 's|^ *image: \([^ ]*/seatable-cred:[^ ]*\).*|\1|p' contrib/kubernetes/sidecar.yaml)"
[ -n "$sidecar_image" ] && [ "${sidecar_image##*:}" = "$VERSION" ] \
  || fail "contrib/kubernetes/sidecar.yaml runs '$sidecar_image', not seatable-cred:$VERSION as package.sh builds it"
grep -q "seatable-cred-$VERSION-oci.tar" contrib/kubernetes/sidecar.yaml \
  || fail "contrib/kubernetes/sidecar.yaml does not say to push seatable-cred-$VERSION-oci.tar"
# Pushed as README says (skopeo copy oci-archive:… docker://REGISTRY/…) to a
# registry of the test's own on loopback, and pulled back from there.
port="$(free_port)"
mkdir -p "$WORK/registry"
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $WORK/registry}}
http: {addr: "127.0.0.1:$port"}
EOF
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
PIDS+=("$!")
up=""
for _ in $(seq 1 200); do
  if curl -fsS -m 2 "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; then up=1; break; fi
  kill -0 "${PIDS[-1]}" 2>/dev/null || break
  sleep 0.05
done
[ -n "$up" ] || { cat "$WORK/registry.log"; fail "the test registry did not start"; }
ref="127.0.0.1:$port/seatable-cred:$VERSION"
skopeo copy --quiet --dest-tls-verify=false "oci-archive:$OCI" "docker://$ref"
pushed="$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$ref")"
[ "$pushed" = "$digest2" ] || fail "the registry holds $pushed, not the built image $digest2"
skopeo copy --quiet --src-tls-verify=false "docker://$ref" "oci:$WORK/layout:$VERSION"
echo "    pushed to a registry with skopeo and pulled back: $pushed"
umoci unpack --image "$WORK/layout:$VERSION" "$WORK/bundle" >/dev/null
rootfs="$WORK/bundle/rootfs"
# Nothing but what the image is for: no shell, no package manager, no libraries.
(cd "$rootfs" && find . -mindepth 1 | sort) >"$WORK/rootfs.list"
cat >"$WORK/rootfs.expected" <<'EOF'
./etc
./etc/group
./etc/nsswitch.conf
./etc/passwd
./etc/ssl
./etc/ssl/certs
./etc/ssl/certs/ca-certificates.crt
./home
./home/nonroot
./tmp
./usr
./usr/bin
./usr/bin/seatable-cred
./usr/share
./usr/share/doc
./usr/share/doc/seatable-cred
./usr/share/doc/seatable-cred/LICENSE-APACHE
./usr/share/doc/seatable-cred/LICENSE-LGPL-2.1
./usr/share/doc/seatable-cred/LICENSE-MIT
./usr/share/doc/seatable-cred/copyright
EOF
diff -u "$WORK/rootfs.expected" "$WORK/rootfs.list" || fail "the image holds other files than expected (above)"
grep -qx 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' "$rootfs/etc/passwd" || fail "no passwd line for uid 65532"
[ "$(stat -c '%u %a' "$rootfs/home/nonroot")" = "65532 700" ] || fail "/home/nonroot is not 65532's"
# The CA roots are exactly Debian's Mozilla set — none the build machine added.
dpkg -L ca-certificates | grep '^/usr/share/ca-certificates/mozilla/.*\.crt$' >"$WORK/mozilla.list"
python3 - "$rootfs/etc/ssl/certs/ca-certificates.crt" "$WORK/mozilla.list" <<'PY' || fail "the image's CA roots are not Debian's Mozilla set (above)"
import re, sys
def certs(text):
    return {"".join(b.split()) for b in re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S)}
image = certs(open(sys.argv[1]).read())
mozilla = set()
for path in open(sys.argv[2]).read().split():
    mozilla |= certs(open(path).read())
if image != mozilla or not image:
    print(f"image: {len(image)} roots, Debian's Mozilla set: {len(mozilla)}; "
          f"{len(image - mozilla)} not Debian's, {len(mozilla - image)} missing")
    sys.exit(1)
PY

step "the image's root filesystem: get and serve as uid 65532"
# The process as the image configures it (umoci's runtime config.json).
read -r img_uid img_gid img_cwd < <(python3 -c 'import json,sys
p = json.load(open(sys.argv[1]))["process"]; print(p["user"]["uid"], p["user"]["gid"], p["cwd"])' "$WORK/bundle/config.json")
mapfile -t img_env < <(python3 -c 'import json,sys
print("\n".join(e for e in json.load(open(sys.argv[1]))["process"]["env"] if not e.startswith("TERM=")))' "$WORK/bundle/config.json")
[ "$img_uid:$img_gid" = "65532:65532" ] || fail "the image runs as $img_uid:$img_gid"

start_bao image-root-token
start_standin
bao_port="${BAO_URL##*:}"; standin_port="${STANDIN_URL##*:}"
BAO_ADDR="$BAO_URL" BAO_TOKEN=image-root-token "$(find_bao)" kv put -mount=secret seatable/image api_token=- \
  <<<"$STANDIN_API_TOKEN" >/dev/null
# What the runtime and the sidecar mount: /etc/hosts, the config (read-only),
# a memory-backed directory for the cache and the env file.
for d in proc dev run/seatable-cred etc/seatable-cred; do mkdir -p "$rootfs/$d"; done
touch "$rootfs/etc/hosts"
printf '127.0.0.1 localhost\n127.0.0.1 vault.test seatable.test\n' >"$WORK/hosts"
mkdir -p "$WORK/config" "$WORK/run"
cat >"$WORK/config/config.toml" <<EOF
[profiles.default]
server_url = "http://seatable.test:$standin_port"
vault_addr = "http://vault.test:$bao_port"
secret = "secret/seatable/image"
cache = "file"
cache_dir = "/run/seatable-cred"
# Names, not loopback addresses: resolved through /etc/hosts.
allow_http = true
EOF
chown 65532:65532 "$WORK/run" && chmod 700 "$WORK/run"

# in_image ARGS…: seatable-cred ARGS in the image's root, as a runtime runs it.
# With IMAGE_PIDFILE set, the pid that becomes seatable-cred is written there;
# IMAGE_UID and IMAGE_GID run it as another user than the image's.
in_image() {
  env -i "${img_env[@]}" ${IMAGE_PIDFILE:+IMAGE_PIDFILE="$IMAGE_PIDFILE"} ${SEATABLE_CA_CERT:+SEATABLE_CA_CERT="$SEATABLE_CA_CERT"} SEATABLE_CRED_CONFIG=/etc/seatable-cred/config.toml VAULT_TOKEN=image-root-token \
    unshare --mount --propagation private -- sh -c '
    r="$1" hosts="$2" config="$3" run="$4" uid="$5" gid="$6" cwd="$7"; shift 7
    set -e
    [ -z "${IMAGE_PIDFILE:-}" ] || echo $$ >"$IMAGE_PIDFILE"
    mount --bind "$r" "$r" && mount -o remount,bind,ro "$r"          # readOnlyRootFilesystem
    mount -t proc proc "$r/proc"
    mount -t tmpfs -o mode=755,nosuid tmpfs "$r/dev"
    for d in null zero full random urandom; do touch "$r/dev/$d"; mount --bind "/dev/$d" "$r/dev/$d"; done
    mount --bind "$hosts" "$r/etc/hosts"
    mount --bind -o ro "$config" "$r/etc/seatable-cred"
    mount --bind "$run" "$r/run/seatable-cred"
    exec unshare --root="$r" --wd="$cwd" --setuid="$uid" --setgid="$gid" -- /usr/bin/seatable-cred "$@"' \
    sh "$rootfs" "$WORK/hosts" "$WORK/config" "$WORK/run" "${IMAGE_UID:-$img_uid}" "${IMAGE_GID:-$img_gid}" "$img_cwd" "$@"
}

[ "$(in_image --version)" = "seatable-cred $VERSION" ] || fail "--version in the image"
cold="$(in_image get -o token 2>>"$WORK/get.log")" || { cat "$WORK/get.log"; fail "get (cold) in the image"; }
[ "$(standin_stat exchanges)" = 1 ] || fail "the cold get made $(standin_stat exchanges) exchanges, not 1"
warm="$(in_image get -o token 2>>"$WORK/get.log")" || { cat "$WORK/get.log"; fail "get (warm) in the image"; }
[ "$cold" = "$warm" ] && [ -n "$cold" ] || fail "the warm get printed another token"
[ "$(standin_stat exchanges)" = 1 ] || fail "the warm get exchanged again"
[ "$(stat -c %u "$WORK/run")" = 65532 ] && [ -n "$(find "$WORK/run" -user 65532 -type f)" ] \
  || fail "the cache is not in the memory-backed /run/seatable-cred, owned by 65532"
echo "    get: cold (Vault read + exchange over names from /etc/hosts), then warm from the file cache"

port="$(free_port)"
IMAGE_PIDFILE="$WORK/serve.pid" in_image serve --listen "127.0.0.1:$port" >"$WORK/serve.log" 2>&1 &
serve_job=$!
for _ in $(seq 1 100); do [ -s "$WORK/serve.pid" ] && break; sleep 0.05; done
[ -s "$WORK/serve.pid" ] || fail "serve in the image did not start"
serve_pid="$(cat "$WORK/serve.pid")"
PIDS+=("$serve_pid" "$serve_job")
# Clients as the agent's own uid, as in the sidecar's pod.
as_nonroot() { setpriv --reuid=65532 --regid=65532 --clear-groups "$@"; }
healthy=""
for _ in $(seq 1 300); do
  if as_nonroot curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; then healthy=1; break; fi
  kill -0 "$serve_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$healthy" ] || { cat "$WORK/serve.log"; fail "serve in the image did not become healthy"; }
read -r s_uid s_gid s_groups < <(ps -o uid=,gid=,supgid= -p "$serve_pid") || fail "serve's process is gone"
[ "$s_uid $s_gid" = "65532 65532" ] && [ "${s_groups:--}" = "-" ] || fail "serve runs as $s_uid:$s_gid (groups $s_groups)"
env_file="$WORK/run/serve/default.env"
[ -f "$env_file" ] || fail "serve wrote no env file to /run/seatable-cred/serve/default.env"
key="$(sed -n 's/^SEATABLE_API_TOKEN=//p' "$env_file")"
answer="$(as_nonroot curl -fsS -H "Authorization: Token $key" "http://127.0.0.1:$port/api/v2.1/dtable/app-access-token/")" \
  || fail "the local exchange"
read -r access server uuid < <(python3 -c 'import json,sys
a = json.loads(sys.argv[1]); print(a["access_token"], a["dtable_server"], a["dtable_uuid"])' "$answer")
case "$server" in "http://127.0.0.1:$port/"*) ;; *) fail "the exchange points clients at $server, not the agent" ;; esac
as_nonroot curl -fsS -H "Authorization: Token $access" "${server%/}/api/v2/dtables/$uuid/metadata/" \
  | grep -q '"tables"' || fail "a proxied call through the agent in the image"
kill -TERM "$serve_pid"
status=0; wait "$serve_job" || status=$?
[ "$status" = 0 ] || { cat "$WORK/serve.log"; fail "serve exited $status on SIGTERM"; }
echo "    serve: healthy, a local exchange and a proxied call answered (client uid 65532), exit 0 on SIGTERM"
# Kubernetes' runAsUser may pick a uid the image's /etc/passwd does not list.
other="$(IMAGE_UID=10001 IMAGE_GID=10001 in_image get -o token --cache none 2>"$WORK/other.log")" \
  || { cat "$WORK/other.log"; fail "get as uid 10001, which the image does not know"; }
[ -n "$other" ] || fail "get as uid 10001 printed nothing"
echo "    get as uid 10001 (not in the image's /etc/passwd) works too"

# TLS in the image: a stand-in with a private CA, trusted through ca_cert;
# without it, the verdict is the image's CA roots' (loaded, and none of
# them signed this certificate) — not "no CA certificates".
mv "$WORK/standin.json" "$WORK/standin-http.json"
start_standin --tls
BAO_ADDR="$BAO_URL" BAO_TOKEN=image-root-token "$(find_bao)" kv put -mount=secret seatable/image-tls api_token=- \
  <<<"$STANDIN_API_TOKEN" >/dev/null
cp "$STANDIN_CA" "$WORK/config/standin-ca.pem"
cat >>"$WORK/config/config.toml" <<EOF

[profiles.tls]
server_url = "https://localhost:${STANDIN_URL##*:}"
vault_addr = "http://vault.test:$bao_port"
secret = "secret/seatable/image-tls"
cache = "none"
allow_http = true
EOF
tls="$(SEATABLE_CA_CERT=/etc/seatable-cred/standin-ca.pem in_image -p tls get -o token 2>"$WORK/tls.log")" \
  || { cat "$WORK/tls.log"; fail "get over TLS (private CA) in the image"; }
[ -n "$tls" ] || fail "get over TLS printed nothing"
if in_image -p tls get -o token --timeout 5s >/dev/null 2>"$WORK/roots.log"; then
  fail "a certificate of a private CA was accepted without it"
fi
grep -q 'UnknownIssuer' "$WORK/roots.log" || { cat "$WORK/roots.log"; fail "the image's CA roots were not loaded"; }
echo "    TLS: a private CA through ca_cert; without it UnknownIssuer against the image's CA roots"

# --- 5. wheels ----------------------------------------------------------------------------
step "the wheels in a fresh venv, with the plugin tests"
venv="$WORK/venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "$DIST"/*.whl pytest==8.3.5 seatable-api==4.0.0 httpie==3.2.4
# The tests, without the plugins' sources beside them: what they import is
# what the wheels installed.
mkdir -p "$WORK/wheel-tests/python" "$WORK/wheel-tests/httpie"
cp plugins/conftest.py "$WORK/wheel-tests/"
cp -r plugins/python/tests "$WORK/wheel-tests/python/"
cp -r plugins/httpie/tests "$WORK/wheel-tests/httpie/"
(cd "$WORK/wheel-tests" && "$venv/bin/python" -c '
import sys, seatable_cred, httpie_seatable_cred
for m in (seatable_cred, httpie_seatable_cred):
    assert m.__file__.startswith(sys.prefix), m.__file__') || fail "the plugins are not imported from the wheels"
(cd "$WORK/wheel-tests" && PATH="$venv/bin:$PATH" SEATABLE_CRED_BIN="$tree/bin/seatable-cred" \
  SEATABLE_STANDIN_BIN="$BUILD_DIR/debug/seatable-standin" BAO_BIN="$(find_bao)" \
  "$venv/bin/pytest" -q -p no:cacheprovider .) || fail "the plugin tests against the wheels"

step "done"
echo "package step: $(( $(date +%s) - started )) s"
printf '  %s\n' "${timings[@]}"
