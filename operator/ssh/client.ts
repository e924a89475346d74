// The Node-Operator's SSH client: one connection per operation, logged in with the Machine's key,
// to a host whose key must be the pinned one (anything else and nothing is sent: HostKeyMismatch).
// A host is the tenant's and may be hostile: what it answers is bounded in size (past the bound
// the connection is dropped) and in time (handshake and the whole run), and only ever read as
// data. The private key lives in this process's memory for the connection only, and appears in
// no message.
import { plainText } from '../net/plain-text.ts';
import { Client, type ClientChannel, type ConnectConfig, type ServerHostKeyAlgorithm } from 'ssh2';

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  /** The private key (OpenSSH or PEM), from the Machine's Secret. */
  privateKey: Buffer;
  /** The pinned host key as a known_hosts line carries it: `ssh-ed25519 AAAA...`. */
  hostKey: string;
}

export type SshFailure =
  /** The host showed a key other than the pinned one: nothing was sent. */
  | 'HostKeyMismatch'
  /** No answer, a refused or reset connection, or a handshake that did not finish in time. */
  | 'Unreachable'
  /** The host refused the key. */
  | 'AuthenticationFailed'
  /** The command did not finish in time (the connection is dropped). */
  | 'Timeout'
  /** The host said more than the bound (the connection is dropped). */
  | 'OutputTooLarge'
  /** The host's SSH server misbehaved. */
  | 'ProtocolError'
  /** The Machine's private key cannot be read (malformed, or protected by a passphrase). */
  | 'KeyUnusable';

export class SshError extends Error {
  readonly failure: SshFailure;
  constructor(failure: SshFailure, message: string) {
    super(message);
    this.name = 'SshError';
    this.failure = failure;
  }
}

export interface RunOptions {
  /** Handshake and login (default 10 s). */
  connectTimeoutMs?: number;
  /** The whole run, from the connection's start (default 5 minutes). */
  timeoutMs?: number;
  /** stdout and stderr together (default 1 MiB). */
  maxOutputBytes?: number;
  /** Run through `sudo -n` (the Machine's user is not root). */
  sudo?: boolean;
  /** Each whole line of stdout as it comes (within the output bound), for progress. */
  onLine?: (line: string) => void;
}

export interface RunResult {
  /** The exit code; undefined when the command ended by a signal. */
  code: number | undefined;
  signal: string | undefined;
  stdout: string;
  stderr: string;
}

/** The algorithms a pinned key of each type is offered under. */
const hostKeyAlgorithms: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/** `type base64` → the key blob the host sends; throws on a malformed line (the CRD refuses those). */
export function parseHostKey(line: string): { type: string; blob: Buffer } {
  const [type = '', data = ''] = line.trim().split(/\s+/);
  if (!(type in hostKeyAlgorithms) || !/^[A-Za-z0-9+/]+={0,3}$/.test(data))
    throw new SshError('HostKeyMismatch', `the pinned host key is not a key line such as "ssh-ed25519 AAAA..."`);
  const blob = Buffer.from(data, 'base64');
  // the blob starts with its own type, length-prefixed: a key pasted under the wrong type is refused here
  const inner = blob.length >= 4 ? blob.subarray(4, 4 + blob.readUInt32BE(0)).toString('latin1') : '';
  if (inner !== type) throw new SshError('HostKeyMismatch', `the pinned host key's data is not a ${type} key`);
  return { type, blob };
}

const describeTarget = (t: SshTarget) => `${t.username}@${t.host}:${t.port}`;

/** Text that came from the host (an SSH server's disconnect reason, say): plain, and 200 characters at most. */
export const hostText = (text: string): string => plainText(text, 200);

/**
 * Runs `script` with `sh -s` on the host (the script on stdin: nothing of it lands on the host's
 * disk or in its process list) and resolves with its exit status and output. Rejects with an
 * SshError when the script could not run to its end.
 */
