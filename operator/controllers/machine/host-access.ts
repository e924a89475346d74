// A Machine's host as the Node-Operator reaches it: the SSH target from its spec and its key's
// Secret (read on demand, never cached beyond the operation, never logged), and each operation
// run through it with its report read back as data.
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { cidrContainsCidr, parseCidr, type Cidr } from '../../api/formats.ts';
import { readReport } from '../../host/inspect.ts';
import { plainText } from '../../net/plain-text.ts';
import { reportPrefix } from '../../host/shell.ts';
import { runScript, SshError, type RunOptions, type SshTarget } from '../../ssh/client.ts';
import type { Machine } from '../../api/machine.generated.ts';

export class HostKeyUnavailable extends Error {}

/** The Machine's address is not one the operator may log in to (the policy's allowedMachineNetworks). */
export class AddressNotAllowed extends Error {}

/**
 * The address to dial for `address` (an IP, or a name resolved here), once every address it stands
 * for is in one of `networks`; the dial then goes to that very IP, so a name cannot be made to
 * resolve elsewhere between the check and the connection.
 */
export async function allowedAddress(
  address: string,
  networks: readonly { text: string; cidr: Cidr }[],
  lookup: (name: string) => Promise<string[]> = async (name) =>
    (await dnsLookup(name, { all: true, verbatim: true })).map((a) => a.address),
): Promise<string> {
  const where = networks.length > 0 ? networks.map((n) => n.text).join(', ') : 'none: the platform named no range';
  const ips = isIP(address) !== 0 ? [address] : await lookup(address).catch(() => []);
  if (ips.length === 0) throw new AddressNotAllowed(`spec.address ${address} does not resolve`);
  for (const ip of ips) {
    const cidr = parseCidr(`${ip}/${isIP(ip) === 4 ? 32 : 128}`);
    if (!cidr || !networks.some((n) => cidrContainsCidr(n.cidr, cidr)))
      throw new AddressNotAllowed(
        `spec.address ${address}${ip === address ? '' : ` (${ip})`} is not in the operator's allowedMachineNetworks (${where})`,
      );
  }
  return ips[0]!;
}

export interface OperationResult {
  ok: boolean;
  /** The step that ran last (where a failed operation stopped). */
  step: string | undefined;
  /** Why it failed: the operation's own words, else the last line it printed on stderr. */
  error: string | undefined;
  result: unknown;
}

const maxKeyBytes = 16 << 10;

/** The last line of a host's stderr, as plain text of bounded length: shown to people, never run. */
export function lastLine(text: string): string | undefined {
  const line = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .at(-1);
  return line === undefined ? undefined : plainText(line, 300, '');
}

export class HostAccess {
  readonly #core: CoreV1Api;
  readonly #networks: { text: string; cidr: Cidr }[];

  constructor(kc: KubeConfig, networks: readonly string[]) {
    this.#core = kc.makeApiClient(CoreV1Api);
    this.#networks = networks.map((text) => {
      const cidr = parseCidr(text);
      if (!cidr) throw new Error(`allowedMachineNetworks: ${text} is not a CIDR`);
      return { text, cidr };
    });
  }

  /** The SSH target: the address checked against the policy before the key is read. */
  async target(machine: Machine): Promise<SshTarget> {
    const host = await allowedAddress(machine.spec.address, this.#networks);
    const namespace = machine.metadata?.namespace ?? '';
    const ssh = machine.spec.access.ssh;
    const name = ssh.privateKeyRef.name;
    let data: Record<string, string> | undefined;
    try {
      data = (await this.#core.readNamespacedSecret({ namespace, name })).data;
    } catch (err) {
      if ((err as { code?: number }).code === 404)
        throw new HostKeyUnavailable(`Secret ${namespace}/${name} (access.ssh.privateKeyRef) does not exist`);
      throw err;
    }
    const encoded = data?.['ssh-privatekey'];
    if (!encoded) throw new HostKeyUnavailable(`Secret ${namespace}/${name} has no key ssh-privatekey`);
    const privateKey = Buffer.from(encoded, 'base64');
    if (privateKey.length > maxKeyBytes || !privateKey.toString('latin1').includes('PRIVATE KEY-----'))
      throw new HostKeyUnavailable(`Secret ${namespace}/${name}: ssh-privatekey is not a private key`);
    return { host, port: ssh.port, username: ssh.user, privateKey, hostKey: ssh.hostKey };
  }

  /**
   * Runs one operation's script; an SshError means it could not run to its end. `onStep` hears of
   * each step as the host starts it.
   */
  async run(
    machine: Machine,
    script: string,
    options: RunOptions & { onStep?: (step: string) => void } = {},
  ): Promise<OperationResult> {
    const target = await this.target(machine);
    const { onStep, ...rest } = options;
    const out = await runScript(target, script, {
      sudo: machine.spec.access.ssh.sudo,
      ...rest,
      ...(onStep
        ? {
            onLine: (line: string) => {
              const step = readReport(line).steps[0];
              if (line.startsWith(reportPrefix) && step) onStep(step);
            },
          }
        : {}),
    });
    const report = readReport(out.stdout);
    const ok = out.code === 0 && report.error === undefined;
    return {
      ok,
      step: report.steps.at(-1),
      error: ok ? undefined : (report.error ?? lastLine(out.stderr) ?? `exit status ${out.code ?? out.signal}`),
      result: report.result,
    };
  }
}

export { SshError };
