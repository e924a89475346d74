#!/usr/bin/env bash
# Builds the real components the local meta-cluster runs, from the Go module proxy, never from a
# download. Each helper module under scripts/go/ pins one upstream release; binaries land in
#   ${KUBEONKUBE_CACHE:-~/.cache/kubeonkube}/bin/<module>-<version>/
# and a binary already there is never built again, so a second run is instant.
#
# usage: scripts/build-binaries.sh [group ...]     groups: kubernetes etcd etcd-previous coredns local-path-provisioner pause helm
#                                                   konnectivity (for bench/tunnel.ts only)
#                                                   conformance (npm run conformance only: e2e.test,
#                                                   ginkgo, agnhost, nonewprivs, sample-apiserver)
#                                                   (default: kubernetes etcd)
#        scripts/build-binaries.sh --print-dir GROUP  prints where GROUP's binaries live
#        scripts/build-binaries.sh --print-version GROUP  prints the version GROUP is pinned to
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${KUBEONKUBE_CACHE:-$HOME/.cache/kubeonkube}

# module directory, main packages and binary names of each group
declare -A module_dir=(
  [kubernetes]=kubernetes
  [etcd]=etcd
  [etcd-previous]=etcd-previous
  [coredns]=coredns
  [local-path-provisioner]=local-path-provisioner
  [pause]=pause
  [helm]=helm
  [konnectivity]=konnectivity
  [conformance]=conformance
)
declare -A packages=(
  [kubernetes]="k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy"
  [etcd]="go.etcd.io/etcd/server/v3 go.etcd.io/etcd/etcdctl/v3 go.etcd.io/etcd/etcdutl/v3"
  [etcd-previous]="go.etcd.io/etcd/server/v3 go.etcd.io/etcd/etcdctl/v3 go.etcd.io/etcd/etcdutl/v3"
  [coredns]="github.com/coredns/coredns"
  [local-path-provisioner]="github.com/rancher/local-path-provisioner"
  [pause]="kubeonkube.local/pause"
  [helm]="helm.sh/helm/v3/cmd/helm"
  [konnectivity]="sigs.k8s.io/apiserver-network-proxy/cmd/server sigs.k8s.io/apiserver-network-proxy/cmd/agent"
  [conformance]="k8s.io/kubernetes/test/e2e github.com/onsi/ginkgo/v2/ginkgo k8s.io/kubernetes/test/images/agnhost k8s.io/kubernetes/test/images/nonewprivs k8s.io/sample-apiserver"
)
# the module whose version names the cache folder (the project's own programs: their source hash)
declare -A pinned=(
  [kubernetes]=k8s.io/kubernetes
  [etcd]=go.etcd.io/etcd/server/v3
  [etcd-previous]=go.etcd.io/etcd/server/v3
  [coredns]=github.com/coredns/coredns
  [local-path-provisioner]=github.com/rancher/local-path-provisioner
  [helm]=helm.sh/helm/v3
  [konnectivity]=sigs.k8s.io/apiserver-network-proxy
  [conformance]=k8s.io/kubernetes
)

die() { echo "build-binaries: $*" >&2; exit 1; }

# version of the pinned module, read from the helper module's go.mod (no network)
pinned_version() {
  local group=$1
  if [ -z "${pinned[$group]:-}" ]; then
    echo "src-$(cat "$here/go/${module_dir[$group]}"/*.go "$here/go/${module_dir[$group]}/go.mod" | sha256sum | cut -c1-12)"
    return
  fi
  awk -v m="${pinned[$group]}" '$1 == m && $2 ~ /^v/ { print $2; exit }
    $1 == "require" && $2 == m { print $3; exit }' "$here/go/${module_dir[$group]}/go.mod"
}

bin_dir() {
  local group=$1 v
  v=$(pinned_version "$group")
  [ -n "$v" ] || die "cannot read the pinned version of ${pinned[$group]} from scripts/go/${module_dir[$group]}/go.mod"
  echo "$cache/bin/$group-$v"
}

# binary name of a main package: the last path element, or for a module root with a major
# version suffix (go.etcd.io/etcd/server/v3), the element before it, mapped to upstream's names
binary_name() {
  case "$1" in
    go.etcd.io/etcd/server/v3) echo etcd ;;
    go.etcd.io/etcd/etcdctl/v3) echo etcdctl ;;
    go.etcd.io/etcd/etcdutl/v3) echo etcdutl ;;
    kubeonkube.local/pause) echo pause ;;
    sigs.k8s.io/apiserver-network-proxy/cmd/server) echo proxy-server ;;
    sigs.k8s.io/apiserver-network-proxy/cmd/agent) echo proxy-agent ;;
    k8s.io/kubernetes/test/e2e) echo e2e.test ;;
    *) basename "$1" ;;
  esac
}

ldflags_for() {
  local group=$1 v=$2
  case "$group" in
    kubernetes | conformance)
      local major minor flags="-s -w"
      major=${v#v}; major=${major%%.*}
      minor=${v#v*.}; minor=${minor%%.*}
      for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
        flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
      done
      echo "$flags" ;;
    *) echo "-s -w" ;;
  esac
}

build_group() {
  local group=$1 dir v missing=() pkgs=()
  [ -n "${module_dir[$group]:-}" ] || die "unknown group '$group' (known: ${!module_dir[*]})"
  dir=$(bin_dir "$group"); v=$(pinned_version "$group")
  for pkg in ${packages[$group]}; do
    [ -x "$dir/$(binary_name "$pkg")" ] || { missing+=("$(binary_name "$pkg")"); pkgs+=("$pkg"); }
  done
  if [ ${#pkgs[@]} -eq 0 ]; then
    echo "build-binaries: $group $v cached in $dir"
    return
  fi
  command -v go >/dev/null || die "go is not installed (Go 1.24 or newer is needed to build $group)"
  echo "build-binaries: building $group $v: ${missing[*]} (a cold build takes minutes; progress every 60 s)"
  local tmp start ticker
  tmp=$(mktemp -d "$cache/tmp.XXXXXX")
  start=$SECONDS
  ( while sleep 60; do echo "build-binaries:   ... $group still building, $(( (SECONDS - start) / 60 )) min"; done ) &
  ticker=$!
  # shellcheck disable=SC2064
  trap "kill $ticker 2>/dev/null; rm -rf '$tmp'" RETURN
  (
    cd "$here/go/${module_dir[$group]}"
    for pkg in "${pkgs[@]}"; do
      # the conformance suite is a package's tests: compiled, not run
      local build=(build)
      [ "$pkg" = k8s.io/kubernetes/test/e2e ] && build=(test -c)
      CGO_ENABLED=0 go "${build[@]}" -trimpath -tags selinux,notest -ldflags "$(ldflags_for "$group" "$v")" \
        -o "$tmp/$(binary_name "$pkg")" "$pkg"
      echo "build-binaries:   built $(binary_name "$pkg") ($(( SECONDS - start )) s)"
    done
  )
  mkdir -p "$dir"
  for name in "${missing[@]}"; do mv "$tmp/$name" "$dir/$name"; done
  echo "build-binaries: $group $v ready in $dir ($(( SECONDS - start )) s)"
}

mkdir -p "$cache"
if [ "${1:-}" = "--print-dir" ]; then
  [ -n "${2:-}" ] || die "usage: --print-dir GROUP"
  bin_dir "$2"
  exit 0
fi
if [ "${1:-}" = "--print-version" ]; then
  [ -n "${2:-}" ] || die "usage: --print-version GROUP"
  pinned_version "$2"
  exit 0
fi
groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(kubernetes etcd)
for g in "${groups[@]}"; do build_group "$g"; done