export function runScript(target: SshTarget, script: string, options: RunOptions = {}): Promise<RunResult> {
  const pinned = parseHostKey(target.hostKey);
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const timeoutMs = options.timeoutMs ?? 300_000;
  const maxOutputBytes = options.maxOutputBytes ?? 1 << 20;
  const where = describeTarget(target);

  return new Promise<RunResult>((resolve, reject) => {
    const client = new Client();
    let settled = false;
    let keyMismatch = false;
    let loggedIn = false;
    const finish = (outcome: { result: RunResult } | { error: SshError }) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      client.destroy();
      if ('result' in outcome) resolve(outcome.result);
      else reject(outcome.error);
    };
    const deadline = setTimeout(
      () =>
        finish({
          error: loggedIn
            ? new SshError('Timeout', `the operation on ${where} did not finish within ${timeoutMs / 1000} s`)
            : new SshError('Unreachable', `${where} did not complete an SSH login within ${timeoutMs / 1000} s`),
        }),
      timeoutMs,
    );

    client.on('error', (err: Error & { level?: string }) => {
      if (keyMismatch)
        return finish({
          error: new SshError(
            'HostKeyMismatch',
            `${where} showed a host key other than the pinned ${pinned.type} key: nothing was run`,
          ),
        });
      if (err.level === 'client-authentication')
        return finish({ error: new SshError('AuthenticationFailed', `${where} refused the Machine's key`) });
      if (err.level === 'client-timeout')
        return finish({
          error: new SshError(
            'Unreachable',
            `${where} did not complete the SSH handshake within ${connectTimeoutMs / 1000} s`,
          ),
        });
      if (
        err.level === 'client-socket' ||
        /ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|ECONNRESET/.test(err.message)
      )
        return finish({ error: new SshError('Unreachable', `cannot reach ${where}: ${hostText(err.message)}`) });
      finish({ error: new SshError('ProtocolError', `SSH with ${where} failed: ${hostText(err.message)}`) });
    });
    client.on('close', () =>
      finish({ error: new SshError('Unreachable', `the connection to ${where} closed before the operation ended`) }),
    );

    client.on('ready', () => {
      loggedIn = true;
      const command = options.sudo ? 'sudo -n sh -s' : 'sh -s';
      client.exec(command, (err: Error | undefined, channel: ClientChannel) => {
        if (err)
          return finish({
            error: new SshError('ProtocolError', `${where} refused to run a command: ${hostText(err.message)}`),
          });
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        let size = 0;
        const take = (into: Buffer[]) => (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxOutputBytes)
            return finish({
              error: new SshError(
                'OutputTooLarge',
                `${where} answered more than ${maxOutputBytes} bytes: the connection was dropped`,
              ),
            });
          into.push(chunk);
        };
        channel.on('data', take(out));
        if (options.onLine) {
          const onLine = options.onLine;
          let partial = '';
          channel.on('data', (chunk: Buffer) => {
            if (size > maxOutputBytes) return;
            const lines = (partial + chunk.toString('utf8')).split('\n');
            partial = lines.pop() ?? '';
            for (const line of lines) onLine(line);
          });
        }
        channel.stderr.on('data', take(errOut));
        let exit: { code: number | undefined; signal: string | undefined } | undefined;
        channel.on('exit', (code: number | null, signal?: string) => {
          exit = { code: code ?? undefined, signal: signal ?? undefined };
        });
        // output may still be in flight at the exit: the channel's close comes after both
        channel.on('close', () =>
          finish(
            exit
              ? {
                  result: {
                    ...exit,
                    stdout: Buffer.concat(out).toString('utf8'),
                    stderr: Buffer.concat(errOut).toString('utf8'),
                  },
                }
              : {
                  error: new SshError('ProtocolError', `${where} closed the command's channel without an exit status`),
                },
          ),
        );
        channel.end(script);
      });
    });

    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.username,
      privateKey: target.privateKey,
      readyTimeout: connectTimeoutMs,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 3,
      // only the pinned key's type is asked for: a host with several keys shows that one
      algorithms: { serverHostKey: hostKeyAlgorithms[pinned.type] as ServerHostKeyAlgorithm[] },
      hostVerifier: (key: Buffer) => {
        if (key.equals(pinned.blob)) return true;
        keyMismatch = true;
        return false;
      },
    };
    try {
      client.connect(config);
    } catch (err) {
      // ssh2 refuses a key it cannot read (malformed, or protected by a passphrase) before dialling
      finish({
        error: new SshError(
          'KeyUnusable',
          `the Machine's private key cannot be used: ${hostText((err as Error).message)}`,
        ),
      });
    }
  });
}
