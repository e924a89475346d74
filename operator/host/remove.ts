// Removal: the node software off a host, and the host as the first install found it. The kubelet
// stops first (no new pods), then the containers of the operator's own containerd (its own socket:
// a host's other runtime is not touched) and that runtime; the mounts pods left go, and removal
// stops if one stays (a volume still mounted is someone's data); then the folders the install made
// (only those: a folder the host had stays), the services, and the rules kube-proxy wrote, unless
// the host had such rules before. Run again after being cut short, it finishes the job.
import { hostFolders, layout, paths, services } from './layout.ts';
import { preamble, q } from './shell.ts';

/** The folders below which pods and the runtime mount things. */
const mountRoots = [layout.kubeletRoot, layout.containerdState, layout.containerdRoot];

export function removeScript(): string {
  const ctr = `${paths.current('containerd')}/bin/ctr`;
  // mount points below $dir (not $dir itself: a disk of its own stays) in /proc/mounts, deepest
  // first (octal escapes such as \040 kept: umount reads them the same)
  const mountsUnder = `awk -v d="$dir" 'index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r`;
  return `${preamble(undefined)}
report '{"step":"stop-kubelet"}'
svc_remove ${services.kubelet}
report '{"step":"stop-containers"}'
if [ -x ${q(ctr)} ] && [ -S ${q(layout.containerdSocket)} ]; then
  for ns in k8s.io default; do
    for task in $(${q(ctr)} --address ${q(layout.containerdSocket)} -n $ns tasks ls -q 2>/dev/null); do
      ${q(ctr)} --address ${q(layout.containerdSocket)} -n $ns tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true
    done
  done
  sleep 1
fi
svc_remove ${services.containerd}
# the shims of this containerd (started with its own socket) outlive it: they go, with their containers
for pid in $(ps -eo pid=,args= | awk -v s=${q(layout.containerdSocket)} '/containerd-shim-runc-v2/ && index($0, "-address " s) > 0 { print $1 }'); do
  kill -9 "$pid" 2>/dev/null || true
done
report '{"step":"unmount"}'
for dir in ${mountRoots.map(q).join(' ')}; do
  for m in $(${mountsUnder}); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  left=$(${mountsUnder} | head -3 | tr '\\n' ' ')
  [ -z "$left" ] || fail "still mounted below $dir after unmounting: $left(nothing was deleted)"
done
report '{"step":"remove-files"}'
rm -f ${q(paths.cniConfig)} ${q(`${layout.cniConf}/10-containerd-net.conflist`)}
ip link delete kok0 2>/dev/null || true
if [ -f ${q(paths.created)} ]; then
  while read -r d; do
    # a mount point (a disk of its own) stays, emptied; nothing on another file system is followed
    case $d in ${hostFolders.map((f) => q(f)).join('|')}) rm -rf --one-file-system "$d" 2>/dev/null || find "$d" -xdev -mindepth 1 -delete ;; esac
  done < ${q(paths.created)}
fi
rm -rf --one-file-system ${q(layout.opt)} ${q(layout.etc)} ${q(layout.containerdState)}
report '{"step":"remove-rules"}'
# kube-proxy's chains and the jumps to them (its DaemonSet ran on the host's network): each table
# is written back whole without them, in one step; a host that had such rules before keeps them all
if [ ! -e ${q(paths.hadKubeRules)} ] && command -v iptables-save >/dev/null 2>&1; then
  for table in nat filter mangle; do
    if iptables-save -t $table 2>/dev/null | grep -q KUBE-; then
      iptables-save -t $table | grep -vE '^:KUBE-|^-A KUBE-| -j KUBE-' | iptables-restore -T $table ||
        fail "could not remove kube-proxy's rules from the $table table"
    fi
  done
fi
exec 9>&-
rm -rf --one-file-system ${q(layout.state)} 2>/dev/null || find ${q(layout.state)} -xdev -mindepth 1 -delete
report '{"result":"removed"}'
`;
}
