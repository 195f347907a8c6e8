#!/usr/bin/env bash
# README: "TLS by rustls with the ring provider, no OpenSSL". Fails when the
# helper's normal (non-dev, non-build) dependency tree holds OpenSSL, aws-lc
# or native-tls (OpenSSL on Linux) — or no longer holds rustls and ring.
# Offline and locked: it reads only Cargo.lock and the crates the build
# fetched, and never reaches the network.
set -euo pipefail
cd "$(dirname "$0")/.."

tree="$(cargo tree --offline --locked --edges normal --package seatable-cred --prefix none --format '{p}')"
names="$(printf '%s\n' "$tree" | awk 'NF { print $1 }' | sort -u)"
banned="$(printf '%s\n' "$names" | grep -x -E 'openssl|openssl-sys|aws-lc-rs|aws-lc-sys|aws-lc-fips-sys|native-tls' || true)"
if [ -n "$banned" ]; then
  echo "the seatable-cred binary depends on $(echo $banned | tr ' ' ','): TLS must be rustls with ring only" >&2
  for name in $banned; do
    cargo tree --offline --locked --edges normal --package seatable-cred --invert "$name" >&2 || true
  done
  exit 1
fi
for needed in rustls ring; do
  if ! printf '%s\n' "$names" | grep -q -x "$needed"; then
    echo "$needed is not in the dependency tree of seatable-cred: TLS must be rustls with ring" >&2
    exit 1
  fi
done
echo "TLS: rustls with ring; no OpenSSL, aws-lc or native-tls among $(printf '%s\n' "$names" | wc -l) crates"
