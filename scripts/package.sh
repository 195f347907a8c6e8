#!/usr/bin/env bash
# Builds every artifact of a release into target/dist/ (SPEC §14):
#
#   seatable-cred_<version>_amd64.deb            Debian package (dpkg-deb)
#   seatable-cred-<version>-x86_64-linux.tar.gz  the same files as a tree for /usr/local
#   seatable-cred-<version>-oci.tar              OCI image archive (umoci; no container daemon)
#   seatable_cred-<version>-py3-none-any.whl,
#   httpie_seatable_cred-<version>-py3-none-any.whl   the Python plugins
#   SHA256SUMS
#
# Reproducibly: every timestamp is SOURCE_DATE_EPOCH (the commit's time
# unless set), every owner root (the image's home: uid 65532), every mode
# explicit, every archive sorted; two runs give the same bytes
# (scripts/package-test.sh proves it). The binary is the release build
# (LTO, static glibc) from Cargo.lock (--locked).
#
# Needs dpkg-deb, umoci, GNU tar, gzip, python3 and Debian's ca-certificates;
# run as root with apt-get at hand, it installs umoci when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
umask 022
export LC_ALL=C TZ=UTC

started=$(date +%s)
say() { echo "==> $* (+$(($(date +%s) - started)) s)"; }
die() { echo "package.sh: $*" >&2; exit 1; }

# --- tools ----------------------------------------------------------------
if ! command -v umoci >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing umoci (builds the OCI image without a container daemon) ..."
  apt-get -qq -o DPkg::Lock::Timeout=300 update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=300 install -y umoci >/dev/null
fi
missing=()
for tool in cargo dpkg-deb dpkg-query umoci tar gzip python3 readelf sha256sum git; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ "${#missing[@]}" = 0 ] || die "needs ${missing[*]} (Debian: apt-get install dpkg-dev umoci tar gzip python3 binutils git)"
tar --version | head -1 | grep -q 'GNU tar' || die "needs GNU tar (--sort, --mtime)"
dpkg-query -W ca-certificates >/dev/null 2>&1 || die "needs Debian's ca-certificates package (the image's CA roots come from it)"

# --- what is built --------------------------------------------------------
VERSION="$(cargo metadata --no-deps --format-version 1 --locked |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "seatable-cred"))')"
REVISION="$(git rev-parse HEAD)"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}"
CREATED="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "warning: the work tree has uncommitted changes; the artifacts are labelled $REVISION all the same" >&2
fi
ARCH=amd64
[ "$(uname -m)" = x86_64 ] || die "builds the x86_64 artifacts on x86_64 only (this is $(uname -m))"
BUILD_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/$(rustc -vV | sed -n 's/^host: //p')"
DIST="$ROOT/target/dist"
STAGE="$ROOT/target/package"
DEB_NAME="seatable-cred_${VERSION}_${ARCH}.deb"
TAR_BASE="seatable-cred-${VERSION}-x86_64-linux"
OCI_NAME="seatable-cred-${VERSION}-oci.tar"
MAINTAINER="${DEB_MAINTAINER:-seatable-cred maintainers <maintainers@seatable-cred.invalid>}"
echo "seatable-cred $VERSION, commit $REVISION, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH ($CREATED)"

# --- build ----------------------------------------------------------------
say "cargo build --release (LTO, one codegen unit: the longest step when sources changed)"
# SOURCE_DATE_EPOCH is kept from cargo: ring's build script (through cc) tracks it,
# and a change would rebuild the release and debug trees that the tests and
# benchmarks share. Nothing compiled reads it.
cargo_() { env -u SOURCE_DATE_EPOCH cargo "$@"; }
# -p seatable-cred alone, as `cargo build --release` and `cargo install`
# resolve its features: with the workspace's (the stand-in turns on
# tokio-rustls' ring feature) the binary's bytes differ, though not its code.
cargo_ build --quiet --locked --release -p seatable-cred --bin seatable-cred
BIN="$BUILD_DIR/release/seatable-cred"
if readelf -lW "$BIN" | grep -q 'program interpreter'; then
  die "$BIN is linked dynamically; the image and the tarball need the static build (.cargo/config.toml)"
