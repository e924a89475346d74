#!/usr/bin/env bash
# Installs the machine packages the project needs (Debian bookworm, as root) and checks for Go.
# Safe to run again: apt-get skips what is installed.
set -euo pipefail

packages=(
  ca-certificates openssl git tar procps util-linux
  # the tier-2 node: container runtime, CNI plugins, networking tools, the provisioner's helper
  containerd runc containernetworking-plugins iptables iproute2 conntrack busybox-static
  # the tools the conformance suite's test images carry (scripts/images/conformance-catalog.ts)
  curl bind9-dnsutils netcat-openbsd
  # to build upstream busybox for the suite's busybox image (scripts/build-busybox.sh)
  gcc make libc6-dev bzip2
  # the test bed's bare machines: sshd under runit (scripts/testbed/machine.ts)
  openssh-server runit
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "install-prerequisites: missing packages ${missing[*]}; run as root to install them" >&2; exit 1; }
  echo "install-prerequisites: installing ${missing[*]}" >&2
  apt-get update -qq
  # services installed here must not start on this host (sshd would take its port 22): a
  # policy-rc.d that refuses them, for the install only, unless the host has one already
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v go >/dev/null || { echo "install-prerequisites: Go 1.24 or newer is needed (the Kubernetes binaries are built from Go modules)" >&2; exit 1; }
go_minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
[ "$go_minor" -ge 24 ] || { echo "install-prerequisites: Go $(go env GOVERSION) is too old; 1.24 or newer is needed" >&2; exit 1; }
command -v npm >/dev/null || { echo "install-prerequisites: npm is needed to install Node.js 24 and the dependencies" >&2; exit 1; }
echo "install-prerequisites: ok" >&2
