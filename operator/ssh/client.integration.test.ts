// The SSH client against a real sshd (Debian's OpenSSH, on a loopback port of its own), behaving
// well and badly: the pinned host key decides whether anything runs at all.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseHostKey, runScript, SshError, type SshTarget } from './client.ts';

const dir = mkdtempSync(join(tmpdir(), 'kok-sshd-'));
let sshd: ChildProcess | undefined;
let target: SshTarget;

const keygen = (file: string) =>
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test', '-f', file]);
const publicKey = (file: string) => readFileSync(`${file}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function failure(promise: Promise<unknown>): Promise<SshError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof SshError) return err;
    throw err;
  }
  throw new Error('the run succeeded');
}

beforeAll(async () => {
  keygen(join(dir, 'host'));
  keygen(join(dir, 'client'));
  keygen(join(dir, 'stranger'));
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client.pub')));
  const port = await freePort();
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      // the folder is the test's, under /tmp
      'StrictModes no',
      'PidFile none',
      '',
    ].join('\n'),
  );
  // OpenSSH's privilege separation folder
  mkdirSync('/run/sshd', { recursive: true });
  sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: 'ignore' });
  target = {
    host: '127.0.0.1',
    port,
    username: 'root',
    privateKey: readFileSync(join(dir, 'client')),
    hostKey: publicKey(join(dir, 'host')),
  };
  for (let i = 0; i < 50; i++) {
    const ready = await runScript(target, 'true').then(
      () => true,
      () => false,
    );
    if (ready) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('sshd did not start');
});

afterAll(() => {
  sshd?.kill();
  rmSync(dir, { recursive: true, force: true });
});

describe('runScript against a real sshd', () => {
  it('runs the script from stdin and returns its status and both outputs', async () => {
    const result = await runScript(
      target,
      'read line <<EOF\nfrom stdin\nEOF\necho "$line"; echo to-stderr >&2; exit 3',
    );
    expect(result).toEqual({ code: 3, signal: undefined, stdout: 'from stdin\n', stderr: 'to-stderr\n' });
  });

  it('hands over each line of stdout as it comes, for progress', async () => {
    const lines: string[] = [];
    await runScript(target, 'echo one; sleep 0.2; printf "two\\nthr"; sleep 0.2; echo ee', {
      onLine: (l) => lines.push(l),
    });
    expect(lines).toEqual(['one', 'two', 'three']);
  });

  it('runs nothing on a host whose key is not the pinned one', async () => {
    const marker = join(dir, 'ran');
    const err = await failure(runScript({ ...target, hostKey: publicKey(join(dir, 'stranger')) }, `touch ${marker}`));
    expect(err.failure).toBe('HostKeyMismatch');
    expect(err.message).toMatch(/host key other than the pinned ssh-ed25519 key: nothing was run/);
    expect(existsSync(marker)).toBe(false);
  });

  it('says when the host refuses the key, without the key in the message', async () => {
    const stranger = readFileSync(join(dir, 'stranger'));
    const err = await failure(runScript({ ...target, privateKey: stranger }, 'true'));
    expect(err.failure).toBe('AuthenticationFailed');
    expect(err.message).not.toContain(stranger.toString('utf8').split('\n')[1]);
  });

  it('drops a host that answers without end, and one that takes too long', async () => {
    expect((await failure(runScript(target, 'yes', { maxOutputBytes: 64 << 10 }))).failure).toBe('OutputTooLarge');
    const started = Date.now();
    expect((await failure(runScript(target, 'sleep 30', { timeoutMs: 1500 }))).failure).toBe('Timeout');
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('tells an unreachable host from the rest', async () => {
    const closed = await freePort();
    expect((await failure(runScript({ ...target, port: closed }, 'true'))).failure).toBe('Unreachable');
  });

  it('refuses a pinned key of the wrong shape before connecting', () => {
    expect(() => parseHostKey('ssh-ed25519 not-base64!')).toThrow(/not a key line/);
    // an RSA key's data under the ed25519 name
    const rsa = Buffer.concat([Buffer.from([0, 0, 0, 7]), Buffer.from('ssh-rsa'), Buffer.alloc(8)]).toString('base64');
    expect(() => parseHostKey(`ssh-ed25519 ${rsa}`)).toThrow(/not a ssh-ed25519 key/);
    expect(parseHostKey(target.hostKey).type).toBe('ssh-ed25519');
  });
});