fi
say "man pages (seatable-cred-mangen, from the clap definitions)"
# --workspace: the features of every member, as `cargo build --workspace` in
# test.sh resolves them, so that the debug tree it built is reused as it is.
cargo_ build --quiet --locked --workspace --bin seatable-cred-mangen
rm -rf "$STAGE" && mkdir -p "$STAGE" "$DIST"
rm -f "$DIST"/seatable-cred[-_]* "$DIST"/*.whl "$DIST"/SHA256SUMS
"$BUILD_DIR/debug/seatable-cred-mangen" --date "$(date -u -d "@$SOURCE_DATE_EPOCH" +%F)" "$STAGE/man" >/dev/null
pages=("$STAGE"/man/*.1)
[ "${#pages[@]}" -gt 1 ] || die "seatable-cred-mangen wrote no pages"

# --- the documentation every artifact carries ------------------------------
say "documentation and licences"
doc="$STAGE/doc"
mkdir -p "$doc"
gzip -9n <README.md >"$doc/README.md.gz"
gzip -9n <SECURITY.md >"$doc/SECURITY.md.gz"
# A Debian changelog entry for this version (lintian reads it; dpkg too).
{
  echo "seatable-cred ($VERSION) unstable; urgency=medium"
  echo
  echo "  * Release $VERSION (commit $REVISION)."
  echo
  echo " -- $MAINTAINER  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$doc/changelog.gz"
glibc="$(dpkg-query -W -f='${source:Package} (= ${source:Version})' libc6-dev 2>/dev/null || true)"
[ -n "$glibc" ] || die "needs libc6-dev (the static build links its glibc; the package names its version)"
# Machine-readable copyright (DEP-5): ours, and what the static binary carries.
{
  cat <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: seatable-cred
Comment: The binary is linked statically. It contains the GNU C Library
 ($glibc in Debian; its source is Debian's glibc source package of that
 version, under the GNU Lesser General Public License 2.1 or later) and these
 Rust crates, each under its own licence as published with its source on
 crates.io (name version licence):
EOF
  cargo tree --quiet --locked -e normal,no-proc-macro -p seatable-cred --target x86_64-unknown-linux-gnu \
    --prefix none -f '{p} {l}' | sed 's/ (\*)$//' | grep -v '^seatable-cred ' | sort -u | sed 's/^/ /'
  cat <<'EOF'

Files: *
Copyright: The seatable-cred authors
License: MIT or Apache-2.0

License: MIT
EOF
  sed -n '3,$p' LICENSE-MIT | sed 's/^$/./; s/^/ /'
  cat <<'EOF'

License: Apache-2.0
 On Debian systems, the full text of the Apache License, Version 2.0 is in
 /usr/share/common-licenses/Apache-2.0; the tarball and the image carry it as
 /usr/share/doc/seatable-cred/LICENSE-APACHE.

License: LGPL-2.1+
 On Debian systems, the full text of the GNU Lesser General Public License
 2.1 is in /usr/share/common-licenses/LGPL-2.1; the tarball and the image
 carry it as /usr/share/doc/seatable-cred/LICENSE-LGPL-2.1 (glibc's licence).
EOF
} >"$doc/copyright"

# populate DIR PREFIX ZSH_DIR: the installed tree of bin/, share/ and lib/
# under DIR, for a binary that will live in PREFIX/bin.
populate() {
  local dir="$1" prefix="$2" zsh_dir="$3"
  install -d -m 0755 "$dir/bin" "$dir/share/man/man1" "$dir/share/bash-completion/completions" \
    "$dir/$zsh_dir" "$dir/share/fish/vendor_completions.d" "$dir/lib/systemd/user" \
    "$dir/share/doc/seatable-cred"
  install -m 0755 "$BIN" "$dir/bin/seatable-cred"
  local page
  for page in "${pages[@]}"; do
    gzip -9n <"$page" >"$dir/share/man/man1/$(basename "$page").gz"
  done
  "$BIN" completions bash >"$dir/share/bash-completion/completions/seatable-cred"
  "$BIN" completions zsh >"$dir/$zsh_dir/_seatable-cred"
  "$BIN" completions fish >"$dir/share/fish/vendor_completions.d/seatable-cred.fish"
  # Every unit in contrib/systemd/, the binary's path made the installed one
  # (contrib names ~/.cargo/bin, where `cargo install` puts it).
  local unit n=0
  shopt -s nullglob
  for unit in contrib/systemd/*.service contrib/systemd/*.socket contrib/systemd/*.timer \
              contrib/systemd/*.path contrib/systemd/*.target; do
    sed "s|%h/\.cargo/bin/seatable-cred|$prefix/bin/seatable-cred|g" "$unit" >"$dir/lib/systemd/user/$(basename "$unit")"
    n=$((n + 1))
  done
  shopt -u nullglob
  [ "$n" -gt 0 ] || die "no systemd units in contrib/systemd/"
  if grep -n '%h/\.cargo\|\.cargo/bin' "$dir"/lib/systemd/user/*; then
    die "a packaged unit still names ~/.cargo/bin (above)"
  fi
  if grep -n '^Exec[A-Za-z]*=.*seatable-cred' "$dir"/lib/systemd/user/* | grep -v "=[-@:+!]*$prefix/bin/seatable-cred\b"; then
    die "a packaged unit runs seatable-cred from elsewhere than $prefix/bin (above)"
  fi
  install -m 0644 "$doc"/* "$dir/share/doc/seatable-cred/"
  chmod 0644 "$dir"/share/man/man1/* "$dir"/share/bash-completion/completions/* "$dir/$zsh_dir"/* \
    "$dir"/share/fish/vendor_completions.d/* "$dir"/lib/systemd/user/*
}

# Licence texts for hosts without Debian's /usr/share/common-licenses.
licence_texts() {
  install -m 0644 LICENSE-MIT LICENSE-APACHE "$1/"
  install -m 0644 /usr/share/common-licenses/LGPL-2.1 "$1/LICENSE-LGPL-2.1"
}

# Every file and directory stamped with SOURCE_DATE_EPOCH.
stamp() { find "$@" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +; }

# --- .deb -----------------------------------------------------------------
say "$DEB_NAME"
deb="$STAGE/deb"
populate "$deb/usr" /usr share/zsh/vendor-completions
install -d -m 0755 "$deb/DEBIAN" "$deb/usr/share/lintian/overrides"
# Tags lintian raises on purpose-made choices, each with the reason.
cat >"$deb/usr/share/lintian/overrides/seatable-cred" <<'EOF'
# The binary is a static PIE, linked statically against glibc on purpose
# (.cargo/config.toml: a cache hit then pays no dynamic loading and starts as
# fast as `cat`, BENCHMARKS.md). A static PIE is an ET_DYN file with no
# interpreter and no DT_NEEDED, which lintian takes for a shared library
# missing its libc. Built-Using names the glibc it carries.
seatable-cred: shared-library-lacks-prerequisites [usr/bin/seatable-cred]
EOF
chmod 0644 "$deb/usr/share/lintian/overrides/seatable-cred"
( cd "$deb" && find usr -type f | sort | xargs md5sum ) >"$deb/DEBIAN/md5sums"
installed_kib="$(python3 - "$deb/usr" <<'PY'
import os, sys
# dpkg's way: each file's size in KiB rounded up, one KiB per directory.
total = 0
for d, dirs, files in os.walk(sys.argv[1]):
    total += 1
    total += sum(-(-os.lstat(os.path.join(d, f)).st_size // 1024) for f in files)
print(total)
PY
)"
cat >"$deb/DEBIAN/control" <<EOF
Package: seatable-cred
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $installed_kib
Built-Using: $glibc
Section: utils
Priority: optional
Description: SeaTable base tokens from an API token kept in Vault/OpenBao
 seatable-cred reads a SeaTable base's long-lived API token from HashiCorp
 Vault or OpenBao, trades it for a short-lived base token, caches that in
 memory-backed storage (kernel keyring or tmpfs) and prints it in the
 protocol the calling tool speaks: kubectl's exec credential, git's
 credential helper, environment variables, an HTTP header.
 .
 "seatable-cred serve" is a local agent (a systemd user unit is included)
 that keeps base tokens fresh and lets unmodified SeaTable clients work with
 a local key only.
EOF
chmod 0644 "$deb/DEBIAN/control" "$deb/DEBIAN/md5sums"
stamp "$deb"
dpkg-deb --root-owner-group -Zxz --build "$deb" "$DIST/$DEB_NAME" >/dev/null

# --- tarball ----------------------------------------------------------------
say "$TAR_BASE.tar.gz"
tree="$STAGE/tar/$TAR_BASE"
populate "$tree" /usr/local share/zsh/site-functions
licence_texts "$tree/share/doc/seatable-cred"
stamp "$STAGE/tar"
tar --sort=name --format=gnu --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
  -C "$STAGE/tar" -cf - "$TAR_BASE" | gzip -9n >"$DIST/$TAR_BASE.tar.gz"

# --- OCI image ----------------------------------------------------------------
say "$OCI_NAME"
# The root filesystem's one layer, written entry by entry (owners, modes,
# times all explicit). The CA roots are Debian's Mozilla set from the
# ca-certificates package — not /etc/ssl/certs, which may hold this
# machine's own additions.
layer="$STAGE/layer.tar"
ca_version="$(dpkg-query -W -f='${Version}' ca-certificates)"
dpkg -L ca-certificates | grep '^/usr/share/ca-certificates/mozilla/.*\.crt$' | sort >"$STAGE/ca-files"
[ -s "$STAGE/ca-files" ] || die "ca-certificates lists no Mozilla certificates"
while read -r crt; do cat "$crt"; echo; done <"$STAGE/ca-files" | sed '/^$/d' >"$STAGE/ca-certificates.crt"
licence_texts "$doc"
python3 - "$layer" "$BIN" "$STAGE/ca-certificates.crt" "$doc" <<'PY'
import io, os, sys, tarfile
out, binary, cas, doc = sys.argv[1:]
mtime = int(os.environ["SOURCE_DATE_EPOCH"])
NONROOT = 65532
entries = []  # (name, mode, uid, content or None for a directory)
def d(name, mode=0o755, uid=0): entries.append((name, mode, uid, None))
def f(name, data, mode=0o644): entries.append((name, mode, 0, data))
d("etc")
# The non-root user the image runs as (uid/gid 65532, as distroless' nonroot).
f("etc/passwd", b"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
f("etc/group", b"root:x:0:\nnonroot:x:65532:\n")
# A static glibc has only its built-in files and dns services: say so.
f("etc/nsswitch.conf", b"passwd: files\ngroup: files\nhosts: files dns\n")
d("etc/ssl"); d("etc/ssl/certs")
f("etc/ssl/certs/ca-certificates.crt", open(cas, "rb").read())
d("home"); d("home/nonroot", 0o700, NONROOT)
d("tmp", 0o1777)
d("usr"); d("usr/bin")
f("usr/bin/seatable-cred", open(binary, "rb").read(), 0o755)
d("usr/share"); d("usr/share/doc"); d("usr/share/doc/seatable-cred")
for name in ("copyright", "LICENSE-MIT", "LICENSE-APACHE", "LICENSE-LGPL-2.1"):
    f("usr/share/doc/seatable-cred/" + name, open(os.path.join(doc, name), "rb").read())
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
    for name, mode, uid, data in sorted(entries):
        info = tarfile.TarInfo(name)
        info.mode, info.uid, info.gid, info.mtime = mode, uid, uid, mtime
        info.uname = info.gname = ""
        if data is None:
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        else:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
PY
oci="$STAGE/oci"
tag="$VERSION"
umoci init --layout "$oci"
umoci new --image "$oci:$tag"
umoci raw add-layer --image "$oci:$tag" --history.created "$CREATED" \
  --history.created_by "scripts/package.sh" \
  --history.comment "seatable-cred $VERSION; CA roots of Debian's ca-certificates $ca_version; user nonroot (65532)" "$layer"
labels=(
  "org.opencontainers.image.title=seatable-cred"
  "org.opencontainers.image.description=SeaTable base tokens from an API token kept in Vault/OpenBao"
  "org.opencontainers.image.version=$VERSION"
  "org.opencontainers.image.revision=$REVISION"
  "org.opencontainers.image.created=$CREATED"
  "org.opencontainers.image.licenses=MIT OR Apache-2.0"
  "org.opencontainers.image.base.name=scratch"
)
# Where the source is: Cargo.toml's `repository` (or SEATABLE_CRED_SOURCE_URL).
source_url="${SEATABLE_CRED_SOURCE_URL:-$(cargo metadata --no-deps --format-version 1 --locked |
  python3 -c 'import json,sys; print(next(p["repository"] or "" for p in json.load(sys.stdin)["packages"] if p["name"] == "seatable-cred"))')}"
[ -z "$source_url" ] || labels+=("org.opencontainers.image.source=$source_url")
label_args=()
for l in "${labels[@]}"; do label_args+=(--config.label "$l"); done
# No working directory of its own ("/"): a runtime may run the image as
# another uid (Kubernetes' runAsUser), which could not enter /home/nonroot.
umoci config --image "$oci:$tag" --no-history --created "$CREATED" \
  --architecture amd64 --os linux \
  --config.user 65532:65532 \
  --config.env PATH=/usr/bin --config.env HOME=/home/nonroot \
  --config.entrypoint /usr/bin/seatable-cred "${label_args[@]}"
umoci gc --layout "$oci"
stamp "$oci"
tar --sort=name --format=gnu --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
  -C "$oci" -cf "$DIST/$OCI_NAME" oci-layout index.json blobs

# --- Python wheels --------------------------------------------------------------
say "Python wheels"
# Built from copies (setuptools writes build/ and *.egg-info into the source)
# with a pinned setuptools, without build isolation: the same backend every
# time, so the same bytes.
wheel_venv="$ROOT/target/tmp/wheel-build-venv"
if [ ! -x "$wheel_venv/bin/pip" ] || ! "$wheel_venv/bin/python" -c 'import setuptools, sys; sys.exit(setuptools.__version__ != "80.9.0")' 2>/dev/null; then
  rm -rf "$wheel_venv"
  python3 -m venv "$wheel_venv"
  "$wheel_venv/bin/pip" install --quiet setuptools==80.9.0
fi
for plugin in python httpie; do
  src="$STAGE/wheel-src/$plugin"
  mkdir -p "$src"
  cp -r "plugins/$plugin/." "$src/"
  rm -rf "$src/build" "$src"/*.egg-info "$src/tests"
  find "$src" -name __pycache__ -prune -exec rm -rf {} +
  find "$src" -type d -exec chmod 0755 {} + && find "$src" -type f -exec chmod 0644 {} +
  "$wheel_venv/bin/pip" wheel --quiet --no-deps --no-build-isolation --wheel-dir "$DIST" "$src" >/dev/null
done

# --- checksums and sizes ------------------------------------------------------------
say "SHA256SUMS"
( cd "$DIST" && sha256sum "$DEB_NAME" "$TAR_BASE.tar.gz" "$OCI_NAME" *.whl >SHA256SUMS )
manifest="$(python3 - "$oci" <<'PY'
import json, sys
index = json.load(open(sys.argv[1] + "/index.json"))
print(index["manifests"][0]["digest"])
PY
)"
python3 - "$oci" "$DIST" "$manifest" "$STAGE/sizes.json" <<'PY'
import json, os, sys
oci, dist, manifest, out = sys.argv[1:]
def blob(d): return os.path.join(oci, "blobs", *d.split(":"))
m = json.load(open(blob(manifest)))
layers = sum(l["size"] for l in m["layers"])
sizes = {"image_manifest": manifest, "image_layers_bytes": layers,
         "image_rootfs_bytes": os.path.getsize(os.path.join(os.path.dirname(oci), "layer.tar")),
         "artifacts": {f: os.path.getsize(os.path.join(dist, f)) for f in sorted(os.listdir(dist))}}
json.dump(sizes, open(out, "w"), indent=1)
for f, n in sizes["artifacts"].items():
    print(f"  {n / 1e6:8.2f} MB  {f}")
print(f"  image {manifest}: layers {layers / 1e6:.2f} MB compressed, root filesystem {sizes['image_rootfs_bytes'] / 1e6:.2f} MB")
PY
say "done: target/dist/"
