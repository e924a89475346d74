#!/bin/sh
# runc, for machines that withhold CAP_SYS_RESOURCE from root (some sandboxed VMs do). There no
# process may lower its oom_score_adj, and runc cannot start any container that the kubelet gives
# a negative score (every pod sandbox gets -998, Guaranteed pods -997): its init fails with
# "can't get final child's PID from pipe". This raises negative scores in the bundle to 0 before
# runc reads it. The test bed puts it in containerd's config, and in the runc package machines
# install, only when the capability is missing.
bundle=""
previous=""
for arg in "$@"; do
  case "$previous" in --bundle|-b) bundle=$arg ;; esac
  case "$arg" in --bundle=*) bundle=${arg#--bundle=} ;; esac
  previous=$arg
done
if [ -n "$bundle" ] && [ -f "$bundle/config.json" ]; then
  sed -i -E 's/"oomScoreAdj":-[0-9]+/"oomScoreAdj":0/' "$bundle/config.json"
fi
# the runc beside it where it is packaged with one (a machine's runc package), else Debian's
real="$(dirname "$0")/runc.real"
[ -x "$real" ] || real=/usr/sbin/runc
exec "$real" "$@"
