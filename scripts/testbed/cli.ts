// scripts/meta-cluster up | down | env | status
import { existsSync } from 'node:fs';
import { loadConfig, statePaths } from './config.ts';
import { down, status, TestbedError, up } from './meta-cluster.ts';
import { NodeSetupError } from './node.ts';
import { ComponentFailed } from './probes.ts';

const usage = 'usage: scripts/meta-cluster up [--with-node] | down | env | status';
const say = (line: string) => process.stderr.write(`meta-cluster: ${line}\n`);

async function main(command: string | undefined, flags: string[]): Promise<number> {
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
      for (const c of s.components) process.stdout.write(`${c.name.padEnd(24)} pid ${String(c.pid).padEnd(8)} ${c.running ? 'running' : 'NOT RUNNING'}\n`);
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
  if (err instanceof TestbedError || err instanceof ComponentFailed || err instanceof NodeSetupError) {
    say(`error: ${err.message}`);
    process.exitCode = 1;
  } else {
    throw err;
  }
}
