// The shell every host operation is written in (POSIX sh, as Debian's dash and busybox run it):
// quoting, files written whole or not at all, the report lines the operator reads back, the
// journal that lets an operation cut short go on where it stopped, the host's lock, and the
// service manager (systemd, or runit where systemd is not PID 1).
import { layout, paths } from './layout.ts';

/** A single-quoted sh word. */
export const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Writes `content` to `path` through a temporary file and a rename: a reader (or a run cut short)
 * sees the old file or the new one, never half of one. The content goes through a quoted here
 * document, so nothing in it is expanded.
 */
export function writeFile(path: string, content: string, mode = '644'): string {
  const end = 'KUBEONKUBE_END_OF_FILE';
  if (content.split('\n').includes(end)) throw new Error(`${path}: content holds the here-document delimiter`);
  const body = content.endsWith('\n') ? content : `${content}\n`;
  // a file only root may read is never readable by others, not even while it is written
  const umask = mode.replace(/^0/, '').slice(1) === '00' ? '077' : '022';
  return [
    `mkdir -p "$(dirname ${q(path)})"`,
    `(umask ${umask}; cat > ${q(`${path}.kok-new`)}) <<'${end}'`,
    `${body}${end}`,
    `chmod ${mode} ${q(`${path}.kok-new`)}`,
    `mv -f ${q(`${path}.kok-new`)} ${q(path)}`,
  ].join('\n');
}

/** The marker of report lines among whatever else a host prints. */
export const reportPrefix = 'kok ';

/**
 * The start of every operation: strict sh, a known PATH, report lines, the host's lock (one
 * operation at a time, whoever started it; a read-only inspection goes without), the journal of `operation` (when given) and the
 * service manager. Report lines are JSON objects the operator parses as data: {"step": name}
 * when a step starts, {"error": message} before a failure, {"result": ...} last.
 */
export function preamble(operation: string | undefined, options: { lock?: boolean } = {}): string {
  if (operation !== undefined && !/^[a-z0-9][-a-z0-9.]{0,100}$/.test(operation))
    throw new Error(`operation id ${JSON.stringify(operation)} is not a safe file name`);
  return `set -eu
umask 022
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
# a JSON string of $1: backslashes and quotes escaped, control characters dropped
json() { printf '"%s"' "$(printf '%s' "$1" | tr -d '\\000-\\037' | sed -e 's/\\\\/\\\\\\\\/g' -e 's/"/\\\\"/g')"; }
report() { printf '${reportPrefix}%s\\n' "$1"; }
fail() { report "{\\"error\\":$(json "$1")}"; failed=1; exit 1; }
# a command that failed under set -e says where it stopped (its own words went to stderr)
failed=0
current=start
trap 'code=$?; [ $code = 0 ] || [ $failed = 1 ] || report "{\\"error\\":$(json "a command failed (exit $code) in step $current")}"' EXIT
[ "$(id -u)" = 0 ] || fail "the operation needs root (set access.ssh.sudo for a user other than root)"
for tool in flock sha256sum tar gzip; do
  command -v "$tool" >/dev/null 2>&1 || fail "the host has no $tool"
done
${
  options.lock === false
    ? ''
    : `mkdir -p ${q(layout.state)}
exec 9>${q(paths.lock)}
flock -w 120 9 || fail "another operation holds the host's lock (${paths.lock}) for more than 2 minutes"
`
}${
    operation === undefined
      ? ''
      : `journal=${q(paths.journal(operation))}
mkdir -p "$journal"
# true when step $1 is still to run (and says it starts); a step is marked done only once whole
# (each start and end is also logged on the host, in $journal/log: what ran, and how often)
step() { if [ -e "$journal/$1" ]; then return 1; fi; current=$1; echo "start $1" >> "$journal/log"; report "{\\"step\\":\\"$1\\"}"; }
done_step() { : > "$journal/$1"; echo "done $1" >> "$journal/log"; }
`
  }if [ -d /run/systemd/system ]; then manager=systemd
elif command -v sv >/dev/null 2>&1 && [ -d /etc/service ]; then manager=runit
else fail "the host runs neither systemd nor runit: no service manager to run the node software under"
fi
${serviceFunctions}`;
}

