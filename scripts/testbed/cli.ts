// scripts/meta-cluster up | down | env | status | worker join|leave|list | machine add|list|remove|power-off|power-on
import { existsSync } from 'node:fs';
import { loadConfig, statePaths } from './config.ts';
import { down, status, TestbedError, up } from './meta-cluster.ts';
import { NodeSetupError } from './node.ts';
import { ComponentFailed } from './probes.ts';
import {
  addMachine,
  describeMachine,
  listMachines,
  MachineSetupError,
  powerOffMachine,
  powerOnMachine,
  removeMachine,
} from './machine.ts';
import { defaultWorkerName, listWorkers, startWorker, stopWorker, WorkerSetupError } from './worker.ts';

const workerUsage =
  'worker join --namespace <ns> --cluster <name> [--name <worker>] [--images conformance] | worker leave [--name <worker>] | worker list';
const machineUsage =
  'machine add <name> [--idc <data centre>] [--namespace <ns>] | machine list | machine remove <name> | machine power-off <name> | machine power-on <name>';
const usage = `usage: scripts/meta-cluster up [--with-node] | down | env | status | ${workerUsage} | ${machineUsage}`;
const say = (line: string) => process.stderr.write(`meta-cluster: ${line}\n`);

/** `--key value` and `--key=value`, only the keys given; anything else is a usage error. */
function parseFlags(args: string[], keys: string[]): Record<string, string> | string {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(args[i]!);
    if (!m?.[1] || !keys.includes(m[1])) return `unknown argument ${args[i]}`;
    const value = m[2] ?? args[++i];
    if (value === undefined || value === '') return `--${m[1]} needs a value`;
    out[m[1]] = value;
  }
  return out;
}

async function worker(sub: string | undefined, args: string[]): Promise<number> {
  const stateDir = loadConfig().stateDir;
  const flags = parseFlags(
    args,
    sub === 'join' ? ['namespace', 'cluster', 'name', 'images'] : sub === 'leave' ? ['name'] : [],
  );
  if (typeof flags === 'string') {
    say(`${flags}; usage: scripts/meta-cluster ${workerUsage}`);
    return 2;
  }
  switch (sub) {
    case 'join': {
      if (!flags.namespace || !flags.cluster) {
        say(`worker join needs --namespace and --cluster; usage: scripts/meta-cluster ${workerUsage}`);
        return 2;
      }
      if (flags.images !== undefined && flags.images !== 'conformance') {
        say(`--images takes only "conformance"; usage: scripts/meta-cluster ${workerUsage}`);
        return 2;
      }
      const w = await startWorker({
        stateDir,
        namespace: flags.namespace,
        cluster: flags.cluster,
        name: flags.name,
        log: say,
        conformanceImages: flags.images === 'conformance',
      });
      say(`node ${w.name} (${w.nodeIP}, pods ${w.podSubnet}) in network namespace ${w.netns}; logs in ${w.logDir}`);
      say(`its kubeconfig (the Node's credentials): ${w.kubeletKubeconfig}`);
      return 0;
    }
    case 'leave':
      await stopWorker({ stateDir, name: flags.name ?? defaultWorkerName, log: say });
      return 0;
    case 'list':
      for (const name of listWorkers(stateDir)) process.stdout.write(`${name}\n`);
      return 0;
    default:
      say(`usage: scripts/meta-cluster ${workerUsage}`);
      return 2;
  }
}

async function machine(sub: string | undefined, args: string[]): Promise<number> {
  const stateDir = loadConfig().stateDir;
  const [name, ...rest] = args;
  const flags = parseFlags(rest, sub === 'add' ? ['idc', 'namespace'] : []);
  const needsName = sub !== 'list';
  if (typeof flags === 'string' || (needsName && (!name || name.startsWith('-'))) || (!needsName && args.length > 0)) {
    say(`${typeof flags === 'string' ? flags : 'wrong arguments'}; usage: scripts/meta-cluster ${machineUsage}`);
    return 2;
  }
  switch (sub) {
    case 'add': {
      const m = await addMachine({ stateDir, name: name!, idc: flags.idc, namespace: flags.namespace, log: say });
      process.stdout.write(
        `address: ${m.address}\nhost key: ${m.hostKey}\nkey Secret: ${m.keySecret.namespace}/${m.keySecret.name}\n` +
          `package repository: ${m.packageRepository}\n`,
      );
      return 0;
    }
    case 'list':
      for (const n of listMachines(stateDir)) {
        const m = describeMachine(stateDir, n);
        if (m)
          process.stdout.write(
            `${m.name.padEnd(24)} ${m.address.padEnd(14)} ${m.idc.padEnd(12)} ${m.poweredOn ? 'on' : 'off'}\n`,
          );
      }
      return 0;
    case 'remove':
      await removeMachine({ stateDir, name: name!, log: say });
      return 0;
    case 'power-off':
      await powerOffMachine({ stateDir, name: name!, log: say });
      return 0;
    case 'power-on':
      await powerOnMachine({ stateDir, name: name!, log: say });
      return 0;
    default:
      say(`usage: scripts/meta-cluster ${machineUsage}`);
      return 2;
  }
}

async function main(command: string | undefined, flags: string[]): Promise<number> {
  if (command === 'worker') return worker(flags[0], flags.slice(1));
  if (command === 'machine') return machine(flags[0], flags.slice(1));
  const unknown = flags.filter((f) => !(command === 'up' && f === '--with-node'));
  if (unknown.length > 0) {
    say(`unknown argument ${unknown[0]}; ${usage}`);
    return 2;
  }
  const config = loadConfig({ withNode: flags.includes('--with-node') });
  const paths = statePaths(config.stateDir);
  switch (command) {
    case 'up': {
      const result = await up(say, config);
      say(`admin kubeconfig: ${result.kubeconfig}`);
      say(`use it with: eval "$(scripts/meta-cluster env)"`);
      return 0;
    }
    case 'down':
      if (!existsSync(config.stateDir)) {
        say('not up; nothing to stop');
        return 0;
      }
      await down(say, config);
      say('down');
      return 0;
    case 'env':
      if (!existsSync(paths.adminKubeconfig)) throw new TestbedError('not up; run scripts/meta-cluster up first');
      process.stdout.write(`export KUBECONFIG=${paths.adminKubeconfig}\n`);
      return 0;
    case 'status': {
      const s = await status(config);
      if (s.components.length === 0) {
        say('not up');
        return 1;
      }
      for (const c of s.components)
        process.stdout.write(
          `${c.name.padEnd(24)} pid ${String(c.pid).padEnd(8)} ${c.running ? 'running' : 'NOT RUNNING'}\n`,
        );
      process.stdout.write(`${'readyz'.padEnd(24)} ${s.apiserverReady ? 'ok' : 'NOT READY'}\n`);
      return s.apiserverReady && s.components.every((c) => c.running) ? 0 : 1;
    }
    default:
      say(usage);
      return 2;
  }
}

try {
  process.exitCode = await main(process.argv[2], process.argv.slice(3));
} catch (err) {
  if (
    err instanceof TestbedError ||
    err instanceof ComponentFailed ||
    err instanceof NodeSetupError ||
    err instanceof WorkerSetupError ||
    err instanceof MachineSetupError
  ) {
    say(`error: ${err.message}`);
    process.exitCode = 1;
  } else {
    throw err;
  }
}
