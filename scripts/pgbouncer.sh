#!/usr/bin/env bash
# PgBouncer for the tests: `bash scripts/pgbouncer.sh` prints the path of a pgbouncer binary of
# version PGBOUNCER_VERSION [1.24.1], building it once into .cache/pgbouncer from Debian's
# source package (bookworm ships 1.18, which cannot keep prepared statements in transaction mode;
# the tests need 1.21 or later). The source comes from Debian's archive (the only source this
# machine reaches besides npm and Maven Central): the suite's Release file is checked against
# Debian's archive key, the source index against the Release file, the tarball against the index.
# Builds with gcc, libevent and OpenSSL (libevent-dev and pkg-config are installed when missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${TM_CACHE_DIR:-$ROOT/.cache}/pgbouncer"
VERSION="${PGBOUNCER_VERSION:-1.24.1}"
SUITE="${PGBOUNCER_DEBIAN_SUITE:-trixie}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BIN="$CACHE/$VERSION/bin/pgbouncer"
log() { echo "[pgbouncer] $*" >&2; }

if [[ -x "$BIN" ]]; then echo "$BIN"; exit 0; fi

apt_get() { if [[ "$(id -u)" == 0 ]]; then apt-get "$@"; else sudo apt-get "$@"; fi; }
missing=()
for pkg in libevent-dev libssl-dev pkg-config gcc make gpgv debian-archive-keyring xz-utils; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
  log "installing ${missing[*]}"
  apt_get install -y -q "${missing[@]}" >/dev/null || { apt_get update -q >/dev/null && apt_get install -y -q "${missing[@]}" >/dev/null; }
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
log "fetching Debian $SUITE's source index"
curl -fsS --retry 3 -o InRelease "$MIRROR/dists/$SUITE/InRelease"
gpgv --keyring /usr/share/keyrings/debian-archive-keyring.gpg --output Release InRelease 2>/dev/null \
  || { log "the Release file of $SUITE does not carry a valid Debian archive signature"; exit 1; }
curl -fsS --retry 3 -o Sources.xz "$MIRROR/dists/$SUITE/main/source/Sources.xz"
expected="$(awk '/^SHA256:/{s=1;next} /^[A-Z]/{s=0} s && $3=="main/source/Sources.xz"{print $1}' Release)"
[[ -n "$expected" && "$(sha256sum Sources.xz | cut -d' ' -f1)" == "$expected" ]] || { log "Sources.xz does not match the signed Release file"; exit 1; }
tarball="pgbouncer_${VERSION}.orig.tar.gz"
line="$(xz -dc Sources.xz | awk '/^Package: pgbouncer$/{p=1} /^$/{p=0} p && /^Checksums-Sha256:/{c=1;next} p && /^[A-Z]/{c=0} p && c' | grep " $tarball\$" | head -n 1 || true)"
[[ -n "$line" ]] || { log "Debian $SUITE has no $tarball (set PGBOUNCER_VERSION / PGBOUNCER_DEBIAN_SUITE)"; exit 1; }
log "fetching $tarball"
curl -fsS --retry 3 -o "$tarball" "$MIRROR/pool/main/p/pgbouncer/$tarball"
[[ "$(sha256sum "$tarball" | cut -d' ' -f1)" == "$(echo "$line" | awk '{print $1}')" ]] || { log "$tarball does not match Debian's source index"; exit 1; }
tar xzf "$tarball"
cd "pgbouncer-$VERSION"
log "building $VERSION (a minute)"
./configure --prefix="$CACHE/$VERSION" --without-cares --without-systemd --without-pam --without-ldap >"$work/configure.log" 2>&1 \
  || { tail -n 20 "$work/configure.log" >&2; exit 1; }
make -j2 >"$work/make.log" 2>&1 || { tail -n 20 "$work/make.log" >&2; exit 1; }
mkdir -p "$CACHE/$VERSION/bin"
cp pgbouncer "$BIN"
log "built $BIN"
echo "$BIN"