/**
 * svc_define NAME SCRIPT: a service running SCRIPT (a path: the command line is in the script, where
 * no service manager reads it; systemd would expand % and $ in ExecStart), restarted when it exits, started
 * at every boot, not started by the definition itself. svc_restart / svc_stop NAME; svc_state NAME
 * prints "up SECONDS" (running for that long) or "down".
 */
const serviceFunctions = `svc_define() {
  case $manager in
  runit)
    mkdir -p "/etc/sv/$1/log" ${q(layout.logs)}/"$1"
    # held down while it is defined: svc_restart starts it, in the order the operation wants
    [ -e "/etc/service/$1" ] || : > "/etc/sv/$1/down"
    printf '#!/bin/sh\\nexec 2>&1\\nexec %s\\n' "$2" > "/etc/sv/$1/run.kok-new"
    chmod 755 "/etc/sv/$1/run.kok-new" && mv -f "/etc/sv/$1/run.kok-new" "/etc/sv/$1/run"
    printf '#!/bin/sh\\nexec svlogd -tt %s/%s\\n' ${q(layout.logs)} "$1" > "/etc/sv/$1/log/run.kok-new"
    chmod 755 "/etc/sv/$1/log/run.kok-new" && mv -f "/etc/sv/$1/log/run.kok-new" "/etc/sv/$1/log/run"
    [ -L "/etc/service/$1" ] || ln -s "/etc/sv/$1" "/etc/service/$1"
    ;;
  systemd)
    printf '[Unit]\\nDescription=%s (kubeonkube)\\nAfter=network-online.target\\n\\n[Service]\\nExecStart=%s\\nRestart=always\\nRestartSec=5\\nDelegate=yes\\nKillMode=process\\nLimitNOFILE=1048576\\nOOMScoreAdjust=-999\\n\\n[Install]\\nWantedBy=multi-user.target\\n' "$1" "$2" > "/etc/systemd/system/$1.service.kok-new"
    mv -f "/etc/systemd/system/$1.service.kok-new" "/etc/systemd/system/$1.service"
    systemctl daemon-reload
    systemctl enable -q "$1"
    ;;
  esac
}
svc_restart() {
  case $manager in
  runit)
    # runsvdir notices a new service within 5 s
    i=0; until sv status "/etc/service/$1" >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 30 ] || fail "runit does not supervise $1"; sleep 1; done
    rm -f "/etc/sv/$1/down"
    sv -w 30 restart "/etc/service/$1" >/dev/null || fail "runit could not restart $1"
    ;;
  systemd) systemctl restart "$1" || fail "systemd could not restart $1" ;;
  esac
}
svc_stop() {
  case $manager in
  runit) if [ -e "/etc/service/$1" ]; then sv -w 30 force-stop "/etc/service/$1" >/dev/null 2>&1 || true; fi ;;
  systemd) systemctl stop "$1" 2>/dev/null || true ;;
  esac
}
svc_remove() {
  svc_stop "$1"
  case $manager in
  runit)
    rm -f "/etc/service/$1"
    # runsv leaves within 5 s of its link going; its folder after
    sleep 6
    sv -w 10 exit "/etc/sv/$1/log" >/dev/null 2>&1 || true
    rm -rf "/etc/sv/$1"
    ;;
  systemd)
    systemctl disable -q "$1" 2>/dev/null || true
    rm -f "/etc/systemd/system/$1.service"
    systemctl daemon-reload
    ;;
  esac
}
svc_state() {
  case $manager in
  runit)
    s=$(sv status "/etc/service/$1" 2>/dev/null || true)
    case $s in
    run:*) printf 'up %s\\n' "$(printf '%s' "$s" | sed -n 's/^run: [^:]*: (pid [0-9]*) \\([0-9]*\\)s.*/\\1/p')" ;;
    *) echo down ;;
    esac
    ;;
  systemd)
    if [ "$(systemctl show -p ActiveState --value "$1")" = active ]; then
      since=$(systemctl show -p ActiveEnterTimestampMonotonic --value "$1")
      now=$(cut -d' ' -f1 /proc/uptime | cut -d. -f1)
      printf 'up %s\\n' $((now - since / 1000000))
    else echo down; fi
    ;;
  esac
}
`;
