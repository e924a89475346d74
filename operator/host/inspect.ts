// Inspection: what the host says of the node software, read-only and without the host's lock (it
// must answer while an install runs). The answer is the host's, so the tenant's: it is parsed as
// data, bounded, and every field checked for its shape before anything is decided on it.
import { plainText } from '../net/plain-text.ts';
import { packageNames, paths, services, type PackageName } from './layout.ts';
import { preamble, q, reportPrefix } from './shell.ts';

export interface ServiceState {
  up: boolean;
  /** How long it has been running (0 when down). */
  seconds: number;
}

export interface InstalledPackage {
  name: PackageName;
  version: string;
  sha256: string;
}

export interface Inspection {
  manager: 'runit' | 'systemd';
  /** What the manifest says is installed; empty when nothing of the operator's is on the host. */
  packages: InstalledPackage[];
  /** Files the manifest lists whose checksum is no longer the recorded one, or that are gone. */
  changedFiles: string[];
  services: Record<keyof typeof services, ServiceState>;
  /** The kubelet answers its health check. */
  kubeletHealthy: boolean;
  /** The kubelet has its own kubeconfig: it joined (with the bootstrap token) before. */
  joined: boolean;
  /** sha256 of the CA bundle the host trusts for its cluster, if it has one. */
  caBundleSha256: string | undefined;
  /** The plan digest of the install that wrote the manifest ('' without one). */
  config: string;
}

export function inspectScript(): string {
  return `${preamble(undefined, { lock: false })}
manifest=${q(paths.manifest)}
changed=''
if [ -f "$manifest" ]; then
  # the manifest's files and checksums, one "path sum" per line
  for pair in $(sed -n 's/.*"files":{\\(.*\\)}}.*/\\1/p' "$manifest" | tr ',' '\\n' | sed 's/^"\\(.*\\)":"\\(.*\\)"$/\\1=\\2/'); do
    f=\${pair%%=*}; want=\${pair#*=}
    have=$(sha256sum "$(readlink -f "$f" 2>/dev/null || echo "$f")" 2>/dev/null | cut -d' ' -f1 || true)
    [ "$have" = "$want" ] || changed="$changed$(json "$f"),"
  done
  packages=$(sed -n 's/^{"packages":\\(\\[[^]]*\\]\\).*/\\1/p' "$manifest")
  config=$(sed -n 's/.*"config":"\\([0-9a-f]*\\)".*/\\1/p' "$manifest")
else
  packages='[]'
  config=''
fi
state() { set -- $(svc_state "$1"); if [ "$1" = up ]; then printf '{"up":true,"seconds":%s}' "\${2:-0}"; else printf '{"up":false,"seconds":0}'; fi; }
if curl -fsS --max-time 2 http://127.0.0.1:10248/healthz >/dev/null 2>&1; then healthy=true; else healthy=false; fi
if [ -s ${q(paths.kubeletKubeconfig)} ]; then joined=true; else joined=false; fi
if [ -f ${q(paths.caBundle)} ]; then ca=$(json "$(sha256sum ${q(paths.caBundle)} | cut -d' ' -f1)"); else ca=null; fi
report "{\\"result\\":{\\"manager\\":\\"$manager\\",\\"packages\\":\${packages:-[]},\\"changedFiles\\":[\${changed%,}],\\"services\\":{\\"containerd\\":$(state ${services.containerd}),\\"kubelet\\":$(state ${services.kubelet})},\\"kubeletHealthy\\":$healthy,\\"joined\\":$joined,\\"config\\":\\"$config\\",\\"caBundleSha256\\":$ca}}"
`;
}

/** The JSON of the last report line carrying `result` (or the error a failed operation reported). */
export function readReport(stdout: string): { result?: unknown; error?: string; steps: string[] } {
  const steps: string[] = [];
  let result: unknown;
  let error: string | undefined;
  for (const line of stdout.split('\n')) {
    if (!line.startsWith(reportPrefix) || line.length > 64 << 10) continue;
    let value: unknown;
    try {
      value = JSON.parse(line.slice(reportPrefix.length));
    } catch {
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    const v = value as Record<string, unknown>;
    if (typeof v.step === 'string') steps.push(v.step.slice(0, 64));
    if (typeof v.error === 'string') error = plainText(v.error, 512);
    if ('result' in v) result = v.result;
  }
  return { result, error, steps };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function serviceState(v: unknown): ServiceState | undefined {
  if (!isRecord(v) || typeof v.up !== 'boolean' || typeof v.seconds !== 'number' || !Number.isFinite(v.seconds))
    return undefined;
  return { up: v.up, seconds: Math.max(0, Math.floor(v.seconds)) };
}

/** The inspection's result, checked field by field; undefined when any field has the wrong shape. */
export function parseInspection(result: unknown): Inspection | undefined {
  if (!isRecord(result)) return undefined;
  const { manager, packages, changedFiles, services: s, kubeletHealthy, joined, caBundleSha256, config } = result;
  if (typeof config !== 'string' || !/^([0-9a-f]{64})?$/.test(config)) return undefined;
  if (manager !== 'runit' && manager !== 'systemd') return undefined;
  if (!Array.isArray(packages) || packages.length > packageNames.length) return undefined;
  const parsed: InstalledPackage[] = [];
  for (const p of packages) {
    if (!isRecord(p) || !packageNames.includes(p.name as PackageName)) return undefined;
    if (typeof p.version !== 'string' || !/^v?[0-9]+[.][0-9]+[.][0-9]+\S{0,40}$/.test(p.version)) return undefined;
    if (typeof p.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(p.sha256)) return undefined;
    parsed.push({ name: p.name as PackageName, version: p.version, sha256: p.sha256 });
  }
  if (!Array.isArray(changedFiles) || changedFiles.length > 32 || !changedFiles.every((f) => typeof f === 'string'))
    return undefined;
  if (!isRecord(s)) return undefined;
  const containerd = serviceState(s.containerd);
  const kubelet = serviceState(s.kubelet);
  if (!containerd || !kubelet || typeof kubeletHealthy !== 'boolean' || typeof joined !== 'boolean') return undefined;
  if (caBundleSha256 !== null && (typeof caBundleSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(caBundleSha256)))
    return undefined;
  return {
    manager,
    packages: parsed,
    changedFiles: changedFiles.map((f) => plainText(f, 256)),
    services: { containerd, kubelet },
    kubeletHealthy,
    joined,
    caBundleSha256: caBundleSha256 ?? undefined,
    config,
  };
}
