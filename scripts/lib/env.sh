# Sourced by the project's commands: puts the project's Node.js first on PATH and installs the npm
# dependencies when package-lock.json changed since the last install. Sets $root.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PATH="$("$root/scripts/install-node.sh"):$PATH"
export PATH
_lock_stamp="$root/node_modules/.kubeonkube-lock"
_lock_hash=$(sha256sum "$root/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$_lock_stamp" 2>/dev/null)" != "$_lock_hash" ]; then
  echo "installing npm dependencies (npm ci)" >&2
  (cd "$root" && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$_lock_hash" > "$_lock_stamp"
fi
unset _lock_stamp _lock_hash
