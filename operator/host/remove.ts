// Removal: the node software off a host, and the host as the first install found it. The kubelet
// stops first (no new pods), then every container and the runtime; the mounts pods left go, then
// the folders the install made (only those: a folder the host had stays), the services, and the
// rules kube-proxy wrote. Run again after being cut short, it finishes the job.
import { hostFolders, layout, paths, services } from './layout.ts';
import { preamble, q } from './shell.ts';

export function removeScript(): string {
  const ctr = `${paths.current('containerd')}/bin/ctr`;
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
# the shims that outlive their runtime, and what runs under them
for pid in $(ps -eo pid=,args= | awk '/containerd-shim-runc-v2/ && /${layout.containerdState.replace(/\//g, '\\/')}/ { print $1 }'); do
  kill -9 "$pid" 2>/dev/null || true
done
report '{"step":"unmount"}'
for dir in ${q(layout.kubeletRoot)} ${q(layout.containerdState)} ${q(layout.containerdRoot)} /run/netns; do
  # deepest first
  for m in $(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
done
report '{"step":"remove-files"}'
rm -f ${q(paths.cniConfig)} ${q(`${layout.cniConf}/10-containerd-net.conflist`)}
ip link delete kok0 2>/dev/null || true
if [ -f ${q(paths.created)} ]; then
  while read -r d; do
    # a mount point (a disk of its own) stays, emptied
    case $d in ${hostFolders.map((f) => q(f)).join('|')}) rm -rf "$d" 2>/dev/null || find "$d" -mindepth 1 -delete ;; esac
  done < ${q(paths.created)}
fi
rm -rf ${q(layout.opt)} ${q(layout.etc)} ${q(layout.containerdState)}
report '{"step":"remove-rules"}'
# kube-proxy's chains and the jumps to them (its DaemonSet ran on the host's network): each table
# is written back whole without them, in one step
if command -v iptables-save >/dev/null 2>&1; then
  for table in nat filter mangle; do
    if iptables-save -t $table 2>/dev/null | grep -q KUBE-; then
      iptables-save -t $table | grep -vE '^:KUBE-|^-A KUBE-| -j KUBE-' | iptables-restore -T $table ||
        fail "could not remove kube-proxy's rules from the $table table"
    fi
  done
fi
exec 9>&-
rm -rf ${q(layout.state)}
report '{"result":"removed"}'
`;
}
