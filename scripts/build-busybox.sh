#!/usr/bin/env bash
# Builds upstream busybox, static, for the conformance suite's busybox image. Debian's own
# busybox-static is not enough there: Debian reverts upstream's ash change that keeps environment
# variables whose names are no shell identifiers (`p-data-1`), which the suite's env-from specs
# read back with `sh -c env`, and bash words its errors differently from ash, which another spec
# compares. The source is the release tarball as Debian's archive keeps it (the orig tarball of
# Debian's busybox source package, byte for byte upstream's), checked against a pinned digest.
# The binary lands in ${KUBEONKUBE_CACHE:-~/.cache/kubeonkube}/bin/busybox-<version>/busybox and is
# never built twice.
#
# usage: scripts/build-busybox.sh               builds it unless cached
#        scripts/build-busybox.sh --print-dir   prints where the binary lives
set -euo pipefail

version=1.37.0
sha256=3311dff32e746499f4df0d5df04d7eb396382d7e108bb9250e7b519b837043a4
url=https://deb.debian.org/debian/pool/main/b/busybox/busybox_$version.orig.tar.bz2

cache=${KUBEONKUBE_CACHE:-$HOME/.cache/kubeonkube}
dir=$cache/bin/busybox-$version
die() { echo "build-busybox: $*" >&2; exit 1; }

if [ "${1:-}" = "--print-dir" ]; then echo "$dir"; exit 0; fi
[ $# -eq 0 ] || die "unknown argument $1 (usage at the top of scripts/build-busybox.sh)"
if [ -x "$dir/busybox" ]; then
  echo "build-busybox: busybox $version cached in $dir"
  exit 0
fi
for tool in curl make gcc bzip2; do
  command -v "$tool" >/dev/null || die "$tool is needed (scripts/install-prerequisites.sh installs it)"
done

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
echo "build-busybox: building busybox $version (about a minute)"
curl -fsSL --retry 3 -o "$tmp/src.tar.bz2" "$url" || die "cannot download $url"
echo "$sha256  $tmp/src.tar.bz2" | sha256sum -c --quiet - || die "$url does not match the pinned sha256 $sha256"
tar -xjf "$tmp/src.tar.bz2" -C "$tmp"
(
  cd "$tmp/busybox-$version"
  make defconfig >/dev/null
  # static, as upstream's busybox image; tc no longer builds against current kernel headers (CBQ
  # is gone from them) and no spec uses it
  sed -i -e 's/^# CONFIG_STATIC is not set$/CONFIG_STATIC=y/' -e 's/^CONFIG_TC=y$/# CONFIG_TC is not set/' .config
  grep -qx CONFIG_STATIC=y .config || die "defconfig of $version changed: CONFIG_STATIC not set"
  # no build date in the binary: it, and the images made from it, are the same on every machine
  make -j"$(nproc)" KCONFIG_NOTIMESTAMP=1 SOURCE_DATE_EPOCH=0 busybox >"$tmp/build.log" 2>&1 ||
    { tail -20 "$tmp/build.log" >&2; die "make failed (log above)"; }
)
mkdir -p "$dir"
mv "$tmp/busybox-$version/busybox" "$dir/busybox"
echo "build-busybox: busybox $version ready in $dir ($(( SECONDS - start )) s)"
